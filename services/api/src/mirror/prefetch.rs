//! `ktra-api mirror-prefetch <Cargo.lock>`: fills the mirror's cache with the crates.io (or
//! upstream) packages a lockfile names, through the same path cargo's requests take, so an
//! air-gapped site can be filled before it is cut off.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use futures::StreamExt;
use serde::Deserialize;

use super::{CrateFile, Mirror, upstream};
use crate::config::Config;

/// How cargo names crates.io in lockfiles (git index, then sparse).
const CRATES_IO_SOURCES: [&str; 2] = [
    "registry+https://github.com/rust-lang/crates.io-index",
    "sparse+https://index.crates.io/",
];

/// Crates fetched at once.
const CONCURRENCY: usize = 8;

#[derive(Debug, Deserialize)]
struct LockFile {
    #[serde(default)]
    package: Vec<LockedPackage>,
    /// Version-1 lockfiles keep checksums here, not in `package`:
    /// `"checksum <name> <version> (<source>)" = "<hex>"`.
    #[serde(default)]
    metadata: BTreeMap<String, toml::Value>,
}

impl LockFile {
    /// Returns the packages, each with its checksum wherever the lockfile keeps it.
    fn into_packages(self) -> Vec<LockedPackage> {
        let mut metadata = self.metadata;
        self.package
            .into_iter()
            .map(|mut package| {
                if package.checksum.is_none()
                    && let Some(source) = &package.source
                {
                    let key = format!("checksum {} {} ({source})", package.name, package.version);
                    package.checksum = match metadata.remove(&key) {
                        Some(toml::Value::String(checksum)) if checksum != "<none>" => {
                            Some(checksum)
                        }
                        _ => None,
                    };
                }
                package
            })
            .collect()
    }
}

#[derive(Debug, Deserialize)]
struct LockedPackage {
    name: String,
    version: String,
    source: Option<String>,
    checksum: Option<String>,
}

/// What a prefetch did.
#[derive(Debug, Default)]
pub struct PrefetchReport {
    /// Packages from the mirrored registry.
    pub packages: usize,
    /// Packages from elsewhere (path, git, other registries), left alone.
    pub skipped: usize,
    /// Crate files fetched from the upstream now.
    pub fetched: usize,
    /// Crate files the cache already had.
    pub cached: usize,
    /// Packages that failed, with the reason.
    pub failed: Vec<String>,
}

/// Returns whether a lockfile `source` is the mirrored registry.
fn is_mirrored(source: &str, upstream_index: &str) -> bool {
    CRATES_IO_SOURCES.contains(&source)
        || source
            .strip_prefix("sparse+")
            .or_else(|| source.strip_prefix("registry+"))
            .is_some_and(|url| url.trim_end_matches('/') == upstream_index.trim_end_matches('/'))
}

