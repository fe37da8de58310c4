//! Starts the API on `127.0.0.1:0` over stores in a temporary directory.

use std::sync::Arc;

use ktra_api::state::Faults;
use ktra_api::{AppState, Config};
use ktra_core::config::Settings;
use ktra_store::{BlobStore, MetadataStore};
use ktra_testing::servers::{RedisServer, S3Server};
use reqwest::StatusCode;
use serde_json::Value;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

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

    /// Returns `base` joined with `path`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Creates a user with password `password123` and returns the user's token.
    pub(crate) async fn create_user(&self, name: &str) -> String {
        let (status, body) = self
            .post_json(
                &format!("/ktra/api/v1/new_user/{name}"),
                &serde_json::json!({"password": "password123"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }

    /// POSTs JSON and returns the status and JSON body.
    pub(crate) async fn post_json(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let response = self
            .client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap();
        read_json(response).await
    }

    /// Sends a publish body with an optional token.
    pub(crate) async fn publish(&self, token: Option<&str>, body: Vec<u8>) -> (StatusCode, Value) {
        let mut request = self.client.put(self.url("/api/v1/crates/new")).body(body);
        if let Some(token) = token {
            request = request.header("Authorization", token);
        }
        read_json(request.send().await.unwrap()).await
    }

    /// Sends an anonymous GET.
    pub(crate) async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, None, None).await
    }

    /// Sends a request with a token and an optional JSON body.
    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.header("Authorization", token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        read_json(request.send().await.unwrap()).await
    }

    /// Returns a crate's index file as served, or `None` on 404.
    pub(crate) async fn index_lines(&self, name: &str) -> Option<Vec<Value>> {
        let path = ktra_core::index::index_path(name);
        let response = self
            .client
            .get(self.url(&format!("/index/{path}")))
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::NOT_FOUND {
            return None;
        }
        assert_eq!(response.status(), StatusCode::OK);
        let text = response.text().await.unwrap();
        assert!(
            text.ends_with('\n'),
            "index files end with a newline: {text:?}"
        );
        Some(
            text.lines()
                .map(|line| serde_json::from_str(line).unwrap())
                .collect(),
        )
    }

    /// Returns every crate file key in the blob store.
    pub(crate) async fn blob_keys(&self) -> Vec<String> {
        self.blobs.list("crates").await.unwrap()
    }

    /// Asserts that every accepted version (crate name to versions) has exactly one index line
    /// and downloads with that line's checksum.
    pub(crate) async fn assert_intact(
        &self,
        accepted: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
    ) {
        for (name, versions) in accepted {
            let lines = self.index_lines(name).await.unwrap_or_default();
            let listed: Vec<&str> = lines
                .iter()
                .map(|line| line["vers"].as_str().unwrap())
                .collect();
            let unique: std::collections::BTreeSet<&str> = listed.iter().copied().collect();
            assert_eq!(
                listed.len(),
                unique.len(),
                "{name} has duplicate lines: {listed:?}"
            );
            for version in versions {
                let line = lines
                    .iter()
                    .find(|line| line["vers"] == version.as_str())
                    .unwrap_or_else(|| panic!("{name}@{version} was acknowledged but is missing"));
                let bytes = self
                    .client
                    .get(self.url(&format!("/dl/{name}/{version}/download")))
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap();
                assert_eq!(
                    line["cksum"],
                    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)),
                    "{name}@{version}"
                );
            }
        }
    }

    /// Asserts that a crate has no record, no index file and that the blob store holds exactly
    /// `expected_blobs` files.
    pub(crate) async fn assert_not_stored(&self, name: &str, expected_blobs: usize) {
        let krate = ktra_core::name::CrateId::new(name).unwrap();
        assert!(
            self.store.crate_summary(&krate).await.unwrap().is_none(),
            "crate {name} was stored"
        );
        assert!(
            self.index_lines(name).await.is_none(),
            "index file of {name} exists"
        );
        assert_eq!(self.blob_keys().await.len(), expected_blobs, "blob files");
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

/// Reads a response as (status, JSON), asserting the body is JSON.
pub(crate) async fn read_json(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("status {status}: body is not JSON ({error}): {text:?}"));
    (status, body)
}

/// Asserts cargo's error format with a message containing `needle`.
pub(crate) fn assert_error(status: StatusCode, body: &Value, expected: StatusCode, needle: &str) {
    assert_eq!(status, expected, "{body}");
    let detail = body["errors"][0]["detail"]
        .as_str()
        .unwrap_or_else(|| panic!("not cargo's error format: {body}"));
    assert!(
        detail.contains(needle),
        "expected {needle:?} in the error, got {detail:?}"
    );
    assert_eq!(body["errors"].as_array().unwrap().len(), 1);
}
