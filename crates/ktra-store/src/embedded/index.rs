//! Index files, their revisions and the marks the indexer acknowledges, in the embedded store.

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use ktra_core::name::CrateId;
use redb::{ReadableTable, ReadableTableMetadata, WriteTransaction};

use super::EmbeddedStore;
use super::schema::{
    CRATES, CrateRecord, INDEX_FILES, PENDING, PENDING_SINCE, crate_record, encode, internal,
};
use crate::error::StoreError;
use crate::model::{IndexFile, PendingChange, PendingSummary, stored_crate_id};
use crate::traits::IndexStore;

pub(super) fn index_file_of(
    record: &CrateRecord,
    files: &impl ReadableTable<&'static str, &'static [u8]>,
    canonical: &str,
) -> Result<IndexFile, StoreError> {
    let content = files
        .get(canonical)
        .map_err(internal)?
        .map(|value| Bytes::copy_from_slice(value.value()))
        .ok_or_else(|| StoreError::Internal(format!("crate `{canonical}` has no index file")))?;
    IndexFile::stored(&record.name, content, record.last_modified, record.revision)
}

/// Stores a crate's new file and record, and marks the revision unacknowledged.
pub(super) fn commit_crate_change(
    txn: &WriteTransaction,
    canonical: &str,
    mut record: CrateRecord,
    content: Vec<u8>,
    now: DateTime<Utc>,
) -> Result<IndexFile, StoreError> {
    record.revision += 1;
    record.last_modified = now;
    let file = IndexFile::stored(
        &record.name,
        Bytes::from(content),
        record.last_modified,
        record.revision,
    )?;
    record.etag = file.etag();
    txn.open_table(INDEX_FILES)
        .map_err(internal)?
        .insert(canonical, file.content.as_ref())
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
    Ok(file)
}

#[async_trait]
impl IndexStore for EmbeddedStore {
    async fn index_file(&self, krate: &CrateId) -> Result<Option<IndexFile>, StoreError> {
        self.read_crate(krate, |txn, record, canonical| {
            let files = txn.open_table(INDEX_FILES).map_err(internal)?;
            index_file_of(&record, &files, canonical).map(Some)
        })
    }

    async fn index_validators(&self, krate: &CrateId) -> Result<Option<IndexFile>, StoreError> {
        let canonical = krate.canonical().to_owned();
        self.read(move |txn| {
            let crates = txn.open_table(CRATES).map_err(internal)?;
            crate_record(&crates, &canonical)?
                .map(|record| {
                    IndexFile::stored(
                        &record.name,
                        Bytes::new(),
                        record.last_modified,
                        record.revision,
                    )
                })
                .transpose()
        })
        .await
    }

    async fn replace_index_file(
        &self,
        krate: &CrateId,
        revision: u64,
        content: Bytes,
    ) -> Result<Option<IndexFile>, StoreError> {
        let canonical = krate.canonical().to_owned();
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
                        krate: stored_crate_id(key.value())?,
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

    async fn acknowledge(&self, krate: &CrateId, revision: u64) -> Result<bool, StoreError> {
        let canonical = krate.canonical().to_owned();
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
}
