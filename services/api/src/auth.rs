//! Who is calling: token extraction and verification, and the gate of a private registry.
//!
//! Cargo sends its token verbatim in `Authorization`; other clients may send `Bearer <token>`.
//! A rejected token is never echoed, logged or traced.
//!
//! With `KTRA_REGISTRY_AUTH_REQUIRED` (cargo's `auth-required`, RFC 3139) every request but
//! the probes, `/metrics`, the page `/me` and Ktra's user API (which checks passwords itself)
//! needs a valid token before any handler runs, so an anonymous client learns nothing, not
//! even which crates exist; its answers are marked `private` for caches.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::header::{AUTHORIZATION, CACHE_CONTROL, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, StatusCode};
use ktra_store::model::{ApiToken, User};

use crate::error::ApiError;
use crate::state::AppState;

const INVALID_TOKEN: &str = "the authentication token is invalid or revoked; run `cargo login --registry <name>` with a new token";

/// Returns the token text from `Authorization`, without a `Bearer ` prefix.
pub(crate) fn presented_token(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::forbidden(INVALID_TOKEN))?
        .trim();
    let token = match text.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        _ => text,
    };
    Ok((!token.is_empty()).then_some(token))
}

/// Authenticates the caller.
///
/// # Errors
///
/// 401 when no token is sent, 403 when it is not a valid token, 503 when the store is down.
pub async fn require_user(state: &AppState, headers: &HeaderMap) -> Result<User, ApiError> {
    let Some(text) = presented_token(headers)? else {
        return Err(ApiError::unauthorized(
            "this action requires authentication: create a token with Ktra's login API and run `cargo login --registry <name>`",
        ));
    };
    let token = ApiToken::parse(text).ok_or_else(|| ApiError::forbidden(INVALID_TOKEN))?;
    let stored = state
        .store
        .token(token.id())
        .await?
        .ok_or_else(|| ApiError::forbidden(INVALID_TOKEN))?;
    if !token.matches(&stored.secret_hash) {
        return Err(ApiError::forbidden(INVALID_TOKEN));
    }
    tracing::Span::current().record("user", stored.user.name.as_str());
    Ok(stored.user)
}

/// Returns whether a path is served without a token in a private registry.
fn is_open_path(path: &str) -> bool {
    matches!(path, "/livez" | "/readyz" | "/metrics" | "/me") || path.starts_with("/ktra/api/v1/")
}

/// Marks an answer for the caller only: shared caches must not keep a private registry's files.
fn make_private(headers: &mut HeaderMap) {
    let value = match headers
        .get(CACHE_CONTROL)
        .and_then(|value| value.to_str().ok())
    {
        Some(current) if current.contains("private") || current.contains("no-store") => return,
        Some(current) if current.contains("public") => current.replace("public", "private"),
        Some(current) => format!("private, {current}"),
        None => "private".to_owned(),
    };
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert(CACHE_CONTROL, value);
    }
}

/// Middleware: in a private registry, refuses requests without a valid token; on every `401`,
/// tells cargo where people get a token (`WWW-Authenticate: Cargo login_url="..."`).
pub async fn gate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let private = state.config.registry.auth_required;
    let mut response = if private && !is_open_path(request.uri().path()) {
        match require_user(&state, request.headers()).await {
            Ok(_) => next.run(request).await,
            Err(error) => error.into_response(),
        }
    } else {
        next.run(request).await
    };
    if private {
        make_private(response.headers_mut());
    }
    if response.status() == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, state.login_challenge.clone());
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        map
    }

    #[test]
    fn accepts_raw_and_bearer_tokens() {
        assert_eq!(presented_token(&headers("abc")).unwrap(), Some("abc"));
        assert_eq!(
            presented_token(&headers("Bearer abc")).unwrap(),
            Some("abc")
        );
        assert_eq!(
            presented_token(&headers("bearer  abc ")).unwrap(),
            Some("abc")
        );
        assert_eq!(presented_token(&HeaderMap::new()).unwrap(), None);
        assert_eq!(presented_token(&headers("  ")).unwrap(), None);
    }

    #[test]
    fn private_answers_are_marked_private() {
        for (before, after) in [
            (Some("no-cache"), "private, no-cache"),
            (
                Some("public, max-age=31536000, immutable"),
                "private, max-age=31536000, immutable",
            ),
            (Some("no-store"), "no-store"),
            (None, "private"),
        ] {
            let mut map = HeaderMap::new();
            if let Some(before) = before {
                map.insert(CACHE_CONTROL, HeaderValue::from_static(before));
            }
            make_private(&mut map);
            assert_eq!(map[CACHE_CONTROL], after);
        }
    }

    #[test]
    fn only_probes_metrics_and_the_user_api_are_open() {
        for open in [
            "/livez",
            "/readyz",
            "/metrics",
            "/me",
            "/ktra/api/v1/login/alice",
        ] {
            assert!(is_open_path(open), "{open}");
        }
        for closed in [
            "/index/config.json",
            "/index/3/f/foo",
            "/dl/foo/1.0.0/download",
            "/api/v1/crates",
            "/api/v1/crates/new",
            "/nowhere",
        ] {
            assert!(!is_open_path(closed), "{closed}");
        }
    }
}
