//! Rate-limit windows shared by replicas.

use std::sync::Arc;

use ktra_store::MetadataStore;

pub(crate) async fn rate_windows_count_and_end(store: Arc<dyn MetadataStore>) {
    let window = std::time::Duration::from_millis(400);
    for expected in 1..=3 {
        let (hits, left) = store.count_hit("login:ip:10.0.0.1", window).await.unwrap();
        assert_eq!(hits, expected);
        assert!(left <= window && !left.is_zero(), "{left:?}");
    }
    // Buckets are apart.
    let (hits, _) = store.count_hit("login:ip:10.0.0.2", window).await.unwrap();
    assert_eq!(hits, 1);
    // Concurrent hits are each counted once.
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let store = Arc::clone(&store);
        tasks.spawn(async move { store.count_hit("burst", window).await.unwrap().0 });
    }
    let mut seen: Vec<u64> = tasks.join_all().await;
    seen.sort_unstable();
    assert_eq!(seen, (1..=20).collect::<Vec<_>>());
    // A new window starts once the old one ended.
    tokio::time::sleep(window + std::time::Duration::from_millis(50)).await;
    let (hits, _) = store.count_hit("login:ip:10.0.0.1", window).await.unwrap();
    assert_eq!(hits, 1);
}
