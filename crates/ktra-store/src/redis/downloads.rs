//! Download counts in Redis: hash increments, one transaction per batch.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::NaiveDate;
use ktra_core::name::CrateId;

use super::{RedisStore, classify, internal};
use crate::error::StoreError;
use crate::model::{CrateDownloads, DownloadCount};
use crate::traits::DownloadStore;

#[async_trait]
impl DownloadStore for RedisStore {
    async fn add_downloads(&self, counts: Vec<DownloadCount>) -> Result<(), StoreError> {
        if counts.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        for count in &counts {
            let canonical = count.canonical.as_str();
            let amount = i64::try_from(count.count).map_err(internal)?;
            pipe.hincr(self.keys.downloads(canonical), &count.version_key, amount)
                .ignore()
                .hincr(
                    self.keys.downloads_by_day(canonical),
                    format!("{}|{}", count.day.format("%Y-%m-%d"), count.version_key),
                    amount,
                )
                .ignore()
                .hincr(self.keys.krate(canonical), "downloads", amount)
                .ignore();
        }
        let mut connection = self.primary.writer().await;
        let () = pipe.query_async(&mut connection).await.map_err(classify)?;
        self.primary.replicated(&mut connection).await
    }

    async fn crate_downloads(&self, krate: &CrateId) -> Result<CrateDownloads, StoreError> {
        let canonical = krate.canonical();
        let (by_version, by_day): (HashMap<String, u64>, HashMap<String, u64>) = redis::pipe()
            .hgetall(self.keys.downloads(canonical))
            .hgetall(self.keys.downloads_by_day(canonical))
            .query_async(&mut self.connection())
            .await
            .map_err(classify)?;
        let mut downloads = CrateDownloads {
            by_version: by_version.into_iter().collect(),
            ..CrateDownloads::default()
        };
        for (field, count) in by_day {
            let Some((day, version)) = field.split_once('|') else {
                continue;
            };
            let day = NaiveDate::parse_from_str(day, "%Y-%m-%d").map_err(internal)?;
            downloads.by_day.insert((day, version.to_owned()), count);
        }
        Ok(downloads)
    }
}
