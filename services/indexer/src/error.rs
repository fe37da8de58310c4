//! The indexer's errors, and how they cross the gRPC boundary.

use ktra_core::error::ErrorCode;

/// Why the indexer could not do something.
#[derive(Debug, thiserror::Error)]
pub enum IndexerError {
    /// The request is malformed (an invalid crate name, say).
    #[error("{0}")]
    BadRequest(String),
    /// The repository or its state could not be set up.
    #[error("setup failed: {0}")]
    Setup(String),
    /// libgit2 failed.
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    /// The revision store failed.
    #[error("revision store: {0}")]
    State(String),
    /// The writer stopped (the process is shutting down).
    #[error("the indexer is shutting down")]
    ShuttingDown,
}

impl IndexerError {
    /// Returns the error class.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::BadRequest(_) => ErrorCode::BadRequest,
            Self::ShuttingDown => ErrorCode::Unavailable,
            Self::Setup(_) | Self::Git(_) | Self::State(_) => ErrorCode::Internal,
        }
    }
}

impl From<IndexerError> for tonic::Status {
    fn from(error: IndexerError) -> Self {
        let message = error.to_string();
        match error.code() {
            ErrorCode::BadRequest => Self::invalid_argument(message),
            ErrorCode::Unavailable => Self::unavailable(message),
            _ => {
                tracing::error!(%message, "indexer error");
                Self::internal("the indexer failed; see its logs")
            }
        }
    }
}
