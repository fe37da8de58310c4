//! Keeping the git index in step with the store, through the indexer.
//!
//! After every change the API sends the crate's whole index file, with its revision, to the
//! indexer and waits a bounded time for the acknowledgement (which means "pushed"). Whatever is
//! not acknowledged keeps its mark in the store and is sent again by the resender, at start and
//! periodically, by one replica at a time (a lease in the store). So the git index converges to
//! the store after the indexer, the API or the remote was down.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ktra_core::name::canonical_crate_name;
use ktra_core::registry::IndexerEndpointConfig;
use ktra_proto::indexer::v1::indexer_client::IndexerClient;
use ktra_proto::indexer::v1::{ApplyRequest, CrateState, RebuildRequest, RebuildResponse};
use ktra_store::MetadataStore;
use ktra_store::model::IndexFile;
use tonic::transport::{Channel, Endpoint};
use tracing::Instrument;

use crate::metrics::ApiMetrics;

/// The largest gRPC message sent: a chunk of a rebuild, or a crate with many versions.
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// How many unacknowledged crates one resend request carries.
const RESEND_BATCH: usize = 256;

/// How long a resend request may wait for its push.
const RESEND_TIMEOUT: Duration = Duration::from_secs(120);

/// The lease that lets one replica resend at a time.
const RESEND_LEASE: &str = "index-resender";

/// The most crates waiting for the background hand-off; beyond it a change waits for the
/// resender, which finds it by its mark in the store.
const MAX_HANDOFF: usize = 4096;

/// How many hand-off requests wait for their pushes at a time.
const HANDOFF_IN_FLIGHT: usize = 8;

/// The pause after a hand-off the indexer did not acknowledge.
const HANDOFF_BACKOFF: Duration = Duration::from_secs(1);

/// Changes handed over without waiting (`ack_timeout` 0): the latest state of each crate,
/// until the background sender takes them. While its requests wait for their pushes, new
/// changes gather here, so a burst of publishes becomes a few requests, and memory is bounded
/// by the number of distinct crates rather than the number of publishes.
#[derive(Debug, Default)]
struct Handoff {
    pending: Mutex<HashMap<String, IndexFile>>,
    wake: tokio::sync::Notify,
}

/// A connection to the indexer, or nothing when no indexer is configured.
#[derive(Debug, Clone)]
pub struct IndexSync {
    client: Option<IndexerClient<Channel>>,
    metrics: Arc<ApiMetrics>,
    ack_timeout: Duration,
    resend_interval: Duration,
    store: Arc<dyn MetadataStore>,
    /// Names this replica in the resend lease.
    holder: String,
    handoff: Arc<Handoff>,
}

