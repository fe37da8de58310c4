//! The contract against the embedded redb store.

use std::sync::Arc;

use ktra_store::{AccountStore, EmbeddedStore, IndexStore, MetadataStore};
use tempfile::TempDir;

use crate::suite::fixtures::{id, new_user, published, token};

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
