//! The one writer of the index.
//!
//! A single task owns the clone. It keeps the latest wanted state of each file (a newer
//! revision replaces an older one), and works in rounds: take every wanted state, write them
//! into one tree update, commit once if anything changed, push once, and only then acknowledge.
//! Updates that arrive while a round is in flight wait in the channel and make up the next
//! round, so a burst of publishes becomes a few commits and a few pushes.
//!
//! A push the remote refuses is followed by a fetch: if the remote moved, the branch is moved
//! onto the remote's tip with our state re-applied (never a merge), and pushed again. Other
//! failures are retried with exponential backoff while new updates keep being accepted.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use git2::{ObjectType, Oid};
use ktra_core::index::IndexConfig;
use tokio::sync::{mpsc, oneshot};

use crate::config::GitConfig;
use crate::config_json;
use crate::error::IndexerError;
use crate::foreign;
use crate::git::repo::{FileChange, IndexRepo, PushError, is_index_path};
use crate::metrics::IndexerMetrics;
use crate::revisions::Revisions;

/// The path of the index configuration.
pub const CONFIG_PATH: &str = "config.json";

/// How many times one round re-fetches and re-pushes after the remote moved.
const MAX_REBASES_PER_ROUND: usize = 5;

/// The first wait after a failed round.
const INITIAL_BACKOFF: Duration = Duration::from_millis(100);

/// A crate's whole index file at one revision.
#[derive(Debug, Clone)]
pub struct Update {
    /// The span of the request that brought the update; the round that writes it is traced
    /// under it.
    pub span: tracing::Span,
    /// The crate name (for logs and acknowledgements).
    pub name: String,
    /// The file's path in the index.
    pub path: String,
    /// The store's revision of the file.
    pub revision: u64,
    /// The file's content; empty removes the file.
    pub content: Bytes,
}

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

/// Receives the revision in the index once it is pushed, or why the file was refused.
pub type Waiter = oneshot::Sender<Result<u64, String>>;

/// Requests to the writer.
#[derive(Debug)]
pub enum Command {
    /// Make files equal to these states; each sender gets the revision in the index once it is
    /// pushed.
    Apply(Vec<(Update, Waiter)>),
    /// Part of a rebuild: the store's state of some crates.
    RebuildChunk {
        /// Compare only; write nothing.
        verify_only: bool,
        /// The states.
        files: Vec<Update>,
    },
    /// The end of a rebuild: compare (and write) everything received.
    RebuildFinish(oneshot::Sender<Result<RebuildReport, IndexerError>>),
}

/// A handle to send the writer commands.
#[derive(Debug, Clone)]
pub struct WriterHandle {
    commands: mpsc::Sender<Command>,
}

impl WriterHandle {
    /// Sends a command.
    ///
    /// # Errors
    ///
    /// [`IndexerError::ShuttingDown`] when the writer has stopped.
    pub async fn send(&self, command: Command) -> Result<(), IndexerError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| IndexerError::ShuttingDown)
    }
}

/// A wanted file state and who waits for it.
#[derive(Debug)]
struct Wanted {
    name: Option<String>,
    revision: u64,
    content: Bytes,
    waiters: Vec<(u64, Waiter)>,
    /// The spans of the requests waiting (the first few), to trace the round under them.
    spans: Vec<tracing::Span>,
}

/// How many requesting spans a round links to.
const MAX_LINKED_SPANS: usize = 32;

/// A rebuild in progress.
#[derive(Debug, Default)]
struct Rebuild {
    verify_only: bool,
    files: BTreeMap<String, (Oid, u64)>,
    /// Paths pushed by ordinary updates while the rebuild ran: newer than the rebuild's view.
    touched: HashSet<String>,
}

/// What the writer moves onto the blocking pool for each round.
struct GitState {
    repo: IndexRepo,
    revisions: Revisions,
    metrics: Arc<IndexerMetrics>,
    /// Replace crate files never written here even when they list versions the store lacks.
    overwrite_foreign_files: bool,
}

