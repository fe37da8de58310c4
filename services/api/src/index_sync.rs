//! Keeping the git index in step with the store, through the indexer.
//!
//! After every change the API sends the crate's whole index file, with its revision, to the
//! indexer and waits a bounded time for the acknowledgement (which means "pushed"), or, when
//! configured not to wait, leaves it to a background sender that batches changes. Whatever is
//! not acknowledged keeps its mark in the store and is sent again by the resender, at start and
//! periodically, by one replica at a time (a lease in the store). So the git index converges to
//! the store after the indexer, the API or the remote was down.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ktra_core::config::IndexerEndpointConfig;
use ktra_proto::indexer::v1::indexer_client::IndexerClient;
use ktra_proto::indexer::v1::{ApplyRequest, CrateState, RebuildRequest, RebuildResponse};
use ktra_proto::trace::{SendTraceContext, TracedChannel};
use ktra_store::model::IndexFile;
use ktra_store::{MetadataStore, StoreError};
use tonic::transport::Endpoint;
use tracing::Instrument;

/// The largest gRPC message sent: a chunk of a rebuild, or a crate with many versions.
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// How many unacknowledged crates one resend request carries.
const RESEND_BATCH: usize = 256;

/// How long a resend request may wait for its push.
const RESEND_TIMEOUT: Duration = Duration::from_secs(120);

/// The lease that lets one replica resend at a time.
const RESEND_LEASE: &str = "index-resender";

/// The most bytes of index files in one request (the message limit is higher); a larger file
/// goes alone.
const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// The most crates waiting for the background hand-off, and their most bytes; beyond either a
/// change waits for the resender, which finds it by its mark in the store.
const MAX_HANDOFF: usize = 4096;
const MAX_HANDOFF_BYTES: usize = 64 * 1024 * 1024;

/// How many hand-off requests wait for their pushes at a time.
const HANDOFF_IN_FLIGHT: usize = 8;

/// The pause after a hand-off the indexer did not acknowledge.
const HANDOFF_BACKOFF: Duration = Duration::from_secs(1);

/// Changes handed over without waiting (`ack_timeout` 0): the latest state of each crate,
/// until the background sender takes them, oldest first. While its requests wait for their
/// pushes, new changes gather here, so a burst of publishes becomes a few requests, and memory
/// is bounded by the number of distinct crates rather than the number of publishes.
#[derive(Debug)]
struct Handoff {
    pending: Mutex<Pending>,
    wake: tokio::sync::Notify,
    /// One permit per request that may wait for its push.
    in_flight: Arc<tokio::sync::Semaphore>,
}

impl Default for Handoff {
    fn default() -> Self {
        Self {
            pending: Mutex::default(),
            wake: tokio::sync::Notify::new(),
            in_flight: Arc::new(tokio::sync::Semaphore::new(HANDOFF_IN_FLIGHT)),
        }
    }
}

#[derive(Debug, Default)]
struct Pending {
    /// By canonical name: the order of arrival and the newest state.
    files: HashMap<String, (u64, IndexFile)>,
    arrivals: u64,
    bytes: usize,
}

impl Handoff {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keeps `file` for the sender, unless the same or a newer revision waits already; returns
    /// false when there is no room for another crate.
    fn offer(&self, file: &IndexFile) -> bool {
        let mut pending = self.lock();
        let pending = &mut *pending;
        let full = pending.files.len() >= MAX_HANDOFF || pending.bytes >= MAX_HANDOFF_BYTES;
        match pending.files.entry(file.krate.canonical().to_owned()) {
            Entry::Occupied(mut waiting) => {
                let (_, older) = waiting.get_mut();
                if older.revision < file.revision {
                    pending.bytes = pending.bytes - older.content.len() + file.content.len();
                    *older = file.clone();
                }
            }
            Entry::Vacant(_) if full => return false,
            Entry::Vacant(slot) => {
                pending.arrivals += 1;
                pending.bytes += file.content.len();
                slot.insert((pending.arrivals, file.clone()));
            }
        }
        true
    }

