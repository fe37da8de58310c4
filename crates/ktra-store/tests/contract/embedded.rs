//! The contract against the embedded redb store.

use std::sync::Arc;

use ktra_store::{EmbeddedStore, MetadataStore};
use tempfile::TempDir;

use crate::suite;

fn open() -> (TempDir, Arc<dyn MetadataStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    (dir, Arc::new(store))
}

macro_rules! contract_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (_dir, store) = open();
                suite::$name(store).await;
            }
        )*
    };
}

contract_tests!(
    users_and_tokens,
    publish_appends_and_refuses,
    yank_flips_one_line,
    owners_never_run_out,
    pending_changes_and_acknowledgements,
    search_and_listing,
    concurrent_publishes_of_one_version_admit_one,
    rate_windows_count_and_end,
);

#[test]
fn reopening_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let user = store
            .create_user("alice", "hash", suite::token())
            .await
            .unwrap();
        suite::publish_one(&store, "kept", "1.0.0", user.id)
            .await
            .unwrap();
    });
    runtime.block_on(async {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let file = store.index_file("kept").await.unwrap().unwrap();
        assert_eq!(file.revision, 1);
        assert!(store.user_credentials("alice").await.unwrap().is_some());
    });
}
