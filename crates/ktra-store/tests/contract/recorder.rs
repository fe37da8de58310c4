//! A [`StoreObserver`] that keeps what it is told, so the contract runs through the
//! instrumentation decorators and checks what they report.

use std::sync::Mutex;
use std::time::Duration;

use ktra_store::{StoreKind, StoreObserver};

/// One reported operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reported {
    pub store: StoreKind,
    pub operation: &'static str,
    pub failed: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Recorder {
    reported: Mutex<Vec<Reported>>,
    up: Mutex<Vec<bool>>,
}

impl Recorder {
    /// The operations reported so far, in order.
    pub(crate) fn reported(&self) -> Vec<Reported> {
        self.reported.lock().unwrap().clone()
    }

    /// The names of the operations reported for `store`, in order.
    pub(crate) fn operations(&self, store: StoreKind) -> Vec<&'static str> {
        self.reported()
            .into_iter()
            .filter(|reported| reported.store == store)
            .map(|reported| reported.operation)
            .collect()
    }

    /// Asserts that the metadata decorator reported operations and none of them failed: the
    /// contract exercises refusals (4xx), never store failures.
    pub(crate) fn assert_metadata_reported_without_failures(&self) {
        let reported = self.reported();
        assert!(
            reported
                .iter()
                .any(|reported| reported.store == StoreKind::Metadata),
            "nothing was reported"
        );
        let failed: Vec<_> = reported.iter().filter(|reported| reported.failed).collect();
        assert!(failed.is_empty(), "{failed:?}");
    }

    /// What each ping answered.
    pub(crate) fn pings(&self) -> Vec<bool> {
        self.up.lock().unwrap().clone()
    }
}

impl StoreObserver for Recorder {
    fn operation(&self, store: StoreKind, operation: &'static str, _: Duration, failed: bool) {
        self.reported.lock().unwrap().push(Reported {
            store,
            operation,
            failed,
        });
    }

    fn metadata_up(&self, up: bool) {
        self.up.lock().unwrap().push(up);
    }
}
