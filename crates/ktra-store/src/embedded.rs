//! The embedded metadata store: one redb file, for single-node registries.
//!
//! redb runs one write transaction at a time and commits durably (fsync) before returning, so
//! every method that writes is atomic and crash-safe by construction: a publish either commits
//! whole or leaves the file as it was. redb is synchronous; each call runs on tokio's blocking
//! pool. The file is locked by redb, so two processes cannot open it at once.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use ktra_core::index::IndexLine;
use ktra_core::name::canonical_crate_name;
use redb::{
    Database, MultimapTableDefinition, ReadTransaction, ReadableDatabase, ReadableMultimapTable,
    ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction,
};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::metadata::MetadataStore;
use crate::model::{
    AUDIT_RETAIN, AuditEvent, AuditRecord, CrateFileRef, CrateSummary, DEFAULT_TOKEN_NAME,
    EXPIRED_TOKEN_KEPT, IndexFile, Invitation, NewToken, NewVersion, OwnerActor, PendingChange,
    PendingSummary, SearchHit, SearchPage, StoredToken, TokenDetails, TokenId, TokenInfo,
    TokenScope, User, UserCredentials, UserId, VersionSummary, max_version, search_matches,
    search_rank, version_key,
};

/// The layout version of the file; a future migration reads it first.
const SCHEMA_VERSION: &str = "1";

/// redb's page cache in the process (its default is 1 GiB, which the API's memory would grow
/// towards as the registry does); the operating system's page cache holds the file as well.
const CACHE_BYTES: usize = 32 * 1024 * 1024;

/// `schema_version`, `next_user_id`.
const META: TableDefinition<'_, &str, &str> = TableDefinition::new("meta");
/// Lower-case user name to [`UserRecord`].
const USERS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("users");
/// User id to lower-case user name.
const USER_IDS: TableDefinition<'_, u32, &str> = TableDefinition::new("user_ids");
/// Token id to [`TokenRecord`].
const TOKENS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("tokens");
/// User id to the ids of the user's tokens.
const USER_TOKENS: MultimapTableDefinition<'_, u32, &[u8]> =
    MultimapTableDefinition::new("user_tokens");
/// Canonical crate name to [`CrateRecord`].
const CRATES: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("crates");
/// (canonical crate name, version without build metadata) to [`VersionRecord`].
const VERSIONS: TableDefinition<'_, (&str, &str), &[u8]> = TableDefinition::new("versions");
/// Canonical crate name to the index file's bytes.
const INDEX_FILES: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("index_files");
/// SHA-256 of an invitation code to [`InvitationRecord`].
const INVITATIONS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("invitations");
/// Sequence number to an [`AuditEvent`] (JSON); the latest [`AUDIT_RETAIN`] are kept.
const AUDIT: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("audit");
/// Canonical crate name to the revision the indexer has not acknowledged.
const PENDING: TableDefinition<'_, &str, u64> = TableDefinition::new("pending");
/// When each crate in `pending` got its mark, in milliseconds since the epoch: the change the
/// indexer has waited for longest. Marks from before this table have no entry.
const PENDING_SINCE: TableDefinition<'_, &str, i64> = TableDefinition::new("pending_since");

#[derive(Debug, Serialize, Deserialize)]
struct UserRecord {
    id: UserId,
    name: String,
    password_hash: String,
    created_at: DateTime<Utc>,
    #[serde(default)]
    disabled: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct TokenRecord {
    user: UserId,
    secret_hash: [u8; 32],
    created_at: DateTime<Utc>,
    #[serde(default = "default_token_name")]
    name: String,
    #[serde(default)]
    expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    scope: TokenScope,
}

fn default_token_name() -> String {
    DEFAULT_TOKEN_NAME.to_owned()
}

impl TokenRecord {
    fn details(&self) -> TokenDetails {
        TokenDetails {
            name: self.name.clone(),
            created_at: self.created_at,
            expires_at: self.expires_at,
            scope: self.scope.clone(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct InvitationRecord {
    created_by: UserId,
    expires_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize)]
struct CrateRecord {
    name: String,
    owners: Vec<UserId>,
    description: Option<String>,
    version_count: u32,
    revision: u64,
    etag: String,
    last_modified: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize)]
struct VersionRecord {
    vers: String,
    /// The version's line number in the index file, from 0.
    line: u32,
    cksum: String,
    blob_key: String,
    yanked: bool,
}

fn internal(error: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(error.to_string())
}

fn encode<T: Serialize>(record: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(record).map_err(internal)
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(internal)
}

/// The redb-backed metadata store.
#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
    /// Rate-limit windows: one process uses this store, so they live in memory.
    rates: Arc<std::sync::Mutex<RateWindows>>,
}

/// Fixed rate-limit windows by bucket: hits and when the window ends.
#[derive(Debug, Default)]
struct RateWindows {
    windows: std::collections::HashMap<String, (u64, std::time::Instant)>,
}

impl RateWindows {
    /// Windows kept before ended ones are swept.
    const SWEEP_AT: usize = 10_000;

