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
//!
//! Here: the commands, the wanted states and the run loop. `git_state` is one round's git work
//! on the blocking pool (refusals, commit, push, rebase); `rebuild` compares or rewrites the
//! whole index from the store's stream.

mod git_state;
mod rebuild;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ktra_core::index::IndexConfig;
use tokio::sync::{mpsc, oneshot};

use self::git_state::{GitState, Planned};
use self::rebuild::Rebuild;
pub use self::rebuild::RebuildReport;
use crate::config::GitConfig;
use crate::config_json;
use crate::error::IndexerError;
use crate::git::clone_lock::CloneLock;
use crate::git::repo::IndexRepo;
use crate::metrics::IndexerMetrics;
use crate::revisions::Revisions;

/// The path of the index configuration.
pub const CONFIG_PATH: &str = "config.json";

/// The first wait after a failed round.
const INITIAL_BACKOFF: Duration = Duration::from_millis(100);

/// A crate's whole index file at one revision.
#[derive(Debug, Clone)]
pub struct Update {
    /// The span of the request that brought the update; the round that writes it is traced
    /// under it.
    pub span: tracing::Span,
    /// The crate; its index path says where the file goes.
    pub krate: ktra_core::name::CrateId,
    /// The store's revision of the file.
    pub revision: u64,
    /// The file's content; empty removes the file.
    pub content: Bytes,
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
        lock: CloneLock,
        index_config: IndexConfig,
        metrics: Arc<IndexerMetrics>,
    ) -> Result<(Self, WriterHandle), IndexerError> {
        let git_config = config.clone();
        let git_metrics = Arc::clone(&metrics);
        let (git, current_config) = ktra_core::task::spawn_blocking(move || {
            let repo = IndexRepo::open(git_config.clone(), &lock)?;
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
        let path = update.krate.index_path();
        if let Some(wanted) = self.wanted.get_mut(path) {
            if update.revision > wanted.revision {
                wanted.revision = update.revision;
                wanted.content = update.content;
                wanted.name = Some(update.krate.name().to_owned());
            }
            wanted.waiters.push((update.revision, waiter));
            if wanted.spans.len() < MAX_LINKED_SPANS {
                wanted.spans.push(update.span);
            }
            return;
        }
        let pushed = self.git.as_ref().and_then(|git| git.revisions.get(path));
        match pushed {
            // Already in the index (or superseded by what is): acknowledge at once.
            Some(pushed) if pushed >= update.revision => {
                self.metrics.acknowledged.inc();
                let _ = waiter.send(Ok(pushed));
            }
            _ => {
                self.wanted.insert(
                    path.to_owned(),
                    Wanted {
                        name: Some(update.krate.name().to_owned()),
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
        let joined = ktra_core::task::spawn_blocking(move || {
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
}
