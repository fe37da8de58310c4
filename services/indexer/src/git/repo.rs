//! The indexer's clone of the index: a bare repository, written with libgit2.
//!
//! Trees are built directly with libgit2's tree updater, touching only the paths that change
//! and their parent trees: no work tree, no scan, so the cost of a commit does not grow with the
//! number of crates. A push counts as done only when libgit2 reports no per-reference error:
//! `git_remote_push` returns success even when the server refused the update, and the refusal
//! arrives only through the `push_update_reference` callback.

use std::path::{Path, PathBuf};

use git2::build::TreeUpdateBuilder;
use git2::{ErrorCode, FileMode, ObjectType, Oid, Repository, Signature, Tree};

use crate::config::GitConfig;
use crate::error::IndexerError;
use crate::git::clone_lock::CloneLock;
use crate::git::known_hosts::KnownHosts;
use crate::git::maintenance;

/// One file to write (or, with `None`, remove) in the index.
#[derive(Debug, Clone)]
pub struct FileChange {
    /// The path relative to the index root.
    pub path: String,
    /// The new content; `None` removes the file.
    pub content: Option<bytes::Bytes>,
}

/// The indexer's bare clone and its remote.
pub struct IndexRepo {
    pub(super) repo: Repository,
    pub(super) config: GitConfig,
    pub(super) known_hosts: Option<KnownHosts>,
    pub(super) branch_ref: String,
    pub(super) tracking_ref: String,
    /// The remote's tip as last seen (after a fetch or our own push); `None` for an empty
    /// remote or when there is no remote.
    pub(super) remote_tip: Option<Oid>,
    /// The remote's directory when it is a `file://` URL: the clone writes its objects into
    /// the remote's database and pushes by moving the branch with a compare-and-swap, which
    /// costs nothing that grows with the index.
    pub(super) file_remote: Option<PathBuf>,
    /// The `file://` remote, opened once.
    pub(super) file_remote_repo: Option<Repository>,
    /// Rounds pushed since start, to space out maintenance.
    pub(super) rounds: u64,
    /// `rounds` when maintenance last started.
    pub(super) maintained_at: u64,
    /// Packs objects in the background.
    pub(super) maintainer: maintenance::Maintainer,
}

impl std::fmt::Debug for IndexRepo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexRepo")
            .field("path", &self.repo.path())
            .field("branch", &self.config.branch)
            .field("remote_tip", &self.remote_tip)
            .finish_non_exhaustive()
    }
}

/// Rounds after which an idle indexer runs a maintenance pass.
const MAINTENANCE_INTERVAL: u64 = 64;

/// Rounds after which a maintenance pass runs even while busy.
pub(super) const MAINTENANCE_OVERDUE: u64 = 16_384;

/// Returns whether a path is one the index manages: `config.json` or a crate's file at its
/// canonical path. Other files (a README someone added) are left alone.
pub fn is_index_path(path: &str) -> bool {
    if path == "config.json" {
        return true;
    }
    let name = path.rsplit('/').next().unwrap_or_default();
    ktra_core::name::validate_crate_name(name).is_ok()
        && name.to_ascii_lowercase() == name
        && ktra_core::index::index_path(name) == path
}

fn file_remote_path(url: &str) -> Option<PathBuf> {
    url.strip_prefix("file://").map(PathBuf::from)
}

