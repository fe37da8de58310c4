//! Turning a publish body into a validated version, before anything is stored.

pub mod metadata;
pub mod tarball;
pub mod wire;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use metadata::PublishMetadata;

/// A publish that passed every check that needs no store.
#[derive(Debug, Clone)]
pub struct CheckedPublish {
    /// The metadata cargo sent.
    pub metadata: PublishMetadata,
    /// The parsed version.
    pub version: semver::Version,
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

    /// The limits the configuration sets.
    pub fn from_config(config: &crate::config::Config) -> Self {
        let limits = &config.limits;
        Self {
            max_unpacked_bytes: config.http.max_unpacked_bytes,
            max_files: limits.max_crate_files,
            max_dependencies: limits.max_dependencies,
            max_features: limits.max_features,
            max_feature_values: limits.max_feature_values,
            max_description_bytes: limits.max_description_bytes,
        }
    }
}

/// Splits, parses and validates a publish body. CPU-bound: run it on the blocking pool.
///
/// # Errors
///
/// A 400 naming the first problem.
pub fn check(body: Bytes, limits: &PublishLimits) -> Result<CheckedPublish, ApiError> {
    let parts = wire::split(body).map_err(|error| ApiError::bad_request(error.to_string()))?;
    let metadata = PublishMetadata::parse(&parts.metadata)
        .map_err(|error| ApiError::bad_request(error.to_string()))?;
    let version = metadata
        .validate(limits)
        .map_err(|error| ApiError::bad_request(error.to_string()))?;
    tarball::validate(
        &parts.crate_file,
        &metadata.name,
        &metadata.vers,
        limits.max_unpacked_bytes,
        limits.max_files,
    )
    .map_err(|error| ApiError::bad_request(error.to_string()))?;
    let cksum = hex::encode(Sha256::digest(&parts.crate_file));
    Ok(CheckedPublish {
        metadata,
        version,
        crate_file: parts.crate_file,
        cksum,
    })
}
