//! Fetching and pushing: how the clone meets its remote, and how a refused push is told apart
//! from a failed one.

use std::cell::RefCell;
use std::path::Path;

use git2::{AutotagOption, ErrorCode, FetchOptions, Oid, PushOptions, RemoteCallbacks, Repository};

use super::auth;
use super::repo::{IndexRepo, MAINTENANCE_OVERDUE};

/// Why a push did not land.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The remote refused the update (it moved, or a hook declined); the message is the
    /// remote's.
    #[error("the remote refused the push: {0}")]
    Refused(String),
    /// The remote could not be reached or the transfer failed.
    #[error("the push failed: {0}")]
    Transport(#[from] git2::Error),
}

impl IndexRepo {
    fn callbacks(&self) -> RemoteCallbacks<'_> {
        auth::remote_callbacks(&self.config, self.known_hosts.as_ref())
    }

    /// Fetches the remote's branch and returns its tip (`None` when the remote has no such
    /// branch). Neither the local branch nor the remembered remote tip moves.
    ///
    /// # Errors
    ///
    /// Fails when the remote cannot be reached.
    pub fn fetch(&self) -> Result<Option<Oid>, git2::Error> {
        let Some(url) = self.config.remote_url.as_deref() else {
            return Ok(None);
        };
        let mut remote = self.repo.remote_anonymous(url)?;
        let mut options = FetchOptions::new();
        options
            .remote_callbacks(self.callbacks())
            .download_tags(AutotagOption::None)
            .prune(git2::FetchPrune::On);
        remote.fetch(
            &["+refs/heads/*:refs/remotes/origin/*"],
            Some(&mut options),
            None,
        )?;
        let tip = self.repo.refname_to_id(&self.tracking_ref).ok();
        if tip.is_none() {
            let others = self.remote_branches()?;
            if !others.is_empty() {
                return Err(git2::Error::new(
                    git2::ErrorCode::NotFound,
                    git2::ErrorClass::Reference,
                    format!(
                        "the remote has no branch `{}` but has {}: set KTRA_GIT_BRANCH \
                         (index_config.branch) to the branch that holds the index; a new \
                         branch is started only on a remote without branches",
                        self.config.branch,
                        others
                            .iter()
                            .map(|name| format!("`{name}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
        Ok(tip)
    }

    /// Lists the remote's branches as the last fetch saw them.
    fn remote_branches(&self) -> Result<Vec<String>, git2::Error> {
        let mut names = Vec::new();
        for reference in self.repo.references_glob("refs/remotes/origin/*")? {
            let reference = reference?;
            names.push(
                reference
                    .name()?
                    .trim_start_matches("refs/remotes/origin/")
                    .to_owned(),
            );
        }
        Ok(names)
    }

    /// Pushes the local branch, without force.
    ///
    /// # Errors
    ///
    /// [`PushError::Refused`] when the remote declined the update (check with a fetch whether
    /// it moved), [`PushError::Transport`] when it could not be reached.
    pub fn push(&mut self) -> Result<(), PushError> {
        let (Some(url), Some(tip)) = (self.config.remote_url.clone(), self.tip()) else {
            return Ok(());
        };
        if let Some(directory) = self.file_remote.clone() {
            let result = self.push_to_directory(&directory, tip);
            if matches!(result, Err(PushError::Transport(_))) {
                // Reopen next time: the directory may have been replaced.
                self.file_remote_repo = None;
            }
            result?;
            return self.pushed(tip);
        }
        let refused = RefCell::new(None::<String>);
        let remote_said = RefCell::new(String::new());
        {
            let mut remote = self.repo.remote_anonymous(&url)?;
            let mut callbacks = self.callbacks();
            callbacks.push_update_reference(|reference, status| {
                if let Some(message) = status {
                    *refused.borrow_mut() = Some(format!("{reference}: {message}"));
                }
                Ok(())
            });
            // What the server prints (a hook's reason for refusing, say) arrives here.
            callbacks.sideband_progress(|text| {
                let mut said = remote_said.borrow_mut();
                if said.len() < 4096 {
                    said.push_str(&String::from_utf8_lossy(text));
                }
                true
            });
            let mut options = PushOptions::new();
            options.remote_callbacks(callbacks);
            let refspec = format!("{0}:{0}", self.branch_ref);
            match remote.push(&[refspec.as_str()], Some(&mut options)) {
                Ok(()) => {}
                Err(error) if error.code() == ErrorCode::NotFastForward => {
                    return Err(PushError::Refused(error.message().to_owned()));
                }
                Err(error) => return Err(PushError::Transport(error)),
            }
        }
        if let Some(message) = refused.into_inner() {
            let said = remote_said.into_inner();
            let said = said.trim();
            return Err(PushError::Refused(if said.is_empty() {
                message
            } else {
                format!("{message} (remote: {said})")
            }));
        }
        self.pushed(tip)
    }

    fn pushed(&mut self, tip: Oid) -> Result<(), PushError> {
        self.remote_tip = Some(tip);
        self.repo
            .reference(&self.tracking_ref, tip, true, "ktra: pushed")?;
        self.rounds += 1;
        // Under sustained load maintenance waits for a quiet moment (see `maintain_if_due`),
        // unless objects have piled up for very long.
        if self.rounds - self.maintained_at >= MAINTENANCE_OVERDUE {
            self.maintain();
        }
        Ok(())
    }

    /// Pushes to a `file://` remote: the objects are in its database already (the clone writes
    /// there), so the branch moves, and only if it still points where we last saw it.
    fn push_to_directory(&mut self, directory: &Path, tip: Oid) -> Result<(), PushError> {
        if self.file_remote_repo.is_none() {
            self.file_remote_repo = Some(Repository::open_bare(directory)?);
        }
        let Some(remote) = self.file_remote_repo.as_ref() else {
            return Err(PushError::Transport(git2::Error::from_str(
                "the remote is not open",
            )));
        };
        let current = remote.refname_to_id(&self.branch_ref).ok();
        if current != self.remote_tip {
            return Err(PushError::Refused(format!(
                "{}: the remote moved",
                self.branch_ref
            )));
        }
        // The clone writes into the remote's object database (see `open`), so the objects are
        // there already; only the branch moves.
        let moved = match current {
            Some(old) => remote.reference_matching(&self.branch_ref, tip, true, old, "ktra: push"),
            None => remote.reference(&self.branch_ref, tip, false, "ktra: push"),
        };
        match moved {
            Ok(_) => Ok(()),
            Err(error)
                if matches!(
                    error.code(),
                    ErrorCode::Modified | ErrorCode::Exists | ErrorCode::Locked
                ) =>
            {
                Err(PushError::Refused(format!(
                    "{}: {}",
                    self.branch_ref,
                    error.message()
                )))
            }
            Err(error) => Err(PushError::Transport(error)),
        }
    }
}
