//! The audit log in the embedded store.

use async_trait::async_trait;
use redb::{ReadableTable, WriteTransaction};

use super::EmbeddedStore;
use super::schema::{AUDIT, decode, encode, internal};
use crate::error::StoreError;
use crate::model::{AUDIT_RETAIN, AuditEvent, AuditRecord};
use crate::traits::AuditLog;

/// Appends an audit event and drops the one that falls out of the retained window.
pub(super) fn append_audit(txn: &WriteTransaction, event: &AuditEvent) -> Result<(), StoreError> {
    let mut audit = txn.open_table(AUDIT).map_err(internal)?;
    let next = audit
        .last()
        .map_err(internal)?
        .map_or(1, |(key, _)| key.value() + 1);
    audit
        .insert(next, encode(event)?.as_slice())
        .map_err(internal)?;
    if next > AUDIT_RETAIN {
        audit.remove(next - AUDIT_RETAIN).map_err(internal)?;
    }
    Ok(())
}

#[async_trait]
impl AuditLog for EmbeddedStore {
    async fn record_audit(&self, event: AuditEvent) -> Result<(), StoreError> {
        self.write(move |txn| append_audit(txn, &event)).await
    }

    async fn audit_events(
        &self,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let before = match before {
            Some(cursor) => Some(
                cursor
                    .parse::<u64>()
                    .map_err(|_| StoreError::InvalidCursor(cursor.to_owned()))?,
            ),
            None => None,
        };
        self.scan(move |txn| {
            let audit = txn.open_table(AUDIT).map_err(internal)?;
            let range = match before {
                Some(before) => audit.range(..before),
                None => audit.range::<u64>(..),
            }
            .map_err(internal)?;
            range
                .rev()
                .take(limit)
                .map(|entry| {
                    let (key, value) = entry.map_err(internal)?;
                    Ok(AuditRecord {
                        cursor: key.value().to_string(),
                        event: decode(value.value())?,
                    })
                })
                .collect()
        })
        .await
    }
}