fn state_of(file: &IndexFile) -> CrateState {
    CrateState {
        name: file.name.clone(),
        revision: file.revision,
        content: file.content.to_vec(),
    }
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
        metrics: Arc<ApiMetrics>,
    ) -> anyhow::Result<Self> {
        let client = match &config.url {
            Some(url) => {
                let channel = Endpoint::from_shared(url.to_string())?
                    .connect_timeout(Duration::from_secs(2))
                    .tcp_nodelay(true)
                    .connect_lazy();
                Some(
                    IndexerClient::new(channel)
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
            metrics,
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
            // The indexer's spans join this trace.
            let metadata = request.metadata_mut();
            ktra_core::telemetry::inject(&mut |key, value| {
                if let (Ok(key), Ok(value)) = (
                    tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
                    tonic::metadata::MetadataValue::try_from(value.as_str()),
                ) {
                    metadata.insert(key, value);
                }
            });
            client.clone().apply(request).await
        }
        .instrument(span)
        .await?
        .into_inner();
        let mut cleared = 0;
        for ack in response.acknowledged {
            match self
                .store
                .acknowledge(&canonical_crate_name(&ack.name), ack.revision)
                .await
            {
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
                crate_name = file.name,
                revision = file.revision,
                code = ?status.code(),
                message = status.message(),
                "the git index has not acknowledged the change yet; it will be sent again"
            );
        }
    }

    fn hand_off(&self, file: &IndexFile) {
        {
            let mut pending = self
                .handoff
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let full = pending.len() >= MAX_HANDOFF;
            match pending.entry(canonical_crate_name(&file.name)) {
                Entry::Occupied(mut waiting) => {
                    if waiting.get().revision < file.revision {
                        waiting.insert(file.clone());
                    }
                }
                // The change keeps its mark in the store; the resender sends it.
                Entry::Vacant(_) if full => return,
                Entry::Vacant(slot) => {
                    slot.insert(file.clone());
                }
            }
        }
        self.handoff.wake.notify_one();
    }

    /// Sends what [`IndexSync::changed`] handed over without waiting, forever; returns at once
    /// unless an indexer is configured and changes are handed over. Up to
    /// [`HANDOFF_IN_FLIGHT`] requests wait for their pushes at a time; while they all wait,
    /// new changes gather into larger requests.
    pub async fn hand_off_forever(self) {
        if self.client.is_none() || !self.ack_timeout.is_zero() {
            return;
        }
        let in_flight = Arc::new(tokio::sync::Semaphore::new(HANDOFF_IN_FLIGHT));
        loop {
            self.handoff.wake.notified().await;
            loop {
                let Ok(permit) = Arc::clone(&in_flight).acquire_owned().await else {
                    return;
                };
                let files = self.take_handed_off(RESEND_BATCH);
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

    /// Takes up to `limit` handed-over changes.
    fn take_handed_off(&self, limit: usize) -> Vec<IndexFile> {
        let mut pending = self
            .handoff
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if pending.len() <= limit {
            return std::mem::take(&mut *pending).into_values().collect();
        }
        let names: Vec<String> = pending.keys().take(limit).cloned().collect();
        names
            .iter()
            .filter_map(|name| pending.remove(name))
            .collect()
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
        let mut first_page = true;
        loop {
            let pending = self.store.pending_changes(RESEND_BATCH).await?;
            if pending.is_empty() {
                if first_page {
                    self.metrics.index_unacknowledged.set(0);
                    self.metrics.index_unacknowledged_oldest_age.set(0.0);
                }
                return Ok(total);
            }
            let mut files = Vec::with_capacity(pending.len());
            for change in &pending {
                if let Some(file) = self.store.index_file(&change.canonical).await? {
                    files.push(file);
                }
            }
            if first_page {
                // From the first page: exact below RESEND_BATCH crates, a floor above.
                self.metrics
                    .index_unacknowledged
                    .set(i64::try_from(pending.len()).unwrap_or(i64::MAX));
                let oldest = files.iter().map(|file| file.last_modified).min();
                let age = oldest.map_or(0.0, |time| {
                    (chrono::Utc::now() - time).num_milliseconds().max(0) as f64 / 1000.0
                });
                self.metrics.index_unacknowledged_oldest_age.set(age);
                first_page = false;
            }
            let acknowledged = self.send(&files, RESEND_TIMEOUT).await?;
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
    pub async fn rebuild(&self, verify_only: bool) -> anyhow::Result<RebuildResponse> {
        let Some(client) = &self.client else {
            anyhow::bail!("KTRA_INDEXER_URL is not set: there is no indexer to rebuild");
        };
        let (sender, receiver) = tokio::sync::mpsc::channel::<RebuildRequest>(4);
        let store = Arc::clone(&self.store);
        let producer = tokio::spawn(async move {
            // The first message says whether to write; it may carry no crate.
            sender
                .send(RebuildRequest {
                    verify_only,
                    crates: Vec::new(),
                })
                .await?;
            let mut after: Option<String> = None;
            loop {
                let names = store.crate_names(after.as_deref(), 512).await?;
                let Some(last) = names.last().cloned() else {
                    return Ok::<_, anyhow::Error>(());
                };
                let mut chunk = RebuildRequest {
                    verify_only,
                    crates: Vec::new(),
                };
                let mut bytes = 0;
                for canonical in names {
                    if let Some(file) = store.index_file(&canonical).await? {
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
        });
        let stream = tokio_stream::wrappers::ReceiverStream::new(receiver);
        let response = client.clone().rebuild(stream).await;
        producer.await??;
        Ok(response?.into_inner())
    }
}