    fn hit(&mut self, bucket: &str, window: std::time::Duration) -> (u64, std::time::Duration) {
        let now = std::time::Instant::now();
        if self.windows.len() >= Self::SWEEP_AT {
            self.windows.retain(|_, (_, ends)| *ends > now);
        }
        let entry = self
            .windows
            .entry(bucket.to_owned())
            .or_insert((0, now + window));
        if entry.1 <= now {
            *entry = (0, now + window);
        }
        entry.0 += 1;
        (entry.0, entry.1 - now)
    }
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore").finish_non_exhaustive()
    }
}

impl EmbeddedStore {
    /// Opens (or creates) the store in `dir`, as `dir/ktra.redb`.
    ///
    /// # Errors
    ///
    /// Fails when the directory cannot be created, the file is locked by another process, or
    /// it was written by an incompatible schema.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|error| {
            StoreError::Unavailable(format!("cannot create {}: {error}", dir.display()))
        })?;
        let path = dir.join("ktra.redb");
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(&path)
            .map_err(|error| {
                StoreError::Unavailable(format!("cannot open {}: {error}", path.display()))
            })?;
        let store = Self {
            db: Arc::new(db),
            rates: Arc::default(),
        };
        store.initialise()?;
        Ok(store)
    }

    fn initialise(&self) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(internal)?;
        {
            let mut meta = txn.open_table(META).map_err(internal)?;
            let existing = meta
                .get("schema_version")
                .map_err(internal)?
                .map(|value| value.value().to_owned());
            match existing {
                None => {
                    meta.insert("schema_version", SCHEMA_VERSION)
                        .map_err(internal)?;
                }
                Some(version) if version == SCHEMA_VERSION => {}
                Some(version) => {
                    return Err(StoreError::Internal(format!(
                        "the database has schema version {version}, this build reads {SCHEMA_VERSION}"
                    )));
                }
            }
            // Create every table so that read transactions never meet a missing one.
            txn.open_table(USERS).map_err(internal)?;
            txn.open_table(USER_IDS).map_err(internal)?;
            txn.open_table(TOKENS).map_err(internal)?;
            txn.open_multimap_table(USER_TOKENS).map_err(internal)?;
            txn.open_table(CRATES).map_err(internal)?;
            txn.open_table(VERSIONS).map_err(internal)?;
            txn.open_table(INDEX_FILES).map_err(internal)?;
            txn.open_table(PENDING).map_err(internal)?;
            txn.open_table(PENDING_SINCE).map_err(internal)?;
            txn.open_table(INVITATIONS).map_err(internal)?;
            txn.open_table(AUDIT).map_err(internal)?;
        }
        txn.commit().map_err(internal)
    }

    /// Runs a point read (a few keys) on the calling task. redb reads from memory-mapped,
    /// usually cached pages and never waits for a writer, so a lookup takes microseconds:
    /// cheaper than a hand-off to the blocking pool, which doubled the cost of serving an index
    /// file.
    async fn read<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&ReadTransaction) -> Result<T, StoreError> + Send + 'static,
    {
        let txn = self.db.begin_read().map_err(internal)?;
        work(&txn)
    }

    /// Runs a read that may walk many keys (search, listings) on the blocking pool.
    async fn scan<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&ReadTransaction) -> Result<T, StoreError> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || {
            let txn = db.begin_read().map_err(internal)?;
            work(&txn)
        })
        .await
        .map_err(internal)?
    }

    /// Runs a write transaction on the blocking pool; it commits only if `work` succeeds.
    async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTransaction) -> Result<T, StoreError> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || {
            let txn = db.begin_write().map_err(internal)?;
            // Dropping an uncommitted transaction aborts it, so an error writes nothing.
            let value = work(&txn)?;
            txn.commit().map_err(internal)?;
            Ok(value)
        })
        .await
        .map_err(internal)?
    }
}

fn user_record(
    users: &impl ReadableTable<&'static str, &'static [u8]>,
    name: &str,
) -> Result<Option<UserRecord>, StoreError> {
    users
        .get(name.to_lowercase().as_str())
        .map_err(internal)?
        .map(|value| decode(value.value()))
        .transpose()
}

fn user_by_id(
    user_ids: &impl ReadableTable<u32, &'static str>,
    users: &impl ReadableTable<&'static str, &'static [u8]>,
    id: UserId,
) -> Result<User, StoreError> {
    let name = user_ids
        .get(id)
        .map_err(internal)?
        .map(|value| value.value().to_owned())
        .ok_or_else(|| StoreError::Internal(format!("user id {id} has no name")))?;
    let record = user_record(users, &name)?
        .ok_or_else(|| StoreError::Internal(format!("user `{name}` has no record")))?;
    Ok(User {
        id: record.id,
        name: record.name,
    })
}

fn crate_record(
    crates: &impl ReadableTable<&'static str, &'static [u8]>,
    canonical: &str,
) -> Result<Option<CrateRecord>, StoreError> {
    crates
        .get(canonical)
        .map_err(internal)?
        .map(|value| decode(value.value()))
        .transpose()
}

/// Returns a crate's versions in publish order.
fn version_records(
    versions: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    canonical: &str,
) -> Result<Vec<VersionRecord>, StoreError> {
    let mut records = Vec::new();
    for entry in versions.range((canonical, "")..).map_err(internal)? {
        let (key, value) = entry.map_err(internal)?;
        if key.value().0 != canonical {
            break;
        }
        records.push(decode::<VersionRecord>(value.value())?);
    }
    records.sort_by_key(|record| record.line);
    Ok(records)
}

