//! The API service's configuration, one flat struct per concern.
//!
//! Every field is one environment variable (`KTRA_<SECTION>_<FIELD>`); Ktra's TOML keys map onto
//! the same names (see [`ktra_core::config::KTRA_TOML_KEYS`]). The README lists them all.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::{Context, bail};
use ktra_core::config::{
    ConfigError, DEFAULT_API_PORT, IndexerEndpointConfig, RegistryConfig, Settings, setting_name,
};
use serde::Deserialize;

use ktra_publish::PublishLimits;

mod mirror;
mod storage;

pub use mirror::MirrorConfig;
pub use storage::{BlobConfig, BlobKind, DbConfig, DbKind, S3Config};

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
    DEFAULT_API_PORT
}

fn default_max_publish_bytes() -> u64 {
    32 * 1024 * 1024
}

fn default_max_unpacked_bytes() -> u64 {
    PublishLimits::DEFAULT.max_unpacked_bytes
}

fn default_request_timeout_secs() -> u64 {
    60
}

impl HttpConfig {
    /// Returns the socket address to bind.
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.address, self.port)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.max_publish_bytes < 1024 {
            bail!("setting KTRA_HTTP_MAX_PUBLISH_BYTES: must be at least 1024");
        }
        if self.request_timeout_secs == 0 {
            bail!("setting KTRA_HTTP_REQUEST_TIMEOUT_SECS: must be at least 1");
        }
        Ok(())
    }
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
    pub hash_concurrency: Option<usize>,
    /// `KTRA_AUTH_MIN_PASSWORD_LEN`: the shortest password accepted.
    #[serde(default = "default_min_password_len")]
    pub min_password_len: usize,
    /// `KTRA_AUTH_REGISTRATION`: `open` (Ktra's behaviour: anyone may create a user), `closed`
    /// (only an administrator, or the bootstrap token, creates users) or `invitation` (as
    /// closed, and whoever holds an administrator's single-use invitation registers).
    #[serde(default)]
    pub registration: Registration,
    /// `KTRA_AUTH_ADMINS`: comma-separated user names with the administrator role.
    #[serde(default)]
    pub admins: Vec<String>,
    /// `KTRA_AUTH_BOOTSTRAP_TOKEN`: a secret that creates users while registration is closed,
    /// for the first administrator; remove it once that user exists.
    pub bootstrap_token: Option<secrecy::SecretString>,
}

/// Who may create users.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Registration {
    /// Anyone.
    #[default]
    Open,
    /// Administrators, and holders of the bootstrap token.
    Closed,
    /// As closed, and holders of an invitation.
    Invitation,
}

impl AuthConfig {
    /// Returns whether `name` has the administrator role (names compare regardless of case,
    /// as user names do).
    pub fn is_admin(&self, name: &str) -> bool {
        self.admins
            .iter()
            .any(|admin| admin.trim().eq_ignore_ascii_case(name))
    }
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
    /// The listener.
    pub http: HttpConfig,
    /// What cargo is told about the registry.
    pub registry: RegistryConfig,
    /// How to reach the git indexer.
    pub indexer: IndexerEndpointConfig,
    /// The metadata store.
    pub db: DbConfig,
    /// The blob store.
    pub blob: BlobConfig,
    /// The S3 bucket.
    pub s3: S3Config,
    /// Passwords and tokens.
    pub auth: AuthConfig,
    /// Rate limits.
    pub limits: LimitsConfig,
    /// The pull-through mirror of an upstream registry.
    pub mirror: MirrorConfig,
    /// The pages people browse.
    pub ui: UiConfig,
}

/// `KTRA_UI_*`: the pages people browse (crates, READMEs, versions, owners).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UiConfig {
    /// `KTRA_UI_ENABLED`: serve the pages; off, only cargo's and Ktra's APIs answer.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// `KTRA_UI_REGISTRY_NAME`: the name the pages use for this registry in the cargo
    /// configuration and commands they show (`cargo add foo --registry ktra`).
    #[serde(default = "default_registry_name")]
    pub registry_name: String,
    /// `KTRA_UI_SESSION_HOURS`: how long a sign-in to the pages lasts.
    #[serde(default = "default_session_hours")]
    pub session_hours: u32,
}

