//! The Redis metadata store, for deployments with several API replicas.
//!
//! One multiplexed connection, reconnected by itself after Redis restarts, serves every
//! request. Every change of more than one key is one Lua script, so it is atomic and checks its
//! preconditions in the same step: two replicas publishing the same version at once end with
//! exactly one success. Each version, crate file and user is its own key; nothing is
//! read-modify-written across processes. Search uses indexes kept as crates are published
//! (name trigrams, description words), so it never scans every crate. Key names come from
//! [`keys`].
//!
//! Keys are built in Rust and passed to scripts, except for token keys revoked by
//! `change_password` and `disable_user`, which the scripts derive from
//! [`keys::Keys::token_prefix`] and [`keys::Keys::user_tokens_prefix`]; the store
//! therefore runs on a single Redis (or a replicated primary), not on Redis Cluster.

mod accounts;
mod audit;
mod connection;
mod coordination;
mod crates;
mod downloads;
mod index;
pub mod keys;
mod scripts;
mod sessions;

pub use connection::RedisOptions;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, ErrorKind, RedisError, ServerErrorKind};

use crate::error::StoreError;
use crate::traits::MetadataStore;
use keys::{Keys, SCHEMA};
use scripts::Scripts;

/// The Redis-backed metadata store.
#[derive(Clone)]
pub struct RedisStore {
    primary: connection::Primary,
    keys: Keys,
    scripts: std::sync::Arc<Scripts>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

/// Sorts Redis failures: the server or the network being away is 503, anything else a bug.
fn classify(error: RedisError) -> StoreError {
    let transient = error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || matches!(
            error.kind(),
            ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::ReadOnly
                    | ServerErrorKind::ClusterDown
            )
        )
        // Redis refuses writes with MISCONF when it cannot persist them.
        || error.code() == Some("MISCONF");
    if transient {
        StoreError::Unavailable(error.to_string())
    } else {
        StoreError::Internal(error.to_string())
    }
}

fn internal(error: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(error.to_string())
}

fn millis(time: DateTime<Utc>) -> String {
    time.timestamp_millis().to_string()
}

fn from_millis(text: &str) -> Result<DateTime<Utc>, StoreError> {
    let value: i64 = text.parse().map_err(internal)?;
    DateTime::from_timestamp_millis(value).ok_or_else(|| internal("time out of range"))
}

impl RedisStore {
    /// Connects to Redis at `url` (`redis://`, `rediss://` for TLS, with user and password in
    /// the URL when needed) and checks the layout under `prefix`.
    ///
    /// # Errors
    ///
    /// Fails when Redis cannot be reached or the data under the prefix has another layout.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, StoreError> {
        Self::connect_with(&RedisOptions::new(url, prefix)).await
    }

    /// Connects as `options` say: to one server, or to the primary Sentinel names (followed
    /// across failovers), and checks the layout under the prefix.
    ///
    /// # Errors
    ///
    /// Fails when Redis (or every sentinel) cannot be reached or the data under the prefix has
    /// another layout.
    pub async fn connect_with(options: &RedisOptions) -> Result<Self, StoreError> {
        let store = Self {
            primary: connection::Primary::connect(options).await?,
            keys: Keys::new(&options.prefix),
            scripts: std::sync::Arc::new(Scripts::new()),
        };
        store.check_schema().await?;
        Ok(store)
    }

    async fn check_schema(&self) -> Result<(), StoreError> {
        let mut connection = self.connection();
        let key = self.keys.schema();
        let _: bool = connection.set_nx(&key, SCHEMA).await.map_err(classify)?;
        let found: u32 = connection.get(&key).await.map_err(classify)?;
        if found != SCHEMA {
            return Err(StoreError::Internal(format!(
                "the data under {key} has layout {found}; this build reads layout {SCHEMA}"
            )));
        }
        Ok(())
    }

    fn connection(&self) -> ConnectionManager {
        self.primary.connection()
    }
}

#[async_trait]
impl MetadataStore for RedisStore {
    async fn ping(&self) -> Result<(), StoreError> {
        let _: String = redis::cmd("PING")
            .query_async(&mut self.connection())
            .await
            .map_err(classify)?;
        Ok(())
    }
}
