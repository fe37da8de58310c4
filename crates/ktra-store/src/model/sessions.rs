//! Browser sessions: who signed in to the pages, until when, and the token their forms carry.

use chrono::{DateTime, Utc};

use super::accounts::{User, UserId};

/// A session to store, by the SHA-256 of its cookie's secret (the secret itself is never
/// stored).
#[derive(Debug, Clone)]
pub struct NewSession {
    /// SHA-256 of the cookie's secret.
    pub id_hash: [u8; 32],
    /// Who signed in.
    pub user: UserId,
    /// The token every form of the session must carry (cross-site request forgery).
    pub csrf: String,
    /// When it ends.
    pub expires_at: DateTime<Utc>,
}

/// A stored session that has not expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Who signed in.
    pub user: User,
    /// The token its forms carry.
    pub csrf: String,
    /// When it ends.
    pub expires_at: DateTime<Utc>,
}

/// A user as administrators list them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSummary {
    /// The user.
    pub user: User,
    /// Whether an administrator disabled them.
    pub disabled: bool,
    /// When they registered.
    pub created_at: DateTime<Utc>,
}
