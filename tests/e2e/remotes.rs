//! The indexer against real remotes: git daemon with a refusing hook, http with basic auth,
//! ssh with a key. Each ends with the remote holding exactly the store's state.

use std::time::Duration;

use ktra_testing::fixtures::CrateFixture;
use ktra_testing::git::branch_files;
use ktra_testing::poll::poll_until_true;
use ktra_testing::registry::Registry;
use ktra_testing::remotes::{HttpRemote, ServedRepo, SshRemote, set_refusing};
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
    let served = ServedRepo::create();
    let remote_dir = served.path.clone();
    set_refusing(&remote_dir, true);
    let (_daemon, url) = served.git_daemon();
    let (registry, token) = Registry::builder()
        .remote(&url)
        .env("KTRA_INDEXER_ACK_TIMEOUT_MS", "300")
        .start_with_user("alice")
        .await;
    // Publishes succeed (the store has them) while the git index cannot be pushed.
    let names = publish_many(&registry, &token, "frozen", 3).await;
    let reported = poll_until_true(Duration::from_secs(10), async || {
        registry
            .indexer()
            .log()
            .contains("pre-receive hook declined")
    })
    .await;
    assert!(
        reported,
        "the refusal is reported:\n{}",
        registry.indexer().log()
    );
    assert!(
        branch_files(&remote_dir, "main").is_empty(),
        "a refused push landed"
    );

    set_refusing(&remote_dir, false);
    registry
        .wait_converged(&remote_dir, &names, Duration::from_secs(20))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_remote_with_basic_auth() {
    let served = ServedRepo::create();
    let http = HttpRemote::start(served.root(), served.root());
    let (registry, token) = Registry::builder()
        .remote(&http.url(ServedRepo::NAME))
        .env("KTRA_GIT_HTTPS_USERNAME", &http.user)
        .env("KTRA_GIT_HTTPS_PASSWORD", &http.password)
        .start_with_user("alice")
        .await;
    let names = publish_many(&registry, &token, "overhttp", 3).await;
    registry
        .wait_converged(&served.path, &names, Duration::from_secs(10))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_remote_with_a_key_and_known_hosts() {
    let served = ServedRepo::create();
    let ssh = SshRemote::start(served.root());
    let (registry, token) = Registry::builder()
        .remote(&ssh.url(&served.path))
        .env(
            "KTRA_GIT_SSH_PRIVKEY_PATH",
            &ssh.private_key.display().to_string(),
        )
        .env(
            "KTRA_GIT_SSH_KNOWN_HOSTS",
            &ssh.known_hosts.display().to_string(),
        )
        .start_with_user("alice")
        .await;
    let names = publish_many(&registry, &token, "overssh", 3).await;
    registry
        .wait_converged(&served.path, &names, Duration::from_secs(10))
        .await;
}
