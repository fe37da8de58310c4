//! Registration policies and administrators (`KTRA_AUTH_ADMINS`): closed registration admits
//! only administrators and the bootstrap token, invitations register one user each, and
//! administrators disable users, revoke tokens, transfer crates and read the audit log.

use http::StatusCode;
use ktra_testing::fixtures::CrateFixture;
use reqwest::Method;
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

crate::on_every_backend!(administrators_manage_users_owners_and_read_the_audit_log);

async fn administrators_manage_users_owners_and_read_the_audit_log(backend: Backend) {
    let app = TestApp::start_on(
        backend,
        &[
            ("KTRA_AUTH_REGISTRATION", "invitation"),
            ("KTRA_AUTH_ADMINS", "root"),
        ],
    )
    .await;
    let bootstrap_less = new_user(&app, "root", None).await;
    assert_eq!(
        bootstrap_less.0,
        StatusCode::FORBIDDEN,
        "{}",
        bootstrap_less.1
    );

    // Invitations: an administrator issues them, each registers one user once.
    let app = TestApp::start_on(
        backend,
        &[
            ("KTRA_AUTH_REGISTRATION", "invitation"),
            ("KTRA_AUTH_ADMINS", "root"),
            (
                "KTRA_AUTH_BOOTSTRAP_TOKEN",
                "bootstrap-secret-0123456789abcdef",
            ),
        ],
    )
    .await;
    let (status, body) = new_user(&app, "root", Some("bootstrap-secret-0123456789abcdef")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let root = body["token"].as_str().unwrap().to_owned();
    let invite = |token: String| {
        let app = &app;
        async move {
            app.call(
                Method::POST,
                "/ktra/api/v1/admin/invitations",
                Some(&token),
                Some(&json!({"expires_in_hours": 1})),
            )
            .await
        }
    };
    let mut users = Vec::new();
    for name in ["alice", "bob"] {
        let (status, body) = invite(root.clone()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let code = body["invitation"].as_str().unwrap().to_owned();
        let (status, body) = app
            .post_json(
                &format!("/ktra/api/v1/new_user/{name}"),
                &json!({"password": "password123", "invitation": code}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        users.push(body["token"].as_str().unwrap().to_owned());
        let (status, body) = app
            .post_json(
                "/ktra/api/v1/new_user/mallory",
                &json!({"password": "password123", "invitation": code}),
            )
            .await;
        assert_error(
            status,
            &body,
            StatusCode::FORBIDDEN,
            "already used or expired",
        );
    }
    let [alice, bob] = [users[0].clone(), users[1].clone()];
    let (status, body) = app
        .post_json(
            "/ktra/api/v1/new_user/mallory",
            &json!({"password": "password123", "invitation": "ktra_inv_00"}),
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "invitation");
    let (status, body) = new_user(&app, "mallory", None).await;
    assert_error(
        status,
        &body,
        StatusCode::FORBIDDEN,
        "registration is closed",
    );
    assert!(
        app.store
            .user_credentials("mallory")
            .await
            .unwrap()
            .is_none()
    );
    // Users cannot invite.
    let (status, body) = invite(alice.clone()).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "for administrators");

    // Ownership: an administrator transfers a crate, never leaving it without an owner.
    let (status, body) = app
        .publish(Some(&alice), CrateFixture::new("tool", "1.0.0").body())
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let owners = |method: Method, token: String, user: &'static str| {
        let app = &app;
        async move {
            app.call(
                method,
                "/api/v1/crates/tool/owners",
                Some(&token),
                Some(&json!({"users": [user]})),
            )
            .await
        }
    };
    let (status, body) = owners(Method::PUT, bob.clone(), "bob").await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "not an owner");
    let (status, body) = owners(Method::PUT, root.clone(), "bob").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = owners(Method::DELETE, root.clone(), "alice").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = owners(Method::DELETE, root.clone(), "bob").await;
    assert_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "cannot remove all owners",
    );
    let (_, listed) = app
        .call(Method::GET, "/api/v1/crates/tool/owners", Some(&bob), None)
        .await;
    assert_eq!(listed["users"][0]["login"], "bob", "{listed}");
    assert_eq!(listed["users"].as_array().unwrap().len(), 1);

    // Disabling a user revokes their tokens and stops their logins until enabled.
    let disable = |verb: &'static str, token: String, user: &'static str| {
        let app = &app;
        async move {
            app.call(
                Method::POST,
                &format!("/ktra/api/v1/admin/users/{user}/{verb}"),
                Some(&token),
                None,
            )
            .await
        }
    };
    let (status, body) = disable("disable", alice.clone(), "bob").await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "for administrators");
    let (status, body) = disable("disable", root.clone(), "root").await;
    assert_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "cannot disable themselves",
    );
    let (status, body) = disable("disable", root.clone(), "bob").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .publish(Some(&bob), CrateFixture::new("tool", "1.1.0").body())
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "invalid or revoked");
    let login = json!({"password": "password123"});
    let (status, body) = app.post_json("/ktra/api/v1/login/bob", &login).await;
    assert_error(
        status,
        &body,
        StatusCode::FORBIDDEN,
        "user `bob` is disabled",
    );
    let (status, body) = disable("enable", root.clone(), "bob").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.post_json("/ktra/api/v1/login/bob", &login).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let bob = body["token"].as_str().unwrap().to_owned();

    // An administrator lists and revokes a user's tokens.
    let (status, listed) = app
        .call(
            Method::GET,
            "/ktra/api/v1/admin/users/alice/tokens",
            Some(&root),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let id = listed["tokens"][0]["id"].as_str().unwrap();
    let (status, body) = app
        .call(
            Method::DELETE,
            &format!("/ktra/api/v1/admin/users/alice/tokens/{id}"),
            Some(&root),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = app
        .call(Method::GET, "/ktra/api/v1/tokens", Some(&alice), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A failed login, then the audit log: who did what, to what, from where, newest first.
    let (status, _) = app
        .post_json(
            "/ktra/api/v1/login/nobody",
            &json!({"password": "guess-guess"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = app
        .call(Method::GET, "/ktra/api/v1/admin/audit", Some(&bob), None)
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "for administrators");
    let (status, page) = app
        .call(Method::GET, "/ktra/api/v1/admin/audit", Some(&root), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let events = page["events"].as_array().unwrap();
    let summary: Vec<String> = events
        .iter()
        .rev()
        .map(|event| {
            format!(
                "{} {} {}",
                event["actor"].as_str().unwrap_or("-"),
                event["action"].as_str().unwrap(),
                event["target"].as_str().unwrap()
            )
        })
        .collect();
    let expected_in_order = [
        "- user.create root",
        "root invitation.create",
        "alice user.create alice",
        "bob user.create bob",
        "alice crate.publish tool@1.0.0",
        "root crate.owner_add tool",
        "root crate.owner_remove tool",
        "root user.disable bob",
        "- login.failure bob",
        "root user.enable bob",
        "bob token.create",
        "root token.revoke",
        "- login.failure nobody",
    ];
    let mut position = 0;
    for wanted in expected_in_order {
        let found = summary[position..]
            .iter()
            .position(|line| line.starts_with(wanted))
            .unwrap_or_else(|| panic!("no `{wanted}` after event {position}: {summary:#?}"));
        position += found + 1;
    }
    for event in events {
        assert_eq!(event["client"], "127.0.0.1", "{event}");
        assert!(event["at"].as_str().unwrap().starts_with("20"), "{event}");
    }
    let owner_add = events
        .iter()
        .find(|event| event["action"] == "crate.owner_add")
        .unwrap();
    assert_eq!(owner_add["detail"], "`bob` (as administrator)");
    // Filters and pages.
    let (_, publishes) = app
        .call(
            Method::GET,
            "/ktra/api/v1/admin/audit?action=crate.publish",
            Some(&root),
            None,
        )
        .await;
    assert_eq!(
        publishes["events"].as_array().unwrap().len(),
        1,
        "{publishes}"
    );
    let (_, first) = app
        .call(
            Method::GET,
            "/ktra/api/v1/admin/audit?limit=2",
            Some(&root),
            None,
        )
        .await;
    let next = first["next"].as_str().unwrap();
    let (_, second) = app
        .call(
            Method::GET,
            &format!("/ktra/api/v1/admin/audit?limit=2&before={next}"),
            Some(&root),
            None,
        )
        .await;
    assert_eq!(second["events"][0], events[2]);
    let (status, body) = app
        .call(
            Method::GET,
            "/ktra/api/v1/admin/audit?before=zzz",
            Some(&root),
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "cursor");
}
