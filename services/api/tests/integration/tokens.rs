//! Named, expiring, scoped tokens over HTTP: each scope admits what it names and refuses the
//! rest with 403 and a clear message; tokens are listed without secrets and revoked.

use ktra_testing::fixtures::CrateFixture;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Backend, TestApp, assert_error, read_json};

crate::on_every_backend!(scopes_admit_what_they_name);

/// Creates a token for the holder of `token` and returns its text.
async fn scoped(app: &TestApp, token: &str, request: Value) -> String {
    let (status, body) = app
        .call(
            Method::POST,
            "/ktra/api/v1/tokens",
            Some(token),
            Some(&request),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], request["name"]);
    body["token"].as_str().unwrap().to_owned()
}

async fn yank(app: &TestApp, token: &str, name: &str, version: &str) -> (StatusCode, Value) {
    app.call(
        Method::DELETE,
        &format!("/api/v1/crates/{name}/{version}/yank"),
        Some(token),
        None,
    )
    .await
}

async fn add_owner(app: &TestApp, token: &str, name: &str, user: &str) -> (StatusCode, Value) {
    app.call(
        Method::PUT,
        &format!("/api/v1/crates/{name}/owners"),
        Some(token),
        Some(&json!({"users": [user]})),
    )
    .await
}

async fn scopes_admit_what_they_name(backend: Backend) {
    let app = TestApp::start_on(backend, &[]).await;
    let full = app.create_user("alice").await;
    app.create_user("bob").await;
    let publish_new = scoped(
        &app,
        &full,
        json!({"name": "new-acme", "endpoint_scopes": ["publish-new"], "crate_scopes": ["acme-*"]}),
    )
    .await;
    let update = scoped(
        &app,
        &full,
        json!({"name": "ci", "endpoint_scopes": ["publish-update"], "crate_scopes": ["acme-*"]}),
    )
    .await;
    let yanker = scoped(
        &app,
        &full,
        json!({"name": "yanker", "endpoint_scopes": ["yank"]}),
    )
    .await;
    let owners = scoped(
        &app,
        &full,
        json!({"name": "owners", "endpoint_scopes": ["change-owners"], "crate_scopes": ["acme_core"]}),
    )
    .await;
    let read_only = scoped(
        &app,
        &full,
        json!({"name": "mirror", "endpoint_scopes": ["read-only"]}),
    )
    .await;

    // publish-new creates crates matching its pattern, and nothing else.
    let (status, body) = app
        .publish(
            Some(&publish_new),
            CrateFixture::new("acme-core", "1.0.0").body(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .publish(
            Some(&publish_new),
            CrateFixture::new("acme-core", "1.1.0").body(),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::FORBIDDEN,
        "this token (`new-acme`) does not allow publishing new versions of existing crates",
    );
    let (status, body) = app
        .publish(
            Some(&publish_new),
            CrateFixture::new("other", "1.0.0").body(),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::FORBIDDEN,
        "does not cover crate `other`: its scope is publish-new on acme-*",
    );
    // publish-update adds versions, never crates.
    let (status, body) = app
        .publish(
            Some(&update),
            CrateFixture::new("acme-core", "1.1.0").body(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .publish(
            Some(&update),
            CrateFixture::new("acme-util", "1.0.0").body(),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::FORBIDDEN,
        "does not allow publishing new crates",
    );
    // read-only reads and does nothing else.
    let (status, body) = app
        .publish(
            Some(&read_only),
            CrateFixture::new("acme-core", "2.0.0").body(),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::FORBIDDEN,
        "its scope is read-only",
    );
    let (status, body) = yank(&app, &read_only, "acme-core", "1.0.0").await;
    assert_error(
        status,
        &body,
        StatusCode::FORBIDDEN,
        "does not allow yanking",
    );
    let (status, body) = app
        .call(Method::GET, "/api/v1/crates?q=acme", Some(&read_only), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["meta"]["total"], 1);
    // yank and change-owners likewise.
    let (status, body) = yank(&app, &update, "acme-core", "1.0.0").await;
    assert_error(
        status,
        &body,
        StatusCode::FORBIDDEN,
        "does not allow yanking",
    );
    let (status, body) = yank(&app, &yanker, "acme-core", "1.0.0").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = add_owner(&app, &yanker, "acme-core", "bob").await;
    assert_error(
        status,
        &body,
        StatusCode::FORBIDDEN,
        "does not allow changing owners",
    );
    let (status, body) = add_owner(&app, &owners, "acme-core", "bob").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Nothing a refusal touched changed: two versions, one yanked, two owners.
    let lines = app.index_lines("acme-core").await.unwrap();
    let yanked: Vec<bool> = lines
        .iter()
        .map(|line| line["yanked"].as_bool().unwrap())
        .collect();
    assert_eq!(yanked, [true, false]);
    app.assert_not_stored("other", 2).await;
    assert!(app.index_lines("acme-util").await.is_none());

    // A scoped token cannot mint tokens, nor revoke others, but may revoke itself.
    let (status, body) = app
        .call(
            Method::POST,
            "/ktra/api/v1/tokens",
            Some(&update),
            Some(&json!({"name": "wider"})),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::FORBIDDEN,
        "creating tokens needs a token without scopes",
    );
    let (status, listed) = app
        .call(Method::GET, "/ktra/api/v1/tokens", Some(&update), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let tokens = listed["tokens"].as_array().unwrap();
    // Oldest first. Stores keep milliseconds, and tokens made within one are listed in either
    // order, so the names are compared after a stable sort by creation time.
    let created: Vec<chrono::DateTime<chrono::Utc>> = tokens
        .iter()
        .map(|t| t["created_at"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(created.is_sorted(), "{listed}");
    let mut names: Vec<(i64, &str)> = tokens
        .iter()
        .zip(&created)
        .map(|(t, at)| (at.timestamp_millis(), t["name"].as_str().unwrap()))
        .collect();
    let order = ["login", "new-acme", "ci", "yanker", "owners", "mirror"];
    names.sort_by_key(|(at, name)| (*at, order.iter().position(|n| n == name)));
    let names: Vec<&str> = names.into_iter().map(|(_, name)| name).collect();
    assert_eq!(names, order);
    for secret in [&full, &update, &yanker] {
        assert!(!listed.to_string().contains(&secret[21..]), "{listed}");
    }
    let named = |name: &str| tokens.iter().find(|token| token["name"] == name).unwrap();
    assert_eq!(named("ci")["endpoint_scopes"], json!(["publish-update"]));
    assert_eq!(named("ci")["crate_scopes"], json!(["acme-*"]));
    let id_of = |name: &str| named(name)["id"].as_str().unwrap().to_owned();
    let (status, body) = app
        .call(
            Method::DELETE,
            &format!("/ktra/api/v1/tokens/{}", id_of("yanker")),
            Some(&update),
            None,
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::FORBIDDEN,
        "revoking other tokens needs a token without scopes",
    );
    let (status, body) = app
        .call(
            Method::DELETE,
            &format!("/ktra/api/v1/tokens/{}", id_of("ci")),
            Some(&update),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = yank(&app, &update, "acme-core", "1.1.0").await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "invalid or revoked");
    // The unrestricted token revokes others; an unknown id is 404.
    let (status, body) = app
        .call(
            Method::DELETE,
            &format!("/ktra/api/v1/tokens/{}", id_of("yanker")),
            Some(&full),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .call(
            Method::DELETE,
            &format!("/ktra/api/v1/tokens/{}", id_of("yanker")),
            Some(&full),
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "no token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tokens_expire_and_bad_requests_are_refused() {
    let app = TestApp::start_on(Backend::Embedded, &[]).await;
    let full = app.create_user("alice").await;
    let soon = (chrono::Utc::now() + chrono::TimeDelta::milliseconds(1500)).to_rfc3339();
    let brief = scoped(&app, &full, json!({"name": "brief", "expires_at": soon})).await;
    let (status, body) = app
        .publish(Some(&brief), CrateFixture::new("early", "1.0.0").body())
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    let (status, body) = app
        .publish(Some(&brief), CrateFixture::new("late", "1.0.0").body())
        .await;
    assert_error(
        status,
        &body,
        StatusCode::FORBIDDEN,
        "the token `brief` expired at",
    );
    app.assert_not_stored("late", 1).await;
    let (_, listed) = app
        .call(Method::GET, "/ktra/api/v1/tokens", Some(&full), None)
        .await;
    assert_eq!(listed["tokens"][1]["expired"], true, "{listed}");

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
        let (status, body) = app
            .call(
                Method::POST,
                "/ktra/api/v1/tokens",
                Some(&full),
                Some(&request),
            )
            .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, needle);
    }

    // A token made with an expiring token expires no later than it.
    let (_, body) = app
        .call(
            Method::POST,
            "/ktra/api/v1/tokens",
            Some(&full),
            Some(&json!({"name": "day", "expires_in_days": 1})),
        )
        .await;
    let day = body["token"].as_str().unwrap().to_owned();
    let day_expiry = body["expires_at"].as_str().unwrap().to_owned();
    let (status, body) = app
        .call(
            Method::POST,
            "/ktra/api/v1/tokens",
            Some(&day),
            Some(&json!({"name": "forever"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["expires_at"], day_expiry.as_str());
    let (_, body) = app
        .call(
            Method::POST,
            "/ktra/api/v1/tokens",
            Some(&full),
            Some(&json!({"name": "overflow", "expires_in_days": 4_000_000_000_u32})),
        )
        .await;
    assert_eq!(
        body["errors"][0]["detail"],
        "the expiry must be within 3650 days"
    );

    // login asks for a scoped token with the password.
    let (status, body) = app
        .post_json(
            "/ktra/api/v1/login/alice",
            &json!({"password": "password123", "token": {"name": "laptop", "endpoint_scopes": ["read-only"]}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let laptop = body["token"].as_str().unwrap();
    let (status, body) = app
        .publish(Some(laptop), CrateFixture::new("nope", "1.0.0").body())
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "`laptop`");
    // A bad token request is refused before the password is even checked.
    let (status, body) = app
        .post_json(
            "/ktra/api/v1/login/alice",
            &json!({"password": "wrong", "token": {"name": "x", "crate_scopes": []}}),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "crate_scopes");
    // Without a token: 401, as for every API call.
    let (status, body) = app.get("/ktra/api/v1/tokens").await;
    assert_error(
        status,
        &body,
        StatusCode::UNAUTHORIZED,
        "requires authentication",
    );
}

/// Returns how often the metadata store's `token` lookup ran, from `/metrics`.
async fn token_lookups(app: &TestApp) -> f64 {
    app.metric(
        "ktra_storage_operation_duration_seconds_count{store=\"metadata\",operation=\"token\"}",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_private_registry_reads_a_token_once_per_request() {
    let app = TestApp::start_on(
        Backend::Embedded,
        &[("KTRA_REGISTRY_AUTH_REQUIRED", "true")],
    )
    .await;
    let token = app.create_user("alice").await;
    let yanker = scoped(
        &app,
        &token,
        json!({"name": "y", "endpoint_scopes": ["yank"]}),
    )
    .await;
    let before = token_lookups(&app).await;
    let (status, body) = app
        .publish(Some(&token), CrateFixture::new("quiet", "1.0.0").body())
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = yank(&app, &yanker, "quiet", "1.0.0").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The gate authenticates each request; the handlers use what it found, scope included.
    assert_eq!(token_lookups(&app).await - before, 2.0);
    let (status, body) = add_owner(&app, &yanker, "quiet", "alice").await;
    assert_error(
        status,
        &body,
        StatusCode::FORBIDDEN,
        "does not allow changing owners",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_registry_opens_only_probes_metrics_and_the_user_api() {
    let app = TestApp::start_on(
        Backend::Embedded,
        &[("KTRA_REGISTRY_AUTH_REQUIRED", "true")],
    )
    .await;
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

/// A hash as Ktra made them (Argon2id, m=4096, t=3, p=4), of `password`.
fn ktra_hash(password: &str) -> String {
    use argon2::password_hash::PasswordHasher as _;
    let params = argon2::Params::new(4096, 3, 4, None).unwrap();
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password(password.as_bytes())
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_imported_hash_logs_in_and_is_replaced_by_ours_keeping_the_tokens() {
    for backend in [Backend::Embedded, Backend::RedisS3] {
        let app = TestApp::start_on(backend, &[]).await;
        let imported = ktra_hash("ktra password");
        let token =
            ktra_store::model::ApiToken::from_imported("aQkGKnM77Wa1SYkXiPPIqbkWvcIM5G8U").unwrap();
        app.store
            .create_user(ktra_store::model::NewUser {
                name: "kate".to_owned(),
                password_hash: imported,
                token: token.to_new_token("imported from Ktra", chrono::Utc::now()),
                invitation: None,
                audit: ktra_store::model::AuditEvent {
                    at: chrono::Utc::now(),
                    actor: None,
                    action: "user.create".to_owned(),
                    target: "kate".to_owned(),
                    client: None,
                    detail: Some("imported from Ktra".to_owned()),
                },
            })
            .await
            .unwrap();
        for _ in 0..2 {
            let (status, body) = app
                .post_json(
                    "/ktra/api/v1/login/kate",
                    &json!({"password": "ktra password"}),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{backend:?}: {body}");
        }
        let stored = app.store.user_credentials("kate").await.unwrap().unwrap();
        assert!(
            stored
                .password_hash
                .starts_with("$argon2id$v=19$m=1024,t=1,"),
            "{backend:?}: {}",
            stored.password_hash
        );
        // Ktra's token still publishes.
        let (status, body) = app
            .publish(
                Some("aQkGKnM77Wa1SYkXiPPIqbkWvcIM5G8U"),
                CrateFixture::new("kates_crate", "0.1.0").body(),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {body}");
        app.stop().await;
    }
}