fn index_file_of(
    record: &CrateRecord,
    files: &impl ReadableTable<&'static str, &'static [u8]>,
    canonical: &str,
) -> Result<IndexFile, StoreError> {
    let content = files
        .get(canonical)
        .map_err(internal)?
        .map(|value| Bytes::copy_from_slice(value.value()))
        .ok_or_else(|| StoreError::Internal(format!("crate `{canonical}` has no index file")))?;
    Ok(IndexFile {
        name: record.name.clone(),
        content,
        etag: record.etag.clone(),
        last_modified: record.last_modified,
        revision: record.revision,
    })
}

fn require_owner(record: &CrateRecord, actor: UserId) -> Result<(), StoreError> {
    if record.owners.contains(&actor) {
        Ok(())
    } else {
        Err(StoreError::NotOwner(record.name.clone()))
    }
}

fn require_owner_or_admin(record: &CrateRecord, actor: OwnerActor) -> Result<(), StoreError> {
    match actor {
        OwnerActor::Owner(user) => require_owner(record, user),
        OwnerActor::Admin => Ok(()),
    }
}

/// Appends an audit event and drops the one that falls out of the retained window.
fn append_audit(txn: &WriteTransaction, event: &AuditEvent) -> Result<(), StoreError> {
    let mut audit = txn.open_table(AUDIT).map_err(internal)?;
    let next = audit
        .last()
        .map_err(internal)?
        .map_or(1, |(key, _)| key.value() + 1);
    audit
        .insert(next, encode(event)?.as_slice())
        .map_err(internal)?;
    if next > AUDIT_RETAIN {
        audit.remove(next - AUDIT_RETAIN).map_err(internal)?;
    }
    Ok(())
}

/// Creates a user record and its first token; fails if the name is taken.
fn insert_user(
    txn: &WriteTransaction,
    name: &str,
    password_hash: String,
    token: &NewToken,
) -> Result<User, StoreError> {
    let mut users = txn.open_table(USERS).map_err(internal)?;
    if user_record(&users, name)?.is_some() {
        return Err(StoreError::UserExists(name.to_owned()));
    }
    let mut meta = txn.open_table(META).map_err(internal)?;
    let id: UserId = match meta.get("next_user_id").map_err(internal)? {
        Some(value) => value.value().parse().map_err(internal)?,
        None => 1,
    };
    let next = id
        .checked_add(1)
        .ok_or_else(|| StoreError::Internal("user ids exhausted".to_owned()))?;
    meta.insert("next_user_id", next.to_string().as_str())
        .map_err(internal)?;
    let record = UserRecord {
        id,
        name: name.to_owned(),
        password_hash,
        created_at: token.details.created_at,
        disabled: false,
    };
    let key = name.to_lowercase();
    users
        .insert(key.as_str(), encode(&record)?.as_slice())
        .map_err(internal)?;
    txn.open_table(USER_IDS)
        .map_err(internal)?
        .insert(id, key.as_str())
        .map_err(internal)?;
    drop(users);
    drop(meta);
    insert_token(txn, id, token)?;
    Ok(User {
        id,
        name: name.to_owned(),
    })
}

/// Removes a user's tokens that expired more than [`EXPIRED_TOKEN_KEPT`] before `now`.
fn drop_long_expired_tokens(
    txn: &WriteTransaction,
    user: UserId,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut user_tokens = txn.open_multimap_table(USER_TOKENS).map_err(internal)?;
    let mut tokens = txn.open_table(TOKENS).map_err(internal)?;
    let mut stale = Vec::new();
    for id in ReadableMultimapTable::get(&user_tokens, user).map_err(internal)? {
        let id = id.map_err(internal)?.value().to_vec();
        let Some(record) = tokens.get(id.as_slice()).map_err(internal)? else {
            continue;
        };
        let record: TokenRecord = decode(record.value())?;
        if record
            .expires_at
            .is_some_and(|at| at + EXPIRED_TOKEN_KEPT <= now)
        {
            stale.push(id);
        }
    }
    for id in stale {
        tokens.remove(id.as_slice()).map_err(internal)?;
        user_tokens.remove(user, id.as_slice()).map_err(internal)?;
    }
    Ok(())
}

/// Removes the invitations `unwanted` picks.
fn drop_invitations_where(
    txn: &WriteTransaction,
    unwanted: impl Fn(&InvitationRecord) -> bool,
) -> Result<(), StoreError> {
    let mut invitations = txn.open_table(INVITATIONS).map_err(internal)?;
    let mut picked = Vec::new();
    for entry in invitations.iter().map_err(internal)? {
        let (key, value) = entry.map_err(internal)?;
        if unwanted(&decode(value.value())?) {
            picked.push(key.value().to_vec());
        }
    }
    for key in picked {
        invitations.remove(key.as_slice()).map_err(internal)?;
    }
    Ok(())
}

/// Removes every token of a user.
fn revoke_all_tokens(txn: &WriteTransaction, user: UserId) -> Result<(), StoreError> {
    let mut user_tokens = txn.open_multimap_table(USER_TOKENS).map_err(internal)?;
    let mut tokens = txn.open_table(TOKENS).map_err(internal)?;
    for id in user_tokens.remove_all(user).map_err(internal)? {
        let id = id.map_err(internal)?;
        tokens.remove(id.value()).map_err(internal)?;
    }
    Ok(())
}

