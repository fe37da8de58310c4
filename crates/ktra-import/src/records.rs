//! Ktra's records, as its databases hold them (JSON text; `docs/ktra-data-layout.md`,
//! sections 2 and 3), and the whole database once read.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The key of the users list (`Vec<KtraUser>`).
pub const USERS_KEY: &str = "__USERS__";
/// The key of the password map (user id to Argon2 PHC string).
pub const PASSWORDS_KEY: &str = "__PASSWORDS__";
/// The key of the token map (user id to the token in plain text).
pub const TOKENS_KEY: &str = "__TOKENS__";
/// The token map's key before Ktra 0.4.1, which migrated it on open.
pub const LEGACY_TOKENS_KEY: &str = "tokens";

/// A Ktra user.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct KtraUser {
    /// Ktra's numeric id, the key of the password and token maps and of `owner_ids`.
    pub id: u32,
    /// The login: the configured `login_prefix` and the name.
    pub login: String,
    /// The name as registered.
    pub name: Option<String>,
}

/// One crate: every version's publish metadata and the owners. Ktra keys it by the name in
/// lower case with `-` and `_` written `=`.
#[derive(Debug, Clone, Deserialize)]
pub struct KtraEntry {
    /// Version string to metadata.
    pub versions: BTreeMap<String, KtraMetadata>,
    /// Owners, by user id.
    pub owner_ids: Vec<u32>,
}

/// What cargo sent at publish, as Ktra kept it, plus the yanked flag. Only the fields an
/// import uses are read.
#[derive(Debug, Clone, Deserialize)]
pub struct KtraMetadata {
    /// The crate name, in the case it was published with.
    pub name: String,
    /// The version.
    pub vers: String,
    /// Dependencies as cargo sent them.
    #[serde(default)]
    pub deps: Vec<KtraMetadataDependency>,
    /// The description.
    pub description: Option<String>,
    /// Whether Ktra's database says the version is yanked.
    #[serde(default)]
    pub yanked: bool,
}

/// A dependency as cargo sent it at publish.
#[derive(Debug, Clone, Deserialize)]
pub struct KtraMetadataDependency {
    /// The real name of the dependency.
    pub name: String,
    /// The name the dependent gave it, when renamed.
    pub explicit_name_in_toml: Option<String>,
}

/// A Ktra database, read whole.
#[derive(Debug, Default)]
pub struct KtraDatabase {
    /// Users, as listed.
    pub users: Vec<KtraUser>,
    /// User id to password hash.
    pub passwords: BTreeMap<u32, String>,
    /// User id to token.
    pub tokens: BTreeMap<u32, String>,
    /// Ktra's crate key to the entry, or why it could not be read.
    pub entries: BTreeMap<String, Result<KtraEntry, String>>,
}

/// Why a database could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    /// The database could not be opened or read.
    #[error("{0}")]
    Unavailable(String),
    /// One of the user, password or token records is not what Ktra writes.
    #[error("Ktra's `{key}` record is unreadable: {error}")]
    Record {
        /// The record's key.
        key: &'static str,
        /// Why.
        error: serde_json::Error,
    },
}

impl KtraDatabase {
    /// Builds the database from its records: key and value, as sled and Redis hold them
    /// (Redis's `ktra:` prefix already removed). Crates are every key not starting with `__`
    /// (Ktra's names start with a letter), except the pre-0.4.1 token map.
    ///
    /// # Errors
    ///
    /// When the users, passwords or tokens record does not parse: without them no user can be
    /// imported, so nothing is.
    pub fn from_records(
        records: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
    ) -> Result<Self, DatabaseError> {
        let mut database = Self::default();
        let mut tokens_record = None;
        let mut current_tokens = false;
        for (key, value) in records {
            let key = String::from_utf8_lossy(&key).into_owned();
            match key.as_str() {
                USERS_KEY => database.users = parse(USERS_KEY, &value)?,
                PASSWORDS_KEY => database.passwords = parse(PASSWORDS_KEY, &value)?,
                TOKENS_KEY => {
                    database.tokens = parse(TOKENS_KEY, &value)?;
                    current_tokens = true;
                }
                LEGACY_TOKENS_KEY => tokens_record = Some(value),
                other if other.starts_with("__") => {}
                _ => {
                    let entry = serde_json::from_slice(&value).map_err(|error| error.to_string());
                    database.entries.insert(key, entry);
                }
            }
        }
        // Before 0.4.1 the token map was `tokens`; Ktra 0.4.1 and later moved it to
        // `__TOKENS__` on open and deleted it, after which a crate named `tokens` may hold the
        // key. So `tokens` is the old map only where there is no new one and it reads as one.
        if let Some(value) = tokens_record {
            match serde_json::from_slice::<BTreeMap<u32, String>>(&value) {
                Ok(tokens) if !current_tokens => database.tokens = tokens,
                _ => {
                    let entry = serde_json::from_slice(&value).map_err(|error| error.to_string());
                    database.entries.insert(LEGACY_TOKENS_KEY.to_owned(), entry);
                }
            }
        }
        Ok(database)
    }
}

