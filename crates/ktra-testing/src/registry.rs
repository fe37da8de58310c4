//! Both services as processes over stores in a temporary directory.
//!
//! A test that ends with index changes the indexer never acknowledged fails, as a test that
//! leaves jobs in a queue fails in crates.io's `TestApp`: when a [`Registry`] with an indexer is
//! dropped by a test that is not already failing, it waits (at most
//! [`ACKNOWLEDGE_TIMEOUT`], or the builder's [`RegistryBuilder::acknowledge_within`]) for the
//! API's `ktra_index_unacknowledged_crates` gauge to read 0, and panics naming the count
//! otherwise. Tests that mean to leave changes behind (a remote that refuses every push, an
//! indexer stopped for good) say so with [`RegistryBuilder::expect_unacknowledged`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use tempfile::TempDir;

use crate::fixtures::CrateFixture;
use crate::poll::{poll_until, poll_until_true};
use crate::process::{Service, free_port, start_ktra_service, workspace_binary};

/// How long a finishing test gives the indexer to acknowledge every change it was handed: the
/// API hands them over again every second in these tests, so this is many rounds.
pub const ACKNOWLEDGE_TIMEOUT: Duration = Duration::from_secs(30);

/// The API's gauge of crates whose latest index change the indexer has not acknowledged.
pub const UNACKNOWLEDGED_GAUGE: &str = "ktra_index_unacknowledged_crates";

/// How a test wants the registry set up.
#[derive(Debug, Clone)]
pub struct RegistryBuilder {
    remote_url: Option<String>,
    indexer: bool,
    keep_files: bool,
    env: Vec<(String, String)>,
    acknowledgement: Acknowledgement,
}

/// What the end of a test checks about the index changes the API handed to the indexer.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Acknowledgement {
    /// Every change is acknowledged within the deadline.
    Within(Duration),
    /// The test means to leave changes unacknowledged; nothing is checked.
    NotExpected,
}

impl Default for RegistryBuilder {
    fn default() -> Self {
        Self {
            remote_url: None,
            indexer: true,
            keep_files: false,
            env: Vec::new(),
            acknowledgement: Acknowledgement::Within(ACKNOWLEDGE_TIMEOUT),
        }
    }
}

impl RegistryBuilder {
    /// Uses this remote instead of a `file://` repository in the test's directory.
    #[must_use]
    pub fn remote(mut self, url: &str) -> Self {
        self.remote_url = Some(url.to_owned());
        self
    }

    /// Lets the test end with index changes the indexer has not acknowledged: its remote
    /// refuses them, or it stops the indexer for good. Without this, dropping the registry
    /// fails the test when the API still counts unacknowledged crates.
    #[must_use]
    pub fn expect_unacknowledged(mut self) -> Self {
        self.acknowledgement = Acknowledgement::NotExpected;
        self
    }

    /// Gives the indexer `timeout` (instead of [`ACKNOWLEDGE_TIMEOUT`]) to acknowledge every
    /// change once the test is done.
    #[must_use]
    pub fn acknowledge_within(mut self, timeout: Duration) -> Self {
        self.acknowledgement = Acknowledgement::Within(timeout);
        self
    }

    /// Runs the API alone, without an indexer (nothing is acknowledged, so nothing is checked).
    #[must_use]
    pub fn without_indexer(mut self) -> Self {
        self.indexer = false;
        self
    }

    /// Leaves the registry's files in place when it stops (whoever asked removes them).
    #[must_use]
    pub fn keep_files(mut self) -> Self {
        self.keep_files = true;
        self
    }

    /// Adds an environment variable for both services.
    #[must_use]
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Starts the services and registers `user` (password `password123`); returns the
    /// registry and the user's token.
    pub async fn start_with_user(self, user: &str) -> (Registry, String) {
        let registry = self.start().await;
        let token = registry.create_user(user).await;
        (registry, token)
    }

