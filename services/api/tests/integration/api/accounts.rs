//! Ktra's user API over HTTP: registration, login and password changes, each refusal in
//! cargo's format.

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{
    Backend, PASSWORD, TestApp, assert_forbidden, assert_ok, assert_refused, read_json, token_of,
};

pub(crate) async fn registration_refuses_taken_names_short_passwords_and_bad_bodies(
    backend: Backend,
) {
    let app = TestApp::start_on(backend, &[]).await;
    app.create_user("alice").await;
    for (name, password, needle) in [
        ("Alice", PASSWORD, "already exists"),
        ("carol", "short", "at least 8 characters"),
        ("bad%2Fname", PASSWORD, "invalid user name"),
    ] {
        let reply = app.register(name, &json!({"password": password})).await;
        assert_refused(&reply, StatusCode::BAD_REQUEST, needle);
    }
    let response = app
        .client
        .post(app.url("/ktra/api/v1/new_user/dave"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    let reply = read_json(response).await;
    assert_refused(&reply, StatusCode::BAD_REQUEST, "invalid JSON body");
}

pub(crate) async fn a_wrong_password_and_an_unknown_user_get_the_same_answer(backend: Backend) {
    let app = TestApp::start_on(backend, &[]).await;
    app.create_user("alice").await;
    let wrong = app.login("alice", "wrong-password").await;
    let needle = "invalid user name or password";
    assert_refused(&wrong, StatusCode::FORBIDDEN, needle);
    let unknown = app.login("nobody", "wrong-password").await;
    assert_refused(&unknown, StatusCode::FORBIDDEN, needle);
    assert_eq!(wrong.1, unknown.1);
}

/// Registers alice, then logs her in; returns the two tokens.
async fn alice_with_two_tokens(app: &TestApp) -> [String; 2] {
    let first = app.create_user("alice").await;
    let second = token_of(&app.login("alice", PASSWORD).await);
    [first, second]
}

pub(crate) async fn login_adds_a_token_and_keeps_the_first(backend: Backend) {
    let app = TestApp::start_on(backend, &[]).await;
    let [first, second] = alice_with_two_tokens(&app).await;
    assert_ne!(first, second);
    for token in [&first, &second] {
        let name = format!("c{}", &token[5..9]);
        assert_ok(&app.publish_crate(token, &name, "1.0.0").await);
    }
}

pub(crate) async fn changing_the_password_revokes_every_token_and_returns_a_new_one(
    backend: Backend,
) {
    let app = TestApp::start_on(backend, &[]).await;
    let [first, second] = alice_with_two_tokens(&app).await;
    let change =
        |old_password: &str| json!({"old_password": old_password, "new_password": "new-password"});
    let path = "/ktra/api/v1/change_password/alice";
    let reply = app.post_json(path, &change("wrong-password")).await;
    assert_forbidden(&reply, "invalid user name or password");
    let third = token_of(&app.post_json(path, &change(PASSWORD)).await);
    for revoked in [&first, &second] {
        let reply = app.publish_crate(revoked, "late", "1.0.0").await;
        assert_forbidden(&reply, "invalid or revoked");
    }
    let bearer = format!("Bearer {third}");
    assert_ok(&app.publish_crate(&bearer, "late", "1.0.0").await);
    let (status, _) = app.login("alice", PASSWORD).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

crate::on_every_backend!(
    registration_refuses_taken_names_short_passwords_and_bad_bodies,
    a_wrong_password_and_an_unknown_user_get_the_same_answer,
    login_adds_a_token_and_keeps_the_first,
    changing_the_password_revokes_every_token_and_returns_a_new_one,
);
