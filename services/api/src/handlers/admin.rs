//! Administrators' API under `/ktra/api/v1/admin/`: disable and enable users, list and revoke
//! their tokens, issue invitations, read the audit log.
//!
//! Every route needs a token without scopes of a user named in `KTRA_AUTH_ADMINS`.
//! Administrators change any crate's owners through cargo's own owner API (`cargo owner`), which
//! never removes a crate's last owner.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use chrono::{DateTime, TimeDelta, Utc};
use ktra_store::StoreError;
use ktra_store::model::{Invitation, User};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::audit;
use crate::auth::{Admin, Caller};
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery, json_body};
use crate::handlers::crates::{Ok as Done, OkMessage};
use crate::handlers::tokens::{self, TokenList, TokenView};
use crate::limits::ClientIp;
use crate::state::AppState;

/// What precedes an invitation code's 32 random bytes, in hex.
pub(crate) const INVITATION_PREFIX: &str = "ktra_inv_";

/// How long an invitation lasts unless the request says otherwise, in hours.
const DEFAULT_INVITATION_HOURS: u32 = 72;

/// The longest an invitation may last, in hours (30 days).
const MAX_INVITATION_HOURS: u32 = 720;

/// The most audit events one page returns.
const MAX_AUDIT_PAGE: usize = 1000;

async fn user_named(state: &AppState, name: &str) -> Result<User, ApiError> {
    Ok(state
        .store
        .user_credentials(name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("could not find user `{name}`")))?
        .user)
}

async fn set_disabled(
    state: &AppState,
    caller: &Caller,
    client: &str,
    name: &str,
    disabled: bool,
) -> Result<Json<OkMessage>, ApiError> {
    if disabled && caller.user.name.eq_ignore_ascii_case(name) {
        return Err(ApiError::bad_request(
            "administrators cannot disable themselves",
        ));
    }
    let action = if disabled {
        "user.disable"
    } else {
        "user.enable"
    };
    let event = audit::event(action, Some(&caller.user.name), name, client, None);
    let user = match state.store.set_user_disabled(name, disabled, event).await {
        Err(StoreError::UserNotFound(_)) => {
            return Err(ApiError::not_found(format!("could not find user `{name}`")));
        }
        other => other?,
    };
    let msg = if disabled {
        format!(
            "user `{}` is disabled and every token of theirs revoked",
            user.name
        )
    } else {
        format!(
            "user `{}` is enabled; they log in again for a token",
            user.name
        )
    };
    Ok(Json(OkMessage::new(msg)))
}

