//! Publishing, yanking and owners over the web API: every rejection answers in cargo's format
//! with the right status and stores nothing.

use ktra_testing::fixtures::CrateFixture;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::{
    Backend, TestApp, assert_error, assert_forbidden, assert_ok, assert_refused, read_json,
};

pub(crate) async fn publish_rejections_store_nothing(backend: Backend) {
    let app = TestApp::start_on(backend, &[]).await;
    let token = app.create_user("alice").await;

    // Credentials are checked before anything else.
    let demo = CrateFixture::new("demo", "1.0.0").body();
    let reply = app.publish(None, demo.clone()).await;
    assert_refused(&reply, StatusCode::UNAUTHORIZED, "requires authentication");
    let (status, body) = app.publish_crate("ktra_not-a-token", "demo", "1.0.0").await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "invalid or revoked");
    assert!(
        !body.to_string().contains("not-a-token"),
        "the token is echoed: {body}"
    );
    // The same id with another secret.
    let last = if token.ends_with('0') { '1' } else { '0' };
    let forged = format!("{}{last}", &token[..token.len() - 1]);
    let reply = app.publish_crate(&forged, "demo", "1.0.0").await;
    assert_forbidden(&reply, "invalid or revoked");

    // Malformed bodies.
    let truncated_json = CrateFixture::body_from(&json!("x"), b"")
        .into_iter()
        .collect::<Vec<u8>>();
    for (body, needle) in [
        (demo[..demo.len() - 3].to_vec(), "ends early"),
        (vec![0xff, 0xff, 0xff, 0xff, b'{'], "ends early"),
        (truncated_json, "invalid publish metadata"),
    ] {
        let reply = app.publish(Some(&token), body).await;
        assert_refused(&reply, StatusCode::BAD_REQUEST, needle);
    }

    // Names and versions.
    for (name, needle) in [
        ("nul", "reserved on Windows"),
        ("Com1", "reserved on Windows"),
        ("1abc", "must start with an ASCII letter"),
        ("foo.bar", "contains `.`"),
        (&"a".repeat(65), "longer than 64"),
    ] {
        let reply = app.publish_crate(&token, name, "1.0.0").await;
        assert_refused(&reply, StatusCode::BAD_REQUEST, needle);
    }
    let reply = app.publish_crate(&token, "demo", "1.0").await;
    assert_refused(&reply, StatusCode::BAD_REQUEST, "invalid version `1.0`");

    // Tarballs that lie or escape.
    let metadata = CrateFixture::new("demo", "1.0.0").metadata();
    let other = CrateFixture::new("demo", "2.0.0").crate_file();
    for (tarball, needle) in [
        (&b"not gzip"[..], "not a readable gzipped tarball"),
        (&other[..], "outside `demo-1.0.0/`"),
    ] {
        let reply = app
            .publish(Some(&token), CrateFixture::body_from(&metadata, tarball))
            .await;
        assert_refused(&reply, StatusCode::BAD_REQUEST, needle);
    }
    // The tarball's directory matches but its Cargo.toml names another version.
    let mut lying = CrateFixture::new("demo", "1.0.0");
    lying.manifest_override = Some(CrateFixture::new("demo", "9.9.9").manifest());
    let reply = app.publish(Some(&token), lying.body()).await;
    assert_refused(&reply, StatusCode::BAD_REQUEST, "says `demo@9.9.9`");

    app.assert_not_stored("demo", 0).await;
}

pub(crate) async fn body_limit_is_enforced_before_buffering(backend: Backend) {
    let app = TestApp::start_on(backend, &[("KTRA_HTTP_MAX_PUBLISH_BYTES", "4096")]).await;
    let token = app.create_user("alice").await;
    let big = CrateFixture::new("big", "1.0.0")
        .with_payload(16 * 1024)
        .body();

    // Declared length over the limit: refused before the body is read.
    let reply = app.publish(Some(&token), big.clone()).await;
    assert_refused(&reply, StatusCode::PAYLOAD_TOO_LARGE, "up to 4096 bytes");

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
    let reply = read_json(response).await;
    assert_refused(
        &reply,
        StatusCode::PAYLOAD_TOO_LARGE,
        "larger than the limit",
    );

    // Without a token the size does not matter: 401 first.
    let reply = app.publish(None, big).await;
    assert_refused(&reply, StatusCode::UNAUTHORIZED, "requires authentication");
    app.assert_not_stored("big", 0).await;
}

