//! The indexer's Prometheus metrics and its small HTTP server (`/metrics`, `/livez`,
//! `/readyz`).

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, StatusCode};
use ktra_core::metrics::{count_histogram, latency_histogram, registered, render};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Every metric the indexer exports.
#[derive(Debug)]
pub struct IndexerMetrics {
    registry: Registry,
    /// Index files waiting to be written (a newer state replaces an older one).
    pub queue_depth: Gauge,
    /// Files per round (one commit, one push).
    pub batch_size: Histogram,
    /// Time to write one round's commit.
    pub commit_duration: Histogram,
    /// Time to push one round.
    pub push_duration: Histogram,
    /// Rounds that were pushed.
    pub rounds: Counter,
    /// Rounds that failed (each is retried with backoff).
    pub round_failures: Counter,
    /// Pushes the remote refused or that did not reach it.
    pub push_failures: Counter,
    /// Times the remote had moved and our state was re-applied on top of it.
    pub remote_moves: Counter,
    /// Updates acknowledged to the API.
    pub acknowledged: Counter,
    /// Crate files refused because they hold versions the store lacks (an index written
    /// elsewhere; see `crate::foreign`).
    pub foreign_refusals: Counter,
    /// Seconds since the epoch of the last successful push.
    pub last_push: Gauge<f64, AtomicU64>,
}

impl IndexerMetrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("ktra_indexer");
        let queue_depth = registered(
            &mut registry,
            "queue_depth",
            "Index files waiting to be written",
            Gauge::default(),
        );
        let batch_size = registered(
            &mut registry,
            "batch_size_files",
            "Index files per commit",
            count_histogram(),
        );
        let commit_duration = registered(
            &mut registry,
            "commit_duration_seconds",
            "Time to write one round's commit",
            latency_histogram(),
        );
        let push_duration = registered(
            &mut registry,
            "push_duration_seconds",
            "Time to push one round",
            latency_histogram(),
        );
        let rounds = registered(
            &mut registry,
            "rounds",
            "Rounds committed and pushed",
            Counter::default(),
        );
        let round_failures = registered(
            &mut registry,
            "round_failures",
            "Rounds that failed and were retried with backoff",
            Counter::default(),
        );
        let push_failures = registered(
            &mut registry,
            "push_failures",
            "Pushes the remote refused or that did not reach it",
            Counter::default(),
        );
        let remote_moves = registered(
            &mut registry,
            "remote_moves",
            "Times the remote had moved and our state was re-applied on top of it",
            Counter::default(),
        );
        let acknowledged = registered(
            &mut registry,
            "acknowledged_updates",
            "Updates acknowledged to the API",
            Counter::default(),
        );
        let foreign_refusals = registered(
            &mut registry,
            "foreign_file_refusals",
            "Crate files not written because they list versions the store does not have",
            Counter::default(),
        );
        let last_push = registered(
            &mut registry,
            "last_push_timestamp_seconds",
            "When the last push succeeded, seconds since the epoch",
            Gauge::<f64, AtomicU64>::default(),
        );
        Self {
            registry,
            queue_depth,
            batch_size,
            commit_duration,
            push_duration,
            rounds,
            round_failures,
            push_failures,
            remote_moves,
            acknowledged,
            foreign_refusals,
            last_push,
        }
    }

    /// Renders every metric.
    pub fn render(&self) -> String {
        render(&self.registry)
    }
}

impl Default for IndexerMetrics {
    fn default() -> Self {
        Self::new()
    }
}

async fn scrape(State(metrics): State<Arc<IndexerMetrics>>) -> impl IntoResponse {
    (
        [(
            CONTENT_TYPE,
            HeaderValue::from_static(ktra_core::metrics::CONTENT_TYPE),
        )],
        metrics.render(),
    )
}

async fn healthy() -> impl IntoResponse {
    (StatusCode::OK, "{\"status\":\"ok\"}")
}

/// Serves `/metrics`, `/livez` and `/readyz` on `address` until `shutdown` resolves. The
/// indexer is ready once this server runs: it starts after the clone is open.
///
/// # Errors
///
/// Fails when the address cannot be bound.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<IndexerMetrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let app = Router::new()
        .route("/metrics", get(scrape))
        .route("/livez", get(healthy))
        .route("/readyz", get(healthy))
        .with_state(metrics);
    tracing::info!(address = %listener.local_addr()?, "serving metrics");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}