/// Stores a crate's new file and record, and marks the revision unacknowledged.
fn commit_crate_change(
    txn: &WriteTransaction,
    canonical: &str,
    mut record: CrateRecord,
    content: Vec<u8>,
    now: DateTime<Utc>,
) -> Result<IndexFile, StoreError> {
    record.revision += 1;
    record.etag = IndexFile::etag_of(&content);
    record.last_modified = now;
    txn.open_table(INDEX_FILES)
        .map_err(internal)?
        .insert(canonical, content.as_slice())
        .map_err(internal)?;
    txn.open_table(CRATES)
        .map_err(internal)?
        .insert(canonical, encode(&record)?.as_slice())
        .map_err(internal)?;
    txn.open_table(PENDING)
        .map_err(internal)?
        .insert(canonical, record.revision)
        .map_err(internal)?;
    // The time the mark was first set stays (marks from before the table get one now).
    let mut since = txn.open_table(PENDING_SINCE).map_err(internal)?;
    if since.get(canonical).map_err(internal)?.is_none() {
        since
            .insert(canonical, now.timestamp_millis())
            .map_err(internal)?;
    }
    Ok(IndexFile {
        name: record.name,
        content: Bytes::from(content),
        etag: record.etag,
        last_modified: record.last_modified,
        revision: record.revision,
    })
}

fn insert_token(txn: &WriteTransaction, user: UserId, token: &NewToken) -> Result<(), StoreError> {
    let record = TokenRecord {
        user,
        secret_hash: token.secret_hash,
        created_at: token.details.created_at,
        name: token.details.name.clone(),
        expires_at: token.details.expires_at,
        scope: token.details.scope.clone(),
    };
    txn.open_table(TOKENS)
        .map_err(internal)?
        .insert(token.id.0.as_slice(), encode(&record)?.as_slice())
        .map_err(internal)?;
    txn.open_multimap_table(USER_TOKENS)
        .map_err(internal)?
        .insert(user, token.id.0.as_slice())
        .map_err(internal)?;
    Ok(())
}

/// Resolves user names to users, failing on the first unknown one.
fn resolve_users(txn: &WriteTransaction, names: &[String]) -> Result<Vec<User>, StoreError> {
    let users = txn.open_table(USERS).map_err(internal)?;
    names
        .iter()
        .map(|name| {
            user_record(&users, name)?
                .map(|record| User {
                    id: record.id,
                    name: record.name,
                })
                .ok_or_else(|| StoreError::UserNotFound(name.clone()))
        })
        .collect()
}

