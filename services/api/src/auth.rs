//! Who is calling: token extraction and verification, and the gate of a private registry.
//!
//! Cargo sends its token verbatim in `Authorization`; other clients may send `Bearer <token>`.
//! A rejected token is never echoed, logged or traced.
//!
//! Authentication is a layer on route groups (see `routes.rs`), never a call in a handler:
//! [`required`] on the actions that change something, [`required_if_private`] on what cargo
//! reads, which with `KTRA_REGISTRY_AUTH_REQUIRED` (cargo's `auth-required`, RFC 3139) needs a
//! valid token before any handler runs, so an anonymous client learns nothing, not even which
//! crates exist; a private registry's answers are marked `private` for caches. The probes,
//! `/metrics`, the page `/me` and Ktra's user API (which checks passwords itself) are open.
//! Handlers read the admitted caller with the [`Caller`] (or [`Admin`]) extractor.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use http::header::{AUTHORIZATION, CACHE_CONTROL, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, StatusCode};
use ktra_store::model::{ApiToken, EndpointScope, OwnerActor, TokenDetails, TokenId, User};

use crate::error::ApiError;
use crate::extract::{discard, expects_continue};
use crate::limits::{self, ClientIp, Limit};
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

/// An authenticated caller: the user and the token they presented.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token's owner.
    pub user: User,
    /// The token's id.
    pub token: TokenId,
    /// The token's name, dates and scope.
    pub details: TokenDetails,
    /// Whether the user has the administrator role.
    pub admin: bool,
}

impl Caller {
    /// Checks that the token's scope allows `endpoint` on crate `name`.
    ///
    /// # Errors
    ///
    /// 403 naming what the token lacks.
    pub fn require_scope(&self, endpoint: EndpointScope, name: &str) -> Result<(), ApiError> {
        if self.details.scope.allows(endpoint, name) {
            return Ok(());
        }
        let action = match endpoint {
            EndpointScope::PublishNew => "publishing new crates",
            EndpointScope::PublishUpdate => "publishing new versions of existing crates",
            EndpointScope::Yank => "yanking or unyanking",
            EndpointScope::ChangeOwners => "changing owners",
            EndpointScope::ReadOnly => "reading",
        };
        let allowed_endpoint = self
            .details
            .scope
            .endpoints
            .as_ref()
            .is_none_or(|endpoints| endpoints.contains(&endpoint));
        let reason = if allowed_endpoint {
            format!("does not cover crate `{name}`")
        } else {
            format!("does not allow {action}")
        };
        Err(ApiError::forbidden(format!(
            "this token (`{}`) {reason}: its scope is {}; use a token with the right scope",
            self.details.name,
            describe_scope(&self.details)
        )))
    }

    /// Checks that the token is unrestricted, as managing tokens and acting as an
    /// administrator require.
    ///
    /// # Errors
    ///
    /// 403 when the token has a scope.
    pub fn require_unrestricted(&self, action: &str) -> Result<(), ApiError> {
        if self.details.scope.is_unrestricted() {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "{action} needs a token without scopes (from `login`); this token's scope is {}",
                describe_scope(&self.details)
            )))
        }
    }

    /// Checks that the caller is an administrator using an unrestricted token.
    ///
    /// # Errors
    ///
    /// 403 otherwise.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if !self.admin {
            return Err(ApiError::forbidden(
                "this action is for administrators (KTRA_AUTH_ADMINS)",
            ));
        }
        self.require_unrestricted("acting as an administrator")
    }

    /// Who changes a crate's owners: administrators, with a token without scopes, may change
    /// any crate's.
    pub fn owner_actor(&self) -> OwnerActor {
        if self.acts_as_admin() {
            OwnerActor::Admin
        } else {
            OwnerActor::Owner(self.user.id)
        }
    }

    /// Whether the caller holds administrator powers for this request.
    pub fn acts_as_admin(&self) -> bool {
        self.admin && self.details.scope.is_unrestricted()
    }
}

