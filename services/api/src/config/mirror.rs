//! `KTRA_MIRROR_*`: the pull-through mirror of an upstream sparse registry.

use std::path::PathBuf;

use anyhow::bail;
use serde::Deserialize;

/// `KTRA_MIRROR_*`: the pull-through mirror of an upstream sparse registry (crates.io by
/// default), served under `/mirror/` and at Ktra's `/ktra/api/v1/mirror/...` download route.
/// Needs the `crates-io-mirroring` cargo feature (on by default).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorConfig {
    /// `KTRA_MIRROR_ENABLED`: serve the mirror routes.
    #[serde(default)]
    pub enabled: bool,
    /// `KTRA_MIRROR_UPSTREAM_INDEX`: the upstream's sparse index (with or without `sparse+`);
    /// its `config.json` says where crate files download from.
    #[serde(default = "default_upstream_index")]
    pub upstream_index: String,
    /// `KTRA_MIRROR_FRESHNESS_SECS`: how long a cached index file is served without asking the
    /// upstream; after that it is revalidated with a conditional request.
    #[serde(default = "default_mirror_freshness_secs")]
    pub freshness_secs: u64,
    /// `KTRA_MIRROR_NOT_FOUND_SECS`: how long the upstream's "no such crate" is remembered.
    #[serde(default = "default_mirror_not_found_secs")]
    pub not_found_secs: u64,
    /// `KTRA_MIRROR_UPSTREAM_TIMEOUT_SECS`: the longest one upstream request may take (a whole
    /// crate fetch also stays within 90% of `KTRA_HTTP_REQUEST_TIMEOUT_SECS`).
    #[serde(default = "default_mirror_upstream_timeout_secs")]
    pub upstream_timeout_secs: u64,
    /// `KTRA_MIRROR_MAX_CRATE_BYTES`: the largest crate file fetched from the upstream.
    #[serde(default = "default_mirror_max_crate_bytes")]
    pub max_crate_bytes: u64,
    /// `KTRA_MIRROR_ALLOW`: comma-separated crate-name patterns (`*` and `?` wildcards, case
    /// and `-`/`_` ignored) that may be mirrored; empty allows every crate.
    #[serde(default)]
    pub allow: Vec<String>,
    /// `KTRA_MIRROR_DENY`: patterns that may not be mirrored; they win over `KTRA_MIRROR_ALLOW`.
    #[serde(default)]
    pub deny: Vec<String>,
    /// `KTRA_MIRROR_CACHE_DIR_PATH`: with the local blob store, the directory of the mirror's
    /// cache (Ktra's `crate_files_config.cache_dir_path`); other stores keep it under `mirror/`.
    #[serde(default = "default_mirror_cache_dir")]
    pub cache_dir_path: PathBuf,
    /// `KTRA_MIRROR_UPSTREAM_TOKEN`: the token of a private upstream (sent as cargo sends it,
    /// in `Authorization`), to its index and to downloads on the index's host only.
    pub upstream_token: Option<secrecy::SecretString>,
}

fn default_upstream_index() -> String {
    "https://index.crates.io/".to_owned()
}

fn default_mirror_freshness_secs() -> u64 {
    60
}

fn default_mirror_not_found_secs() -> u64 {
    30
}

fn default_mirror_upstream_timeout_secs() -> u64 {
    30
}

fn default_mirror_max_crate_bytes() -> u64 {
    64 * 1024 * 1024
}

fn default_mirror_cache_dir() -> PathBuf {
    PathBuf::from("./data/crates_io_caches")
}

impl MirrorConfig {
    /// Returns the upstream index URL without `sparse+`, ending with `/`.
    pub fn upstream_index_url(&self) -> String {
        let bare = self
            .upstream_index
            .trim()
            .strip_prefix("sparse+")
            .unwrap_or(self.upstream_index.trim());
        format!("{}/", bare.trim_end_matches('/'))
    }

    pub(super) fn validate(&self) -> anyhow::Result<()> {
        if self.enabled && !cfg!(feature = "crates-io-mirroring") {
            bail!(
                "setting KTRA_MIRROR_ENABLED: this build has no mirror (built without the crates-io-mirroring feature)"
            );
        }
        let upstream = self.upstream_index_url();
        match url::Url::parse(&upstream) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => {}
            _ => bail!("setting KTRA_MIRROR_UPSTREAM_INDEX: not an http(s) URL: {upstream}"),
        }
        if self.upstream_timeout_secs == 0 {
            bail!("setting KTRA_MIRROR_UPSTREAM_TIMEOUT_SECS: must be at least 1");
        }
        for (variable, patterns) in [
            ("KTRA_MIRROR_ALLOW", &self.allow),
            ("KTRA_MIRROR_DENY", &self.deny),
        ] {
            if let Some(bad) = patterns.iter().find(|pattern| {
                pattern.trim().is_empty()
                    || !pattern
                        .trim()
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '*' | '?'))
            }) {
                bail!(
                    "setting {variable}: `{bad}` is not a crate-name pattern (letters, digits, `-`, `_`, `*`, `?`)"
                );
            }
        }
        Ok(())
    }
}
