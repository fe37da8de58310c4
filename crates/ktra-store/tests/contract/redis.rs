//! The contract against a real redis-server, one per test.

use std::sync::Arc;

use ktra_store::{
    AccountStore, IndexStore, InstrumentedStore, MetadataStore, RedisStore, StoreError, StoreKind,
};
use ktra_testing::servers::RedisServer;
use tempfile::TempDir;

use crate::recorder::Recorder;
use crate::suite::fixtures::{id, new_user, published, registered, token};

async fn open() -> ((TempDir, RedisServer), Arc<dyn MetadataStore>) {
    let dir = tempfile::tempdir().unwrap();
    let server = RedisServer::start(dir.path());
    let store = RedisStore::connect(&server.url, "ktra-test").await.unwrap();
    ((dir, server), Arc::new(store))
}

contract_tests!(open);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefixes_keep_registries_apart_and_layouts_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let server = RedisServer::start(dir.path());
    let first = RedisStore::connect(&server.url, "one").await.unwrap();
    let second = RedisStore::connect(&server.url, "two").await.unwrap();
    let user = registered(&first, "alice").await;
    published(&first, "shared-name", "1.0.0", user.id).await;
    assert!(second.user_credentials("alice").await.unwrap().is_none());
    assert!(
        second
            .index_file(&id("shared_name"))
            .await
            .unwrap()
            .is_none()
    );
    let other = registered(&second, "bob").await;
    published(&second, "shared-name", "1.0.0", other.id).await;

    let client = redis::Client::open(server.url.as_str()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("SET")
        .arg("three:schema")
        .arg(99)
        .query_async(&mut connection)
        .await
        .unwrap();
    let error = RedisStore::connect(&server.url, "three").await.unwrap_err();
    assert!(error.to_string().contains("layout 99"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_is_unavailable_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let server = RedisServer::start_with(dir.path(), true);
    let store = RedisStore::connect(&server.url, "ktra-test").await.unwrap();
    let user = registered(&store, "alice").await;
    published(&store, "before", "1.0.0", user.id).await;
    server.kill();
    let error = store.index_file(&id("before")).await.unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    assert!(matches!(
        store.ping().await,
        Err(StoreError::Unavailable(_))
    ));
    server.restart();
    // The connection comes back by itself; a few attempts may still meet the old one.
    let mut recovered = false;
    for _ in 0..50 {
        if store.ping().await.is_ok() {
            recovered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(recovered, "the store did not reconnect");
    let file = store.index_file(&id("before")).await.unwrap().unwrap();
    assert_eq!(
        file.revision, 1,
        "an acknowledged write survived the restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let server = RedisServer::start_tls(dir.path(), "s3cret-pass");
    let store = RedisStore::connect(&server.url, "ktra-test").await.unwrap();
    let user = registered(&store, "alice").await;
    published(&store, "secure", "1.0.0", user.id).await;
    assert_eq!(
        store
            .index_file(&id("secure"))
            .await
            .unwrap()
            .unwrap()
            .revision,
        1
    );
    let wrong = server.url.replace("s3cret-pass", "wrong");
    let error = RedisStore::connect(&wrong, "ktra-test").await.unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("WRONGPASS") || message.to_lowercase().contains("auth"),
        "{message}"
    );
    assert!(
        !message.contains("wrong"),
        "the password leaks into the error: {message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_decorator_counts_store_failures_but_not_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let server = RedisServer::start(dir.path());
    let recorder = Arc::new(Recorder::default());
    let store = InstrumentedStore::new(
        Arc::new(RedisStore::connect(&server.url, "ktra-test").await.unwrap()),
        Arc::clone(&recorder) as _,
    );
    store.ping().await.unwrap();
    registered(&store, "alice").await;
    let refused = store.create_user(new_user("alice", "h", token())).await;
    assert!(
        matches!(refused, Err(StoreError::UserExists(_))),
        "{refused:?}"
    );
    server.kill();
    let error = store.index_file(&id("any")).await.unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    assert!(store.ping().await.is_err());

    let reported: Vec<(&str, bool)> = recorder
        .reported()
        .into_iter()
        .map(|reported| {
            assert_eq!(reported.store, StoreKind::Metadata);
            (reported.operation, reported.failed)
        })
        .collect();
    assert_eq!(
        reported,
        [
            ("create_user", false),
            ("create_user", false),
            ("index_file", true)
        ]
    );
    assert_eq!(recorder.pings(), [true, false]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_of_earlier_versions_read_the_same_etag() {
    let dir = tempfile::tempdir().unwrap();
    let server = RedisServer::start(dir.path());
    let store = RedisStore::connect(&server.url, "ktra-test").await.unwrap();
    let user = registered(&store, "alice").await;
    let file = published(&store, "rolling", "1.0.0", user.id).await;
    // Earlier versions read the ETag from the crate's hash instead of deriving it.
    let client = redis::Client::open(server.url.as_str()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let stored: String = redis::cmd("HGET")
        .arg(ktra_store::redis::keys::Keys::new("ktra-test").krate("rolling"))
        .arg("etag")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(stored, file.etag());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_stored_by_earlier_releases_take_metadata_once() {
    let (_keep, store) = open().await;
    let user = registered(&*store, "alice").await;
    published(&*store, "legacy", "1.0.0", user.id).await;
    // What an earlier release left: a version record without publish time or publisher, and
    // no metadata.
    let client = redis::Client::open(_keep.1.url.as_str()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::pipe()
        .hset(
            "ktra-test:v1:versions:legacy",
            "1.0.0",
            r#"{"vers":"1.0.0","line":0,"cksum":"ab","blob_key":"k","yanked":false}"#,
        )
        .del("ktra-test:v1:version_metadata:legacy")
        .del("ktra-test:v1:readmes:legacy")
        .query_async(&mut connection)
        .await
        .unwrap();
    crate::suite::legacy_version_takes_metadata_once(&*store).await;
}
