//! What the stores report of each operation, and to whom: the metadata store's decorator
//! ([`crate::InstrumentedStore`]) and the blob store ([`crate::BlobStore::observed_by`]) run every
//! operation in a `store` span and report it to a [`StoreObserver`].
//!
//! Only failures of the store count as failed, not refusals such as a duplicate version, a
//! missing file or a taken blob key (which the mirror meets when two replicas cache one file).

use std::time::{Duration, Instant};

use tracing::Instrument;

/// Which store an operation ran against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreKind {
    /// The metadata store.
    Metadata,
    /// The blob store.
    Blob,
}

impl StoreKind {
    /// The name used in metrics: `metadata` or `blob`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Metadata => "metadata",
            Self::Blob => "blob",
        }
    }
}

/// Receives a measurement of every store operation (the API turns them into metrics).
pub trait StoreObserver: Send + Sync + std::fmt::Debug {
    /// `operation` (a method name, e.g. `publish` or `put_new`) ran against `store` for
    /// `elapsed`; `failed` when the store failed.
    fn operation(&self, store: StoreKind, operation: &'static str, elapsed: Duration, failed: bool);

    /// The metadata store answered a ping, or did not.
    fn metadata_up(&self, up: bool);
}

/// Runs `work` in a span named after the store and reports it to `observer`.
pub(crate) async fn observe<T, E>(
    observer: &dyn StoreObserver,
    store: StoreKind,
    operation: &'static str,
    work: impl Future<Output = Result<T, E>>,
    is_failure: impl Fn(&E) -> bool,
) -> Result<T, E> {
    let started = Instant::now();
    let result = work
        .instrument(tracing::info_span!(
            "store",
            store = store.as_str(),
            operation
        ))
        .await;
    let failed = matches!(&result, Err(error) if is_failure(error));
    observer.operation(store, operation, started.elapsed(), failed);
    result
}
