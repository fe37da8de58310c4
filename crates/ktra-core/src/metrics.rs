//! Prometheus metrics, in the OpenMetrics text format that Prometheus scrapes, with names
//! following Prometheus conventions (`ktra_..._total`, `_seconds`, `_bytes`).

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};

/// The `Content-Type` of what [`render`] writes: the OpenMetrics text format, which Prometheus
/// scrapes natively (counters carry the `_total` suffix, the output ends with `# EOF`).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A latency histogram from 0.5 ms to about 33 s.
pub fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 17))
}

/// A size histogram from 1 to about 65,000.
pub fn count_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 17))
}

/// Registers `metric` under `name` with its help text and returns it, for the struct that
/// updates it.
pub fn registered<M: Metric + Clone>(
    registry: &mut Registry,
    name: &str,
    help: &str,
    metric: M,
) -> M {
    registry.register(name, help, metric.clone());
    metric
}

/// Renders a registry in the OpenMetrics text format.
pub fn render(registry: &Registry) -> String {
    let mut text = String::new();
    // Writing to a String cannot fail.
    encode(&mut text, registry).expect("metrics render into a String");
    text
}
