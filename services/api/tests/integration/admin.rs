//! Registration policies and administrators (`KTRA_AUTH_ADMINS`): closed registration admits
//! only administrators and the bootstrap token, invitations register one user each, and
//! administrators disable users, revoke tokens, transfer crates and read the audit log.

use http::StatusCode;
use reqwest::Method;
use serde_json::json;

use crate::harness::{
    Backend, PASSWORD, Reply, TestApp, assert_forbidden, assert_ok, assert_refused, read_json,
    token_of,
};

/// Asks to register `name`, with `authorization` (an administrator's or the bootstrap token).
async fn new_user(app: &TestApp, name: &str, authorization: Option<&str>) -> Reply {
    let mut request = app
        .client
        .post(app.url(&format!("/ktra/api/v1/new_user/{name}")))
        .json(&json!({"password": PASSWORD}));
    if let Some(authorization) = authorization {
        request = request.header("Authorization", authorization);
    }
    read_json(request.send().await.unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn closed_registration_admits_only_administrators() {
    let app = TestApp::embedded(&[
        ("KTRA_AUTH_REGISTRATION", "closed"),
        ("KTRA_AUTH_ADMINS", "Root,ops"),
        ("KTRA_AUTH_BOOTSTRAP_TOKEN", BOOTSTRAP),
    ])
    .await;

    // Nobody registers themselves.
    let reply = new_user(&app, "eve", None).await;
    assert_forbidden(&reply, "registration is closed");
    let (status, body) = new_user(&app, "eve", Some("bootstrap-secret-wrong")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(!body.to_string().contains("bootstrap-secret"), "{body}");
    assert!(app.store.user_credentials("eve").await.unwrap().is_none());

    // The bootstrap token creates the first administrator (names compare regardless of case).
    let (status, body) = new_user(&app, "root", Some(&format!("Bearer {BOOTSTRAP}"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let root = body["token"].as_str().unwrap().to_owned();

    // The administrator creates users; they cannot.
    let (status, body) = new_user(&app, "dev", Some(&root)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let dev = body["token"].as_str().unwrap().to_owned();
    let reply = new_user(&app, "eve", Some(&dev)).await;
    assert_forbidden(&reply, "registration is closed");
    assert!(app.store.user_credentials("eve").await.unwrap().is_none());

    // Logging in is unaffected.
    assert_ok(&app.login("dev", PASSWORD).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn open_registration_is_the_default() {
    let app = TestApp::embedded(&[]).await;
    let (status, body) = new_user(&app, "anyone", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// The bootstrap token of the registries below.
const BOOTSTRAP: &str = "bootstrap-secret-0123456789abcdef";

/// Registration by invitation, with `root` as the administrator.
const BY_INVITATION: &[(&str, &str)] = &[
    ("KTRA_AUTH_REGISTRATION", "invitation"),
    ("KTRA_AUTH_ADMINS", "root"),
    ("KTRA_AUTH_BOOTSTRAP_TOKEN", BOOTSTRAP),
];

/// A registry by invitation whose administrator, root, registered with the bootstrap token.
struct Administered {
    app: TestApp,
    root: String,
}

impl Administered {
    async fn start(backend: Backend) -> Self {
        let app = TestApp::start_on(backend, BY_INVITATION).await;
        let root = token_of(&new_user(&app, "root", Some(BOOTSTRAP)).await);
        Self { app, root }
    }

    /// Asks for an invitation with `token`.
    async fn invite(&self, token: &str) -> Reply {
        let path = "/ktra/api/v1/admin/invitations";
        let request = json!({"expires_in_hours": 1});
        self.app
            .call(Method::POST, path, Some(token), Some(&request))
            .await
    }

    /// Registers `name` with an invitation from root; returns the invitation and the token.
    async fn invited(&self, name: &str) -> (String, String) {
        let (status, body) = self.invite(&self.root).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let code = body["invitation"].as_str().unwrap().to_owned();
        let request = json!({"password": PASSWORD, "invitation": code});
        let token = token_of(&self.app.register(name, &request).await);
        (code, token)
    }

    /// Asks with `token` to disable or enable (`verb`) `user`.
    async fn set_enabled(&self, verb: &str, token: &str, user: &str) -> Reply {
        let path = format!("/ktra/api/v1/admin/users/{user}/{verb}");
        self.app.call(Method::POST, &path, Some(token), None).await
    }
}

/// A registry by invitation with its administrator and two invited users.
struct WithUsers {
    admin: Administered,
    alice: String,
    bob: String,
}

impl WithUsers {
    async fn start(backend: Backend) -> Self {
        let admin = Administered::start(backend).await;
        let (_, alice) = admin.invited("alice").await;
        let (_, bob) = admin.invited("bob").await;
        Self { admin, alice, bob }
    }

    /// Alice publishes `tool`; root adds bob as its owner and removes alice, but may not
    /// remove bob, its last owner.
    async fn transfer_tool_to_bob(&self) {
        let app = &self.admin.app;
        let root = &self.admin.root;
        assert_ok(&app.publish_crate(&self.alice, "tool", "1.0.0").await);
        let reply = app.add_owner(&self.bob, "tool", "bob").await;
        assert_forbidden(&reply, "not an owner");
        let reply = app.add_owner(root, "tool", "bob").await;
        assert_ok(&reply);
        let reply = app.remove_owner(root, "tool", "alice").await;
        assert_ok(&reply);
        let reply = app.remove_owner(root, "tool", "bob").await;
        assert_refused(&reply, StatusCode::BAD_REQUEST, "cannot remove all owners");
        let (_, listed) = app.get_as(&self.bob, "/api/v1/crates/tool/owners").await;
        assert_eq!(listed["users"][0]["login"], "bob", "{listed}");
        assert_eq!(listed["users"].as_array().unwrap().len(), 1);
    }

    /// Root disables bob, which revokes his tokens and refuses his logins, then enables him;
    /// bob logs in again and gets a new token.
    async fn disable_and_enable_bob(&mut self) {
        let admin = &self.admin;
        let app = &admin.app;
        let reply = admin.set_enabled("disable", &self.alice, "bob").await;
        assert_forbidden(&reply, "for administrators");
        let reply = admin.set_enabled("disable", &admin.root, "root").await;
        assert_refused(&reply, StatusCode::BAD_REQUEST, "cannot disable themselves");
        assert_ok(&admin.set_enabled("disable", &admin.root, "bob").await);
        let reply = app.publish_crate(&self.bob, "tool", "1.1.0").await;
        assert_forbidden(&reply, "invalid or revoked");
        let reply = app.login("bob", PASSWORD).await;
        assert_forbidden(&reply, "user `bob` is disabled");
        assert_ok(&admin.set_enabled("enable", &admin.root, "bob").await);
        self.bob = token_of(&app.login("bob", PASSWORD).await);
    }

    /// Root lists alice's tokens and revokes the first: alice's calls are refused.
    async fn revoke_alices_token(&self) {
        let app = &self.admin.app;
        let root = &self.admin.root;
        let (status, listed) = app
            .get_as(root, "/ktra/api/v1/admin/users/alice/tokens")
            .await;
        assert_eq!(status, StatusCode::OK, "{listed}");
        let id = listed["tokens"][0]["id"].as_str().unwrap();
        let path = format!("/ktra/api/v1/admin/users/alice/tokens/{id}");
        assert_ok(&app.delete_as(root, &path).await);
        let (status, _) = app.get_as(&self.alice, "/ktra/api/v1/tokens").await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
}

crate::on_every_backend!(
    registration_by_invitation_needs_the_bootstrap_token_for_the_first_administrator,
    each_invitation_registers_one_user_once,
    administrators_transfer_crates_but_never_leave_them_without_owners,
    disabling_a_user_revokes_their_tokens_and_refuses_logins_until_enabled,
    administrators_list_and_revoke_a_users_tokens,
    the_audit_log_tells_who_did_what_to_what_from_where_newest_first,
    the_audit_log_is_for_administrators_and_filters_and_pages,
);

async fn registration_by_invitation_needs_the_bootstrap_token_for_the_first_administrator(
    backend: Backend,
) {
    let without_bootstrap = &BY_INVITATION[..2];
    let app = TestApp::start_on(backend, without_bootstrap).await;
    let (status, body) = new_user(&app, "root", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
}

async fn each_invitation_registers_one_user_once(backend: Backend) {
    let admin = Administered::start(backend).await;
    let mut users = Vec::new();
    for name in ["alice", "bob"] {
        let (code, token) = admin.invited(name).await;
        users.push(token);
        let request = json!({"password": PASSWORD, "invitation": code});
        let reply = admin.app.register("mallory", &request).await;
        assert_forbidden(&reply, "already used or expired");
    }
    let request = json!({"password": PASSWORD, "invitation": "ktra_inv_00"});
    let reply = admin.app.register("mallory", &request).await;
    assert_forbidden(&reply, "invitation");
    let reply = new_user(&admin.app, "mallory", None).await;
    assert_forbidden(&reply, "registration is closed");
    let mallory = admin.app.store.user_credentials("mallory").await.unwrap();
    assert!(mallory.is_none());
    // Users cannot invite.
    let reply = admin.invite(&users[0]).await;
    assert_forbidden(&reply, "for administrators");
}

async fn administrators_transfer_crates_but_never_leave_them_without_owners(backend: Backend) {
    WithUsers::start(backend).await.transfer_tool_to_bob().await;
}

async fn disabling_a_user_revokes_their_tokens_and_refuses_logins_until_enabled(backend: Backend) {
    WithUsers::start(backend)
        .await
        .disable_and_enable_bob()
        .await;
}

async fn administrators_list_and_revoke_a_users_tokens(backend: Backend) {
    WithUsers::start(backend).await.revoke_alices_token().await;
}

async fn the_audit_log_tells_who_did_what_to_what_from_where_newest_first(backend: Backend) {
    let mut registry = WithUsers::start(backend).await;
    registry.transfer_tool_to_bob().await;
    registry.disable_and_enable_bob().await;
    registry.revoke_alices_token().await;
    let app = &registry.admin.app;
    let (status, _) = app.login("nobody", "guess-guess").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, page) = app
        .get_as(&registry.admin.root, "/ktra/api/v1/admin/audit")
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
}

async fn the_audit_log_is_for_administrators_and_filters_and_pages(backend: Backend) {
    let registry = WithUsers::start(backend).await;
    let app = &registry.admin.app;
    let root = &registry.admin.root;
    assert_ok(&app.publish_crate(&registry.alice, "tool", "1.0.0").await);
    let reply = app.get_as(&registry.bob, "/ktra/api/v1/admin/audit").await;
    assert_forbidden(&reply, "for administrators");
    let (_, page) = app.get_as(root, "/ktra/api/v1/admin/audit").await;
    let events = page["events"].as_array().unwrap();
    let (_, publishes) = app
        .get_as(root, "/ktra/api/v1/admin/audit?action=crate.publish")
        .await;
    assert_eq!(
        publishes["events"].as_array().unwrap().len(),
        1,
        "{publishes}"
    );
    let (_, first) = app.get_as(root, "/ktra/api/v1/admin/audit?limit=2").await;
    let next = first["next"].as_str().unwrap();
    let (_, second) = app
        .get_as(
            root,
            &format!("/ktra/api/v1/admin/audit?limit=2&before={next}"),
        )
        .await;
    assert_eq!(second["events"][0], events[2]);
    let reply = app
        .get_as(root, "/ktra/api/v1/admin/audit?before=zzz")
        .await;
    assert_refused(&reply, StatusCode::BAD_REQUEST, "cursor");
}
