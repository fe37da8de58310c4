//! The file's tables and the records they hold (JSON), and how errors of redb become store errors.

use chrono::{DateTime, Utc};
use redb::{MultimapTableDefinition, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::model::{DEFAULT_TOKEN_NAME, TokenDetails, TokenScope, UserId};

/// The layout version of the file; a future migration reads it first.
pub(super) const SCHEMA_VERSION: &str = "1";

/// `schema_version`, `next_user_id`.
pub(super) const META: TableDefinition<'_, &str, &str> = TableDefinition::new("meta");
/// Lower-case user name to [`UserRecord`].
pub(super) const USERS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("users");
/// User id to lower-case user name.
pub(super) const USER_IDS: TableDefinition<'_, u32, &str> = TableDefinition::new("user_ids");
/// Token id to [`TokenRecord`].
pub(super) const TOKENS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("tokens");
/// User id to the ids of the user's tokens.
pub(super) const USER_TOKENS: MultimapTableDefinition<'_, u32, &[u8]> =
    MultimapTableDefinition::new("user_tokens");
/// Canonical crate name to [`CrateRecord`].
pub(super) const CRATES: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("crates");
/// (canonical crate name, version without build metadata) to [`VersionRecord`].
pub(super) const VERSIONS: TableDefinition<'_, (&str, &str), &[u8]> =
    TableDefinition::new("versions");
/// (canonical crate name, version key) to the version's
/// [`VersionMetadata`](ktra_core::metadata::VersionMetadata) (JSON); versions published before
/// the registry kept it have none until the backfill reads their crate files.
pub(super) const VERSION_METADATA: TableDefinition<'_, (&str, &str), &[u8]> =
    TableDefinition::new("version_metadata");
/// (canonical crate name, version key) to the version's README (UTF-8).
pub(super) const READMES: TableDefinition<'_, (&str, &str), &str> = TableDefinition::new("readmes");
/// (canonical crate name, version key) to its downloads.
pub(super) const DOWNLOADS: TableDefinition<'_, (&str, &str), u64> =
    TableDefinition::new("downloads");
/// (canonical crate name, day as `YYYY-MM-DD`, version key) to that day's downloads.
pub(super) const DOWNLOADS_BY_DAY: TableDefinition<'_, (&str, &str, &str), u64> =
    TableDefinition::new("downloads_by_day");
/// Canonical crate name to the index file's bytes.
pub(super) const INDEX_FILES: TableDefinition<'_, &str, &[u8]> =
    TableDefinition::new("index_files");
/// SHA-256 of a session cookie's secret to [`SessionRecord`].
pub(super) const SESSIONS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("sessions");
/// SHA-256 of an invitation code to [`InvitationRecord`].
pub(super) const INVITATIONS: TableDefinition<'_, &[u8], &[u8]> =
    TableDefinition::new("invitations");
/// Sequence number to an [`AuditEvent`](crate::model::AuditEvent) (JSON); the latest
/// [`AUDIT_RETAIN`](crate::model::AUDIT_RETAIN) are kept.
pub(super) const AUDIT: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("audit");
/// Canonical crate name to the revision the indexer has not acknowledged.
pub(super) const PENDING: TableDefinition<'_, &str, u64> = TableDefinition::new("pending");
/// When each crate in `pending` got its mark, in milliseconds since the epoch: the change the
/// indexer has waited for longest. Marks from before this table have no entry.
pub(super) const PENDING_SINCE: TableDefinition<'_, &str, i64> =
    TableDefinition::new("pending_since");

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct UserRecord {
    pub(super) id: UserId,
    pub(super) name: String,
    pub(super) password_hash: String,
    pub(super) created_at: DateTime<Utc>,
    #[serde(default)]
    pub(super) disabled: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct TokenRecord {
    pub(super) user: UserId,
    pub(super) secret_hash: [u8; 32],
    pub(super) created_at: DateTime<Utc>,
    #[serde(default = "default_token_name")]
    pub(super) name: String,
    pub(super) expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub(super) scope: TokenScope,
}

pub(super) fn default_token_name() -> String {
    DEFAULT_TOKEN_NAME.to_owned()
}

impl TokenRecord {
    pub(super) fn details(&self) -> TokenDetails {
        TokenDetails {
            name: self.name.clone(),
            created_at: self.created_at,
            expires_at: self.expires_at,
            scope: self.scope.clone(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct SessionRecord {
    pub(super) user: UserId,
    pub(super) csrf: String,
    pub(super) expires_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct InvitationRecord {
    pub(super) created_by: UserId,
    pub(super) expires_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct CrateRecord {
    pub(super) name: String,
    pub(super) owners: Vec<UserId>,
    pub(super) description: Option<String>,
    pub(super) version_count: u32,
    pub(super) revision: u64,
    /// `IndexFile::etag`, kept for binaries of earlier versions, which read it; this one
    /// derives the ETag and never reads the field.
    #[serde(default)]
    pub(super) etag: String,
    pub(super) last_modified: DateTime<Utc>,
    /// Unknown for crates stored before the registry kept it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) created_at: Option<DateTime<Utc>>,
    /// The version published last; unknown for crates not published to since the registry
    /// kept it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) newest_version: Option<String>,
    /// Downloads of every version together.
    #[serde(default)]
    pub(super) downloads: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct VersionRecord {
    pub(super) vers: String,
    /// The version's line number in the index file, from 0.
    pub(super) line: u32,
    pub(super) cksum: String,
    pub(super) blob_key: String,
    pub(super) yanked: bool,
    /// Unknown for versions stored before the registry kept it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) published_at: Option<DateTime<Utc>>,
    /// Unknown for versions stored before the registry kept it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) publisher: Option<UserId>,
}

pub(super) fn internal(error: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(error.to_string())
}

pub(super) fn encode<T: Serialize>(record: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(record).map_err(internal)
}

pub(super) fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(internal)
}

/// Reads a crate's record.
pub(super) fn crate_record(
    crates: &impl ReadableTable<&'static str, &'static [u8]>,
    canonical: &str,
) -> Result<Option<CrateRecord>, StoreError> {
    crates
        .get(canonical)
        .map_err(internal)?
        .map(|value| decode(value.value()))
        .transpose()
}
