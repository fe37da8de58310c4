//! Index files and the indexer's lag.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use ktra_core::name::CrateId;

use crate::error::StoreError;

/// A crate's index file as the sparse index serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFile {
    /// The crate, named as first published.
    pub krate: CrateId,
    /// The file: one JSON line per version, each ending in `\n`.
    pub content: Bytes,
    /// When the content last changed.
    pub last_modified: DateTime<Utc>,
    /// Bumped by every change; the indexer acknowledges revisions.
    pub revision: u64,
}

impl IndexFile {
    /// An index file read back from a store, named by the crate's stored name (which passed
    /// the name rules when it was published).
    ///
    /// # Errors
    ///
    /// [`StoreError::Internal`] when the stored name breaks them.
    pub fn stored(
        name: &str,
        content: Bytes,
        last_modified: DateTime<Utc>,
        revision: u64,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            krate: stored_crate_id(name)?,
            content,
            last_modified,
            revision,
        })
    }

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

/// Names a crate by a name a store holds (a published or a canonical name).
///
/// # Errors
///
/// [`StoreError::Internal`] when the name breaks the name rules, which every stored name passed
/// when it came in.
pub fn stored_crate_id(name: &str) -> Result<CrateId, StoreError> {
    CrateId::new(name)
        .map_err(|error| StoreError::Internal(format!("stored crate name `{name}`: {error}")))
}

/// A crate whose latest revision the indexer has not acknowledged yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingChange {
    /// The crate, named by its canonical name.
    pub krate: CrateId,
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
