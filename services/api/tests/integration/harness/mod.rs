//! Starts the API on `127.0.0.1:0` over stores in a temporary directory, and names the requests
//! and checks the tests share.

mod assertions;
mod bursts;
mod requests;

use std::sync::Arc;
use std::time::Duration;

use ktra_api::state::Faults;
use ktra_api::{AppState, Config};
use ktra_core::config::Settings;
use ktra_core::name::CrateId;
use ktra_store::model::IndexFile;
use ktra_store::{BlobStore, MetadataStore};
use ktra_testing::servers::{RedisServer, S3Server};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub(crate) use assertions::{assert_error, assert_forbidden, assert_ok, assert_refused};
pub(crate) use bursts::{Accepted, publish_at_once, version_count};
pub(crate) use requests::{Reply, read_json, token_of};

/// Settings for a private registry: every read needs a token.
pub(crate) const PRIVATE: &[(&str, &str)] = &[("KTRA_REGISTRY_AUTH_REQUIRED", "true")];

/// The production Argon2 parameters (the harness otherwise keeps hashing cheap), for tests of
/// what real hashing costs, such as the e2e suite's and login timing.
pub(crate) const PRODUCTION_ARGON2: &[(&str, &str)] = &[
    ("KTRA_AUTH_ARGON2_MEMORY_KIB", "19456"),
    ("KTRA_AUTH_ARGON2_ITERATIONS", "2"),
];

/// The password [`TestApp::create_user`] gives every user.
pub(crate) const PASSWORD: &str = "password123";

/// Calls `check` every 50 ms until it returns `Some`, and returns what it returned; panics,
/// saying it waited for `what`, once `within` has passed. For what the service does in its own
/// time, or by the wall clock, where a fixed sleep would guess.
pub(crate) async fn eventually<T, Check, Checked>(
    what: &str,
    within: Duration,
    mut check: Check,
) -> T
where
    Check: FnMut() -> Checked,
    Checked: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited {within:?} for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The storage a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    /// redb and a local directory.
    Embedded,
    /// A real redis-server and a real S3-compatible server (SeaweedFS).
    RedisS3,
}

/// The servers behind a Redis+S3 test, shared by its replicas.
pub(crate) struct SharedServers {
    pub(crate) redis: RedisServer,
    pub(crate) s3: S3Server,
    _dir: TempDir,
}

impl SharedServers {
    /// Starts redis-server (durable, so a restart loses nothing acknowledged) and SeaweedFS
    /// with a bucket.
    pub(crate) fn start() -> Arc<Self> {
        let dir = tempfile::tempdir().unwrap();
        let redis = RedisServer::start_with(dir.path(), true);
        let s3 = S3Server::start(dir.path());
        s3.create_bucket("crates");
        Arc::new(Self {
            redis,
            s3,
            _dir: dir,
        })
    }

    fn settings(&self) -> Vec<(String, String)> {
        let mut settings = vec![
            ("KTRA_DB_KIND".to_owned(), "redis".to_owned()),
            ("KTRA_DB_REDIS_URL".to_owned(), self.redis.url.clone()),
        ];
        for (name, value) in self.s3.env("crates") {
            let name = match name.as_str() {
                "AWS_ACCESS_KEY_ID" => "KTRA_S3_ACCESS_KEY_ID".to_owned(),
                "AWS_SECRET_ACCESS_KEY" => "KTRA_S3_SECRET_ACCESS_KEY".to_owned(),
                _ => name,
            };
            settings.push((name, value));
        }
        settings
    }
}

/// A running API service.
pub(crate) struct TestApp {
    /// `http://127.0.0.1:{port}`.
    pub(crate) base: String,
    /// An HTTP client.
    pub(crate) client: reqwest::Client,
    /// The store, for checking what was (not) written.
    pub(crate) store: Arc<dyn MetadataStore>,
    /// The blob store, likewise.
    pub(crate) blobs: BlobStore,
    /// The Redis and S3 servers, when the test runs on them.
    pub(crate) servers: Option<Arc<SharedServers>>,
    /// The extra settings, which replicas share.
    extra: Vec<(String, String)>,
    /// Holds the data directory until the test ends.
    _dir: TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    /// Starts the service on `backend` with extra settings.
    pub(crate) async fn start_on(backend: Backend, extra: &[(&str, &str)]) -> Self {
        let servers = (backend == Backend::RedisS3).then(SharedServers::start);
        Self::start_over(servers, extra).await
    }

    /// Starts the service on the embedded stores with extra settings.
    pub(crate) async fn embedded(extra: &[(&str, &str)]) -> Self {
        Self::start_on(Backend::Embedded, extra).await
    }

    /// Starts another replica over the same Redis and S3 servers.
    pub(crate) async fn replica(&self) -> Self {
        let extra: Vec<(&str, &str)> = self
            .extra
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        Self::start_over(self.servers.clone(), &extra).await
    }

    /// Starts the service on `backend` with crashes to simulate.
    pub(crate) async fn start_with_faults(backend: Backend, faults: Faults) -> Self {
        let servers = (backend == Backend::RedisS3).then(SharedServers::start);
        Self::start_with(servers, &[], faults).await
    }

