//! The Redis metadata store, for deployments with several API replicas.
//!
//! One multiplexed connection, reconnected by itself after Redis restarts, serves every
//! request. Every change of more than one key is one Lua script, so it is atomic and checks its
//! preconditions in the same step: two replicas publishing the same version at once end with
//! exactly one success. Each version, crate file and user is its own key; nothing is
//! read-modify-written across processes. Search uses indexes kept as crates are published
//! (name trigrams, description words), so it never scans every crate. Key names come from
//! [`keys`].
//!
//! Keys are built in Rust and passed to scripts, except for token keys revoked by
//! `change_password` and `disable_user`, which the scripts derive from
//! [`keys::Keys::token_prefix`] and [`keys::Keys::user_tokens_prefix`]; the store
//! therefore runs on a single Redis (or a replicated primary), not on Redis Cluster.

mod connection;
pub mod keys;

pub use connection::RedisOptions;

use std::collections::{BTreeSet, HashMap};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use ktra_core::name::canonical_crate_name;
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, ErrorKind, RedisError, Script, ServerErrorKind, Value};
use serde::Deserialize;

use crate::error::StoreError;
use crate::metadata::MetadataStore;
use crate::model::{
    AUDIT_RETAIN, AuditEvent, AuditRecord, CrateFileRef, CrateSummary, DEFAULT_TOKEN_NAME,
    EXPIRED_TOKEN_KEPT, IndexFile, Invitation, MIN_SUBSTRING_QUERY, NewToken, NewVersion,
    OwnerActor, PendingChange, PendingSummary, SearchHit, SearchPage, StoredToken, TokenDetails,
    TokenId, TokenInfo, User, UserCredentials, UserId, VersionSummary, max_version, search_matches,
    search_rank, trigrams, version_key, words,
};
use keys::{Keys, SCHEMA};

/// The Lua scripts, loaded once per process (EVALSHA, falling back to EVAL).
#[derive(Debug)]
struct Scripts {
    publish: Script,
    yank: Script,
    replace_index: Script,
    owners: Script,
    create_user: Script,
    change_password: Script,
    rehash_password: Script,
    add_token: Script,
    disable_user: Script,
    revoke_token: Script,
    acknowledge: Script,
    lease: Script,
    rate: Script,
}

impl Scripts {
    fn new() -> Self {
        Self {
            publish: Script::new(concat!(
                include_str!("commit_index_file.lua"),
                include_str!("publish.lua")
            )),
            yank: Script::new(concat!(
                include_str!("commit_index_file.lua"),
                include_str!("yank.lua")
            )),
            replace_index: Script::new(concat!(
                include_str!("commit_index_file.lua"),
                include_str!("replace_index.lua")
            )),
            owners: Script::new(include_str!("owners.lua")),
            create_user: Script::new(include_str!("create_user.lua")),
            change_password: Script::new(include_str!("change_password.lua")),
            rehash_password: Script::new(include_str!("rehash_password.lua")),
            add_token: Script::new(include_str!("add_token.lua")),
            disable_user: Script::new(include_str!("disable_user.lua")),
            revoke_token: Script::new(include_str!("revoke_token.lua")),
            acknowledge: Script::new(include_str!("acknowledge.lua")),
            lease: Script::new(include_str!("lease.lua")),
            rate: Script::new(include_str!("rate.lua")),
        }
    }
}

/// The Redis-backed metadata store.
#[derive(Clone)]
pub struct RedisStore {
    primary: connection::Primary,
    keys: Keys,
    scripts: std::sync::Arc<Scripts>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

/// Sorts Redis failures: the server or the network being away is 503, anything else a bug.
fn classify(error: RedisError) -> StoreError {
    let transient = error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || matches!(
            error.kind(),
            ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::ReadOnly
                    | ServerErrorKind::ClusterDown
            )
        )
        // Redis refuses writes with MISCONF when it cannot persist them.
        || error.code() == Some("MISCONF");
    if transient {
        StoreError::Unavailable(error.to_string())
    } else {
        StoreError::Internal(error.to_string())
    }
}

fn internal(error: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(error.to_string())
}

fn millis(time: DateTime<Utc>) -> String {
    time.timestamp_millis().to_string()
}

fn from_millis(text: &str) -> Result<DateTime<Utc>, StoreError> {
    let value: i64 = text.parse().map_err(internal)?;
    DateTime::from_timestamp_millis(value).ok_or_else(|| internal("time out of range"))
}

/// The token fields scripts store beside the user and secret: name, expiry (ms or empty) and
/// scope (JSON), in that order, then when Redis drops the record (ms or empty).
fn token_fields(details: &TokenDetails) -> Result<[String; 4], StoreError> {
    Ok([
        details.name.clone(),
        details.expires_at.map(millis).unwrap_or_default(),
        serde_json::to_string(&details.scope).map_err(internal)?,
        details
            .expires_at
            .map(|at| millis(at + EXPIRED_TOKEN_KEPT))
            .unwrap_or_default(),
    ])
}

