//! The indexer against real remotes: git daemon with a refusing hook, http with basic auth,
//! ssh with a key. Each ends with the remote holding exactly the store's state.

use std::time::Duration;

use ktra_testing::fixtures::CrateFixture;
use ktra_testing::git::{branch_files, init_bare};
use ktra_testing::registry::Registry;
use ktra_testing::remotes::{GitDaemon, HttpRemote, SshRemote, set_refusing};
use reqwest::StatusCode;

/// Publishes `count` crates named `{prefix}{n}`; returns their names.
pub(crate) async fn publish_many(
    registry: &Registry,
    token: &str,
    prefix: &str,
    count: usize,
) -> Vec<String> {
    let mut names = Vec::new();
    for index in 0..count {
        let name = format!("{prefix}{index}");
        let (status, body) = registry
            .publish(token, CrateFixture::new(&name, "1.0.0").body())
            .await
            .expect("the API answers");
        assert_eq!(status, StatusCode::OK, "{body}");
        names.push(name);
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_remote_is_never_taken_for_success() {
    let served = tempfile::tempdir().unwrap();
    let remote_dir = served.path().join("index.git");
    init_bare(&remote_dir);
    set_refusing(&remote_dir, true);
    let daemon = GitDaemon::start(served.path(), served.path());
    let registry = Registry::builder()
        .remote(&daemon.url("index.git"))
        .env("KTRA_INDEXER_ACK_TIMEOUT_MS", "300")
        .start()
        .await;
    let token = registry.create_user("alice").await;
    // Publishes succeed (the store has them) while the git index cannot be pushed.
    let names = publish_many(&registry, &token, "frozen", 3).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        branch_files(&remote_dir, "main").is_empty(),
        "a refused push landed"
    );
    let log = registry.indexer.as_ref().unwrap().log();
    assert!(
        log.contains("pre-receive hook declined"),
        "the refusal is reported:\n{log}"
    );

    set_refusing(&remote_dir, false);
    registry
        .wait_converged(&remote_dir, &names, Duration::from_secs(20))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_remote_with_basic_auth() {
    let served = tempfile::tempdir().unwrap();
    let remote_dir = served.path().join("index.git");
    init_bare(&remote_dir);
    let http = HttpRemote::start(served.path(), served.path());
    let registry = Registry::builder()
        .remote(&http.url("index.git"))
        .env("KTRA_GIT_HTTPS_USERNAME", &http.user)
        .env("KTRA_GIT_HTTPS_PASSWORD", &http.password)
        .start()
        .await;
    let token = registry.create_user("alice").await;
    let names = publish_many(&registry, &token, "overhttp", 3).await;
    registry
        .wait_converged(&remote_dir, &names, Duration::from_secs(10))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_remote_with_a_key_and_known_hosts() {
    let served = tempfile::tempdir().unwrap();
    let remote_dir = served.path().join("index.git");
    init_bare(&remote_dir);
    let ssh = SshRemote::start(served.path());
    let registry = Registry::builder()
        .remote(&ssh.url(&remote_dir))
        .env(
            "KTRA_GIT_SSH_PRIVKEY_PATH",
            &ssh.private_key.display().to_string(),
        )
        .env(
            "KTRA_GIT_SSH_KNOWN_HOSTS",
            &ssh.known_hosts.display().to_string(),
        )
        .start()
        .await;
    let token = registry.create_user("alice").await;
    let names = publish_many(&registry, &token, "overssh", 3).await;
    registry
        .wait_converged(&remote_dir, &names, Duration::from_secs(10))
        .await;
}
