//! Each scope admits what it names and refuses the rest with 403 and a clear message; tokens
//! are listed without secrets, and only an unrestricted token revokes others.

use reqwest::StatusCode;
use serde_json::json;

use super::scoped;
use crate::harness::{Backend, TestApp, assert_forbidden, assert_ok, assert_refused};

/// A registry where alice holds her first, unrestricted token and one token of each scope,
/// bob exists, and `acme-core` 1.0.0 is published with the publish-new token.
struct Scoped {
    app: TestApp,
    full: String,
    publish_new: String,
    update: String,
    yanker: String,
    owners: String,
    read_only: String,
}

impl Scoped {
    async fn start(backend: Backend) -> Self {
        let app = TestApp::start_on(backend, &[]).await;
        let full = app.create_user("alice").await;
        app.create_user("bob").await;
        let publish_new = json!({
            "name": "new-acme", "endpoint_scopes": ["publish-new"], "crate_scopes": ["acme-*"],
        });
        let update = json!({
            "name": "ci", "endpoint_scopes": ["publish-update"], "crate_scopes": ["acme-*"],
        });
        let yanker = json!({"name": "yanker", "endpoint_scopes": ["yank"]});
        let owners = json!({
            "name": "owners", "endpoint_scopes": ["change-owners"], "crate_scopes": ["acme_core"],
        });
        let read_only = json!({"name": "mirror", "endpoint_scopes": ["read-only"]});
        let scoped = Self {
            publish_new: scoped(&app, &full, publish_new).await,
            update: scoped(&app, &full, update).await,
            yanker: scoped(&app, &full, yanker).await,
            owners: scoped(&app, &full, owners).await,
            read_only: scoped(&app, &full, read_only).await,
            full,
            app,
        };
        let first = scoped
            .app
            .publish_crate(&scoped.publish_new, "acme-core", "1.0.0")
            .await;
        assert_ok(&first);
        scoped
    }

    /// Returns the id of alice's token called `name`.
    async fn id_of(&self, name: &str) -> String {
        let (_, listed) = self.app.get_as(&self.full, "/ktra/api/v1/tokens").await;
        let tokens = listed["tokens"].as_array().unwrap();
        let token = tokens.iter().find(|token| token["name"] == name).unwrap();
        token["id"].as_str().unwrap().to_owned()
    }
}

async fn publish_new_creates_only_the_crates_its_pattern_names(backend: Backend) {
    let Scoped {
        app, publish_new, ..
    } = Scoped::start(backend).await;
    let reply = app.publish_crate(&publish_new, "acme-core", "1.1.0").await;
    let needle =
        "this token (`new-acme`) does not allow publishing new versions of existing crates";
    assert_refused(&reply, StatusCode::FORBIDDEN, needle);
    let reply = app.publish_crate(&publish_new, "other", "1.0.0").await;
    let needle = "does not cover crate `other`: its scope is publish-new on acme-*";
    assert_refused(&reply, StatusCode::FORBIDDEN, needle);
    app.assert_not_stored("other", 1).await;
}

async fn publish_update_adds_versions_never_crates(backend: Backend) {
    let Scoped { app, update, .. } = Scoped::start(backend).await;
    assert_ok(&app.publish_crate(&update, "acme-core", "1.1.0").await);
    let reply = app.publish_crate(&update, "acme-util", "1.0.0").await;
    assert_forbidden(&reply, "does not allow publishing new crates");
    assert!(app.index_lines("acme-util").await.is_none());
}

async fn read_only_reads_and_does_nothing_else(backend: Backend) {
    let Scoped { app, read_only, .. } = Scoped::start(backend).await;
    let reply = app.publish_crate(&read_only, "acme-core", "2.0.0").await;
    assert_forbidden(&reply, "its scope is read-only");
    let reply = app.yank(&read_only, "acme-core", "1.0.0").await;
    assert_forbidden(&reply, "does not allow yanking");
    let (status, body) = app.get_as(&read_only, "/api/v1/crates?q=acme").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["meta"]["total"], 1);
}

