//! Index files, their revisions and acknowledgements.

use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use ktra_store::model::PendingSummary;
use ktra_store::{MetadataStore, StoreError};

use super::fixtures::*;

pub(crate) async fn pending_changes_and_acknowledgements(store: Arc<dyn MetadataStore>) {
    let alice = registered(&*store, "alice").await;
    assert!(store.pending_changes(10).await.unwrap().is_empty());
    assert_eq!(
        store.pending_summary().await.unwrap(),
        PendingSummary::default()
    );
    let before = Utc::now() - TimeDelta::seconds(1);
    published(&*store, "one", "1.0.0", alice.id).await;
    published(&*store, "two", "1.0.0", alice.id).await;
    let second = published(&*store, "two", "1.1.0", alice.id).await;
    let mut pending = store.pending_changes(10).await.unwrap();
    pending.sort_by(|a, b| a.krate.cmp(&b.krate));
    let summary: Vec<(String, u64)> = pending
        .into_iter()
        .map(|change| (change.krate.canonical().to_owned(), change.revision))
        .collect();
    assert_eq!(summary, [("one".into(), 1), ("two".into(), 2)]);
    assert_eq!(store.pending_changes(1).await.unwrap().len(), 1);
    let lag = store.pending_summary().await.unwrap();
    assert_eq!(lag.crates, 2);
    let oldest = lag.oldest.expect("the first publish's mark has a time");
    assert!(oldest >= before && oldest <= Utc::now(), "{oldest}");

    // An acknowledgement of an older revision leaves the mark.
    assert!(
        !store
            .acknowledge(&id("two"), second.revision - 1)
            .await
            .unwrap()
    );
    assert!(
        store
            .acknowledge(&id("two"), second.revision)
            .await
            .unwrap()
    );
    // The second publish of `two` kept the time its crate was first marked.
    assert_eq!(store.pending_summary().await.unwrap().oldest, Some(oldest));
    assert!(store.acknowledge(&id("one"), 1).await.unwrap());
    assert!(!store.acknowledge(&id("one"), 1).await.unwrap());
    assert!(store.pending_changes(10).await.unwrap().is_empty());
    assert_eq!(
        store.pending_summary().await.unwrap(),
        PendingSummary::default()
    );

    // A yank marks the crate again.
    store
        .set_yanked(yank("one", "1.0.0", true, alice.id, None))
        .await
        .unwrap();
    let pending = store.pending_changes(10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(
        (pending[0].krate.canonical(), pending[0].revision),
        ("one", 2)
    );
}

pub(crate) async fn index_files_are_replaced_only_at_their_revision(store: Arc<dyn MetadataStore>) {
    let alice = registered(&*store, "alice").await;
    let original = published(&*store, "kept", "1.0.0", alice.id).await;
    assert!(
        store
            .acknowledge(&id("kept"), original.revision)
            .await
            .unwrap()
    );
    let rewritten = bytes::Bytes::from(format!("{}\n", lines(&original)[0].to_json()));

    // A replacement at an old revision writes nothing.
    assert!(
        store
            .replace_index_file(&id("kept"), original.revision - 1, rewritten.clone())
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store.index_file(&id("kept")).await.unwrap().unwrap(),
        original
    );

    let replaced = store
        .replace_index_file(&id("kept"), original.revision, rewritten.clone())
        .await
        .unwrap()
        .expect("the revision is current");
    assert_eq!(replaced.content, rewritten);
    assert_eq!(replaced.revision, original.revision + 1);
    assert_eq!(replaced.krate.name(), "kept");
    assert_eq!(
        store.index_file(&id("kept")).await.unwrap().unwrap(),
        replaced
    );
    let pending = store.pending_changes(10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].revision, replaced.revision);

    assert!(matches!(
        store
            .replace_index_file(&id("missing"), 1, rewritten)
            .await
            .unwrap_err(),
        StoreError::CrateNotFound(_)
    ));
}
