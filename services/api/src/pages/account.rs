//! A signed-in person's own pages: their tokens (create one, shown once; revoke) and their
//! password. Tokens follow the same rules as the user API's.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use ktra_store::model::EndpointScope;
use secrecy::SecretString;

use super::session::{Form, SignedIn, Viewer};
use super::{Chrome, PageError, day, render};
use crate::auth::describe_scope;
use crate::handlers::tokens::{self, TokenRequest};
use crate::handlers::users::{
    check_new_password, count_login_attempt, replace_password, verify_login,
};
use crate::limits::ClientIp;
use crate::state::AppState;

/// A token as the tokens page lists it.
struct ListedToken {
    id: String,
    name: String,
    created: String,
    expires: Option<String>,
    scope: String,
}

/// The endpoint scopes a token may be limited to, as the form offers them.
const ENDPOINTS: [(EndpointScope, &str); 5] = [
    (EndpointScope::PublishNew, "publish new crates"),
    (EndpointScope::PublishUpdate, "publish new versions"),
    (EndpointScope::Yank, "yank and unyank"),
    (EndpointScope::ChangeOwners, "change owners"),
    (EndpointScope::ReadOnly, "read only"),
];

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    chrome: Chrome,
    tokens: Vec<ListedToken>,
    endpoints: Vec<(&'static str, &'static str)>,
    problem: Option<String>,
}

#[derive(Template)]
#[template(path = "secret.html")]
struct SecretPage {
    chrome: Chrome,
    title: String,
    message: String,
    secret: String,
    instructions: Option<String>,
}

async fn tokens_page(
    state: &AppState,
    viewer: &Viewer,
    who: &SignedIn,
    problem: Option<String>,
) -> Result<Response, PageError> {
    let listed = state
        .store
        .list_tokens(who.user.id)
        .await
        .map_err(|error| PageError::store(state, &error))?;
    let page = TokensPage {
        chrome: Chrome::new(state, viewer, ""),
        tokens: listed
            .into_iter()
            .map(|token| ListedToken {
                id: token.id.to_hex(),
                scope: describe_scope(&token.details),
                name: token.details.name,
                created: day(token.details.created_at),
                expires: token.details.expires_at.map(day),
            })
            .collect(),
        endpoints: ENDPOINTS
            .iter()
            .map(|(scope, label)| (scope.as_str(), *label))
            .collect(),
        problem,
    };
    let status = if page.problem.is_some() {
        http::StatusCode::BAD_REQUEST
    } else {
        http::StatusCode::OK
    };
    let mut response = render(&page);
    *response.status_mut() = status;
    Ok(response)
}

/// `GET /account/tokens`.
pub async fn tokens(
    State(state): State<AppState>,
    viewer: Viewer,
    who: SignedIn,
) -> Result<Response, PageError> {
    tokens_page(&state, &viewer, &who, None).await
}

/// `POST /account/tokens`: a new token, shown once.
pub async fn create_token(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    viewer: Viewer,
    form: Form,
) -> Result<Response, PageError> {
    let days = match form.get("expires_in_days").map(str::parse::<u32>) {
        None => None,
        Some(Ok(days)) => Some(days),
        Some(Err(_)) => {
            let problem = "The expiry must be a number of days.".to_owned();
            return tokens_page(&state, &viewer, &form.by, Some(problem)).await;
        }
    };
    let crates: Vec<String> = form
        .get("crates")
        .unwrap_or_default()
        .split([',', ' '])
        .filter(|pattern| !pattern.is_empty())
        .map(str::to_owned)
        .collect();
    let details = TokenRequest::from_form(
        form.get("name").unwrap_or_default(),
        days,
        &form.all("endpoint"),
        crates,
    )
    .and_then(|request| request.into_details(Utc::now()));
    let details = match details {
        Ok(details) => details,
        Err(error) => {
            return tokens_page(&state, &viewer, &form.by, Some(error.detail().to_owned())).await;
        }
    };
    let user = &form.by.user;
    let token_name = details.name.clone();
    let (token, _) = tokens::issue(&state, user, &user.name, &client, details)
        .await
        .map_err(|error| PageError::from_api(&state, &error))?;
    let name = &state.config.ui.registry_name;
    let page = SecretPage {
        chrome: Chrome::new(&state, &viewer, ""),
        title: "Token created".to_owned(),
        message: format!(
            "The token “{}” is below. It is shown this once: copy it now.",
            token_name
        ),
        secret: token,
        instructions: Some(format!(
            "cargo login --registry {name}     # and paste it, or, in CI:\nexport {}=...",
            state.config.ui.token_variable()
        )),
    };
    Ok(render(&page))
}

/// `POST /account/tokens/{id}/revoke`.
pub async fn revoke_token(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    Path(id): Path<String>,
    form: Form,
) -> Result<Response, PageError> {
    let user = &form.by.user;
    let id = tokens::token_id(&id).map_err(|error| PageError::from_api(&state, &error))?;
    tokens::revoke_and_record(&state, user, &client, user.id, id)
        .await
        .map_err(|error| PageError::from_api(&state, &error))?;
    Ok(Redirect::to("/account/tokens").into_response())
}

#[derive(Template)]
#[template(path = "password.html")]
struct PasswordPage {
    chrome: Chrome,
    problem: Option<String>,
}

/// `GET /account/password`.
pub async fn password(State(state): State<AppState>, viewer: Viewer, _who: SignedIn) -> Response {
    render(&PasswordPage {
        chrome: Chrome::new(&state, &viewer, ""),
        problem: None,
    })
}

/// `POST /account/password`: as the user API's change, every earlier token is revoked and a
/// new one is shown once.
pub async fn change_password(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    viewer: Viewer,
    form: Form,
) -> Result<Response, PageError> {
    let refuse = |problem: String| {
        let mut response = render(&PasswordPage {
            chrome: Chrome::new(&state, &viewer, ""),
            problem: Some(problem),
        });
        *response.status_mut() = http::StatusCode::BAD_REQUEST;
        Ok(response)
    };
    let user = form.by.user.clone();
    // Passwords exactly as typed: a space at either end is part of one.
    let current = SecretString::from(form.raw("current").unwrap_or_default().to_owned());
    let new = SecretString::from(form.raw("new").unwrap_or_default().to_owned());
    if form.raw("new") != form.raw("again") {
        return refuse("The new password and its repetition differ.".to_owned());
    }
    // Proving the current password counts as a sign-in attempt: the same limits.
    if let Err(error) = count_login_attempt(&state, &client, &user.name).await {
        return refuse(error.detail().to_owned());
    }
    let credentials = match verify_login(&state, &client, &user.name, &current).await {
        Ok(credentials) => credentials,
        Err(_) => return refuse("The current password is not right.".to_owned()),
    };
    if let Err(error) = check_new_password(&state, &new) {
        return refuse(error.detail().to_owned());
    }
    // Every session ends with the old password (one may be someone else's); this one goes
    // on as a new session.
    let token = replace_password(&state, &client, &user, credentials.password_hash, &new)
        .await
        .map_err(|error| PageError::from_api(&state, &error))?;
    let cookie = super::session::start(&state, &user)
        .await
        .map_err(|error| PageError::store(&state, &error))?;
    let mut response = render(&SecretPage {
        chrome: Chrome::new(&state, &viewer, ""),
        title: "Password changed".to_owned(),
        message: "Your password is changed and every earlier token revoked. This new token replaces them; it is shown this once.".to_owned(),
        secret: token,
        instructions: None,
    });
    response
        .headers_mut()
        .insert(http::header::SET_COOKIE, cookie);
    Ok(response)
}
