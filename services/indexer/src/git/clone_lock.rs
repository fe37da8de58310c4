//! The lock that keeps a second indexer off a clone, and the proof of holding it.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use crate::error::IndexerError;

/// Held while `indexer.lock` in the clone's directory is locked by this process: no other
/// indexer writes the clone. Opening the clone takes it, because only its holder may clear the
/// lock files git left there.
#[derive(Debug, Clone)]
pub struct CloneLock(#[expect(dead_code, reason = "held, never read")] Arc<File>);

impl CloneLock {
    /// Takes the lock on the clone in `local_path` (creating the directory).
    ///
    /// # Errors
    ///
    /// Fails when another process holds it, or the file cannot be opened.
    pub fn take(local_path: &Path) -> Result<Self, IndexerError> {
        std::fs::create_dir_all(local_path).map_err(|error| {
            IndexerError::Setup(format!("cannot create {}: {error}", local_path.display()))
        })?;
        let path = local_path.join("indexer.lock");
        let file = File::create(&path).map_err(|error| {
            IndexerError::Setup(format!("cannot open {}: {error}", path.display()))
        })?;
        file.try_lock().map_err(|_| {
            IndexerError::Setup(format!(
                "another ktra-indexer holds {}; only one indexer may write an index",
                path.display()
            ))
        })?;
        Ok(Self(Arc::new(file)))
    }
}
