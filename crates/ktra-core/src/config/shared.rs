//! Settings both services read: what cargo is told about the registry (`KTRA_REGISTRY_*`) and
//! how the API reaches the indexer (`KTRA_INDEXER_*`).

use std::net::SocketAddr;

use serde::Deserialize;
use url::Url;

use super::{ConfigError, Settings};
use crate::index::IndexConfig;

/// The API's port when none is configured; also what `config.json` assumes when no public URL
/// is set.
pub const DEFAULT_API_PORT: u16 = 8000;

/// The indexer's gRPC port when none is configured.
pub const DEFAULT_INDEXER_PORT: u16 = 8001;

/// Route prefixes the download path may not take.
const RESERVED_PREFIXES: &[&str] = &[
    "api", "index", "ktra", "me", "livez", "readyz", "metrics", "crates", "users", "search",
    "static", "login", "logout", "account", "admin",
];

/// `KTRA_REGISTRY_*`: the URLs cargo sees, in `config.json` of both the sparse and the git
/// index.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// `KTRA_REGISTRY_PUBLIC_URL`: the URL cargo reaches the API at; `config.json`'s `api` and
    /// `dl` are built from it. Defaults to `http://127.0.0.1:{KTRA_HTTP_PORT}` in the API and
    /// `http://127.0.0.1:8000` in the indexer, so set it whenever the API is elsewhere.
    pub public_url: Option<Url>,
    /// `KTRA_REGISTRY_DL_PATH`: the download route's prefix, segments joined by `/` (Ktra's
    /// `crate_files_config.dl_path`, `["dl"]`).
    #[serde(default = "default_dl_path")]
    pub dl_path: String,
    /// `KTRA_REGISTRY_AUTH_REQUIRED`: a private registry (cargo's `auth-required`): every
    /// index file, download, search and API call needs a token, and `config.json` says so in
    /// both indexes. Set it the same way for the API and the indexer.
    #[serde(default)]
    pub auth_required: bool,
}

fn default_dl_path() -> String {
    "dl".to_owned()
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            public_url: None,
            dl_path: default_dl_path(),
            auth_required: false,
        }
    }
}

impl RegistryConfig {
    /// Reads and checks `KTRA_REGISTRY_*`.
    ///
    /// # Errors
    ///
    /// Fails naming the variable when the URL is not http(s) or the download path is empty,
    /// malformed, or collides with another route.
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        let config: Self = settings.section("KTRA_REGISTRY_")?;
        let invalid = |variable: &str, problem: &str| ConfigError::Setting {
            variable: variable.to_owned(),
            problem: problem.to_owned(),
        };
        if let Some(url) = &config.public_url
            && !matches!(url.scheme(), "http" | "https")
        {
            return Err(invalid(
                "KTRA_REGISTRY_PUBLIC_URL",
                "must be an http or https URL",
            ));
        }
        let segments = config.dl_segments();
        let Some(first) = segments.first() else {
            return Err(invalid(
                "KTRA_REGISTRY_DL_PATH",
                "must have at least one path segment",
            ));
        };
        if RESERVED_PREFIXES.contains(first) {
            return Err(invalid(
                "KTRA_REGISTRY_DL_PATH",
                "its first segment is used by another route",
            ));
        }
        if segments.iter().any(|segment| {
            !segment
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        }) {
            return Err(invalid(
                "KTRA_REGISTRY_DL_PATH",
                "segments may hold only ASCII letters, digits, `-`, `_` and `.`",
            ));
        }
        Ok(config)
    }

    /// Returns the public base URL without a trailing slash; `fallback_port` is used when no
    /// public URL is configured.
    pub fn public_base(&self, fallback_port: u16) -> String {
        match &self.public_url {
            Some(url) => url.as_str().trim_end_matches('/').to_owned(),
            None => format!("http://127.0.0.1:{fallback_port}"),
        }
    }

    /// Returns the download prefix's segments.
    pub fn dl_segments(&self) -> Vec<&str> {
        self.dl_path
            .split('/')
            .filter(|segment| !segment.is_empty())
            .collect()
    }

    /// Returns the index's `config.json`.
    pub fn index_config(&self, fallback_port: u16) -> IndexConfig {
        let base = self.public_base(fallback_port);
        IndexConfig {
            dl: format!("{base}/{}", self.dl_segments().join("/")),
            api: base,
            auth_required: self.auth_required,
        }
    }
}