/// Reads a token hash's fields back.
fn token_details(fields: &HashMap<String, String>) -> Result<TokenDetails, StoreError> {
    let created_at = fields
        .get("created_at")
        .ok_or_else(|| internal("token record lacks created_at"))?;
    Ok(TokenDetails {
        name: fields
            .get("name")
            .filter(|name| !name.is_empty())
            .cloned()
            .unwrap_or_else(|| DEFAULT_TOKEN_NAME.to_owned()),
        created_at: from_millis(created_at)?,
        expires_at: match fields.get("expires_at").map(String::as_str) {
            None | Some("") => None,
            Some(text) => Some(from_millis(text)?),
        },
        scope: match fields.get("scope") {
            Some(json) => serde_json::from_str(json).map_err(internal)?,
            None => Default::default(),
        },
    })
}

/// The version record a script stores as JSON.
#[derive(Debug, Deserialize)]
struct VersionRecord {
    vers: String,
    cksum: String,
    blob_key: String,
    yanked: bool,
}

/// Reads the `{'ok', revision, content, etag, last_modified, name}` reply of the publish and
/// yank scripts, or their refusal.
fn index_file_reply(
    reply: Vec<Value>,
) -> Result<Result<IndexFile, (String, Option<String>)>, StoreError> {
    let text = |value: &Value| -> Result<String, StoreError> {
        redis::from_redis_value::<String>(value.clone()).map_err(internal)
    };
    let status = reply.first().map(text).transpose()?.unwrap_or_default();
    if status != "ok" {
        let detail = reply.get(1).map(text).transpose()?;
        return Ok(Err((status, detail)));
    }
    let [_, revision, content, etag, last_modified, name] = reply.as_slice() else {
        return Err(internal("the script answered an unexpected shape"));
    };
    let revision: u64 = redis::from_redis_value(revision.clone()).map_err(internal)?;
    let content: Vec<u8> = redis::from_redis_value(content.clone()).map_err(internal)?;
    Ok(Ok(IndexFile {
        name: text(name)?,
        content: Bytes::from(content),
        etag: text(etag)?,
        last_modified: from_millis(&text(last_modified)?)?,
        revision,
    }))
}

