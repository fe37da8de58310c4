//! Index files that earlier releases wrote with `null` keys are rewritten when a replica
//! starts, and marked for the indexer.

use ktra_core::name::CrateId;
use std::time::Duration;

use serde_json::json;

use crate::harness::{Backend, TestApp, assert_ok, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_starting_replica_drops_null_keys_from_old_index_files() {
    let first = TestApp::start_on(Backend::RedisS3, &[]).await;
    let token = first.create_user("alice").await;
    assert_ok(&first.publish_crate(&token, "legacy", "1.0.0").await);

    // The file as an earlier release wrote it: a dependency with every unset key as null.
    let published = first.stored_index_file("legacy").await;
    let mut line: serde_json::Value =
        serde_json::from_slice(published.content.strip_suffix(b"\n").unwrap()).unwrap();
    line["deps"] = json!([{
        "name": "other", "req": "^1", "features": [], "optional": false,
        "default_features": true, "target": null, "kind": "normal",
        "registry": null, "package": null,
    }]);
    let old = format!("{line}\n");
    let written = first
        .store
        .replace_index_file(
            &CrateId::new("legacy").unwrap(),
            published.revision,
            old.clone().into(),
        )
        .await
        .unwrap()
        .expect("nothing else changed the crate");
    assert!(first.acknowledge("legacy", written.revision).await);

    let _second = first.replica().await;
    let what = format!("the file to be rewritten: {old}");
    let upgraded = eventually(&what, Duration::from_secs(10), || async {
        let file = first.stored_index_file("legacy").await;
        (file.revision > written.revision).then_some(file)
    })
    .await;
    let text = std::str::from_utf8(&upgraded.content).unwrap();
    assert!(!text.contains("null"), "{text}");
    let mut expected = line.clone();
    expected["deps"] = json!([{
        "name": "other", "req": "^1", "features": [], "optional": false,
        "default_features": true, "kind": "normal",
    }]);
    assert_eq!(first.index_lines("legacy").await.unwrap(), vec![expected]);
    // The indexer must follow: the rewrite is marked like a publish.
    let pending = first.store.pending_changes(10).await.unwrap();
    assert_eq!(
        pending
            .iter()
            .map(|change| (change.krate.canonical(), change.revision))
            .collect::<Vec<_>>(),
        [("legacy", upgraded.revision)]
    );
}
