//! Who is looking at a page: the session cookie, the gate of a private registry's pages, and
//! the token every form carries against cross-site request forgery.
//!
//! A session's cookie holds a random secret; the store keeps only its SHA-256, with the user,
//! the session's form token and its end, so every replica knows the session and a stolen
//! database holds no usable cookie. The cookie is `HttpOnly`, `SameSite=Lax`, and when the
//! registry's public URL is https `Secure` and named with the `__Host-` prefix (no sibling
//! subdomain can set it). A disabled user's sessions stop working at once; disabling a user
//! or changing a password ends every session of theirs.
//!
//! Every form of a signed-in page carries the session's token in `csrf`, and [`Form`] refuses
//! a post without it (403). The sign-in form, which has no session yet, carries a token that
//! must match a short-lived cookie set with the form (double submit).

use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{TimeDelta, Utc};
use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};
use ktra_store::model::{NewSession, User};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::PageError;
use crate::state::AppState;

/// The session cookie.
pub const SESSION_COOKIE: &str = "ktra_session";

/// The cookie of the sign-in form's token.
pub const SIGN_IN_COOKIE: &str = "ktra_sign_in";

/// The largest form body accepted.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// A signed-in person.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// Who.
    pub user: User,
    /// Whether they are an administrator (`KTRA_AUTH_ADMINS`).
    pub admin: bool,
    /// The token their forms carry.
    pub csrf: String,
    /// The SHA-256 of the cookie's secret: the session's key in the store.
    pub id_hash: [u8; 32],
}

/// Who is looking, if anyone signed in; every page handler may read it.
#[derive(Debug, Clone, Default)]
pub struct Viewer(pub Option<SignedIn>);

/// A random secret, hex.
pub fn random_secret() -> String {
    let mut raw = [0_u8; 32];
    rand::fill(&mut raw);
    hex::encode(raw)
}

fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Whether the registry is reached over https (its public URL says so).
fn https(state: &AppState) -> bool {
    state.config.public_base().starts_with("https://")
}

/// A cookie's name as sent: with the `__Host-` prefix over https.
fn cookie_name(state: &AppState, name: &str) -> String {
    if https(state) {
        format!("__Host-{name}")
    } else {
        name.to_owned()
    }
}

/// The value of cookie `name` in the request.
pub fn cookie<'a>(state: &AppState, headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let name = cookie_name(state, name);
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name.as_str())
        .map(|(_, value)| value)
}

/// A `Set-Cookie` value for the registry's pages.
pub fn set_cookie(state: &AppState, name: &str, value: &str, max_age_secs: i64) -> HeaderValue {
    let secure = if https(state) { "; Secure" } else { "" };
    let name = cookie_name(state, name);
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("ktra_invalid=; Max-Age=0"))
}

/// Reads the session the request's cookie names, unless it ended, expired, or its user was
/// disabled.
///
/// # Errors
///
/// When the store fails.
pub async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<SignedIn>, ktra_store::StoreError> {
    let Some(secret) = cookie(state, headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let id_hash = hash(secret);
    let Some(session) = state.store.session(id_hash).await? else {
        return Ok(None);
    };
    let Some(credentials) = state.store.user_credentials(&session.user.name).await? else {
        return Ok(None);
    };
    if credentials.disabled {
        return Ok(None);
    }
    Ok(Some(SignedIn {
        admin: state.config.auth.is_admin(&session.user.name),
        user: session.user,
        csrf: session.csrf,
        id_hash,
    }))
}

/// Starts a session for `user`; returns the `Set-Cookie` value that holds it.
///
/// # Errors
///
/// When the store fails.
pub async fn start(state: &AppState, user: &User) -> Result<HeaderValue, ktra_store::StoreError> {
    let secret = random_secret();
    let hours = i64::from(state.config.ui.session_hours);
    state
        .store
        .create_session(NewSession {
            id_hash: hash(&secret),
            user: user.id,
            csrf: random_secret(),
            expires_at: Utc::now() + TimeDelta::hours(hours),
        })
        .await?;
    Ok(set_cookie(state, SESSION_COOKIE, &secret, hours * 3600))
}

/// Paths a private registry shows without a session: signing in, and the stylesheet.
fn open_in_private(path: &str) -> bool {
    matches!(path, "/login" | "/static/ktra.css")
}

/// Where to send someone who must sign in first, coming back to `uri` after.
pub fn to_sign_in(uri: &http::Uri) -> Response {
    let back = uri
        .path_and_query()
        .map_or("/", http::uri::PathAndQuery::as_str);
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("next", back)
        .finish();
    Redirect::to(&format!("/login?{query}")).into_response()
}

/// Route layer of the pages: reads the viewer for the handlers; in a private registry, sends
/// whoever has neither a session nor a valid token to the sign-in page.
pub async fn gate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let viewer = match signed_in(&state, request.headers()).await {
        Ok(viewer) => viewer,
        Err(error) => return PageError::store(&state, &error).into_response(),
    };
    if viewer.is_none()
        && state.config.registry.auth_required
        && !open_in_private(request.uri().path())
        && crate::auth::require_caller(&state, request.headers())
            .await
            .is_err()
    {
        return to_sign_in(request.uri());
    }
    request.extensions_mut().insert(Viewer(viewer));
    next.run(request).await
}

impl<S: Send + Sync> FromRequestParts<S> for Viewer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Viewer>()
            .cloned()
            .unwrap_or_default())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for SignedIn {
    type Rejection = Response;

    /// The signed-in person, or a redirect to the sign-in page.
    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Viewer>()
            .and_then(|viewer| viewer.0.clone())
            .ok_or_else(|| to_sign_in(&parts.uri))
    }
}

/// A posted form of a signed-in page, its `csrf` field checked against the session's: the
/// person who signed in, and the form's fields in order.
#[derive(Debug)]
pub struct Form {
    /// Who posted it.
    pub by: SignedIn,
    fields: Vec<(String, String)>,
}

impl Form {
    /// The first value of field `name` exactly as sent (passwords); `None` when missing.
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The first value of field `name`, trimmed; `None` when missing or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.trim())
            .filter(|value| !value.is_empty())
    }

    /// Every value of field `name` (checkboxes).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.fields
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .collect()
    }
}

/// Reads a form body (at most 64 KiB) as its fields.
pub async fn form_fields(request: Request) -> Result<Vec<(String, String)>, Response> {
    let body = axum::body::to_bytes(request.into_body(), MAX_FORM_BYTES)
        .await
        .map_err(|_| http::StatusCode::PAYLOAD_TOO_LARGE.into_response())?;
    Ok(url::form_urlencoded::parse(&body).into_owned().collect())
}

/// Whether `presented` is `expected`, in constant time.
pub fn same_token(presented: Option<&str>, expected: &str) -> bool {
    presented.is_some_and(|token| bool::from(token.as_bytes().ct_eq(expected.as_bytes())))
}

impl FromRequest<AppState> for Form {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let by = SignedIn::from_request_parts(&mut parts, state).await?;
        let fields = form_fields(Request::from_parts(parts, body)).await?;
        let form = Self { by, fields };
        if !same_token(form.get("csrf"), &form.by.csrf) {
            return Err(PageError::forbidden(
                state,
                "The form did not come from this registry's page, or the page is too old. Reload it and try again.",
            )
            .into_response());
        }
        Ok(form)
    }
}