impl UiConfig {
    /// The environment variable cargo reads this registry's token from
    /// (`CARGO_REGISTRIES_KTRA_TOKEN` for `ktra`).
    pub fn token_variable(&self) -> String {
        format!(
            "CARGO_REGISTRIES_{}_TOKEN",
            self.registry_name.to_ascii_uppercase().replace('-', "_")
        )
    }
}

fn default_session_hours() -> u32 {
    12
}

fn default_true() -> bool {
    true
}

fn default_registry_name() -> String {
    "ktra".to_owned()
}

/// `KTRA_LIMITS_*`: rate limits on the requests a flood would target, counted in the metadata
/// store so every replica shares them. `0` turns a limit off. A refused request gets `429`
/// with `Retry-After`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// `KTRA_LIMITS_LOGIN_PER_IP_PER_MINUTE`: login and change-password attempts per client
    /// address.
    #[serde(default = "default_login_per_ip")]
    pub login_per_ip_per_minute: u32,
    /// `KTRA_LIMITS_LOGIN_PER_USER_PER_MINUTE`: login and change-password attempts per user
    /// name, whether or not the user exists.
    #[serde(default = "default_login_per_user")]
    pub login_per_user_per_minute: u32,
    /// `KTRA_LIMITS_REGISTER_PER_IP_PER_HOUR`: new users per client address.
    #[serde(default = "default_register_per_ip")]
    pub register_per_ip_per_hour: u32,
    /// `KTRA_LIMITS_PUBLISH_PER_USER_PER_MINUTE`: publishes per user.
    #[serde(default = "default_publish_per_user")]
    pub publish_per_user_per_minute: u32,
    /// `KTRA_LIMITS_PUBLISH_PER_IP_PER_MINUTE`: publish requests that fail authentication, per
    /// client address (authenticated publishes count per user).
    #[serde(default = "default_publish_per_ip")]
    pub publish_per_ip_per_minute: u32,
    /// `KTRA_LIMITS_CLIENT_IP_HEADER`: behind a proxy, the header it puts the client's address
    /// in (`x-forwarded-for`: its last entry, the one the proxy added; `x-real-ip`). Unset, the
    /// connection's peer address is the client. Set it only when every request passes the
    /// proxy, or clients can pick their own address.
    pub client_ip_header: Option<String>,
    /// `KTRA_LIMITS_HEADER_READ_TIMEOUT_SECS`: the time a client has to send a request head;
    /// slower connections are closed.
    #[serde(default = "default_header_read_timeout_secs")]
    pub header_read_timeout_secs: u64,
    /// `KTRA_LIMITS_MAX_HEADER_BYTES`: the largest request head (HTTP/1.1) or header list
    /// (HTTP/2); at least 8192.
    #[serde(default = "default_max_header_bytes")]
    pub max_header_bytes: usize,
    /// `KTRA_LIMITS_MAX_HEADERS`: the most header fields in one HTTP/1.1 request.
    #[serde(default = "default_max_headers")]
    pub max_headers: usize,
    /// `KTRA_LIMITS_MAX_DEPENDENCIES`: dependencies per published version (crates.io: 500).
    #[serde(default = "default_max_dependencies")]
    pub max_dependencies: usize,
    /// `KTRA_LIMITS_MAX_FEATURES`: features per published version (crates.io: 300).
    #[serde(default = "default_max_features")]
    pub max_features: usize,
    /// `KTRA_LIMITS_MAX_FEATURE_VALUES`: what one feature may enable (crates.io: 300).
    #[serde(default = "default_max_feature_values")]
    pub max_feature_values: usize,
    /// `KTRA_LIMITS_MAX_DESCRIPTION_BYTES`: the longest description.
    #[serde(default = "default_max_description_bytes")]
    pub max_description_bytes: usize,
    /// `KTRA_LIMITS_MAX_CRATE_FILES`: entries in a `.crate` archive.
    #[serde(default = "default_max_crate_files")]
    pub max_crate_files: usize,
}

fn default_header_read_timeout_secs() -> u64 {
    10
}

