//! Closed registration: only administrators (`KTRA_AUTH_ADMINS`) and the bootstrap token
//! create users.

use http::StatusCode;
use serde_json::json;

use crate::harness::{Backend, TestApp, assert_error, read_json};

async fn new_user(
    app: &TestApp,
    name: &str,
    authorization: Option<&str>,
) -> (StatusCode, serde_json::Value) {
    let mut request = app
        .client
        .post(app.url(&format!("/ktra/api/v1/new_user/{name}")))
        .json(&json!({"password": "password123"}));
    if let Some(authorization) = authorization {
        request = request.header("Authorization", authorization);
    }
    read_json(request.send().await.unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn closed_registration_admits_only_administrators() {
    let bootstrap = "bootstrap-secret-0123456789abcdef";
    let app = TestApp::start_on(
        Backend::Embedded,
        &[
            ("KTRA_AUTH_REGISTRATION", "closed"),
            ("KTRA_AUTH_ADMINS", "Root,ops"),
            ("KTRA_AUTH_BOOTSTRAP_TOKEN", bootstrap),
        ],
    )
    .await;

    // Nobody registers themselves.
    let (status, body) = new_user(&app, "eve", None).await;
    assert_error(
        status,
        &body,
        StatusCode::FORBIDDEN,
        "registration is closed",
    );
    let (status, body) = new_user(&app, "eve", Some("bootstrap-secret-wrong")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(!body.to_string().contains("bootstrap-secret"), "{body}");
    assert!(app.store.user_credentials("eve").await.unwrap().is_none());

    // The bootstrap token creates the first administrator (names compare regardless of case).
    let (status, body) = new_user(&app, "root", Some(&format!("Bearer {bootstrap}"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let root = body["token"].as_str().unwrap().to_owned();

    // The administrator creates users; they cannot.
    let (status, body) = new_user(&app, "dev", Some(&root)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let dev = body["token"].as_str().unwrap().to_owned();
    let (status, body) = new_user(&app, "eve", Some(&dev)).await;
    assert_error(
        status,
        &body,
        StatusCode::FORBIDDEN,
        "registration is closed",
    );
    assert!(app.store.user_credentials("eve").await.unwrap().is_none());

    // Logging in is unaffected.
    let (status, body) = app
        .post_json(
            "/ktra/api/v1/login/dev",
            &json!({"password": "password123"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn open_registration_is_the_default() {
    let app = TestApp::start_on(Backend::Embedded, &[]).await;
    let (status, body) = new_user(&app, "anyone", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