    /// Starts the services.
    pub async fn start(self) -> Registry {
        let dir = tempfile::Builder::new()
            .disable_cleanup(self.keep_files)
            .tempdir()
            .expect("a temporary directory");
        let api_port = free_port();
        let indexer_port = free_port();
        let indexer_metrics_port = free_port();
        let base = format!("http://127.0.0.1:{api_port}");
        let remote_path = dir.path().join("remote.git");
        let remote_url = self
            .remote_url
            .clone()
            .unwrap_or_else(|| format!("file://{}", remote_path.display()));
        let mut env: Vec<(String, String)> = [
            ("KTRA_HTTP_ADDRESS", "127.0.0.1".to_owned()),
            ("KTRA_HTTP_PORT", api_port.to_string()),
            ("KTRA_REGISTRY_PUBLIC_URL", base.clone()),
            (
                "KTRA_DB_DIR_PATH",
                dir.path().join("db").display().to_string(),
            ),
            (
                "KTRA_BLOB_DIR_PATH",
                dir.path().join("crates").display().to_string(),
            ),
            ("KTRA_AUTH_ARGON2_MEMORY_KIB", "1024".to_owned()),
            ("KTRA_AUTH_ARGON2_ITERATIONS", "1".to_owned()),
            ("KTRA_INDEXER_LISTEN", format!("127.0.0.1:{indexer_port}")),
            (
                "KTRA_INDEXER_METRICS_LISTEN",
                format!("127.0.0.1:{indexer_metrics_port}"),
            ),
            ("KTRA_INDEXER_RESEND_INTERVAL_SECS", "1".to_owned()),
            ("KTRA_GIT_REMOTE_URL", remote_url.clone()),
            (
                "KTRA_GIT_LOCAL_PATH",
                dir.path().join("index").display().to_string(),
            ),
            ("KTRA_GIT_RETRY_MAX_SECS", "1".to_owned()),
            // Bursts of publishes from one address and one user are what these tests do.
            ("KTRA_LIMITS_PUBLISH_PER_USER_PER_MINUTE", "0".to_owned()),
            ("KTRA_LIMITS_PUBLISH_PER_IP_PER_MINUTE", "0".to_owned()),
            ("KTRA_LIMITS_REGISTER_PER_IP_PER_HOUR", "0".to_owned()),
            ("RUST_LOG", "info".to_owned()),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
        if self.indexer {
            env.push((
                "KTRA_INDEXER_URL".to_owned(),
                format!("http://127.0.0.1:{indexer_port}"),
            ));
        }
        for (name, value) in &self.env {
            env.retain(|(existing, _)| existing != name);
            env.push((name.clone(), value.clone()));
        }
        let indexer = self.indexer.then(|| {
            start_ktra_service(
                "indexer",
                "ktra-indexer",
                env.clone(),
                dir.path(),
                indexer_port,
            )
        });
        let api = start_ktra_service("api", "ktra-api", env.clone(), dir.path(), api_port);
        let registry = Registry {
            indexer_metrics: format!("http://127.0.0.1:{indexer_metrics_port}"),
            base,
            remote_url,
            remote_path,
            client: reqwest::Client::new(),
            api,
            indexer,
            env,
            acknowledgement: self.acknowledgement,
            acknowledgement_checked: AtomicBool::new(false),
            dir,
        };
        registry.wait_ready().await;
        registry
    }
}

/// A running registry.
#[derive(Debug)]
pub struct Registry {
    /// `http://127.0.0.1:{port}` of the API.
    pub base: String,
    /// `http://127.0.0.1:{port}` of the indexer's metrics and health server.
    pub indexer_metrics: String,
    /// The git remote's URL as the indexer uses it.
    pub remote_url: String,
    /// The default `file://` remote's directory (unused when another remote was given).
    pub remote_path: PathBuf,
    /// An HTTP client.
    pub client: reqwest::Client,
    /// The API process.
    pub api: Service,
    /// The indexer process.
    pub indexer: Option<Service>,
    env: Vec<(String, String)>,
    acknowledgement: Acknowledgement,
    /// Set once [`Registry::finish`] has checked, so that dropping does not check again.
    acknowledgement_checked: AtomicBool,
    dir: TempDir,
}

/// Index changes still unacknowledged when a test finished with its registry.
#[derive(Debug, Clone, PartialEq)]
pub struct Unacknowledged {
    /// How many crates the API counted, or `None` when it never answered with its gauge.
    pub crates: Option<f64>,
    /// How long the harness waited for the count to reach 0.
    pub waited: Duration,
}

impl fmt::Display for Unacknowledged {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.crates {
            Some(crates) => write!(
                formatter,
                "the test left {crates} crate(s) with index changes the indexer never acknowledged \
                 ({UNACKNOWLEDGED_GAUGE} after {:?})",
                self.waited
            )?,
            None => write!(
                formatter,
                "the API did not report {UNACKNOWLEDGED_GAUGE} within {:?}",
                self.waited
            )?,
        }
        write!(
            formatter,
            "; a test that means to leave changes behind starts its registry with \
             `expect_unacknowledged()`"
        )
    }
}

