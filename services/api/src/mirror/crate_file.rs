//! Crate files: served from the cache, or fetched once from the upstream's `dl`, checked
//! against the SHA-256 the upstream's index lists, and stored with a create-only write. Bytes
//! that do not match are never stored.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use chrono::Utc;
use http::StatusCode;
use ktra_core::index::index_path;
use ktra_core::name::validate_crate_name;
use ktra_store::BlobError;
use ktra_store::blob::BlobRead;

use super::client::{read_limited, transport_error};
use super::{Mirror, MirrorError, MirrorErrorKind, digest, upstream};

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

impl Mirror {
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
        let actual = hex::encode(digest::sha256(bytes.clone()).await);
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
}

/// The 404 of a crate version the upstream does not have; `cause` says how we know.
fn no_such_version(name: &str, version: &str, cause: &str) -> MirrorError {
    MirrorError::new(
        MirrorErrorKind::NotFound,
        format!("crate `{name}` has no version `{version}` upstream"),
        cause,
    )
}