    /// Takes the oldest waiting changes: at most `count` crates and `bytes` bytes, but at
    /// least one.
    fn take(&self, count: usize, bytes: usize) -> Vec<IndexFile> {
        let mut pending = self.lock();
        let mut order: Vec<(u64, String)> = pending
            .files
            .iter()
            .map(|(name, (arrival, _))| (*arrival, name.clone()))
            .collect();
        order.sort_unstable();
        let mut taken = Vec::new();
        let mut size = 0;
        // `order` was read under this lock: every name in it is waiting.
        for (_, name) in order {
            let length = pending.files[&name].1.content.len();
            if taken.len() == count || (!taken.is_empty() && size + length > bytes) {
                break;
            }
            if let Some((_, file)) = pending.files.remove(&name) {
                size += length;
                pending.bytes -= length;
                taken.push(file);
            }
        }
        taken
    }
}

/// Splits `files` into runs of at most `max_bytes` of content (a larger file goes alone).
fn by_size(files: &[IndexFile], max_bytes: usize) -> Vec<&[IndexFile]> {
    let mut batches = Vec::new();
    let mut start = 0;
    let mut size = 0;
    for (index, file) in files.iter().enumerate() {
        if index > start && size + file.content.len() > max_bytes {
            batches.push(&files[start..index]);
            start = index;
            size = 0;
        }
        size += file.content.len();
    }
    if start < files.len() {
        batches.push(&files[start..]);
    }
    batches
}

/// A connection to the indexer, or nothing when no indexer is configured.
#[derive(Debug, Clone)]
pub struct IndexSync {
    client: Option<IndexerClient<TracedChannel>>,
    ack_timeout: Duration,
    resend_interval: Duration,
    store: Arc<dyn MetadataStore>,
    /// Names this replica in the resend lease.
    holder: String,
    handoff: Arc<Handoff>,
}

fn state_of(file: &IndexFile) -> CrateState {
    CrateState::new(&file.krate, file.revision, file.content.to_vec())
}

impl IndexSync {
    /// Prepares a lazy connection to the configured indexer.
    ///
    /// # Errors
    ///
    /// Fails when the URL cannot be used as a gRPC endpoint.
    pub fn new(
        config: &IndexerEndpointConfig,
        store: Arc<dyn MetadataStore>,
    ) -> anyhow::Result<Self> {
        let client = match &config.url {
            Some(url) => {
                let channel = Endpoint::from_shared(url.to_string())?
                    .connect_timeout(Duration::from_secs(2))
                    .tcp_nodelay(true)
                    .connect_lazy();
                Some(
                    // The indexer's spans join the caller's trace, for every RPC.
                    IndexerClient::with_interceptor(channel, SendTraceContext)
                        .max_decoding_message_size(MAX_MESSAGE_BYTES)
                        .max_encoding_message_size(MAX_MESSAGE_BYTES),
                )
            }
            None => None,
        };
        let mut nonce = [0_u8; 8];
        rand::fill(&mut nonce);
        Ok(Self {
            client,
            ack_timeout: Duration::from_millis(config.ack_timeout_ms),
            resend_interval: Duration::from_secs(config.resend_interval_secs),
            store,
            holder: format!("api-{}", hex::encode(nonce)),
            handoff: Arc::default(),
        })
    }

    /// Returns whether an indexer is configured.
    pub fn is_enabled(&self) -> bool {
        self.client.is_some()
    }

    /// Sends files and records the acknowledgements; returns how many were acknowledged.
    async fn send(&self, files: &[IndexFile], timeout: Duration) -> Result<usize, tonic::Status> {
        let Some(client) = &self.client else {
            return Ok(0);
        };
        let span = tracing::info_span!("indexer.apply", crates = files.len());
        let response = async {
            let mut request = tonic::Request::new(ApplyRequest {
                crates: files.iter().map(state_of).collect(),
            });
            request.set_timeout(timeout);
            client.clone().apply(request).await
        }
        .instrument(span)
        .await?
        .into_inner();
        let mut cleared = 0;
        for ack in response.acknowledged {
            let acknowledged = match ack.crate_id() {
                Ok(krate) => self.store.acknowledge(&krate, ack.revision).await,
                Err(error) => Err(StoreError::Internal(format!(
                    "the indexer acknowledged a crate named `{}`: {error}",
                    ack.name
                ))),
            };
            match acknowledged {
                Ok(_) => cleared += 1,
                Err(error) => {
                    tracing::warn!(%error, crate_name = ack.name, "cannot record an acknowledgement; it will be sent again");
                }
            }
        }
        Ok(cleared)
    }

