//! The web API over HTTP: every rejection answers in cargo's format with the right status and
//! stores nothing; revalidation answers 304.

use ktra_testing::fixtures::CrateFixture;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::{Backend, TestApp, assert_error};

pub(crate) async fn publish_rejections_store_nothing(backend: Backend) {
    let app = TestApp::start_on(backend, &[]).await;
    let token = app.create_user("alice").await;

    // Credentials are checked before anything else.
    let (status, body) = app
        .publish(None, CrateFixture::new("demo", "1.0.0").body())
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNAUTHORIZED,
        "requires authentication",
    );
    let (status, body) = app
        .publish(
            Some("ktra_not-a-token"),
            CrateFixture::new("demo", "1.0.0").body(),
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "invalid or revoked");
    assert!(
        !body.to_string().contains("not-a-token"),
        "the token is echoed: {body}"
    );
    // The same id with another secret.
    let last = if token.ends_with('0') { '1' } else { '0' };
    let forged = format!("{}{last}", &token[..token.len() - 1]);
    let (status, body) = app
        .publish(Some(&forged), CrateFixture::new("demo", "1.0.0").body())
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "invalid or revoked");

    // Malformed bodies.
    let body = CrateFixture::new("demo", "1.0.0").body();
    let (status, reply) = app
        .publish(Some(&token), body[..body.len() - 3].to_vec())
        .await;
    assert_error(status, &reply, StatusCode::BAD_REQUEST, "ends early");
    let (status, reply) = app
        .publish(Some(&token), vec![0xff, 0xff, 0xff, 0xff, b'{'])
        .await;
    assert_error(status, &reply, StatusCode::BAD_REQUEST, "ends early");
    let truncated_json = CrateFixture::body_from(&json!("x"), b"")
        .into_iter()
        .collect::<Vec<u8>>();
    let (status, reply) = app.publish(Some(&token), truncated_json).await;
    assert_error(
        status,
        &reply,
        StatusCode::BAD_REQUEST,
        "invalid publish metadata",
    );

    // Names and versions.
    for (name, needle) in [
        ("nul", "reserved on Windows"),
        ("Com1", "reserved on Windows"),
        ("1abc", "must start with an ASCII letter"),
        ("foo.bar", "contains `.`"),
        (&"a".repeat(65), "longer than 64"),
    ] {
        let fixture = CrateFixture::new(name, "1.0.0");
        let (status, reply) = app.publish(Some(&token), fixture.body()).await;
        assert_error(status, &reply, StatusCode::BAD_REQUEST, needle);
    }
    let (status, reply) = app
        .publish(Some(&token), CrateFixture::new("demo", "1.0").body())
        .await;
    assert_error(
        status,
        &reply,
        StatusCode::BAD_REQUEST,
        "invalid version `1.0`",
    );

    // Tarballs that lie or escape.
    let fixture = CrateFixture::new("demo", "1.0.0");
    let (status, reply) = app
        .publish(
            Some(&token),
            CrateFixture::body_from(&fixture.metadata(), b"not gzip"),
        )
        .await;
    assert_error(
        status,
        &reply,
        StatusCode::BAD_REQUEST,
        "not a readable gzipped tarball",
    );
    let other = CrateFixture::new("demo", "2.0.0").crate_file();
    let (status, reply) = app
        .publish(
            Some(&token),
            CrateFixture::body_from(&fixture.metadata(), &other),
        )
        .await;
    assert_error(
        status,
        &reply,
        StatusCode::BAD_REQUEST,
        "outside `demo-1.0.0/`",
    );
    // The tarball's directory matches but its Cargo.toml names another version.
    let mut lying = CrateFixture::new("demo", "1.0.0");
    lying.manifest_override = Some(CrateFixture::new("demo", "9.9.9").manifest());
    let (status, reply) = app.publish(Some(&token), lying.body()).await;
    assert_error(status, &reply, StatusCode::BAD_REQUEST, "says `demo@9.9.9`");

    app.assert_not_stored("demo", 0).await;
}

pub(crate) async fn body_limit_is_enforced_before_buffering(backend: Backend) {
    let app = TestApp::start_on(backend, &[("KTRA_HTTP_MAX_PUBLISH_BYTES", "4096")]).await;
    let token = app.create_user("alice").await;
    let big = CrateFixture::new("big", "1.0.0")
        .with_payload(16 * 1024)
        .body();

    // Declared length over the limit: refused before the body is read.
    let (status, reply) = app.publish(Some(&token), big.clone()).await;
    assert_error(
        status,
        &reply,
        StatusCode::PAYLOAD_TOO_LARGE,
        "up to 4096 bytes",
    );

    // No declared length (chunked): refused once the stream passes the limit.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        big.chunks(1024).map(|chunk| Ok(chunk.to_vec())).collect();
    let response = app
        .client
        .put(app.url("/api/v1/crates/new"))
        .header("Authorization", &token)
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    let (status, reply) = crate::harness::read_json(response).await;
    assert_error(
        status,
        &reply,
        StatusCode::PAYLOAD_TOO_LARGE,
        "larger than the limit",
    );

    // Without a token the size does not matter: 401 first.
    let (status, reply) = app.publish(None, big).await;
    assert_error(
        status,
        &reply,
        StatusCode::UNAUTHORIZED,
        "requires authentication",
    );
    app.assert_not_stored("big", 0).await;
}

