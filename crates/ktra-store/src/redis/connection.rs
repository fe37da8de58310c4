//! How the Redis store reaches Redis: one multiplexed connection to the primary, named by the
//! URL or found through Redis Sentinel and followed across failovers, and the optional wait
//! for replicas after each change.
//!
//! Redis replicates asynchronously: a failover can drop writes the old primary had answered.
//! With [`RedisOptions::wait_replicas`] set, every change waits (`WAIT`) until that many
//! replicas hold it; a change no replica confirmed in time fails with 503 although the primary
//! has it, and the client's retry (which succeeds without change) settles it.

use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{IntoConnectionInfo, TlsMode};

use super::classify;
use crate::error::StoreError;

/// How long a command may wait for Redis before the request fails with 503.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How often Sentinel is asked which server is the primary.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(500);

/// Connections reserved for changes that wait for replicas. `WAIT` blocks the connection it
/// is sent on until the replicas answer, and counts only that connection's writes, so each
/// such change has a connection of its own for its script and its `WAIT`; the shared one
/// never stalls behind them.
const WAITING_WRITERS: usize = 8;

/// Where the Redis store finds Redis.
#[derive(Debug, Clone, Default)]
pub struct RedisOptions {
    /// `redis://` or `rediss://` (TLS), with `user:password@` and a database number when
    /// needed. With sentinels, only its credentials, database and TLS mode are used.
    pub url: String,
    /// The prefix of every key.
    pub prefix: String,
    /// Sentinels as `host:port`; empty: the URL names the server.
    pub sentinels: Vec<String>,
    /// The name Sentinel knows the primary by.
    pub sentinel_master: String,
    /// The user name and password Sentinel asks for, if it does.
    pub sentinel_username: Option<String>,
    /// Likewise.
    pub sentinel_password: Option<String>,
    /// How many replicas must hold a change before it is answered; 0 waits for none.
    pub wait_replicas: u32,
    /// How long a change waits for them.
    pub wait_timeout: Duration,
}

impl RedisOptions {
    /// One server at `url`, keys under `prefix`, no replicas waited for.
    pub fn new(url: &str, prefix: &str) -> Self {
        Self {
            url: url.to_owned(),
            prefix: prefix.to_owned(),
            ..Self::default()
        }
    }
}

/// The connection to the primary, replaced when Sentinel names another one.
#[derive(Clone)]
pub(super) struct Primary {
    current: Arc<RwLock<Current>>,
    /// Which held writer a change waits for when all are busy.
    turn: Arc<std::sync::atomic::AtomicUsize>,
    wait_replicas: u32,
    wait_timeout: Duration,
    /// Stops following Sentinel when the store is dropped.
    _follower: Option<Arc<FollowerTask>>,
}

struct Current {
    address: String,
    connection: ConnectionManager,
    /// With replicas to wait for: the connections changes take turns on.
    writers: Vec<Arc<tokio::sync::Mutex<ConnectionManager>>>,
}

/// The connection one change is sent on: the shared one, or one of the
/// [`WAITING_WRITERS`] held for the change and its `WAIT`.
pub(super) enum WriteConnection {
    /// No replicas are waited for.
    Shared(ConnectionManager),
    /// Held until the change has been waited for.
    Held(tokio::sync::OwnedMutexGuard<ConnectionManager>),
}

impl WriteConnection {
    fn connection(&mut self) -> &mut ConnectionManager {
        match self {
            Self::Shared(connection) => connection,
            Self::Held(guard) => guard,
        }
    }
}

impl redis::aio::ConnectionLike for WriteConnection {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        self.connection().req_packed_command(cmd)
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        self.connection()
            .req_packed_commands(pipeline, offset, count)
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Shared(connection) => connection.get_db(),
            Self::Held(guard) => guard.get_db(),
        }
    }
}

/// Aborts the following task with the last handle.
struct FollowerTask(tokio::task::JoinHandle<()>);

