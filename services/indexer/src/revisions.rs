//! The highest revision of each crate file the indexer has pushed, kept on disk beside the
//! clone.
//!
//! Updates can arrive out of order (two publishes of one crate race to the indexer), so an
//! update older than what is in the index must not replace it. Keeping the revisions across
//! restarts means even an update delayed past a restart cannot roll a file back.

use std::collections::HashMap;
use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::error::IndexerError;

const REVISIONS: TableDefinition<'_, &str, u64> = TableDefinition::new("revisions");

fn state_error(error: impl std::fmt::Display) -> IndexerError {
    IndexerError::State(error.to_string())
}

/// Index path to pushed revision, in memory and on disk.
pub struct Revisions {
    db: Database,
    pushed: HashMap<String, u64>,
}

impl std::fmt::Debug for Revisions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revisions")
            .field("files", &self.pushed.len())
            .finish_non_exhaustive()
    }
}

impl Revisions {
    /// Opens (or creates) `dir/revisions.redb` and loads it.
    ///
    /// # Errors
    ///
    /// Fails when the file cannot be opened or read.
    pub fn open(dir: &Path) -> Result<Self, IndexerError> {
        // Every revision is loaded into `pushed` below; redb's own cache (1 GiB by default)
        // would only hold the same data again.
        let db = Database::builder()
            .set_cache_size(1024 * 1024)
            .create(dir.join("revisions.redb"))
            .map_err(state_error)?;
        let txn = db.begin_write().map_err(state_error)?;
        txn.open_table(REVISIONS).map_err(state_error)?;
        txn.commit().map_err(state_error)?;
        let mut pushed = HashMap::new();
        {
            let txn = db.begin_read().map_err(state_error)?;
            let table = txn.open_table(REVISIONS).map_err(state_error)?;
            for entry in table.iter().map_err(state_error)? {
                let (path, revision) = entry.map_err(state_error)?;
                pushed.insert(path.value().to_owned(), revision.value());
            }
        }
        Ok(Self { db, pushed })
    }

    /// Returns the pushed revision of a file.
    pub fn get(&self, path: &str) -> Option<u64> {
        self.pushed.get(path).copied()
    }

    /// Records pushed revisions, keeping the higher of the old and the new for each path.
    ///
    /// # Errors
    ///
    /// Fails when the file cannot be written.
    pub fn record(&mut self, entries: &[(String, u64)]) -> Result<(), IndexerError> {
        self.write(
            entries
                .iter()
                .map(|(path, revision)| {
                    let kept = self
                        .pushed
                        .get(path)
                        .map_or(*revision, |old| (*old).max(*revision));
                    (path.clone(), Some(kept))
                })
                .collect(),
        )
    }

    /// Sets revisions as given (a rebuild from the store is authoritative, even if its
    /// revisions are lower), and forgets the paths in `removed`.
    ///
    /// # Errors
    ///
    /// Fails when the file cannot be written.
    pub fn replace(
        &mut self,
        entries: &[(String, u64)],
        removed: &[String],
    ) -> Result<(), IndexerError> {
        let mut changes: Vec<(String, Option<u64>)> = entries
            .iter()
            .map(|(path, revision)| (path.clone(), Some(*revision)))
            .collect();
        changes.extend(removed.iter().map(|path| (path.clone(), None)));
        self.write(changes)
    }

    fn write(&mut self, changes: Vec<(String, Option<u64>)>) -> Result<(), IndexerError> {
        if changes.is_empty() {
            return Ok(());
        }
        let txn = self.db.begin_write().map_err(state_error)?;
        {
            let mut table = txn.open_table(REVISIONS).map_err(state_error)?;
            for (path, revision) in &changes {
                match revision {
                    Some(revision) => {
                        table
                            .insert(path.as_str(), *revision)
                            .map_err(state_error)?;
                    }
                    None => {
                        table.remove(path.as_str()).map_err(state_error)?;
                    }
                }
            }
        }
        txn.commit().map_err(state_error)?;
        for (path, revision) in changes {
            match revision {
                Some(revision) => self.pushed.insert(path, revision),
                None => self.pushed.remove(&path),
            };
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_highest_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let mut revisions = Revisions::open(dir.path()).unwrap();
        revisions.record(&[("3/a/abc".into(), 5)]).unwrap();
        revisions
            .record(&[("3/a/abc".into(), 3), ("1/x".into(), 1)])
            .unwrap();
        assert_eq!(revisions.get("3/a/abc"), Some(5));
        drop(revisions);
        let mut revisions = Revisions::open(dir.path()).unwrap();
        assert_eq!(revisions.get("3/a/abc"), Some(5));
        revisions
            .replace(&[("3/a/abc".into(), 2)], &["1/x".into()])
            .unwrap();
        assert_eq!(revisions.get("3/a/abc"), Some(2));
        assert_eq!(revisions.get("1/x"), None);
    }
}
