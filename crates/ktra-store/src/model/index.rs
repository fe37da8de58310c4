//! Index files and the indexer's lag.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

/// A crate's index file as the sparse index serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFile {
    /// The crate's name as first published.
    pub name: String,
    /// The file: one JSON line per version, each ending in `\n`.
    pub content: Bytes,
    /// A strong validator of the content (quoted, ready for the `ETag` header).
    pub etag: String,
    /// When the content last changed.
    pub last_modified: DateTime<Utc>,
    /// Bumped by every change; the indexer acknowledges revisions.
    pub revision: u64,
}

impl IndexFile {
    /// Computes the entity tag of a file's content.
    pub fn etag_of(content: &[u8]) -> String {
        let digest = Sha256::digest(content);
        format!("\"{}\"", hex::encode(&digest[..16]))
    }
}

/// A crate whose latest revision the indexer has not acknowledged yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingChange {
    /// The crate's canonical name.
    pub canonical: String,
    /// The revision waiting for acknowledgement.
    pub revision: u64,
}

/// How far the indexer lags the store: what [`crate::IndexStore::pending_summary`] counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PendingSummary {
    /// Crates whose latest revision the indexer has not acknowledged.
    pub crates: u64,
    /// When the oldest of those changes was made (the change that marked its crate); `None`
    /// when nothing waits, or only marks older than this measure do.
    pub oldest: Option<DateTime<Utc>>,
}