fn default_max_header_bytes() -> usize {
    64 * 1024
}

fn default_max_headers() -> usize {
    100
}

fn default_max_dependencies() -> usize {
    PublishLimits::DEFAULT.max_dependencies
}

fn default_max_features() -> usize {
    PublishLimits::DEFAULT.max_features
}

fn default_max_feature_values() -> usize {
    PublishLimits::DEFAULT.max_feature_values
}

fn default_max_description_bytes() -> usize {
    PublishLimits::DEFAULT.max_description_bytes
}

fn default_max_crate_files() -> usize {
    PublishLimits::DEFAULT.max_files
}

impl LimitsConfig {
    fn validate(&self) -> anyhow::Result<()> {
        if let Some(header) = &self.client_ip_header
            && http::HeaderName::from_bytes(header.as_bytes()).is_err()
        {
            bail!("setting KTRA_LIMITS_CLIENT_IP_HEADER: not a header name");
        }
        if self.header_read_timeout_secs == 0 {
            bail!("setting KTRA_LIMITS_HEADER_READ_TIMEOUT_SECS: must be at least 1");
        }
        if self.max_header_bytes < 8192 {
            bail!("setting KTRA_LIMITS_MAX_HEADER_BYTES: must be at least 8192");
        }
        if self.max_headers == 0 {
            bail!("setting KTRA_LIMITS_MAX_HEADERS: must be at least 1");
        }
        Ok(())
    }
}

fn default_login_per_ip() -> u32 {
    30
}

fn default_login_per_user() -> u32 {
    10
}

fn default_register_per_ip() -> u32 {
    10
}

fn default_publish_per_user() -> u32 {
    300
}

fn default_publish_per_ip() -> u32 {
    600
}

impl Config {
    /// The publish limits these settings set (`KTRA_HTTP_MAX_UNPACKED_BYTES`, `KTRA_LIMITS_MAX_*`).
    pub fn publish_limits(&self) -> PublishLimits {
        let limits = &self.limits;
        PublishLimits {
            max_unpacked_bytes: self.http.max_unpacked_bytes,
            max_files: limits.max_crate_files,
            max_dependencies: limits.max_dependencies,
            max_features: limits.max_features,
            max_feature_values: limits.max_feature_values,
            max_description_bytes: limits.max_description_bytes,
        }
    }

    /// Returns the public base URL cargo uses, without a trailing slash.
    pub fn public_base(&self) -> String {
        self.registry.public_base(self.http.port)
    }