impl RedisStore {
    /// Connects to Redis at `url` (`redis://`, `rediss://` for TLS, with user and password in
    /// the URL when needed) and checks the layout under `prefix`.
    ///
    /// # Errors
    ///
    /// Fails when Redis cannot be reached or the data under the prefix has another layout.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, StoreError> {
        Self::connect_with(&RedisOptions::new(url, prefix)).await
    }

    /// Connects as `options` say: to one server, or to the primary Sentinel names (followed
    /// across failovers), and checks the layout under the prefix.
    ///
    /// # Errors
    ///
    /// Fails when Redis (or every sentinel) cannot be reached or the data under the prefix has
    /// another layout.
    pub async fn connect_with(options: &RedisOptions) -> Result<Self, StoreError> {
        let store = Self {
            primary: connection::Primary::connect(options).await?,
            keys: Keys::new(&options.prefix),
            scripts: std::sync::Arc::new(Scripts::new()),
        };
        store.check_schema().await?;
        Ok(store)
    }

    async fn check_schema(&self) -> Result<(), StoreError> {
        let mut connection = self.connection();
        let key = self.keys.schema();
        let _: bool = connection.set_nx(&key, SCHEMA).await.map_err(classify)?;
        let found: u32 = connection.get(&key).await.map_err(classify)?;
        if found != SCHEMA {
            return Err(StoreError::Internal(format!(
                "the data under {key} has layout {found}; this build reads layout {SCHEMA}"
            )));
        }
        Ok(())
    }

    fn connection(&self) -> ConnectionManager {
        self.primary.connection()
    }

    async fn user_by_id(&self, id: UserId) -> Result<User, StoreError> {
        let mut connection = self.connection();
        let lower: Option<String> = connection
            .get(self.keys.user_name(id))
            .await
            .map_err(classify)?;
        let lower = lower.ok_or_else(|| internal(format!("user id {id} has no name")))?;
        let name: Option<String> = connection
            .hget(self.keys.user(&lower), "name")
            .await
            .map_err(classify)?;
        Ok(User {
            id,
            name: name.ok_or_else(|| internal(format!("user `{lower}` has no record")))?,
        })
    }

    async fn users_by_name(&self, names: &[String]) -> Result<Vec<User>, StoreError> {
        let mut users = Vec::with_capacity(names.len());
        for name in names {
            let credentials = self
                .user_credentials(name)
                .await?
                .ok_or_else(|| StoreError::UserNotFound(name.clone()))?;
            users.push(credentials.user);
        }
        Ok(users)
    }

    async fn change_owners(
        &self,
        canonical: &str,
        actor: OwnerActor,
        names: &[String],
        add: bool,
    ) -> Result<Vec<User>, StoreError> {
        let users = self.users_by_name(names).await?;
        let mut invocation = self.scripts.owners.prepare_invoke();
        invocation
            .key(self.keys.krate(canonical))
            .key(self.keys.owners(canonical))
            .arg(if add { "add" } else { "remove" })
            .arg(match actor {
                OwnerActor::Owner(user) => user.to_string(),
                OwnerActor::Admin => String::new(),
            });
        for user in &users {
            invocation.arg(user.id);
        }
        let mut connection = self.primary.writer().await;
        let reply: Vec<Value> = invocation
            .invoke_async(&mut connection)
            .await
            .map_err(classify)?;
        self.primary.replicated(&mut connection).await?;
        let status: String = reply
            .first()
            .cloned()
            .map(redis::from_redis_value)
            .transpose()
            .map_err(internal)?
            .unwrap_or_default();
        let detail = || -> Result<String, StoreError> {
            reply
                .get(1)
                .cloned()
                .map(redis::from_redis_value::<String>)
                .transpose()
                .map_err(internal)
                .map(Option::unwrap_or_default)
        };
        match status.as_str() {
            "ok" => {
                let changed: Vec<UserId> = reply
                    .get(1)
                    .cloned()
                    .map(redis::from_redis_value)
                    .transpose()
                    .map_err(internal)?
                    .unwrap_or_default();
                Ok(users
                    .into_iter()
                    .filter(|user| changed.contains(&user.id))
                    .fold(Vec::new(), |mut unique, user| {
                        if !unique.contains(&user) {
                            unique.push(user);
                        }
                        unique
                    }))
            }
            "no_crate" => Err(StoreError::CrateNotFound(canonical.to_owned())),
            "not_owner" => Err(StoreError::NotOwner(detail()?)),
            "last_owner" => Err(StoreError::LastOwner(detail()?)),
            other => Err(internal(format!("owners script answered {other}"))),
        }
    }

    /// Returns the canonical names that may match a query, from the search indexes.
    async fn search_candidates(&self, query: &str) -> Result<BTreeSet<String>, StoreError> {
        let mut connection = self.connection();
        let folded = canonical_crate_name(query);
        let mut candidates = BTreeSet::new();
        if folded.chars().count() < MIN_SUBSTRING_QUERY {
            if !folded.is_empty() {
                let start = format!("[{folded}");
                let end = format!("[{folded}\u{ff}");
                let names: Vec<String> = connection
                    .zrangebylex(self.keys.crate_names(), start, end)
                    .await
                    .map_err(classify)?;
                candidates.extend(names);
            }
        } else {
            let grams: Vec<String> = trigrams(&folded)
                .iter()
                .map(|gram| self.keys.name_trigram(gram))
                .collect();
            let names: Vec<String> = connection.sinter(grams).await.map_err(classify)?;
            candidates.extend(names);
        }
        let query_words = words(query);
        if !query_words.is_empty() {
            let word_keys: Vec<String> = query_words
                .iter()
                .map(|word| self.keys.description_word(word))
                .collect();
            let names: Vec<String> = connection.sinter(word_keys).await.map_err(classify)?;
            candidates.extend(names);
        }
        Ok(candidates)
    }

    async fn version_summaries(&self, canonical: &str) -> Result<Vec<VersionSummary>, StoreError> {
        let raw: Vec<String> = self
            .connection()
            .hvals(self.keys.versions(canonical))
            .await
            .map_err(classify)?;
        let mut records: Vec<(u64, VersionSummary)> = raw
            .iter()
            .map(|text| {
                let value: serde_json::Value = serde_json::from_str(text).map_err(internal)?;
                let record: VersionRecord =
                    serde_json::from_value(value.clone()).map_err(internal)?;
                let line = value["line"].as_u64().unwrap_or(u64::MAX);
                Ok((
                    line,
                    VersionSummary {
                        version: record.vers,
                        yanked: record.yanked,
                    },
                ))
            })
            .collect::<Result<_, StoreError>>()?;
        records.sort_by_key(|(line, _)| *line);
        Ok(records.into_iter().map(|(_, summary)| summary).collect())
    }
}

