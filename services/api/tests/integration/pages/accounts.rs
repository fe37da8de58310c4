//! Signing in, tokens, passwords and administration through the pages: sessions in the store,
//! a form token on every form, and the private registry's gate.

use reqwest::StatusCode;
use serde_json::json;

use super::Visitor;
use crate::harness::{Backend, PASSWORD, TestApp, assert_ok, assert_refused};

const REFUSED_FORM: &str = "did not come from this registry";

pub(crate) async fn signing_in_starts_a_session_and_forms_need_its_token(backend: Backend) {
    let app = TestApp::start_on(backend, &[]).await;
    let api_token = app.create_user("alice").await;
    assert_ok(&app.publish_crate(&api_token, "demo", "1.0.0").await);
    let mut alice = Visitor::new(&app);

    // Without a session, one's own pages lead to the sign-in form and back.
    let away = alice.get("/account/tokens").await;
    assert_eq!(away.status, StatusCode::SEE_OTHER);
    assert_eq!(
        away.location.as_deref(),
        Some("/login?next=%2Faccount%2Ftokens")
    );

    // The sign-in form's token must come back with it and match its cookie.
    let form = alice.get("/login?next=/crates/demo").await;
    assert_eq!(form.status, StatusCode::OK);
    let sign_in_token = form.csrf();
    assert!(
        form.set_cookies[0].contains("HttpOnly") && form.set_cookies[0].contains("SameSite=Lax")
    );
    for csrf in ["", "forged"] {
        let refused = alice
            .post(
                "/login",
                &[("csrf", csrf), ("name", "alice"), ("password", PASSWORD)],
            )
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{csrf:?}");
        assert!(refused.html.contains(REFUSED_FORM));
    }
    let wrong = alice
        .post(
            "/login",
            &[
                ("csrf", &sign_in_token),
                ("name", "alice"),
                ("password", "nope"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert!(
        wrong.html.contains("invalid user name or password"),
        "{}",
        wrong.html
    );
    // The form comes back with a new token, and so does its cookie.
    let sign_in_token = wrong.csrf();
    let signed_in = alice
        .post(
            "/login",
            &[
                ("csrf", &sign_in_token),
                ("name", "alice"),
                ("password", PASSWORD),
                ("next", "/crates/demo"),
            ],
        )
        .await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.html
    );
    assert_eq!(signed_in.location.as_deref(), Some("/crates/demo"));
    let session_cookie = signed_in
        .set_cookies
        .iter()
        .find(|line| line.starts_with("ktra_session="))
        .unwrap();
    assert!(session_cookie.contains("HttpOnly") && session_cookie.contains("SameSite=Lax"));
    assert!(
        !session_cookie.contains("Secure"),
        "the test registry is plain http"
    );

    let tokens = alice.get("/account/tokens").await;
    assert_eq!(tokens.status, StatusCode::OK);
    let headers = app
        .client
        .get(app.url("/account/tokens"))
        .header("cookie", alice.cookie_header())
        .send()
        .await
        .unwrap();
    for (name, value) in [
        ("x-frame-options", "DENY"),
        ("content-security-policy", "frame-ancestors 'none'"),
        ("referrer-policy", "same-origin"),
        ("cache-control", "no-store"),
    ] {
        assert_eq!(headers.headers()[name], value, "{name}");
    }
    assert!(tokens.html.contains("Sign out"));
    let csrf = tokens.csrf();
    assert_ne!(csrf, sign_in_token);

    // Every form refuses a post without the session's token, and changes nothing.
    let listed_id = tokens
        .html
        .split("/account/tokens/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .to_owned();
    for (path, fields) in [
        ("/account/tokens", vec![("name", "stolen")]),
        (&*format!("/account/tokens/{listed_id}/revoke"), vec![]),
        (
            "/account/password",
            vec![
                ("current", PASSWORD),
                ("new", "another long password"),
                ("again", "another long password"),
            ],
        ),
        ("/logout", vec![]),
        ("/admin/invitations", vec![]),
        ("/admin/users/alice/disable", vec![]),
    ] {
        for csrf in [None, Some("forged")] {
            let mut sent = fields.clone();
            if let Some(csrf) = csrf {
                sent.push(("csrf", csrf));
            }
            let refused = alice.post(path, &sent).await;
            assert_eq!(refused.status, StatusCode::FORBIDDEN, "{path} {csrf:?}");
            assert!(refused.html.contains(REFUSED_FORM), "{path}");
        }
    }
    assert_eq!(
        app.get_as(&api_token, "/ktra/api/v1/tokens").await.1["tokens"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // A scoped token made on the page works with the API as the API's would.
    let created = alice
        .post(
            "/account/tokens",
            &[
                ("csrf", &csrf),
                ("name", "ci"),
                ("expires_in_days", "30"),
                ("endpoint", "publish-update"),
                ("crates", "demo"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.html);
    let start = created.html.find("ktra_").unwrap();
    let token: String = created.html[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    assert_ok(&app.publish_crate(&token, "demo", "1.1.0").await);
    assert_refused(
        &app.publish_crate(&token, "other", "1.0.0").await,
        StatusCode::FORBIDDEN,
        "publishing new crates",
    );
    let bad = alice
        .post(
            "/account/tokens",
            &[("csrf", &csrf), ("name", "x"), ("crates", "a*b")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.html.contains("invalid crate scope"), "{}", bad.html);

    // Revoked on the page, the token is refused.
    let listing = alice.get("/account/tokens").await;
    assert!(listing.html.contains("<td>ci</td>"), "{}", listing.html);
    let ci_id = listing
        .html
        .split("/account/tokens/")
        .filter_map(|rest| rest.split('/').next())
        .find(|id| token.contains(id))
        .unwrap()
        .to_owned();
    let revoked = alice
        .post(
            &format!("/account/tokens/{ci_id}/revoke"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    assert_refused(
        &app.publish_crate(&token, "demo", "1.2.0").await,
        StatusCode::FORBIDDEN,
        "invalid or revoked",
    );

    // Signing out ends the session in the store: the old cookie opens nothing.
    let old_cookie = alice.cookie_header();
    let out = alice.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    let replayed = app
        .client
        .get(app.url("/account/tokens"))
        .header("cookie", old_cookie)
        .send()
        .await
        .unwrap();
    assert!(
        replayed.url().path().starts_with("/login"),
        "{}",
        replayed.url()
    );
}

pub(crate) async fn a_password_changed_on_the_page_revokes_every_token(backend: Backend) {
    let app = TestApp::start_on(backend, &[]).await;
    let api_token = app.create_user("alice").await;
    let mut alice = Visitor::new(&app);
    alice.sign_in("alice", PASSWORD).await;
    let mut elsewhere = Visitor::new(&app);
    elsewhere.sign_in("alice", PASSWORD).await;
    let csrf = alice.get("/account/password").await.csrf();
    // Spaces at either end are part of a password, as the API takes it.
    let new = "  a brand new long password ";
    let mismatch = alice
        .post(
            "/account/password",
            &[
                ("csrf", &csrf),
                ("current", PASSWORD),
                ("new", new),
                ("again", "other"),
            ],
        )
        .await;
    assert_eq!(mismatch.status, StatusCode::BAD_REQUEST);
    let wrong = alice
        .post(
            "/account/password",
            &[
                ("csrf", &csrf),
                ("current", "wrong"),
                ("new", new),
                ("again", new),
            ],
        )
        .await;
    assert!(wrong.html.contains("The current password is not right."));
    let changed = alice
        .post(
            "/account/password",
            &[
                ("csrf", &csrf),
                ("current", PASSWORD),
                ("new", new),
                ("again", new),
            ],
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.html);
    assert!(changed.html.contains("Password changed"));
    assert_eq!(
        changed.set_cookies.len(),
        1,
        "a new session for the page that changed it"
    );
    // Every other session ended with the old password; this one goes on.
    assert_eq!(
        elsewhere.get("/account/tokens").await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(alice.get("/account/tokens").await.status, StatusCode::OK);
    assert_refused(
        &app.get_as(&api_token, "/ktra/api/v1/tokens").await,
        StatusCode::FORBIDDEN,
        "invalid or revoked",
    );
    let (status, _) = app
        .post_json("/ktra/api/v1/login/alice", &json!({"password": new}))
        .await;
    assert_eq!(status, StatusCode::OK);
}

pub(crate) async fn administrators_manage_users_and_read_the_audit_log(backend: Backend) {
    let app = TestApp::start_on(backend, &[("KTRA_AUTH_ADMINS", "root")]).await;
    app.create_user("root").await;
    let bob_token = app.create_user("bob").await;
    let mut root = Visitor::new(&app);
    root.sign_in("root", PASSWORD).await;
    let mut bob = Visitor::new(&app);
    bob.sign_in("bob", PASSWORD).await;

    let refused = bob.get("/admin/users").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(bob.get("/admin/audit").await.status, StatusCode::FORBIDDEN);
    let bob_csrf = bob.get("/account/tokens").await.csrf();
    let not_admin = bob
        .post("/admin/users/root/disable", &[("csrf", &bob_csrf)])
        .await;
    assert_eq!(not_admin.status, StatusCode::FORBIDDEN);

    let users = root.get("/admin/users").await;
    assert_eq!(users.status, StatusCode::OK);
    assert!(users.html.contains("href=\"/users/bob\"") && users.html.contains("Audit log"));
    let csrf = users.csrf();
    let disabled = root
        .post("/admin/users/bob/disable", &[("csrf", &csrf)])
        .await;
    assert_eq!(disabled.status, StatusCode::SEE_OTHER);
    let after = root.get(disabled.location.as_deref().unwrap()).await;
    assert!(
        after.html.contains("user `bob` is disabled"),
        "{}",
        after.html
    );
    assert!(
        after
            .html
            .contains("<span class=\"yanked\">disabled</span>")
    );
    // Bob's session and tokens stop at once.
    assert_eq!(
        bob.get("/account/tokens").await.status,
        StatusCode::SEE_OTHER
    );
    assert_refused(
        &app.get_as(&bob_token, "/ktra/api/v1/tokens").await,
        StatusCode::FORBIDDEN,
        "",
    );
    let myself = root
        .post("/admin/users/root/disable", &[("csrf", &csrf)])
        .await;
    assert_eq!(myself.status, StatusCode::BAD_REQUEST);
    let enabled = root
        .post("/admin/users/bob/enable", &[("csrf", &csrf)])
        .await;
    assert_eq!(enabled.status, StatusCode::SEE_OTHER);
    assert_eq!(
        bob.get("/account/tokens").await.status,
        StatusCode::SEE_OTHER,
        "enabled again, bob signs in again"
    );

    let invitation = root
        .post("/admin/invitations", &[("csrf", &csrf), ("hours", "2")])
        .await;
    assert_eq!(invitation.status, StatusCode::OK);
    assert!(invitation.html.contains("ktra_inv_"));

    let audit = root.get("/admin/audit").await;
    for action in [
        "user.disable",
        "user.enable",
        "invitation.create",
        "session.create",
    ] {
        assert!(
            audit.html.contains(&format!("<td>{action}</td>")),
            "{action}: {}",
            audit.html
        );
    }
    let filtered = root
        .get("/admin/audit?action=user.disable&actor=root")
        .await;
    assert!(filtered.html.contains("<td>user.disable</td>"));
    assert!(!filtered.html.contains("<td>user.enable</td>"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_private_registry_shows_its_pages_to_signed_in_people_only() {
    let app = TestApp::start_on(
        Backend::Embedded,
        &[("KTRA_REGISTRY_AUTH_REQUIRED", "true")],
    )
    .await;
    let token = app.create_user("alice").await;
    assert_ok(&app.publish_crate(&token, "secret-thing", "1.0.0").await);
    let mut stranger = Visitor::new(&app);
    for path in [
        "/",
        "/search?q=secret",
        "/crates/secret-thing",
        "/users/alice",
        "/api/v1/crates/secret-thing",
    ] {
        let answer = stranger.get(path).await;
        assert!(
            matches!(
                answer.status,
                StatusCode::SEE_OTHER | StatusCode::UNAUTHORIZED
            ),
            "{path}: {}",
            answer.status
        );
        assert!(!answer.html.contains("secret-thing"), "{path}");
    }
    assert_eq!(
        stranger
            .get("/crates/secret-thing")
            .await
            .location
            .as_deref(),
        Some("/login?next=%2Fcrates%2Fsecret-thing")
    );
    let sign_in = stranger.get("/login").await;
    assert_eq!(sign_in.status, StatusCode::OK);
    assert_eq!(
        stranger.get("/static/ktra.css").await.status,
        StatusCode::OK
    );
    // cargo is sent to the sign-in page for a token.
    let challenge = app.get_with("/index/config.json", &[]).await;
    assert_eq!(
        challenge.headers()["www-authenticate"],
        format!("Cargo login_url=\"{}/login\"", app.base).as_str()
    );

    let mut alice = Visitor::new(&app);
    alice.sign_in("alice", PASSWORD).await;
    let page = alice.get("/crates/secret-thing").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("secret-thing"));
    // Tools may still read pages with a token.
    let with_token = app
        .get_with("/crates/secret-thing", &[("Authorization", &token)])
        .await;
    assert_eq!(with_token.status(), StatusCode::OK);
}

crate::on_every_backend!(
    signing_in_starts_a_session_and_forms_need_its_token,
    a_password_changed_on_the_page_revokes_every_token,
    administrators_manage_users_and_read_the_audit_log,
);
