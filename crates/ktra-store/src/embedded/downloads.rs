//! Download counts in the embedded store: per version, per day and version, and per crate (in
//! the crate's record, for listings).

use async_trait::async_trait;
use chrono::NaiveDate;
use ktra_core::name::CrateId;
use redb::ReadableTable;

use super::EmbeddedStore;
use super::schema::{CRATES, DOWNLOADS, DOWNLOADS_BY_DAY, crate_record, encode, internal};
use crate::error::StoreError;
use crate::model::{CrateDownloads, DownloadCount};
use crate::traits::DownloadStore;

/// How a day is written in keys: `YYYY-MM-DD`, which sorts as days do.
const DAY: &str = "%Y-%m-%d";

#[async_trait]
impl DownloadStore for EmbeddedStore {
    async fn add_downloads(&self, counts: Vec<DownloadCount>) -> Result<(), StoreError> {
        self.write(move |txn| {
            let mut crates = txn.open_table(CRATES).map_err(internal)?;
            let mut totals = txn.open_table(DOWNLOADS).map_err(internal)?;
            let mut days = txn.open_table(DOWNLOADS_BY_DAY).map_err(internal)?;
            for count in counts {
                let canonical = count.canonical.as_str();
                let Some(mut record) = crate_record(&crates, canonical)? else {
                    continue;
                };
                record.downloads += count.count;
                crates
                    .insert(canonical, encode(&record)?.as_slice())
                    .map_err(internal)?;
                let key = (canonical, count.version_key.as_str());
                let total = totals.get(key).map_err(internal)?.map_or(0, |v| v.value());
                totals.insert(key, total + count.count).map_err(internal)?;
                let day = count.day.format(DAY).to_string();
                let key = (canonical, day.as_str(), count.version_key.as_str());
                let that_day = days.get(key).map_err(internal)?.map_or(0, |v| v.value());
                days.insert(key, that_day + count.count).map_err(internal)?;
            }
            Ok(())
        })
        .await
    }

    async fn crate_downloads(&self, krate: &CrateId) -> Result<CrateDownloads, StoreError> {
        let canonical = krate.canonical().to_owned();
        self.scan(move |txn| {
            let mut downloads = CrateDownloads::default();
            let totals = txn.open_table(DOWNLOADS).map_err(internal)?;
            for entry in totals.range((canonical.as_str(), "")..).map_err(internal)? {
                let (key, value) = entry.map_err(internal)?;
                let (name, version) = key.value();
                if name != canonical {
                    break;
                }
                downloads
                    .by_version
                    .insert(version.to_owned(), value.value());
            }
            let days = txn.open_table(DOWNLOADS_BY_DAY).map_err(internal)?;
            for entry in days
                .range((canonical.as_str(), "", "")..)
                .map_err(internal)?
            {
                let (key, value) = entry.map_err(internal)?;
                let (name, day, version) = key.value();
                if name != canonical {
                    break;
                }
                let day = NaiveDate::parse_from_str(day, DAY).map_err(internal)?;
                downloads
                    .by_day
                    .insert((day, version.to_owned()), value.value());
            }
            Ok(downloads)
        })
        .await
    }
}
