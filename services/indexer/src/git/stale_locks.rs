//! Lock files a killed indexer leaves in its clone.
//!
//! git takes `<file>.lock` before it changes a ref, `HEAD`, `packed-refs` or `config`, and
//! removes it after. An indexer killed between the two (SIGKILL, a power cut, the OOM killer)
//! leaves the lock behind, and every later start fails with "failed to lock file". The clone
//! is the indexer's own, kept off other indexers by `indexer.lock`: once that is held, no
//! other process can be writing, so any lock left there is stale.
//!
//! A `file://` remote is moved in place by the indexer, so a kill can leave the remote's branch
//! lock too. Other writers may share that remote, so its lock is removed only when it is older
//! than any live writer holds one ([`ABANDONED_AFTER`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

/// How old a branch lock in a shared remote must be before it counts as abandoned: git holds a
/// ref's lock for the few milliseconds of the update.
pub const ABANDONED_AFTER: Duration = Duration::from_secs(60);

use crate::error::IndexerError;

/// Removes the lock files git leaves in the bare clone `git_dir`; returns what it removed.
/// Call only while holding the clone's `indexer.lock`.
///
/// # Errors
///
/// Fails when a lock cannot be read or removed.
pub fn remove_stale_locks(git_dir: &Path) -> Result<Vec<PathBuf>, IndexerError> {
    let mut found = Vec::new();
    for name in [
        "HEAD.lock",
        "config.lock",
        "index.lock",
        "packed-refs.lock",
        "shallow.lock",
    ] {
        let path = git_dir.join(name);
        if path.is_file() {
            found.push(path);
        }
    }
    collect_ref_locks(&git_dir.join("refs"), &mut found)?;
    for path in &found {
        std::fs::remove_file(path)
            .map_err(|error| IndexerError::Setup(format!("{}: {error}", path.display())))?;
        tracing::warn!(path = %path.display(), "removed a lock file an earlier indexer left behind");
    }
    Ok(found)
}

/// Removes the lock of `branch` in the bare repository `remote` (a `file://` remote) when it is
/// older than [`ABANDONED_AFTER`]; returns whether it did.
///
/// # Errors
///
/// Fails when the lock's age cannot be read or it cannot be removed.
pub fn remove_abandoned_branch_lock(remote: &Path, branch: &str) -> Result<bool, IndexerError> {
    let path = remote.join("refs/heads").join(format!("{branch}.lock"));
    let modified = match std::fs::metadata(&path).and_then(|metadata| metadata.modified()) {
        Ok(modified) => modified,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(error) => return Err(IndexerError::Setup(format!("{}: {error}", path.display()))),
    };
    let age = modified.elapsed().unwrap_or_default();
    if age < ABANDONED_AFTER {
        return Ok(false);
    }
    std::fs::remove_file(&path)
        .map_err(|error| IndexerError::Setup(format!("{}: {error}", path.display())))?;
    tracing::warn!(
        path = %path.display(),
        age_secs = age.as_secs(),
        "removed an abandoned branch lock from the file:// remote"
    );
    Ok(true)
}

fn collect_ref_locks(dir: &Path, found: &mut Vec<PathBuf>) -> Result<(), IndexerError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(IndexerError::Setup(format!("{}: {error}", dir.display()))),
    };
    for entry in entries {
        let entry =
            entry.map_err(|error| IndexerError::Setup(format!("{}: {error}", dir.display())))?;
        let path = entry.path();
        let kind = entry
            .file_type()
            .map_err(|error| IndexerError::Setup(format!("{}: {error}", path.display())))?;
        if kind.is_dir() {
            collect_ref_locks(&path, found)?;
        } else if path
            .extension()
            .is_some_and(|extension| extension == "lock")
        {
            found.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_killed_writer_leaves_nothing_that_blocks_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let git_dir = dir.path().join("repo.git");
        let repo = git2::Repository::init_bare(&git_dir).unwrap();
        let tree = repo.treebuilder(None).unwrap().write().unwrap();
        let tree = repo.find_tree(tree).unwrap();
        let signature = git2::Signature::now("t", "t@example.com").unwrap();
        let commit = repo
            .commit(None, &signature, &signature, "first", &tree, &[])
            .unwrap();
        repo.reference("refs/heads/main", commit, true, "first")
            .unwrap();
        // What a writer killed mid-update leaves: a ref lock and a packed-refs lock.
        std::fs::write(git_dir.join("refs/heads/main.lock"), commit.to_string()).unwrap();
        std::fs::write(git_dir.join("packed-refs.lock"), "").unwrap();
        let blocked = repo.reference("refs/heads/main", commit, true, "second");
        assert_eq!(
            blocked.err().map(|error| error.code()),
            Some(git2::ErrorCode::Locked)
        );

        let removed = remove_stale_locks(&git_dir).unwrap();
        assert_eq!(removed.len(), 2, "{removed:?}");
        repo.reference("refs/heads/main", commit, true, "second")
            .unwrap();
        // The objects and the ref are as they were.
        assert_eq!(repo.refname_to_id("refs/heads/main").unwrap(), commit);
        assert!(remove_stale_locks(&git_dir).unwrap().is_empty());
    }

    #[test]
    fn only_an_old_lock_in_a_shared_remote_counts_as_abandoned() {
        let dir = tempfile::tempdir().unwrap();
        let remote = dir.path().join("remote.git");
        git2::Repository::init_bare(&remote).unwrap();
        let lock = remote.join("refs/heads/main.lock");
        std::fs::write(&lock, "").unwrap();
        // A fresh lock may belong to a writer at work.
        assert!(!remove_abandoned_branch_lock(&remote, "main").unwrap());
        assert!(lock.is_file());
        let old = std::time::SystemTime::now() - ABANDONED_AFTER - Duration::from_secs(1);
        std::fs::File::options()
            .write(true)
            .open(&lock)
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert!(remove_abandoned_branch_lock(&remote, "main").unwrap());
        assert!(!lock.is_file());
        assert!(!remove_abandoned_branch_lock(&remote, "main").unwrap());
    }
}
