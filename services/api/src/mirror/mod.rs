//! The pull-through mirror of an upstream sparse registry (crates.io by default).
//!
//! Cargo reads the mirror's sparse index at `/mirror/index/` and downloads through
//! `/mirror/dl/{crate}/{version}/download` (and Ktra's `/ktra/api/v1/mirror/...`). Both go
//! through [`Mirror`]:
//!
//! - Index files are cached in the blob store under `mirror/index/{path}`, with the upstream's
//!   validators and the fetch time in the same object (see the `cache` module), so every replica shares
//!   them. A file younger than `KTRA_MIRROR_FRESHNESS_SECS` is served as is; an older one is
//!   revalidated with a conditional request. Upstream 404s are remembered, in memory (see the
//!   `not_found` module), for
//!   `KTRA_MIRROR_NOT_FOUND_SECS`.
//! - Crate files are fetched once, checked against the SHA-256 the upstream's index lists,
//!   stored under `mirror/crates/{name}/{name}-{version}.crate` with a create-only write, and
//!   served from the blob store from then on. Bytes that do not match are never stored.
//! - When the upstream fails, cached index files are served anyway (logged, and counted as
//!   `stale`); what is not cached fails with 502 (or 504 on a timeout) in cargo's format.
//!   After the upstream fails to answer, cached index files are served without asking it for
//!   `UPSTREAM_BACKOFF`.
//! - Concurrent requests for the same file within a replica share one upstream fetch
//!   (`SingleFlight`); the fetch runs in its own task, so it completes (and fills the cache)
//!   even when the request that started it goes away.

