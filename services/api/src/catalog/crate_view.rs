//! One crate as people and tools see it: the store's details of each version beside the
//! version's index line (dependencies, features, yanked flag).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use ktra_core::index::{FeatureMap, IndexLine};
use ktra_core::name::CrateId;
use ktra_core::version::VersionId;
use ktra_store::model::{CrateDownloads, User, VersionDetails};
use ktra_store::{MetadataStore, StoreError};

/// A crate: its name, owners and versions, in publish order.
#[derive(Debug, Clone)]
pub struct CrateView {
    /// The crate.
    pub krate: CrateId,
    /// The name as first published.
    pub name: String,
    /// The owners.
    pub owners: Vec<User>,
    /// The versions, in publish order.
    pub versions: Vec<VersionView>,
    /// Its downloads, per version and per day.
    pub downloads: CrateDownloads,
}

/// One version: the store's details and its index line.
#[derive(Debug, Clone)]
pub struct VersionView {
    /// What the store keeps about it.
    pub details: VersionDetails,
    /// Its line in the index file; `None` only when the two disagree (logged).
    pub line: Option<IndexLine>,
    /// The version parsed, with its key; `None` for a stored version that does not parse.
    pub id: Option<VersionId>,
    /// How often it was downloaded.
    pub downloads: u64,
}

impl VersionView {
    /// The version as published.
    pub fn number(&self) -> &str {
        &self.details.version
    }

    /// Whether it is yanked.
    pub fn yanked(&self) -> bool {
        self.details.yanked
    }

    /// Whether it is a release (no pre-release part).
    pub fn stable(&self) -> bool {
        self.id
            .as_ref()
            .is_some_and(|id| id.version().pre.is_empty())
    }

    /// Every feature, both maps of the index line together.
    pub fn features(&self) -> FeatureMap {
        let mut features = FeatureMap::new();
        if let Some(line) = &self.line {
            features.extend(line.features.clone());
            if let Some(more) = &line.features2 {
                features.extend(more.clone());
            }
        }
        features
    }
}

impl CrateView {
    /// Reads a crate from the store: its details and its index file. `None` when it does not
    /// exist.
    ///
    /// # Errors
    ///
    /// When the store fails.
    pub async fn load(
        store: &dyn MetadataStore,
        krate: &CrateId,
    ) -> Result<Option<Self>, StoreError> {
        let (details, file, downloads) = tokio::try_join!(
            store.crate_details(krate),
            store.index_file(krate),
            store.crate_downloads(krate)
        )?;
        let Some(details) = details else {
            return Ok(None);
        };
        // Each version's line, by the version as published.
        let mut lines: HashMap<String, IndexLine> = file
            .map(|file| {
                file.content
                    .split(|byte| *byte == b'\n')
                    .filter(|line| !line.is_empty())
                    .filter_map(|line| serde_json::from_slice::<IndexLine>(line).ok())
                    .map(|line| (line.vers.clone(), line))
                    .collect()
            })
            .unwrap_or_default();
        let versions = details
            .versions
            .into_iter()
            .map(|details| {
                let line = lines.remove(&details.version);
                if line.is_none() {
                    tracing::warn!(crate_name = %krate, version = %details.version, "a version has no index line");
                }
                let id = VersionId::parse(&details.version).ok();
                let count = id
                    .as_ref()
                    .and_then(|id| downloads.by_version.get(id.key()).copied())
                    .unwrap_or_default();
                VersionView {
                    id,
                    details,
                    line,
                    downloads: count,
                }
            })
            .collect();
        Ok(Some(Self {
            krate: krate.clone(),
            name: details.name,
            owners: details.owners,
            versions,
            downloads,
        }))
    }

    /// The version published last.
    pub fn newest(&self) -> Option<&VersionView> {
        self.versions.last()
    }

    /// The highest version that is not yanked; all versions count when every one is.
    pub fn max_version(&self) -> Option<&VersionView> {
        highest(self.versions.iter().filter(|version| !version.yanked()))
            .or_else(|| highest(self.versions.iter()))
    }

    /// The highest release that is not yanked, if any.
    pub fn max_stable_version(&self) -> Option<&VersionView> {
        highest(
            self.versions
                .iter()
                .filter(|version| !version.yanked() && version.stable()),
        )
    }

    /// The version people are shown first: the highest stable one, else the highest.
    pub fn default_version(&self) -> Option<&VersionView> {
        self.max_stable_version().or_else(|| self.max_version())
    }

    /// The version whose key is `version`'s.
    pub fn version(&self, version: &VersionId) -> Option<&VersionView> {
        self.version_index(version)
            .map(|index| &self.versions[index])
    }

    /// Where the version whose key is `version`'s stands in [`CrateView::versions`].
    pub fn version_index(&self, version: &VersionId) -> Option<usize> {
        self.versions.iter().position(|candidate| {
            candidate
                .id
                .as_ref()
                .is_some_and(|id| id.key() == version.key())
        })
    }

    /// When the first version was published, if known.
    pub fn created_at(&self) -> Option<DateTime<Utc>> {
        self.versions
            .iter()
            .filter_map(|version| version.details.published_at)
            .min()
    }

    /// When a version was last published, if known.
    pub fn updated_at(&self) -> Option<DateTime<Utc>> {
        self.versions
            .iter()
            .filter_map(|version| version.details.published_at)
            .max()
    }

    /// The versions, highest first (as crates.io lists them).
    pub fn versions_highest_first(&self) -> Vec<&VersionView> {
        let mut versions: Vec<&VersionView> = self.versions.iter().collect();
        versions.sort_by(|a, b| compare(b, a));
        versions
    }
}

/// Whether an index file may name `name` at all (case and `-`/`_` aside): a cheap test
/// before parsing it.
pub fn mentions(content: &[u8], name: &str) -> bool {
    let folded: Vec<u8> = name
        .bytes()
        .map(|byte| {
            if byte == b'-' {
                b'_'
            } else {
                byte.to_ascii_lowercase()
            }
        })
        .collect();
    content.windows(folded.len()).any(|window| {
        window.iter().zip(&folded).all(|(have, want)| {
            let have = if *have == b'-' {
                b'_'
            } else {
                have.to_ascii_lowercase()
            };
            have == *want
        })
    })
}

fn compare(a: &VersionView, b: &VersionView) -> std::cmp::Ordering {
    match (&a.id, &b.id) {
        (Some(x), Some(y)) => {
            let (x, y) = (x.version(), y.version());
            x.cmp_precedence(y).then_with(|| x.cmp(y))
        }
        _ => a.number().cmp(b.number()),
    }
}

fn highest<'a>(versions: impl Iterator<Item = &'a VersionView>) -> Option<&'a VersionView> {
    versions.max_by(|a, b| compare(a, b))
}
