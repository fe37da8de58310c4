//! Named, expiring, scoped tokens: `GET|POST /ktra/api/v1/tokens`, `DELETE
//! /ktra/api/v1/tokens/{id}`, and the token a `login` may ask for.
//!
//! Scopes follow crates.io's: endpoint scopes (`publish-new`, `publish-update`, `yank`,
//! `change-owners`, or `read-only` alone) and crate scopes (names, or prefixes ending in `*`).
//! Any valid token may read; a scoped token is refused with 403 for what its scope does not
//! cover. Creating tokens, and revoking tokens other than the one presented, need a token
//! without scopes, so a leaked CI token cannot mint broader ones; a token created with an
//! expiring token expires no later than it.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use chrono::{DateTime, TimeDelta, Utc};
use ktra_store::model::{
    ApiToken, EndpointScope, TokenDetails, TokenId, TokenInfo, TokenScope, User, UserId,
};
use serde::{Deserialize, Serialize};

use crate::audit;
use crate::auth::{Caller, describe_scope};
use crate::error::ApiError;
use crate::extract::{ApiPath, json_body};
use crate::handlers::crates::Ok as Done;
use crate::limits::ClientIp;
use crate::state::AppState;

/// The largest token request body accepted.
const MAX_TOKEN_BODY: usize = 16 * 1024;

/// The longest token name.
const MAX_NAME_LEN: usize = 64;

/// The most crate patterns one token may hold.
const MAX_CRATE_SCOPES: usize = 64;

/// The furthest expiry accepted, in days.
const MAX_EXPIRY_DAYS: i64 = 3650;

/// What a new token should be: `{"name": "ci", "expires_in_days": 30, "endpoint_scopes":
/// ["publish-update"], "crate_scopes": ["acme-*"]}`. Only `name` is required.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    name: String,
    expires_at: Option<DateTime<Utc>>,
    expires_in_days: Option<u32>,
    endpoint_scopes: Option<Vec<EndpointScope>>,
    crate_scopes: Option<Vec<String>>,
}

impl TokenRequest {
    /// A request as a form states it: a name, optionally days to expiry, endpoints (by
    /// their names, as in the JSON) and crate patterns.
    ///
    /// # Errors
    ///
    /// 400 naming an endpoint scope that does not exist.
    pub(crate) fn from_form(
        name: &str,
        expires_in_days: Option<u32>,
        endpoints: &[&str],
        crates: Vec<String>,
    ) -> Result<Self, ApiError> {
        let endpoint_scopes = endpoints
            .iter()
            .map(|endpoint| {
                serde_json::from_value(serde_json::Value::String((*endpoint).to_owned()))
                    .map_err(|_| ApiError::bad_request(format!("no endpoint scope `{endpoint}`")))
            })
            .collect::<Result<Vec<EndpointScope>, _>>()?;
        Ok(Self {
            name: name.to_owned(),
            expires_at: None,
            expires_in_days,
            endpoint_scopes: (!endpoint_scopes.is_empty()).then_some(endpoint_scopes),
            crate_scopes: (!crates.is_empty()).then_some(crates),
        })
    }

