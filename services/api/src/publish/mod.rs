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

/// Splits, parses and validates a publish body. CPU-bound: run it on the blocking pool.
///
/// # Errors
///
/// A 400 naming the first problem.
pub fn check(body: Bytes, max_unpacked_bytes: u64) -> Result<CheckedPublish, ApiError> {
    let parts = wire::split(body).map_err(|error| ApiError::bad_request(error.to_string()))?;
    let metadata = PublishMetadata::parse(&parts.metadata)
        .map_err(|error| ApiError::bad_request(error.to_string()))?;
    let version = metadata
        .validate()
        .map_err(|error| ApiError::bad_request(error.to_string()))?;
    tarball::validate(
        &parts.crate_file,
        &metadata.name,
        &metadata.vers,
        max_unpacked_bytes,
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