#[async_trait]
impl MetadataStore for RedisStore {
    async fn ping(&self) -> Result<(), StoreError> {
        let _: String = redis::cmd("PING")
            .query_async(&mut self.connection())
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn create_user(
        &self,
        name: &str,
        password_hash: &str,
        token: NewToken,
    ) -> Result<User, StoreError> {
        self.insert_user(None, name, password_hash, token).await
    }

    async fn create_invited_user(
        &self,
        invitation: [u8; 32],
        name: &str,
        password_hash: &str,
        token: NewToken,
    ) -> Result<User, StoreError> {
        self.insert_user(Some(invitation), name, password_hash, token)
            .await
    }

    async fn create_invitation(&self, invitation: Invitation) -> Result<(), StoreError> {
        let expires_at = u64::try_from(invitation.expires_at.timestamp_millis())
            .map_err(|_| internal("invitation expiry before 1970"))?;
        let code = hex::encode(invitation.code_hash);
        let issued = self.keys.user_invitations(invitation.created_by);
        let mut connection = self.primary.writer().await;
        let _: () = redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(self.keys.invitation(&code))
            .arg(invitation.created_by)
            .arg("PXAT")
            .arg(expires_at)
            .ignore()
            .sadd(&issued, &code)
            .ignore()
            // The set of an active administrator's codes lives as long as the newest of them.
            .cmd("PEXPIREAT")
            .arg(&issued)
            .arg(expires_at)
            .arg("GT")
            .ignore()
            .cmd("PEXPIREAT")
            .arg(&issued)
            .arg(expires_at)
            .arg("NX")
            .ignore()
            .query_async(&mut connection)
            .await
            .map_err(classify)?;
        self.primary.replicated(&mut connection).await
    }

    async fn user_credentials(&self, name: &str) -> Result<Option<UserCredentials>, StoreError> {
        let fields: HashMap<String, String> = self
            .connection()
            .hgetall(self.keys.user(&name.to_lowercase()))
            .await
            .map_err(classify)?;
        if fields.is_empty() {
            return Ok(None);
        }
        let field = |key: &str| {
            fields
                .get(key)
                .cloned()
                .ok_or_else(|| internal(format!("user record lacks {key}")))
        };
        Ok(Some(UserCredentials {
            user: User {
                id: field("id")?.parse().map_err(internal)?,
                name: field("name")?,
            },
            password_hash: field("password_hash")?,
            disabled: fields.get("disabled").is_some_and(|value| value == "1"),
        }))
    }

    async fn add_token(&self, user: UserId, token: NewToken) -> Result<(), StoreError> {
        let owner = self.user_by_id(user).await?;
        let mut connection = self.primary.writer().await;
        let status: String = self
            .scripts
            .add_token
            .key(self.keys.user(&owner.name.to_lowercase()))
            .key(self.keys.user_tokens(user))
            .key(self.keys.token(&token.id.to_hex()))
            .arg(token.id.to_hex())
            .arg(hex::encode(token.secret_hash))
            .arg(millis(token.details.created_at))
            .arg(&token_fields(&token.details)?[..])
            .invoke_async(&mut connection)
            .await
            .map_err(classify)?;
        self.primary.replicated(&mut connection).await?;
        match status.as_str() {
            "ok" => Ok(()),
            "disabled" => Err(StoreError::UserDisabled(owner.name)),
            "no_user" => Err(StoreError::UserNotFound(owner.name)),
            other => Err(internal(format!("add_token script answered {other}"))),
        }
    }

    async fn list_tokens(&self, user: UserId) -> Result<Vec<TokenInfo>, StoreError> {
        let mut connection = self.connection();
        let ids: Vec<String> = connection
            .smembers(self.keys.user_tokens(user))
            .await
            .map_err(classify)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.hgetall(self.keys.token(id));
        }
        let records: Vec<HashMap<String, String>> =
            pipe.query_async(&mut connection).await.map_err(classify)?;
        let mut listed = Vec::with_capacity(ids.len());
        for (id, fields) in ids.iter().zip(records) {
            if fields.is_empty() {
                continue;
            }
            let mut raw = [0_u8; 8];
            hex::decode_to_slice(id, &mut raw).map_err(internal)?;
            listed.push(TokenInfo {
                id: TokenId(raw),
                details: token_details(&fields)?,
            });
        }
        listed.sort_by_key(|token| (token.details.created_at, token.id));
        Ok(listed)
    }

    async fn revoke_token(&self, user: UserId, id: TokenId) -> Result<(), StoreError> {
        let mut connection = self.primary.writer().await;
        let revoked: i64 = self
            .scripts
            .revoke_token
            .key(self.keys.user_tokens(user))
            .key(self.keys.token(&id.to_hex()))
            .arg(id.to_hex())
            .invoke_async(&mut connection)
            .await
            .map_err(classify)?;
        self.primary.replicated(&mut connection).await?;
        if revoked == 1 {
            Ok(())
        } else {
            Err(StoreError::TokenNotFound(id.to_hex()))
        }
    }

    async fn set_user_disabled(&self, name: &str, disabled: bool) -> Result<User, StoreError> {
        let mut connection = self.primary.writer().await;
        let reply: Vec<String> = self
            .scripts
            .disable_user
            .key(self.keys.user(&name.to_lowercase()))
            .arg(if disabled { "1" } else { "0" })
            .arg(self.keys.user_tokens_prefix())
            .arg(self.keys.token_prefix())
            .arg(self.keys.user_invitations_prefix())
            .arg(self.keys.invitation_prefix())
            .invoke_async(&mut connection)
            .await
            .map_err(classify)?;
        self.primary.replicated(&mut connection).await?;
        match reply.as_slice() {
            [status, id, name] if status == "ok" => Ok(User {
                id: id.parse().map_err(internal)?,
                name: name.clone(),
            }),
            [status] if status == "no_user" => Err(StoreError::UserNotFound(name.to_owned())),
            _ => Err(internal("disable_user script answered an unexpected shape")),
        }
    }

