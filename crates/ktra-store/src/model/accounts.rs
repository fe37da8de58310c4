//! Users, who acts on a crate, and invitations.

use chrono::{DateTime, Utc};

use super::{AuditEvent, NewToken};

/// A user's numeric id; it fits in `u32` because cargo parses owner ids that way.
pub type UserId = u32;

/// A registered user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The user's id.
    pub id: UserId,
    /// The user's login name.
    pub name: String,
}

/// A user together with the password hash needed to log in.
#[derive(Debug, Clone)]
pub struct UserCredentials {
    /// The user.
    pub user: User,
    /// The argon2 PHC string of the password.
    pub password_hash: String,
    /// Whether an administrator disabled the user: no login, no tokens.
    pub disabled: bool,
}

/// Who changes a crate's owners: an owner (checked by the store) or an administrator (not
/// checked; a crate still never loses its last owner).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerActor {
    /// A user who must own the crate.
    Owner(UserId),
    /// An administrator, who may change the owners of any crate.
    Admin,
}

/// A single-use invitation to register, by the SHA-256 of its code.
#[derive(Debug, Clone)]
pub struct Invitation {
    /// SHA-256 of the code handed to the invitee.
    pub code_hash: [u8; 32],
    /// The administrator who issued it.
    pub created_by: UserId,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// A user to create, holding one token: what [`crate::AccountStore::create_user`] takes.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// The login name; unique ignoring case.
    pub name: String,
    /// The argon2 PHC string of the password.
    pub password_hash: String,
    /// The user's first token.
    pub token: NewToken,
    /// The SHA-256 of the invitation code the user registers with, used up in the same step;
    /// `None` when registration needs none.
    pub invitation: Option<[u8; 32]>,
    /// The event recorded with the user.
    pub audit: AuditEvent,
}

/// A password change: what [`crate::AccountStore::change_password`] takes.
#[derive(Debug, Clone)]
pub struct PasswordChange {
    /// The user.
    pub user: UserId,
    /// The hash the caller verified the old password against; the change is refused when the
    /// stored hash is no longer this one.
    pub old_password_hash: String,
    /// The new password's hash.
    pub new_password_hash: String,
    /// The token that replaces every token of the user.
    pub token: NewToken,
    /// The event recorded with the change.
    pub audit: AuditEvent,
}
