//! Keeps what each version says about itself (description, links, license, README, ...) for
//! versions published before the registry kept it at publish, and for imported ones: read
//! from the version's crate file, whose `Cargo.toml` and README hold it.

use bytes::Bytes;
use ktra_core::metadata::VersionMetadata;
use ktra_core::name::CrateId;
use ktra_core::version::VersionId;
use ktra_publish::PublishLimits;
use ktra_store::{BlobStore, MetadataStore, StoreError};

/// Crate names read from the store at a time.
const PAGE: usize = 256;

/// What a backfill did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// Versions whose metadata it kept.
    pub kept: usize,
    /// Versions whose crate file could not be read or checked; they keep only the file's size
    /// (or nothing, when the file is missing) and are logged.
    pub unreadable: usize,
}

/// Reads what a crate file says about `name` `version`: its manifest's metadata and README.
/// A file that fails the publish checks yields only its size, with the reason.
pub async fn from_crate_file(
    crate_file: Bytes,
    name: &str,
    version: &str,
    limits: &PublishLimits,
) -> (VersionMetadata, Option<String>, Option<String>) {
    let (name, version, limits) = (name.to_owned(), version.to_owned(), *limits);
    let size = u64::try_from(crate_file.len()).unwrap_or(u64::MAX);
    let read = ktra_core::task::spawn_blocking(move || {
        ktra_publish::metadata_of_crate_file(&crate_file, &name, &version, &limits)
    })
    .await;
    let only_size = VersionMetadata {
        crate_size: Some(size),
        ..VersionMetadata::default()
    };
    match read {
        Ok(Ok((metadata, readme))) => (metadata, readme, None),
        Ok(Err(error)) => (only_size, None, Some(error.to_string())),
        Err(error) => (only_size, None, Some(error.to_string())),
    }
}

/// Keeps the metadata of every version that has none, walking every crate.
///
/// # Errors
///
/// Fails when the store fails; what was kept before stays kept.
pub async fn backfill(
    store: &dyn MetadataStore,
    blobs: &BlobStore,
    limits: &PublishLimits,
) -> Result<Report, StoreError> {
    let mut report = Report::default();
    let mut after = None;
    loop {
        let names = store.crate_names(after.as_ref(), PAGE).await?;
        let Some(last) = names.last().cloned() else {
            return Ok(report);
        };
        for krate in &names {
            backfill_crate(store, blobs, limits, krate, &mut report).await?;
        }
        after = Some(last);
    }
}

async fn backfill_crate(
    store: &dyn MetadataStore,
    blobs: &BlobStore,
    limits: &PublishLimits,
    krate: &CrateId,
    report: &mut Report,
) -> Result<(), StoreError> {
    let Some(details) = store.crate_details(krate).await? else {
        return Ok(());
    };
    for version in details.versions.iter().filter(|v| v.metadata.is_none()) {
        let Ok(version_id) = VersionId::parse(&version.version) else {
            continue;
        };
        let Some(file) = store.crate_file(krate, &version_id).await? else {
            continue;
        };
        let bytes = match blobs.get_bytes(&file.blob_key).await {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::warn!(crate_name = %details.name, version = %version.version, %error, "the crate file cannot be read; its metadata stays unknown");
                report.unreadable += 1;
                continue;
            }
        };
        let (metadata, readme, problem) =
            from_crate_file(bytes, &details.name, &version.version, limits).await;
        if let Some(problem) = problem {
            tracing::warn!(crate_name = %details.name, version = %version.version, %problem, "the crate file does not pass the publish checks; only its size is kept");
            report.unreadable += 1;
        }
        if store
            .keep_version_metadata(krate, &version_id, metadata, readme)
            .await?
        {
            report.kept += 1;
        }
    }
    Ok(())
}
