//! The API's Prometheus metrics, served on `/metrics`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use ktra_core::metrics::{latency_histogram, registered, render};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use ktra_store::{StoreKind, StoreObserver};

/// Labels of an HTTP request.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// The route pattern, e.g. `/api/v1/crates/{name}/owners`.
    pub route: String,
    /// The method.
    pub method: String,
    /// The status code.
    pub status: u16,
}

/// Labels of a request's latency.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The route pattern.
    pub route: String,
    /// The method.
    pub method: String,
}

/// Labels of an outcome.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `ok`, `refused` (4xx) or `failed` (5xx).
    pub outcome: String,
}

/// Labels of a storage operation.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StorageLabels {
    /// `metadata` or `blob`.
    pub store: String,
    /// The operation, e.g. `publish`, `put`.
    pub operation: String,
}

/// Labels of a mirror cache lookup.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MirrorCacheLabels {
    /// `index` or `crate`.
    pub kind: String,
    /// `hit` (served from the cache), `revalidated` (the upstream said 304), `miss` (fetched
    /// from the upstream) or `stale` (the upstream failed; the cached copy was served).
    pub result: String,
}

/// Labels of a mirror upstream request.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MirrorKindLabels {
    /// `index` or `crate`.
    pub kind: String,
}

/// Labels of a failed mirror upstream request.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MirrorErrorLabels {
    /// `index` or `crate`.
    pub kind: String,
    /// `not_found`, `forbidden`, `unreachable`, `timeout`, `bad_answer`, `checksum` or `store`.
    pub error: String,
}

/// Labels of a rate-limited request.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabels {
    /// The limit reached, e.g. `login:ip`.
    pub limit: String,
}

/// Labels of a yank.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct YankLabels {
    /// `yank` or `unyank`.
    pub action: String,
    /// `ok`, `refused` or `failed`.
    pub outcome: String,
}

/// Every metric the API exports.
#[derive(Debug)]
pub struct ApiMetrics {
    registry: Registry,
    /// Requests by route, method and status.
    pub http_requests: Family<HttpLabels, Counter>,
    /// Request latency by route and method.
    pub http_duration: Family<RouteLabels, Histogram>,
    /// Publishes by outcome.
    pub publishes: Family<OutcomeLabels, Counter>,
    /// Yanks and unyanks by outcome.
    pub yanks: Family<YankLabels, Counter>,
    /// Bytes of accepted `.crate` files.
    pub uploaded_bytes: Counter,
    /// Bytes of crate files served.
    pub downloaded_bytes: Counter,
    /// Storage operation latency.
    pub storage_duration: Family<StorageLabels, Histogram>,
    /// Storage operations that failed (not counting refusals such as a duplicate version).
    pub storage_errors: Family<StorageLabels, Counter>,
    /// Crates whose latest change the git indexer has not acknowledged.
    pub index_unacknowledged: Gauge,
    /// Age of the oldest of those changes, seconds.
    pub index_unacknowledged_oldest_age: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// Whether the metadata store answers (1) or not (0).
    pub metadata_store_up: Gauge,
    /// Requests refused by a rate limit, by limit.
    pub rate_limited: Family<LimitLabels, Counter>,
    /// Audit events the store could not take.
    pub audit_failures: Counter,
    /// Mirror cache lookups by kind and result.
    pub mirror_cache: Family<MirrorCacheLabels, Counter>,
    /// Mirror requests to the upstream registry, by kind.
    pub mirror_upstream_duration: Family<MirrorKindLabels, Histogram>,
    /// Mirror requests to the upstream registry that failed, by kind and error.
    pub mirror_upstream_errors: Family<MirrorErrorLabels, Counter>,
}

