//! The embedded metadata store: one redb file, for single-node registries.
//!
//! redb runs one write transaction at a time and commits durably (fsync) before returning, so
//! every method that writes is atomic and crash-safe by construction: a publish either commits
//! whole or leaves the file as it was. redb is synchronous: writes and scans run on the blocking
//! pool, point reads (microseconds, never waiting for a writer) on the calling task. The file is
//! locked by redb, so two processes cannot open it at once.

mod accounts;
mod audit;
mod coordination;
mod crates;
mod downloads;
mod index;
mod schema;
mod sessions;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use ktra_core::name::CrateId;
use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, WriteTransaction};

use self::coordination::RateWindows;
use self::schema::{
    AUDIT, CRATES, CrateRecord, DOWNLOADS, DOWNLOADS_BY_DAY, INDEX_FILES, INVITATIONS, META,
    PENDING, PENDING_SINCE, READMES, SCHEMA_VERSION, SESSIONS, TOKENS, USER_IDS, USER_TOKENS,
    USERS, VERSION_METADATA, VERSIONS, crate_record, internal,
};
use crate::error::StoreError;
use crate::traits::MetadataStore;

/// redb's page cache in the process (its default is 1 GiB, which the API's memory would grow
/// towards as the registry does); the operating system's page cache holds the file as well.
const CACHE_BYTES: usize = 32 * 1024 * 1024;

/// The redb-backed metadata store.
#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
    /// Rate-limit windows: one process uses this store, so they live in memory.
    rates: Arc<std::sync::Mutex<RateWindows>>,
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
            txn.open_table(VERSION_METADATA).map_err(internal)?;
            txn.open_table(READMES).map_err(internal)?;
            txn.open_table(INDEX_FILES).map_err(internal)?;
            txn.open_table(PENDING).map_err(internal)?;
            txn.open_table(PENDING_SINCE).map_err(internal)?;
            txn.open_table(INVITATIONS).map_err(internal)?;
            txn.open_table(SESSIONS).map_err(internal)?;
            txn.open_table(DOWNLOADS).map_err(internal)?;
            txn.open_table(DOWNLOADS_BY_DAY).map_err(internal)?;
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

    /// Runs a point read of one crate: `work` gets the transaction, the crate's record and its
    /// canonical name, and is not called when the crate does not exist.
    fn read_crate<T>(
        &self,
        krate: &CrateId,
        work: impl FnOnce(&ReadTransaction, CrateRecord, &str) -> Result<Option<T>, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let txn = self.db.begin_read().map_err(internal)?;
        let crates = txn.open_table(CRATES).map_err(internal)?;
        let Some(record) = crate_record(&crates, krate.canonical())? else {
            return Ok(None);
        };
        drop(crates);
        work(&txn, record, krate.canonical())
    }

    /// Runs a read that may walk many keys (search, listings) on the blocking pool.
    async fn scan<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&ReadTransaction) -> Result<T, StoreError> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        ktra_core::task::spawn_blocking(move || {
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
        ktra_core::task::spawn_blocking(move || {
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

#[async_trait]
impl MetadataStore for EmbeddedStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|txn| {
            txn.open_table(META).map_err(internal)?;
            Ok(())
        })
        .await
    }
}
