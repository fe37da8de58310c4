//! Token requests: what a token may ask for, when it expires, and tokens asked for at login.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use super::scoped;
use crate::harness::{
    PASSWORD, TestApp, assert_forbidden, assert_ok, assert_refused, eventually, token_of,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_token_stops_working_when_it_expires() {
    let app = TestApp::embedded(&[]).await;
    let full = app.create_user("alice").await;
    let soon = (chrono::Utc::now() + chrono::TimeDelta::milliseconds(1500)).to_rfc3339();
    let brief = scoped(&app, &full, json!({"name": "brief", "expires_at": soon})).await;
    assert_ok(&app.publish_crate(&brief, "early", "1.0.0").await);
    // The server compares expiry with the wall clock: wait until it refuses the token on a
    // request that changes nothing, then check the refusal of a publish.
    eventually("the token to expire", Duration::from_secs(10), || async {
        let (status, _) = app.get_as(&brief, "/ktra/api/v1/tokens").await;
        (status != StatusCode::OK).then_some(())
    })
    .await;
    let reply = app.publish_crate(&brief, "late", "1.0.0").await;
    assert_forbidden(&reply, "the token `brief` expired at");
    app.assert_not_stored("late", 1).await;
    let (_, listed) = app.get_as(&full, "/ktra/api/v1/tokens").await;
    assert_eq!(listed["tokens"][1]["expired"], true, "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_token_requests_are_refused() {
    let app = TestApp::embedded(&[]).await;
    let full = app.create_user("alice").await;
    for (request, needle) in [
        (
            json!({"name": "x", "endpoint_scopes": ["publish"]}),
            "unknown variant `publish`",
        ),
        (
            json!({"name": "x", "endpoint_scopes": []}),
            "must not be empty",
        ),
        (
            json!({"name": "x", "crate_scopes": ["../etc"]}),
            "invalid crate scope",
        ),
        (json!({"name": "x", "expires_in_days": 0}), "in the future"),
        (json!({"name": ""}), "token name"),
        (
            json!({"name": "x", "scopes": ["yank"]}),
            "unknown field `scopes`",
        ),
    ] {
        let reply = app.create_token(&full, &request).await;
        assert_refused(&reply, StatusCode::BAD_REQUEST, needle);
    }
    let overflow = json!({"name": "overflow", "expires_in_days": 4_000_000_000_u32});
    let (_, body) = app.create_token(&full, &overflow).await;
    assert_eq!(
        body["errors"][0]["detail"],
        "the expiry must be within 3650 days"
    );
    // Without a token: 401, as for every API call.
    let reply = app.get("/ktra/api/v1/tokens").await;
    assert_refused(&reply, StatusCode::UNAUTHORIZED, "requires authentication");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_token_made_with_an_expiring_token_expires_no_later_than_it() {
    let app = TestApp::embedded(&[]).await;
    let full = app.create_user("alice").await;
    let (_, body) = app
        .create_token(&full, &json!({"name": "day", "expires_in_days": 1}))
        .await;
    let day = body["token"].as_str().unwrap().to_owned();
    let day_expiry = body["expires_at"].as_str().unwrap().to_owned();
    let (status, body) = app.create_token(&day, &json!({"name": "forever"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["expires_at"], day_expiry.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn login_asks_for_a_scoped_token_with_the_password() {
    let app = TestApp::embedded(&[]).await;
    app.create_user("alice").await;
    let scoped_login = json!({
        "password": PASSWORD,
        "token": {"name": "laptop", "endpoint_scopes": ["read-only"]},
    });
    let reply = app
        .post_json("/ktra/api/v1/login/alice", &scoped_login)
        .await;
    let laptop = token_of(&reply);
    let reply = app.publish_crate(&laptop, "nope", "1.0.0").await;
    assert_forbidden(&reply, "`laptop`");
    // A bad token request is refused before the password is even checked.
    let reply = app
        .post_json(
            "/ktra/api/v1/login/alice",
            &json!({"password": "wrong", "token": {"name": "x", "crate_scopes": []}}),
        )
        .await;
    assert_refused(&reply, StatusCode::BAD_REQUEST, "crate_scopes");
}
