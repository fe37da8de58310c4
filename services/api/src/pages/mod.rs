//! The pages people browse, rendered on the server (askama templates in `templates/`, one
//! small stylesheet in `static/`): no JavaScript, no external fonts or scripts, light and dark,
//! usable on a phone. `KTRA_UI_ENABLED=false` turns them off.
//!
//! - [`home`]: the home page (counts, new and updated crates, how to use the registry) and
//!   search results.
//! - [`crate_page`]: a crate at its default version or at a chosen one.
//! - [`user`]: the crates a user owns.
//! - [`session`]: who is looking (the session cookie), the private registry's gate, and the
//!   token every form carries; [`login`]: signing in and out.
//! - [`account`]: one's tokens and password; [`admin`]: users, invitations, the audit log.

pub mod account;
pub mod admin;
pub mod crate_page;
pub mod home;
pub mod login;
pub mod session;
pub mod user;

use askama::Template;
use axum::Router;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use http::StatusCode;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use ktra_store::StoreError;

use crate::state::AppState;

/// The stylesheet, served at `/static/ktra.css`.
const STYLESHEET: &str = include_str!("../../static/ktra.css");

/// The pages' routes (served unless `KTRA_UI_ENABLED=false`), behind [`session::gate`].
pub fn routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/", get(home::home))
        .route("/search", get(home::search))
        .route("/crates/{name}", get(crate_page::default_version))
        .route("/crates/{name}/{version}", get(crate_page::chosen_version))
        .route("/users/{name}", get(user::user))
        .route("/login", get(login::form).post(login::sign_in))
        .route("/logout", post(login::sign_out))
        .route(
            "/account/tokens",
            get(account::tokens).post(account::create_token),
        )
        .route("/account/tokens/{id}/revoke", post(account::revoke_token))
        .route(
            "/account/password",
            get(account::password).post(account::change_password),
        )
        .route("/admin/users", get(admin::users))
        .route("/admin/users/{name}/{action}", post(admin::set_user_state))
        .route("/admin/invitations", post(admin::create_invitation))
        .route("/admin/audit", get(admin::audit))
        .route("/static/ktra.css", get(stylesheet))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            session::gate,
        ))
        .route_layer(axum::middleware::from_fn(page_headers))
}

/// Headers of every page: never framed (clickjacking), no address leaked to the hosts a README
/// points images at, and nothing a signed-in person sees kept by caches.
async fn page_headers(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let signed_in = request.headers().contains_key(http::header::COOKIE);
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        http::header::X_FRAME_OPTIONS,
        http::HeaderValue::from_static("DENY"),
    );
    headers.insert(
        http::header::CONTENT_SECURITY_POLICY,
        http::HeaderValue::from_static("frame-ancestors 'none'"),
    );
    headers.insert(
        http::header::REFERRER_POLICY,
        http::HeaderValue::from_static("same-origin"),
    );
    if signed_in && !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
    }
    response
}

async fn stylesheet() -> Response {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// What every page shows around its content.
#[derive(Debug, Clone)]
pub struct Chrome {
    /// The registry's name in cargo commands.
    pub registry_name: String,
    /// The search box's text.
    pub query: String,
    /// Who signed in, if anyone: their name.
    pub user: Option<String>,
    /// Whether they are an administrator.
    pub admin: bool,
    /// The token of the sign-out form.
    pub csrf: String,
}

impl Chrome {
    /// The chrome of a page of `state` seen by `viewer`, with `query` in the search box.
    pub fn new(state: &AppState, viewer: &session::Viewer, query: &str) -> Self {
        let signed_in = viewer.0.as_ref();
        Self {
            registry_name: state.config.ui.registry_name.clone(),
            query: query.to_owned(),
            user: signed_in.map(|who| who.user.name.clone()),
            admin: signed_in.is_some_and(|who| who.admin),
            csrf: signed_in.map(|who| who.csrf.clone()).unwrap_or_default(),
        }
    }
}

/// A page that could not be shown, as an HTML page with its status.
#[derive(Debug)]
pub struct PageError {
    status: StatusCode,
    title: &'static str,
    detail: String,
    registry_name: String,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    chrome: &'a Chrome,
    title: &'a str,
    detail: &'a str,
}

impl PageError {
    /// A 404 saying what is missing.
    pub fn not_found(state: &AppState, detail: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            title: "Not found",
            detail: detail.into(),
            registry_name: state.config.ui.registry_name.clone(),
        }
    }

    /// A 403 saying why.
    pub fn forbidden(state: &AppState, detail: impl Into<String>) -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            title: "Not allowed",
            detail: detail.into(),
            registry_name: state.config.ui.registry_name.clone(),
        }
    }

    /// An API error shown as a page, with its status and message.
    pub fn from_api(state: &AppState, error: &crate::error::ApiError) -> Self {
        let status = error.code().http_status();
        if status.is_server_error() {
            tracing::error!(detail = error.detail(), "a page failed");
        }
        Self {
            status,
            title: if status.is_server_error() {
                "Something went wrong"
            } else {
                "Not done"
            },
            // A server error's detail is its cause: logged above, never shown.
            detail: if status.is_server_error() {
                "The registry could not do this right now; try again in a moment.".to_owned()
            } else {
                error.detail().to_owned()
            },
            registry_name: state.config.ui.registry_name.clone(),
        }
    }

    /// A 400 saying what is wrong with the request.
    pub fn bad_request(state: &AppState, detail: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            title: "Bad request",
            detail: detail.into(),
            registry_name: state.config.ui.registry_name.clone(),
        }
    }

    /// The store failed: 503 when it is unreachable, else 500; the cause is logged.
    pub fn store(state: &AppState, error: &StoreError) -> Self {
        let unavailable = matches!(error, StoreError::Unavailable(_));
        tracing::error!(%error, "a page could not read the store");
        Self {
            status: if unavailable {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            },
            title: if unavailable {
                "Unavailable"
            } else {
                "Something went wrong"
            },
            detail: "The registry could not read its data; try again in a moment.".to_owned(),
            registry_name: state.config.ui.registry_name.clone(),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let chrome = Chrome {
            registry_name: self.registry_name,
            query: String::new(),
            user: None,
            admin: false,
            csrf: String::new(),
        };
        let page = ErrorPage {
            chrome: &chrome,
            title: self.title,
            detail: &self.detail,
        };
        (self.status, render(&page)).into_response()
    }
}

/// Renders a template; a template that fails (it cannot, short of a bug) is a plain 500.
pub fn render(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(error) => {
            tracing::error!(%error, "a page template failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// A date as pages show it: `2026-12-06`.
pub fn day(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%d").to_string()
}

/// A link a page may show: http and https URLs only (a `javascript:` homepage stays text).
pub fn safe_link(url: Option<&str>) -> Option<String> {
    let url = url?;
    let parsed = url::Url::parse(url).ok()?;
    matches!(parsed.scheme(), "http" | "https").then(|| url.to_owned())
}
