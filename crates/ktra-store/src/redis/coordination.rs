//! Leases and rate-limit windows in Redis, shared by every replica.

use async_trait::async_trait;

use super::RedisStore;
use super::classify;
use crate::error::StoreError;
use crate::traits::CoordinationStore;

#[async_trait]
impl CoordinationStore for RedisStore {
    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreError> {
        let held: i64 = self
            .scripts
            .lease
            .key(self.keys.lease(name))
            .arg(holder)
            .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1))
            .invoke_async(&mut self.connection())
            .await
            .map_err(classify)?;
        Ok(held == 1)
    }

    async fn count_hit(
        &self,
        bucket: &str,
        window: std::time::Duration,
    ) -> Result<(u64, std::time::Duration), StoreError> {
        let (hits, left): (u64, u64) = self
            .scripts
            .rate
            .key(self.keys.rate(bucket))
            .arg(u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1))
            .invoke_async(&mut self.connection())
            .await
            .map_err(classify)?;
        Ok((hits, std::time::Duration::from_millis(left)))
    }
}