/// `POST /ktra/api/v1/admin/users/{name}/disable`.
#[tracing::instrument(skip_all, fields(user = %caller.user.name, target = %name))]
pub async fn disable_user(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    Admin(caller): Admin,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<OkMessage>, ApiError> {
    set_disabled(&state, &caller, &client, &name, true).await
}

/// `POST /ktra/api/v1/admin/users/{name}/enable`.
#[tracing::instrument(skip_all, fields(user = %caller.user.name, target = %name))]
pub async fn enable_user(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    Admin(caller): Admin,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<OkMessage>, ApiError> {
    set_disabled(&state, &caller, &client, &name, false).await
}

/// `GET /ktra/api/v1/admin/users/{name}/tokens`.
#[tracing::instrument(skip_all, fields(user = %caller.user.name, target = %name))]
pub async fn user_tokens(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<TokenList>, ApiError> {
    let user = user_named(&state, &name).await?;
    let listed = state.store.list_tokens(user.id).await?;
    Ok(Json(TokenList::new(
        listed.into_iter().map(TokenView::from).collect(),
    )))
}

/// `DELETE /ktra/api/v1/admin/users/{name}/tokens/{id}`.
#[tracing::instrument(skip_all, fields(user = %caller.user.name, target = %name))]
pub async fn revoke_user_token(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    Admin(caller): Admin,
    ApiPath((name, id)): ApiPath<(String, String)>,
) -> Result<Json<Done>, ApiError> {
    let user = user_named(&state, &name).await?;
    let id = tokens::token_id(&id)?;
    tokens::revoke_and_record(&state, &caller, &client, user.id, id).await?;
    Ok(Json(Done::new()))
}

/// `{"expires_in_hours": 72}`, all optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvitationRequest {
    expires_in_hours: Option<u32>,
}

/// An invitation code, shown once.
#[derive(Debug, Serialize)]
pub struct InvitationResponse {
    invitation: String,
    expires_at: DateTime<Utc>,
}

/// Names an invitation in the audit log without revealing its code: the start of its hash.
pub(crate) fn invitation_label(code_hash: &[u8; 32]) -> String {
    format!("invitation {}", hex::encode(&code_hash[..4]))
}

/// Returns the stored form of an invitation code, or `None` when it is not of Ktra's form.
pub(crate) fn invitation_hash(code: &str) -> Option<[u8; 32]> {
    let hex_part = code.strip_prefix(INVITATION_PREFIX)?;
    let mut raw = [0_u8; 32];
    hex::decode_to_slice(hex_part, &mut raw).ok()?;
    Some(Sha256::digest(raw).into())
}

/// `POST /ktra/api/v1/admin/invitations`: a single-use code with which someone registers while
/// `KTRA_AUTH_REGISTRATION=invitation`.
#[tracing::instrument(skip_all, fields(user = %caller.user.name))]
pub async fn create_invitation(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    Admin(caller): Admin,
    body: Body,
) -> Result<Json<InvitationResponse>, ApiError> {
    let request: InvitationRequest = json_body(body, 4096).await?;
    let hours = request.expires_in_hours.unwrap_or(DEFAULT_INVITATION_HOURS);
    if hours == 0 || hours > MAX_INVITATION_HOURS {
        return Err(ApiError::bad_request(format!(
            "expires_in_hours must be between 1 and {MAX_INVITATION_HOURS}"
        )));
    }
    let mut raw = [0_u8; 32];
    rand::fill(&mut raw);
    let expires_at = Utc::now() + TimeDelta::hours(i64::from(hours));
    let code_hash: [u8; 32] = Sha256::digest(raw).into();
    state
        .store
        .create_invitation(
            Invitation {
                code_hash,
                created_by: caller.user.id,
                expires_at,
            },
            audit::event(
                "invitation.create",
                Some(&caller.user.name),
                invitation_label(&code_hash),
                &client,
                Some(format!("expires {}", expires_at.to_rfc3339())),
            ),
        )
        .await?;
    Ok(Json(InvitationResponse {
        invitation: format!("{INVITATION_PREFIX}{}", hex::encode(raw)),
        expires_at,
    }))
}

/// `?before=CURSOR&limit=N&action=crate.publish&actor=alice`, all optional.
#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    before: Option<String>,
    limit: Option<usize>,
    action: Option<String>,
    actor: Option<String>,
}

/// One audit event.
#[derive(Debug, Serialize)]
pub struct AuditEntry {
    cursor: String,
    at: DateTime<Utc>,
    actor: Option<String>,
    action: String,
    target: String,
    client: Option<String>,
    detail: Option<String>,
}

/// A page of events, newest first; `next` pages further back.
#[derive(Debug, Serialize)]
pub struct AuditPage {
    events: Vec<AuditEntry>,
    next: Option<String>,
}

/// `GET /ktra/api/v1/admin/audit`: events newest first. `action` and `actor` filter the page
/// that `limit` reads, so a filtered page may hold fewer events; follow `next` for more.
#[tracing::instrument(skip_all, fields(user = %caller.user.name))]
pub async fn audit_log(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let limit = query.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_AUDIT_PAGE {
        return Err(ApiError::bad_request(format!(
            "limit must be between 1 and {MAX_AUDIT_PAGE}"
        )));
    }
    let records = state
        .store
        .audit_events(query.before.as_deref(), limit)
        .await?;
    let next = (records.len() == limit)
        .then(|| records.last().map(|record| record.cursor.clone()))
        .flatten();
    let events = records
        .into_iter()
        .filter(|record| {
            query
                .action
                .as_deref()
                .is_none_or(|action| record.event.action == action)
                && query.actor.as_deref().is_none_or(|actor| {
                    record
                        .event
                        .actor
                        .as_deref()
                        .is_some_and(|who| who.eq_ignore_ascii_case(actor))
                })
        })
        .map(|record| AuditEntry {
            cursor: record.cursor,
            at: record.event.at,
            actor: record.event.actor,
            action: record.event.action,
            target: record.event.target,
            client: record.event.client,
            detail: record.event.detail,
        })
        .collect();
    Ok(Json(AuditPage { events, next }))
}
