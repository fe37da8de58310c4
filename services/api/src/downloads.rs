//! Download counts. Each crate file served counts one for its version and the day; the counts
//! wait in memory and go to the store in one batch every few seconds (and when the service
//! stops), so a download never waits for a write. Every replica adds its own counts; the store
//! sums them. A batch the store refuses is kept for the next one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{NaiveDate, Utc};
use ktra_core::name::CrateId;
use ktra_core::version::VersionId;
use ktra_store::model::DownloadCount;
use ktra_store::{MetadataStore, StoreError};

/// How often counts go to the store.
pub const FLUSH_EVERY: Duration = Duration::from_secs(5);

type Key = (String, String, NaiveDate);

/// Downloads counted and not yet in the store.
#[derive(Debug, Default)]
pub struct DownloadCounter {
    pending: Mutex<HashMap<Key, u64>>,
}

impl DownloadCounter {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, u64>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts one download of `version` of `krate`, today.
    pub fn count(&self, krate: &CrateId, version: &VersionId) {
        let key = (
            krate.canonical().to_owned(),
            version.key().to_owned(),
            Utc::now().date_naive(),
        );
        *self.lock().entry(key).or_default() += 1;
    }

    /// Adds the waiting counts to the store; returns how many downloads it added.
    ///
    /// # Errors
    ///
    /// When the store fails; the counts wait for the next flush.
    pub async fn flush(&self, store: &dyn MetadataStore) -> Result<u64, StoreError> {
        let taken = std::mem::take(&mut *self.lock());
        if taken.is_empty() {
            return Ok(0);
        }
        let batch: Vec<DownloadCount> = taken
            .iter()
            .map(|((canonical, version_key, day), count)| DownloadCount {
                canonical: canonical.clone(),
                version_key: version_key.clone(),
                day: *day,
                count: *count,
            })
            .collect();
        let added = batch.iter().map(|count| count.count).sum();
        if let Err(error) = store.add_downloads(batch).await {
            let mut pending = self.lock();
            for (key, count) in taken {
                *pending.entry(key).or_default() += count;
            }
            return Err(error);
        }
        Ok(added)
    }

    /// Flushes every [`FLUSH_EVERY`] for as long as the service runs.
    pub async fn flush_forever(self: Arc<Self>, store: Arc<dyn MetadataStore>) {
        let mut ticks = tokio::time::interval(FLUSH_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(error) = self.flush(store.as_ref()).await {
                tracing::warn!(%error, "download counts wait for the next flush");
            }
        }
    }
}