    /// Reads and checks every section.
    ///
    /// # Errors
    ///
    /// Fails naming the first setting that is missing, malformed or inconsistent.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let config = Self {
            http: section(settings, "KTRA_HTTP_")?,
            registry: RegistryConfig::from_settings(settings)?,
            indexer: IndexerEndpointConfig::from_settings(settings)?,
            db: section(settings, "KTRA_DB_")?,
            blob: section(settings, "KTRA_BLOB_")?,
            s3: section(settings, "KTRA_S3_")?,
            auth: section(settings, "KTRA_AUTH_")?,
            limits: section(settings, "KTRA_LIMITS_")?,
            mirror: section(settings, "KTRA_MIRROR_")?,
            ui: section(settings, "KTRA_UI_")?,
        };
        if settings.is_set("KTRA_DB_MONGODB_URL") {
            bail!(
                "setting {}: this registry has no MongoDB store; run with KTRA_DB_KIND=embedded \
                 or redis and remove the setting. To bring a Ktra MongoDB's users and crates \
                 here, run `ktra-api import ktra <ktra.toml> --db mongodb` once",
                setting_name("KTRA_DB_MONGODB_URL")
            );
        }
        if config.ui.session_hours == 0 {
            bail!("setting KTRA_UI_SESSION_HOURS: a sign-in must last at least one hour");
        }
        config.limits.validate()?;
        config.mirror.validate()?;
        if config.mirror.enabled && config.registry.dl_segments().first() == Some(&"mirror") {
            bail!(
                "setting KTRA_REGISTRY_DL_PATH: paths under mirror/ belong to the mirror (KTRA_MIRROR_ENABLED)"
            );
        }
        config.http.validate()?;
        if config.blob.kind == BlobKind::S3 && config.s3.bucket.is_none() {
            bail!("setting KTRA_S3_BUCKET: required when KTRA_BLOB_KIND=s3");
        }
        if config.s3.access_key_id.is_some() != config.s3.secret_access_key.is_some() {
            bail!(
                "settings KTRA_S3_ACCESS_KEY_ID and KTRA_S3_SECRET_ACCESS_KEY: set both or neither"
            );
        }
        if config.blob.kind == BlobKind::Url && config.blob.url.is_none() {
            bail!("setting KTRA_BLOB_URL: required when KTRA_BLOB_KIND=url");
        }
        if config.db.sentinels().iter().any(|address| {
            address
                .rsplit_once(':')
                .is_none_or(|(_, port)| port.parse::<u16>().is_err())
        }) {
            bail!("setting KTRA_DB_REDIS_SENTINELS: expected host:port[,host:port...]");
        }
        if config.db.redis_wait_timeout_ms == 0 || config.db.redis_wait_timeout_ms > 60_000 {
            // Redis reads a `WAIT` timeout of 0 as "forever".
            bail!("setting KTRA_DB_REDIS_WAIT_TIMEOUT_MS: must be between 1 and 60000");
        }
        if config.db.key_prefix.is_empty() || config.db.key_prefix.contains(char::is_whitespace) {
            bail!("setting KTRA_DB_KEY_PREFIX: must be non-empty and without spaces");
        }
        if config.auth.argon2_memory_kib < 8 * config.auth.argon2_parallelism {
            bail!("setting KTRA_AUTH_ARGON2_MEMORY_KIB: must be at least 8 KiB per lane");
        }
        Ok(config)
    }
}

