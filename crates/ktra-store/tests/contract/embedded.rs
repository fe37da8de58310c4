//! The contract against the embedded redb store.

use std::sync::Arc;

use ktra_store::{AccountStore, EmbeddedStore, IndexStore, MetadataStore};
use tempfile::TempDir;

use crate::suite::fixtures::{id, new_user, published, registered, token};

async fn open() -> (TempDir, Arc<dyn MetadataStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    (dir, Arc::new(store))
}

contract_tests!(open);

#[test]
fn reopening_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let user = store
            .create_user(new_user("alice", "hash", token()))
            .await
            .unwrap();
        published(&store, "kept", "1.0.0", user.id).await;
    });
    runtime.block_on(async {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let file = store.index_file(&id("kept")).await.unwrap().unwrap();
        assert_eq!(file.revision, 1);
        assert!(store.user_credentials("alice").await.unwrap().is_some());
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_stored_by_earlier_releases_take_metadata_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let user = registered(&store, "alice").await;
    published(&store, "legacy", "1.0.0", user.id).await;
    drop(store);
    // What an earlier release left: a version record without publish time or publisher, and
    // no metadata.
    let db = redb::Database::open(dir.path().join("ktra.redb")).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let key = ("legacy", "1.0.0");
        let mut versions = txn
            .open_table(redb::TableDefinition::<(&str, &str), &[u8]>::new(
                "versions",
            ))
            .unwrap();
        versions
            .insert(
                key,
                br#"{"vers":"1.0.0","line":0,"cksum":"ab","blob_key":"k","yanked":false}"#
                    .as_slice(),
            )
            .unwrap();
        txn.open_table(redb::TableDefinition::<(&str, &str), &[u8]>::new(
            "version_metadata",
        ))
        .unwrap()
        .remove(key)
        .unwrap();
        txn.open_table(redb::TableDefinition::<(&str, &str), &str>::new("readmes"))
            .unwrap()
            .remove(key)
            .unwrap();
    }
    txn.commit().unwrap();
    drop(db);
    let store = EmbeddedStore::open(dir.path()).unwrap();
    crate::suite::legacy_version_takes_metadata_once(&store).await;
}
