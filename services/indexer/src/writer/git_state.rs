//! One round of git work, on the blocking pool: refuse what must not be written, commit the
//! rest as one tree update, push, and move onto the remote when it moved.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use git2::Oid;

use crate::error::IndexerError;
use crate::foreign;
use crate::git::push::PushError;
use crate::git::repo::{FileChange, IndexRepo};
use crate::metrics::IndexerMetrics;
use crate::revisions::Revisions;

/// How many times one round re-fetches and re-pushes after the remote moved.
const MAX_REBASES_PER_ROUND: usize = 5;

/// What the writer moves onto the blocking pool for each round.
pub(super) struct GitState {
    pub(super) repo: IndexRepo,
    pub(super) revisions: Revisions,
    pub(super) metrics: Arc<IndexerMetrics>,
    /// Replace crate files never written here even when they list versions the store lacks.
    pub(super) overwrite_foreign_files: bool,
}

/// What one round took, and which files it refused.
#[derive(Debug, Clone)]
pub(super) struct RoundTimes {
    pub(super) commit: Option<Oid>,
    pub(super) committing: Duration,
    pub(super) pushing: Duration,
    /// Paths refused (see [`crate::foreign`]), with why.
    pub(super) refused: HashMap<String, String>,
}

/// One file a round means to write: a wanted state taken for the round.
#[derive(Debug, Clone)]
pub(super) struct Planned {
    pub(super) path: String,
    /// The crate; `None` for `config.json`.
    pub(super) name: Option<String>,
    pub(super) revision: u64,
    /// Empty removes the file.
    pub(super) content: Bytes,
}

fn commit_message(batch: &[&Planned]) -> String {
    let crates: Vec<String> = batch
        .iter()
        .filter_map(|planned| {
            planned
                .name
                .as_ref()
                .map(|name| format!("{name} (revision {})", planned.revision))
        })
        .collect();
    match crates.as_slice() {
        [] => "Update config.json".to_owned(),
        [one] => format!("Update {one}"),
        many => {
            let mut message = format!("Update {} crates\n\n", many.len());
            for line in many.iter().take(100) {
                message.push_str(line);
                message.push('\n');
            }
            if many.len() > 100 {
                message.push_str(&format!("and {} more\n", many.len() - 100));
            }
            message
        }
    }
}

impl GitState {
    /// One round: optionally look for foreign commits, leave out the files
    /// [`crate::foreign`] refuses, commit the rest of `batch`, push (re-applying our state if
    /// the remote moved), and record the pushed revisions.
    pub(super) fn round(
        &mut self,
        batch: &[Planned],
        check_remote: bool,
    ) -> Result<RoundTimes, IndexerError> {
        if check_remote && self.repo.has_remote() {
            self.follow_remote()?;
        }
        let refused = self.foreign_refusals(batch)?;
        let written: Vec<&Planned> = batch
            .iter()
            .filter(|planned| !refused.contains_key(&planned.path))
            .collect();
        let changes: Vec<FileChange> = written
            .iter()
            .map(|planned| FileChange {
                path: planned.path.clone(),
                content: (!planned.content.is_empty()).then(|| planned.content.clone()),
            })
            .collect();
        let message = commit_message(&written);
        let revisions: Vec<(String, u64)> = written
            .iter()
            .filter(|planned| planned.name.is_some())
            .map(|planned| (planned.path.clone(), planned.revision))
            .collect();
        let started = std::time::Instant::now();
        let commit = if changes.is_empty() {
            None
        } else {
            let span = tracing::info_span!(
                "git.commit",
                files = changes.len(),
                commit = tracing::field::Empty
            );
            let _entered = span.enter();
            let commit = self.repo.commit(&changes, &message)?;
            if let Some(commit) = commit {
                span.record("commit", commit.to_string());
            }
            commit
        };
        let committing = started.elapsed();
        {
            let _entered = tracing::info_span!("git.push").entered();
            self.push()?;
        }
        let pushing = started.elapsed() - committing;
        self.revisions.record(&revisions)?;
        Ok(RoundTimes {
            commit: commit.or_else(|| self.repo.tip()),
            committing,
            pushing,
            refused,
        })
    }

    /// Finds the crate files in `batch` that this indexer never wrote and whose new content
    /// would drop versions the current file lists; returns their paths with why.
    fn foreign_refusals(&self, batch: &[Planned]) -> Result<HashMap<String, String>, IndexerError> {
        let mut refused = HashMap::new();
        if self.overwrite_foreign_files {
            return Ok(refused);
        }
        for planned in batch {
            let Some(name) = &planned.name else {
                continue;
            };
            if planned.content.is_empty() || self.revisions.get(&planned.path).is_some() {
                continue;
            }
            let Some(existing) = self.repo.read_file(&planned.path)? else {
                continue;
            };
            let dropped = foreign::dropped_versions(&existing, &planned.content);
            if dropped.is_empty() {
                continue;
            }
            let message = foreign::refusal(name, &dropped);
            tracing::error!(crate_name = name, dropped = dropped.len(), "{message}");
            self.metrics.foreign_refusals.inc();
            refused.insert(planned.path.clone(), message);
        }
        Ok(refused)
    }

    /// Fetches; if the remote moved, moves our branch onto it with our state re-applied.
    pub(super) fn follow_remote(&mut self) -> Result<bool, IndexerError> {
        let after = self.repo.fetch()?;
        if after == self.repo.remote_tip() {
            return Ok(false);
        }
        let restored = self.repo.rebase_onto_remote(after)?;
        self.metrics.remote_moves.inc();
        tracing::warn!(
            restored = restored.len(),
            "the remote moved; our state is re-applied on top of it"
        );
        Ok(true)
    }

    pub(super) fn push(&mut self) -> Result<(), IndexerError> {
        for _ in 0..MAX_REBASES_PER_ROUND {
            if !self.repo.has_unpushed() {
                return Ok(());
            }
            let pushed = self.repo.push();
            if pushed.is_err() {
                self.metrics.push_failures.inc();
            }
            match pushed {
                Ok(()) => return Ok(()),
                Err(PushError::Refused(message)) => {
                    if !self.follow_remote()? {
                        return Err(IndexerError::Git(git2::Error::from_str(&format!(
                            "the remote refused the push: {message}"
                        ))));
                    }
                }
                Err(PushError::Transport(error)) => return Err(error.into()),
            }
        }
        Err(IndexerError::Git(git2::Error::from_str(
            "the remote kept moving while we pushed",
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writer::CONFIG_PATH;

    #[test]
    fn commit_messages_name_the_crates() {
        let planned = |path: &str, name: Option<&str>, revision| Planned {
            path: path.to_owned(),
            name: name.map(str::to_owned),
            revision,
            content: Bytes::new(),
        };
        let one = planned("3/a/abc", Some("abc"), 3);
        assert_eq!(commit_message(&[&one]), "Update abc (revision 3)");
        let many: Vec<Planned> = (0..102)
            .map(|index| planned(&format!("p{index}"), Some(&format!("c{index}")), 1))
            .collect();
        let message = commit_message(&many.iter().collect::<Vec<_>>());
        assert!(message.starts_with("Update 102 crates\n\nc0 (revision 1)\n"));
        assert!(message.ends_with("and 2 more\n"));
        assert_eq!(
            commit_message(&[&planned(CONFIG_PATH, None, 0)]),
            "Update config.json"
        );
    }
}