mod cache;
mod client;
mod error;
mod metrics;
mod not_found;
pub mod patterns;
pub mod prefetch;
mod single_flight;
mod upstream;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::Utc;
use http::StatusCode;
use http::header::{ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
use ktra_core::index::index_path;
use ktra_core::name::validate_crate_name;
use ktra_store::blob::BlobRead;
use ktra_store::{BlobError, BlobStore};
use sha2::{Digest, Sha256};

pub use cache::IndexEntry;
pub use error::{MirrorError, MirrorErrorKind};
pub use patterns::CratePatterns;

use self::client::{UpstreamClient, read_limited, transport_error};
use self::metrics::MirrorMetrics;
use self::single_flight::SingleFlight;
use crate::config::{BlobKind, Config, MirrorConfig};
use crate::metrics::ApiMetrics;

/// Index files larger than this are refused (crates.io's largest are a few MiB).
const MAX_INDEX_BYTES: u64 = 64 * 1024 * 1024;

/// After the upstream fails to answer, how long cached index files are served without asking
/// it, so that each stale read does not wait for a connect or read timeout.
const UPSTREAM_BACKOFF: Duration = Duration::from_secs(15);

/// A download of a version the cached index file does not list refreshes the file once, but
/// only when the copy is at least this old.
const REFRESH_FLOOR_SECS: u64 = 3;

/// A crate file the mirror serves.
#[derive(Debug)]
pub enum CrateFile {
    /// Read from the cache.
    Cached(BlobRead),
    /// Just fetched and verified.
    Fetched(Bytes),
}

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
            patterns: CratePatterns::new(&mirror.allow, &mirror.deny),
            config: mirror.clone(),
            client,
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

    /// Returns an index file (`config.json` or a crate's file, path relative to the index
    /// root), from the cache when it is younger than `max_age_secs`.
    ///
    /// # Errors
    ///
    /// [`MirrorErrorKind::NotFound`] when the upstream has no such file; an upstream error when
    /// nothing is cached and the upstream fails; [`MirrorErrorKind::Store`].
    pub async fn index_file(
        self: &Arc<Self>,
        path: &str,
        max_age_secs: Option<u64>,
    ) -> Result<IndexEntry, MirrorError> {
        let entry = self.index_entry(path, max_age_secs).await?;
        if !entry.found() {
            return Err(MirrorError::new(
                MirrorErrorKind::NotFound,
                format!("the upstream registry has no index file at `{path}`"),
                "upstream 404",
            ));
        }
        Ok(entry)
    }

    async fn index_entry(
        self: &Arc<Self>,
        path: &str,
        max_age_secs: Option<u64>,
    ) -> Result<IndexEntry, MirrorError> {
        let not_found_for = Duration::from_secs(max_age_secs.unwrap_or(self.config.not_found_secs));
        if self
            .not_found
            .remembers(path, not_found_for, Instant::now())
        {
            self.metrics.count("index", "hit");
            return Ok(IndexEntry::not_found(Utc::now().timestamp()));
        }
        let key = format!("mirror/index/{path}");
        let cached = match self.cache.get_bytes(&key).await {
            // Older releases stored 404s in the blob store too: ignore them.
            Ok(bytes) => IndexEntry::decode(&bytes).filter(IndexEntry::found),
            Err(BlobError::NotFound(_)) => None,
            Err(error) => return Err(MirrorError::store(&error)),
        };
        if let Some(entry) = &cached
            && entry.age_secs(Utc::now()) < max_age_secs.unwrap_or(self.config.freshness_secs)
        {
            self.metrics.count("index", "hit");
            return Ok(entry.clone());
        }
        if let Some(entry) = &cached
            && self.upstream_is_down()
        {
            // The upstream just failed: answer now rather than wait for it to fail again.
            self.metrics.count("index", "stale");
            return Ok(entry.clone());
        }
        let this = Arc::clone(self);
        let owned_path = path.to_owned();
        let flight_key = key.clone();
        self.index_flights
            .run(&flight_key, async move {
                this.refresh_index(&owned_path, &key, cached).await
            })
            .await
            .unwrap_or_else(|failed| Err(failed.into()))
    }

    /// Asks the upstream for an index file (conditionally when a copy is cached) and stores
    /// the answer; serves the cached copy when the upstream fails.
    async fn refresh_index(
        &self,
        path: &str,
        key: &str,
        cached: Option<IndexEntry>,
    ) -> Result<IndexEntry, MirrorError> {
        let url = format!("{}{path}", self.upstream);
        let mut request = self.client.get(&url);
        let validators = cached.as_ref().filter(|entry| entry.found());
        if let Some(entry) = validators {
            if let Some(etag) = &entry.header.upstream_etag {
                request = request.header(IF_NONE_MATCH, etag);
            }
            if let Some(modified) = &entry.header.upstream_last_modified {
                request = request.header(IF_MODIFIED_SINCE, modified);
            }
        }
        let started = Instant::now();
        let answer = self.index_answer(request, path, validators).await;
        self.metrics.observe_upstream("index", started);
        let (entry, result) = match answer {
            Ok(answer) => answer,
            Err(error) => {
                self.upstream_failed("index", &error, path);
                return match cached {
                    Some(entry) => {
                        tracing::warn!(
                            path,
                            age_secs = entry.age_secs(Utc::now()),
                            cause = %error.cause,
                            "the upstream failed; serving a stale index file"
                        );
                        self.metrics.count("index", "stale");
                        Ok(entry)
                    }
                    None => Err(error),
                };
            }
        };
        self.metrics.count("index", result);
        *self
            .down_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
        if !entry.found() {
            // Kept in memory only: see the `not_found` module.
            let not_found_for = Duration::from_secs(self.config.not_found_secs);
            self.not_found.insert(path, not_found_for, Instant::now());
            if cached.is_some()
                && let Err(error) = self.cache.delete(key).await
            {
                tracing::warn!(path, %error, "cannot forget an index file the upstream dropped");
            }
            return Ok(entry);
        }
        self.not_found.remove(path);
        if let Err(error) = self.cache.put(key, entry.encode()).await {
            // The answer is good; only the next request pays for the lost write.
            tracing::warn!(path, %error, "cannot cache an index file");
        }
        Ok(entry)
    }

    /// Sends an index request and turns the answer into an entry and its cache result label.
    async fn index_answer(
        &self,
        request: reqwest::RequestBuilder,
        path: &str,
        cached: Option<&IndexEntry>,
    ) -> Result<(IndexEntry, &'static str), MirrorError> {
        let unusable = |cause: String| {
            MirrorError::new(
                MirrorErrorKind::BadAnswer,
                format!("the upstream registry failed to serve `{path}`"),
                cause,
            )
        };
        let response = request
            .send()
            .await
            .map_err(|error| transport_error(&error, &format!("the index file `{path}`")))?;
        let status = response.status();
        let now = Utc::now().timestamp();
        if status == StatusCode::NOT_MODIFIED
            && let Some(entry) = cached
        {
            let mut entry = entry.clone();
            entry.header.fetched_at = now;
            return Ok((entry, "revalidated"));
        }
        if matches!(
            status,
            StatusCode::NOT_FOUND | StatusCode::GONE | StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS
        ) {
            return Ok((IndexEntry::not_found(now), "miss"));
        }
        if status != StatusCode::OK {
            return Err(unusable(format!("upstream answered {status}")));
        }
        let header_text = |name: http::HeaderName| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        let upstream_etag = header_text(ETAG);
        let upstream_last_modified = header_text(LAST_MODIFIED);
        let content = read_limited(
            response,
            MAX_INDEX_BYTES,
            &format!("the index file `{path}`"),
        )
        .await?;
        let checked = if path == "config.json" {
            upstream::parse_config(&content).map(drop)
        } else {
            upstream::check_index_file(&content, path.rsplit('/').next().unwrap_or_default())
        };
        checked.map_err(|cause| unusable(format!("upstream answered 200 with {cause}")))?;
        let digest = sha256(content.clone()).await;
        let entry = IndexEntry {
            header: cache::EntryHeader {
                found: true,
                fetched_at: now,
                upstream_etag,
                upstream_last_modified,
                etag: format!("\"{}\"", hex::encode(&digest[..16])),
            },
            content,
        };
        Ok((entry, "miss"))
    }

    /// Returns a crate file: from the cache, or fetched once from the upstream, checked
    /// against the index's checksum and cached.
    ///
    /// # Errors
    ///
    /// 403, 404 and upstream errors as [`MirrorError`]s.
    pub async fn crate_file(
        self: &Arc<Self>,
        name: &str,
        version: &str,
    ) -> Result<CrateFile, MirrorError> {
        if validate_crate_name(name).is_err() {
            return Err(no_such_version(name, version, "not a crate name"));
        }
        let version = semver::Version::parse(version)
            .map_err(|_| no_such_version(name, version, "not a version"))?
            .to_string();
        self.check_allowed(name)?;
        let lower = name.to_ascii_lowercase();
        let key = format!("mirror/crates/{lower}/{lower}-{version}.crate");
        match self.cache.get(&key).await {
            Ok(read) => {
                self.metrics.count("crate", "hit");
                return Ok(CrateFile::Cached(read));
            }
            Err(BlobError::NotFound(_)) => {}
            Err(error) => return Err(MirrorError::store(&error)),
        }
        let this = Arc::clone(self);
        let owned_name = name.to_owned();
        let flight_key = key.clone();
        self.crate_flights
            .run(&flight_key, async move {
                let what = format!("crate `{owned_name}` {version}");
                tokio::time::timeout(
                    this.fetch_budget,
                    this.fetch_crate(&owned_name, &version, &key),
                )
                .await
                .unwrap_or_else(|_| {
                    let error = MirrorError::new(
                        MirrorErrorKind::Timeout,
                        format!(
                            "the upstream registry did not answer in time for {what}, and the mirror has no copy"
                        ),
                        format!("the fetch took longer than {:?}", this.fetch_budget),
                    );
                    this.upstream_failed("crate", &error, &what);
                    Err(error)
                })
            })
            .await
            .unwrap_or_else(|failed| Err(failed.into()))
            .map(CrateFile::Fetched)
    }

    /// Fetches a crate file the cache lacks: its checksum from the index (refreshed once when
    /// the cached index does not list the version yet), its bytes from the upstream's `dl`.
    async fn fetch_crate(
        self: &Arc<Self>,
        name: &str,
        version: &str,
        key: &str,
    ) -> Result<Bytes, MirrorError> {
        let path = index_path(name);
        let mut entry = self.index_entry(&path, None).await?;
        let mut listed = upstream::find_version(&entry.content, name, version);
        if listed.is_none() && entry.found() && entry.age_secs(Utc::now()) >= REFRESH_FLOOR_SECS {
            // Published upstream after our copy of the index was fetched. Not for a copy
            // younger than the floor, so asking for a missing version again and again does
            // not reach the upstream each time.
            entry = self.index_entry(&path, Some(0)).await?;
            listed = upstream::find_version(&entry.content, name, version);
        }
        let (index_name, cksum) =
            listed.ok_or_else(|| no_such_version(name, version, "not in the upstream index"))?;
        if !upstream::is_sha256_hex(&cksum) {
            // It goes into the download URL's `{sha256-checksum}` and is compared with the bytes.
            return Err(MirrorError::new(
                MirrorErrorKind::BadAnswer,
                format!(
                    "the upstream registry's index has no valid checksum for crate `{name}` {version}"
                ),
                format!("cksum is not 64 hex digits: {cksum:?}"),
            ));
        }
        let template = self.dl_template(name).await?;
        let url = upstream::download_url(&template, &index_name, version, &cksum);
        let what = format!("crate `{name}` {version}");
        let started = Instant::now();
        let fetched = self.download(&url, &what).await;
        self.metrics.observe_upstream("crate", started);
        let bytes = fetched.inspect_err(|error| self.upstream_failed("crate", error, &what))?;
        let actual = hex::encode(sha256(bytes.clone()).await);
        if actual != cksum {
            let error = MirrorError::new(
                MirrorErrorKind::Checksum,
                format!(
                    "the upstream registry served {what} with a checksum that does not match its index; refused"
                ),
                format!("index says {cksum}, bytes hash to {actual}"),
            );
            self.upstream_failed("crate", &error, &what);
            return Err(error);
        }
        match self.cache.put_new(key, bytes.clone()).await {
            // Another replica stored the same verified bytes first.
            Ok(()) | Err(BlobError::AlreadyExists(_)) => {}
            // The bytes are verified: serve them; the next request tries to cache again.
            Err(error) => tracing::warn!(%error, key, "cannot cache a crate file"),
        }
        self.metrics.count("crate", "miss");
        tracing::info!(
            crate_name = name,
            version,
            bytes = bytes.len(),
            "mirrored a crate file"
        );
        Ok(bytes)
    }

    /// Returns the upstream's `dl` template, from its `config.json`. A missing or unreadable
    /// file is a bad answer; an upstream that is down or slow keeps its own error.
    async fn dl_template(self: &Arc<Self>, name: &str) -> Result<String, MirrorError> {
        let unusable = |cause: String| {
            MirrorError::new(
                MirrorErrorKind::BadAnswer,
                format!(
                    "the upstream registry's config.json is unusable, so `{name}` cannot be fetched"
                ),
                cause,
            )
        };
        let config = match self.index_file("config.json", None).await {
            Ok(config) => config,
            Err(error) if error.kind == MirrorErrorKind::NotFound => {
                return Err(unusable(error.cause));
            }
            Err(error) => return Err(error),
        };
        // Checked before it was cached; a copy cached by an older release may not be.
        Ok(upstream::parse_config(&config.content)
            .map_err(unusable)?
            .dl)
    }

    async fn download(&self, url: &str, what: &str) -> Result<Bytes, MirrorError> {
        let response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|error| transport_error(&error, what))?;
        let status = response.status();
        if status != StatusCode::OK {
            return Err(MirrorError::new(
                MirrorErrorKind::BadAnswer,
                format!("the upstream registry failed to serve {what}"),
                format!("upstream answered {status}"),
            ));
        }
        read_limited(response, self.config.max_crate_bytes, what).await
    }

    /// Returns whether the upstream failed to answer (unreachable or too slow) less than
    /// [`UPSTREAM_BACKOFF`] ago, with no good answer since.
    fn upstream_is_down(&self) -> bool {
        self.down_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|until| Instant::now() < until)
    }

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

/// The 404 of a crate version the upstream does not have; `cause` says how we know.
fn no_such_version(name: &str, version: &str, cause: &str) -> MirrorError {
    MirrorError::new(
        MirrorErrorKind::NotFound,
        format!("crate `{name}` has no version `{version}` upstream"),
        cause,
    )
}

/// Hashes off the async workers (crate files run to megabytes). Always a full digest: if the
/// blocking task cannot run (the runtime is shutting down), the hash is computed here.
async fn sha256(bytes: Bytes) -> [u8; 32] {
    let span = tracing::Span::current();
    let copy = bytes.clone();
    let digest = tokio::task::spawn_blocking(move || span.in_scope(|| Sha256::digest(&copy)))
        .await
        .unwrap_or_else(|_| Sha256::digest(&bytes));
    digest.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn digests_are_whole() {
        let digest = sha256(Bytes::from_static(b"abc")).await;
        assert_eq!(
            hex::encode(digest),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