    /// Hands a changed crate to the indexer and waits at most the acknowledgement timeout. A
    /// slow or absent indexer is logged, not returned: the store keeps the change marked and
    /// the resender sends it again.
    pub async fn changed(&self, file: &IndexFile) {
        if self.client.is_none() {
            return;
        }
        if self.ack_timeout.is_zero() {
            // Configured not to wait: leave the change to the background sender.
            self.hand_off(file);
            return;
        }
        if let Err(status) = self
            .send(std::slice::from_ref(file), self.ack_timeout)
            .await
        {
            tracing::warn!(
                crate_name = %file.krate,
                revision = file.revision,
                code = ?status.code(),
                message = status.message(),
                "the git index has not acknowledged the change yet; it will be sent again"
            );
        }
    }

    fn hand_off(&self, file: &IndexFile) {
        // Refused when full: the change keeps its mark in the store; the resender sends it.
        if self.handoff.offer(file) {
            self.handoff.wake.notify_one();
        }
    }

    /// Sends what [`IndexSync::changed`] handed over without waiting, forever; returns at once
    /// unless an indexer is configured and changes are handed over. Up to 8 requests wait for
    /// their pushes at a time; while they all wait, new changes gather into larger requests.
    pub async fn hand_off_forever(self) {
        if self.client.is_none() || !self.ack_timeout.is_zero() {
            return;
        }
        loop {
            self.handoff.wake.notified().await;
            loop {
                let Ok(permit) = Arc::clone(&self.handoff.in_flight).acquire_owned().await else {
                    return;
                };
                let files = self.handoff.take(RESEND_BATCH, MAX_REQUEST_BYTES);
                if files.is_empty() {
                    break;
                }
                let sync = self.clone();
                tokio::spawn(async move {
                    if let Err(status) = sync.send(&files, RESEND_TIMEOUT).await {
                        tracing::warn!(
                            crates = files.len(),
                            code = ?status.code(),
                            message = status.message(),
                            "the git index has not acknowledged changes yet; they will be sent again"
                        );
                        // Keep gathering instead of failing again at the rate of publishes.
                        tokio::time::sleep(HANDOFF_BACKOFF).await;
                    }
                    drop(permit);
                });
            }
        }
    }

    /// At shutdown, once [`IndexSync::hand_off_forever`] has stopped: sends what is still
    /// handed over, all at once, and waits for the requests already under way, for at most
    /// `within` in all. A request the indexer received is pushed even if its answer comes too
    /// late; whatever does not reach it keeps its mark in the store.
    pub async fn flush_handed_off(&self, within: Duration) {
        if self.client.is_none() {
            return;
        }
        let deadline = tokio::time::Instant::now() + within;
        let mut batches = Vec::new();
        loop {
            let files = self.handoff.take(RESEND_BATCH, MAX_REQUEST_BYTES);
            if files.is_empty() {
                break;
            }
            batches.push(files);
        }
        let sends = futures::future::join_all(batches.iter().map(|files| async move {
            if let Err(status) = self.send(files, within).await {
                tracing::warn!(
                    crates = files.len(),
                    code = ?status.code(),
                    "handed-over changes not acknowledged before exiting; they will be sent again"
                );
            }
        }));
        let under_way = self
            .handoff
            .in_flight
            .acquire_many(u32::try_from(HANDOFF_IN_FLIGHT).unwrap_or(u32::MAX));
        if tokio::time::timeout_at(deadline, futures::future::join(sends, under_way))
            .await
            .is_err()
        {
            tracing::warn!("exiting before the indexer acknowledged every handed-over change");
        }
    }

