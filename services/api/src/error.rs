//! The API's error type, rendered in cargo's format: `{"errors":[{"detail":"..."}]}`.
//!
//! Client errors carry a message written for the person running cargo. Server errors (5xx)
//! answer with a fixed message; their cause is logged once, here, inside the request's span.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::{HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use ktra_core::error::ErrorCode;
use ktra_store::{BlobError, StoreError};
use serde::Serialize;

/// A failed request.
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    /// Shown to the client for 4xx; logged (never shown) for 5xx.
    detail: String,
    /// `Retry-After` of a `429`.
    retry_after: Option<std::time::Duration>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    errors: [ErrorDetail<'a>; 1],
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    detail: &'a str,
}

impl ApiError {
    /// Builds an error of any class.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
            retry_after: None,
        }
    }

    /// Too many requests (429); the client may retry after `retry_after`.
    pub fn too_many_requests(detail: impl Into<String>, retry_after: std::time::Duration) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(ErrorCode::TooManyRequests, detail)
        }
    }

    /// A malformed or refused request (400).
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, detail)
    }

    /// Missing credentials (401).
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, detail)
    }

    /// Wrong credentials or not allowed (403).
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, detail)
    }

    /// Nothing there (404).
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, detail)
    }

    /// A body over the limit (413).
    pub fn too_large(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::PayloadTooLarge, detail)
    }

    /// A dependency is down (503); `cause` is logged, not returned.
    pub fn unavailable(cause: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unavailable, cause)
    }

    /// A bug (500); `cause` is logged, not returned.
    pub fn internal(cause: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, cause)
    }

    /// Returns the error's class.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// Returns the message (for 5xx, the logged cause).
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.code, self.detail)
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        Self::new(error.code(), error.to_string())
    }
}

impl From<BlobError> for ApiError {
    fn from(error: BlobError) -> Self {
        Self::new(error.code(), error.to_string())
    }
}

/// Renders an error body in cargo's format.
pub fn error_response(status: StatusCode, detail: &str) -> Response {
    let body = ErrorBody {
        errors: [ErrorDetail { detail }],
    };
    (status, Json(body)).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.code.http_status();
        let mut response = match self.code {
            ErrorCode::Unavailable => {
                tracing::warn!(cause = %self.detail, "dependency unavailable");
                error_response(
                    status,
                    "the registry's storage is temporarily unavailable; try again shortly",
                )
            }
            ErrorCode::Internal => {
                tracing::error!(cause = %self.detail, "internal error");
                error_response(status, "internal server error")
            }
            _ => error_response(status, &self.detail),
        };
        if let Some(after) = self.retry_after {
            // Whole seconds, rounded up, so a client retrying on time is not refused again.
            let seconds = after.as_millis().div_ceil(1000).max(1);
            response.headers_mut().insert(
                RETRY_AFTER,
                HeaderValue::from(u64::try_from(seconds).unwrap_or(u64::MAX)),
            );
        }
        if self.code == ErrorCode::Unauthorized {
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Cargo"));
        }
        response
    }
}

/// Answers requests no route matches.
pub async fn route_not_found() -> ApiError {
    ApiError::not_found("no such resource")
}

/// Answers requests whose method the route does not serve.
pub async fn method_not_allowed() -> Response {
    error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed for this resource",
    )
}
