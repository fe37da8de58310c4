//! Yank, unyank and owners under `/api/v1/crates`.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use http::Method;
use ktra_core::name::CrateId;
use ktra_core::version::VersionId;
use serde::{Deserialize, Serialize};

use ktra_store::model::{self, EndpointScope, OwnerAction, YankChange};

use crate::audit;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{ApiPath, json_body};
use crate::limits::ClientIp;
use crate::state::AppState;

/// The largest owners request body accepted.
const MAX_OWNERS_BODY: usize = 64 * 1024;

/// `{"ok": true}`, cargo's success body for yank and unyank, and Ktra's for other changes.
#[derive(Debug, Serialize)]
pub struct Ok {
    ok: bool,
}

impl Ok {
    pub(crate) fn new() -> Self {
        Self { ok: true }
    }
}

/// `{"ok": true, "msg": "..."}`, cargo's success body for owner changes, and Ktra's for changes
/// worth a sentence.
#[derive(Debug, Serialize)]
pub struct OkMessage {
    ok: bool,
    msg: String,
}

impl OkMessage {
    pub(crate) fn new(msg: String) -> Self {
        Self { ok: true, msg }
    }
}

/// Names the crate a path names, or answers 404 for names no crate can have.
pub(crate) fn crate_from_path(name: &str) -> Result<CrateId, ApiError> {
    CrateId::new(name).map_err(|_| ApiError::not_found(format!("crate `{name}` does not exist")))
}

pub(crate) fn parse_version(name: &str, version: &str) -> Result<VersionId, ApiError> {
    VersionId::parse(version)
        .map_err(|_| ApiError::not_found(format!("crate `{name}` has no version `{version}`")))
}

async fn change_yank_flag(
    state: &AppState,
    caller: Caller,
    client: &str,
    name: &str,
    version: &str,
    yanked: bool,
) -> Result<Json<Ok>, ApiError> {
    let krate = crate_from_path(name)?;
    let version = parse_version(name, version)?;
    caller.require_scope(EndpointScope::Yank, name)?;
    let action = if yanked { "crate.yank" } else { "crate.unyank" };
    let audit = audit::event(
        action,
        Some(&caller.user.name),
        format!("{name}@{version}"),
        client,
        None,
    );
    let (file, changed) = state
        .store
        .set_yanked(YankChange {
            krate,
            version,
            yanked,
            actor: caller.user.id,
            audit,
        })
        .await?;
    if changed {
        state.index_sync.changed(&file).await;
    }
    tracing::info!(revision = file.revision, yanked, changed, "yank flag set");
    Ok(Json(Ok::new()))
}

/// `DELETE /api/v1/crates/{name}/{version}/yank` yanks, `PUT .../unyank` unyanks: each path
/// takes one method, so the method says which.
#[tracing::instrument(skip_all, fields(user = %caller.user.name, crate_name = %name, version = %version))]
pub async fn change_yanked(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    method: Method,
    caller: Caller,
    ApiPath((name, version)): ApiPath<(String, String)>,
) -> Result<Json<Ok>, ApiError> {
    let yanked = method == Method::DELETE;
    let result = change_yank_flag(&state, caller, &client, &name, &version, yanked).await;
    let status = match &result {
        Result::Ok(_) => http::StatusCode::OK,
        Err(error) => error.code().http_status(),
    };
    state
        .metrics
        .yanks
        .get_or_create(&crate::metrics::YankLabels {
            action: if yanked { "yank" } else { "unyank" }.to_owned(),
            outcome: crate::metrics::outcome(status),
        })
        .inc();
    result
}

/// One owner in cargo's owner list.
#[derive(Debug, Serialize)]
pub struct Owner {
    id: u32,
    login: String,
    name: Option<String>,
}

/// `{"users": [...]}`.
#[derive(Debug, Serialize)]
pub struct OwnerList {
    users: Vec<Owner>,
}

/// `GET /api/v1/crates/{name}/owners`.
#[tracing::instrument(skip_all, fields(crate_name = %name))]
pub async fn list_owners(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<OwnerList>, ApiError> {
    let krate = crate_from_path(&name)?;
    let owners = state
        .store
        .owners(&krate)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("crate `{name}` does not exist")))?;
    Ok(Json(OwnerList {
        users: owners
            .into_iter()
            .map(|user| Owner {
                id: user.id,
                login: user.name,
                name: None,
            })
            .collect(),
    }))
}

/// The body of owner changes: `{"users": ["login", ...]}`.
#[derive(Debug, Deserialize)]
pub struct OwnerLogins {
    users: Vec<String>,
}

/// Reads the owner logins, dropping Ktra's login prefix where present.
async fn owner_logins(state: &AppState, body: Body) -> Result<Vec<String>, ApiError> {
    let change: OwnerLogins = json_body(body, MAX_OWNERS_BODY).await?;
    if change.users.is_empty() {
        return Err(ApiError::bad_request("no users given"));
    }
    let prefix = state.config.db.login_prefix.as_str();
    Ok(change
        .users
        .into_iter()
        .map(|login| match login.strip_prefix(prefix) {
            Some(plain) if !prefix.is_empty() => plain.to_owned(),
            _ => login,
        })
        .collect())
}

/// What cargo prints after `cargo owner --add` or `--remove`: who changed, or that nobody did.
fn owners_changed_message(action: OwnerAction, changed: &[model::User], name: &str) -> String {
    let names = changed
        .iter()
        .map(|user| format!("`{}`", user.name))
        .collect::<Vec<_>>()
        .join(", ");
    match (action, changed.is_empty()) {
        (OwnerAction::Add, true) => format!("the users are already owners of crate `{name}`"),
        (OwnerAction::Add, false) => format!("{names} added as owners of crate `{name}`"),
        (OwnerAction::Remove, true) => format!("the users were not owners of crate `{name}`"),
        (OwnerAction::Remove, false) => format!("{names} removed as owners of crate `{name}`"),
    }
}

/// Adds or removes owners; the store records the change, and marks an administrator's.
async fn apply_owner_change(
    state: &AppState,
    caller: &Caller,
    client: &str,
    name: &str,
    body: Body,
    action: OwnerAction,
) -> Result<Json<OkMessage>, ApiError> {
    let krate = crate_from_path(name)?;
    caller.require_scope(EndpointScope::ChangeOwners, name)?;
    let names = owner_logins(state, body).await?;
    let audit_action = match action {
        OwnerAction::Add => "crate.owner_add",
        OwnerAction::Remove => "crate.owner_remove",
    };
    let note = caller
        .acts_as_admin()
        .then(|| "(as administrator)".to_owned());
    let changed = state
        .store
        .change_owners(model::OwnerChange {
            krate,
            action,
            actor: caller.owner_actor(),
            names,
            audit: audit::event(audit_action, Some(&caller.user.name), name, client, note),
        })
        .await?;
    tracing::info!(changed = changed.len(), ?action, "owners changed");
    Ok(Json(OkMessage::new(owners_changed_message(
        action, &changed, name,
    ))))
}

/// `PUT /api/v1/crates/{name}/owners` adds owners, `DELETE` removes them.
#[tracing::instrument(skip_all, fields(user = %caller.user.name, crate_name = %name))]
pub async fn change_owners(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    method: Method,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
    body: Body,
) -> Result<Json<OkMessage>, ApiError> {
    let action = if method == Method::DELETE {
        OwnerAction::Remove
    } else {
        OwnerAction::Add
    };
    apply_owner_change(&state, &caller, &client, &name, body, action).await
}