    /// Sends every unacknowledged change, a batch at a time, while this replica holds the
    /// lease. Returns how many were acknowledged.
    ///
    /// # Errors
    ///
    /// Fails when the store or the indexer fails; the marks stay for the next pass.
    pub async fn resend_pending(&self) -> anyhow::Result<usize> {
        if self.client.is_none() {
            return Ok(0);
        }
        let lease_ttl = self.resend_interval * 4;
        if !self
            .store
            .try_lease(RESEND_LEASE, &self.holder, lease_ttl)
            .await?
        {
            return Ok(0);
        }
        let mut total = 0;
        loop {
            let pending = self.store.pending_changes(RESEND_BATCH).await?;
            if pending.is_empty() {
                return Ok(total);
            }
            let mut files = Vec::with_capacity(pending.len());
            for change in &pending {
                if let Some(file) = self.store.index_file(&change.krate).await? {
                    files.push(file);
                }
            }
            let mut acknowledged = 0;
            for batch in by_size(&files, MAX_REQUEST_BYTES) {
                // Each request may wait long for its push: keep the lease while sending.
                if !self
                    .store
                    .try_lease(RESEND_LEASE, &self.holder, lease_ttl)
                    .await?
                {
                    return Ok(total + acknowledged);
                }
                match self.send(batch, RESEND_TIMEOUT).await {
                    Ok(count) => acknowledged += count,
                    // Every crate of the batch was refused (files another registry wrote, see
                    // the indexer's `foreign`): they stay marked; the other batches go on.
                    Err(status) if status.code() == tonic::Code::FailedPrecondition => {
                        tracing::warn!(
                            message = status.message(),
                            "the indexer refused index files; they stay unacknowledged"
                        );
                    }
                    Err(status) => return Err(status.into()),
                }
            }
            total += acknowledged;
            if acknowledged < pending.len() {
                // Something stayed unacknowledged (a newer revision raced in); the next pass
                // picks it up rather than spinning here.
                return Ok(total);
            }
            self.store
                .try_lease(RESEND_LEASE, &self.holder, lease_ttl)
                .await?;
        }
    }

    /// Runs [`IndexSync::resend_pending`] now and then every resend interval, forever.
    pub async fn resend_forever(self) {
        if self.client.is_none() {
            return;
        }
        let mut ticker = tokio::time::interval(self.resend_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match self.resend_pending().await {
                Ok(0) => {}
                Ok(count) => tracing::info!(count, "unacknowledged index changes sent again"),
                Err(error) => tracing::warn!(%error, "resending index changes failed; will retry"),
            }
        }
    }