/// What one round took, and which files it refused.
#[derive(Debug, Clone)]
struct RoundTimes {
    commit: Option<Oid>,
    committing: Duration,
    pushing: Duration,
    /// Paths refused (see [`crate::foreign`]), with why.
    refused: HashMap<String, String>,
}

/// The writer task's state.
pub struct Writer {
    git: Option<Box<GitState>>,
    metrics: Arc<IndexerMetrics>,
    wanted: BTreeMap<String, Wanted>,
    rebuild: Option<Rebuild>,
    commands: mpsc::Receiver<Command>,
    config: GitConfig,
    /// The configured `config.json`.
    config_json: Bytes,
    check_remote: bool,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("wanted", &self.wanted.len())
            .finish_non_exhaustive()
    }
}

/// One file a round means to write: a wanted state taken for the round.
#[derive(Debug, Clone)]
struct Planned {
    path: String,
    /// The crate; `None` for `config.json`.
    name: Option<String>,
    revision: u64,
    /// Empty removes the file.
    content: Bytes,
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
    fn round(&mut self, batch: &[Planned], check_remote: bool) -> Result<RoundTimes, IndexerError> {
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
    fn follow_remote(&mut self) -> Result<bool, IndexerError> {
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

    fn push(&mut self) -> Result<(), IndexerError> {
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

impl Writer {
    /// Opens the clone and the revision store and returns the writer and its handle.
    /// `config.json` is written at the first round when it says something else than
    /// `index_config` (see [`crate::config_json`]).
    ///
    /// # Errors
    ///
    /// Fails when the clone or the revision store cannot be opened, or the first fetch fails.
    pub async fn open(
        config: GitConfig,
        index_config: IndexConfig,
        metrics: Arc<IndexerMetrics>,
    ) -> Result<(Self, WriterHandle), IndexerError> {
        let git_config = config.clone();
        let git_metrics = Arc::clone(&metrics);
        let (git, current_config) = tokio::task::spawn_blocking(move || {
            let repo = IndexRepo::open(git_config.clone())?;
            let revisions = Revisions::open(&git_config.local_path)?;
            let current = repo.read_file(CONFIG_PATH)?;
            Ok::<_, IndexerError>((
                GitState {
                    repo,
                    revisions,
                    metrics: git_metrics,
                    overwrite_foreign_files: git_config.overwrite_foreign_files,
                },
                current,
            ))
        })
        .await
        .map_err(|error| IndexerError::Setup(error.to_string()))??;
        let (sender, commands) = mpsc::channel(1024);
        let mut wanted = BTreeMap::new();
        let update = config_json::update(current_config.as_deref(), &index_config);
        // What a rebuild compares with: the committed file when it already says the same.
        let config_json = match (&update, current_config) {
            (None, Some(current)) => Bytes::from(current),
            _ => update
                .clone()
                .unwrap_or_else(|| Bytes::from(index_config.to_json())),
        };
        if update.is_some() {
            wanted.insert(
                CONFIG_PATH.to_owned(),
                Wanted {
                    name: None,
                    revision: 0,
                    content: config_json.clone(),
                    waiters: Vec::new(),
                    spans: Vec::new(),
                },
            );
        }
        let writer = Self {
            git: Some(Box::new(git)),
            metrics,
            wanted,
            rebuild: None,
            commands,
            config,
            config_json,
            // The first round looks at the remote: it initialises an empty one, and catches
            // up when the remote was unreachable at start.
            check_remote: true,
        };
        Ok((writer, WriterHandle { commands: sender }))
    }

    /// Runs until every handle is dropped, then makes a last attempt to push what is wanted.
    ///
    /// The remote is fetched for foreign commits every fetch interval on a deadline that
    /// only a fetch moves: commands arriving more often than the interval do not postpone it.
    pub async fn run(mut self) {
        let fetch_interval = Duration::from_secs(self.config.fetch_interval_secs.max(1));
        let mut next_fetch = tokio::time::Instant::now() + fetch_interval;
        let mut backoff = INITIAL_BACKOFF;
        let mut open = true;
        while open {
            if self.wanted.is_empty() && !self.check_remote {
                if self.commands.is_empty()
                    && let Some(git) = self.git.as_mut()
                {
                    git.repo.maintain_if_due();
                }
                match tokio::time::timeout_at(next_fetch, self.commands.recv()).await {
                    Ok(Some(command)) => self.handle(command).await,
                    Ok(None) => open = false,
                    Err(_) => {}
                }
            }
            while let Ok(command) = self.commands.try_recv() {
                self.handle(command).await;
            }
            if tokio::time::Instant::now() >= next_fetch {
                self.check_remote = true;
            }
            if self.wanted.is_empty() && !self.check_remote {
                continue;
            }
            let fetches = self.check_remote;
            match self.round().await {
                Ok(()) => {
                    backoff = INITIAL_BACKOFF;
                    if fetches {
                        next_fetch = tokio::time::Instant::now() + fetch_interval;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, retry_in_ms = backoff.as_millis(), "index round failed");
                    let sleep = tokio::time::sleep(backoff);
                    tokio::pin!(sleep);
                    loop {
                        tokio::select! {
                            () = &mut sleep => break,
                            command = self.commands.recv() => match command {
                                Some(command) => self.handle(command).await,
                                None => { open = false; break; }
                            },
                        }
                    }
                    backoff = (backoff * 2).min(self.config.retry_max());
                }
            }
        }
        if !self.wanted.is_empty() {
            tracing::info!(
                files = self.wanted.len(),
                "pushing what is left before exiting"
            );
            if let Err(error) = self.round().await {
                tracing::warn!(%error, "the last round failed; the API will send these states again");
            }
        }
    }

    async fn handle(&mut self, command: Command) {
        match command {
            Command::Apply(updates) => {
                for (update, waiter) in updates {
                    self.merge(update, waiter);
                }
                self.metrics
                    .queue_depth
                    .set(i64::try_from(self.wanted.len()).unwrap_or(i64::MAX));
            }
            Command::RebuildChunk { verify_only, files } => {
                self.rebuild_chunk(verify_only, files).await
            }
            Command::RebuildFinish(reply) => {
                let report = self.rebuild_finish().await;
                let _ = reply.send(report);
            }
        }
    }

    fn merge(&mut self, update: Update, waiter: Waiter) {
        if let Some(wanted) = self.wanted.get_mut(&update.path) {
            if update.revision > wanted.revision {
                wanted.revision = update.revision;
                wanted.content = update.content;
                wanted.name = Some(update.name);
            }
            wanted.waiters.push((update.revision, waiter));
            if wanted.spans.len() < MAX_LINKED_SPANS {
                wanted.spans.push(update.span);
            }
            return;
        }
        let pushed = self
            .git
            .as_ref()
            .and_then(|git| git.revisions.get(&update.path));
        match pushed {
            // Already in the index (or superseded by what is): acknowledge at once.
            Some(pushed) if pushed >= update.revision => {
                self.metrics.acknowledged.inc();
                let _ = waiter.send(Ok(pushed));
            }
            _ => {
                self.wanted.insert(
                    update.path,
                    Wanted {
                        name: Some(update.name),
                        revision: update.revision,
                        content: update.content,
                        waiters: vec![(update.revision, waiter)],
                        spans: vec![update.span],
                    },
                );
            }
        }
    }

    /// Runs blocking git work with the clone, and puts the clone back.
    async fn with_git<T: Send + 'static>(
        &mut self,
        work: impl FnOnce(&mut GitState) -> Result<T, IndexerError> + Send + 'static,
    ) -> Result<T, IndexerError> {
        let Some(mut git) = self.git.take() else {
            return Err(IndexerError::Setup(
                "the clone was lost by an earlier panic".to_owned(),
            ));
        };
        let joined = tokio::task::spawn_blocking(move || {
            let result = work(&mut git);
            (git, result)
        })
        .await;
        match joined {
            Ok((git, result)) => {
                self.git = Some(git);
                result
            }
            Err(error) => Err(IndexerError::Setup(format!("git task panicked: {error}"))),
        }
    }

    async fn round(&mut self) -> Result<(), IndexerError> {
        let batch: Vec<Planned> = self
            .wanted
            .iter()
            .take(self.config.max_batch)
            .map(|(path, wanted)| Planned {
                path: path.clone(),
                name: wanted.name.clone(),
                revision: wanted.revision,
                content: wanted.content.clone(),
            })
            .collect();
        let check_remote = std::mem::take(&mut self.check_remote);
        let started = std::time::Instant::now();
        // The round is traced under the first request it serves, linked to the others.
        let mut requesters = batch
            .iter()
            .filter_map(|planned| self.wanted.get(&planned.path))
            .flat_map(|wanted| wanted.spans.iter());
        let round_span = match requesters.next() {
            Some(first) => {
                tracing::info_span!(parent: first, "indexer.round", files = batch.len(), commit = tracing::field::Empty)
            }
            None => tracing::info_span!(
                "indexer.round",
                files = batch.len(),
                commit = tracing::field::Empty
            ),
        };
        for other in requesters.take(MAX_LINKED_SPANS) {
            round_span.follows_from(other);
        }
        let in_round = round_span.clone();
        let planned = batch.clone();
        let outcome = self
            .with_git(move |git| in_round.in_scope(|| git.round(&planned, check_remote)))
            .await;
        let times = match outcome {
            Ok(times) => times,
            Err(error) => {
                self.check_remote |= check_remote;
                self.metrics.round_failures.inc();
                return Err(error);
            }
        };
        let commit = times.commit;
        if let Some(commit) = commit {
            round_span.record("commit", commit.to_string());
        }
        self.metrics.rounds.inc();
        self.metrics.batch_size.observe(batch.len() as f64);
        self.metrics
            .commit_duration
            .observe(times.committing.as_secs_f64());
        self.metrics
            .push_duration
            .observe(times.pushing.as_secs_f64());
        self.metrics.last_push.set(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |since| since.as_secs_f64()),
        );
        tracing::info!(
            files = batch.len() - times.refused.len(),
            refused = times.refused.len(),
            commit = commit.map(|oid| oid.to_string()).unwrap_or_default(),
            elapsed_ms = started.elapsed().as_millis(),
            "index round done"
        );
        for planned in batch {
            let refusal = times.refused.get(&planned.path);
            if refusal.is_none()
                && let Some(rebuild) = self.rebuild.as_mut()
            {
                rebuild.touched.insert(planned.path.clone());
            }
            let Some(mut wanted) = self.wanted.remove(&planned.path) else {
                continue;
            };
            debug_assert_eq!(
                wanted.revision, planned.revision,
                "wanted states change only between rounds"
            );
            for (_, waiter) in wanted.waiters.drain(..) {
                match refusal {
                    // Refused files leave the queue: the store keeps them marked, and the
                    // API's resender offers them again (accepted once the store holds every
                    // version, after an import).
                    Some(message) => {
                        let _ = waiter.send(Err(message.clone()));
                    }
                    None => {
                        self.metrics.acknowledged.inc();
                        let _ = waiter.send(Ok(planned.revision));
                    }
                }
            }
        }
        self.metrics
            .queue_depth
            .set(i64::try_from(self.wanted.len()).unwrap_or(i64::MAX));
        Ok(())
    }

    async fn rebuild_chunk(&mut self, verify_only: bool, files: Vec<Update>) {
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
                        Ok((file.path, oid, file.revision))
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

    async fn rebuild_finish(&mut self) -> Result<RebuildReport, IndexerError> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
