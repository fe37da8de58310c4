//! Turning a publish body into a validated version, before anything is stored.
//!
//! Everything here is pure and synchronous: bytes in, a [`CheckedPublish`] or a
//! [`PublishError`] out, no I/O. Only the API service uses it; it is a crate of its own so the
//! fuzz targets (`fuzz/` at the repository root) can build it without the service's async,
//! storage and telemetry dependencies. Error messages are shown to cargo users verbatim.

pub mod metadata;
pub mod tarball;
pub mod wire;

use bytes::Bytes;
use ktra_core::metadata::VersionMetadata;
use sha2::{Digest, Sha256};

use metadata::{MetadataError, PublishMetadata};
use tarball::TarballError;
use wire::WireError;

/// Why a publish body was refused. Every variant is the client's fault (a 400), and the
/// message is the inner error's, unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// The body does not split into metadata and crate file.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// The metadata does not parse or breaks a rule.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// The crate file is unreadable, hostile or disagrees with the metadata.
    #[error(transparent)]
    Tarball(#[from] TarballError),
}

/// A publish that passed every check that needs no store.
#[derive(Debug, Clone)]
pub struct CheckedPublish {
    /// The crate, named as published.
    pub krate: ktra_core::name::CrateId,
    /// The metadata cargo sent.
    pub metadata: PublishMetadata,
    /// The Rust edition, from the crate file's `Cargo.toml`.
    pub edition: Option<String>,
    /// The version and its key.
    pub version: ktra_core::version::VersionId,
    /// The `.crate` file.
    pub crate_file: Bytes,
    /// SHA-256 of the `.crate` file, hex.
    pub cksum: String,
}

/// What one publish may hold (`KTRA_HTTP_MAX_UNPACKED_BYTES`, `KTRA_LIMITS_MAX_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishLimits {
    /// Total size of the unpacked `.crate`, tar headers included.
    pub max_unpacked_bytes: u64,
    /// Entries in the `.crate` archive.
    pub max_files: usize,
    /// Dependencies, all kinds together.
    pub max_dependencies: usize,
    /// Features.
    pub max_features: usize,
    /// Values one feature enables.
    pub max_feature_values: usize,
    /// Bytes of the description.
    pub max_description_bytes: usize,
}

impl PublishLimits {
    /// The defaults of the configuration: crates.io's counts, 20,000 files, 512 MiB unpacked.
    pub const DEFAULT: Self = Self {
        max_unpacked_bytes: 512 * 1024 * 1024,
        max_files: 20_000,
        max_dependencies: 500,
        max_features: 300,
        max_feature_values: 300,
        max_description_bytes: 4096,
    };
}

/// Splits, parses and validates a publish body. CPU-bound: run it on the blocking pool.
///
/// # Errors
///
/// The first problem found, in this order: the wire format, the metadata, the crate file.
pub fn check(body: Bytes, limits: &PublishLimits) -> Result<CheckedPublish, PublishError> {
    let parts = wire::split(body)?;
    let metadata = PublishMetadata::parse(&parts.metadata)?;
    let (krate, version) = metadata.validate(limits)?;
    let manifest = tarball::validate(
        &parts.crate_file,
        &metadata.name,
        &metadata.vers,
        limits.max_unpacked_bytes,
        limits.max_files,
    )?;
    let cksum = hex::encode(Sha256::digest(&parts.crate_file));
    Ok(CheckedPublish {
        krate,
        edition: manifest.edition(),
        metadata,
        version,
        crate_file: parts.crate_file,
        cksum,
    })
}

/// What a stored crate file says about its version, for a version whose publish metadata was
/// not kept (the backfill, the import): its manifest's metadata and its README. The file is
/// checked as a publish would check it. CPU-bound: run it on the blocking pool.
///
/// # Errors
///
/// The file's first problem, as [`tarball::validate`] finds it.
pub fn metadata_of_crate_file(
    crate_file: &[u8],
    name: &str,
    version: &str,
    limits: &PublishLimits,
) -> Result<(VersionMetadata, Option<String>), TarballError> {
    let manifest = tarball::validate(
        crate_file,
        name,
        version,
        limits.max_unpacked_bytes,
        limits.max_files,
    )?;
    let crate_size = u64::try_from(crate_file.len()).unwrap_or(u64::MAX);
    let readme = manifest
        .readme_file()
        .and_then(|path| tarball::readme_text(crate_file, &format!("{name}-{version}"), &path));
    Ok((manifest.version_metadata(crate_size), readme))
}
