//! A remote that already holds an index this registry did not write (Ktra's, say) loses
//! nothing: the first publish of one of its crates does not replace the crate's file.

use std::path::Path;

use ktra_core::testing::CrateFixture;
use ktra_e2e::git::{branch_files, git, init_bare};
use ktra_e2e::registry::Registry;
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
    let remote = dir.join("foreign.git");
    init_bare(&remote);
    let url = format!("file://{}", remote.display());
    let work = dir.join("work");
    std::fs::create_dir_all(work.join("ol/d_")).unwrap();
    git(&work, &["init", "--quiet", "--initial-branch=main", "."]);
    std::fs::write(
        work.join("config.json"),
        "{\"dl\":\"http://old.example/dl\",\"api\":\"http://old.example\"}\n",
    )
    .unwrap();
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
    let registry = Registry::builder().remote(&url).start().await;
    let token = registry.create_user("alice").await;
    let remote = dir.path().join("foreign.git");

    // The store knows only 0.3.0 of the old crate: writing its file would drop two versions.
    publish(&registry, &token, "old_crate", "0.3.0").await;
    // A crate the remote does not have is written as always (publish waits for the push).
    publish(&registry, &token, "fresh_crate", "0.1.0").await;
    let files = branch_files(&remote, "main");
    assert!(files.contains_key("fr/es/fresh_crate"), "{files:?}");
    assert_eq!(files[FOREIGN_PATH], FOREIGN_LINES);

    // Offered again by the resender, refused again: still untouched, and the reason is logged.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
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
    let registry = Registry::builder()
        .remote(&url)
        .env("KTRA_GIT_OVERWRITE_FOREIGN_FILES", "true")
        .start()
        .await;
    let token = registry.create_user("alice").await;
    publish(&registry, &token, "old_crate", "0.3.0").await;
    let files = branch_files(&dir.path().join("foreign.git"), "main");
    let lines: Vec<&str> = files[FOREIGN_PATH].lines().collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("\"vers\":\"0.3.0\""), "{lines:?}");
}