/// Settings that were given but that this configuration does not use, each with what to do;
/// `ktra-api` logs them at start instead of ignoring them silently.
pub fn unused_settings(settings: &Settings, config: &Config) -> Vec<String> {
    let mut unused = Vec::new();
    if config.db.kind != DbKind::Redis {
        for variable in [
            "KTRA_DB_REDIS_URL",
            "KTRA_DB_REDIS_SENTINELS",
            "KTRA_DB_REDIS_WAIT_REPLICAS",
        ] {
            if settings.is_set(variable) {
                unused.push(format!(
                    "{} is set but the metadata store is {:?}: it is not used; set \
                     KTRA_DB_KIND=redis to use Redis",
                    setting_name(variable),
                    config.db.kind
                ));
            }
        }
    }
    if config.indexer.url.is_none() && settings.is_set("KTRA_GIT_REMOTE_URL") {
        unused.push(format!(
            "{} is set but KTRA_INDEXER_URL is not: this API hands nothing to an indexer, so the \
             git index never changes (cargo reading it waits for new versions in vain); start \
             ktra-indexer and set KTRA_INDEXER_URL",
            setting_name("KTRA_GIT_REMOTE_URL")
        ));
    }
    if config.blob.kind == BlobKind::Local
        && let Some(warning) = crate::ktra_data::crate_files_warning(&config.blob.dir_path)
    {
        unused.push(warning);
    }
    unused
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
        assert_eq!(config.public_base(), "http://127.0.0.1:8000");
        assert_eq!(config.registry.dl_segments(), ["dl"]);
        assert_eq!(config.db.kind, DbKind::Embedded);
        assert!(config.auth.hash_permits() >= 1);
    }

    #[test]
    fn settings_that_would_be_ignored_are_refused_or_named() {
        let mongo = Settings::from_pairs([("KTRA_DB_MONGODB_URL", "mongodb://db")]);
        let error = format!("{:#}", Config::from_settings(&mongo).unwrap_err());
        assert!(
            error.contains("KTRA_DB_MONGODB_URL (db_config.mongodb_url)")
                && error.contains("KTRA_DB_KIND")
                && error.contains("ktra-api import ktra"),
            "{error}"
        );

        let settings = Settings::from_pairs([
            ("KTRA_DB_REDIS_URL", "redis://cache"),
            ("KTRA_GIT_REMOTE_URL", "https://git.example/index.git"),
        ]);
        let config = Config::from_settings(&settings).unwrap();
        let unused = unused_settings(&settings, &config);
        assert_eq!(unused.len(), 2, "{unused:?}");
        assert!(
            unused[0].contains("KTRA_DB_REDIS_URL (db_config.redis_url)"),
            "{unused:?}"
        );
        assert!(unused[0].contains("KTRA_DB_KIND=redis"), "{unused:?}");
        assert!(
            unused[1].contains("KTRA_GIT_REMOTE_URL (index_config.remote_url)"),
            "{unused:?}"
        );
        assert!(unused[1].contains("KTRA_INDEXER_URL"), "{unused:?}");

        let used = Settings::from_pairs([
            ("KTRA_DB_KIND", "redis"),
            ("KTRA_DB_REDIS_URL", "redis://cache"),
            ("KTRA_GIT_REMOTE_URL", "https://git.example/index.git"),
            ("KTRA_INDEXER_URL", "http://indexer:8001"),
        ]);
        let config = Config::from_settings(&used).unwrap();
        assert!(unused_settings(&used, &config).is_empty());
    }

    #[test]
    fn bad_settings_are_named() {
        for (name, value) in [
            ("KTRA_HTTP_PORT", "x"),
            ("KTRA_REGISTRY_PUBLIC_URL", "ftp://h"),
            ("KTRA_REGISTRY_DL_PATH", "api"),
            ("KTRA_INDEXER_ACK_TIMEOUT_MS", "soon"),
            ("KTRA_DB_KIND", "oracle"),
            ("KTRA_BLOB_KIND", "tape"),
            ("KTRA_BLOB_KIND", "s3"),
            ("KTRA_S3_ALLOW_HTTP", "maybe"),
            ("KTRA_MIRROR_ENABLED", "perhaps"),
            ("KTRA_MIRROR_UPSTREAM_INDEX", "ftp://example.com/"),
            ("KTRA_MIRROR_UPSTREAM_TIMEOUT_SECS", "0"),
            ("KTRA_MIRROR_ALLOW", "serde,a/b"),
            ("KTRA_MIRROR_DENY", "x y"),
            ("KTRA_MIRROR_FRESHNESS", "1"),
        ] {
            let error = Config::from_settings(&Settings::from_pairs([(name, value)])).unwrap_err();
            assert!(format!("{error:#}").contains(name), "{name}: {error:#}");
        }
    }

    #[test]
    fn mirror_settings_parse() {
        let config = Config::from_settings(&Settings::default()).unwrap();
        assert!(!config.mirror.enabled);
        assert_eq!(
            config.mirror.upstream_index_url(),
            "https://index.crates.io/"
        );
        let settings = Settings::from_pairs([
            (
                "KTRA_MIRROR_UPSTREAM_INDEX",
                "sparse+http://127.0.0.1:9/index",
            ),
            ("KTRA_MIRROR_ALLOW", "serde*,tokio"),
            ("KTRA_MIRROR_DENY", "serde_json"),
            ("KTRA_MIRROR_FRESHNESS_SECS", "5"),
        ]);
        let config = Config::from_settings(&settings).unwrap();
        assert_eq!(
            config.mirror.upstream_index_url(),
            "http://127.0.0.1:9/index/"
        );
        assert_eq!(config.mirror.allow, ["serde*", "tokio"]);
        assert_eq!(config.mirror.deny, ["serde_json"]);
        assert_eq!(config.mirror.freshness_secs, 5);
        let clash = Settings::from_pairs([
            ("KTRA_MIRROR_ENABLED", "true"),
            ("KTRA_REGISTRY_DL_PATH", "mirror/dl"),
        ]);
        let error = Config::from_settings(&clash).unwrap_err();
        assert!(
            format!("{error:#}").contains("KTRA_REGISTRY_DL_PATH"),
            "{error:#}"
        );
    }

    #[test]
    fn public_url_defaults_to_the_listening_port() {
        let settings = Settings::from_pairs([("KTRA_HTTP_PORT", "9000")]);
        let config = Config::from_settings(&settings).unwrap();
        assert_eq!(config.public_base(), "http://127.0.0.1:9000");
    }
}
