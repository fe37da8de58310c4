//! The real cargo reads the git index the indexer pushes, over file:// and git://.

use std::time::Duration;

use ktra_testing::cargo::{CargoHome, library_package, printing_app, rewrite_library_manifest};
use ktra_testing::git::branch_files;
use ktra_testing::registry::Registry;
use ktra_testing::remotes::GitDaemon;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cargo_uses_the_git_index_over_file_and_git_protocols() {
    let (registry, token) = Registry::builder().start_with_user("alice").await;
    let file_index = format!("file://{}", registry.remote_path.display());
    let publisher = CargoHome::logged_in("ktra", &file_index, &token).await;
    let work = tempfile::tempdir().unwrap();
    let root = work.path();

    let lib = library_package(root, "Git_Lib", "0.1.0", "pub fn value() -> u32 { 7 }\n");
    publisher.publish(&lib, "ktra").await;
    // Publish answered only after the indexer pushed (the acknowledgement wait), so the git
    // index already holds the version.
    let files = branch_files(&registry.remote_path, "main");
    let line = files
        .get("gi/t_/git_lib")
        .expect("the crate is in the git index");
    assert!(line.contains("\"vers\":\"0.1.0\""), "{line}");
    let config: serde_json::Value = serde_json::from_str(&files["config.json"]).unwrap();
    assert_eq!(config["api"], registry.base.as_str());
    assert_eq!(config["dl"], format!("{}/dl", registry.base).as_str());

    let daemon = GitDaemon::start(registry.dir(), registry.dir());
    let git_index = daemon.url("remote.git");
    for (label, index) in [("file", file_index.as_str()), ("git", git_index.as_str())] {
        let consumer = CargoHome::new(&[("ktra", index)]);
        let app = printing_app(
            root,
            &format!("app-{label}"),
            "git_lib = { package = \"Git_Lib\", version = \"0.1\", registry = \"ktra\" }",
            "value",
            "git_lib::value()",
        );
        consumer.assert_runs_printing(&app, "value=7").await;
    }

    // Yank through cargo, read back through the git index.
    publisher
        .ok(root, &["yank", "--registry", "ktra", "Git_Lib@0.1.0"])
        .await;
    let files = branch_files(&registry.remote_path, "main");
    assert!(files["gi/t_/git_lib"].contains("\"yanked\":true"));
    publisher
        .ok(
            root,
            &["yank", "--undo", "--registry", "ktra", "Git_Lib@0.1.0"],
        )
        .await;

    // The next version, then `cargo update` over git://.
    rewrite_library_manifest(&lib, "Git_Lib", "0.1.1", "");
    std::fs::write(lib.join("src/lib.rs"), "pub fn value() -> u32 { 8 }\n").unwrap();
    publisher.publish(&lib, "ktra").await;
    let consumer = CargoHome::new(&[("ktra", &git_index)]);
    let app = root.join("app-git");
    consumer.ok(&app, &["update"]).await;
    let lock = std::fs::read_to_string(app.join("Cargo.lock")).unwrap();
    assert!(
        lock.contains("name = \"Git_Lib\"\nversion = \"0.1.1\""),
        "{lock}"
    );
    consumer.assert_runs_printing(&app, "value=8").await;
    registry
        .wait_remote_converged(&["Git_Lib".to_owned()], Duration::from_secs(10))
        .await;
}