    /// Validates the request into the details to store.
    ///
    /// # Errors
    ///
    /// 400 naming the first problem.
    pub fn into_details(self, now: DateTime<Utc>) -> Result<TokenDetails, ApiError> {
        let name = self.name.trim().to_owned();
        if name.is_empty()
            || name.chars().count() > MAX_NAME_LEN
            || name.chars().any(char::is_control)
        {
            return Err(ApiError::bad_request(format!(
                "a token name must be 1 to {MAX_NAME_LEN} printable characters"
            )));
        }
        let expires_at = match (self.expires_at, self.expires_in_days) {
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_request(
                    "give either expires_at or expires_in_days, not both",
                ));
            }
            (Some(at), None) => Some(at),
            (None, Some(days)) if i64::from(days) <= MAX_EXPIRY_DAYS => {
                Some(now + TimeDelta::days(i64::from(days)))
            }
            (None, Some(_)) => {
                return Err(ApiError::bad_request(format!(
                    "the expiry must be within {MAX_EXPIRY_DAYS} days"
                )));
            }
            (None, None) => None,
        };
        if let Some(at) = expires_at {
            if at <= now {
                return Err(ApiError::bad_request("the expiry must be in the future"));
            }
            if at > now + TimeDelta::days(MAX_EXPIRY_DAYS) {
                return Err(ApiError::bad_request(format!(
                    "the expiry must be within {MAX_EXPIRY_DAYS} days"
                )));
            }
        }
        if let Some(endpoints) = &self.endpoint_scopes {
            if endpoints.is_empty() {
                return Err(ApiError::bad_request(
                    "endpoint_scopes must not be empty; use [\"read-only\"] for a token that only reads",
                ));
            }
            if endpoints.contains(&EndpointScope::ReadOnly) && endpoints.len() > 1 {
                return Err(ApiError::bad_request(
                    "the read-only scope cannot be combined with other endpoint scopes",
                ));
            }
        }
        if let Some(patterns) = &self.crate_scopes {
            if patterns.is_empty() || patterns.len() > MAX_CRATE_SCOPES {
                return Err(ApiError::bad_request(format!(
                    "crate_scopes must hold 1 to {MAX_CRATE_SCOPES} patterns"
                )));
            }
            for pattern in patterns {
                validate_crate_pattern(pattern)?;
            }
        }
        Ok(TokenDetails {
            name,
            created_at: now,
            expires_at,
            scope: TokenScope {
                endpoints: self.endpoint_scopes.map(|mut endpoints| {
                    endpoints.sort_by_key(|endpoint| endpoint.as_str());
                    endpoints.dedup();
                    endpoints
                }),
                crates: self.crate_scopes,
            },
        })
    }
}

/// A crate pattern is a crate name, a prefix of one followed by `*`, or `*`.
fn validate_crate_pattern(pattern: &str) -> Result<(), ApiError> {
    let stem = pattern.strip_suffix('*').unwrap_or(pattern);
    let valid = pattern.len() <= MAX_NAME_LEN
        && (stem.is_empty() && pattern == "*"
            || !stem.is_empty()
                && stem
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    if valid {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "invalid crate scope `{pattern}`: use a crate name, a name prefix followed by `*`, or `*`"
        )))
    }
}

/// A token as listings show it: never its secret.
#[derive(Debug, Serialize)]
pub struct TokenView {
    id: String,
    name: String,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    expired: bool,
    endpoint_scopes: Option<Vec<EndpointScope>>,
    crate_scopes: Option<Vec<String>>,
}

impl TokenView {
    pub(crate) fn new(id: TokenId, details: TokenDetails) -> Self {
        Self {
            id: id.to_hex(),
            expired: details.expires_at.is_some_and(|at| at <= Utc::now()),
            name: details.name,
            created_at: details.created_at,
            expires_at: details.expires_at,
            endpoint_scopes: details.scope.endpoints,
            crate_scopes: details.scope.crates,
        }
    }
}

impl From<TokenInfo> for TokenView {
    fn from(info: TokenInfo) -> Self {
        Self::new(info.id, info.details)
    }
}

/// `{"tokens": [...]}`.
#[derive(Debug, Serialize)]
pub struct TokenList {
    tokens: Vec<TokenView>,
}

impl TokenList {
    pub(crate) fn new(tokens: Vec<TokenView>) -> Self {
        Self { tokens }
    }
}

/// A new token, shown once, with what it may do.
#[derive(Debug, Serialize)]
pub struct NewTokenResponse {
    token: String,
    #[serde(flatten)]
    view: TokenView,
}

/// Parses a token id from a path.
pub(crate) fn token_id(text: &str) -> Result<TokenId, ApiError> {
    let mut raw = [0_u8; 8];
    hex::decode_to_slice(text, &mut raw)
        .map_err(|_| ApiError::not_found(format!("no token `{text}`")))?;
    Ok(TokenId(raw))
}

/// Stores a new token for `user`, recorded as created by `actor`, and returns its text and
/// details.
pub(crate) async fn issue(
    state: &AppState,
    user: &User,
    actor: &str,
    client: &str,
    details: TokenDetails,
) -> Result<(String, TokenView), ApiError> {
    let token = ApiToken::generate();
    let view = TokenView::new(token.id(), details.clone());
    let detail = format!("`{}`: {}", view.name, describe_scope(&details));
    state
        .store
        .add_token(
            user.id,
            token.to_new_token_with(details),
            audit::event("token.create", Some(actor), &view.id, client, Some(detail)),
        )
        .await?;
    Ok((token.reveal(), view))
}

