//! Download counts: per version, per version and day, and per crate.

use std::collections::BTreeMap;

use chrono::NaiveDate;

/// Downloads of one version on one day, to add to the store's counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadCount {
    /// The crate's canonical name.
    pub canonical: String,
    /// The version's key (without build metadata).
    pub version_key: String,
    /// The day (UTC).
    pub day: NaiveDate,
    /// How many.
    pub count: u64,
}

/// A crate's downloads as the store counted them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CrateDownloads {
    /// Every version's total, by version key.
    pub by_version: BTreeMap<String, u64>,
    /// Each day's downloads of each version: (day, version key) to count, oldest first.
    pub by_day: BTreeMap<(NaiveDate, String), u64>,
}

impl CrateDownloads {
    /// The crate's total.
    pub fn total(&self) -> u64 {
        self.by_version.values().sum()
    }
}
