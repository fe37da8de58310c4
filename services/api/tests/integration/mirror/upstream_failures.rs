//! An upstream that fails: down, slow, stalled, serving bytes that do not match its index, or
//! replaced by a captive portal. Each gets its 5xx in cargo's format, or a stale copy, and
//! nothing it sent is cached.

use std::sync::atomic::Ordering;
use std::time::Duration;

use reqwest::StatusCode;

use super::fixture::{fixture, fixture_with};
use super::{
    cache_requests, closed_port_url, index_of, start_mirror, start_mirror_on, upstream_errors,
};
use crate::harness::{Backend, assert_error, assert_refused};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crate_whose_bytes_do_not_match_the_index_is_refused_and_not_cached() {
    let upstream = fixture(b"tampered bytes", b"the real crate", Duration::ZERO).await;
    let mirror = start_mirror_on(Backend::RedisS3, &index_of(&upstream.base), &[]).await;
    for _ in 0..2 {
        let reply = mirror.get("/mirror/dl/tam/0.1.0/download").await;
        assert_refused(
            &reply,
            StatusCode::BAD_GATEWAY,
            "checksum that does not match its index",
        );
    }
    assert_eq!(
        upstream.crate_hits.load(Ordering::SeqCst),
        2,
        "refused bytes are not cached"
    );
    assert!(mirror.blobs.list("mirror/crates").await.unwrap().is_empty());
    assert_eq!(upstream_errors(&mirror, "crate", "checksum").await, 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_upstream_that_is_down_or_slow_gives_502_or_504() {
    let down = start_mirror(&closed_port_url().await, &[]).await;
    let reply = down.get("/mirror/dl/tam/0.1.0/download").await;
    assert_refused(&reply, StatusCode::BAD_GATEWAY, "could not be reached");

    let slow_upstream = fixture(b"x", b"x", Duration::from_secs(3)).await;
    let slow = start_mirror(
        &index_of(&slow_upstream.base),
        &[("KTRA_MIRROR_UPSTREAM_TIMEOUT_SECS", "1")],
    )
    .await;
    for path in ["/mirror/index/3/t/tam", "/mirror/dl/tam/0.1.0/download"] {
        let reply = slow.get(path).await;
        assert_refused(
            &reply,
            StatusCode::GATEWAY_TIMEOUT,
            "did not answer in time",
        );
    }
    assert!(upstream_errors(&slow, "index", "timeout").await >= 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_captive_portal_page_never_replaces_cached_index_files() {
    let upstream = fixture(b"the real crate", b"the real crate", Duration::ZERO).await;
    let upstream_index = index_of(&upstream.base);
    // Freshness 0: every read asks the upstream.
    let mirror = start_mirror(&upstream_index, &[("KTRA_MIRROR_FRESHNESS_SECS", "0")]).await;
    let read = |path: &'static str| {
        let request = mirror.client.get(mirror.url(path));
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.text().await.unwrap())
        }
    };
    let (status, good) = read("/mirror/index/3/t/tam").await;
    assert_eq!(status, StatusCode::OK);
    assert!(good.contains("\"tam\""), "{good}");

    upstream.portal.store(true, Ordering::SeqCst);
    let (status, body) = read("/mirror/index/3/t/tam").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, good, "the cached copy is served, not the portal page");
    assert!(cache_requests(&mirror, "index", "stale").await >= 1.0);
    assert!(upstream_errors(&mirror, "index", "bad_answer").await >= 1.0);
    // Nothing cached: 502, not the portal page as an index file.
    let reply = mirror.get("/mirror/index/3/n/new").await;
    assert_refused(&reply, StatusCode::BAD_GATEWAY, "failed to serve");

    // A portal's config.json is not cached either: once the portal is gone, downloads work
    // at once instead of after KTRA_MIRROR_FRESHNESS_SECS.
    upstream.portal.store(false, Ordering::SeqCst);
    let fresh = start_mirror(&upstream_index, &[]).await;
    let (status, _) = fresh.get("/mirror/index/3/t/tam").await;
    assert_eq!(status, StatusCode::OK);
    upstream.portal.store(true, Ordering::SeqCst);
    let (status, body) = fresh.get("/mirror/dl/tam/0.1.0/download").await;
    assert_error(status, &body, StatusCode::BAD_GATEWAY, "config.json");
    upstream.portal.store(false, Ordering::SeqCst);
    let response = fresh
        .client
        .get(fresh.url("/mirror/dl/tam/0.1.0/download"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.bytes().await.unwrap().as_ref(), b"the real crate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fetch_has_one_deadline_and_keeps_its_error_kind() {
    // Each upstream request is within KTRA_MIRROR_UPSTREAM_TIMEOUT_SECS, but the index file
    // and the download together take longer than the request may: 504 from the mirror, not
    // 408 from the request's time limit.
    let sluggish = fixture(b"x", b"x", Duration::from_millis(600)).await;
    let mirror = start_mirror(
        &index_of(&sluggish.base),
        &[
            ("KTRA_HTTP_REQUEST_TIMEOUT_SECS", "1"),
            ("KTRA_MIRROR_UPSTREAM_TIMEOUT_SECS", "1"),
        ],
    )
    .await;
    let reply = mirror.get("/mirror/dl/tam/0.1.0/download").await;
    assert_refused(
        &reply,
        StatusCode::GATEWAY_TIMEOUT,
        "did not answer in time",
    );

    // A config.json that does not come in time is a timeout, not an unusable file.
    let slow_config = fixture_with(b"x", b"x", Duration::ZERO, Duration::from_secs(3)).await;
    let mirror = start_mirror(
        &index_of(&slow_config.base),
        &[("KTRA_MIRROR_UPSTREAM_TIMEOUT_SECS", "1")],
    )
    .await;
    let reply = mirror.get("/mirror/dl/tam/0.1.0/download").await;
    assert_refused(
        &reply,
        StatusCode::GATEWAY_TIMEOUT,
        "did not answer in time for the index file `config.json`",
    );
    assert_eq!(slow_config.config_hits.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_an_upstream_failure_stale_copies_are_served_at_once() {
    let upstream = fixture(b"x", b"x", Duration::ZERO).await;
    let mirror = start_mirror(
        &index_of(&upstream.base),
        &[
            ("KTRA_MIRROR_FRESHNESS_SECS", "0"),
            ("KTRA_MIRROR_UPSTREAM_TIMEOUT_SECS", "1"),
        ],
    )
    .await;
    let read = || {
        let request = mirror.client.get(mirror.url("/mirror/index/3/t/tam"));
        async move {
            let started = std::time::Instant::now();
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            assert!(response.text().await.unwrap().contains("\"tam\""));
            started.elapsed()
        }
    };
    read().await;
    upstream.stalled.store(true, Ordering::SeqCst);
    // The first stale read waits for the upstream's timeout.
    assert!(read().await >= Duration::from_millis(900));
    let asked = upstream.index_hits.load(Ordering::SeqCst);
    assert_eq!(asked, 2);
    // Within the backoff, the next ones do not ask.
    for _ in 0..3 {
        let took = read().await;
        assert!(took < Duration::from_millis(500), "took {took:?}");
    }
    assert_eq!(upstream.index_hits.load(Ordering::SeqCst), asked);
    assert_eq!(cache_requests(&mirror, "index", "stale").await, 4.0);
    assert_eq!(upstream_errors(&mirror, "index", "timeout").await, 1.0);
}
