//! Moving the clone onto a remote someone else pushed to, keeping the registry's state.

use std::path::Path;

use git2::build::TreeUpdateBuilder;
use git2::{Delta, DiffOptions, FileMode, Oid, Repository, Tree};

use super::repo::{IndexRepo, entry_id, is_index_path};

impl IndexRepo {
    /// Moves the local branch onto `new_remote_tip` (just fetched), keeping our state: every
    /// index path that others changed since the remote tip we knew, and every path we changed
    /// and did not push, gets our content back. Never creates a merge commit. The new tip
    /// becomes the remembered remote tip.
    ///
    /// # Errors
    ///
    /// Fails when the repository cannot be read or written.
    pub fn rebase_onto_remote(
        &mut self,
        new_remote_tip: Option<Oid>,
    ) -> Result<Vec<String>, git2::Error> {
        let previous_remote_tip = std::mem::replace(&mut self.remote_tip, new_remote_tip);
        let Some(remote_tip) = new_remote_tip else {
            // The remote lost its branch: our tip is pushed as it is.
            return Ok(Vec::new());
        };
        let Some(ours) = self.tip() else {
            // A fresh clone has no state of its own to restore: take the remote's.
            self.set_branch(remote_tip)?;
            return Ok(Vec::new());
        };
        let base_tree = self.tree_of(previous_remote_tip)?;
        let remote_tree = self.tree_of(Some(remote_tip))?;
        let our_tree = self.tree_of(Some(ours))?;
        let mut paths = changed_paths(&self.repo, &base_tree, &remote_tree)?;
        paths.extend(changed_paths(&self.repo, &base_tree, &our_tree)?);
        paths.sort();
        paths.dedup();
        paths.retain(|path| is_index_path(path));
        let mut update = TreeUpdateBuilder::new();
        let mut restored = Vec::new();
        for path in &paths {
            let ours_entry = entry_id(&our_tree, path);
            let theirs_entry = entry_id(&remote_tree, path);
            if ours_entry == theirs_entry {
                continue;
            }
            restored.push(path.clone());
            match ours_entry {
                Some(oid) => {
                    update.upsert(path.as_str(), oid, FileMode::Blob);
                }
                None => {
                    update.remove(path.as_str());
                }
            }
        }
        let tree_id = update.create_updated(&self.repo, &remote_tree)?;
        if tree_id == remote_tree.id() {
            self.set_branch(remote_tip)?;
            return Ok(restored);
        }
        let tree = self.repo.find_tree(tree_id)?;
        let signature = self.signature()?;
        let parent = self.repo.find_commit(remote_tip)?;
        let commit = self.repo.commit(
            None,
            &signature,
            &signature,
            &format!(
                "Restore {} index files to the registry's state",
                restored.len()
            ),
            &tree,
            &[&parent],
        )?;
        self.set_branch(commit)?;
        Ok(restored)
    }
}

fn changed_paths(
    repo: &Repository,
    old: &Tree<'_>,
    new: &Tree<'_>,
) -> Result<Vec<String>, git2::Error> {
    let mut options = DiffOptions::new();
    options.skip_binary_check(true);
    let diff = repo.diff_tree_to_tree(Some(old), Some(new), Some(&mut options))?;
    let mut paths = Vec::new();
    for delta in diff.deltas() {
        for file in [delta.old_file(), delta.new_file()] {
            if delta.status() == Delta::Unmodified {
                continue;
            }
            if let Some(path) = file.path().and_then(Path::to_str) {
                paths.push(path.to_owned());
            }
        }
    }
    Ok(paths)
}