impl std::error::Error for Unacknowledged {}

impl Registry {
    /// Starts the default setup: both services, a `file://` remote.
    pub async fn start() -> Self {
        RegistryBuilder::default().start().await
    }

    /// Returns the builder.
    pub fn builder() -> RegistryBuilder {
        RegistryBuilder::default()
    }

    /// The test's temporary directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The environment both services get.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// Returns `base` joined with `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Reads the API's count of crates whose latest index change the indexer has not
    /// acknowledged; `None` when the API does not answer with it.
    pub async fn unacknowledged_crates(&self) -> Option<f64> {
        unacknowledged_crates(&self.client, &self.base).await
    }

    /// Waits until the API counts no unacknowledged crate, for at most `timeout`.
    ///
    /// # Errors
    ///
    /// Returns the last count when it is still above 0 at the deadline.
    pub async fn wait_acknowledged(&self, timeout: Duration) -> Result<(), Unacknowledged> {
        wait_acknowledged(&self.client, &self.base, timeout).await
    }

    /// Checks now what dropping the registry would check: that the indexer acknowledged every
    /// change (unless the builder said otherwise). For a test that stops the API itself at its
    /// end, after which the gauge cannot be read.
    ///
    /// # Panics
    ///
    /// When changes stay unacknowledged, naming their count, with both services' logs.
    pub async fn finish(&self) {
        self.acknowledgement_checked.store(true, Ordering::Relaxed);
        let Some(timeout) = self.acknowledgement_deadline() else {
            return;
        };
        if let Err(unacknowledged) = self.wait_acknowledged(timeout).await {
            self.fail_unacknowledged(&unacknowledged);
        }
    }

    /// The deadline the end of the test gives the indexer, or `None` when nothing is checked:
    /// there is no indexer, or the test opted out.
    fn acknowledgement_deadline(&self) -> Option<Duration> {
        match self.acknowledgement {
            Acknowledgement::Within(timeout) if self.indexer.is_some() => Some(timeout),
            _ => None,
        }
    }

    fn fail_unacknowledged(&self, unacknowledged: &Unacknowledged) -> ! {
        panic!(
            "{unacknowledged}\n{}\n{}",
            self.indexer_log_tail(),
            self.api.log_tail()
        );
    }

    /// The indexer's last log lines, or nothing when this registry runs none.
    fn indexer_log_tail(&self) -> String {
        self.indexer
            .as_ref()
            .map(Service::log_tail)
            .unwrap_or_default()
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self) {
        let ready = poll_until_true(Duration::from_secs(20), async || {
            let response = self.client.get(self.url("/readyz")).send().await;
            response.is_ok_and(|response| response.status() == StatusCode::OK)
        })
        .await;
        assert!(ready, "the API never became ready\n{}", self.api.log_tail());
    }

    /// Creates a user with password `password123`; returns the token.
    pub async fn create_user(&self, name: &str) -> String {
        new_user(&self.base, name, "password123").await
    }

