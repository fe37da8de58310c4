//! Error codes both services agree on.
//!
//! The API renders an [`ErrorCode`] as an HTTP status in cargo's error format; the indexer sends
//! it as a gRPC status, and the API maps it back, so a failure keeps its meaning across the hop.

use http::StatusCode;

/// The class of a failure, independent of transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The request is malformed or breaks a rule (bad metadata, duplicate version).
    BadRequest,
    /// Credentials are missing or malformed where they are required.
    Unauthorized,
    /// The credentials are wrong, or the caller may not do this.
    Forbidden,
    /// The crate, version or user does not exist.
    NotFound,
    /// The request body is larger than allowed.
    PayloadTooLarge,
    /// The caller sent too many requests.
    TooManyRequests,
    /// A dependency (store, blob store, indexer) is unreachable; retrying later may work.
    Unavailable,
    /// An upstream registry (the mirror's) failed or answered something unusable.
    BadGateway,
    /// An upstream registry (the mirror's) did not answer in time.
    GatewayTimeout,
    /// A bug or an unexpected state; details are logged, never returned.
    Internal,
}

impl ErrorCode {
    /// Returns the HTTP status that carries this code.
    pub fn http_status(self) -> StatusCode {
        match self {
            Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::BadGateway => StatusCode::BAD_GATEWAY,
            Self::GatewayTimeout => StatusCode::GATEWAY_TIMEOUT,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Returns whether the code is a server-side failure whose cause must stay private.
    pub fn is_server_error(self) -> bool {
        matches!(
            self,
            Self::Unavailable | Self::Internal | Self::BadGateway | Self::GatewayTimeout
        )
    }
}
