//! Users, who acts on a crate, and invitations.

use chrono::{DateTime, Utc};

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
