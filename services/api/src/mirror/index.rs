//! Upstream index files (`config.json` and crates' files): served from the cache while fresh,
//! revalidated with the upstream's validators when not, checked before they replace a cached
//! copy, and served stale when the upstream fails.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use http::StatusCode;
use http::header::{ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
use ktra_store::BlobError;

use super::cache::{EntryHeader, IndexEntry};
use super::client::{read_limited, transport_error};
use super::{Mirror, MirrorError, MirrorErrorKind, digest, upstream};

/// Index files larger than this are refused (crates.io's largest are a few MiB).
const MAX_INDEX_BYTES: u64 = 64 * 1024 * 1024;

impl Mirror {
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

    /// Returns an index file as [`Mirror::index_file`] does, but a file the upstream does not
    /// have as an entry that says so rather than an error.
    pub(super) async fn index_entry(
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
        self.upstream_answered();
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
        let digest = digest::sha256(content.clone()).await;
        let entry = IndexEntry {
            header: EntryHeader {
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
}