    /// Sends a publish body; returns the status and JSON answer, or `None` when the request
    /// failed at the transport (the API was down).
    pub async fn publish(&self, token: &str, body: Vec<u8>) -> Option<(StatusCode, Value)> {
        let response = self
            .client
            .put(self.url("/api/v1/crates/new"))
            .header("Authorization", token)
            .body(body)
            .send()
            .await
            .ok()?;
        let status = response.status();
        let text = response.text().await.ok()?;
        Some((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }

    /// Publishes `fixture` and asserts the API accepted it; returns its answer.
    pub async fn publish_ok(&self, token: &str, fixture: &CrateFixture) -> Value {
        let (status, body) = self
            .publish(token, fixture.body())
            .await
            .expect("the API answers");
        assert_eq!(
            status,
            StatusCode::OK,
            "publishing {} {}: {body}",
            fixture.name,
            fixture.version
        );
        body
    }

    /// Yanks (or unyanks) a version.
    pub async fn set_yanked(&self, token: &str, name: &str, version: &str, yanked: bool) {
        let (method, action) = if yanked {
            (reqwest::Method::DELETE, "yank")
        } else {
            (reqwest::Method::PUT, "unyank")
        };
        let response = self
            .client
            .request(
                method,
                self.url(&format!("/api/v1/crates/{name}/{version}/{action}")),
            )
            .header("Authorization", token)
            .send()
            .await
            .expect("the API answers");
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{}",
            response.text().await.unwrap_or_default()
        );
    }

    /// Sends `GET {path}` to the API, with `token` as the `Authorization` header when given.
    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.header(reqwest::header::AUTHORIZATION, token);
        }
        request.send().await.expect("the API answers")
    }

    /// Returns a crate's sparse index file (the store's state), or `None` on 404.
    pub async fn sparse_file(&self, path: &str) -> Option<String> {
        let response = self.get(&format!("/index/{path}"), None).await;
        match response.status() {
            StatusCode::OK => Some(response.text().await.expect("a body")),
            StatusCode::NOT_FOUND => None,
            other => panic!("GET /index/{path}: {other}"),
        }
    }

    /// Compares the git remote's branch with the store (through the sparse index): the same
    /// crate files with the same content, `config.json` as configured, nothing else. `known`
    /// lists the crates the test published. Returns the differences.
    pub async fn remote_differences(&self, remote_dir: &Path, known: &[String]) -> Vec<String> {
        let files = crate::git::branch_files(remote_dir, "main");
        let mut differences = Vec::new();
        let mut expected: BTreeMap<String, String> = BTreeMap::new();
        for name in known {
            let path = ktra_core::index::index_path(name);
            if let Some(content) = self.sparse_file(&path).await {
                expected.insert(path, content);
            }
        }
        for (path, content) in &files {
            if !is_index_path(path) {
                // Files someone else added outside the index (a README) are not ours to judge.
                continue;
            }
            if path == "config.json" {
                let config: Value = serde_json::from_str(content).unwrap_or(Value::Null);
                if config["api"] != self.base.as_str() {
                    differences.push(format!("config.json: {content}"));
                }
                continue;
            }
            if !expected.contains_key(path) {
                match self.sparse_file(path).await {
                    Some(store) if &store == content => {}
                    Some(_) => differences.push(format!("{path}: differs from the store")),
                    None => differences.push(format!("{path}: not in the store")),
                }
            }
        }
        if !files.contains_key("config.json") {
            differences.push("config.json: missing".to_owned());
        }
        for (path, content) in &expected {
            match files.get(path) {
                Some(remote) if remote == content => {}
                Some(remote) => differences.push(format!(
                    "{path}: remote has {} lines, store {}",
                    remote.lines().count(),
                    content.lines().count()
                )),
                None => differences.push(format!("{path}: missing from the remote")),
            }
        }
        differences
    }

    /// Waits until the remote equals the store; panics with the differences after `timeout`.
    pub async fn wait_converged(&self, remote_dir: &Path, known: &[String], timeout: Duration) {
        let mut differences = Vec::new();
        let converged = poll_until_true(timeout, async || {
            differences = self.remote_differences(remote_dir, known).await;
            differences.is_empty()
        })
        .await;
        assert!(
            converged,
            "the remote did not converge to the store in {timeout:?}:\n{}\n{}\n{}",
            differences.join("\n"),
            self.indexer_log_tail(),
            self.api.log_tail()
        );
    }

    /// [`Registry::wait_converged`] for the default `file://` remote, [`Registry::remote_path`].
    pub async fn wait_remote_converged(&self, known: &[String], timeout: Duration) {
        self.wait_converged(&self.remote_path, known, timeout).await;
    }

    /// Returns the indexer process (the test set one up).
    pub fn indexer(&self) -> &Service {
        self.indexer
            .as_ref()
            .expect("this registry runs an indexer")
    }

    /// Runs `ktra-api` with a subcommand and this registry's environment; returns (exit code,
    /// stdout).
    pub fn api_command(&self, args: &[&str]) -> (i32, String) {
        let output = std::process::Command::new(workspace_binary("ktra-api"))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(name, value)| (name, value)))
            .env(
                "KTRA_INDEXER_URL",
                format!(
                    "http://127.0.0.1:{}",
                    self.indexer.as_ref().map_or(0, |indexer| indexer.port)
                ),
            )
            .output()
            .expect("ktra-api runs");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr);
        (
            output.status.code().unwrap_or(-1),
            format!("{stdout}{stderr}"),
        )
    }
}

