//! Rebuilds and verifies: the store streams every crate's file, and the writer compares the
//! whole index with them and, unless verifying only, makes it equal in one commit.

use std::collections::{BTreeMap, HashSet};

use git2::{ObjectType, Oid};

use super::{CONFIG_PATH, Update, Writer};
use crate::error::IndexerError;
use crate::git::repo::is_index_path;

/// What a rebuild found (and, unless verifying only, changed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RebuildReport {
    /// Crate files received.
    pub crates: u64,
    /// Paths missing from the index.
    pub added: Vec<String>,
    /// Paths whose content differed.
    pub changed: Vec<String>,
    /// Index paths the store does not know.
    pub removed: Vec<String>,
    /// Whether `config.json` differed.
    pub config_changed: bool,
    /// The commit made, if any.
    pub commit: Option<String>,
}

/// A rebuild in progress.
#[derive(Debug, Default)]
pub(super) struct Rebuild {
    verify_only: bool,
    files: BTreeMap<String, (Oid, u64)>,
    /// Paths pushed by ordinary updates while the rebuild ran: newer than the rebuild's view.
    pub(super) touched: HashSet<String>,
}

impl Writer {
    pub(super) async fn rebuild_chunk(&mut self, verify_only: bool, files: Vec<Update>) {
        let rebuild = self.rebuild.get_or_insert_with(|| Rebuild {
            verify_only,
            ..Rebuild::default()
        });
        rebuild.verify_only |= verify_only;
        let write = !rebuild.verify_only;
        let hashed = self
            .with_git(move |git| {
                files
                    .into_iter()
                    .map(|file| {
                        let oid = if write {
                            git.repo.write_blob(&file.content)?
                        } else {
                            Oid::hash_object(ObjectType::Blob, &file.content)?
                        };
                        Ok((file.krate.index_path().to_owned(), oid, file.revision))
                    })
                    .collect::<Result<Vec<_>, IndexerError>>()
            })
            .await;
        match hashed {
            Ok(hashed) => {
                if let Some(rebuild) = self.rebuild.as_mut() {
                    for (path, oid, revision) in hashed {
                        rebuild.files.insert(path, (oid, revision));
                    }
                }
            }
            Err(error) => {
                tracing::error!(%error, "rebuild chunk failed; the rebuild is abandoned");
                self.rebuild = None;
            }
        }
    }

    pub(super) async fn rebuild_finish(&mut self) -> Result<RebuildReport, IndexerError> {
        let rebuild = self.rebuild.take().ok_or_else(|| {
            IndexerError::BadRequest("no rebuild in progress (a chunk failed?)".to_owned())
        })?;
        let wanted_paths: HashSet<String> = self.wanted.keys().cloned().collect();
        let config_json = self.config_json.clone();
        let report = self
            .with_git(move |git| {
                // Verify compares with what the remote serves; a rebuild first moves onto the
                // remote (re-applying our state) and compares with the result.
                let compared = if rebuild.verify_only {
                    if git.repo.has_remote() {
                        git.repo.fetch()?
                    } else {
                        git.repo.tip()
                    }
                } else {
                    if git.repo.has_remote() {
                        git.follow_remote()?;
                    }
                    git.repo.tip()
                };
                let current: BTreeMap<String, Oid> =
                    git.repo.index_files_at(compared)?.into_iter().collect();
                let config_now = current.get(CONFIG_PATH).copied();
                let config_expected = Oid::hash_object(ObjectType::Blob, &config_json)?;
                let mut report = RebuildReport {
                    crates: u64::try_from(rebuild.files.len()).unwrap_or(u64::MAX),
                    config_changed: config_now != Some(config_expected),
                    ..RebuildReport::default()
                };
                let mut changes = Vec::new();
                let mut revisions = Vec::new();
                let protected =
                    |path: &str| rebuild.touched.contains(path) || wanted_paths.contains(path);
                for (path, (oid, revision)) in &rebuild.files {
                    if protected(path) {
                        continue;
                    }
                    revisions.push((path.clone(), *revision));
                    match current.get(path) {
                        Some(existing) if existing == oid => continue,
                        Some(_) => report.changed.push(path.clone()),
                        None => report.added.push(path.clone()),
                    }
                    changes.push((path.clone(), Some(*oid)));
                }
                for path in current.keys() {
                    if path != CONFIG_PATH
                        && is_index_path(path)
                        && !rebuild.files.contains_key(path)
                        && !protected(path)
                    {
                        report.removed.push(path.clone());
                        changes.push((path.clone(), None));
                    }
                }
                if rebuild.verify_only {
                    return Ok(report);
                }
                if report.config_changed {
                    changes.push((
                        CONFIG_PATH.to_owned(),
                        Some(git.repo.write_blob(&config_json)?),
                    ));
                }
                let message = format!(
                    "Rebuild the index from the store: {} added, {} changed, {} removed",
                    report.added.len(),
                    report.changed.len(),
                    report.removed.len()
                );
                let commit = if changes.is_empty() {
                    None
                } else {
                    git.repo.commit_blobs(&changes, &message)?
                };
                git.push()?;
                git.revisions.replace(&revisions, &report.removed)?;
                report.commit = commit.map(|oid| oid.to_string());
                Ok(report)
            })
            .await?;
        if report.commit.is_some() {
            self.wanted.remove(CONFIG_PATH);
        }
        let differs =
            !(report.added.is_empty() && report.changed.is_empty() && report.removed.is_empty());
        if differs {
            // A verify that found the remote wrong (a foreign commit, say) has the next round
            // fetch and restore the store's state at once, not at the next scheduled fetch.
            self.check_remote = true;
        }
        Ok(report)
    }
}