    async fn change_password(
        &self,
        user: UserId,
        old_password_hash: &str,
        new_password_hash: &str,
        token: NewToken,
    ) -> Result<(), StoreError> {
        let owner = self.user_by_id(user).await?;
        let mut connection = self.primary.writer().await;
        let changed: i64 = self
            .scripts
            .change_password
            .key(self.keys.user(&owner.name.to_lowercase()))
            .key(self.keys.user_tokens(user))
            .key(self.keys.token(&token.id.to_hex()))
            .arg(old_password_hash)
            .arg(new_password_hash)
            .arg(self.keys.token_prefix())
            .arg(token.id.to_hex())
            .arg(hex::encode(token.secret_hash))
            .arg(millis(token.details.created_at))
            .arg(&token_fields(&token.details)?[..])
            .invoke_async(&mut connection)
            .await
            .map_err(classify)?;
        self.primary.replicated(&mut connection).await?;
        match changed {
            1 => Ok(()),
            -1 => Err(StoreError::UserDisabled(owner.name)),
            _ => Err(StoreError::PasswordChanged),
        }
    }

    async fn rehash_password(
        &self,
        user: UserId,
        old_password_hash: &str,
        new_password_hash: &str,
    ) -> Result<bool, StoreError> {
        let lower: Option<String> = self
            .connection()
            .get(self.keys.user_name(user))
            .await
            .map_err(classify)?;
        let Some(lower) = lower else {
            return Ok(false);
        };
        let mut connection = self.primary.writer().await;
        let replaced: i64 = self
            .scripts
            .rehash_password
            .key(self.keys.user(&lower))
            .arg(old_password_hash)
            .arg(new_password_hash)
            .invoke_async(&mut connection)
            .await
            .map_err(classify)?;
        self.primary.replicated(&mut connection).await?;
        Ok(replaced == 1)
    }

    async fn token(&self, id: TokenId) -> Result<Option<StoredToken>, StoreError> {
        let fields: HashMap<String, String> = self
            .connection()
            .hgetall(self.keys.token(&id.to_hex()))
            .await
            .map_err(classify)?;
        if fields.is_empty() {
            return Ok(None);
        }
        let field = |key: &str| {
            fields
                .get(key)
                .cloned()
                .ok_or_else(|| internal(format!("token record lacks {key}")))
        };
        let mut secret_hash = [0_u8; 32];
        hex::decode_to_slice(field("secret_hash")?, &mut secret_hash).map_err(internal)?;
        Ok(Some(StoredToken {
            id,
            user: User {
                id: field("user")?.parse().map_err(internal)?,
                name: field("user_name")?,
            },
            secret_hash,
            details: token_details(&fields)?,
        }))
    }

    async fn crate_summary(&self, canonical: &str) -> Result<Option<CrateSummary>, StoreError> {
        let Some((name, owners)) = self.name_and_owners(canonical).await? else {
            return Ok(None);
        };
        Ok(Some(CrateSummary {
            name,
            owners,
            versions: self.version_summaries(canonical).await?,
        }))
    }

    async fn publish(&self, new: NewVersion) -> Result<IndexFile, StoreError> {
        let canonical = canonical_crate_name(&new.line.name);
        let key = version_key(&new.version);
        let mut invocation = self.scripts.publish.prepare_invoke();
        invocation
            .key(self.keys.krate(&canonical))
            .key(self.keys.versions(&canonical))
            .key(self.keys.owners(&canonical))
            .key(self.keys.pending())
            .key(self.keys.crate_names())
            .key(self.keys.audit())
            .key(self.keys.pending_since());
        for gram in trigrams(&canonical) {
            invocation.key(self.keys.name_trigram(&gram));
        }
        for word in words(new.description.as_deref().unwrap_or_default()) {
            invocation.key(self.keys.description_word(&word));
        }
        invocation
            .arg(&canonical)
            .arg(&new.line.name)
            .arg(&key)
            .arg(&new.line.vers)
            .arg(&new.line.cksum)
            .arg(&new.blob_key)
            .arg(new.line.to_json())
            .arg(new.publisher)
            .arg(new.description.as_deref().unwrap_or_default())
            .arg(if new.description.is_some() { "1" } else { "0" })
            .arg(millis(new.published_at))
            .arg(match &new.audit {
                Some(event) => serde_json::to_string(event).map_err(internal)?,
                None => String::new(),
            })
            .arg(AUDIT_RETAIN)
            .arg(match new.crate_exists {
                Some(true) => "1",
                Some(false) => "0",
                None => "",
            });
        let mut connection = self.primary.writer().await;
        let reply: Vec<Value> = invocation
            .invoke_async(&mut connection)
            .await
            .map_err(classify)?;
        match index_file_reply(reply)? {
            Ok(file) => {
                // Only a change waits for replicas: a refusal wrote nothing.
                self.primary.replicated(&mut connection).await?;
                Ok(file)
            }
            Err((status, detail)) => {
                let detail = detail.unwrap_or_default();
                Err(match status.as_str() {
                    "taken" => StoreError::NameTaken {
                        name: new.line.name,
                        existing: detail,
                    },
                    "not_owner" => StoreError::NotOwner(detail),
                    "changed" => StoreError::CrateChanged(detail),
                    "duplicate" => StoreError::DuplicateVersion {
                        name: new.line.name,
                        version: detail,
                    },
                    other => internal(format!("publish script answered {other}")),
                })
            }
        }
    }

