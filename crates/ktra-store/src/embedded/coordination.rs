//! Leases and rate-limit windows of the embedded store: one process uses it, so both are local.

use async_trait::async_trait;

use super::EmbeddedStore;
use crate::error::StoreError;
use crate::traits::CoordinationStore;

/// Fixed rate-limit windows by bucket: hits and when the window ends.
#[derive(Debug, Default)]
pub(super) struct RateWindows {
    windows: std::collections::HashMap<String, (u64, std::time::Instant)>,
}

impl RateWindows {
    /// Windows kept before ended ones are swept.
    const SWEEP_AT: usize = 10_000;

    pub(super) fn hit(
        &mut self,
        bucket: &str,
        window: std::time::Duration,
    ) -> (u64, std::time::Duration) {
        let now = std::time::Instant::now();
        if self.windows.len() >= Self::SWEEP_AT {
            self.windows.retain(|_, (_, ends)| *ends > now);
        }
        let entry = self
            .windows
            .entry(bucket.to_owned())
            .or_insert((0, now + window));
        if entry.1 <= now {
            *entry = (0, now + window);
        }
        entry.0 += 1;
        (entry.0, entry.1 - now)
    }
}

#[async_trait]
impl CoordinationStore for EmbeddedStore {
    async fn try_lease(
        &self,
        _name: &str,
        _holder: &str,
        _ttl: std::time::Duration,
    ) -> Result<bool, StoreError> {
        // redb locks its file, so one process at most uses this store: it always holds the
        // lease.
        Ok(true)
    }

    async fn count_hit(
        &self,
        bucket: &str,
        window: std::time::Duration,
    ) -> Result<(u64, std::time::Duration), StoreError> {
        Ok(self
            .rates
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .hit(bucket, window))
    }
}
