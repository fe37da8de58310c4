//! Ktra's user API: `POST /ktra/api/v1/{new_user,login,change_password}/{name}`.
//!
//! Each answers `{"token": "..."}` with a new token, shown once. `login` adds a token and keeps
//! the others (`{"password": "...", "token": {"name": "ci", "endpoint_scopes": [...]}}` asks
//! for a named, expiring or scoped one); `change_password` revokes every token of the user and
//! returns the only valid one. Disabled users can do none of this.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use chrono::Utc;
use http::HeaderMap;
use ktra_core::name::validate_user_name;
use ktra_store::StoreError;
use ktra_store::model::{
    ApiToken, DEFAULT_TOKEN_NAME, NewUser, PasswordChange, TokenDetails, User, UserCredentials,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::audit;
use crate::auth::{presented_token, require_caller};
use crate::config::Registration;
use crate::error::ApiError;
use crate::extract::{ApiPath, json_body};
use crate::handlers::admin::{invitation_hash, invitation_label};
use crate::handlers::tokens::{self, TokenRequest};
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

/// `{"password": "...", "invitation": "..."}`; the invitation is needed when registration is
/// by invitation.
#[derive(Debug, Deserialize)]
pub struct NewUserBody {
    password: SecretString,
    invitation: Option<SecretString>,
}

/// `{"password": "...", "token": {...}}`: the token's name, expiry and scopes are optional.
#[derive(Debug, Deserialize)]
pub struct LoginBody {
    password: SecretString,
    token: Option<TokenRequest>,
}

/// `{"old_password": "...", "new_password": "..."}`.
#[derive(Debug, Deserialize)]
pub struct ChangePasswordBody {
    old_password: SecretString,
    new_password: SecretString,
}

/// Checks a new password's length against `KTRA_AUTH_MIN_PASSWORD_LEN` and the upper bound.
pub(crate) fn check_new_password(
    state: &AppState,
    password: &SecretString,
) -> Result<(), ApiError> {
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
    validate_user_name(&name)
        .map_err(|error| ApiError::bad_request(format!("invalid user name: {error}")))?;
    let request: NewUserBody = json_body(body, MAX_USER_BODY).await?;
    let registration = state.config.auth.registration;
    let invitation = match (&request.invitation, registration) {
        (Some(code), Registration::Invitation) => {
            Some(invitation_hash(code.expose_secret()).ok_or(StoreError::InvitationInvalid)?)
        }
        (Some(_), _) => {
            return Err(ApiError::bad_request(
                "this registry does not take invitations (KTRA_AUTH_REGISTRATION is not `invitation`)",
            ));
        }
        (None, _) => None,
    };
    let creator = if invitation.is_none() && registration != Registration::Open {
        Some(allow_closed_registration(&state, &headers).await?)
    } else {
        None
    };
    check_new_password(&state, &request.password)?;
    let hash = state
        .passwords
        .hash(request.password.expose_secret().to_owned())
        .await?;
    let token = ApiToken::generate();
    let (actor, detail) = match creator.flatten() {
        Some(admin) => (Some(admin), None),
        None if let Some(code_hash) = &invitation => (
            Some(name.clone()),
            Some(format!("by {}", invitation_label(code_hash))),
        ),
        None if registration == Registration::Open => (Some(name.clone()), None),
        None => (None, Some("with the bootstrap token".into())),
    };
    let user = state
        .store
        .create_user(NewUser {
            audit: audit::event("user.create", actor.as_deref(), &name, &client, detail),
            name,
            password_hash: hash,
            token: token.to_new_token(DEFAULT_TOKEN_NAME, Utc::now()),
            invitation,
        })
        .await?;
    tracing::info!(user_id = user.id, "user created");
    Ok(Json(TokenResponse {
        token: token.reveal(),
    }))
}

/// Reads a request that proves a password: the attempt counted against the limits of its
/// address and of the user name (existing or not, so the limit reveals nothing), then the body,
/// and a password too long to be anyone's refused before it costs a hash.
async fn login_request<T: serde::de::DeserializeOwned>(
    state: &AppState,
    client: &str,
    name: &str,
    body: Body,
    password: fn(&T) -> &SecretString,
) -> Result<T, ApiError> {
    count_login_attempt(state, client, name).await?;
    let request: T = json_body(body, MAX_USER_BODY).await?;
    if password(&request).expose_secret().len() > MAX_PASSWORD_LEN {
        return Err(ApiError::forbidden(BAD_CREDENTIALS));
    }
    Ok(request)
}

/// Counts an attempt to prove a password against the limits of the client's address and of
/// the user name (existing or not, so the limit reveals nothing); 429 past either.
pub(crate) async fn count_login_attempt(
    state: &AppState,
    client: &str,
    name: &str,
) -> Result<(), ApiError> {
    limits::check(state, Limit::LoginPerIp, client).await?;
    let user_key: String = name.chars().take(64).flat_map(char::to_lowercase).collect();
    limits::check(state, Limit::LoginPerUser, &user_key).await
}

/// With registration closed (or by invitation, without one), only an administrator's token or
/// the bootstrap token creates users. Returns the administrator's name, or `None` for the
/// bootstrap token.
async fn allow_closed_registration(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<String>, ApiError> {
    const CLOSED: &str = "registration is closed: an administrator creates users on this registry, or sends an invitation";
    let Some(presented) = presented_token(headers)? else {
        return Err(ApiError::forbidden(CLOSED));
    };
    if let Some(bootstrap) = &state.config.auth.bootstrap_token {
        let expected = bootstrap.expose_secret().as_bytes();
        if bool::from(presented.as_bytes().ct_eq(expected)) {
            tracing::warn!("a user is created with the bootstrap token");
            return Ok(None);
        }
    }
    let caller = require_caller(state, headers).await?;
    if caller.acts_as_admin() {
        Ok(Some(caller.user.name))
    } else {
        Err(ApiError::forbidden(CLOSED))
    }
}

/// Checks a user's password, spending the same effort whether or not the user exists, and
/// records failures in the audit log. A disabled user is refused once the password is right;
/// a password too long to be anyone's is refused before it costs a hash.
pub(crate) async fn verify_login(
    state: &AppState,
    client: &str,
    name: &str,
    password: &SecretString,
) -> Result<UserCredentials, ApiError> {
    if password.expose_secret().len() > MAX_PASSWORD_LEN {
        return Err(ApiError::forbidden(BAD_CREDENTIALS));
    }
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
    let failure = |detail: Option<String>| {
        let target: String = name.chars().take(64).collect();
        audit::event("login.failure", None, target, client, detail)
    };
    match credentials {
        Some(found) if valid && found.disabled => {
            audit::record(state, failure(Some("the user is disabled".into()))).await;
            Err(StoreError::UserDisabled(found.user.name).into())
        }
        Some(found) if valid => Ok(found),
        _ => {
            audit::record(state, failure(None)).await;
            Err(ApiError::forbidden(BAD_CREDENTIALS))
        }
    }
}

/// Replaces a hash made with other parameters than ours (one imported from Ktra, or from
/// before a change of `KTRA_AUTH_ARGON2_*`) with one of the password just checked. Tokens are
/// kept; a failure is logged, and the next login tries again.
pub(crate) async fn rehash_if_outdated(
    state: &AppState,
    credentials: &UserCredentials,
    password: &SecretString,
) {
    if !state.passwords.needs_rehash(&credentials.password_hash) {
        return;
    }
    let rehashed = async {
        let new_hash = state
            .passwords
            .hash(password.expose_secret().to_owned())
            .await?;
        let replaced = state
            .store
            .rehash_password(credentials.user.id, &credentials.password_hash, &new_hash)
            .await?;
        Ok::<_, ApiError>(replaced)
    };
    match rehashed.await {
        Ok(true) => tracing::info!(
            user_id = credentials.user.id,
            "password hash replaced by one with the configured parameters"
        ),
        Ok(false) => {}
        Err(error) => {
            tracing::warn!(%error, "cannot rehash a password; the next login tries again")
        }
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
    let request = login_request(&state, &client, &name, body, |request: &LoginBody| {
        &request.password
    })
    .await?;
    let now = Utc::now();
    let details = match request.token {
        Some(wanted) => wanted.into_details(now)?,
        None => TokenDetails::unrestricted(DEFAULT_TOKEN_NAME, now),
    };
    let credentials = verify_login(&state, &client, &name, &request.password).await?;
    rehash_if_outdated(&state, &credentials, &request.password).await;
    let user = credentials.user;
    let (token, _) = tokens::issue(&state, &user, &user.name, &client, details).await?;
    tracing::info!(user_id = user.id, "token issued");
    Ok(Json(TokenResponse { token }))
}

/// `POST /ktra/api/v1/change_password/{name}`.
#[tracing::instrument(skip_all, fields(user = %name))]
pub async fn change_password(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    ApiPath(name): ApiPath<String>,
    body: Body,
) -> Result<Json<TokenResponse>, ApiError> {
    let request = login_request(
        &state,
        &client,
        &name,
        body,
        |request: &ChangePasswordBody| &request.old_password,
    )
    .await?;
    let UserCredentials {
        user,
        password_hash: old_hash,
        ..
    } = verify_login(&state, &client, &name, &request.old_password).await?;
    check_new_password(&state, &request.new_password)?;
    let token = replace_password(&state, &client, &user, old_hash, &request.new_password).await?;
    Ok(Json(TokenResponse { token }))
}

/// Replaces `user`'s password (checked by the caller, whose hash was `old_hash`) with `new`
/// (checked with [`check_new_password`]): every token is revoked, one new token stored and
/// returned, and every session of the user ended.
pub(crate) async fn replace_password(
    state: &AppState,
    client: &str,
    user: &User,
    old_hash: String,
    new: &SecretString,
) -> Result<String, ApiError> {
    let new_hash = state.passwords.hash(new.expose_secret().to_owned()).await?;
    let token = ApiToken::generate();
    state
        .store
        .change_password(PasswordChange {
            user: user.id,
            old_password_hash: old_hash,
            new_password_hash: new_hash,
            token: token.to_new_token(DEFAULT_TOKEN_NAME, Utc::now()),
            audit: audit::event(
                "user.password_change",
                Some(&user.name),
                &user.name,
                client,
                Some("every earlier token revoked".into()),
            ),
        })
        .await?;
    crate::auth::end_sessions(state, user).await;
    tracing::info!(user_id = user.id, "password changed, tokens revoked");
    Ok(token.reveal())
}