/// Describes a scope for messages: `publish-update, yank on acme-*`.
pub(crate) fn describe_scope(details: &TokenDetails) -> String {
    let endpoints = details.scope.endpoints.as_ref().map_or_else(
        || "every action".to_owned(),
        |endpoints| {
            endpoints
                .iter()
                .map(|endpoint| endpoint.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        },
    );
    let crates = details
        .scope
        .crates
        .as_ref()
        .map_or_else(|| "every crate".to_owned(), |crates| crates.join(", "));
    format!("{endpoints} on {crates}")
}

/// Authenticates the caller and returns their token's details.
///
/// # Errors
///
/// 401 when no token is sent, 403 when it is not a valid token or it expired, 503 when the
/// store is down.
pub async fn require_caller(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
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
    if let Some(expired) = stored.details.expires_at.filter(|at| *at <= Utc::now()) {
        return Err(ApiError::forbidden(format!(
            "the token `{}` expired at {}; create a new one and run `cargo login --registry <name>`",
            stored.details.name,
            expired.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )));
    }
    tracing::Span::current().record("user", stored.user.name.as_str());
    let admin = state.config.auth.is_admin(&stored.user.name);
    Ok(Caller {
        user: stored.user,
        token: stored.id,
        details: stored.details,
        admin,
    })
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    /// The caller the route's authentication layer ([`required`]) admitted.
    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::internal("the route has no authentication layer"))
    }
}

/// An administrator using a token without scopes; refused with 403 otherwise.
#[derive(Debug, Clone)]
pub struct Admin(pub Caller);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require_admin()?;
        Ok(Self(caller))
    }
}

/// Admits the caller into `next` (handlers read them with the [`Caller`] extractor), or
/// answers the authentication error; a refused request's body is not kept, and a bounded part
/// is read so the client sees the answer. With `on_failure`, a refusal also counts against the
/// client's address, so guessing tokens stays slow.
async fn admit(
    state: &AppState,
    mut request: Request,
    next: Next,
    on_failure: Option<(Limit, String)>,
) -> Response {
    match require_caller(state, request.headers()).await {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(error) => {
            let error = match on_failure {
                Some((limit, client)) => limits::check(state, limit, &client)
                    .await
                    .err()
                    .unwrap_or(error),
                None => error,
            };
            let expects_continue = expects_continue(request.headers());
            discard(request.into_body(), expects_continue).await;
            error.into_response()
        }
    }
}

/// Route layer of the actions that always need a caller: changing crates, tokens, and
/// administration.
pub async fn required(State(state): State<AppState>, request: Request, next: Next) -> Response {
    admit(&state, request, next, None).await
}

/// Route layer of publish: as [`required`], and a refused token counts against the address.
pub async fn required_for_publish(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    request: Request,
    next: Next,
) -> Response {
    admit(&state, request, next, Some((Limit::PublishPerIp, client))).await
}

/// Route layer of what cargo reads (index, downloads, search, owners): open in a public
/// registry, needs a caller in a private one.
pub async fn required_if_private(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if state.config.registry.auth_required {
        admit(&state, request, next, None).await
    } else {
        next.run(request).await
    }
}

/// Ends every session of `user` in the pages (`crate::pages::session`) after their password
/// changed or they were disabled: tokens and sessions go together. A failure is logged; the
/// change itself stands, and a disabled user's sessions are refused anyway.
pub(crate) async fn end_sessions(state: &AppState, user: &User) {
    if let Err(error) = state.store.end_user_sessions(user.id).await {
        tracing::error!(%error, user_id = user.id, "the user's sessions could not be ended");
    }
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

/// Layer over every route: in a private registry, marks every answer `private` for caches;
/// on every `401`, tells cargo where people get a token (`WWW-Authenticate: Cargo
/// login_url="..."`).
pub async fn challenge(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    if state.config.registry.auth_required {
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
}
