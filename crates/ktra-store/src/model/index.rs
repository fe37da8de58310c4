//! Index files and the indexer's lag.

use bytes::Bytes;
use chrono::{DateTime, Utc};

/// A crate's index file as the sparse index serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFile {
    /// The crate's name as first published.
    pub name: String,
    /// The file: one JSON line per version, each ending in `\n`.
    pub content: Bytes,
    /// When the content last changed.
    pub last_modified: DateTime<Utc>,
    /// Bumped by every change; the indexer acknowledges revisions.
    pub revision: u64,
}

impl IndexFile {
    /// The file's entity tag (quoted, ready for the `ETag` header), the one definition for
    /// every store. Within one store's history it is a strong validator: every change of the
    /// content bumps the revision, and no revision is reused. The time (in milliseconds) sets
    /// apart two histories that reach the same revision, such as a store restored from a backup
    /// and changed again; an import stamps the crate file's time instead of the time of the
    /// change, so importing different data into a wiped store may repeat an earlier tag.
    pub fn etag(&self) -> String {
        format!(
            "\"{}-{}\"",
            self.revision,
            self.last_modified.timestamp_millis()
        )
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
