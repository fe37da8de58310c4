//! Who is calling: token extraction and verification.
//!
//! Cargo sends its token verbatim in `Authorization`; other clients may send `Bearer <token>`.
//! A rejected token is never echoed, logged or traced.

use http::HeaderMap;
use http::header::AUTHORIZATION;
use ktra_store::model::{ApiToken, User};

use crate::error::ApiError;
use crate::state::AppState;

const INVALID_TOKEN: &str = "the authentication token is invalid or revoked; run `cargo login --registry <name>` with a new token";

/// Returns the token text from `Authorization`, without a `Bearer ` prefix.
fn presented_token(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
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
}
