//! The stores seen through a span and a measurement per operation: one decorator for the
//! metadata store ([`InstrumentedStore`]) and one hook in the blob store
//! ([`crate::BlobStore::observed_by`]), both reporting to a [`StoreObserver`].
//!
//! Only failures of the store count as failed, not refusals such as a duplicate version, a
//! missing file or a taken blob key (which the mirror meets when two replicas cache one file).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tracing::Instrument;

use crate::error::StoreError;
use crate::traits::MetadataStore;

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

/// Wraps a metadata store: every operation gets a `store` span and is reported. The domain
/// traits pass each method on (see `traits.rs`), so no method is restated here.
#[derive(Debug)]
pub struct InstrumentedStore {
    pub(crate) inner: Arc<dyn MetadataStore>,
    observer: Arc<dyn StoreObserver>,
}

impl InstrumentedStore {
    /// Wraps `inner`, reporting to `observer`.
    pub fn new(inner: Arc<dyn MetadataStore>, observer: Arc<dyn StoreObserver>) -> Self {
        Self { inner, observer }
    }

    pub(crate) async fn observe<T>(
        &self,
        operation: &'static str,
        work: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        observe(
            self.observer.as_ref(),
            StoreKind::Metadata,
            operation,
            work,
            |error: &StoreError| error.code().is_server_error(),
        )
        .await
    }
}

#[async_trait]
impl MetadataStore for InstrumentedStore {
    async fn ping(&self) -> Result<(), StoreError> {
        let result = self.inner.ping().await;
        self.observer.metadata_up(result.is_ok());
        result
    }
}
