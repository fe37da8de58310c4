//! The audit log in Redis.

use std::collections::HashMap;

use async_trait::async_trait;

use super::RedisStore;
use super::{classify, internal};
use crate::error::StoreError;
use crate::model::{AUDIT_RETAIN, AuditEvent, AuditRecord};
use crate::traits::AuditLog;

impl RedisStore {
    /// The command that appends `event` to the audit log, for running alone or inside an
    /// atomic pipeline with the change it records.
    pub(super) fn append_audit(&self, event: &AuditEvent) -> Result<redis::Cmd, StoreError> {
        let mut command = redis::cmd("XADD");
        command
            .arg(self.keys.audit())
            .arg("MAXLEN")
            .arg("~")
            .arg(AUDIT_RETAIN)
            .arg("*")
            .arg("event")
            .arg(serde_json::to_string(event).map_err(internal)?);
        Ok(command)
    }
}

#[async_trait]
impl AuditLog for RedisStore {
    async fn record_audit(&self, event: AuditEvent) -> Result<(), StoreError> {
        let _: String = self
            .append_audit(&event)?
            .query_async(&mut self.connection())
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn audit_events(
        &self,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let end = match before {
            Some(cursor) => {
                let valid = cursor.split_once('-').is_some_and(|(ms, seq)| {
                    ms.parse::<u64>().is_ok() && seq.parse::<u64>().is_ok()
                });
                if !valid {
                    return Err(StoreError::InvalidCursor(cursor.to_owned()));
                }
                format!("({cursor}")
            }
            None => "+".to_owned(),
        };
        let entries: Vec<(String, HashMap<String, String>)> = redis::cmd("XREVRANGE")
            .arg(self.keys.audit())
            .arg(end)
            .arg("-")
            .arg("COUNT")
            .arg(limit)
            .query_async(&mut self.connection())
            .await
            .map_err(classify)?;
        entries
            .into_iter()
            .map(|(cursor, fields)| {
                let json = fields
                    .get("event")
                    .ok_or_else(|| internal("audit entry lacks its event"))?;
                Ok(AuditRecord {
                    cursor,
                    event: serde_json::from_str(json).map_err(internal)?,
                })
            })
            .collect()
    }
}
