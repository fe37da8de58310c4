//! The API service's configuration, one flat struct per concern.
//!
//! Every field is one environment variable (`KTRA_<SECTION>_<FIELD>`); Ktra's TOML keys map onto
//! the same names (see [`ktra_core::config::KTRA_TOML_KEYS`]). The README lists them all.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use anyhow::{Context, bail};
use ktra_core::config::{ConfigError, Settings};
use serde::Deserialize;
use url::Url;

/// `KTRA_HTTP_*`: the listener and the URLs cargo is told about.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// `KTRA_HTTP_ADDRESS`: the address to listen on (Ktra's `server_config.address`).
    #[serde(default = "default_address")]
    pub address: IpAddr,
    /// `KTRA_HTTP_PORT`: the port to listen on (Ktra's `server_config.port`).
    #[serde(default = "default_port")]
    pub port: u16,
    /// `KTRA_HTTP_PUBLIC_URL`: the URL cargo reaches this service at; `config.json`'s `api` and
    /// `dl` are built from it. Defaults to `http://127.0.0.1:{port}`.
    #[serde(default)]
    pub public_url: Option<Url>,
    /// `KTRA_HTTP_DL_PATH`: the download route's prefix, segments joined by `/` (Ktra's
    /// `crate_files_config.dl_path`, `["dl"]`).
    #[serde(default = "default_dl_path")]
    pub dl_path: String,
    /// `KTRA_HTTP_MAX_PUBLISH_BYTES`: the largest publish body accepted (metadata and crate).
    #[serde(default = "default_max_publish_bytes")]
    pub max_publish_bytes: u64,
    /// `KTRA_HTTP_MAX_UNPACKED_BYTES`: the largest total size of a crate's unpacked files.
    #[serde(default = "default_max_unpacked_bytes")]
    pub max_unpacked_bytes: u64,
    /// `KTRA_HTTP_REQUEST_TIMEOUT_SECS`: the longest a request may take before it is answered
    /// with 408, also the bound on draining requests at shutdown.
    #[serde(default = "default_request_timeout_secs")]
    pub request_timeout_secs: u64,
}

fn default_address() -> IpAddr {
    IpAddr::V4(Ipv4Addr::UNSPECIFIED)
}

fn default_port() -> u16 {
    8000
}

fn default_dl_path() -> String {
    "dl".to_owned()
}

fn default_max_publish_bytes() -> u64 {
    32 * 1024 * 1024
}

fn default_max_unpacked_bytes() -> u64 {
    512 * 1024 * 1024
}

fn default_request_timeout_secs() -> u64 {
    60
}

impl HttpConfig {
    /// Returns the socket address to bind.
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.address, self.port)
    }

    /// Returns the public base URL without a trailing slash.
    pub fn public_base(&self) -> String {
        match &self.public_url {
            Some(url) => url.as_str().trim_end_matches('/').to_owned(),
            None => format!("http://127.0.0.1:{}", self.port),
        }
    }

    /// Returns the download prefix's segments.
    pub fn dl_segments(&self) -> Vec<&str> {
        self.dl_path
            .split('/')
            .filter(|segment| !segment.is_empty())
            .collect()
    }

    fn validate(&self) -> anyhow::Result<()> {
        if let Some(url) = &self.public_url
            && !matches!(url.scheme(), "http" | "https")
        {
            bail!("setting KTRA_HTTP_PUBLIC_URL: must be an http or https URL");
        }
        let segments = self.dl_segments();
        if segments.is_empty() {
            bail!("setting KTRA_HTTP_DL_PATH: must have at least one path segment");
        }
        let reserved = ["api", "index", "ktra", "me", "livez", "readyz"];
        if reserved.contains(&segments[0]) {
            bail!(
                "setting KTRA_HTTP_DL_PATH: `{}` is used by another route",
                segments[0]
            );
        }
        if segments.iter().any(|segment| {
            !segment
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        }) {
            bail!(
                "setting KTRA_HTTP_DL_PATH: segments may hold only ASCII letters, digits, `-`, `_` and `.`"
            );
        }
        if self.max_publish_bytes < 1024 {
            bail!("setting KTRA_HTTP_MAX_PUBLISH_BYTES: must be at least 1024");
        }
        if self.request_timeout_secs == 0 {
            bail!("setting KTRA_HTTP_REQUEST_TIMEOUT_SECS: must be at least 1");
        }
        Ok(())
    }
}

/// Which metadata store to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DbKind {
    /// The embedded redb file under `KTRA_DB_DIR_PATH`.
    Embedded,
}

/// `KTRA_DB_*`: the metadata store.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DbConfig {
    /// `KTRA_DB_KIND`: `embedded` (default).
    #[serde(default = "default_db_kind")]
    pub kind: DbKind,
    /// `KTRA_DB_DIR_PATH`: the embedded database's directory (Ktra's `db_config.db_dir_path`).
    #[serde(default = "default_db_dir")]
    pub dir_path: PathBuf,
    /// `KTRA_DB_REDIS_URL`: accepted for Ktra compatibility (Ktra's `db_config.redis_url`).
    #[serde(default)]
    pub redis_url: Option<String>,
    /// `KTRA_DB_MONGODB_URL`: accepted for Ktra compatibility; MongoDB is not supported.
    #[serde(default)]
    pub mongodb_url: Option<String>,
    /// `KTRA_DB_LOGIN_PREFIX`: the prefix Ktra put before user names in owner logins
    /// (`ktra-secure-auth:`); owner commands accept names with or without it.
    #[serde(default = "default_login_prefix")]
    pub login_prefix: String,
}