pub(crate) async fn duplicates_collisions_and_ownership(backend: Backend) {
    let app = TestApp::start_on(backend, &[]).await;
    let alice = app.create_user("alice").await;
    let bob = app.create_user("bob").await;
    let reply = app.publish_crate(&alice, "Foo_Bar", "1.0.0").await;
    assert_ok(&reply);
    assert_eq!(
        reply.1,
        json!({"warnings": {"invalid_categories": [], "invalid_badges": [], "other": []}})
    );
    let before = app.index_lines("foo_bar").await.unwrap();
    assert_eq!(app.blob_keys().await.len(), 1);

    // Another crate file under a published version (the same file again is a retry, which
    // succeeds: see retries.rs).
    for version in ["1.0.0", "1.0.0+build.7"] {
        let other_file = CrateFixture::new("Foo_Bar", version).with_payload(16);
        let reply = app.publish(Some(&alice), other_file.body()).await;
        let needle = "`Foo_Bar@1.0.0` is already uploaded";
        assert_refused(&reply, StatusCode::BAD_REQUEST, needle);
    }
    for other in ["foo-bar", "FOO_BAR", "foo_bar"] {
        let reply = app.publish_crate(&alice, other, "2.0.0").await;
        let needle = "taken by the existing crate `Foo_Bar`";
        assert_refused(&reply, StatusCode::BAD_REQUEST, needle);
    }
    let reply = app.publish_crate(&bob, "Foo_Bar", "2.0.0").await;
    assert_forbidden(&reply, "not an owner");
    assert_eq!(app.index_lines("foo_bar").await.unwrap(), before);
    assert!(app.index_lines("foo-bar").await.is_none());
    assert_eq!(app.blob_keys().await.len(), 1);

    // Yank and owners refuse non-owners and unknown targets.
    let reply = app.yank(&bob, "Foo_Bar", "1.0.0").await;
    assert_forbidden(&reply, "not an owner");
    let path = "/api/v1/crates/Foo_Bar/1.0.0/yank";
    let reply = app.call(Method::DELETE, path, None, None).await;
    assert_refused(&reply, StatusCode::UNAUTHORIZED, "requires authentication");
    let reply = app.yank(&alice, "Foo_Bar", "3.0.0").await;
    assert_refused(&reply, StatusCode::NOT_FOUND, "no version `3.0.0`");
    let reply = app.yank(&alice, "nothing", "1.0.0").await;
    assert_refused(&reply, StatusCode::NOT_FOUND, "does not exist");
    assert_eq!(app.index_lines("foo_bar").await.unwrap(), before);

    let reply = app.add_owner(&bob, "Foo_Bar", "bob").await;
    assert_forbidden(&reply, "not an owner");
    let reply = app.add_owner(&alice, "Foo_Bar", "carol").await;
    assert_refused(
        &reply,
        StatusCode::BAD_REQUEST,
        "could not find user `carol`",
    );
    let reply = app.remove_owner(&alice, "Foo_Bar", "alice").await;
    assert_refused(&reply, StatusCode::BAD_REQUEST, "cannot remove all owners");
    let (status, reply) = app.get("/api/v1/crates/Foo_Bar/owners").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        reply,
        json!({"users": [{"id": 1, "login": "alice", "name": null}]})
    );

    // Ktra's prefixed login is accepted as well as the plain name.
    let (status, reply) = app
        .add_owner(&alice, "Foo_Bar", "ktra-secure-auth:bob")
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert!(reply["msg"].as_str().unwrap().contains("`bob`"), "{reply}");
    assert_ok(&app.publish_crate(&bob, "Foo_Bar", "2.0.0").await);
    assert_eq!(app.index_lines("foo_bar").await.unwrap().len(), 2);
}

crate::on_every_backend!(
    publish_rejections_store_nothing,
    body_limit_is_enforced_before_buffering,
    duplicates_collisions_and_ownership,
);
