//! The API service's configuration, one flat struct per concern.
//!
//! Every field is one environment variable (`KTRA_<SECTION>_<FIELD>`); Ktra's TOML keys map onto
//! the same names (see [`ktra_core::config::KTRA_TOML_KEYS`]). The README lists them all.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use anyhow::{Context, bail};
use ktra_core::config::{ConfigError, Settings, setting_name};
use ktra_core::registry::{DEFAULT_API_PORT, IndexerEndpointConfig, RegistryConfig};
use serde::Deserialize;

use ktra_publish::PublishLimits;

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

/// Which metadata store to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DbKind {
    /// The embedded redb file under `KTRA_DB_DIR_PATH`: one API process.
    Embedded,
    /// Redis at `KTRA_DB_REDIS_URL`: any number of API replicas.
    Redis,
}

/// `KTRA_DB_*`: the metadata store.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DbConfig {
    /// `KTRA_DB_KIND`: `embedded` (default) or `redis`.
    #[serde(default = "default_db_kind")]
    pub kind: DbKind,
    /// `KTRA_DB_DIR_PATH`: the embedded database's directory (Ktra's `db_config.db_dir_path`).
    #[serde(default = "default_db_dir")]
    pub dir_path: PathBuf,
    /// `KTRA_DB_REDIS_URL`: the Redis URL (Ktra's `db_config.redis_url`): `redis://` or
    /// `rediss://` (TLS), with `user:password@` when Redis asks for them.
    #[serde(default = "default_redis_url")]
    pub redis_url: String,
    /// `KTRA_DB_KEY_PREFIX`: the prefix of every Redis key, so registries can share a Redis.
    #[serde(default = "default_key_prefix")]
    pub key_prefix: String,
    /// `KTRA_DB_REDIS_SENTINELS`: Redis Sentinel addresses, `host:port,host:port`. Set, the
    /// primary is the one Sentinel names and a failover is followed without a restart;
    /// `KTRA_DB_REDIS_URL` then gives only credentials, database and TLS.
    #[serde(default)]
    pub redis_sentinels: Option<String>,
    /// `KTRA_DB_REDIS_SENTINEL_MASTER`: the name Sentinel knows the primary by.
    #[serde(default = "default_sentinel_master")]
    pub redis_sentinel_master: String,
    /// `KTRA_DB_REDIS_SENTINEL_USERNAME`: the user name Sentinel asks for, if it does.
    #[serde(default)]
    pub redis_sentinel_username: Option<String>,
    /// `KTRA_DB_REDIS_SENTINEL_PASSWORD`: the password Sentinel asks for, if it does.
    #[serde(default)]
    pub redis_sentinel_password: Option<secrecy::SecretString>,
    /// `KTRA_DB_REDIS_WAIT_REPLICAS`: how many Redis replicas must hold a change before it is
    /// answered (`WAIT`); 0 waits for none. With 1, a failover loses no answered publish.
    #[serde(default)]
    pub redis_wait_replicas: u32,
    /// `KTRA_DB_REDIS_WAIT_TIMEOUT_MS`: how long a change waits for them; a change they do not
    /// confirm in time is answered 503 (the client's retry then succeeds without change).
    #[serde(default = "default_wait_timeout_ms")]
    pub redis_wait_timeout_ms: u64,
    /// `KTRA_DB_MONGODB_URL` (Ktra's `db_config.mongodb_url`): refused at start with a message
    /// saying what to do, since this registry has no MongoDB store.
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

fn default_redis_url() -> String {
    "redis://localhost".to_owned()
}

fn default_key_prefix() -> String {
    "ktra".to_owned()
}

fn default_sentinel_master() -> String {
    "mymaster".to_owned()
}

fn default_wait_timeout_ms() -> u64 {
    1000
}

impl DbConfig {
    /// Returns the Sentinel addresses, empty when Sentinel is not used.
    pub fn sentinels(&self) -> Vec<String> {
        self.redis_sentinels
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|address| !address.is_empty())
            .map(str::to_owned)
            .collect()
    }
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
    /// An S3 bucket, `KTRA_S3_*`.
    S3,
    /// Any `object_store` backend named by `KTRA_BLOB_URL` (`gs://`, `az://`, ...).
    Url,
}

/// `KTRA_BLOB_*`: where crate files live.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlobConfig {
    /// `KTRA_BLOB_KIND`: `local` (default), `s3` or `url`.
    #[serde(default = "default_blob_kind")]
    pub kind: BlobKind,
    /// `KTRA_BLOB_DIR_PATH`: the local directory (Ktra's `crate_files_config.dl_dir_path`).
    #[serde(default = "default_blob_dir")]
    pub dir_path: PathBuf,
    /// `KTRA_BLOB_URL`: the store's URL when the kind is `url`, e.g. `gs://bucket/crates`;
    /// credentials come from the backend's standard variables (`GOOGLE_*`, `AZURE_*`).
    #[serde(default)]
    pub url: Option<String>,
}

/// `KTRA_S3_*`: the S3 bucket when `KTRA_BLOB_KIND=s3`. Credentials come from the standard
/// `AWS_*` variables and the AWS credential chain (web identity, container and instance
/// metadata), so an IAM role needs no keys here.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// `KTRA_S3_BUCKET`: the bucket.
    #[serde(default)]
    pub bucket: Option<String>,
    /// `KTRA_S3_REGION`: the region.
    #[serde(default = "default_region")]
    pub region: String,
    /// `KTRA_S3_ENDPOINT`: the endpoint of an S3-compatible server; unset for AWS.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// `KTRA_S3_ALLOW_HTTP`: allow a plain `http://` endpoint.
    #[serde(default)]
    pub allow_http: bool,
    /// `KTRA_S3_VIRTUAL_HOSTED_STYLE`: `bucket.host` requests instead of `host/bucket`.
    #[serde(default)]
    pub virtual_hosted_style: bool,
    /// `KTRA_S3_PREFIX`: a key prefix inside the bucket.
    #[serde(default)]
    pub prefix: Option<String>,
    /// `KTRA_S3_ACCESS_KEY_ID`: a static access key; unset (preferred) uses the AWS chain.
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// `KTRA_S3_SECRET_ACCESS_KEY`: the secret of `KTRA_S3_ACCESS_KEY_ID`.
    #[serde(default)]
    pub secret_access_key: Option<secrecy::SecretString>,
    /// `KTRA_S3_PRESIGNED_DOWNLOADS`: answer downloads with a redirect to a presigned URL, so
    /// crate bytes flow from S3 straight to cargo.
    #[serde(default)]
    pub presigned_downloads: bool,
    /// `KTRA_S3_PRESIGN_EXPIRY_SECS`: how long a presigned URL stays valid.
    #[serde(default = "default_presign_expiry_secs")]
    pub presign_expiry_secs: u64,
}

fn default_region() -> String {
    "us-east-1".to_owned()
}

fn default_presign_expiry_secs() -> u64 {
    300
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
    #[serde(default)]
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
}

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
    #[serde(default)]
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

    fn validate(&self) -> anyhow::Result<()> {
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
    #[serde(default)]
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
        };
        if settings.is_set("KTRA_DB_MONGODB_URL") {
            bail!(
                "setting {}: this registry has no MongoDB store; run with KTRA_DB_KIND=embedded \
                 or redis and remove the setting (data in a MongoDB is not read)",
                setting_name("KTRA_DB_MONGODB_URL")
            );
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
                && error.contains("KTRA_DB_KIND"),
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