fn default_db_kind() -> DbKind {
    DbKind::Embedded
}

fn default_db_dir() -> PathBuf {
    PathBuf::from("./data/db")
}

fn default_login_prefix() -> String {
    "ktra-secure-auth:".to_owned()
}

/// Which blob store holds crate files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlobKind {
    /// A local directory, `KTRA_BLOB_DIR_PATH`.
    Local,
}

/// `KTRA_BLOB_*`: where crate files live.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlobConfig {
    /// `KTRA_BLOB_KIND`: `local` (default).
    #[serde(default = "default_blob_kind")]
    pub kind: BlobKind,
    /// `KTRA_BLOB_DIR_PATH`: the local directory (Ktra's `crate_files_config.dl_dir_path`).
    #[serde(default = "default_blob_dir")]
    pub dir_path: PathBuf,
}

fn default_blob_kind() -> BlobKind {
    BlobKind::Local
}

fn default_blob_dir() -> PathBuf {
    PathBuf::from("./data/crates")
}

/// `KTRA_AUTH_*`: passwords and tokens.
///
/// Passwords are hashed with Argon2id. The defaults are OWASP's recommended minimum for
/// Argon2id (19 MiB of memory, 2 passes, 1 lane): about 20 ms of one core per hash here, which
/// keeps offline guessing of a leaked hash slow while letting a two-core machine serve logins
/// without starving publishes. Raise the memory on larger machines.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// `KTRA_AUTH_ARGON2_MEMORY_KIB`: memory per hash, in KiB.
    #[serde(default = "default_argon2_memory_kib")]
    pub argon2_memory_kib: u32,
    /// `KTRA_AUTH_ARGON2_ITERATIONS`: passes over the memory.
    #[serde(default = "default_argon2_iterations")]
    pub argon2_iterations: u32,
    /// `KTRA_AUTH_ARGON2_PARALLELISM`: lanes per hash.
    #[serde(default = "default_argon2_parallelism")]
    pub argon2_parallelism: u32,
    /// `KTRA_AUTH_HASH_CONCURRENCY`: how many hashes may run at once; further logins wait.
    /// Defaults to half the CPUs (at least one), so a login flood leaves cores for publishes.
    #[serde(default)]
    pub hash_concurrency: Option<usize>,
    /// `KTRA_AUTH_MIN_PASSWORD_LEN`: the shortest password accepted.
    #[serde(default = "default_min_password_len")]
    pub min_password_len: usize,
}

fn default_argon2_memory_kib() -> u32 {
    19 * 1024
}

fn default_argon2_iterations() -> u32 {
    2
}

fn default_argon2_parallelism() -> u32 {
    1
}

fn default_min_password_len() -> usize {
    8
}

impl AuthConfig {
    /// Returns how many password hashes may run at once.
    pub fn hash_permits(&self) -> usize {
        self.hash_concurrency.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|cores| cores.get() / 2)
                .unwrap_or(1)
                .max(1)
        })
    }
}

/// The API service's whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The listener and public URLs.
    pub http: HttpConfig,
    /// The metadata store.
    pub db: DbConfig,
    /// The blob store.
    pub blob: BlobConfig,
    /// Passwords and tokens.
    pub auth: AuthConfig,
}

impl Config {
    /// Reads and checks every section.
    ///
    /// # Errors
    ///
    /// Fails naming the first setting that is missing, malformed or inconsistent.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let config = Self {
            http: section(settings, "KTRA_HTTP_")?,
            db: section(settings, "KTRA_DB_")?,
            blob: section(settings, "KTRA_BLOB_")?,
            auth: section(settings, "KTRA_AUTH_")?,
        };
        config.http.validate()?;
        if config.auth.argon2_memory_kib < 8 * config.auth.argon2_parallelism {
            bail!("setting KTRA_AUTH_ARGON2_MEMORY_KIB: must be at least 8 KiB per lane");
        }
        Ok(config)
    }
}

fn section<T: serde::de::DeserializeOwned>(settings: &Settings, prefix: &str) -> anyhow::Result<T> {
    settings
        .section(prefix)
        .map_err(|error: ConfigError| anyhow::Error::new(error))
        .with_context(|| format!("invalid configuration in {prefix}*"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_no_settings() {
        let config = Config::from_settings(&Settings::default()).unwrap();
        assert_eq!(config.http.port, 8000);
        assert_eq!(config.http.public_base(), "http://127.0.0.1:8000");
        assert_eq!(config.http.dl_segments(), ["dl"]);
        assert_eq!(config.db.kind, DbKind::Embedded);
        assert!(config.auth.hash_permits() >= 1);
    }

    #[test]
    fn bad_settings_are_named() {
        for (name, value) in [
            ("KTRA_HTTP_PORT", "x"),
            ("KTRA_HTTP_PUBLIC_URL", "ftp://h"),
            ("KTRA_HTTP_DL_PATH", "api"),
            ("KTRA_DB_KIND", "oracle"),
            ("KTRA_BLOB_KIND", "tape"),
        ] {
            let error = Config::from_settings(&Settings::from_pairs([(name, value)])).unwrap_err();
            assert!(format!("{error:#}").contains(name), "{name}: {error:#}");
        }
    }

    #[test]
    fn public_url_loses_its_trailing_slash() {
        let settings =
            Settings::from_pairs([("KTRA_HTTP_PUBLIC_URL", "https://crates.example.com/")]);
        let config = Config::from_settings(&settings).unwrap();
        assert_eq!(config.http.public_base(), "https://crates.example.com");
    }
}
