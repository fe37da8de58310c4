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
use ktra_store::model::{AuditRecord, Invitation, User};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::audit;
use crate::auth::Admin;
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

/// Disables or enables user `name` on behalf of the administrator `actor`; returns what
/// happened, in a sentence.
pub(crate) async fn set_disabled(
    state: &AppState,
    actor: &User,
    client: &str,
    name: &str,
    disabled: bool,
) -> Result<String, ApiError> {
    if disabled && actor.name.eq_ignore_ascii_case(name) {
        return Err(ApiError::bad_request(
            "administrators cannot disable themselves",
        ));
    }
    let action = if disabled {
        "user.disable"
    } else {
        "user.enable"
    };
    let event = audit::event(action, Some(&actor.name), name, client, None);
    let user = match state.store.set_user_disabled(name, disabled, event).await {
        Err(StoreError::UserNotFound(_)) => {
            return Err(ApiError::not_found(format!("could not find user `{name}`")));
        }
        other => other?,
    };
    if disabled {
        crate::auth::end_sessions(state, &user).await;
    }
    Ok(if disabled {
        format!(
            "user `{}` is disabled and every token of theirs revoked",
            user.name
        )
    } else {
        format!(
            "user `{}` is enabled; they log in again for a token",
            user.name
        )
    })
}

/// `POST /ktra/api/v1/admin/users/{name}/disable`.
#[tracing::instrument(skip_all, fields(user = %caller.user.name, target = %name))]
pub async fn disable_user(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    Admin(caller): Admin,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<OkMessage>, ApiError> {
    let message = set_disabled(&state, &caller.user, &client, &name, true).await?;
    Ok(Json(OkMessage::new(message)))
}

/// `POST /ktra/api/v1/admin/users/{name}/enable`.
#[tracing::instrument(skip_all, fields(user = %caller.user.name, target = %name))]
pub async fn enable_user(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    Admin(caller): Admin,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<OkMessage>, ApiError> {
    let message = set_disabled(&state, &caller.user, &client, &name, false).await?;
    Ok(Json(OkMessage::new(message)))
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
    tokens::revoke_and_record(&state, &caller.user, &client, user.id, id).await?;
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
    let (invitation, expires_at) =
        new_invitation(&state, &caller.user, &client, request.expires_in_hours).await?;
    Ok(Json(InvitationResponse {
        invitation,
        expires_at,
    }))
}

/// Creates an invitation valid `hours` (72 when `None`) on behalf of the administrator
/// `actor`; returns its code, shown once, and its end.
pub(crate) async fn new_invitation(
    state: &AppState,
    actor: &User,
    client: &str,
    hours: Option<u32>,
) -> Result<(String, DateTime<Utc>), ApiError> {
    let hours = hours.unwrap_or(DEFAULT_INVITATION_HOURS);
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
                created_by: actor.id,
                expires_at,
            },
            audit::event(
                "invitation.create",
                Some(&actor.name),
                invitation_label(&code_hash),
                client,
                Some(format!("expires {}", expires_at.to_rfc3339())),
            ),
        )
        .await?;
    Ok((
        format!("{INVITATION_PREFIX}{}", hex::encode(raw)),
        expires_at,
    ))
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

/// Reads `limit` events older than `before` (or the newest), newest first, and keeps those
/// of `action` by `actor` (either may be unset); returns them and the cursor of the next
/// page, when there may be one.
///
/// # Errors
///
/// 400 when `limit` is not between 1 and 1000; the store's failure.
pub(crate) async fn audit_page(
    state: &AppState,
    before: Option<&str>,
    limit: usize,
    action: Option<&str>,
    actor: Option<&str>,
) -> Result<(Vec<AuditRecord>, Option<String>), ApiError> {
    if limit == 0 || limit > MAX_AUDIT_PAGE {
        return Err(ApiError::bad_request(format!(
            "limit must be between 1 and {MAX_AUDIT_PAGE}"
        )));
    }
    let records = state.store.audit_events(before, limit).await?;
    let next = (records.len() == limit)
        .then(|| records.last().map(|record| record.cursor.clone()))
        .flatten();
    let kept = records
        .into_iter()
        .filter(|record| {
            action.is_none_or(|action| record.event.action == action)
                && actor.is_none_or(|actor| {
                    record
                        .event
                        .actor
                        .as_deref()
                        .is_some_and(|who| who.eq_ignore_ascii_case(actor))
                })
        })
        .collect();
    Ok((kept, next))
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
    let (records, next) = audit_page(
        &state,
        query.before.as_deref(),
        limit,
        query.action.as_deref(),
        query.actor.as_deref(),
    )
    .await?;
    let events = records
        .into_iter()
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