fn parse<T: serde::de::DeserializeOwned>(
    key: &'static str,
    value: &[u8],
) -> Result<T, DatabaseError> {
    serde_json::from_slice(value).map_err(|error| DatabaseError::Record { key, error })
}

/// Ktra's key for a crate name: lower case, `-` and `_` written `=`.
pub fn ktra_key(name: &str) -> String {
    name.to_ascii_lowercase().replace(['-', '_'], "=")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &str, value: &str) -> (Vec<u8>, Vec<u8>) {
        (key.as_bytes().to_vec(), value.as_bytes().to_vec())
    }

    #[test]
    fn records_as_ktra_writes_them_are_read() {
        let database = KtraDatabase::from_records([
            (b"__SCHEMA_VERSION__".to_vec(), vec![0, 0, 0, 0, 0, 0, 0, 3]),
            record(
                "__USERS__",
                r#"[{"id":0,"login":"ktra-secure-auth:alice","name":"alice"}]"#,
            ),
            record("__PASSWORDS__", r#"{"0":"$argon2id$v=19$m=4096,t=3,p=4$c2FsdA$aGFzaA"}"#),
            record("__TOKENS__", r#"{"0":"aQkGKnM77Wa1SYkXiPPIqbkWvcIM5G8U"}"#),
            record("__OAUTH_NONCES__", "{}"),
            record(
                "tiny=crate",
                r#"{"versions":{"0.1.0":{"name":"tiny-crate","vers":"0.1.0","deps":[],"features":{},"authors":[],"description":"d","links":null,"yanked":true}},"owner_ids":[0]}"#,
            ),
            record("broken", "{"),
        ])
        .unwrap();
        assert_eq!(database.users[0].login, "ktra-secure-auth:alice");
        assert_eq!(database.tokens[&0], "aQkGKnM77Wa1SYkXiPPIqbkWvcIM5G8U");
        assert!(database.passwords[&0].starts_with("$argon2id$"));
        let entry = database.entries["tiny=crate"].as_ref().unwrap();
        assert!(entry.versions["0.1.0"].yanked);
        assert_eq!(entry.owner_ids, [0]);
        assert!(database.entries["broken"].is_err());
        assert_eq!(database.entries.len(), 2);
    }

    #[test]
    fn the_token_map_of_ktra_before_0_4_1_is_read() {
        let database = KtraDatabase::from_records([record(
            "tokens",
            r#"{"3":"abcdefghijklmnopqrstuvwxyzABCDEF"}"#,
        )])
        .unwrap();
        assert_eq!(database.tokens[&3], "abcdefghijklmnopqrstuvwxyzABCDEF");
        assert!(database.entries.is_empty());
    }

    #[test]
    fn a_crate_named_tokens_is_a_crate_once_the_token_map_moved() {
        let database = KtraDatabase::from_records([
            record("__TOKENS__", r#"{"0":"abcdefghijklmnopqrstuvwxyzABCDEF"}"#),
            record(
                "tokens",
                r#"{"versions":{"0.1.0":{"name":"tokens","vers":"0.1.0"}},"owner_ids":[0]}"#,
            ),
        ])
        .unwrap();
        assert_eq!(database.tokens.len(), 1);
        assert!(database.entries["tokens"].is_ok());
    }

    #[test]
    fn an_unreadable_users_record_stops_the_read() {
        let error = KtraDatabase::from_records([record("__USERS__", "nope")]).unwrap_err();
        assert!(error.to_string().contains("__USERS__"), "{error}");
    }

    #[test]
    fn keys_fold_case_and_separators_as_ktra_does() {
        assert_eq!(ktra_key("Other_Crate"), "other=crate");
        assert_eq!(ktra_key("tiny-crate"), "tiny=crate");
    }
}
