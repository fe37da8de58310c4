//! Listings of every crate (the home page, crates.io's summary), from one read of every crate
//! record, kept for a few seconds so a busy home page reads the store once per period.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ktra_store::model::CrateOverview;
use ktra_store::{MetadataStore, StoreError};

/// How long a read of every crate serves listings.
const FRESH_FOR: Duration = Duration::from_secs(5);

/// How many crates each list of the summary holds.
pub const SUMMARY_LENGTH: usize = 10;

/// Every crate, briefly, read at most once per five seconds.
#[derive(Debug, Default)]
pub struct Listings {
    cached: Mutex<Option<(Instant, Arc<Vec<CrateOverview>>)>>,
}

/// The registry at a glance.
#[derive(Debug, Clone)]
pub struct Summary {
    /// How many crates there are.
    pub crate_count: usize,
    /// How many versions there are.
    pub version_count: u64,
    /// The crates first published last, newest first.
    pub new_crates: Vec<CrateOverview>,
    /// The crates changed last, latest first.
    pub just_updated: Vec<CrateOverview>,
    /// How many downloads there were.
    pub download_count: u64,
    /// The crates downloaded most, most first.
    pub most_downloaded: Vec<CrateOverview>,
}

impl Listings {
    /// Every crate, in canonical order; at most five seconds old.
    ///
    /// # Errors
    ///
    /// When the store fails.
    pub async fn overview(
        &self,
        store: &dyn MetadataStore,
    ) -> Result<Arc<Vec<CrateOverview>>, StoreError> {
        if let Some((read_at, overview)) = &*self.lock()
            && read_at.elapsed() < FRESH_FOR
        {
            return Ok(Arc::clone(overview));
        }
        let overview = Arc::new(store.crates_overview().await?);
        *self.lock() = Some((Instant::now(), Arc::clone(&overview)));
        Ok(overview)
    }

    /// The summary of every crate.
    ///
    /// # Errors
    ///
    /// When the store fails.
    pub async fn summary(&self, store: &dyn MetadataStore) -> Result<Summary, StoreError> {
        let overview = self.overview(store).await?;
        let latest = |key: fn(&CrateOverview) -> Option<chrono::DateTime<chrono::Utc>>| {
            let mut crates: Vec<&CrateOverview> =
                overview.iter().filter(|c| key(c).is_some()).collect();
            crates.sort_by_key(|c| std::cmp::Reverse(key(c)));
            crates
                .into_iter()
                .take(SUMMARY_LENGTH)
                .cloned()
                .collect::<Vec<_>>()
        };
        Ok(Summary {
            crate_count: overview.len(),
            version_count: overview.iter().map(|c| u64::from(c.version_count)).sum(),
            new_crates: latest(|c| c.created_at),
            just_updated: latest(|c| Some(c.updated_at)),
            download_count: overview.iter().map(|c| c.downloads).sum(),
            most_downloaded: {
                let mut crates: Vec<&CrateOverview> =
                    overview.iter().filter(|c| c.downloads > 0).collect();
                crates.sort_by_key(|c| std::cmp::Reverse(c.downloads));
                crates.into_iter().take(SUMMARY_LENGTH).cloned().collect()
            },
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(Instant, Arc<Vec<CrateOverview>>)>> {
        self.cached
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
