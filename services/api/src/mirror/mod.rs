//! The pull-through mirror of an upstream sparse registry (crates.io by default).
//!
//! Cargo reads the mirror's sparse index at `/mirror/index/` and downloads through
//! `/mirror/dl/{crate}/{version}/download` (and Ktra's `/ktra/api/v1/mirror/...`). Both go
//! through [`Mirror`]:
//!
//! - Index files (the `index` module) are cached in the blob store under `mirror/index/{path}`,
//!   with the upstream's validators and the fetch time in the same object (see the `cache`
//!   module), so every replica shares them. A file younger than `KTRA_MIRROR_FRESHNESS_SECS` is
//!   served as is; an older one is revalidated with a conditional request. Upstream 404s are
//!   remembered, in memory (see the `not_found` module), for `KTRA_MIRROR_NOT_FOUND_SECS`.
//! - Crate files (the `crate_file` module) are fetched once, checked against the SHA-256 the
//!   upstream's index lists, stored under `mirror/crates/{name}/{name}-{version}.crate` with a
//!   create-only write, and served from the blob store from then on. Bytes that do not match
//!   are never stored.
//! - When the upstream fails, cached index files are served anyway (logged, and counted as
//!   `stale`); what is not cached fails with 502 (or 504 on a timeout) in cargo's format (see
//!   [`MirrorError`]). After the upstream fails to answer, cached index files are served
//!   without asking it for `UPSTREAM_BACKOFF`.
//! - Concurrent requests for the same file within a replica share one upstream fetch
//!   (`SingleFlight`, in the `single_flight` module); the fetch runs in its own task, so it
//!   completes (and fills the cache) even when the request that started it goes away.
//! - Every request to the upstream goes through one client (the `client` module): its
//!   timeouts, a redirect policy that never downgrades to http, and the upstream's token sent
//!   only to the upstream's own origin.
mod cache;
mod client;
mod crate_file;
mod digest;
mod error;
mod index;
mod metrics;
mod not_found;
pub mod patterns;
pub mod prefetch;
mod single_flight;
mod upstream;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ktra_store::BlobStore;

pub use cache::IndexEntry;
pub use crate_file::CrateFile;
pub use error::{MirrorError, MirrorErrorKind};
pub use patterns::CratePatterns;

use self::client::UpstreamClient;
use self::metrics::MirrorMetrics;
use self::single_flight::SingleFlight;
use crate::config::{BlobKind, Config, MirrorConfig};
use crate::metrics::ApiMetrics;

/// After the upstream fails to answer, how long cached index files are served without asking
/// it, so that each stale read does not wait for a connect or read timeout.
const UPSTREAM_BACKOFF: Duration = Duration::from_secs(15);

/// The pull-through cache; see the module docs.
#[derive(Debug)]
pub struct Mirror {
    config: MirrorConfig,
    upstream: String,
    client: UpstreamClient,
    cache: BlobStore,
    metrics: MirrorMetrics,
    patterns: CratePatterns,
    /// The longest a fetch from the upstream may take, all its requests together.
    fetch_budget: Duration,
    /// Until when cached index files are served without asking the upstream, which has just
    /// failed to answer (per replica).
    down_until: Mutex<Option<Instant>>,
    index_flights: SingleFlight<Result<IndexEntry, MirrorError>>,
    not_found: not_found::NotFoundCache,
    crate_flights: SingleFlight<Result<Bytes, MirrorError>>,
}

impl Mirror {
    /// Builds the mirror over the registry's blob store: with a local store, the cache has its
    /// own directory (`KTRA_MIRROR_CACHE_DIR_PATH`); otherwise it lives under `mirror/` in the
    /// same bucket, so replicas share it.
    ///
    /// # Errors
    ///
    /// Fails when the cache directory cannot be created or the HTTP client cannot be built.
    pub fn new(
        config: &Config,
        blobs: &BlobStore,
        metrics: Arc<ApiMetrics>,
    ) -> anyhow::Result<Self> {
        let mirror = &config.mirror;
        let cache = match config.blob.kind {
            BlobKind::Local => BlobStore::local(&mirror.cache_dir_path)
                .map_err(|error| anyhow::anyhow!("setting KTRA_MIRROR_CACHE_DIR_PATH: {error}"))?,
            BlobKind::S3 | BlobKind::Url => blobs.clone(),
        };
        // One deadline for a whole fetch (a crate file can take an index file, config.json and
        // the download), inside the request's own limit, so cargo gets our 504, not a 408.
        let fetch_budget = Duration::from_secs(config.http.request_timeout_secs).mul_f64(0.9);
        let timeout = Duration::from_secs(mirror.upstream_timeout_secs).min(fetch_budget);
        let upstream = mirror.upstream_index_url();
        let client = UpstreamClient::new(mirror, &upstream, timeout)?;
        Ok(Self {
            upstream,
            client,
            patterns: CratePatterns::new(&mirror.allow, &mirror.deny),
            config: mirror.clone(),
            cache,
            metrics: MirrorMetrics::new(metrics),
            fetch_budget,
            down_until: Mutex::new(None),
            index_flights: SingleFlight::new(),
            not_found: not_found::NotFoundCache::new(),
            crate_flights: SingleFlight::new(),
        })
    }

    /// Refuses a crate the allow/deny lists exclude.
    ///
    /// # Errors
    ///
    /// [`MirrorErrorKind::Forbidden`] naming the crate.
    pub fn check_allowed(&self, name: &str) -> Result<(), MirrorError> {
        if self.patterns.permits(name) {
            return Ok(());
        }
        Err(MirrorError::new(
            MirrorErrorKind::Forbidden,
            format!(
                "crate `{name}` may not be pulled through this mirror (KTRA_MIRROR_ALLOW / KTRA_MIRROR_DENY)"
            ),
            "refused by the allow/deny lists",
        ))
    }

    /// Returns whether the upstream failed to answer (unreachable or too slow) less than
    /// [`UPSTREAM_BACKOFF`] ago, with no good answer since.
    fn upstream_is_down(&self) -> bool {
        self.down_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|until| Instant::now() < until)
    }

    /// Ends the backoff: the upstream has just given a usable answer.
    fn upstream_answered(&self) {
        *self
            .down_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Logs and counts a failed upstream request of `kind` (`index` or `crate`) for `what`;
    /// when the upstream did not answer at all, starts the [`UPSTREAM_BACKOFF`].
    fn upstream_failed(&self, kind: &str, error: &MirrorError, what: &str) {
        if matches!(
            error.kind,
            MirrorErrorKind::Unreachable | MirrorErrorKind::Timeout
        ) {
            *self
                .down_until
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now() + UPSTREAM_BACKOFF);
        }
        tracing::warn!(kind, what, error = error.kind.label(), cause = %error.cause, "upstream request failed");
        self.metrics.upstream_error(kind, error.kind);
    }
}
