//! Errors of the metadata and blob stores.

use ktra_core::error::ErrorCode;

/// Why a store operation did not happen. Every variant means nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The crate does not exist.
    #[error("crate `{0}` does not exist")]
    CrateNotFound(String),
    /// The version does not exist.
    #[error("crate `{name}` has no version `{version}`")]
    VersionNotFound {
        /// The crate.
        name: String,
        /// The missing version.
        version: String,
    },
    /// A named user does not exist.
    #[error("could not find user `{0}`")]
    UserNotFound(String),
    /// The user name is taken.
    #[error("user `{0}` already exists")]
    UserExists(String),
    /// The caller is not an owner of the crate.
    #[error("you are not an owner of crate `{0}`")]
    NotOwner(String),
    /// The version was published before (build metadata does not count).
    #[error("crate version `{name}@{version}` is already uploaded")]
    DuplicateVersion {
        /// The crate.
        name: String,
        /// The version already present.
        version: String,
    },
    /// Another crate has the same name up to case and `-`/`_`.
    #[error(
        "crate name `{name}` is taken by the existing crate `{existing}` (names are compared ignoring case and `-`/`_`)"
    )]
    NameTaken {
        /// The name asked for.
        name: String,
        /// The existing crate's name.
        existing: String,
    },
    /// Removing the owners would leave the crate with none.
    #[error("cannot remove all owners of crate `{0}`")]
    LastOwner(String),
    /// An administrator disabled the user.
    #[error("user `{0}` is disabled; ask an administrator")]
    UserDisabled(String),
    /// The invitation code is unknown, used or expired.
    #[error(
        "the invitation is unknown, already used or expired; ask an administrator for a new one"
    )]
    InvitationInvalid,
    /// The user has no token with that id.
    #[error("no token `{0}` among the user's tokens")]
    TokenNotFound(String),
    /// The crate was created (or is new) while a publish that depended on it was checked.
    #[error("crate `{0}` changed while the publish was checked; try again")]
    CrateChanged(String),
    /// A listing cursor this store did not hand out.
    #[error("the cursor `{0}` is not valid")]
    InvalidCursor(String),
    /// The password changed since the caller checked it.
    #[error("the password was changed concurrently; try again")]
    PasswordChanged,
    /// The store cannot be reached; retrying later may work.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// The store holds data this version cannot read, or failed unexpectedly.
    #[error("the store failed: {0}")]
    Internal(String),
}

impl StoreError {
    /// Returns the error class callers render.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::CrateNotFound(_) | Self::VersionNotFound { .. } | Self::TokenNotFound(_) => {
                ErrorCode::NotFound
            }
            Self::UserNotFound(_)
            | Self::UserExists(_)
            | Self::DuplicateVersion { .. }
            | Self::NameTaken { .. }
            | Self::LastOwner(_)
            | Self::InvalidCursor(_)
            | Self::CrateChanged(_)
            | Self::PasswordChanged => ErrorCode::BadRequest,
            Self::NotOwner(_) | Self::UserDisabled(_) | Self::InvitationInvalid => {
                ErrorCode::Forbidden
            }
            Self::Unavailable(_) => ErrorCode::Unavailable,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }
}

/// Why a blob store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// No object under that key (S3 answers 403 without list permission; that maps here too).
    #[error("no crate file under {0}")]
    NotFound(String),
    /// An object already exists under that key; crate files are never overwritten.
    #[error("a crate file already exists under {0}")]
    AlreadyExists(String),
    /// The blob store cannot be reached or refused the request.
    #[error("the blob store failed: {0}")]
    Unavailable(String),
}

impl BlobError {
    /// Returns the error class callers render.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::AlreadyExists(_) => ErrorCode::Internal,
            Self::Unavailable(_) => ErrorCode::Unavailable,
        }
    }
}
