//! Lock files a killed indexer leaves in its clone.
//!
//! git takes `<file>.lock` before it changes a ref, `HEAD`, `packed-refs` or `config`, and
//! removes it after. An indexer killed between the two (SIGKILL, a power cut, the OOM killer)
//! leaves the lock behind, and every later start fails with "failed to lock file". The clone
//! is the indexer's own, kept off other indexers by `indexer.lock`: once that is held, no
//! other process can be writing, so any lock left there is stale. The remote's locks are never
//! touched: other writers may share it.

use std::path::{Path, PathBuf};

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
}