/// `KTRA_INDEXER_*`: where the indexer listens and how the API talks to it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexerEndpointConfig {
    /// `KTRA_INDEXER_URL` (API): the indexer's gRPC endpoint, e.g. `http://127.0.0.1:8001`.
    /// Unset means no git index: the sparse index is the only one, and changes stay marked
    /// unacknowledged for an indexer configured later.
    pub url: Option<Url>,
    /// `KTRA_INDEXER_LISTEN` (indexer): the address its gRPC server binds.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// `KTRA_INDEXER_METRICS_LISTEN` (indexer): the address of its HTTP server (`/metrics`,
    /// `/livez`, `/readyz`).
    #[serde(default = "default_metrics_listen")]
    pub metrics_listen: SocketAddr,
    /// `KTRA_INDEXER_ACK_TIMEOUT_MS` (API): how long a publish or yank waits for the indexer to
    /// push before answering cargo anyway; `0` hands the change over without waiting.
    #[serde(default = "default_ack_timeout_ms")]
    pub ack_timeout_ms: u64,
    /// `KTRA_INDEXER_RESEND_INTERVAL_SECS` (API): how often unacknowledged changes are sent
    /// again.
    #[serde(default = "default_resend_interval_secs")]
    pub resend_interval_secs: u64,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], DEFAULT_INDEXER_PORT))
}

fn default_metrics_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], DEFAULT_INDEXER_PORT + 1))
}

fn default_ack_timeout_ms() -> u64 {
    2000
}

fn default_resend_interval_secs() -> u64 {
    15
}

impl IndexerEndpointConfig {
    /// Reads `KTRA_INDEXER_*`.
    ///
    /// # Errors
    ///
    /// Fails naming the variable when a value is not accepted.
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        let config: Self = settings.section("KTRA_INDEXER_")?;
        if let Some(url) = &config.url
            && !matches!(url.scheme(), "http" | "https")
        {
            return Err(ConfigError::Setting {
                variable: "KTRA_INDEXER_URL".to_owned(),
                problem: "must be an http or https URL".to_owned(),
            });
        }
        if config.resend_interval_secs == 0 {
            return Err(ConfigError::Setting {
                variable: "KTRA_INDEXER_RESEND_INTERVAL_SECS".to_owned(),
                problem: "must be at least 1".to_owned(),
            });
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_json_follows_the_public_url() {
        let settings = Settings::from_pairs([
            ("KTRA_REGISTRY_PUBLIC_URL", "https://crates.example.com/"),
            ("KTRA_REGISTRY_DL_PATH", "files/dl"),
        ]);
        let config = RegistryConfig::from_settings(&settings).unwrap();
        let json = config.index_config(8000);
        assert_eq!(json.api, "https://crates.example.com");
        assert_eq!(json.dl, "https://crates.example.com/files/dl");
        let default = RegistryConfig::from_settings(&Settings::default()).unwrap();
        assert_eq!(default.index_config(9000).dl, "http://127.0.0.1:9000/dl");
        assert!(!default.index_config(9000).auth_required);
        let private = RegistryConfig::from_settings(&Settings::from_pairs([(
            "KTRA_REGISTRY_AUTH_REQUIRED",
            "true",
        )]))
        .unwrap();
        assert!(private.index_config(9000).auth_required);
    }

    #[test]
    fn bad_values_are_named() {
        for (name, value) in [
            ("KTRA_REGISTRY_PUBLIC_URL", "ftp://h"),
            ("KTRA_REGISTRY_DL_PATH", "api"),
            ("KTRA_REGISTRY_DL_PATH", "/"),
            ("KTRA_REGISTRY_DL_PATH", "a b"),
        ] {
            let error = RegistryConfig::from_settings(&Settings::from_pairs([(name, value)]))
                .unwrap_err()
                .to_string();
            assert!(error.contains(name), "{error}");
        }
        for (name, value) in [
            ("KTRA_INDEXER_URL", "grpc://h"),
            ("KTRA_INDEXER_LISTEN", "nowhere"),
            ("KTRA_INDEXER_RESEND_INTERVAL_SECS", "0"),
        ] {
            let error =
                IndexerEndpointConfig::from_settings(&Settings::from_pairs([(name, value)]))
                    .unwrap_err()
                    .to_string();
            assert!(error.contains(name), "{error}");
        }
    }
}
