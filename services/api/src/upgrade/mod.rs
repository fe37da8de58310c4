//! Brings data written by earlier releases up to what this one keeps, at start, in the
//! background: every replica runs it, and each step is safe to run on several at once (a
//! compare-and-set, or a write that only fills what is missing).
//!
//! - [`null_keys`]: index lines without `null` values.
//! - [`version_metadata`]: what each version says about itself, read from its crate file when
//!   the registry did not keep it at publish.

pub mod null_keys;
pub mod version_metadata;

use std::sync::Arc;

use ktra_publish::PublishLimits;
use ktra_store::{BlobStore, MetadataStore};

/// Runs every step once, logging what each did; for a task started with the service. A step
/// that fails is retried at the next start.
pub async fn in_background(store: Arc<dyn MetadataStore>, blobs: BlobStore, limits: PublishLimits) {
    match null_keys::drop_null_keys(&*store).await {
        Ok(0) => {}
        Ok(count) => tracing::info!(count, "index files rewritten without null keys"),
        Err(error) => {
            tracing::warn!(%error, "rewriting index files without null keys failed; the next start retries");
        }
    }
    match version_metadata::backfill(&*store, &blobs, &limits).await {
        Ok(report) if report == version_metadata::Report::default() => {}
        Ok(report) => tracing::info!(
            kept = report.kept,
            unreadable = report.unreadable,
            "metadata kept for versions published before the registry kept it"
        ),
        Err(error) => {
            tracing::warn!(%error, "keeping the metadata of earlier versions failed; the next start retries");
        }
    }
}
