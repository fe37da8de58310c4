//! The Lua scripts that make each change of more than one key atomic (in `scripts/`).

use redis::{Script, ScriptInvocation};

use super::internal;
use crate::error::StoreError;
use crate::model::{AUDIT_RETAIN, AuditEvent};

/// The Lua scripts, loaded once per process (EVALSHA, falling back to EVAL).
#[derive(Debug)]
pub(super) struct Scripts {
    pub(super) publish: Script,
    pub(super) yank: Script,
    pub(super) replace_index: Script,
    pub(super) owners: Script,
    pub(super) create_user: Script,
    pub(super) change_password: Script,
    pub(super) rehash_password: Script,
    pub(super) add_token: Script,
    pub(super) disable_user: Script,
    pub(super) revoke_token: Script,
    pub(super) acknowledge: Script,
    pub(super) keep_metadata: Script,
    pub(super) lease: Script,
    pub(super) rate: Script,
}

/// A script that records an audit event with its change: `audit.lua` comes first.
fn audited(script: &str) -> Script {
    Script::new(&[include_str!("scripts/audit.lua"), script].concat())
}

impl Scripts {
    pub(super) fn new() -> Self {
        Self {
            publish: Script::new(concat!(
                include_str!("scripts/audit.lua"),
                include_str!("scripts/commit_index_file.lua"),
                include_str!("scripts/publish.lua")
            )),
            yank: Script::new(concat!(
                include_str!("scripts/audit.lua"),
                include_str!("scripts/commit_index_file.lua"),
                include_str!("scripts/yank.lua")
            )),
            replace_index: Script::new(concat!(
                include_str!("scripts/commit_index_file.lua"),
                include_str!("scripts/replace_index.lua")
            )),
            owners: audited(include_str!("scripts/owners.lua")),
            create_user: audited(include_str!("scripts/create_user.lua")),
            change_password: audited(include_str!("scripts/change_password.lua")),
            rehash_password: Script::new(include_str!("scripts/rehash_password.lua")),
            add_token: audited(include_str!("scripts/add_token.lua")),
            disable_user: audited(include_str!("scripts/disable_user.lua")),
            revoke_token: audited(include_str!("scripts/revoke_token.lua")),
            acknowledge: Script::new(include_str!("scripts/acknowledge.lua")),
            keep_metadata: Script::new(include_str!("scripts/keep_metadata.lua")),
            lease: Script::new(include_str!("scripts/lease.lua")),
            rate: Script::new(include_str!("scripts/rate.lua")),
        }
    }
}

/// What `audit.lua` takes from a script's invocation.
pub(super) trait AuditArgs {
    /// Adds the audit stream as the last key, and the event and how many events the stream
    /// keeps as the last arguments: call it after the script's own keys and arguments.
    fn audit(&mut self, stream: String, event: &AuditEvent) -> Result<&mut Self, StoreError>;
}

impl AuditArgs for ScriptInvocation<'_> {
    fn audit(&mut self, stream: String, event: &AuditEvent) -> Result<&mut Self, StoreError> {
        let event = serde_json::to_string(event).map_err(internal)?;
        Ok(self.key(stream).arg(event).arg(AUDIT_RETAIN))
    }
}