    async fn set_yanked(
        &self,
        canonical: &str,
        version: &semver::Version,
        yanked: bool,
        actor: UserId,
        audit: Option<AuditEvent>,
    ) -> Result<(IndexFile, bool), StoreError> {
        let mut connection = self.primary.writer().await;
        let mut reply: Vec<Value> = self
            .scripts
            .yank
            .key(self.keys.krate(canonical))
            .key(self.keys.versions(canonical))
            .key(self.keys.owners(canonical))
            .key(self.keys.pending())
            .key(self.keys.audit())
            .key(self.keys.pending_since())
            .arg(canonical)
            .arg(version_key(version))
            .arg(if yanked { "1" } else { "0" })
            .arg(actor)
            .arg(millis(Utc::now()))
            .arg(match &audit {
                Some(event) => serde_json::to_string(event).map_err(internal)?,
                None => String::new(),
            })
            .arg(AUDIT_RETAIN)
            .invoke_async(&mut connection)
            .await
            .map_err(classify)?;
        let unchanged =
            matches!(reply.first(), Some(Value::BulkString(status)) if status == b"unchanged");
        if unchanged {
            reply[0] = Value::SimpleString("ok".to_owned());
        }
        match index_file_reply(reply)? {
            Ok(file) => {
                // Only a change waits for replicas: an unchanged flag or a refusal wrote nothing.
                if !unchanged {
                    self.primary.replicated(&mut connection).await?;
                }
                Ok((file, !unchanged))
            }
            Err((status, detail)) => Err(match status.as_str() {
                "no_crate" => StoreError::CrateNotFound(canonical.to_owned()),
                "not_owner" => StoreError::NotOwner(detail.unwrap_or_default()),
                "no_version" => StoreError::VersionNotFound {
                    name: detail.unwrap_or_default(),
                    version: version.to_string(),
                },
                other => internal(format!("yank script answered {other}")),
            }),
        }
    }

    async fn replace_index_file(
        &self,
        canonical: &str,
        revision: u64,
        content: Bytes,
    ) -> Result<Option<IndexFile>, StoreError> {
        let mut connection = self.primary.writer().await;
        let reply: Vec<Value> = self
            .scripts
            .replace_index
            .key(self.keys.krate(canonical))
            .key(self.keys.pending())
            .key(self.keys.pending_since())
            .arg(canonical)
            .arg(revision)
            .arg(content.as_ref())
            .arg(millis(Utc::now()))
            .invoke_async(&mut connection)
            .await
            .map_err(classify)?;
        self.primary.replicated(&mut connection).await?;
        match index_file_reply(reply)? {
            Ok(file) => Ok(Some(file)),
            Err((status, _)) => match status.as_str() {
                "moved" => Ok(None),
                "no_crate" => Err(StoreError::CrateNotFound(canonical.to_owned())),
                other => Err(internal(format!("replace script answered {other}"))),
            },
        }
    }

    async fn owners(&self, canonical: &str) -> Result<Option<Vec<User>>, StoreError> {
        let Some((_, owners)) = self.name_and_owners(canonical).await? else {
            return Ok(None);
        };
        let mut users = Vec::with_capacity(owners.len());
        for id in owners {
            users.push(self.user_by_id(id).await?);
        }
        Ok(Some(users))
    }

    async fn add_owners(
        &self,
        canonical: &str,
        actor: OwnerActor,
        names: &[String],
    ) -> Result<Vec<User>, StoreError> {
        self.change_owners(canonical, actor, names, true).await
    }

    async fn remove_owners(
        &self,
        canonical: &str,
        actor: OwnerActor,
        names: &[String],
    ) -> Result<Vec<User>, StoreError> {
        self.change_owners(canonical, actor, names, false).await
    }

    async fn search(&self, query: &str, offset: u64, limit: u64) -> Result<SearchPage, StoreError> {
        let query_lower = query.to_lowercase();
        let candidates = self.search_candidates(&query_lower).await?;
        let mut connection = self.connection();
        let mut matches = Vec::new();
        for canonical in candidates {
            let (name, description): (Option<String>, Option<String>) = connection
                .hmget(self.keys.krate(&canonical), &["name", "description"])
                .await
                .map_err(classify)?;
            let Some(name) = name else {
                continue;
            };
            // The indexes may hold stale words; the current description decides.
            if search_matches(&query_lower, &canonical, description.as_deref()) {
                matches.push((search_rank(&query_lower, &canonical), name, description));
            }
        }
        matches.sort_by(|a, b| a.0.cmp(&b.0));
        let total = u64::try_from(matches.len()).map_err(internal)?;
        let skip = usize::try_from(offset).unwrap_or(usize::MAX);
        let take = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut hits = Vec::new();
        for ((_, canonical), name, description) in matches.into_iter().skip(skip).take(take) {
            let versions = self.version_summaries(&canonical).await?;
            hits.push(SearchHit {
                name,
                max_version: max_version(&versions),
                description,
            });
        }
        Ok(SearchPage { hits, total })
    }

