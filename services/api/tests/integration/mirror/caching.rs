//! What the mirror's cache keeps: one upstream fetch for many requests, revalidated index
//! files, remembered 404s, and one cache shared by replicas.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ktra_testing::cargo::{library_manifest, package};
use reqwest::StatusCode;

use super::fixture::fixture;
use super::{
    cache_requests, index_of, start_mirror, start_mirror_on, upstream_downloads,
    upstream_with_crates,
};
use crate::harness::{Backend, assert_refused};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_for_an_uncached_crate_make_one_upstream_fetch() {
    const REQUESTS: usize = 16;
    let bytes: &'static [u8] = b"the real crate";
    let upstream = fixture(bytes, bytes, Duration::from_millis(300)).await;
    let mirror = start_mirror_on(Backend::RedisS3, &index_of(&upstream.base), &[]).await;
    let mirror = Arc::new(mirror);
    let requests = (0..REQUESTS).map(|index| {
        let mirror = Arc::clone(&mirror);
        // Half through Ktra's route: both share one cache and one fetch.
        let path = if index % 2 == 0 {
            "/mirror/dl/tam/0.1.0/download"
        } else {
            "/ktra/api/v1/mirror/tam/0.1.0/download"
        };
        tokio::spawn(async move {
            let response = mirror.client.get(mirror.url(path)).send().await.unwrap();
            (response.status(), response.bytes().await.unwrap())
        })
    });
    for answer in futures::future::join_all(requests).await {
        let (status, body) = answer.unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body.as_ref(), bytes);
    }
    assert_eq!(
        upstream.crate_hits.load(Ordering::SeqCst),
        1,
        "one upstream fetch"
    );
    assert_eq!(
        upstream.index_hits.load(Ordering::SeqCst),
        1,
        "one index fetch"
    );
    // Later requests are cache hits.
    let (_, again) = mirror.get_bytes("/mirror/dl/tam/0.1.0/download").await;
    assert_eq!(again, bytes);
    assert_eq!(upstream.crate_hits.load(Ordering::SeqCst), 1);
    assert_eq!(
        mirror.blobs.list("mirror/crates").await.unwrap(),
        ["mirror/crates/tam/tam-0.1.0.crate"]
    );
    assert_eq!(cache_requests(&mirror, "crate", "hit").await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn index_files_revalidate_and_missing_crates_are_remembered() {
    let upstream = fixture(b"x", b"x", Duration::ZERO).await;
    let mirror = start_mirror(&index_of(&upstream.base), &[]).await;
    let first = mirror.get_with("/mirror/index/3/t/tam", &[]).await;
    assert_eq!(first.status(), StatusCode::OK);
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    assert!(first.headers().contains_key("last-modified"));
    assert!(first.text().await.unwrap().contains("\"tam\""));
    let revalidation = mirror
        .get_with("/mirror/index/3/t/tam", &[("if-none-match", &etag)])
        .await;
    assert_eq!(revalidation.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(
        upstream.index_hits.load(Ordering::SeqCst),
        1,
        "fresh copies are served"
    );

    for _ in 0..2 {
        let reply = mirror.get("/mirror/index/ot/he/other").await;
        assert_refused(&reply, StatusCode::NOT_FOUND, "no index file");
    }
    assert_eq!(
        upstream.missing_hits.load(Ordering::SeqCst),
        1,
        "404s are remembered"
    );

    let (_, config) = mirror.get("/mirror/index/config.json").await;
    assert_eq!(config["dl"], format!("{}/mirror/dl", mirror.base));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_share_the_cache_and_find_versions_published_since() {
    let (work, upstream, publisher) = upstream_with_crates().await;
    let first = start_mirror_on(Backend::RedisS3, &index_of(&upstream.base), &[]).await;
    let second = first.replica().await;
    let (status, fetched) = first.get_bytes("/mirror/dl/ab/0.1.0/download").await;
    assert_eq!(status, StatusCode::OK);
    // The other replica reads the same bucket: no upstream request.
    let (status, cached) = second.get_bytes("/mirror/dl/ab/0.1.0/download").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cached, fetched);
    let (status, _) = second.get_bytes("/mirror/index/2/ab").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cache_requests(&second, "index", "hit").await, 1.0);
    assert_eq!(
        second
            .metric("ktra_mirror_upstream_request_duration_seconds_count")
            .await,
        0.0
    );
    assert_eq!(upstream_downloads(&upstream).await, 1.0);

    // A version published after the index file was cached (and still fresh) is found: the
    // download refreshes the index once when it does not list the version.
    let ab = package(
        work.path(),
        "ab2",
        &library_manifest("ab", "0.2.0", ""),
        &[("src/lib.rs", "pub fn value() -> u32 { 20 }\n")],
    );
    publisher.publish(&ab, "up").await;
    // Only a cached copy older than the mirror's refresh floor (3 s) is refreshed.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let (status, _) = second.get_bytes("/mirror/dl/ab/0.2.0/download").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(upstream_downloads(&upstream).await, 2.0);
    let (status, body) = second.get_bytes("/mirror/dl/ab/0.3.0/download").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn downloads_of_an_unknown_crate_ask_the_upstream_once_and_store_nothing() {
    let upstream = fixture(b"x", b"x", Duration::ZERO).await;
    let mirror = start_mirror_on(Backend::RedisS3, &index_of(&upstream.base), &[]).await;
    for attempt in 0..3 {
        if attempt > 0 {
            // Older than a second: the cached index's age no longer reads as 0.
            tokio::time::sleep(Duration::from_millis(1100)).await;
        }
        for path in [
            "/mirror/dl/nope/1.0.0/download",
            "/ktra/api/v1/mirror/nope/1.0.0/download",
            "/mirror/index/no/pe/nope",
        ] {
            let (status, body) = mirror.get(path).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        }
    }
    assert_eq!(
        upstream.missing_hits.load(Ordering::SeqCst),
        1,
        "the 404 is remembered for KTRA_MIRROR_NOT_FOUND_SECS"
    );
    assert_eq!(
        mirror.blobs.list("mirror/index").await.unwrap(),
        Vec::<String>::new(),
        "names the upstream does not have are not written to the bucket"
    );
}