    /// Starts the service over `servers` (a new replica of another app's, say) with `extra`.
    pub(crate) async fn start_over(
        servers: Option<Arc<SharedServers>>,
        extra: &[(&str, &str)],
    ) -> Self {
        Self::start_with(servers, extra, Faults::default()).await
    }

    async fn start_with(
        servers: Option<Arc<SharedServers>>,
        extra: &[(&str, &str)],
        faults: Faults,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let base = format!("http://127.0.0.1:{port}");
        let mut settings = Settings::from_pairs(extra.iter().copied())
            .with("KTRA_REGISTRY_PUBLIC_URL", &base)
            .with("KTRA_HTTP_PORT", &port.to_string())
            .with(
                "KTRA_DB_DIR_PATH",
                &dir.path().join("db").display().to_string(),
            )
            .with(
                "KTRA_BLOB_DIR_PATH",
                &dir.path().join("crates").display().to_string(),
            );
        if !extra
            .iter()
            .any(|(name, _)| *name == "KTRA_MIRROR_CACHE_DIR_PATH")
        {
            settings = settings.with(
                "KTRA_MIRROR_CACHE_DIR_PATH",
                &dir.path().join("mirror-cache").display().to_string(),
            );
        }
        if let Some(servers) = &servers {
            for (name, value) in servers.settings() {
                settings = settings.with(&name, &value);
            }
        }
        // Keep hashing cheap in tests that create many users; the e2e suite uses the defaults.
        // Rate limits are off unless a test sets them: tests publish in bursts from one address.
        for (name, value) in [
            ("KTRA_AUTH_ARGON2_MEMORY_KIB", "1024"),
            ("KTRA_AUTH_ARGON2_ITERATIONS", "1"),
            ("KTRA_LIMITS_LOGIN_PER_IP_PER_MINUTE", "0"),
            ("KTRA_LIMITS_LOGIN_PER_USER_PER_MINUTE", "0"),
            ("KTRA_LIMITS_REGISTER_PER_IP_PER_HOUR", "0"),
            ("KTRA_LIMITS_PUBLISH_PER_USER_PER_MINUTE", "0"),
            ("KTRA_LIMITS_PUBLISH_PER_IP_PER_MINUTE", "0"),
        ] {
            if !extra.iter().any(|(extra_name, _)| *extra_name == name) {
                settings = settings.with(name, value);
            }
        }
        let config = Config::from_settings(&settings).unwrap();
        let store = ktra_api::state::open_metadata_store(&config).await.unwrap();
        let blobs = ktra_api::state::open_blob_store(&config).unwrap();
        let state = AppState::with_stores(config, Arc::clone(&store), blobs.clone())
            .unwrap()
            .with_faults(faults);
        let (shutdown, stop) = oneshot::channel::<()>();
        let server = tokio::spawn(ktra_api::serve(state, listener, async {
            let _ = stop.await;
        }));
        Self {
            base,
            client: reqwest::Client::new(),
            store,
            blobs,
            servers,
            extra: extra
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
            _dir: dir,
            shutdown: Some(shutdown),
            server: Some(server),
        }
    }

    /// Stops the service and waits until it has closed its listener and drained its
    /// connections, so nothing answers on its port any more.
    #[cfg_attr(
        not(feature = "crates-io-mirroring"),
        expect(dead_code, reason = "only the mirror's tests use it")
    )]
    pub(crate) async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }

    /// Returns the `/metrics` page.
    pub(crate) async fn metrics_text(&self) -> String {
        self.client
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Returns the sum of the samples of `/metrics` whose line starts with `prefix` (a metric
    /// name and the start of its labels). Panics when `/metrics` does not describe the metric
    /// family at all, so a renamed metric cannot make a check for zero pass.
    pub(crate) async fn metric(&self, prefix: &str) -> f64 {
        let text = self.metrics_text().await;
        let name = prefix.split('{').next().unwrap_or_default();
        let described = text
            .lines()
            .filter_map(|line| line.strip_prefix("# TYPE ")?.split(' ').next())
            .any(|family| {
                name.strip_prefix(family).is_some_and(|suffix| {
                    ["", "_total", "_count", "_sum", "_bucket", "_created"].contains(&suffix)
                })
            });
        assert!(described, "/metrics has no metric `{name}`:\n{text}");
        text.lines()
            .filter(|line| line.starts_with(prefix))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Returns the index file of crate `name` as the metadata store holds it.
    pub(crate) async fn stored_index_file(&self, name: &str) -> IndexFile {
        let krate = CrateId::new(name).unwrap();
        let file = self.store.index_file(&krate).await.unwrap();
        file.unwrap_or_else(|| panic!("no index file for {name}"))
    }

    /// Acknowledges `revision` of crate `name`'s index file, as the indexer does once it is
    /// in git; returns whether the store took it.
    pub(crate) async fn acknowledge(&self, name: &str, revision: u64) -> bool {
        let krate = CrateId::new(name).unwrap();
        self.store.acknowledge(&krate, revision).await.unwrap()
    }

    /// Returns `base` joined with `path`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}
