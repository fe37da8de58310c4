//! Rate limits on login, registration and publish, counted in the metadata store so every
//! replica shares them (`KTRA_LIMITS_*`).

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts};
use http::request::Parts;

use crate::error::ApiError;
use crate::state::AppState;

/// What a limit counts.
#[derive(Debug, Clone, Copy)]
pub enum Limit {
    /// Login and change-password attempts from one address.
    LoginPerIp,
    /// Login and change-password attempts for one user name.
    LoginPerUser,
    /// New users from one address.
    RegisterPerIp,
    /// Publishes by one user.
    PublishPerUser,
    /// Publish requests from one address.
    PublishPerIp,
}

impl Limit {
    fn bucket(self) -> &'static str {
        match self {
            Self::LoginPerIp => "login:ip",
            Self::LoginPerUser => "login:user",
            Self::RegisterPerIp => "register:ip",
            Self::PublishPerUser => "publish:user",
            Self::PublishPerIp => "publish:ip",
        }
    }

    /// The allowed hits per window (`0`: no limit) and the window.
    fn allowance(self, state: &AppState) -> (u32, Duration) {
        let limits = &state.config.limits;
        const MINUTE: Duration = Duration::from_secs(60);
        match self {
            Self::LoginPerIp => (limits.login_per_ip_per_minute, MINUTE),
            Self::LoginPerUser => (limits.login_per_user_per_minute, MINUTE),
            Self::RegisterPerIp => (limits.register_per_ip_per_hour, 60 * MINUTE),
            Self::PublishPerUser => (limits.publish_per_user_per_minute, MINUTE),
            Self::PublishPerIp => (limits.publish_per_ip_per_minute, MINUTE),
        }
    }
}

/// Counts one request of `subject` (an address or a lower-cased user name) against `limit`.
///
/// # Errors
///
/// 429 with `Retry-After` past the allowance; 503 when the store is down.
pub async fn check(state: &AppState, limit: Limit, subject: &str) -> Result<(), ApiError> {
    let (allowed, window) = limit.allowance(state);
    if allowed == 0 {
        return Ok(());
    }
    let bucket = format!("{}:{subject}", limit.bucket());
    let (hits, left) = state.store.count_hit(&bucket, window).await?;
    if hits <= u64::from(allowed) {
        return Ok(());
    }
    state
        .metrics
        .rate_limited
        .get_or_create(&crate::metrics::LimitLabels {
            limit: limit.bucket().to_owned(),
        })
        .inc();
    tracing::warn!(limit = limit.bucket(), "rate limit reached");
    Err(ApiError::too_many_requests(
        format!(
            "too many requests: at most {allowed} per {} seconds; try again in {} seconds",
            window.as_secs(),
            left.as_secs().max(1)
        ),
        left,
    ))
}

/// The client's address: the configured proxy header's value, or the connection's peer.
#[derive(Debug, Clone)]
pub struct ClientIp(pub String);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let from_header = state
            .config
            .limits
            .client_ip_header
            .as_deref()
            .and_then(|name| parts.headers.get_all(name).iter().next_back())
            .and_then(|value| value.to_str().ok())
            .and_then(|text| text.rsplit(',').next())
            .map(str::trim)
            .filter(|text| !text.is_empty())
            .map(str::to_owned);
        let address = from_header.unwrap_or_else(|| {
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or_else(|| "unknown".to_owned(), |info| info.0.ip().to_string())
        });
        Ok(Self(address))
    }
}
