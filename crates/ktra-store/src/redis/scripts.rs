//! The Lua scripts that make each change of more than one key atomic (in `scripts/`).

use redis::Script;

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
    pub(super) lease: Script,
    pub(super) rate: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        Self {
            publish: Script::new(concat!(
                include_str!("scripts/commit_index_file.lua"),
                include_str!("scripts/publish.lua")
            )),
            yank: Script::new(concat!(
                include_str!("scripts/commit_index_file.lua"),
                include_str!("scripts/yank.lua")
            )),
            replace_index: Script::new(concat!(
                include_str!("scripts/commit_index_file.lua"),
                include_str!("scripts/replace_index.lua")
            )),
            owners: Script::new(include_str!("scripts/owners.lua")),
            create_user: Script::new(include_str!("scripts/create_user.lua")),
            change_password: Script::new(include_str!("scripts/change_password.lua")),
            rehash_password: Script::new(include_str!("scripts/rehash_password.lua")),
            add_token: Script::new(include_str!("scripts/add_token.lua")),
            disable_user: Script::new(include_str!("scripts/disable_user.lua")),
            revoke_token: Script::new(include_str!("scripts/revoke_token.lua")),
            acknowledge: Script::new(include_str!("scripts/acknowledge.lua")),
            lease: Script::new(include_str!("scripts/lease.lua")),
            rate: Script::new(include_str!("scripts/rate.lua")),
        }
    }
}