impl IndexRepo {
    /// Opens the clone under `config.local_path` (creating it if needed), creates a missing
    /// `file://` remote, and fetches the remote's branch; the local branch is reset to it.
    /// Holding the clone's lock, it removes the lock files git left in the clone as stale, and
    /// a branch lock in a `file://` remote that is too old to belong to a live writer.
    ///
    /// # Errors
    ///
    /// Fails when the clone cannot be opened or created, or the first fetch fails.
    pub fn open(config: GitConfig, _lock: &CloneLock) -> Result<Self, IndexerError> {
        let path = config.local_path.join("repo.git");
        std::fs::create_dir_all(&config.local_path).map_err(|error| {
            IndexerError::Setup(format!("{}: {error}", config.local_path.display()))
        })?;
        // The caller holds the clone's lock, so a lock git left in the clone is stale.
        super::stale_locks::remove_stale_locks(&path)?;
        if let Some(remote) = config.remote_url.as_deref().and_then(file_remote_path) {
            super::stale_locks::remove_abandoned_branch_lock(&remote, &config.branch)?;
        }
        let repo = match Repository::open_bare(&path) {
            Ok(repo) => repo,
            Err(error) if error.code() == ErrorCode::NotFound => Repository::init_bare(&path)?,
            Err(error) => return Err(error.into()),
        };
        if let Some(remote) = config.remote_url.as_deref().and_then(file_remote_path)
            && Repository::open_bare(&remote).is_err()
        {
            tracing::info!(path = %remote.display(), "creating the file:// remote as an empty bare repository");
            let created = Repository::init_bare(&remote)?;
            created.set_head(&format!("refs/heads/{}", config.branch))?;
        }
        let known_hosts = config
            .ssh_known_hosts
            .as_deref()
            .map(KnownHosts::load)
            .transpose()?;
        let branch_ref = format!("refs/heads/{}", config.branch);
        let tracking_ref = format!("refs/remotes/origin/{}", config.branch);
        repo.set_head(&branch_ref)?;
        let file_remote = config.remote_url.as_deref().and_then(file_remote_path);
        if let Some(remote) = &file_remote {
            // A file:// remote is on this machine: write objects straight into its object
            // database, so a push only moves the branch. The clone keeps its own refs.
            let remote_repo = Repository::open_bare(remote)?;
            repo.set_odb(&remote_repo.odb()?)?;
        }
        let maintainer = maintenance::Maintainer::spawn(
            path.clone(),
            file_remote.clone(),
            maintenance::remote_packs_file(&config.local_path),
        );
        let mut opened = Self {
            repo,
            config,
            known_hosts,
            branch_ref,
            tracking_ref,
            remote_tip: None,
            file_remote,
            file_remote_repo: None,
            rounds: 0,
            maintained_at: 0,
            maintainer,
        };
        if opened.has_remote() {
            match opened.fetch() {
                Ok(Some(tip)) => {
                    // Unpushed local commits are dropped: they were never acknowledged, so the
                    // API sends their states again.
                    opened.remote_tip = Some(tip);
                    opened.set_branch(tip)?;
                }
                Ok(None) => tracing::info!("the remote has no branch yet; it will be initialised"),
                // A remote holding other branches is never given an orphan branch.
                Err(error)
                    if error.class() == git2::ErrorClass::Reference
                        && error.code() == git2::ErrorCode::NotFound =>
                {
                    return Err(IndexerError::Setup(error.message().to_owned()));
                }
                Err(error) => tracing::warn!(
                    %error,
                    "cannot reach the remote; working from the local clone until it answers"
                ),
            }
        }
        Ok(opened)
    }

    /// Returns whether a remote is configured.
    pub fn has_remote(&self) -> bool {
        self.config.remote_url.is_some()
    }

    /// Returns the local branch's tip.
    pub fn tip(&self) -> Option<Oid> {
        self.repo.refname_to_id(&self.branch_ref).ok()
    }

    /// Returns the remote's tip as last seen.
    pub fn remote_tip(&self) -> Option<Oid> {
        self.remote_tip
    }

    /// Returns whether local commits wait for a push.
    pub fn has_unpushed(&self) -> bool {
        self.has_remote() && self.tip().is_some() && self.tip() != self.remote_tip
    }

    pub(super) fn set_branch(&self, oid: Oid) -> Result<(), git2::Error> {
        self.repo
            .reference(&self.branch_ref, oid, true, "ktra: move branch")?;
        Ok(())
    }

