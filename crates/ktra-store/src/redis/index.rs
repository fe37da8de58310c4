//! Index files, their revisions and the marks the indexer acknowledges, in Redis.

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use ktra_core::name::CrateId;
use redis::{AsyncCommands, Value};

use super::RedisStore;
use super::{classify, from_millis, internal, millis};
use crate::error::StoreError;
use crate::model::{IndexFile, PendingChange, PendingSummary, stored_crate_id};
use crate::traits::IndexStore;

/// Reads the `{'ok', revision, content, last_modified, name}` reply of the publish, yank and
/// replace scripts, or their refusal.
pub(super) fn index_file_reply(
    reply: Vec<Value>,
) -> Result<Result<IndexFile, (String, Option<String>)>, StoreError> {
    let text = |value: &Value| -> Result<String, StoreError> {
        redis::from_redis_value::<String>(value.clone()).map_err(internal)
    };
    let status = reply.first().map(text).transpose()?.unwrap_or_default();
    if status != "ok" {
        let detail = reply.get(1).map(text).transpose()?;
        return Ok(Err((status, detail)));
    }
    let [_, revision, content, last_modified, name] = reply.as_slice() else {
        return Err(internal("the script answered an unexpected shape"));
    };
    let revision: u64 = redis::from_redis_value(revision.clone()).map_err(internal)?;
    let content: Vec<u8> = redis::from_redis_value(content.clone()).map_err(internal)?;
    IndexFile::stored(
        &text(name)?,
        Bytes::from(content),
        from_millis(&text(last_modified)?)?,
        revision,
    )
    .map(Ok)
}

impl RedisStore {
    /// Reads a crate's index file, or only its validators (the content left empty), in one
    /// command, so that the content and validators always agree.
    async fn read_index_file(
        &self,
        krate: &CrateId,
        with_content: bool,
    ) -> Result<Option<IndexFile>, StoreError> {
        let fields: &[&str] = if with_content {
            &["name", "revision", "last_modified", "index"]
        } else {
            &["name", "revision", "last_modified"]
        };
        let mut values: Vec<Option<Vec<u8>>> = self
            .connection()
            .hmget(self.keys.krate(krate.canonical()), fields)
            .await
            .map_err(classify)?;
        let content = match with_content {
            true => values.pop().flatten(),
            false => Some(Vec::new()),
        };
        let text = |value: Option<Vec<u8>>| value.map(String::from_utf8).transpose();
        let last_modified = text(values.pop().flatten()).map_err(internal)?;
        let revision = text(values.pop().flatten()).map_err(internal)?;
        let name = text(values.pop().flatten()).map_err(internal)?;
        let (Some(name), Some(revision), Some(last_modified), Some(content)) =
            (name, revision, last_modified, content)
        else {
            return Ok(None);
        };
        IndexFile::stored(
            &name,
            Bytes::from(content),
            from_millis(&last_modified)?,
            revision.parse().map_err(internal)?,
        )
        .map(Some)
    }
}

#[async_trait]
impl IndexStore for RedisStore {
    async fn index_file(&self, krate: &CrateId) -> Result<Option<IndexFile>, StoreError> {
        self.read_index_file(krate, true).await
    }

    async fn index_validators(&self, krate: &CrateId) -> Result<Option<IndexFile>, StoreError> {
        self.read_index_file(krate, false).await
    }

    async fn replace_index_file(
        &self,
        krate: &CrateId,
        revision: u64,
        content: Bytes,
    ) -> Result<Option<IndexFile>, StoreError> {
        let canonical = krate.canonical();
        let mut connection = self.primary.writer().await;
        let reply: Vec<Value> = self
            .scripts
            .replace_index
            .key(self.keys.krate(canonical))
            .key(self.keys.pending())
            .key(self.keys.pending_since())
            .arg(canonical)
            .arg(revision)
            .arg(content.as_ref())
            .arg(millis(Utc::now()))
            .invoke_async(&mut connection)
            .await
            .map_err(classify)?;
        self.primary.replicated(&mut connection).await?;
        match index_file_reply(reply)? {
            Ok(file) => Ok(Some(file)),
            Err((status, _)) => match status.as_str() {
                "moved" => Ok(None),
                "no_crate" => Err(StoreError::CrateNotFound(canonical.to_owned())),
                other => Err(internal(format!("replace script answered {other}"))),
            },
        }
    }

    async fn pending_changes(&self, limit: usize) -> Result<Vec<PendingChange>, StoreError> {
        let mut connection = self.connection();
        let mut cursor: u64 = 0;
        let mut changes = Vec::new();
        loop {
            let (next, entries): (u64, Vec<(String, u64)>) = redis::cmd("HSCAN")
                .arg(self.keys.pending())
                .arg(cursor)
                .arg("COUNT")
                .arg(limit.max(10))
                .query_async(&mut connection)
                .await
                .map_err(classify)?;
            for (canonical, revision) in entries {
                if changes.len() < limit {
                    changes.push(PendingChange {
                        krate: stored_crate_id(&canonical)?,
                        revision,
                    });
                }
            }
            cursor = next;
            if cursor == 0 || changes.len() >= limit {
                return Ok(changes);
            }
        }
    }

    async fn pending_summary(&self) -> Result<PendingSummary, StoreError> {
        let (crates, oldest): (u64, Vec<(String, i64)>) = redis::pipe()
            .hlen(self.keys.pending())
            .zrange_withscores(self.keys.pending_since(), 0, 0)
            .query_async(&mut self.connection())
            .await
            .map_err(classify)?;
        Ok(PendingSummary {
            crates,
            oldest: oldest
                .first()
                .and_then(|(_, since)| DateTime::from_timestamp_millis(*since)),
        })
    }

    async fn acknowledge(&self, krate: &CrateId, revision: u64) -> Result<bool, StoreError> {
        let cleared: i64 = self
            .scripts
            .acknowledge
            .key(self.keys.pending())
            .key(self.keys.pending_since())
            .arg(krate.canonical())
            .arg(revision)
            .invoke_async(&mut self.connection())
            .await
            .map_err(classify)?;
        Ok(cleared == 1)
    }
}