    async fn index_file(&self, canonical: &str) -> Result<Option<IndexFile>, StoreError> {
        // One command reads the file and its validators together, so they always agree.
        let (name, revision, etag, last_modified, content): (
            Option<String>,
            Option<u64>,
            Option<String>,
            Option<String>,
            Option<Vec<u8>>,
        ) = self
            .connection()
            .hmget(
                self.keys.krate(canonical),
                &["name", "revision", "etag", "last_modified", "index"],
            )
            .await
            .map_err(classify)?;
        let (Some(name), Some(revision), Some(etag), Some(last_modified), Some(content)) =
            (name, revision, etag, last_modified, content)
        else {
            return Ok(None);
        };
        Ok(Some(IndexFile {
            name,
            content: Bytes::from(content),
            etag,
            last_modified: from_millis(&last_modified)?,
            revision,
        }))
    }

    async fn index_validators(&self, canonical: &str) -> Result<Option<IndexFile>, StoreError> {
        let (name, revision, etag, last_modified): (
            Option<String>,
            Option<u64>,
            Option<String>,
            Option<String>,
        ) = self
            .connection()
            .hmget(
                self.keys.krate(canonical),
                &["name", "revision", "etag", "last_modified"],
            )
            .await
            .map_err(classify)?;
        let (Some(name), Some(revision), Some(etag), Some(last_modified)) =
            (name, revision, etag, last_modified)
        else {
            return Ok(None);
        };
        Ok(Some(IndexFile {
            name,
            content: Bytes::new(),
            etag,
            last_modified: from_millis(&last_modified)?,
            revision,
        }))
    }

    async fn crate_file(
        &self,
        canonical: &str,
        version: &semver::Version,
    ) -> Result<Option<CrateFileRef>, StoreError> {
        let (name, record): (Option<String>, Option<String>) = redis::pipe()
            .hget(self.keys.krate(canonical), "name")
            .hget(self.keys.versions(canonical), version_key(version))
            .query_async(&mut self.connection())
            .await
            .map_err(classify)?;
        let (Some(name), Some(record)) = (name, record) else {
            return Ok(None);
        };
        let record: VersionRecord = serde_json::from_str(&record).map_err(internal)?;
        Ok(Some(CrateFileRef {
            name,
            version: record.vers,
            blob_key: record.blob_key,
            cksum: record.cksum,
        }))
    }

    async fn pending_changes(&self, limit: usize) -> Result<Vec<PendingChange>, StoreError> {
        let mut connection = self.connection();
        let mut cursor: u64 = 0;
        let mut changes = Vec::new();
        loop {
            let (next, entries): (u64, Vec<(String, u64)>) = redis::cmd("HSCAN")
                .arg(self.keys.pending())
                .arg(cursor)
                .arg("COUNT")
                .arg(limit.max(10))
                .query_async(&mut connection)
                .await
                .map_err(classify)?;
            for (canonical, revision) in entries {
                if changes.len() < limit {
                    changes.push(PendingChange {
                        canonical,
                        revision,
                    });
                }
            }
            cursor = next;
            if cursor == 0 || changes.len() >= limit {
                return Ok(changes);
            }
        }
    }

    async fn pending_summary(&self) -> Result<PendingSummary, StoreError> {
        let (crates, oldest): (u64, Vec<(String, i64)>) = redis::pipe()
            .hlen(self.keys.pending())
            .zrange_withscores(self.keys.pending_since(), 0, 0)
            .query_async(&mut self.connection())
            .await
            .map_err(classify)?;
        Ok(PendingSummary {
            crates,
            oldest: oldest
                .first()
                .and_then(|(_, since)| DateTime::from_timestamp_millis(*since)),
        })
    }

