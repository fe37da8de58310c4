//! Ktra's user API: `POST /ktra/api/v1/{new_user,login,change_password}/{name}`.
//!
//! Each answers `{"token": "..."}` with a new token, shown once. `login` adds a token and keeps
//! the others; `change_password` revokes every token of the user and returns the only valid one.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use chrono::Utc;
use http::HeaderMap;
use ktra_core::name::validate_user_name;
use ktra_store::model::ApiToken;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::auth::{presented_token, require_user};
use crate::config::Registration;
use crate::error::ApiError;
use crate::extract::{ApiPath, json_body};
use crate::limits::{self, ClientIp, Limit};
use crate::state::AppState;

/// The largest user API body accepted.
const MAX_USER_BODY: usize = 16 * 1024;

/// The longest password accepted (Argon2 takes any length; this bounds the work per request).
const MAX_PASSWORD_LEN: usize = 1024;

const BAD_CREDENTIALS: &str = "invalid user name or password";

/// A new token.
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    token: String,
}

/// `{"password": "..."}`.
#[derive(Debug, Deserialize)]
pub struct PasswordBody {
    password: SecretString,
}

/// `{"old_password": "...", "new_password": "..."}`.
#[derive(Debug, Deserialize)]
pub struct ChangePasswordBody {
    old_password: SecretString,
    new_password: SecretString,
}

fn check_new_password(state: &AppState, password: &SecretString) -> Result<(), ApiError> {
    let length = password.expose_secret().chars().count();
    let minimum = state.config.auth.min_password_len;
    if length < minimum {
        return Err(ApiError::bad_request(format!(
            "the password must be at least {minimum} characters long"
        )));
    }
    if password.expose_secret().len() > MAX_PASSWORD_LEN {
        return Err(ApiError::bad_request(format!(
            "the password must be at most {MAX_PASSWORD_LEN} bytes long"
        )));
    }
    Ok(())
}

/// `POST /ktra/api/v1/new_user/{name}`.
#[tracing::instrument(skip_all, fields(user = %name))]
pub async fn new_user(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    ApiPath(name): ApiPath<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<TokenResponse>, ApiError> {
    limits::check(&state, Limit::RegisterPerIp, &client).await?;
    if state.config.auth.registration == Registration::Closed {
        allow_closed_registration(&state, &headers).await?;
    }
    validate_user_name(&name)
        .map_err(|error| ApiError::bad_request(format!("invalid user name: {error}")))?;
    let request: PasswordBody = json_body(body, MAX_USER_BODY).await?;
    check_new_password(&state, &request.password)?;
    let hash = state
        .passwords
        .hash(request.password.expose_secret().to_owned())
        .await?;
    let token = ApiToken::generate();
    let user = state
        .store
        .create_user(&name, &hash, token.to_new_token(Utc::now()))
        .await?;
    tracing::info!(user_id = user.id, "user created");
    Ok(Json(TokenResponse {
        token: token.reveal(),
    }))
}

/// Counts a login attempt against the limits of its address and of the user name (existing
/// or not, so the limit reveals nothing).
async fn check_login_limits(state: &AppState, client: &str, name: &str) -> Result<(), ApiError> {
    limits::check(state, Limit::LoginPerIp, client).await?;
    let user_key: String = name.chars().take(64).flat_map(char::to_lowercase).collect();
    limits::check(state, Limit::LoginPerUser, &user_key).await
}

/// With registration closed, only an administrator's token or the bootstrap token creates
/// users.
async fn allow_closed_registration(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    const CLOSED: &str = "registration is closed: an administrator creates users on this registry";
    let Some(presented) = presented_token(headers)? else {
        return Err(ApiError::forbidden(CLOSED));
    };
    if let Some(bootstrap) = &state.config.auth.bootstrap_token {
        let expected = bootstrap.expose_secret().as_bytes();
        if bool::from(presented.as_bytes().ct_eq(expected)) {
            tracing::warn!("a user is created with the bootstrap token");
            return Ok(());
        }
    }
    let caller = require_user(state, headers).await?;
    if state.config.auth.is_admin(&caller.name) {
        Ok(())
    } else {
        Err(ApiError::forbidden(CLOSED))
    }
}

/// Checks a user's password, spending the same effort whether or not the user exists.
async fn verify_login(
    state: &AppState,
    name: &str,
    password: &SecretString,
) -> Result<(ktra_store::model::User, String), ApiError> {
    let credentials = if validate_user_name(name).is_ok() {
        state.store.user_credentials(name).await?
    } else {
        None
    };
    let stored_hash = credentials
        .as_ref()
        .map(|found| found.password_hash.clone());
    let valid = state
        .passwords
        .verify(password.expose_secret().to_owned(), stored_hash)
        .await?;
    match credentials {
        Some(found) if valid => Ok((found.user, found.password_hash)),
        _ => Err(ApiError::forbidden(BAD_CREDENTIALS)),
    }
}

/// `POST /ktra/api/v1/login/{name}`.
#[tracing::instrument(skip_all, fields(user = %name))]
pub async fn login(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    ApiPath(name): ApiPath<String>,
    body: Body,
) -> Result<Json<TokenResponse>, ApiError> {
    check_login_limits(&state, &client, &name).await?;
    let request: PasswordBody = json_body(body, MAX_USER_BODY).await?;
    if request.password.expose_secret().len() > MAX_PASSWORD_LEN {
        return Err(ApiError::forbidden(BAD_CREDENTIALS));
    }
    let (user, _) = verify_login(&state, &name, &request.password).await?;
    let token = ApiToken::generate();
    state
        .store
        .add_token(user.id, token.to_new_token(Utc::now()))
        .await?;
    tracing::info!(user_id = user.id, "token issued");
    Ok(Json(TokenResponse {
        token: token.reveal(),
    }))
}

/// `POST /ktra/api/v1/change_password/{name}`.
#[tracing::instrument(skip_all, fields(user = %name))]
pub async fn change_password(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    ApiPath(name): ApiPath<String>,
    body: Body,
) -> Result<Json<TokenResponse>, ApiError> {
    check_login_limits(&state, &client, &name).await?;
    let request: ChangePasswordBody = json_body(body, MAX_USER_BODY).await?;
    if request.old_password.expose_secret().len() > MAX_PASSWORD_LEN {
        return Err(ApiError::forbidden(BAD_CREDENTIALS));
    }
    let (user, old_hash) = verify_login(&state, &name, &request.old_password).await?;
    check_new_password(&state, &request.new_password)?;
    let new_hash = state
        .passwords
        .hash(request.new_password.expose_secret().to_owned())
        .await?;
    let token = ApiToken::generate();
    state
        .store
        .change_password(
            user.id,
            &old_hash,
            &new_hash,
            token.to_new_token(Utc::now()),
        )
        .await?;
    tracing::info!(user_id = user.id, "password changed, tokens revoked");
    Ok(Json(TokenResponse {
        token: token.reveal(),
    }))
}
