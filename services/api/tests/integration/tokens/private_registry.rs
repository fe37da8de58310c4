//! A private registry: the gate reads each request's token once, and only probes, metrics and
//! the user API are open without one.

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::scoped;
use crate::harness::{PRIVATE, TestApp, assert_error, assert_forbidden, assert_ok, read_json};

/// Returns how often the metadata store's `token` lookup ran, from `/metrics`.
async fn token_lookups(app: &TestApp) -> f64 {
    app.metric(
        "ktra_storage_operation_duration_seconds_count{store=\"metadata\",operation=\"token\"}",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_private_registry_reads_a_token_once_per_request() {
    let app = TestApp::embedded(PRIVATE).await;
    let token = app.create_user("alice").await;
    let yanker = scoped(
        &app,
        &token,
        json!({"name": "y", "endpoint_scopes": ["yank"]}),
    )
    .await;
    let before = token_lookups(&app).await;
    assert_ok(&app.publish_crate(&token, "quiet", "1.0.0").await);
    assert_ok(&app.yank(&yanker, "quiet", "1.0.0").await);
    // The gate authenticates each request; the handlers use what it found, scope included.
    assert_eq!(token_lookups(&app).await - before, 2.0);
    let reply = app.add_owner(&yanker, "quiet", "alice").await;
    assert_forbidden(&reply, "does not allow changing owners");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_registry_opens_only_probes_metrics_and_the_user_api() {
    let app = TestApp::embedded(PRIVATE).await;
    for (method, path) in [
        (Method::GET, "/livez"),
        (Method::GET, "/readyz"),
        (Method::GET, "/metrics"),
        (Method::GET, "/me"),
        (Method::POST, "/ktra/api/v1/login/alice"),
    ] {
        let response = app
            .client
            .request(method.clone(), app.url(path))
            .json(&json!({"password": "wrong"}))
            .send()
            .await
            .unwrap();
        assert_ne!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {path}"
        );
    }
    for (method, path) in [
        (Method::GET, "/index/config.json"),
        (Method::GET, "/index/3/f/foo"),
        (Method::GET, "/api/v1/crates?q=foo"),
        (Method::GET, "/api/v1/crates/foo/owners"),
        (Method::PUT, "/api/v1/crates/foo/owners"),
        (Method::GET, "/api/v1/crates/foo/1.0.0/download"),
        (Method::PUT, "/api/v1/crates/new"),
        (Method::DELETE, "/api/v1/crates/foo/1.0.0/yank"),
        (Method::GET, "/ktra/api/v1/tokens"),
        (Method::GET, "/ktra/api/v1/admin/audit"),
    ] {
        let response = app
            .client
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let challenge = response.headers().get("www-authenticate").cloned();
        let (_, body) = read_json(response).await;
        assert_error(
            status,
            &body,
            StatusCode::UNAUTHORIZED,
            "requires authentication",
        );
        assert!(
            challenge.is_some(),
            "{method} {path}: cargo is told where to log in"
        );
    }
}