impl Drop for FollowerTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn connection_config(response_timeout: Duration) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(response_timeout))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_millis(500))
}

async fn manage(
    client: redis::Client,
    writers: usize,
    wait_timeout: Duration,
) -> Result<Current, StoreError> {
    let address = client.get_connection_info().addr().to_string();
    let connection =
        ConnectionManager::new_with_config(client.clone(), connection_config(RESPONSE_TIMEOUT))
            .await
            .map_err(classify)?;
    let mut held = Vec::with_capacity(writers);
    for _ in 0..writers {
        // A held writer's `WAIT` may take the whole wait: the client waits longer.
        let config = connection_config(RESPONSE_TIMEOUT + wait_timeout);
        let writer = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(classify)?;
        held.push(Arc::new(tokio::sync::Mutex::new(writer)));
    }
    Ok(Current {
        address,
        connection,
        writers: held,
    })
}

fn writers_for(options: &RedisOptions) -> usize {
    if options.wait_replicas == 0 {
        0
    } else {
        WAITING_WRITERS
    }
}

impl Primary {
    /// Connects to the primary the options name.
    pub(super) async fn connect(options: &RedisOptions) -> Result<Self, StoreError> {
        let invalid = |error: redis::RedisError| {
            StoreError::Unavailable(format!("invalid Redis URL: {error}"))
        };
        let writers = writers_for(options);
        let (current, follower) = if options.sentinels.is_empty() {
            let client = redis::Client::open(options.url.as_str()).map_err(invalid)?;
            let current = manage(client, writers, options.wait_timeout).await?;
            (Arc::new(RwLock::new(current)), None)
        } else {
            let mut sentinel = sentinel_client(options).map_err(invalid)?;
            let client = sentinel.async_get_client().await.map_err(|error| {
                StoreError::Unavailable(format!(
                    "no sentinel of {} names a primary for `{}`: {error}",
                    options.sentinels.join(","),
                    options.sentinel_master
                ))
            })?;
            let current = Arc::new(RwLock::new(
                manage(client, writers, options.wait_timeout).await?,
            ));
            let task = tokio::spawn(follow(options.clone(), sentinel, Arc::downgrade(&current)));
            (current, Some(Arc::new(FollowerTask(task))))
        };
        Ok(Self {
            current,
            turn: Arc::default(),
            wait_replicas: options.wait_replicas,
            wait_timeout: options.wait_timeout,
            _follower: follower,
        })
    }

    /// Returns the connection to the current primary.
    pub(super) fn connection(&self) -> ConnectionManager {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .connection
            .clone()
    }

    /// Returns the connection for one change: the shared one, or, when replicas are waited
    /// for, one of the held ones (waiting while all are busy), for the change and its
    /// [`Primary::replicated`].
    pub(super) async fn writer(&self) -> WriteConnection {
        let (shared, writers) = {
            let current = self
                .current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            (current.connection.clone(), current.writers.clone())
        };
        if writers.is_empty() {
            return WriteConnection::Shared(shared);
        }
        // Any free one; else wait for the one this change's turn names.
        for writer in &writers {
            if let Ok(held) = Arc::clone(writer).try_lock_owned() {
                return WriteConnection::Held(held);
            }
        }
        let turn = self.turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % writers.len();
        WriteConnection::Held(Arc::clone(&writers[turn]).lock_owned().await)
    }

    /// Waits until the configured number of replicas hold every change sent on `connection`
    /// so far; returns at once when none is configured.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when fewer replicas confirmed it in time.
    pub(super) async fn replicated(
        &self,
        connection: &mut WriteConnection,
    ) -> Result<(), StoreError> {
        if self.wait_replicas == 0 {
            return Ok(());
        }
        let timeout_ms = u64::try_from(self.wait_timeout.as_millis()).unwrap_or(u64::MAX);
        let confirmed: u32 = redis::cmd("WAIT")
            .arg(self.wait_replicas)
            .arg(timeout_ms)
            .query_async(connection)
            .await
            .map_err(classify)?;
        if confirmed < self.wait_replicas {
            return Err(StoreError::Unavailable(format!(
                "the change reached the Redis primary but {confirmed} of {} replicas confirmed it \
                 within {timeout_ms} ms",
                self.wait_replicas
            )));
        }
        Ok(())
    }
}