impl ApiMetrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("ktra");
        let http_requests = registered(
            &mut registry,
            "http_requests",
            "HTTP requests answered, by route, method and status",
            Family::<HttpLabels, Counter>::default(),
        );
        let http_duration = registered(
            &mut registry,
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by route and method",
            Family::<RouteLabels, Histogram>::new_with_constructor(
                latency_histogram as fn() -> Histogram,
            ),
        );
        let publishes = registered(
            &mut registry,
            "publishes",
            "Publish requests by outcome",
            Family::<OutcomeLabels, Counter>::default(),
        );
        let yanks = registered(
            &mut registry,
            "yanks",
            "Yank and unyank requests by outcome",
            Family::<YankLabels, Counter>::default(),
        );
        let uploaded_bytes = registered(
            &mut registry,
            "uploaded_crate_bytes",
            "Bytes of crate files accepted by publishes",
            Counter::default(),
        );
        let downloaded_bytes = registered(
            &mut registry,
            "downloaded_crate_bytes",
            "Bytes of crate files served by downloads",
            Counter::default(),
        );
        let storage_duration = registered(
            &mut registry,
            "storage_operation_duration_seconds",
            "Time of metadata and blob store operations",
            Family::<StorageLabels, Histogram>::new_with_constructor(
                latency_histogram as fn() -> Histogram,
            ),
        );
        let storage_errors = registered(
            &mut registry,
            "storage_operation_errors",
            "Metadata and blob store operations that failed",
            Family::<StorageLabels, Counter>::default(),
        );
        let index_unacknowledged = registered(
            &mut registry,
            "index_unacknowledged_crates",
            "Crates whose latest change the git indexer has not acknowledged",
            Gauge::default(),
        );
        let index_unacknowledged_oldest_age = registered(
            &mut registry,
            "index_unacknowledged_oldest_age_seconds",
            "Age of the oldest change the git indexer has not acknowledged",
            Gauge::<f64, std::sync::atomic::AtomicU64>::default(),
        );
        let rate_limited = registered(
            &mut registry,
            "rate_limited_requests",
            "Requests refused with 429 by a rate limit, by limit",
            Family::<LimitLabels, Counter>::default(),
        );
        let audit_failures = registered(
            &mut registry,
            "audit_record_failures",
            "Audit events the metadata store could not record",
            Counter::default(),
        );
        let metadata_store_up = registered(
            &mut registry,
            "metadata_store_up",
            "Whether the metadata store (Redis or the embedded database) answers",
            Gauge::default(),
        );
        let mirror_cache = registered(
            &mut registry,
            "mirror_cache_requests",
            "Mirror cache lookups by kind (index, crate) and result (hit, revalidated, miss, stale)",
            Family::<MirrorCacheLabels, Counter>::default(),
        );
        let mirror_upstream_duration = registered(
            &mut registry,
            "mirror_upstream_request_duration_seconds",
            "Time of the mirror's requests to the upstream registry, by kind",
            Family::<MirrorKindLabels, Histogram>::new_with_constructor(
                latency_histogram as fn() -> Histogram,
            ),
        );
        let mirror_upstream_errors = registered(
            &mut registry,
            "mirror_upstream_errors",
            "Mirror requests to the upstream registry that failed, by kind and error",
            Family::<MirrorErrorLabels, Counter>::default(),
        );
        Self {
            registry,
            http_requests,
            http_duration,
            publishes,
            yanks,
            uploaded_bytes,
            downloaded_bytes,
            storage_duration,
            storage_errors,
            index_unacknowledged,
            index_unacknowledged_oldest_age,
            metadata_store_up,
            rate_limited,
            audit_failures,
            mirror_cache,
            mirror_upstream_duration,
            mirror_upstream_errors,
        }
    }

    /// Renders every metric.
    pub fn render(&self) -> String {
        render(&self.registry)
    }
}

impl StoreObserver for ApiMetrics {
    fn operation(
        &self,
        store: StoreKind,
        operation: &'static str,
        elapsed: Duration,
        failed: bool,
    ) {
        let labels = StorageLabels {
            store: store.as_str().to_owned(),
            operation: operation.to_owned(),
        };
        self.storage_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        if failed {
            self.storage_errors.get_or_create(&labels).inc();
        }
    }

    fn metadata_up(&self, up: bool) {
        self.metadata_store_up.set(i64::from(up));
    }
}

impl Default for ApiMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The outcome label of a status.
pub fn outcome(status: http::StatusCode) -> String {
    if status.is_success() {
        "ok"
    } else if status.is_client_error() {
        "refused"
    } else {
        "failed"
    }
    .to_owned()
}

/// Middleware counting and timing every routed request.
pub async fn track(
    State(metrics): State<Arc<ApiMetrics>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    metrics
        .http_duration
        .get_or_create(&RouteLabels {
            route: route.clone(),
            method: method.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    metrics
        .http_requests
        .get_or_create(&HttpLabels {
            route,
            method,
            status: response.status().as_u16(),
        })
        .inc();
    response
}