    /// Streams every crate in the store to the indexer, which compares the git index with it
    /// and, unless `verify_only`, makes it equal.
    ///
    /// # Errors
    ///
    /// Fails when no indexer is configured, or the store or the indexer fails.
    #[tracing::instrument(name = "index.rebuild", skip(self))]
    pub async fn rebuild(&self, verify_only: bool) -> anyhow::Result<RebuildResponse> {
        let Some(client) = &self.client else {
            anyhow::bail!("KTRA_INDEXER_URL is not set: there is no indexer to rebuild");
        };
        let (sender, receiver) = tokio::sync::mpsc::channel::<RebuildRequest>(4);
        let store = Arc::clone(&self.store);
        let producer = tokio::spawn(
            async move {
                // The first message says whether to write; it may carry no crate.
                sender
                    .send(RebuildRequest {
                        verify_only,
                        crates: Vec::new(),
                    })
                    .await?;
                let mut after = None;
                loop {
                    let names = store.crate_names(after.as_ref(), 512).await?;
                    let Some(last) = names.last().cloned() else {
                        return Ok::<_, anyhow::Error>(());
                    };
                    let mut chunk = RebuildRequest {
                        verify_only,
                        crates: Vec::new(),
                    };
                    let mut bytes = 0;
                    for krate in names {
                        if let Some(file) = store.index_file(&krate).await? {
                            bytes += file.content.len();
                            chunk.crates.push(state_of(&file));
                        }
                        if bytes > 4 * 1024 * 1024 {
                            let full = std::mem::replace(
                                &mut chunk,
                                RebuildRequest {
                                    verify_only,
                                    crates: Vec::new(),
                                },
                            );
                            bytes = 0;
                            sender.send(full).await?;
                        }
                    }
                    if !chunk.crates.is_empty() {
                        sender.send(chunk).await?;
                    }
                    after = Some(last);
                }
            }
            .instrument(tracing::Span::current()),
        );
        let stream = tokio_stream::wrappers::ReceiverStream::new(receiver);
        let response = client.clone().rebuild(stream).await;
        producer.await??;
        Ok(response?.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn file(name: &str, revision: u64, size: usize) -> IndexFile {
        let content = Bytes::from(vec![b'x'; size]);
        IndexFile {
            krate: ktra_core::name::CrateId::new(name).unwrap(),
            content,
            last_modified: chrono::Utc::now(),
            revision,
        }
    }

    fn names(files: &[IndexFile]) -> Vec<(&str, u64)> {
        files
            .iter()
            .map(|file| (file.krate.name(), file.revision))
            .collect()
    }

    #[test]
    fn the_newest_revision_waits_in_the_first_place_in_line() {
        let handoff = Handoff::default();
        assert!(handoff.offer(&file("a", 1, 10)));
        assert!(handoff.offer(&file("b", 1, 10)));
        assert!(handoff.offer(&file("a", 3, 20)));
        // Late and older: ignored.
        assert!(handoff.offer(&file("A", 2, 30)));
        assert_eq!(handoff.lock().bytes, 30);
        assert_eq!(names(&handoff.take(10, 1000)), [("a", 3), ("b", 1)]);
        assert!(handoff.take(10, 1000).is_empty());
        assert_eq!(handoff.lock().bytes, 0);
    }

    #[test]
    fn takes_the_oldest_within_the_count_and_size() {
        let handoff = Handoff::default();
        for (index, name) in ["a", "b", "c", "d"].into_iter().enumerate() {
            assert!(handoff.offer(&file(name, 1, 100 * (index + 1))));
        }
        assert_eq!(names(&handoff.take(2, 10_000)), [("a", 1), ("b", 1)]);
        // c (300) fits, d (400) would not.
        assert_eq!(names(&handoff.take(10, 500)), [("c", 1)]);
        // A file larger than the limit still goes, alone.
        assert_eq!(names(&handoff.take(10, 10)), [("d", 1)]);
    }

    #[test]
    fn a_full_handoff_refuses_new_crates_but_takes_newer_revisions() {
        let handoff = Handoff::default();
        for index in 0..MAX_HANDOFF {
            assert!(handoff.offer(&file(&format!("c{index}"), 1, 1)));
        }
        assert!(!handoff.offer(&file("late", 1, 1)));
        assert!(handoff.offer(&file("c7", 2, 1)));
        let taken = handoff.take(MAX_HANDOFF, usize::MAX);
        assert_eq!(taken.len(), MAX_HANDOFF);
        assert_eq!(taken[7].revision, 2);
        assert!(handoff.offer(&file("late", 1, 1)));

        let big = Handoff::default();
        assert!(big.offer(&file("huge", 1, MAX_HANDOFF_BYTES)));
        assert!(!big.offer(&file("small", 1, 1)));
    }

    #[test]
    fn requests_are_split_by_size() {
        let files = [
            file("a", 1, 6),
            file("b", 1, 6),
            file("c", 1, 20),
            file("d", 1, 1),
        ];
        let batches: Vec<Vec<(&str, u64)>> = by_size(&files, 12).into_iter().map(names).collect();
        assert_eq!(
            batches,
            [vec![("a", 1), ("b", 1)], vec![("c", 1)], vec![("d", 1)]]
        );
        assert!(by_size(&[], 12).is_empty());
    }
}