    pub(super) fn tree_of(&self, commit: Option<Oid>) -> Result<Tree<'_>, git2::Error> {
        match commit {
            Some(oid) => self.repo.find_commit(oid)?.tree(),
            None => {
                let empty = self.repo.treebuilder(None)?.write()?;
                self.repo.find_tree(empty)
            }
        }
    }

    pub(super) fn signature(&self) -> Result<Signature<'static>, git2::Error> {
        Signature::now(&self.config.name, &self.config.email)
    }

    /// Reads a file at the local tip.
    ///
    /// # Errors
    ///
    /// Fails when the repository cannot be read.
    pub fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, git2::Error> {
        let tree = self.tree_of(self.tip())?;
        read_from_tree(&self.repo, &tree, path)
    }

    /// Lists every index file at the local tip.
    ///
    /// # Errors
    ///
    /// Fails when the repository cannot be read.
    pub fn index_files(&self) -> Result<Vec<(String, Oid)>, git2::Error> {
        self.index_files_at(self.tip())
    }

    /// Lists every index file of a commit (`None`: an empty index).
    ///
    /// # Errors
    ///
    /// Fails when the repository cannot be read.
    pub fn index_files_at(&self, commit: Option<Oid>) -> Result<Vec<(String, Oid)>, git2::Error> {
        let tree = self.tree_of(commit)?;
        let mut files = Vec::new();
        tree.walk(git2::TreeWalkMode::PreOrder, |root, entry| {
            if entry.kind() == Some(ObjectType::Blob) {
                let path = format!("{root}{}", entry.name().unwrap_or_default());
                if is_index_path(&path) {
                    files.push((path, entry.id()));
                }
            }
            git2::TreeWalkResult::Ok
        })?;
        Ok(files)
    }

    /// Writes `changes` on top of the local tip and commits, unless the tree is unchanged.
    /// Returns the new commit.
    ///
    /// # Errors
    ///
    /// Fails when the objects cannot be written.
    pub fn commit(
        &self,
        changes: &[FileChange],
        message: &str,
    ) -> Result<Option<Oid>, git2::Error> {
        let blobs = changes
            .iter()
            .map(|change| {
                let blob = change
                    .content
                    .as_ref()
                    .map(|content| self.repo.blob(content))
                    .transpose()?;
                Ok((change.path.clone(), blob))
            })
            .collect::<Result<Vec<_>, git2::Error>>()?;
        self.commit_blobs(&blobs, message)
    }

    /// Writes a blob and returns its id.
    ///
    /// # Errors
    ///
    /// Fails when the object cannot be written.
    pub fn write_blob(&self, content: &[u8]) -> Result<Oid, git2::Error> {
        self.repo.blob(content)
    }

    /// Like [`IndexRepo::commit`], with blobs already written: each path gets the blob, or is
    /// removed for `None`.
    ///
    /// # Errors
    ///
    /// Fails when the objects cannot be written.
    pub fn commit_blobs(
        &self,
        changes: &[(String, Option<Oid>)],
        message: &str,
    ) -> Result<Option<Oid>, git2::Error> {
        let parent = self.tip();
        let base = self.tree_of(parent)?;
        let mut update = TreeUpdateBuilder::new();
        for (path, blob) in changes {
            match blob {
                Some(blob) => {
                    update.upsert(path.as_str(), *blob, FileMode::Blob);
                }
                None => {
                    update.remove(path.as_str());
                }
            }
        }
        let tree_id = update.create_updated(&self.repo, &base)?;
        if tree_id == base.id() && parent.is_some() {
            return Ok(None);
        }
        let tree = self.repo.find_tree(tree_id)?;
        let signature = self.signature()?;
        let parents = match parent {
            Some(oid) => vec![self.repo.find_commit(oid)?],
            None => Vec::new(),
        };
        let parent_refs: Vec<&git2::Commit<'_>> = parents.iter().collect();
        let commit = self.repo.commit(
            Some(&self.branch_ref),
            &signature,
            &signature,
            message,
            &tree,
            &parent_refs,
        )?;
        Ok(Some(commit))
    }

    /// Starts a maintenance pass if enough rounds were pushed since the last one. The writer
    /// calls this when it has nothing to do, so packing never competes with a burst.
    pub fn maintain_if_due(&mut self) {
        if self.rounds - self.maintained_at >= MAINTENANCE_INTERVAL {
            self.maintain();
        }
    }

    pub(super) fn maintain(&mut self) {
        self.maintained_at = self.rounds;
        self.maintainer.poke();
    }

    /// Returns the path of the bare repository.
    pub fn path(&self) -> &Path {
        self.repo.path()
    }
}

pub(super) fn entry_id(tree: &Tree<'_>, path: &str) -> Option<Oid> {
    tree.get_path(Path::new(path))
        .ok()
        .filter(|entry| entry.kind() == Some(ObjectType::Blob))
        .map(|entry| entry.id())
}

fn read_from_tree(
    repo: &Repository,
    tree: &Tree<'_>,
    path: &str,
) -> Result<Option<Vec<u8>>, git2::Error> {
    match entry_id(tree, path) {
        Some(oid) => Ok(Some(repo.find_blob(oid)?.content().to_vec())),
        None => Ok(None),
    }
}
