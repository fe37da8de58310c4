//! Every Redis key the store uses, built in one place.
//!
//! Keys live under `{prefix}:v{SCHEMA}:`, so two registries can share a Redis and a future
//! layout can sit beside this one while a migration runs. `{prefix}:schema` records which
//! layout the data under the prefix follows.

/// The layout version of the keys below.
pub const SCHEMA: u32 = 1;

/// Builds key names for one prefix.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
    base: String,
}

impl Keys {
    /// Keys under `prefix` (e.g. `ktra`).
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            base: format!("{prefix}:v{SCHEMA}"),
        }
    }

    /// The layout version of the data under the prefix.
    pub fn schema(&self) -> String {
        format!("{}:schema", self.prefix)
    }

    /// A counter handing out user ids.
    pub fn next_user_id(&self) -> String {
        format!("{}:next_user_id", self.base)
    }

    /// A user's record (hash), by lower-case name.
    pub fn user(&self, lower_name: &str) -> String {
        format!("{}:user:{lower_name}", self.base)
    }

    /// A user's lower-case name (string), by id.
    pub fn user_name(&self, id: u32) -> String {
        format!("{}:user_name:{id}", self.base)
    }

    /// The ids of a user's tokens (set).
    pub fn user_tokens(&self, id: u32) -> String {
        format!("{}{id}", self.user_tokens_prefix())
    }

    /// What precedes a user id in the key of the user's tokens; scripts append ids to it.
    pub fn user_tokens_prefix(&self) -> String {
        format!("{}:user_tokens:", self.base)
    }

    /// An invitation (string holding the inviter's id, expiring with the invitation), by the
    /// hex SHA-256 of its code.
    pub fn invitation(&self, code_hash_hex: &str) -> String {
        format!("{}{code_hash_hex}", self.invitation_prefix())
    }

    /// What precedes a code hash in an invitation's key; scripts append hashes to it.
    pub fn invitation_prefix(&self) -> String {
        format!("{}:invitation:", self.base)
    }

    /// The code hashes of the invitations a user issued (set).
    pub fn user_invitations(&self, id: u32) -> String {
        format!("{}{id}", self.user_invitations_prefix())
    }

    /// What precedes a user id in the key of the user's invitations; scripts append ids to it.
    pub fn user_invitations_prefix(&self) -> String {
        format!("{}:user_invitations:", self.base)
    }

    /// The audit log (stream of `event` fields holding JSON).
    pub fn audit(&self) -> String {
        format!("{}:audit", self.base)
    }

    /// A token's record (hash), by hex id.
    pub fn token(&self, id_hex: &str) -> String {
        format!("{}{id_hex}", self.token_prefix())
    }

    /// What precedes a token's hex id in its key; scripts that revoke tokens append ids to it.
    pub fn token_prefix(&self) -> String {
        format!("{}:token:", self.base)
    }

    /// A crate's record (hash): name, description, revision, version count,
    /// last_modified, created_at, newest_version, downloads, and `index`, the crate's index
    /// file.
    pub fn krate(&self, canonical: &str) -> String {
        format!("{}:crate:{canonical}", self.base)
    }

    /// A crate's versions (hash): version without build metadata to version record.
    pub fn versions(&self, canonical: &str) -> String {
        format!("{}:versions:{canonical}", self.base)
    }

    /// What each of a crate's versions says about itself (hash): version key to
    /// `VersionMetadata` (JSON).
    pub fn version_metadata(&self, canonical: &str) -> String {
        format!("{}:version_metadata:{canonical}", self.base)
    }

    /// A crate's READMEs (hash): version key to the README's text.
    pub fn readmes(&self, canonical: &str) -> String {
        format!("{}:readmes:{canonical}", self.base)
    }

    /// A crate's downloads per version (hash): version key to count. The crate's total is
    /// the `downloads` field of its record.
    pub fn downloads(&self, canonical: &str) -> String {
        format!("{}:downloads:{canonical}", self.base)
    }

    /// A crate's downloads per day (hash): `{YYYY-MM-DD}|{version key}` to count.
    pub fn downloads_by_day(&self, canonical: &str) -> String {
        format!("{}:downloads_by_day:{canonical}", self.base)
    }

    /// A crate's owners' ids (set).
    pub fn owners(&self, canonical: &str) -> String {
        format!("{}:owners:{canonical}", self.base)
    }

    /// Crates the indexer has not acknowledged (hash): canonical name to revision.
    pub fn pending(&self) -> String {
        format!("{}:pending", self.base)
    }

    /// When each crate in [`Keys::pending`] got its mark (sorted set, scores in milliseconds
    /// since the epoch): the oldest change still waiting for the indexer comes first.
    pub fn pending_since(&self) -> String {
        format!("{}:pending_since", self.base)
    }

    /// Every canonical crate name (sorted set, all scores 0, for lexical ranges).
    pub fn crate_names(&self) -> String {
        format!("{}:crates", self.base)
    }

    /// Crates whose canonical name holds a three-character window (set).
    pub fn name_trigram(&self, trigram: &str) -> String {
        format!("{}:search:name:{trigram}", self.base)
    }

    /// Crates whose description held a word at some publish (set; search re-checks the
    /// current description).
    pub fn description_word(&self, word: &str) -> String {
        format!("{}:search:word:{word}", self.base)
    }

    /// A browser session (hash: user, csrf, expires_at in ms; expiring with the session), by
    /// the hex SHA-256 of its cookie's secret.
    pub fn session(&self, id_hash_hex: &str) -> String {
        format!("{}:session:{id_hash_hex}", self.base)
    }

    /// The hex hashes of a user's sessions (set, expiring with the last of them).
    pub fn user_sessions(&self, id: u32) -> String {
        format!("{}:user_sessions:{id}", self.base)
    }

    /// A lease (string holding the holder's name, with a time to live).
    pub fn lease(&self, name: &str) -> String {
        format!("{}:lease:{name}", self.base)
    }

    /// A rate-limit counter (integer, expiring with its window).
    pub fn rate(&self, bucket: &str) -> String {
        format!("{}:rate:{bucket}", self.base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_prefixed_and_versioned() {
        let keys = Keys::new("acme");
        assert_eq!(keys.schema(), "acme:schema");
        assert_eq!(keys.krate("foo_bar"), "acme:v1:crate:foo_bar");
        assert_eq!(keys.token("00ff"), "acme:v1:token:00ff");
        assert!(keys.token("00ff").starts_with(&keys.token_prefix()));
        assert!(keys.user_tokens(7).starts_with(&keys.user_tokens_prefix()));
        assert_eq!(keys.name_trigram("ser"), "acme:v1:search:name:ser");
    }
}