/// `GET /ktra/api/v1/tokens`: the caller's tokens.
#[tracing::instrument(skip_all, fields(user = %caller.user.name))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<TokenList>, ApiError> {
    let tokens = state.store.list_tokens(caller.user.id).await?;
    Ok(Json(TokenList::new(
        tokens.into_iter().map(TokenView::from).collect(),
    )))
}

/// `POST /ktra/api/v1/tokens`: a new token for the caller.
#[tracing::instrument(skip_all, fields(user = %caller.user.name))]
pub async fn create(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    caller: Caller,
    body: Body,
) -> Result<Json<NewTokenResponse>, ApiError> {
    caller.require_unrestricted("creating tokens")?;
    let request: TokenRequest = json_body(body, MAX_TOKEN_BODY).await?;
    let mut details = request.into_details(Utc::now())?;
    // A token never outlives the token that created it.
    if let Some(limit) = caller.details.expires_at {
        details.expires_at = Some(details.expires_at.map_or(limit, |at| at.min(limit)));
    }
    let (token, view) = issue(&state, &caller.user, &caller.user.name, &client, details).await?;
    Ok(Json(NewTokenResponse { token, view }))
}

/// `DELETE /ktra/api/v1/tokens/{id}`: revokes one of the caller's tokens. A scoped token may
/// revoke itself only.
#[tracing::instrument(skip_all, fields(user = %caller.user.name))]
pub async fn revoke(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Done>, ApiError> {
    let id = token_id(&id)?;
    if id != caller.token {
        caller.require_unrestricted("revoking other tokens")?;
    }
    revoke_and_record(&state, &caller.user, &client, caller.user.id, id).await?;
    Ok(Json(Done::new()))
}

/// Revokes `user`'s token `id` on behalf of `actor`, recorded in the audit log.
pub(crate) async fn revoke_and_record(
    state: &AppState,
    actor: &User,
    client: &str,
    user: UserId,
    id: TokenId,
) -> Result<(), ApiError> {
    let detail = (user != actor.id).then(|| format!("a token of user #{user}"));
    let event = audit::event(
        "token.revoke",
        Some(&actor.name),
        id.to_hex(),
        client,
        detail,
    );
    state.store.revoke_token(user, id, event).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: &str) -> Result<TokenDetails, ApiError> {
        serde_json::from_str::<TokenRequest>(json)
            .map_err(|error| ApiError::bad_request(error.to_string()))?
            .into_details(Utc::now())
    }

    #[test]
    fn requests_become_scoped_details() {
        let details = request(
            r#"{"name":" ci ","expires_in_days":30,"endpoint_scopes":["publish-update","yank"],"crate_scopes":["acme-*","tool"]}"#,
        )
        .unwrap();
        assert_eq!(details.name, "ci");
        assert!(details.expires_at.unwrap() > Utc::now() + TimeDelta::days(29));
        assert!(details.scope.allows(EndpointScope::Yank, "acme_x"));
        assert!(!details.scope.allows(EndpointScope::PublishNew, "acme_x"));
        let open = request(r#"{"name":"laptop"}"#).unwrap();
        assert!(open.scope.is_unrestricted() && open.expires_at.is_none());
    }

    #[test]
    fn bad_requests_are_refused() {
        for json in [
            r#"{"name":""}"#,
            r#"{"name":"x","endpoint_scopes":[]}"#,
            r#"{"name":"x","endpoint_scopes":["read-only","yank"]}"#,
            r#"{"name":"x","endpoint_scopes":["publish"]}"#,
            r#"{"name":"x","crate_scopes":["a*b"]}"#,
            r#"{"name":"x","crate_scopes":["**"]}"#,
            r#"{"name":"x","crate_scopes":[]}"#,
            r#"{"name":"x","expires_at":"2001-01-01T00:00:00Z"}"#,
            r#"{"name":"x","expires_in_days":1,"expires_at":"2999-01-01T00:00:00Z"}"#,
            r#"{"name":"x","expires_in_days":100000}"#,
            r#"{"name":"x","scopes":["yank"]}"#,
        ] {
            assert!(request(json).is_err(), "{json}");
        }
        assert!(request(r#"{"name":"x","crate_scopes":["*","serde_*"]}"#).is_ok());
    }
}