#[async_trait]
impl MetadataStore for EmbeddedStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|txn| {
            txn.open_table(META).map_err(internal)?;
            Ok(())
        })
        .await
    }

    async fn create_user(
        &self,
        name: &str,
        password_hash: &str,
        token: NewToken,
    ) -> Result<User, StoreError> {
        let name = name.to_owned();
        let password_hash = password_hash.to_owned();
        self.write(move |txn| insert_user(txn, &name, password_hash, &token))
            .await
    }

    async fn create_invited_user(
        &self,
        invitation: [u8; 32],
        name: &str,
        password_hash: &str,
        token: NewToken,
    ) -> Result<User, StoreError> {
        let name = name.to_owned();
        let password_hash = password_hash.to_owned();
        self.write(move |txn| {
            let mut invitations = txn.open_table(INVITATIONS).map_err(internal)?;
            let record: InvitationRecord = invitations
                .remove(invitation.as_slice())
                .map_err(internal)?
                .map(|value| decode(value.value()))
                .transpose()?
                .ok_or(StoreError::InvitationInvalid)?;
            drop(invitations);
            if record.expires_at <= token.details.created_at {
                // Dropping the transaction keeps nothing, so the expired record stays; the
                // answer is the same as for an unknown code.
                return Err(StoreError::InvitationInvalid);
            }
            insert_user(txn, &name, password_hash, &token)
        })
        .await
    }

    async fn create_invitation(&self, invitation: Invitation) -> Result<(), StoreError> {
        self.write(move |txn| {
            // Expired invitations go as new ones arrive.
            let now = Utc::now();
            drop_invitations_where(txn, |record| record.expires_at <= now)?;
            let record = InvitationRecord {
                created_by: invitation.created_by,
                expires_at: invitation.expires_at,
            };
            txn.open_table(INVITATIONS)
                .map_err(internal)?
                .insert(invitation.code_hash.as_slice(), encode(&record)?.as_slice())
                .map_err(internal)?;
            Ok(())
        })
        .await
    }

    async fn user_credentials(&self, name: &str) -> Result<Option<UserCredentials>, StoreError> {
        let name = name.to_owned();
        self.read(move |txn| {
            let users = txn.open_table(USERS).map_err(internal)?;
            Ok(user_record(&users, &name)?.map(|record| UserCredentials {
                user: User {
                    id: record.id,
                    name: record.name,
                },
                password_hash: record.password_hash,
                disabled: record.disabled,
            }))
        })
        .await
    }

    async fn add_token(&self, user: UserId, token: NewToken) -> Result<(), StoreError> {
        self.write(move |txn| {
            let key = txn
                .open_table(USER_IDS)
                .map_err(internal)?
                .get(user)
                .map_err(internal)?
                .map(|value| value.value().to_owned())
                .ok_or_else(|| StoreError::UserNotFound(format!("#{user}")))?;
            let users = txn.open_table(USERS).map_err(internal)?;
            let record =
                user_record(&users, &key)?.ok_or_else(|| StoreError::UserNotFound(key.clone()))?;
            if record.disabled {
                return Err(StoreError::UserDisabled(record.name));
            }
            drop(users);
            drop_long_expired_tokens(txn, user, token.details.created_at)?;
            insert_token(txn, user, &token)
        })
        .await
    }

    async fn list_tokens(&self, user: UserId) -> Result<Vec<TokenInfo>, StoreError> {
        self.read(move |txn| {
            let user_tokens = txn.open_multimap_table(USER_TOKENS).map_err(internal)?;
            let tokens = txn.open_table(TOKENS).map_err(internal)?;
            let mut listed = Vec::new();
            for id in user_tokens.get(user).map_err(internal)? {
                let id = id.map_err(internal)?;
                let Some(record) = tokens.get(id.value()).map_err(internal)? else {
                    continue;
                };
                let record: TokenRecord = decode(record.value())?;
                let id = TokenId(id.value().try_into().map_err(internal)?);
                listed.push(TokenInfo {
                    id,
                    details: record.details(),
                });
            }
            listed.sort_by_key(|token| (token.details.created_at, token.id));
            Ok(listed)
        })
        .await
    }

    async fn revoke_token(&self, user: UserId, id: TokenId) -> Result<(), StoreError> {
        self.write(move |txn| {
            let mut tokens = txn.open_table(TOKENS).map_err(internal)?;
            let owner = tokens
                .get(id.0.as_slice())
                .map_err(internal)?
                .map(|value| decode::<TokenRecord>(value.value()))
                .transpose()?
                .map(|record| record.user);
            if owner != Some(user) {
                return Err(StoreError::TokenNotFound(id.to_hex()));
            }
            tokens.remove(id.0.as_slice()).map_err(internal)?;
            txn.open_multimap_table(USER_TOKENS)
                .map_err(internal)?
                .remove(user, id.0.as_slice())
                .map_err(internal)?;
            Ok(())
        })
        .await
    }

    async fn set_user_disabled(&self, name: &str, disabled: bool) -> Result<User, StoreError> {
        let name = name.to_owned();
        self.write(move |txn| {
            let mut users = txn.open_table(USERS).map_err(internal)?;
            let mut record = user_record(&users, &name)?
                .ok_or_else(|| StoreError::UserNotFound(name.clone()))?;
            record.disabled = disabled;
            users
                .insert(name.to_lowercase().as_str(), encode(&record)?.as_slice())
                .map_err(internal)?;
            drop(users);
            if disabled {
                revoke_all_tokens(txn, record.id)?;
                // The unused invitations the user issued go with them.
                drop_invitations_where(txn, |invitation| invitation.created_by == record.id)?;
            }
            Ok(User {
                id: record.id,
                name: record.name,
            })
        })
        .await
    }

    async fn change_password(
        &self,
        user: UserId,
        old_password_hash: &str,
        new_password_hash: &str,
        token: NewToken,
    ) -> Result<(), StoreError> {
        let old_password_hash = old_password_hash.to_owned();
        let new_password_hash = new_password_hash.to_owned();
        self.write(move |txn| {
            let key = txn
                .open_table(USER_IDS)
                .map_err(internal)?
                .get(user)
                .map_err(internal)?
                .map(|value| value.value().to_owned())
                .ok_or_else(|| StoreError::UserNotFound(format!("#{user}")))?;
            let mut users = txn.open_table(USERS).map_err(internal)?;
            let mut record =
                user_record(&users, &key)?.ok_or_else(|| StoreError::UserNotFound(key.clone()))?;
            if record.password_hash != old_password_hash {
                return Err(StoreError::PasswordChanged);
            }
            if record.disabled {
                return Err(StoreError::UserDisabled(record.name));
            }
            record.password_hash = new_password_hash;
            users
                .insert(key.as_str(), encode(&record)?.as_slice())
                .map_err(internal)?;
            drop(users);
            revoke_all_tokens(txn, user)?;
            insert_token(txn, user, &token)
        })
        .await
    }

    async fn rehash_password(
        &self,
        user: UserId,
        old_password_hash: &str,
        new_password_hash: &str,
    ) -> Result<bool, StoreError> {
        let old_password_hash = old_password_hash.to_owned();
        let new_password_hash = new_password_hash.to_owned();
        self.write(move |txn| {
            let Some(key) = txn
                .open_table(USER_IDS)
                .map_err(internal)?
                .get(user)
                .map_err(internal)?
                .map(|value| value.value().to_owned())
            else {
                return Ok(false);
            };
            let mut users = txn.open_table(USERS).map_err(internal)?;
            let Some(mut record) = user_record(&users, &key)? else {
                return Ok(false);
            };
            if record.password_hash != old_password_hash {
                return Ok(false);
            }
            record.password_hash = new_password_hash;
            users
                .insert(key.as_str(), encode(&record)?.as_slice())
                .map_err(internal)?;
            Ok(true)
        })
        .await
    }

    async fn token(&self, id: TokenId) -> Result<Option<StoredToken>, StoreError> {
        self.read(move |txn| {
            let tokens = txn.open_table(TOKENS).map_err(internal)?;
            let Some(record) = tokens
                .get(id.0.as_slice())
                .map_err(internal)?
                .map(|value| decode::<TokenRecord>(value.value()))
                .transpose()?
            else {
                return Ok(None);
            };
            let user_ids = txn.open_table(USER_IDS).map_err(internal)?;
            let users = txn.open_table(USERS).map_err(internal)?;
            Ok(Some(StoredToken {
                id,
                user: user_by_id(&user_ids, &users, record.user)?,
                secret_hash: record.secret_hash,
                details: record.details(),
            }))
        })
        .await
    }

    async fn crate_summary(&self, canonical: &str) -> Result<Option<CrateSummary>, StoreError> {
        let canonical = canonical.to_owned();
        self.read(move |txn| {
            let crates = txn.open_table(CRATES).map_err(internal)?;
            let Some(record) = crate_record(&crates, &canonical)? else {
                return Ok(None);
            };
            let versions = txn.open_table(VERSIONS).map_err(internal)?;
            let versions = version_records(&versions, &canonical)?
                .into_iter()
                .map(|version| VersionSummary {
                    version: version.vers,
                    yanked: version.yanked,
                })
                .collect();
            Ok(Some(CrateSummary {
                name: record.name,
                owners: record.owners,
                versions,
            }))
        })
        .await
    }

    async fn publish(&self, new: NewVersion) -> Result<IndexFile, StoreError> {
        self.write(move |txn| {
            let canonical = canonical_crate_name(&new.line.name);
            let key = version_key(&new.version);
            let crates = txn.open_table(CRATES).map_err(internal)?;
            let existing = crate_record(&crates, &canonical)?;
            drop(crates);
            if new
                .crate_exists
                .is_some_and(|expected| expected != existing.is_some())
            {
                return Err(StoreError::CrateChanged(new.line.name.clone()));
            }
            let mut versions = txn.open_table(VERSIONS).map_err(internal)?;
            let mut record = match existing {
                Some(record) => {
                    if record.name != new.line.name {
                        return Err(StoreError::NameTaken {
                            name: new.line.name.clone(),
                            existing: record.name,
                        });
                    }
                    require_owner(&record, new.publisher)?;
                    if let Some(duplicate) = versions
                        .get((canonical.as_str(), key.as_str()))
                        .map_err(internal)?
                    {
                        let duplicate: VersionRecord = decode(duplicate.value())?;
                        return Err(StoreError::DuplicateVersion {
                            name: record.name,
                            version: duplicate.vers,
                        });
                    }
                    record
                }
                None => CrateRecord {
                    name: new.line.name.clone(),
                    owners: vec![new.publisher],
                    description: None,
                    version_count: 0,
                    revision: 0,
                    etag: String::new(),
                    last_modified: new.published_at,
                },
            };
            let version = VersionRecord {
                vers: new.line.vers.clone(),
                line: record.version_count,
                cksum: new.line.cksum.clone(),
                blob_key: new.blob_key.clone(),
                yanked: false,
            };
            versions
                .insert(
                    (canonical.as_str(), key.as_str()),
                    encode(&version)?.as_slice(),
                )
                .map_err(internal)?;
            drop(versions);
            record.version_count += 1;
            record.description = new.description.clone();
            let mut content = txn
                .open_table(INDEX_FILES)
                .map_err(internal)?
                .get(canonical.as_str())
                .map_err(internal)?
                .map(|value| value.value().to_vec())
                .unwrap_or_default();
            content.extend_from_slice(new.line.to_json().as_bytes());
            content.push(b'\n');
            if let Some(event) = &new.audit {
                append_audit(txn, event)?;
            }
            commit_crate_change(txn, &canonical, record, content, new.published_at)
        })
        .await
    }

    async fn set_yanked(
        &self,
        canonical: &str,
        version: &semver::Version,
        yanked: bool,
        actor: UserId,
        audit: Option<AuditEvent>,
    ) -> Result<(IndexFile, bool), StoreError> {
        let canonical = canonical.to_owned();
        let key = version_key(version);
        let version_text = version.to_string();
        self.write(move |txn| {
            let crates = txn.open_table(CRATES).map_err(internal)?;
            let record = crate_record(&crates, &canonical)?
                .ok_or_else(|| StoreError::CrateNotFound(canonical.clone()))?;
            drop(crates);
            require_owner(&record, actor)?;
            let mut versions = txn.open_table(VERSIONS).map_err(internal)?;
            let mut version: VersionRecord = versions
                .get((canonical.as_str(), key.as_str()))
                .map_err(internal)?
                .map(|value| decode(value.value()))
                .transpose()?
                .ok_or_else(|| StoreError::VersionNotFound {
                    name: record.name.clone(),
                    version: version_text,
                })?;
            let files = txn.open_table(INDEX_FILES).map_err(internal)?;
            if version.yanked == yanked {
                return Ok((index_file_of(&record, &files, &canonical)?, false));
            }
            let old = index_file_of(&record, &files, &canonical)?;
            drop(files);
            let mut lines: Vec<&[u8]> = old.content.split(|byte| *byte == b'\n').collect();
            // The file ends with a newline, so the split leaves an empty last piece.
            lines.pop();
            let slot = usize::try_from(version.line).map_err(internal)?;
            let Some(line) = lines.get(slot) else {
                return Err(StoreError::Internal(format!(
                    "crate `{canonical}` has no line {slot}"
                )));
            };
            let mut parsed: IndexLine = serde_json::from_slice(line).map_err(internal)?;
            parsed.yanked = yanked;
            let replaced = parsed.to_json();
            lines[slot] = replaced.as_bytes();
            let mut content = Vec::with_capacity(old.content.len() + 1);
            for line in lines {
                content.extend_from_slice(line);
                content.push(b'\n');
            }
            version.yanked = yanked;
            versions
                .insert(
                    (canonical.as_str(), key.as_str()),
                    encode(&version)?.as_slice(),
                )
                .map_err(internal)?;
            drop(versions);
            if let Some(event) = &audit {
                append_audit(txn, event)?;
            }
            Ok((
                commit_crate_change(txn, &canonical, record, content, Utc::now())?,
                true,
            ))
        })
        .await
    }

    async fn replace_index_file(
        &self,
        canonical: &str,
        revision: u64,
        content: Bytes,
    ) -> Result<Option<IndexFile>, StoreError> {
        let canonical = canonical.to_owned();
        self.write(move |txn| {
            let crates = txn.open_table(CRATES).map_err(internal)?;
            let record = crate_record(&crates, &canonical)?
                .ok_or_else(|| StoreError::CrateNotFound(canonical.clone()))?;
            drop(crates);
            if record.revision != revision {
                return Ok(None);
            }
            commit_crate_change(txn, &canonical, record, content.to_vec(), Utc::now()).map(Some)
        })
        .await
    }

    async fn owners(&self, canonical: &str) -> Result<Option<Vec<User>>, StoreError> {
        let canonical = canonical.to_owned();
        self.read(move |txn| {
            let crates = txn.open_table(CRATES).map_err(internal)?;
            let Some(record) = crate_record(&crates, &canonical)? else {
                return Ok(None);
            };
            let user_ids = txn.open_table(USER_IDS).map_err(internal)?;
            let users = txn.open_table(USERS).map_err(internal)?;
            record
                .owners
                .iter()
                .map(|id| user_by_id(&user_ids, &users, *id))
                .collect::<Result<Vec<_>, _>>()
                .map(Some)
        })
        .await
    }

    async fn add_owners(
        &self,
        canonical: &str,
        actor: OwnerActor,
        names: &[String],
    ) -> Result<Vec<User>, StoreError> {
        let canonical = canonical.to_owned();
        let names = names.to_vec();
        self.write(move |txn| {
            let mut crates = txn.open_table(CRATES).map_err(internal)?;
            let mut record = crate_record(&crates, &canonical)?
                .ok_or_else(|| StoreError::CrateNotFound(canonical.clone()))?;
            require_owner_or_admin(&record, actor)?;
            let mut added = Vec::new();
            for user in resolve_users(txn, &names)? {
                if !record.owners.contains(&user.id) {
                    record.owners.push(user.id);
                    added.push(user);
                }
            }
            crates
                .insert(canonical.as_str(), encode(&record)?.as_slice())
                .map_err(internal)?;
            Ok(added)
        })
        .await
    }

    async fn remove_owners(
        &self,
        canonical: &str,
        actor: OwnerActor,
        names: &[String],
    ) -> Result<Vec<User>, StoreError> {
        let canonical = canonical.to_owned();
        let names = names.to_vec();
        self.write(move |txn| {
            let mut crates = txn.open_table(CRATES).map_err(internal)?;
            let mut record = crate_record(&crates, &canonical)?
                .ok_or_else(|| StoreError::CrateNotFound(canonical.clone()))?;
            require_owner_or_admin(&record, actor)?;
            let mut removed = Vec::new();
            for user in resolve_users(txn, &names)? {
                if let Some(position) = record.owners.iter().position(|id| *id == user.id) {
                    record.owners.remove(position);
                    removed.push(user);
                }
            }
            if record.owners.is_empty() {
                return Err(StoreError::LastOwner(record.name));
            }
            crates
                .insert(canonical.as_str(), encode(&record)?.as_slice())
                .map_err(internal)?;
            Ok(removed)
        })
        .await
    }

    async fn search(&self, query: &str, offset: u64, limit: u64) -> Result<SearchPage, StoreError> {
        let query = query.to_lowercase();
        self.scan(move |txn| {
            let crates = txn.open_table(CRATES).map_err(internal)?;
            let mut matches = Vec::new();
            for entry in crates.iter().map_err(internal)? {
                let (key, value) = entry.map_err(internal)?;
                let record: CrateRecord = decode(value.value())?;
                if search_matches(&query, key.value(), record.description.as_deref()) {
                    matches.push((search_rank(&query, key.value()), record));
                }
            }
            matches.sort_by(|a, b| a.0.cmp(&b.0));
            let total = u64::try_from(matches.len()).map_err(internal)?;
            let versions = txn.open_table(VERSIONS).map_err(internal)?;
            let skip = usize::try_from(offset).unwrap_or(usize::MAX);
            let take = usize::try_from(limit).unwrap_or(usize::MAX);
            let hits = matches
                .into_iter()
                .skip(skip)
                .take(take)
                .map(|((_, canonical), record)| {
                    let summaries: Vec<VersionSummary> = version_records(&versions, &canonical)?
                        .into_iter()
                        .map(|version| VersionSummary {
                            version: version.vers,
                            yanked: version.yanked,
                        })
                        .collect();
                    Ok(SearchHit {
                        name: record.name,
                        max_version: max_version(&summaries),
                        description: record.description,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            Ok(SearchPage { hits, total })
        })
        .await
    }

    async fn index_file(&self, canonical: &str) -> Result<Option<IndexFile>, StoreError> {
        let canonical = canonical.to_owned();
        self.read(move |txn| {
            let crates = txn.open_table(CRATES).map_err(internal)?;
            let Some(record) = crate_record(&crates, &canonical)? else {
                return Ok(None);
            };
            let files = txn.open_table(INDEX_FILES).map_err(internal)?;
            index_file_of(&record, &files, &canonical).map(Some)
        })
        .await
    }

    async fn crate_file(
        &self,
        canonical: &str,
        version: &semver::Version,
    ) -> Result<Option<CrateFileRef>, StoreError> {
        let canonical = canonical.to_owned();
        let key = version_key(version);
        self.read(move |txn| {
            let crates = txn.open_table(CRATES).map_err(internal)?;
            let Some(record) = crate_record(&crates, &canonical)? else {
                return Ok(None);
            };
            let versions = txn.open_table(VERSIONS).map_err(internal)?;
            let Some(version) = versions
                .get((canonical.as_str(), key.as_str()))
                .map_err(internal)?
                .map(|value| decode::<VersionRecord>(value.value()))
                .transpose()?
            else {
                return Ok(None);
            };
            Ok(Some(CrateFileRef {
                name: record.name,
                version: version.vers,
                blob_key: version.blob_key,
                cksum: version.cksum,
            }))
        })
        .await
    }

    async fn pending_changes(&self, limit: usize) -> Result<Vec<PendingChange>, StoreError> {
        self.scan(move |txn| {
            let pending = txn.open_table(PENDING).map_err(internal)?;
            pending
                .iter()
                .map_err(internal)?
                .take(limit)
                .map(|entry| {
                    let (key, value) = entry.map_err(internal)?;
                    Ok(PendingChange {
                        canonical: key.value().to_owned(),
                        revision: value.value(),
                    })
                })
                .collect()
        })
        .await
    }

    async fn pending_summary(&self) -> Result<PendingSummary, StoreError> {
        self.scan(move |txn| {
            let crates = txn
                .open_table(PENDING)
                .map_err(internal)?
                .len()
                .map_err(internal)?;
            let mut oldest: Option<i64> = None;
            for entry in txn
                .open_table(PENDING_SINCE)
                .map_err(internal)?
                .iter()
                .map_err(internal)?
            {
                let since = entry.map_err(internal)?.1.value();
                oldest = Some(oldest.map_or(since, |current| current.min(since)));
            }
            Ok(PendingSummary {
                crates,
                oldest: oldest.and_then(DateTime::from_timestamp_millis),
            })
        })
        .await
    }

    async fn acknowledge(&self, canonical: &str, revision: u64) -> Result<bool, StoreError> {
        let canonical = canonical.to_owned();
        self.write(move |txn| {
            let mut pending = txn.open_table(PENDING).map_err(internal)?;
            let waiting = pending
                .get(canonical.as_str())
                .map_err(internal)?
                .map(|value| value.value());
            match waiting {
                Some(waiting) if waiting <= revision => {
                    pending.remove(canonical.as_str()).map_err(internal)?;
                    txn.open_table(PENDING_SINCE)
                        .map_err(internal)?
                        .remove(canonical.as_str())
                        .map_err(internal)?;
                    Ok(true)
                }
                _ => Ok(false),
            }
        })
        .await
    }

    async fn try_lease(
        &self,
        _name: &str,
        _holder: &str,
        _ttl: std::time::Duration,
    ) -> Result<bool, StoreError> {
        // redb locks its file, so one process at most uses this store: it always holds the
        // lease.
        Ok(true)
    }

    async fn count_hit(
        &self,
        bucket: &str,
        window: std::time::Duration,
    ) -> Result<(u64, std::time::Duration), StoreError> {
        Ok(self
            .rates
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .hit(bucket, window))
    }

    async fn crate_names(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let after = after.map(str::to_owned);
        self.scan(move |txn| {
            let crates = txn.open_table(CRATES).map_err(internal)?;
            let range = match &after {
                Some(after) => crates.range::<&str>((
                    std::ops::Bound::Excluded(after.as_str()),
                    std::ops::Bound::Unbounded,
                )),
                None => crates.range::<&str>(..),
            }
            .map_err(internal)?;
            range
                .take(limit)
                .map(|entry| {
                    entry
                        .map(|(key, _)| key.value().to_owned())
                        .map_err(internal)
                })
                .collect()
        })
        .await
    }

    async fn record_audit(&self, event: AuditEvent) -> Result<(), StoreError> {
        self.write(move |txn| append_audit(txn, &event)).await
    }

    async fn audit_events(
        &self,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let before = match before {
            Some(cursor) => Some(
                cursor
                    .parse::<u64>()
                    .map_err(|_| StoreError::InvalidCursor(cursor.to_owned()))?,
            ),
            None => None,
        };
        self.scan(move |txn| {
            let audit = txn.open_table(AUDIT).map_err(internal)?;
            let range = match before {
                Some(before) => audit.range(..before),
                None => audit.range::<u64>(..),
            }
            .map_err(internal)?;
            range
                .rev()
                .take(limit)
                .map(|entry| {
                    let (key, value) = entry.map_err(internal)?;
                    Ok(AuditRecord {
                        cursor: key.value().to_string(),
                        event: decode(value.value())?,
                    })
                })
                .collect()
        })
        .await
    }
}
