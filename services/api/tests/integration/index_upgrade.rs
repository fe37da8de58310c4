//! Index files that earlier releases wrote with `null` keys are rewritten when a replica
//! starts, and marked for the indexer.

use ktra_core::name::CrateId;
use std::time::Duration;

use ktra_testing::fixtures::CrateFixture;
use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{Backend, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_starting_replica_drops_null_keys_from_old_index_files() {
    let first = TestApp::start_on(Backend::RedisS3, &[]).await;
    let token = first.create_user("alice").await;
    let (status, body) = first
        .publish(Some(&token), CrateFixture::new("legacy", "1.0.0").body())
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The file as an earlier release wrote it: a dependency with every unset key as null.
    let published = first
        .store
        .index_file(&CrateId::new("legacy").unwrap())
        .await
        .unwrap()
        .unwrap();
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
    assert!(
        first
            .store
            .acknowledge(&CrateId::new("legacy").unwrap(), written.revision)
            .await
            .unwrap()
    );

    let _second = first.replica().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let upgraded = loop {
        let file = first
            .store
            .index_file(&CrateId::new("legacy").unwrap())
            .await
            .unwrap()
            .unwrap();
        if file.revision > written.revision {
            break file;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the file was not rewritten: {old}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
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