impl Drop for Registry {
    /// Fails the test when it leaves index changes unacknowledged (see the module docs). A test
    /// that is already failing, or that stopped the API (nothing can be read then), is left
    /// alone.
    fn drop(&mut self) {
        if std::thread::panicking()
            || self.acknowledgement_checked.load(Ordering::Relaxed)
            || !self.api.is_running()
        {
            return;
        }
        let Some(timeout) = self.acknowledgement_deadline() else {
            return;
        };
        let base = self.base.as_str();
        // Dropping happens inside the test's runtime, which cannot be blocked on; the check
        // runs on a thread of its own with a runtime and a client of its own.
        let outcome = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("a current-thread runtime builds")
                        .block_on(wait_acknowledged(&reqwest::Client::new(), base, timeout))
                })
                .join()
        });
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(unacknowledged)) => self.fail_unacknowledged(&unacknowledged),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

/// Reads [`UNACKNOWLEDGED_GAUGE`] from the API at `base`; `None` when it does not answer.
async fn unacknowledged_crates(client: &reqwest::Client, base: &str) -> Option<f64> {
    let response = client.get(format!("{base}/metrics")).send().await.ok()?;
    let page = response.text().await.ok()?;
    crate::metrics::value(&page, UNACKNOWLEDGED_GAUGE)
}

/// Waits until the API at `base` counts no unacknowledged crate, for at most `timeout`.
async fn wait_acknowledged(
    client: &reqwest::Client,
    base: &str,
    timeout: Duration,
) -> Result<(), Unacknowledged> {
    let mut last = None;
    let acknowledged = poll_until(timeout, async || {
        last = unacknowledged_crates(client, base).await;
        (last == Some(0.0)).then_some(())
    })
    .await;
    acknowledged.ok_or(Unacknowledged {
        crates: last,
        waited: timeout,
    })
}

/// Registers a user through Ktra's user API at `base` (this registry's, or Ktra's own);
/// returns the token from the answer.
pub async fn new_user(base: &str, name: &str, password: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("{base}/ktra/api/v1/new_user/{name}"))
        .json(&serde_json::json!({"password": password}))
        .send()
        .await
        .expect("the API answers");
    let body: Value = response.json().await.expect("a JSON answer");
    body["token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token: {body}"))
        .to_owned()
}

/// Returns whether a path is one the index manages: `config.json` or a crate file at its
/// canonical path.
fn is_index_path(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or_default();
    path == "config.json"
        || (ktra_core::name::validate_crate_name(name).is_ok()
            && name.to_ascii_lowercase() == name
            && ktra_core::index::index_path(name) == path)
}