async fn yank_and_change_owners_admit_only_their_scope(backend: Backend) {
    let Scoped {
        app,
        update,
        yanker,
        owners,
        ..
    } = Scoped::start(backend).await;
    assert_ok(&app.publish_crate(&update, "acme-core", "1.1.0").await);
    let reply = app.yank(&update, "acme-core", "1.0.0").await;
    assert_forbidden(&reply, "does not allow yanking");
    assert_ok(&app.yank(&yanker, "acme-core", "1.0.0").await);
    let reply = app.add_owner(&yanker, "acme-core", "bob").await;
    assert_forbidden(&reply, "does not allow changing owners");
    let reply = app.add_owner(&owners, "acme-core", "bob").await;
    assert_ok(&reply);
    // Nothing a refusal touched changed: two versions, the first yanked.
    let lines = app.index_lines("acme-core").await.unwrap();
    let yanked: Vec<bool> = lines
        .iter()
        .map(|line| line["yanked"].as_bool().unwrap())
        .collect();
    assert_eq!(yanked, [true, false]);
}

async fn tokens_are_listed_oldest_first_without_secrets(backend: Backend) {
    let scoped = Scoped::start(backend).await;
    let (status, listed) = scoped
        .app
        .get_as(&scoped.update, "/ktra/api/v1/tokens")
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
    for secret in [&scoped.full, &scoped.update, &scoped.yanker] {
        assert!(!listed.to_string().contains(&secret[21..]), "{listed}");
    }
    let ci = tokens.iter().find(|token| token["name"] == "ci").unwrap();
    assert_eq!(ci["endpoint_scopes"], json!(["publish-update"]));
    assert_eq!(ci["crate_scopes"], json!(["acme-*"]));
}

async fn a_scoped_token_mints_and_revokes_no_other_token_but_revokes_itself(backend: Backend) {
    let scoped = Scoped::start(backend).await;
    let app = &scoped.app;
    let reply = app
        .create_token(&scoped.update, &json!({"name": "wider"}))
        .await;
    let needle = "creating tokens needs a token without scopes";
    assert_refused(&reply, StatusCode::FORBIDDEN, needle);
    let yanker_path = format!("/ktra/api/v1/tokens/{}", scoped.id_of("yanker").await);
    let reply = app.delete_as(&scoped.update, &yanker_path).await;
    let needle = "revoking other tokens needs a token without scopes";
    assert_refused(&reply, StatusCode::FORBIDDEN, needle);
    let own_path = format!("/ktra/api/v1/tokens/{}", scoped.id_of("ci").await);
    assert_ok(&app.delete_as(&scoped.update, &own_path).await);
    let reply = app.yank(&scoped.update, "acme-core", "1.0.0").await;
    assert_forbidden(&reply, "invalid or revoked");
}

async fn the_unrestricted_token_revokes_others_and_an_unknown_id_is_404(backend: Backend) {
    let scoped = Scoped::start(backend).await;
    let yanker_path = format!("/ktra/api/v1/tokens/{}", scoped.id_of("yanker").await);
    assert_ok(&scoped.app.delete_as(&scoped.full, &yanker_path).await);
    let reply = scoped.app.delete_as(&scoped.full, &yanker_path).await;
    assert_refused(&reply, StatusCode::NOT_FOUND, "no token");
}

crate::on_every_backend!(
    publish_new_creates_only_the_crates_its_pattern_names,
    publish_update_adds_versions_never_crates,
    read_only_reads_and_does_nothing_else,
    yank_and_change_owners_admit_only_their_scope,
    tokens_are_listed_oldest_first_without_secrets,
    a_scoped_token_mints_and_revokes_no_other_token_but_revokes_itself,
    the_unrestricted_token_revokes_others_and_an_unknown_id_is_404,
);