fn sentinel_client(options: &RedisOptions) -> Result<SentinelClient, redis::RedisError> {
    let user = options.sentinel_username.as_deref().map(percent_encoded);
    let password = options.sentinel_password.as_deref().map(percent_encoded);
    let credentials = match (user, password) {
        (Some(user), Some(password)) => format!("{user}:{password}@"),
        (None, Some(password)) => format!(":{password}@"),
        (Some(user), None) => format!("{user}@"),
        (None, None) => String::new(),
    };
    let nodes: Vec<String> = options
        .sentinels
        .iter()
        .map(|node| format!("redis://{credentials}{node}"))
        .collect();
    let primary = options.url.as_str().into_connection_info()?;
    let mut node = SentinelNodeConnectionInfo::default()
        .set_redis_connection_info(primary.redis_settings().clone());
    if options.url.starts_with("rediss://") {
        node = node.set_tls_mode(if options.url.ends_with("#insecure") {
            TlsMode::Insecure
        } else {
            TlsMode::Secure
        });
    }
    SentinelClient::build(
        nodes,
        options.sentinel_master.clone(),
        Some(node),
        SentinelServerType::Master,
    )
}

/// Encodes a user name or password for the user-info part of a URL: everything but
/// unreserved characters, so `@`, `:`, `/`, `#` and `%` in a secret cannot be misread.
fn percent_encoded(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// Asks Sentinel which server is the primary every [`FOLLOW_INTERVAL`], and moves the store's
/// connection when it changed: a failover is followed without a restart. A question that fails
/// or takes longer than [`CONNECT_TIMEOUT`] (a lookup can hang on the dead primary) is asked
/// again of fresh Sentinel connections.
async fn follow(
    options: RedisOptions,
    mut sentinel: SentinelClient,
    current: Weak<RwLock<Current>>,
) {
    let mut ticker = tokio::time::interval(FOLLOW_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(shared) = current.upgrade() else {
            return;
        };
        let asked = tokio::time::timeout(CONNECT_TIMEOUT, sentinel.async_get_client()).await;
        let client = match asked {
            Ok(Ok(client)) => client,
            failed => {
                let why = match failed {
                    Ok(Err(error)) => error.to_string(),
                    _ => "no answer in time".to_owned(),
                };
                tracing::warn!(
                    error = why,
                    "Sentinel names no primary now; keeping the last one"
                );
                match sentinel_client(&options) {
                    Ok(fresh) => sentinel = fresh,
                    Err(error) => tracing::warn!(%error, "cannot reconnect to Sentinel"),
                }
                continue;
            }
        };
        let address = client.get_connection_info().addr().to_string();
        let known = shared
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .address
            .clone();
        if address == known {
            continue;
        }
        let next = manage(client, writers_for(&options), options.wait_timeout);
        match tokio::time::timeout(CONNECT_TIMEOUT * 2, next).await {
            Ok(Ok(next)) => {
                tracing::warn!(from = known, to = address, "following a Redis failover");
                *shared
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = next;
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, primary = address, "cannot reach the new Redis primary yet");
            }
            Err(_) => {
                tracing::warn!(
                    primary = address,
                    "the new Redis primary did not answer in time"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_encoded_for_urls() {
        assert_eq!(percent_encoded("plain-Pass_1.~"), "plain-Pass_1.~");
        assert_eq!(percent_encoded("a@b:c/d#e%f"), "a%40b%3Ac%2Fd%23e%25f");
    }
}
