//! Reading the registry over HTTP: the sparse index with revalidation, downloads, search, and
//! the error format of every failure.

use ktra_testing::fixtures::CrateFixture;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::{Backend, TestApp, assert_ok, assert_refused};

pub(crate) async fn sparse_index_revalidates(backend: Backend) {
    let app = TestApp::start_on(backend, &[]).await;
    let token = app.create_user("alice").await;
    assert_ok(&app.publish_crate(&token, "Abc", "0.1.0").await);

    let (_, config) = app.get("/index/config.json").await;
    assert_eq!(config, json!({"dl": app.url("/dl"), "api": app.base}));

    let url = "/index/3/a/abc";
    let first = app.get_with(url, &[]).await;
    assert_eq!(first.status(), StatusCode::OK);
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let modified = first.headers()["last-modified"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = first.text().await.unwrap();
    assert_eq!(body.lines().count(), 1);

    let by_etag = app.get_with(url, &[("If-None-Match", &etag)]).await;
    assert_eq!(by_etag.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(by_etag.headers()["etag"], etag.as_str());
    assert!(by_etag.text().await.unwrap().is_empty());
    let by_date = app.get_with(url, &[("If-Modified-Since", &modified)]).await;
    assert_eq!(by_date.status(), StatusCode::NOT_MODIFIED);

    // A new version changes the ETag; the old one no longer matches.
    assert_ok(&app.publish_crate(&token, "Abc", "0.2.0").await);
    let changed = app.get_with(url, &[("If-None-Match", &etag)]).await;
    assert_eq!(changed.status(), StatusCode::OK);
    assert_ne!(changed.headers()["etag"], etag.as_str());
    assert_eq!(changed.text().await.unwrap().lines().count(), 2);

    // Other spellings and paths are not index files.
    for path in [
        "/index/3/a/Abc",
        "/index/ab/c/abc",
        "/index/3/b/abc",
        "/index/3/a/abd",
        "/index/",
    ] {
        let (status, reply) = app.get(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {reply}");
    }
}

pub(crate) async fn downloads_stream_committed_versions_only(backend: Backend) {
    let app = TestApp::start_on(backend, &[]).await;
    let token = app.create_user("alice").await;
    let fixture = CrateFixture::new("dl_me", "1.2.3+meta").with_payload(100_000);
    assert_ok(&app.publish(Some(&token), fixture.body()).await);
    let line = &app.index_lines("dl_me").await.unwrap()[0];
    for path in [
        "/dl/dl_me/1.2.3+meta/download",
        "/api/v1/crates/DL-ME/1.2.3/download",
    ] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(response.headers()["content-type"], "application/gzip");
        assert!(
            response.headers()["cache-control"]
                .to_str()
                .unwrap()
                .contains("immutable")
        );
        let bytes = response.bytes().await.unwrap();
        assert_eq!(bytes.as_ref(), fixture.crate_file().as_slice());
        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
        assert_eq!(line["cksum"], digest.as_str());
    }
    // HEAD and byte ranges.
    let crate_bytes = fixture.crate_file();
    let path = "/dl/dl_me/1.2.3/download";
    let head = app.client.head(app.url(path)).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(
        head.headers()["content-length"],
        crate_bytes.len().to_string().as_str()
    );
    assert_eq!(head.headers()["accept-ranges"], "bytes");
    let part = app.get_with(path, &[("Range", "bytes=10-19")]).await;
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes 10-19/{}", crate_bytes.len()).as_str()
    );
    assert_eq!(part.bytes().await.unwrap().as_ref(), &crate_bytes[10..20]);
    let tail = app.get_with(path, &[("Range", "bytes=-5")]).await;
    assert_eq!(
        tail.bytes().await.unwrap().as_ref(),
        &crate_bytes[crate_bytes.len() - 5..]
    );
    let from_the_end = format!("bytes={}-", crate_bytes.len());
    let outside = app.get_with(path, &[("Range", &from_the_end)]).await;
    assert_eq!(outside.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        outside.headers()["content-range"],
        format!("bytes */{}", crate_bytes.len()).as_str()
    );

    for path in [
        "/dl/dl_me/9.9.9/download",
        "/dl/nothing/1.0.0/download",
        "/dl/dl_me/bad/download",
    ] {
        let reply = app.get(path).await;
        assert_refused(&reply, StatusCode::NOT_FOUND, "has no version");
    }
}

pub(crate) async fn every_failure_uses_cargos_error_format(backend: Backend) {
    let app = TestApp::start_on(backend, &[]).await;
    let reply = app.get("/no/such/route").await;
    assert_refused(&reply, StatusCode::NOT_FOUND, "no such resource");
    let reply = app
        .call(Method::POST, "/api/v1/crates/new", None, None)
        .await;
    assert_refused(&reply, StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    for (path, expected, needle) in [
        (
            "/api/v1/crates?q=x&per_page=101",
            StatusCode::BAD_REQUEST,
            "per_page",
        ),
        (
            "/api/v1/crates?q=x&per_page=ten",
            StatusCode::BAD_REQUEST,
            "per_page",
        ),
        (
            "/api/v1/crates/nothing/owners",
            StatusCode::NOT_FOUND,
            "does not exist",
        ),
    ] {
        assert_refused(&app.get(path).await, expected, needle);
    }
    let (status, reply) = app.get("/livez").await;
    assert_eq!((status, reply), (StatusCode::OK, json!({"status": "ok"})));
    let (status, reply) = app.get("/readyz").await;
    assert_eq!((status, reply), (StatusCode::OK, json!({"status": "ok"})));
}

pub(crate) async fn search_ranks_and_pages(backend: Backend) {
    let app = TestApp::start_on(backend, &[]).await;
    let token = app.create_user("alice").await;
    for (name, version) in [
        ("serde", "1.0.0"),
        ("serde_json", "1.0.0"),
        ("my-serde-helper", "0.3.0"),
        ("unrelated", "1.0.0"),
    ] {
        assert_ok(&app.publish_crate(&token, name, version).await);
    }
    assert_ok(&app.publish_crate(&token, "serde", "2.0.0").await);
    assert_ok(&app.yank(&token, "serde", "2.0.0").await);

    let (status, reply) = app.get("/api/v1/crates?q=Serde&per_page=2").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        reply,
        json!({"crates": [
            {"id": "serde", "name": "serde", "max_version": "1.0.0", "description": "the serde crate"},
            {"id": "serde_json", "name": "serde_json", "max_version": "1.0.0", "description": "the serde_json crate"},
        ], "meta": {"total": 3, "next_page": "?q=Serde&page=2&per_page=2", "prev_page": null}})
    );
    let (_, reply) = app.get("/api/v1/crates?q=serde&per_page=2&page=2").await;
    assert_eq!(reply["crates"][0]["name"], "my-serde-helper");
}

pub(crate) async fn presigned_downloads_redirect_to_the_bucket(backend: Backend) {
    let app = TestApp::start_on(backend, &[("KTRA_S3_PRESIGNED_DOWNLOADS", "true")]).await;
    let token = app.create_user("alice").await;
    let fixture = CrateFixture::new("signed", "1.0.0");
    assert_ok(&app.publish(Some(&token), fixture.body()).await);
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = no_redirects
        .get(app.url("/dl/signed/1.0.0/download"))
        .send()
        .await
        .unwrap();
    if backend == Backend::Embedded {
        // A local directory cannot sign URLs: the file is served directly.
        assert_eq!(response.status(), StatusCode::OK);
        return;
    }
    assert_eq!(response.status(), StatusCode::TEMPORARY_REDIRECT);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.contains("X-Amz-Signature="), "{location}");
    // Followed, the redirect yields the crate.
    let (_, bytes) = app.get_bytes("/dl/signed/1.0.0/download").await;
    assert_eq!(bytes, fixture.crate_file());
}

crate::on_every_backend!(
    sparse_index_revalidates,
    downloads_stream_committed_versions_only,
    every_failure_uses_cargos_error_format,
    search_ranks_and_pages,
    presigned_downloads_redirect_to_the_bucket,
);
