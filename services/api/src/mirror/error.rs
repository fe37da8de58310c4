//! The mirror's error: what went wrong, a message for the person running cargo, the cause for
//! the logs, and the HTTP status each kind answers with.

use ktra_core::error::ErrorCode;
use ktra_store::BlobError;

use super::single_flight::FlightFailed;
use crate::error::ApiError;

/// What went wrong, for metrics and for choosing the status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MirrorErrorKind {
    /// The upstream does not have it (404).
    NotFound,
    /// The allow/deny lists refuse the crate (403).
    Forbidden,
    /// The upstream could not be reached (502).
    Unreachable,
    /// The upstream did not answer in time (504).
    Timeout,
    /// The upstream answered with an unexpected status or an unusable body (502).
    BadAnswer,
    /// The crate file's bytes do not match the index's checksum (502).
    Checksum,
    /// The mirror's blob store failed (503).
    Store,
}

impl MirrorErrorKind {
    /// Every kind, for the zero-valued series created at startup.
    pub(crate) const ALL: [Self; 7] = [
        Self::NotFound,
        Self::Forbidden,
        Self::Unreachable,
        Self::Timeout,
        Self::BadAnswer,
        Self::Checksum,
        Self::Store,
    ];

    /// The label of `ktra_mirror_upstream_errors_total`.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::Forbidden => "forbidden",
            Self::Unreachable => "unreachable",
            Self::Timeout => "timeout",
            Self::BadAnswer => "bad_answer",
            Self::Checksum => "checksum",
            Self::Store => "store",
        }
    }
}

/// A failed mirror request: a message for the person running cargo, and the cause for the logs.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{detail} ({cause})")]
pub struct MirrorError {
    /// What went wrong.
    pub kind: MirrorErrorKind,
    /// Shown to the client; names the crate, never the upstream's internals.
    pub detail: String,
    /// Logged only.
    pub cause: String,
}

impl MirrorError {
    pub(crate) fn new(
        kind: MirrorErrorKind,
        detail: impl Into<String>,
        cause: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            detail: detail.into(),
            cause: cause.into(),
        }
    }

    pub(crate) fn store(error: &BlobError) -> Self {
        Self::new(
            MirrorErrorKind::Store,
            "the mirror's storage failed",
            error.to_string(),
        )
    }
}

impl From<MirrorError> for ApiError {
    fn from(error: MirrorError) -> Self {
        let code = match error.kind {
            MirrorErrorKind::NotFound => ErrorCode::NotFound,
            MirrorErrorKind::Forbidden => ErrorCode::Forbidden,
            MirrorErrorKind::Timeout => ErrorCode::GatewayTimeout,
            MirrorErrorKind::Unreachable
            | MirrorErrorKind::BadAnswer
            | MirrorErrorKind::Checksum => ErrorCode::BadGateway,
            MirrorErrorKind::Store => return ApiError::unavailable(error.cause),
        };
        ApiError::new(code, error.detail)
    }
}

impl From<FlightFailed> for MirrorError {
    /// The shared fetch's task ended without a result (it panicked, or the runtime is
    /// shutting down).
    fn from(failed: FlightFailed) -> Self {
        Self::new(
            MirrorErrorKind::BadAnswer,
            "the mirror failed to fetch from the upstream registry",
            format!("fetch task: {}", failed.reason),
        )
    }
}