    async fn acknowledge(&self, canonical: &str, revision: u64) -> Result<bool, StoreError> {
        let cleared: i64 = self
            .scripts
            .acknowledge
            .key(self.keys.pending())
            .key(self.keys.pending_since())
            .arg(canonical)
            .arg(revision)
            .invoke_async(&mut self.connection())
            .await
            .map_err(classify)?;
        Ok(cleared == 1)
    }

    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreError> {
        let held: i64 = self
            .scripts
            .lease
            .key(self.keys.lease(name))
            .arg(holder)
            .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1))
            .invoke_async(&mut self.connection())
            .await
            .map_err(classify)?;
        Ok(held == 1)
    }

    async fn count_hit(
        &self,
        bucket: &str,
        window: std::time::Duration,
    ) -> Result<(u64, std::time::Duration), StoreError> {
        let (hits, left): (u64, u64) = self
            .scripts
            .rate
            .key(self.keys.rate(bucket))
            .arg(u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1))
            .invoke_async(&mut self.connection())
            .await
            .map_err(classify)?;
        Ok((hits, std::time::Duration::from_millis(left)))
    }

    async fn crate_names(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let start = match after {
            Some(after) => format!("({after}"),
            None => "-".to_owned(),
        };
        self.connection()
            .zrangebylex_limit(
                self.keys.crate_names(),
                start,
                "+",
                0,
                isize::try_from(limit).unwrap_or(isize::MAX),
            )
            .await
            .map_err(classify)
    }

    async fn record_audit(&self, event: AuditEvent) -> Result<(), StoreError> {
        let _: String = redis::cmd("XADD")
            .arg(self.keys.audit())
            .arg("MAXLEN")
            .arg("~")
            .arg(AUDIT_RETAIN)
            .arg("*")
            .arg("event")
            .arg(serde_json::to_string(&event).map_err(internal)?)
            .query_async(&mut self.connection())
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn audit_events(
        &self,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let end = match before {
            Some(cursor) => {
                let valid = cursor.split_once('-').is_some_and(|(ms, seq)| {
                    ms.parse::<u64>().is_ok() && seq.parse::<u64>().is_ok()
                });
                if !valid {
                    return Err(StoreError::InvalidCursor(cursor.to_owned()));
                }
                format!("({cursor}")
            }
            None => "+".to_owned(),
        };
        let entries: Vec<(String, HashMap<String, String>)> = redis::cmd("XREVRANGE")
            .arg(self.keys.audit())
            .arg(end)
            .arg("-")
            .arg("COUNT")
            .arg(limit)
            .query_async(&mut self.connection())
            .await
            .map_err(classify)?;
        entries
            .into_iter()
            .map(|(cursor, fields)| {
                let json = fields
                    .get("event")
                    .ok_or_else(|| internal("audit entry lacks its event"))?;
                Ok(AuditRecord {
                    cursor,
                    event: serde_json::from_str(json).map_err(internal)?,
                })
            })
            .collect()
    }
}

impl RedisStore {
    /// Creates a user and their first token, using up an invitation when one is given.
    async fn insert_user(
        &self,
        invitation: Option<[u8; 32]>,
        name: &str,
        password_hash: &str,
        token: NewToken,
    ) -> Result<User, StoreError> {
        let mut connection = self.primary.writer().await;
        let lower = name.to_lowercase();
        if let Some(code_hash) = invitation {
            let known: bool = connection
                .exists(self.keys.invitation(&hex::encode(code_hash)))
                .await
                .map_err(classify)?;
            if !known {
                return Err(StoreError::InvitationInvalid);
            }
        }
        if connection
            .exists::<_, bool>(self.keys.user(&lower))
            .await
            .map_err(classify)?
        {
            return Err(StoreError::UserExists(name.to_owned()));
        }
        // Ids are never reused; a lost race below only leaves a gap.
        let id: u64 = connection
            .incr(self.keys.next_user_id(), 1)
            .await
            .map_err(classify)?;
        let id = UserId::try_from(id).map_err(|_| internal("user ids exhausted"))?;
        let mut invocation = self.scripts.create_user.prepare_invoke();
        invocation
            .key(self.keys.user(&lower))
            .key(self.keys.user_name(id))
            .key(self.keys.token(&token.id.to_hex()))
            .key(self.keys.user_tokens(id));
        if let Some(code_hash) = invitation {
            invocation.key(self.keys.invitation(&hex::encode(code_hash)));
        }
        invocation
            .arg(id)
            .arg(name)
            .arg(password_hash)
            .arg(millis(token.details.created_at))
            .arg(token.id.to_hex())
            .arg(hex::encode(token.secret_hash))
            .arg(&token_fields(&token.details)?[..]);
        let created: i64 = invocation
            .invoke_async(&mut connection)
            .await
            .map_err(classify)?;
        self.primary.replicated(&mut connection).await?;
        match created {
            1 => Ok(User {
                id,
                name: name.to_owned(),
            }),
            -1 => Err(StoreError::InvitationInvalid),
            _ => Err(StoreError::UserExists(name.to_owned())),
        }
    }

    /// Returns a crate's name and its owners' ids in ascending order.
    async fn name_and_owners(
        &self,
        canonical: &str,
    ) -> Result<Option<(String, Vec<UserId>)>, StoreError> {
        let (name, mut owners): (Option<String>, Vec<UserId>) = redis::pipe()
            .hget(self.keys.krate(canonical), "name")
            .smembers(self.keys.owners(canonical))
            .query_async(&mut self.connection())
            .await
            .map_err(classify)?;
        owners.sort_unstable();
        Ok(name.map(|name| (name, owners)))
    }
}
