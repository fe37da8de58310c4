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
use ktra_core::metrics::{count_histogram, latency_histogram, render};
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
        let queue_depth = Gauge::default();
        registry.register(
            "queue_depth",
            "Index files waiting to be written",
            queue_depth.clone(),
        );
        let batch_size = count_histogram();
        registry.register(
            "batch_size_files",
            "Index files per commit",
            batch_size.clone(),
        );
        let commit_duration = latency_histogram();
        registry.register(
            "commit_duration_seconds",
            "Time to write one round's commit",
            commit_duration.clone(),
        );
        let push_duration = latency_histogram();
        registry.register(
            "push_duration_seconds",
            "Time to push one round",
            push_duration.clone(),
        );
        let rounds = Counter::default();
        registry.register("rounds", "Rounds committed and pushed", rounds.clone());
        let round_failures = Counter::default();
        registry.register(
            "round_failures",
            "Rounds that failed and were retried with backoff",
            round_failures.clone(),
        );
        let push_failures = Counter::default();
        registry.register(
            "push_failures",
            "Pushes the remote refused or that did not reach it",
            push_failures.clone(),
        );
        let remote_moves = Counter::default();
        registry.register(
            "remote_moves",
            "Times the remote had moved and our state was re-applied on top of it",
            remote_moves.clone(),
        );
        let acknowledged = Counter::default();
        registry.register(
            "acknowledged_updates",
            "Updates acknowledged to the API",
            acknowledged.clone(),
        );
        let foreign_refusals = Counter::default();
        registry.register(
            "foreign_file_refusals",
            "Crate files not written because they list versions the store does not have",
            foreign_refusals.clone(),
        );
        let last_push = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "last_push_timestamp_seconds",
            "When the last push succeeded, seconds since the epoch",
            last_push.clone(),
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
