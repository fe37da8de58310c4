//! A remote that already holds an index this registry did not write (Ktra's, say) loses
//! nothing: the first publish of one of its crates does not replace the crate's file.

use std::path::Path;
use std::time::Duration;

use ktra_testing::fixtures::CrateFixture;
use ktra_testing::git::{branch_files, commit_count, git, init_bare};
use ktra_testing::metrics;
use ktra_testing::poll::poll_until_true;
use ktra_testing::registry::Registry;
use reqwest::StatusCode;

/// The crate file as another registry wrote it: two versions, one yanked, null keys and all.
const FOREIGN_LINES: &str = concat!(
    r#"{"name":"old_crate","vers":"0.1.0","deps":[],"cksum":"0000000000000000000000000000000000000000000000000000000000000001","features":{},"yanked":false,"links":null}"#,
    "\n",
    r#"{"name":"old_crate","vers":"0.2.0","deps":[],"cksum":"0000000000000000000000000000000000000000000000000000000000000002","features":{},"yanked":true,"links":null}"#,
    "\n",
);
const FOREIGN_PATH: &str = "ol/d_/old_crate";

/// Creates a bare remote under `dir` holding another registry's index; returns its URL.
fn foreign_remote(dir: &Path) -> String {
    foreign_remote_with_config(
        dir,
        "{\"dl\":\"http://old.example/dl\",\"api\":\"http://old.example\"}\n",
    )
}

/// Likewise, with the given `config.json`.
fn foreign_remote_with_config(dir: &Path, config_json: &str) -> String {
    let remote = dir.join("foreign.git");
    init_bare(&remote);
    let url = format!("file://{}", remote.display());
    let work = dir.join("work");
    std::fs::create_dir_all(work.join("ol/d_")).unwrap();
    git(&work, &["init", "--quiet", "--initial-branch=main", "."]);
    std::fs::write(work.join("config.json"), config_json).unwrap();
    std::fs::write(work.join(FOREIGN_PATH), FOREIGN_LINES).unwrap();
    git(&work, &["add", "--all"]);
    git(
        &work,
        &["commit", "--quiet", "-m", "another registry's index"],
    );
    git(&work, &["push", "--quiet", &url, "HEAD:main"]);
    url
}

async fn publish(registry: &Registry, token: &str, name: &str, version: &str) {
    let (status, body) = registry
        .publish(token, CrateFixture::new(name, version).body())
        .await
        .expect("the API answers");
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crate_files_written_elsewhere_are_never_cut_short() {
    let dir = tempfile::tempdir().unwrap();
    let url = foreign_remote(dir.path());
    // The old crate's change is refused for good: it stays unacknowledged.
    let (registry, token) = Registry::builder()
        .remote(&url)
        .expect_unacknowledged()
        .start_with_user("alice")
        .await;
    let remote = dir.path().join("foreign.git");

    // The store knows only 0.3.0 of the old crate: writing its file would drop two versions.
    publish(&registry, &token, "old_crate", "0.3.0").await;
    // A crate the remote does not have is written as always (publish waits for the push).
    publish(&registry, &token, "fresh_crate", "0.1.0").await;
    let files = branch_files(&remote, "main");
    assert!(files.contains_key("fr/es/fresh_crate"), "{files:?}");
    assert_eq!(files[FOREIGN_PATH], FOREIGN_LINES);

    // Offered again by the resender, refused again: still untouched, and the reason is logged.
    let refusals = async || {
        let page = reqwest::get(format!("{}/metrics", registry.indexer_metrics))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        metrics::value(&page, "ktra_indexer_foreign_file_refusals_total")
    };
    let refused_again = poll_until_true(Duration::from_secs(10), async || {
        refusals().await.is_some_and(|count| count >= 2.0)
    })
    .await;
    assert!(refused_again, "refusals: {:?}", refusals().await);
    assert_eq!(branch_files(&remote, "main")[FOREIGN_PATH], FOREIGN_LINES);
    let log = registry.indexer().log();
    assert!(
        log.contains("versions this registry does not have (0.1.0, 0.2.0)")
            && log.contains("ktra-api import"),
        "{log}"
    );
    let metrics = reqwest::get(format!("{}/metrics", registry.indexer_metrics))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.lines().any(
            |line| line.starts_with("ktra_indexer_foreign_file_refusals_total ")
                && !line.ends_with(" 0")
        ),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_may_allow_the_overwrite_explicitly() {
    let dir = tempfile::tempdir().unwrap();
    let url = foreign_remote(dir.path());
    let (registry, token) = Registry::builder()
        .remote(&url)
        .env("KTRA_GIT_OVERWRITE_FOREIGN_FILES", "true")
        .start_with_user("alice")
        .await;
    publish(&registry, &token, "old_crate", "0.3.0").await;
    let files = branch_files(&dir.path().join("foreign.git"), "main");
    let lines: Vec<&str> = files[FOREIGN_PATH].lines().collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("\"vers\":\"0.3.0\""), "{lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_json_that_says_the_same_is_left_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    // Our keys in another order and format, and a key of the operator's.
    let config_json = "{\"api\": \"http://registry.example\", \"note\": \"kept\",\n \"dl\": \"http://registry.example/dl\"}\n";
    let url = foreign_remote_with_config(dir.path(), config_json);
    let (registry, token) = Registry::builder()
        .remote(&url)
        .env("KTRA_REGISTRY_PUBLIC_URL", "http://registry.example")
        .start_with_user("alice")
        .await;
    publish(&registry, &token, "fresh_crate", "0.1.0").await;
    let remote = dir.path().join("foreign.git");
    let files = branch_files(&remote, "main");
    assert_eq!(files["config.json"], config_json);
    assert!(files.contains_key("fr/es/fresh_crate"));
    // The first commit and the publish's: none for config.json.
    assert_eq!(commit_count(&remote, "main"), 2);
}

#[test]
fn a_remote_without_the_configured_branch_but_with_others_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let url = foreign_remote(dir.path());
    let remote = dir.path().join("foreign.git");
    // The index lives on `master` only, as many older remotes have it.
    git(&remote, &["branch", "-m", "main", "master"]);
    let output =
        std::process::Command::new(ktra_testing::process::workspace_binary("ktra-indexer"))
            .env_clear()
            .env("KTRA_GIT_REMOTE_URL", &url)
            .env("KTRA_GIT_LOCAL_PATH", dir.path().join("clone"))
            .env(
                "KTRA_INDEXER_LISTEN",
                format!("127.0.0.1:{}", ktra_testing::process::free_port()),
            )
            .env(
                "KTRA_INDEXER_METRICS_LISTEN",
                format!("127.0.0.1:{}", ktra_testing::process::free_port()),
            )
            .output()
            .expect("the indexer runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("the remote has no branch `main` but has `master`"),
        "{stderr}"
    );
    // Nothing was pushed: no orphan `main` beside the index.
    let branches = git(
        &remote,
        &["for-each-ref", "--format=%(refname:short)", "refs/heads"],
    );
    assert_eq!(branches.trim(), "master", "{branches}");
}
