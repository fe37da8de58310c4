//! The harness's own promise: a test that leaves index changes the indexer never acknowledged
//! is reported, unless it says it means to.

use std::time::Duration;

use ktra_testing::fixtures::CrateFixture;
use ktra_testing::registry::{Registry, RegistryBuilder};

/// Starts a registry from `builder` whose API answers publishes without waiting for the
/// indexer, stops the indexer for good, and publishes one crate it will never acknowledge.
async fn publish_past_a_stopped_indexer(builder: RegistryBuilder) -> Registry {
    let registry = builder
        .env("KTRA_INDEXER_ACK_TIMEOUT_MS", "0")
        .start()
        .await;
    let token = registry.create_user("alice").await;
    assert_eq!(
        registry.unacknowledged_crates().await,
        Some(0.0),
        "a fresh registry has nothing unacknowledged"
    );
    registry.indexer().kill();
    registry
        .publish_ok(&token, &CrateFixture::new("left_behind", "1.0.0"))
        .await;
    registry
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_the_stopped_indexer_never_acknowledged_is_counted() {
    let registry =
        publish_past_a_stopped_indexer(Registry::builder().expect_unacknowledged()).await;
    let unacknowledged = registry
        .wait_acknowledged(Duration::from_secs(2))
        .await
        .expect_err("nothing acknowledges the publish");
    assert_eq!(unacknowledged.crates, Some(1.0), "{unacknowledged}");
    // The builder said so: dropping the registry checks nothing.
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[should_panic(
    expected = "the test left 1 crate(s) with index changes the indexer never acknowledged"
)]
async fn a_test_that_leaves_a_publish_unacknowledged_fails() {
    let registry = publish_past_a_stopped_indexer(
        Registry::builder().acknowledge_within(Duration::from_secs(2)),
    )
    .await;
    drop(registry);
}
