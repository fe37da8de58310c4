//! The audit log: who did what, to what, when and from where.
//!
//! Events go to the metadata store, which keeps the latest [`AUDIT_RETAIN`] of them for
//! administrators to query (`GET /ktra/api/v1/admin/audit`). A handler builds the event of a
//! change with `event` and hands it to the store call that makes the change, which records
//! it in the same atomic step: the log holds every change that happened and no other. Events
//! that change nothing else (a refused login) go through `record`, where a store that cannot
//! take one logs and counts the failure instead.
//!
//! [`AUDIT_RETAIN`]: ktra_store::model::AUDIT_RETAIN

use chrono::Utc;
use ktra_store::model::AuditEvent;

use crate::state::AppState;

/// Builds an event happening now.
pub(crate) fn event(
    action: &str,
    actor: Option<&str>,
    target: impl Into<String>,
    client: &str,
    detail: Option<String>,
) -> AuditEvent {
    AuditEvent {
        at: Utc::now(),
        actor: actor.map(str::to_owned),
        action: action.to_owned(),
        target: target.into(),
        client: Some(client.to_owned()),
        detail,
    }
}

/// Records an event that comes with no change; a failure is logged, not returned.
pub(crate) async fn record(state: &AppState, event: AuditEvent) {
    let action = event.action.clone();
    if let Err(error) = state.store.record_audit(event).await {
        state.metrics.audit_failures.inc();
        tracing::error!(%error, action, "cannot record an audit event");
    }
}