/// Warms the cache of the mirror `config` describes from the lockfile at `path`.
///
/// # Errors
///
/// Fails when the lockfile cannot be read or parsed, or the blob store cannot be opened;
/// packages that cannot be fetched are listed in the report instead.
pub async fn run(config: &Config, path: &Path) -> anyhow::Result<PrefetchReport> {
    let text = tokio::fs::read_to_string(path)
        .await
        .with_context(|| format!("reading {}", path.display()))?;
    let lockfile: LockFile =
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let blobs = crate::state::open_blob_store(config)?;
    let metrics = Arc::new(crate::metrics::ApiMetrics::new());
    let mirror = Arc::new(Mirror::new(config, &blobs, metrics)?);
    let upstream_index = config.mirror.upstream_index_url();
    let (mirrored, others): (Vec<LockedPackage>, Vec<LockedPackage>) =
        lockfile.into_packages().into_iter().partition(|package| {
            package
                .source
                .as_deref()
                .is_some_and(|source| is_mirrored(source, &upstream_index))
        });
    let mut report = PrefetchReport {
        packages: mirrored.len(),
        skipped: others.len(),
        ..PrefetchReport::default()
    };
    // Refresh each index file once, whatever its age, so the cache holds today's versions.
    let names: BTreeSet<String> = mirrored
        .iter()
        .map(|package| package.name.to_ascii_lowercase())
        .collect();
    let refreshed: HashMap<String, Result<super::IndexEntry, super::MirrorError>> =
        futures::stream::iter(names)
            .map(|name| {
                let mirror = Arc::clone(&mirror);
                async move {
                    let result = match mirror.check_allowed(&name) {
                        Ok(()) => {
                            mirror
                                .index_file(&ktra_core::index::index_path(&name), Some(0))
                                .await
                        }
                        Err(error) => Err(error),
                    };
                    (name, result)
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
    let outcomes: Vec<Result<bool, String>> = futures::stream::iter(mirrored)
        .map(|package| {
            let mirror = Arc::clone(&mirror);
            let index = refreshed.get(&package.name.to_ascii_lowercase()).cloned();
            async move { prefetch_one(&mirror, &package, index).await }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    for outcome in outcomes {
        match outcome {
            Ok(true) => report.fetched += 1,
            Ok(false) => report.cached += 1,
            Err(failure) => report.failed.push(failure),
        }
    }
    report.failed.sort();
    Ok(report)
}

/// Fetches one package's crate file; `Ok(true)` when it came from the upstream now.
async fn prefetch_one(
    mirror: &Arc<Mirror>,
    package: &LockedPackage,
    index: Option<Result<super::IndexEntry, super::MirrorError>>,
) -> Result<bool, String> {
    let label = format!("{} {}", package.name, package.version);
    let entry = match index {
        Some(Ok(entry)) => entry,
        Some(Err(error)) => return Err(format!("{label}: {}", error.detail)),
        None => return Err(format!("{label}: no index file")),
    };
    let (_, cksum) = upstream::find_version(&entry.content, &package.name, &package.version)
        .ok_or_else(|| format!("{label}: not in the upstream index"))?;
    if let Some(locked) = &package.checksum
        && !locked.eq_ignore_ascii_case(&cksum)
    {
        return Err(format!(
            "{label}: the lockfile's checksum differs from the upstream index's"
        ));
    }
    match mirror.crate_file(&package.name, &package.version).await {
        Ok(CrateFile::Fetched(_)) => Ok(true),
        Ok(CrateFile::Cached(_)) => Ok(false),
        Err(error) => Err(format!("{label}: {}", error.detail)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crates_io_and_the_upstream_are_mirrored() {
        let upstream = "http://127.0.0.1:9/index/";
        assert!(is_mirrored(CRATES_IO_SOURCES[0], upstream));
        assert!(is_mirrored(CRATES_IO_SOURCES[1], upstream));
        assert!(is_mirrored("sparse+http://127.0.0.1:9/index/", upstream));
        assert!(!is_mirrored("sparse+http://127.0.0.1:8/index/", upstream));
        assert!(!is_mirrored("git+https://github.com/a/b#abc", upstream));
    }

    #[test]
    fn checksums_are_read_from_version_1_and_later_lockfiles() {
        let version_1 = r#"
[[package]]
name = "ab"
version = "0.1.0"
source = "registry+https://github.com/rust-lang/crates.io-index"

[[package]]
name = "local"
version = "0.1.0"

[[package]]
name = "from-git"
version = "0.2.0"
source = "git+https://example.com/a#abc"

[metadata]
"checksum ab 0.1.0 (registry+https://github.com/rust-lang/crates.io-index)" = "00ff"
"checksum from-git 0.2.0 (git+https://example.com/a#abc)" = "<none>"
"#;
        let version_3 = r#"
version = 3

[[package]]
name = "ab"
version = "0.1.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "11ee"
"#;
        let checksums = |text: &str| {
            toml::from_str::<LockFile>(text)
                .unwrap()
                .into_packages()
                .into_iter()
                .map(|package| (package.name, package.checksum))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            checksums(version_1),
            [
                ("ab".to_owned(), Some("00ff".to_owned())),
                ("local".to_owned(), None),
                ("from-git".to_owned(), None),
            ]
        );
        assert_eq!(
            checksums(version_3),
            [("ab".to_owned(), Some("11ee".to_owned()))]
        );
    }
}
