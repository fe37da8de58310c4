//! Signing in and out of the pages.

use askama::Template;
use axum::extract::{Query, Request, State};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use http::header::SET_COOKIE;
use secrecy::SecretString;
use serde::Deserialize;

use super::session::{
    self, Form, SESSION_COOKIE, SIGN_IN_COOKIE, Viewer, cookie, form_fields, random_secret,
    same_token, set_cookie,
};
use super::{Chrome, PageError, render};
use crate::handlers::users::{count_login_attempt, rehash_if_outdated, verify_login};
use crate::limits::ClientIp;
use crate::state::AppState;

/// How long the sign-in form's token lasts, in seconds.
const SIGN_IN_FORM_SECS: i64 = 3600;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    chrome: Chrome,
    csrf: String,
    next: String,
    problem: Option<String>,
    name: String,
}

/// `?next=/where/to/go`.
#[derive(Debug, Deserialize)]
pub struct Next {
    next: Option<String>,
}

/// Where to go after signing in: a path on this registry (never another site: no `//`, no
/// backslash, and no blank or control character, which browsers drop before resolving), else
/// the tokens page.
fn destination(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && path
                    .bytes()
                    .all(|byte| byte > b' ' && byte != 0x7f && byte != b'\\') =>
        {
            path.to_owned()
        }
        _ => "/account/tokens".to_owned(),
    }
}

fn login_page(
    state: &AppState,
    viewer: &Viewer,
    next: &str,
    name: &str,
    problem: Option<String>,
    status: http::StatusCode,
) -> Response {
    let csrf = random_secret();
    let page = LoginPage {
        chrome: Chrome::new(state, viewer, ""),
        csrf: csrf.clone(),
        next: next.to_owned(),
        problem,
        name: name.to_owned(),
    };
    (
        status,
        [(
            SET_COOKIE,
            set_cookie(state, SIGN_IN_COOKIE, &csrf, SIGN_IN_FORM_SECS),
        )],
        render(&page),
    )
        .into_response()
}

/// What a page says of a refusal: its detail, or for a server error a fixed sentence (the
/// cause is logged, never shown).
fn shown_detail(error: &crate::error::ApiError) -> String {
    if error.code().http_status().is_server_error() {
        tracing::error!(detail = error.detail(), "signing in failed");
        "The registry cannot check passwords right now; try again in a moment.".to_owned()
    } else {
        error.detail().to_owned()
    }
}

/// `GET /login?next=...`.
pub async fn form(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(next): Query<Next>,
) -> Response {
    let next = destination(next.next.as_deref());
    login_page(&state, &viewer, &next, "", None, http::StatusCode::OK)
}

/// `POST /login`: checks the form's token against its cookie and the password as the user
/// API does (the same limits, the same audit), then starts a session.
pub async fn sign_in(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    viewer: Viewer,
    request: Request,
) -> Result<Response, PageError> {
    let expected = cookie(&state, request.headers(), SIGN_IN_COOKIE).map(str::to_owned);
    let fields = form_fields(request)
        .await
        .map_err(|_| PageError::bad_request(&state, "The form is too large."))?;
    let field = |name: &str| {
        fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    if !expected.is_some_and(|expected| same_token(field("csrf"), &expected)) {
        return Err(PageError::forbidden(
            &state,
            "The sign-in form did not come from this registry's page, or it is too old. Reload it and try again.",
        ));
    }
    let next = destination(field("next"));
    let name = field("name").unwrap_or_default().trim().to_owned();
    let password = SecretString::from(field("password").unwrap_or_default().to_owned());
    let refused = |message: String, status| {
        Ok(login_page(
            &state,
            &viewer,
            &next,
            &name,
            Some(message),
            status,
        ))
    };
    if let Err(error) = count_login_attempt(&state, &client, &name).await {
        return refused(shown_detail(&error), error.code().http_status());
    }
    let credentials = match verify_login(&state, &client, &name, &password).await {
        Ok(credentials) => credentials,
        Err(error) => return refused(shown_detail(&error), error.code().http_status()),
    };
    rehash_if_outdated(&state, &credentials, &password).await;
    let cookie = session::start(&state, &credentials.user)
        .await
        .map_err(|error| PageError::store(&state, &error))?;
    crate::audit::record(
        &state,
        crate::audit::event(
            "session.create",
            Some(&credentials.user.name),
            &credentials.user.name,
            &client,
            None,
        ),
    )
    .await;
    Ok((
        AppendHeaders([
            (SET_COOKIE, cookie),
            (SET_COOKIE, set_cookie(&state, SIGN_IN_COOKIE, "", 0)),
        ]),
        Redirect::to(&next),
    )
        .into_response())
}

/// `POST /logout`: ends the session.
pub async fn sign_out(State(state): State<AppState>, form: Form) -> Result<Response, PageError> {
    state
        .store
        .end_session(form.by.id_hash)
        .await
        .map_err(|error| PageError::store(&state, &error))?;
    Ok((
        [(SET_COOKIE, set_cookie(&state, SESSION_COOKIE, "", 0))],
        Redirect::to("/"),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::destination;

    #[test]
    fn sign_in_returns_only_to_this_registry() {
        assert_eq!(destination(Some("/crates/x?y=1")), "/crates/x?y=1");
        for elsewhere in [
            None,
            Some("https://evil.example/"),
            Some("//evil.example/"),
            Some("/\\evil.example"),
            Some("/\t/evil.example/x"),
            Some("/\n/evil.example"),
            Some("/ /evil.example"),
            Some("crates"),
        ] {
            assert_eq!(destination(elsewhere), "/account/tokens", "{elsewhere:?}");
        }
    }
}
