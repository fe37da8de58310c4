//! `ktra -c ktra.toml`: one command and one Ktra-style file run both services, as Ktra ran.

use std::net::TcpStream;

use ktra_testing::cargo::{CargoHome, library_package};
use ktra_testing::git::{branch_files, init_bare};
use ktra_testing::process::{Service, free_port, workspace_binary};
use ktra_testing::registry::new_user;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_command_runs_both_services_from_a_ktra_file() {
    let dir = tempfile::tempdir().unwrap();
    let remote = dir.path().join("index.git");
    init_bare(&remote);
    let (port, indexer_port) = (free_port(), free_port());
    let base = format!("http://127.0.0.1:{port}");
    let root = dir.path().display();
    // Ktra's keys as Ktra 0.7 reads them (`name`, `email`), and the indexer's address, which
    // Ktra had no key for.
    let toml = dir.path().join("ktra.toml");
    std::fs::write(
        &toml,
        format!(
            "[index_config]\nremote_url = \"file://{remote}\"\nlocal_path = \"{root}/index\"\n\
             branch = \"main\"\nname = \"ktra\"\nemail = \"ktra@example.com\"\n\n\
             [crate_files_config]\ndl_dir_path = \"{root}/crates\"\n\n\
             [db_config]\ndb_dir_path = \"{root}/db\"\n\n\
             [server_config]\naddress = [127, 0, 0, 1]\nport = {port}\n\n\
             [indexer_config]\nlisten = \"127.0.0.1:{indexer_port}\"\n\
             metrics_listen = \"127.0.0.1:{metrics}\"\n",
            remote = remote.display(),
            metrics = free_port(),
        ),
    )
    .unwrap();
    let ktra = Service::new(
        "ktra",
        workspace_binary("ktra"),
        &["-c", &toml.display().to_string()],
        vec![("RUST_LOG".to_owned(), "info".to_owned())],
        dir.path(),
        port,
    );
    ktra.start();
    let token = new_user(&base, "alice", "a long password").await;

    // Through the git index: cargo waits until the version is there, so the indexer runs and
    // the API hands it the publish.
    let index = format!("file://{}", remote.display());
    let cargo = CargoHome::logged_in("ktra", &index, &token).await;
    let lib = library_package(dir.path(), "one_command", "0.1.0", "");
    cargo.publish(&lib, "ktra").await;
    let files = branch_files(&remote, "main");
    assert!(files.contains_key("on/e_/one_command"), "{files:?}");
    let config: Value = serde_json::from_str(&files["config.json"]).unwrap();
    assert_eq!(config["api"], base.as_str(), "from server_config.port");

    // One signal stops both.
    ktra.terminate();
    assert!(TcpStream::connect(("127.0.0.1", indexer_port)).is_err());
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}
