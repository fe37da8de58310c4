//! The audit log.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How many audit events a store keeps; older ones are dropped as new ones arrive.
pub const AUDIT_RETAIN: u64 = 100_000;

/// A security-relevant event: who did what to what, when and from where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// When it happened.
    pub at: DateTime<Utc>,
    /// The user who acted, when known (`None` for anonymous failures).
    pub actor: Option<String>,
    /// What happened: `user.create`, `login.failure`, `token.create`, `crate.publish`, ...
    pub action: String,
    /// What it happened to: a user name, `crate@version`, a token id.
    pub target: String,
    /// The client's address, as the API saw it.
    pub client: Option<String>,
    /// More, when useful: owners added, a token's scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A stored audit event with its position, newest first in listings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// The event's position; pass it as `before` to page further back.
    pub cursor: String,
    /// The event.
    pub event: AuditEvent,
}

impl AuditEvent {
    /// The event of an owner change that changed `users`: their names lead the detail, ahead
    /// of the detail the caller gave (such as ` (as administrator)`). The Redis store's
    /// `owners.lua` writes the same text.
    #[must_use]
    pub fn naming_users(mut self, users: &[super::User]) -> Self {
        let names = users
            .iter()
            .map(|user| format!("`{}`", user.name))
            .collect::<Vec<_>>()
            .join(", ");
        self.detail = Some(match self.detail {
            Some(note) => format!("{names} {note}"),
            None => names,
        });
        self
    }
}
