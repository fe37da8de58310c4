//! Administrators' pages: users (disable, enable), invitations, and the audit log with filters
//! and paging. Every other signed-in person gets a 403.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::session::{Form, SignedIn, Viewer};
use super::{Chrome, PageError, day, render};
use crate::handlers::admin::{audit_page, new_invitation, set_disabled};
use crate::limits::ClientIp;
use crate::state::AppState;

/// Events on one page of the audit log.
const AUDIT_PAGE: usize = 50;

fn require_admin(state: &AppState, who: &SignedIn) -> Result<(), PageError> {
    if who.admin {
        Ok(())
    } else {
        Err(PageError::forbidden(
            state,
            "Only administrators see this page (KTRA_AUTH_ADMINS).",
        ))
    }
}

struct ListedUser {
    name: String,
    disabled: bool,
    since: String,
}

#[derive(Template)]
#[template(path = "admin_users.html")]
struct UsersPage {
    chrome: Chrome,
    users: Vec<ListedUser>,
    notice: Option<String>,
}

/// `?notice=...`: what the last action did.
#[derive(Debug, Deserialize)]
pub struct Notice {
    notice: Option<String>,
}

/// `GET /admin/users`.
pub async fn users(
    State(state): State<AppState>,
    viewer: Viewer,
    who: SignedIn,
    Query(notice): Query<Notice>,
) -> Result<Response, PageError> {
    require_admin(&state, &who)?;
    let listed = state
        .store
        .list_users()
        .await
        .map_err(|error| PageError::store(&state, &error))?;
    Ok(render(&UsersPage {
        chrome: Chrome::new(&state, &viewer, ""),
        users: listed
            .into_iter()
            .map(|summary| ListedUser {
                name: summary.user.name,
                disabled: summary.disabled,
                since: day(summary.created_at),
            })
            .collect(),
        notice: notice.notice,
    }))
}

/// `POST /admin/users/{name}/disable` and `/enable`: the path's last segment says which.
pub async fn set_user_state(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    Path((name, action)): Path<(String, String)>,
    form: Form,
) -> Result<Response, PageError> {
    require_admin(&state, &form.by)?;
    let disabled = match action.as_str() {
        "disable" => true,
        "enable" => false,
        _ => return Err(PageError::not_found(&state, "No such action.")),
    };
    let message = set_disabled(&state, &form.by.user, &client, &name, disabled)
        .await
        .map_err(|error| PageError::from_api(&state, &error))?;
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("notice", &message)
        .finish();
    Ok(Redirect::to(&format!("/admin/users?{query}")).into_response())
}

#[derive(Template)]
#[template(path = "secret.html")]
struct InvitationPage {
    chrome: Chrome,
    title: String,
    message: String,
    secret: String,
    instructions: Option<String>,
}

/// `POST /admin/invitations`: a single-use code, shown once.
pub async fn create_invitation(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    viewer: Viewer,
    form: Form,
) -> Result<Response, PageError> {
    require_admin(&state, &form.by)?;
    let hours = match form.get("hours").map(str::parse::<u32>) {
        None => None,
        Some(Ok(hours)) => Some(hours),
        Some(Err(_)) => {
            return Err(PageError::bad_request(
                &state,
                "The invitation's validity must be a number of hours.",
            ));
        }
    };
    let (code, expires_at) = new_invitation(&state, &form.by.user, &client, hours)
        .await
        .map_err(|error| PageError::from_api(&state, &error))?;
    let base = state.config.public_base();
    Ok(render(&InvitationPage {
        chrome: Chrome::new(&state, &viewer, ""),
        title: "Invitation created".to_owned(),
        message: format!(
            "Send this code to the person to invite; it registers one user once, until {}.",
            expires_at.format("%Y-%m-%d %H:%M UTC")
        ),
        secret: code,
        instructions: Some(format!(
            "curl -X POST -H 'Content-Type: application/json' \\\n  -d '{{\"password\":\"...\",\"invitation\":\"THE CODE\"}}' {base}/ktra/api/v1/new_user/NAME"
        )),
    }))
}

struct ListedEvent {
    at: String,
    actor: String,
    action: String,
    target: String,
    client: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "admin_audit.html")]
struct AuditPage {
    chrome: Chrome,
    events: Vec<ListedEvent>,
    action: String,
    actor: String,
    next: Option<String>,
}

/// `?action=...&actor=...&before=CURSOR`.
#[derive(Debug, Deserialize)]
pub struct AuditFilter {
    action: Option<String>,
    actor: Option<String>,
    before: Option<String>,
}

/// `GET /admin/audit`.
pub async fn audit(
    State(state): State<AppState>,
    viewer: Viewer,
    who: SignedIn,
    filter: Result<Query<AuditFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageError> {
    require_admin(&state, &who)?;
    let Ok(Query(filter)) = filter else {
        return Err(PageError::bad_request(&state, "The filter is malformed."));
    };
    let nonempty = |value: &Option<String>| {
        value
            .as_deref()
            .map(str::trim)
            .filter(|value| !value.is_empty())
            .map(str::to_owned)
    };
    let (action, actor) = (nonempty(&filter.action), nonempty(&filter.actor));
    let (records, next) = audit_page(
        &state,
        nonempty(&filter.before).as_deref(),
        AUDIT_PAGE,
        action.as_deref(),
        actor.as_deref(),
    )
    .await
    .map_err(|error| PageError::from_api(&state, &error))?;
    let next = next.map(|cursor| {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if let Some(action) = &action {
            query.append_pair("action", action);
        }
        if let Some(actor) = &actor {
            query.append_pair("actor", actor);
        }
        format!("?{}", query.append_pair("before", &cursor).finish())
    });
    Ok(render(&AuditPage {
        chrome: Chrome::new(&state, &viewer, ""),
        events: records
            .into_iter()
            .map(|record| ListedEvent {
                at: record.event.at.format("%Y-%m-%d %H:%M:%S").to_string(),
                actor: record.event.actor.unwrap_or_default(),
                action: record.event.action,
                target: record.event.target,
                client: record.event.client.unwrap_or_default(),
                detail: record.event.detail.unwrap_or_default(),
            })
            .collect(),
        action: action.unwrap_or_default(),
        actor: actor.unwrap_or_default(),
        next,
    }))
}