pub(crate) async fn duplicates_collisions_and_ownership(backend: Backend) {
    let app = TestApp::start_on(backend, &[]).await;
    let alice = app.create_user("alice").await;
    let bob = app.create_user("bob").await;
    let (status, body) = app
        .publish(Some(&alice), CrateFixture::new("Foo_Bar", "1.0.0").body())
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"warnings": {"invalid_categories": [], "invalid_badges": [], "other": []}})
    );
    let before = app.index_lines("foo_bar").await.unwrap();
    assert_eq!(app.blob_keys().await.len(), 1);

    // Another crate file under a published version (the same file again is a retry, which
    // succeeds: see retries.rs).
    for version in ["1.0.0", "1.0.0+build.7"] {
        let other_file = CrateFixture::new("Foo_Bar", version).with_payload(16);
        let (status, reply) = app.publish(Some(&alice), other_file.body()).await;
        assert_error(
            status,
            &reply,
            StatusCode::BAD_REQUEST,
            "`Foo_Bar@1.0.0` is already uploaded",
        );
    }
    for other in ["foo-bar", "FOO_BAR", "foo_bar"] {
        let (status, reply) = app
            .publish(Some(&alice), CrateFixture::new(other, "2.0.0").body())
            .await;
        assert_error(
            status,
            &reply,
            StatusCode::BAD_REQUEST,
            "taken by the existing crate `Foo_Bar`",
        );
    }
    let (status, reply) = app
        .publish(Some(&bob), CrateFixture::new("Foo_Bar", "2.0.0").body())
        .await;
    assert_error(status, &reply, StatusCode::FORBIDDEN, "not an owner");
    assert_eq!(app.index_lines("foo_bar").await.unwrap(), before);
    assert!(app.index_lines("foo-bar").await.is_none());
    assert_eq!(app.blob_keys().await.len(), 1);

    // Yank and owners refuse non-owners and unknown targets.
    let path = "/api/v1/crates/Foo_Bar/1.0.0/yank";
    let (status, reply) = app.call(Method::DELETE, path, Some(&bob), None).await;
    assert_error(status, &reply, StatusCode::FORBIDDEN, "not an owner");
    let (status, reply) = app.call(Method::DELETE, path, None, None).await;
    assert_error(
        status,
        &reply,
        StatusCode::UNAUTHORIZED,
        "requires authentication",
    );
    let (status, reply) = app
        .call(
            Method::DELETE,
            "/api/v1/crates/Foo_Bar/3.0.0/yank",
            Some(&alice),
            None,
        )
        .await;
    assert_error(status, &reply, StatusCode::NOT_FOUND, "no version `3.0.0`");
    let (status, reply) = app
        .call(
            Method::DELETE,
            "/api/v1/crates/nothing/1.0.0/yank",
            Some(&alice),
            None,
        )
        .await;
    assert_error(status, &reply, StatusCode::NOT_FOUND, "does not exist");
    assert_eq!(app.index_lines("foo_bar").await.unwrap(), before);

    let owners = "/api/v1/crates/Foo_Bar/owners";
    let (status, reply) = app
        .call(
            Method::PUT,
            owners,
            Some(&bob),
            Some(&json!({"users": ["bob"]})),
        )
        .await;
    assert_error(status, &reply, StatusCode::FORBIDDEN, "not an owner");
    let (status, reply) = app
        .call(
            Method::PUT,
            owners,
            Some(&alice),
            Some(&json!({"users": ["carol"]})),
        )
        .await;
    assert_error(
        status,
        &reply,
        StatusCode::BAD_REQUEST,
        "could not find user `carol`",
    );
    let (status, reply) = app
        .call(
            Method::DELETE,
            owners,
            Some(&alice),
            Some(&json!({"users": ["alice"]})),
        )
        .await;
    assert_error(
        status,
        &reply,
        StatusCode::BAD_REQUEST,
        "cannot remove all owners",
    );
    let (status, reply) = app.get(owners).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        reply,
        json!({"users": [{"id": 1, "login": "alice", "name": null}]})
    );

    // Ktra's prefixed login is accepted as well as the plain name.
    let (status, reply) = app
        .call(
            Method::PUT,
            owners,
            Some(&alice),
            Some(&json!({"users": ["ktra-secure-auth:bob"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert!(reply["msg"].as_str().unwrap().contains("`bob`"), "{reply}");
    let (status, body) = app
        .publish(Some(&bob), CrateFixture::new("Foo_Bar", "2.0.0").body())
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(app.index_lines("foo_bar").await.unwrap().len(), 2);
}

pub(crate) async fn users_tokens_and_passwords(backend: Backend) {
    let app = TestApp::start_on(backend, &[]).await;
    let first = app.create_user("alice").await;
    let (status, reply) = app
        .post_json(
            "/ktra/api/v1/new_user/Alice",
            &json!({"password": "password123"}),
        )
        .await;
    assert_error(status, &reply, StatusCode::BAD_REQUEST, "already exists");
    let (status, reply) = app
        .post_json("/ktra/api/v1/new_user/carol", &json!({"password": "short"}))
        .await;
    assert_error(
        status,
        &reply,
        StatusCode::BAD_REQUEST,
        "at least 8 characters",
    );
    let (status, reply) = app
        .post_json(
            "/ktra/api/v1/new_user/bad%2Fname",
            &json!({"password": "password123"}),
        )
        .await;
    assert_error(status, &reply, StatusCode::BAD_REQUEST, "invalid user name");
    let response = app
        .client
        .post(app.url("/ktra/api/v1/new_user/dave"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    let (status, reply) = crate::harness::read_json(response).await;
    assert_error(status, &reply, StatusCode::BAD_REQUEST, "invalid JSON body");

    // Wrong password and unknown user get the same answer.
    let (status, wrong) = app
        .post_json(
            "/ktra/api/v1/login/alice",
            &json!({"password": "wrong-password"}),
        )
        .await;
    assert_error(
        status,
        &wrong,
        StatusCode::FORBIDDEN,
        "invalid user name or password",
    );
    let (status, unknown) = app
        .post_json(
            "/ktra/api/v1/login/nobody",
            &json!({"password": "wrong-password"}),
        )
        .await;
    assert_error(
        status,
        &unknown,
        StatusCode::FORBIDDEN,
        "invalid user name or password",
    );
    assert_eq!(wrong, unknown);

    // Login adds a token and keeps the first.
    let (status, reply) = app
        .post_json(
            "/ktra/api/v1/login/alice",
            &json!({"password": "password123"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let second = reply["token"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    for token in [&first, &second] {
        let (status, body) = app
            .publish(
                Some(token),
                CrateFixture::new(&format!("c{}", &token[5..9]), "1.0.0").body(),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    // Changing the password revokes both and returns a third.
    let (status, reply) = app
        .post_json(
            "/ktra/api/v1/change_password/alice",
            &json!({"old_password": "wrong-password", "new_password": "new-password"}),
        )
        .await;
    assert_error(
        status,
        &reply,
        StatusCode::FORBIDDEN,
        "invalid user name or password",
    );
    let (status, reply) = app
        .post_json(
            "/ktra/api/v1/change_password/alice",
            &json!({"old_password": "password123", "new_password": "new-password"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let third = reply["token"].as_str().unwrap().to_owned();
    for revoked in [&first, &second] {
        let (status, body) = app
            .publish(Some(revoked), CrateFixture::new("late", "1.0.0").body())
            .await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "invalid or revoked");
    }
    let (status, body) = app
        .publish(
            Some(&format!("Bearer {third}")),
            CrateFixture::new("late", "1.0.0").body(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = app
        .post_json(
            "/ktra/api/v1/login/alice",
            &json!({"password": "password123"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

pub(crate) async fn sparse_index_revalidates(backend: Backend) {
    let app = TestApp::start_on(backend, &[]).await;
    let token = app.create_user("alice").await;
    let (status, body) = app
        .publish(Some(&token), CrateFixture::new("Abc", "0.1.0").body())
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let config: serde_json::Value = app
        .client
        .get(app.url("/index/config.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(config, json!({"dl": app.url("/dl"), "api": app.base}));

    let url = app.url("/index/3/a/abc");
    let first = app.client.get(&url).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let modified = first.headers()["last-modified"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = first.text().await.unwrap();
    assert_eq!(body.lines().count(), 1);

    let by_etag = app
        .client
        .get(&url)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(by_etag.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(by_etag.headers()["etag"], etag.as_str());
    assert!(by_etag.text().await.unwrap().is_empty());
    let by_date = app
        .client
        .get(&url)
        .header("If-Modified-Since", &modified)
        .send()
        .await
        .unwrap();
    assert_eq!(by_date.status(), StatusCode::NOT_MODIFIED);

    // A new version changes the ETag; the old one no longer matches.
    let (status, _) = app
        .publish(Some(&token), CrateFixture::new("Abc", "0.2.0").body())
        .await;
    assert_eq!(status, StatusCode::OK);
    let changed = app
        .client
        .get(&url)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
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
        let response = app.client.get(app.url(path)).send().await.unwrap();
        let (status, reply) = crate::harness::read_json(response).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {reply}");
    }
}

pub(crate) async fn downloads_stream_committed_versions_only(backend: Backend) {
    let app = TestApp::start_on(backend, &[]).await;
    let token = app.create_user("alice").await;
    let fixture = CrateFixture::new("dl_me", "1.2.3+meta").with_payload(100_000);
    let (status, body) = app.publish(Some(&token), fixture.body()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
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
    let path = app.url("/dl/dl_me/1.2.3/download");
    let head = app.client.head(&path).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(
        head.headers()["content-length"],
        crate_bytes.len().to_string().as_str()
    );
    assert_eq!(head.headers()["accept-ranges"], "bytes");
    let part = app
        .client
        .get(&path)
        .header("Range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes 10-19/{}", crate_bytes.len()).as_str()
    );
    assert_eq!(part.bytes().await.unwrap().as_ref(), &crate_bytes[10..20]);
    let tail = app
        .client
        .get(&path)
        .header("Range", "bytes=-5")
        .send()
        .await
        .unwrap();
    assert_eq!(
        tail.bytes().await.unwrap().as_ref(),
        &crate_bytes[crate_bytes.len() - 5..]
    );
    let outside = app
        .client
        .get(&path)
        .header("Range", format!("bytes={}-", crate_bytes.len()))
        .send()
        .await
        .unwrap();
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
        let response = app.client.get(app.url(path)).send().await.unwrap();
        let (status, reply) = crate::harness::read_json(response).await;
        assert_error(status, &reply, StatusCode::NOT_FOUND, "has no version");
    }
}

pub(crate) async fn every_failure_uses_cargos_error_format(backend: Backend) {
    let app = TestApp::start_on(backend, &[]).await;
    let (status, reply) = app.get("/no/such/route").await;
    assert_error(status, &reply, StatusCode::NOT_FOUND, "no such resource");
    let (status, reply) = app
        .call(Method::POST, "/api/v1/crates/new", None, None)
        .await;
    assert_error(
        status,
        &reply,
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed",
    );
    let (status, reply) = app.get("/api/v1/crates?q=x&per_page=101").await;
    assert_error(status, &reply, StatusCode::BAD_REQUEST, "per_page");
    let (status, reply) = app.get("/api/v1/crates?q=x&per_page=ten").await;
    assert_error(status, &reply, StatusCode::BAD_REQUEST, "per_page");
    let (status, reply) = app.get("/api/v1/crates/nothing/owners").await;
    assert_error(status, &reply, StatusCode::NOT_FOUND, "does not exist");
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
        let (status, body) = app
            .publish(Some(&token), CrateFixture::new(name, version).body())
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, _) = app
        .publish(Some(&token), CrateFixture::new("serde", "2.0.0").body())
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .call(
            Method::DELETE,
            "/api/v1/crates/serde/2.0.0/yank",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let (status, reply) = app.get("/api/v1/crates?q=Serde&per_page=2").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        reply,
        json!({"crates": [
            {"name": "serde", "max_version": "1.0.0", "description": "the serde crate"},
            {"name": "serde_json", "max_version": "1.0.0", "description": "the serde_json crate"},
        ], "meta": {"total": 3}})
    );
    let (_, reply) = app.get("/api/v1/crates?q=serde&per_page=2&page=2").await;
    assert_eq!(reply["crates"][0]["name"], "my-serde-helper");
}

pub(crate) async fn presigned_downloads_redirect_to_the_bucket(backend: Backend) {
    let app = TestApp::start_on(backend, &[("KTRA_S3_PRESIGNED_DOWNLOADS", "true")]).await;
    let token = app.create_user("alice").await;
    let fixture = CrateFixture::new("signed", "1.0.0");
    let (status, body) = app.publish(Some(&token), fixture.body()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
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
    let bytes = app
        .client
        .get(app.url("/dl/signed/1.0.0/download"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(bytes.as_ref(), fixture.crate_file().as_slice());
}

crate::on_every_backend!(
    publish_rejections_store_nothing,
    body_limit_is_enforced_before_buffering,
    duplicates_collisions_and_ownership,
    users_tokens_and_passwords,
    sparse_index_revalidates,
    downloads_stream_committed_versions_only,
    every_failure_uses_cargos_error_format,
    search_ranks_and_pages,
    presigned_downloads_redirect_to_the_bucket,
);
