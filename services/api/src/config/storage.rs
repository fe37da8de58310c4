//! `KTRA_DB_*`, `KTRA_BLOB_*` and `KTRA_S3_*`: where metadata and crate files live.

use std::path::PathBuf;

use serde::Deserialize;

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
    pub redis_sentinels: Option<String>,
    /// `KTRA_DB_REDIS_SENTINEL_MASTER`: the name Sentinel knows the primary by.
    #[serde(default = "default_sentinel_master")]
    pub redis_sentinel_master: String,
    /// `KTRA_DB_REDIS_SENTINEL_USERNAME`: the user name Sentinel asks for, if it does.
    pub redis_sentinel_username: Option<String>,
    /// `KTRA_DB_REDIS_SENTINEL_PASSWORD`: the password Sentinel asks for, if it does.
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
    pub url: Option<String>,
}

/// `KTRA_S3_*`: the S3 bucket when `KTRA_BLOB_KIND=s3`. Credentials come from the standard
/// `AWS_*` variables and the AWS credential chain (web identity, container and instance
/// metadata), so an IAM role needs no keys here.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// `KTRA_S3_BUCKET`: the bucket.
    pub bucket: Option<String>,
    /// `KTRA_S3_REGION`: the region.
    #[serde(default = "default_region")]
    pub region: String,
    /// `KTRA_S3_ENDPOINT`: the endpoint of an S3-compatible server; unset for AWS.
    pub endpoint: Option<String>,
    /// `KTRA_S3_ALLOW_HTTP`: allow a plain `http://` endpoint.
    #[serde(default)]
    pub allow_http: bool,
    /// `KTRA_S3_VIRTUAL_HOSTED_STYLE`: `bucket.host` requests instead of `host/bucket`.
    #[serde(default)]
    pub virtual_hosted_style: bool,
    /// `KTRA_S3_PREFIX`: a key prefix inside the bucket.
    pub prefix: Option<String>,
    /// `KTRA_S3_ACCESS_KEY_ID`: a static access key; unset (preferred) uses the AWS chain.
    pub access_key_id: Option<String>,
    /// `KTRA_S3_SECRET_ACCESS_KEY`: the secret of `KTRA_S3_ACCESS_KEY_ID`.
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
