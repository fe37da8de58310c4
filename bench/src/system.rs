//! Starting the system under test in a named configuration, and watching its memory.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use ktra_testing::registry::{Registry, RegistryBuilder};
use ktra_testing::servers::{RedisServer, S3Server};
use serde::Serialize;

/// A named configuration of the system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) enum Configuration {
    /// redb and a local directory.
    Embedded,
    /// redis-server and SeaweedFS.
    RedisS3,
    /// redis-server and a local directory.
    Redis,
    /// redis-server with a replica, every change waiting for it (`WAIT`), and a local
    /// directory: what surviving a failover costs.
    RedisWait,
}

impl Configuration {
    /// The name used in tables and on the command line.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Embedded => "embedded",
            Self::RedisS3 => "redis+s3",
            Self::Redis => "redis+local",
            Self::RedisWait => "redis+wait",
        }
    }

    /// Parses a name.
    pub(crate) fn parse(name: &str) -> Option<Self> {
        match name {
            "embedded" => Some(Self::Embedded),
            "redis-s3" | "redis+s3" => Some(Self::RedisS3),
            "redis" | "redis+local" => Some(Self::Redis),
            "redis-wait" | "redis+wait" => Some(Self::RedisWait),
            _ => None,
        }
    }
}

/// How often the API resends changes the indexer has not acknowledged (those a full hand-off
/// left to it, for one).
pub(crate) const RESEND_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// The running system: both services, a git remote, and the storage servers.
pub(crate) struct System {
    /// The services.
    pub(crate) registry: Registry,
    /// A publisher's token.
    pub(crate) token: String,
    /// The API's address.
    pub(crate) address: SocketAddr,
    _servers: (
        Option<tempfile::TempDir>,
        Option<RedisServer>,
        Option<RedisServer>,
        Option<S3Server>,
    ),
    memory: MemoryWatch,
}

impl System {
    /// Starts a configuration with the git remote on (a `file://` repository).
    pub(crate) async fn start(configuration: Configuration) -> anyhow::Result<Self> {
        let mut builder = RegistryBuilder::default()
            .keep_files()
            // A measurement ends when it ends: what the indexer has yet to acknowledge then
            // is the resender's business, not a failure of the benchmark.
            .expect_unacknowledged()
            .env("RUST_LOG", "warn")
            // Publishes answer without waiting for the push; publish-to-visible measures it.
            .env("KTRA_INDEXER_ACK_TIMEOUT_MS", "0")
            .env(
                "KTRA_INDEXER_RESEND_INTERVAL_SECS",
                &RESEND_INTERVAL.as_secs().to_string(),
            )
            // The publish limits count every request (one store round trip each) but never
            // refuse one: the cost is measured, the load is not throttled.
            .env("KTRA_LIMITS_PUBLISH_PER_USER_PER_MINUTE", "1000000000")
            .env("KTRA_LIMITS_PUBLISH_PER_IP_PER_MINUTE", "1000000000");
        let dir = tempfile::Builder::new().disable_cleanup(true).tempdir()?;
        let redis = matches!(
            configuration,
            Configuration::RedisS3 | Configuration::Redis | Configuration::RedisWait
        )
        .then(|| RedisServer::start(dir.path()));
        if let Some(redis) = &redis {
            builder = builder
                .env("KTRA_DB_KIND", "redis")
                .env("KTRA_DB_REDIS_URL", &redis.url);
        }
        let replica = match (&redis, configuration) {
            (Some(primary), Configuration::RedisWait) => {
                builder = builder.env("KTRA_DB_REDIS_WAIT_REPLICAS", "1");
                Some(RedisServer::start_replica_of(dir.path(), primary.port()))
            }
            _ => None,
        };
        let s3 = (configuration == Configuration::RedisS3).then(|| S3Server::start(dir.path()));
        if let Some(s3) = &s3 {
            s3.create_bucket("crates");
            for (name, value) in s3.env("crates") {
                builder = builder.env(&name, &value);
            }
        }
        let servers = (Some(dir), redis, replica, s3);
        let registry = builder.start().await;
        let token = registry.create_user("bench").await;
        let address: SocketAddr = registry.base.trim_start_matches("http://").parse()?;
        let memory = MemoryWatch::start(
            registry.api.pid().unwrap_or_default(),
            registry.indexer().pid().unwrap_or_default(),
        );
        Ok(Self {
            registry,
            token,
            address,
            _servers: servers,
            memory,
        })
    }

    /// The memory figures so far.
    pub(crate) fn memory(&self) -> MemoryFigures {
        self.memory.figures()
    }
}

/// Resident set sizes, MiB.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub(crate) struct MemoryFigures {
    /// The API right after start.
    pub(crate) api_idle: f64,
    /// The API's highest sample.
    pub(crate) api_peak: f64,
    /// The indexer right after start.
    pub(crate) indexer_idle: f64,
    /// The indexer's highest sample.
    pub(crate) indexer_peak: f64,
}

/// Samples both services' resident sets every 50 ms.
struct MemoryWatch {
    idle: (f64, f64),
    api_peak_kib: Arc<AtomicU64>,
    indexer_peak_kib: Arc<AtomicU64>,
    running: Arc<AtomicBool>,
}

impl MemoryWatch {
    fn start(api: u32, indexer: u32) -> Self {
        let idle = (
            crate::stats::rss_mib(api).unwrap_or(0.0),
            crate::stats::rss_mib(indexer).unwrap_or(0.0),
        );
        let api_peak_kib = Arc::new(AtomicU64::new(0));
        let indexer_peak_kib = Arc::new(AtomicU64::new(0));
        let running = Arc::new(AtomicBool::new(true));
        let (api_peak, indexer_peak, alive) = (
            Arc::clone(&api_peak_kib),
            Arc::clone(&indexer_peak_kib),
            Arc::clone(&running),
        );
        std::thread::spawn(move || {
            while alive.load(Ordering::Relaxed) {
                for (pid, peak) in [(api, &api_peak), (indexer, &indexer_peak)] {
                    if let Some(mib) = crate::stats::rss_mib(pid) {
                        peak.fetch_max((mib * 1024.0) as u64, Ordering::Relaxed);
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Self {
            idle,
            api_peak_kib,
            indexer_peak_kib,
            running,
        }
    }

    fn figures(&self) -> MemoryFigures {
        MemoryFigures {
            api_idle: self.idle.0,
            api_peak: self.api_peak_kib.load(Ordering::Relaxed) as f64 / 1024.0,
            indexer_idle: self.idle.1,
            indexer_peak: self.indexer_peak_kib.load(Ordering::Relaxed) as f64 / 1024.0,
        }
    }
}

impl Drop for MemoryWatch {
    fn drop(&mut self) {
        self.running.store(false, Ordering::Relaxed);
    }
}
