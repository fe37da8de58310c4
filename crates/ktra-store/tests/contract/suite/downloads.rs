//! Download counts.

use std::sync::Arc;

use chrono::NaiveDate;
use ktra_store::MetadataStore;
use ktra_store::model::DownloadCount;

use super::fixtures::*;

fn count(name: &str, version: &str, day: u32, count: u64) -> DownloadCount {
    DownloadCount {
        canonical: name.to_owned(),
        version_key: version.to_owned(),
        day: NaiveDate::from_ymd_opt(2026, 12, day).unwrap(),
        count,
    }
}

pub(crate) async fn downloads_add_up_per_version_day_and_crate(store: Arc<dyn MetadataStore>) {
    let alice = registered(&*store, "alice").await;
    published(&*store, "counted", "1.0.0", alice.id).await;
    published(&*store, "counted", "2.0.0", alice.id).await;
    published(&*store, "quiet", "1.0.0", alice.id).await;
    assert_eq!(
        store.crate_downloads(&id("counted")).await.unwrap().total(),
        0
    );
    store
        .add_downloads(vec![
            count("counted", "1.0.0", 1, 3),
            count("counted", "2.0.0", 1, 1),
        ])
        .await
        .unwrap();
    // A second replica's batch for the same day adds to it.
    store
        .add_downloads(vec![
            count("counted", "1.0.0", 1, 2),
            count("counted", "1.0.0", 2, 4),
        ])
        .await
        .unwrap();
    store.add_downloads(Vec::new()).await.unwrap();
    let downloads = store.crate_downloads(&id("counted")).await.unwrap();
    assert_eq!(downloads.by_version["1.0.0"], 9);
    assert_eq!(downloads.by_version["2.0.0"], 1);
    assert_eq!(downloads.total(), 10);
    let days: Vec<(u32, &str, u64)> = downloads
        .by_day
        .iter()
        .map(|((day, version), count)| (chrono::Datelike::day(day), version.as_str(), *count))
        .collect();
    assert_eq!(days, [(1, "1.0.0", 5), (1, "2.0.0", 1), (2, "1.0.0", 4)]);
    let overview = store.crates_overview().await.unwrap();
    let totals: Vec<(&str, u64)> = overview
        .iter()
        .map(|entry| (entry.name.as_str(), entry.downloads))
        .collect();
    assert_eq!(totals, [("counted", 10), ("quiet", 0)]);
}
