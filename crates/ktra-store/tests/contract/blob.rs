//! The blob store against a real S3-compatible server (SeaweedFS) and a local directory.

use std::sync::Arc;

use bytes::Bytes;
use ktra_store::blob::S3Options;
use ktra_store::{BlobError, BlobStore, StoreKind};
use ktra_testing::servers::S3Server;

use crate::recorder::Recorder;

async fn exercise(store: &BlobStore) {
    let recorder = Arc::new(Recorder::default());
    let store = &store.clone().observed_by(Arc::clone(&recorder) as _);
    store.ping().await.unwrap();
    let key = BlobStore::new_crate_key("demo", "1.0.0");
    let content = Bytes::from(
        (0..100_000_u32)
            .map(|n| (n % 251) as u8)
            .collect::<Vec<_>>(),
    );
    store.put_new(&key, content.clone()).await.unwrap();
    // Crate files are never overwritten.
    assert!(matches!(
        store.put_new(&key, Bytes::from_static(b"other")).await,
        Err(BlobError::AlreadyExists(_))
    ));
    assert_eq!(store.get_bytes(&key).await.unwrap(), content);
    assert_eq!(store.size(&key).await.unwrap(), 100_000);
    let part = store.get_range(&key, 10..20).await.unwrap();
    assert_eq!(part.size, 10);
    let chunks: Vec<Bytes> = futures::TryStreamExt::try_collect(part.stream)
        .await
        .unwrap();
    let bytes: Vec<u8> = chunks.concat();
    assert_eq!(bytes, content[10..20].to_vec());
    assert_eq!(store.list("crates").await.unwrap(), vec![key.clone()]);
    store.delete(&key).await.unwrap();
    store.delete(&key).await.unwrap();
    assert!(matches!(store.get(&key).await, Err(BlobError::NotFound(_))));
    assert!(matches!(
        store.size(&key).await,
        Err(BlobError::NotFound(_))
    ));

    // Every call was reported; a taken key and a missing file are refusals, not failures.
    let reported = recorder.reported();
    assert!(
        reported
            .iter()
            .all(|reported| reported.store == StoreKind::Blob)
    );
    assert!(
        reported.iter().all(|reported| !reported.failed),
        "{reported:?}"
    );
    assert_eq!(
        recorder.operations(StoreKind::Blob),
        [
            "put_new",
            "put_new",
            "get_bytes",
            "size",
            "get_range",
            "list",
            "delete",
            "delete",
            "get",
            "size"
        ]
    );
}

#[tokio::test]
async fn local_directory() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::local(dir.path()).unwrap();
    exercise(&store).await;
    assert!(
        store
            .signed_download_url("x", std::time::Duration::from_secs(60))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_compatible_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = S3Server::start(dir.path());
    server.create_bucket("crates");
    let options = S3Options {
        bucket: "crates".into(),
        region: "us-east-1".into(),
        endpoint: Some(server.endpoint.clone()),
        allow_http: true,
        virtual_hosted_style: false,
        prefix: Some("registry-a".into()),
        access_key_id: Some(server.access_key.clone()),
        secret_access_key: Some(server.secret_key.clone()),
    };
    let store = BlobStore::s3(&options).unwrap();
    exercise(&store).await;

    let key = BlobStore::new_crate_key("signed", "1.0.0");
    store
        .put_new(&key, Bytes::from_static(b"signed bytes"))
        .await
        .unwrap();
    let url = store
        .signed_download_url(&key, std::time::Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    let body = reqwest::get(url).await.unwrap();
    assert_eq!(body.status(), 200);
    assert_eq!(body.bytes().await.unwrap().as_ref(), b"signed bytes");

    // A wrong secret is a failure to report, not a missing file.
    let wrong = BlobStore::s3(&S3Options {
        secret_access_key: Some("wrong-secret".into()),
        ..options
    })
    .unwrap();
    assert!(matches!(
        wrong.put_new("crates/x", Bytes::from_static(b"x")).await,
        Err(BlobError::Unavailable(_))
    ));
}
