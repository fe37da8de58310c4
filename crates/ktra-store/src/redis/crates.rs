//! Crates, versions and owners in Redis: publish, yank, owner changes and search.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use async_trait::async_trait;
use chrono::Utc;
use ktra_core::metadata::VersionMetadata;
use ktra_core::name::{CrateId, canonical_crate_name};
use ktra_core::version::VersionId;
use redis::{AsyncCommands, Value};
use serde::Deserialize;

use super::RedisStore;
use super::index::index_file_reply;
use super::scripts::AuditArgs;
use super::{classify, from_millis, internal, millis};
use crate::error::StoreError;
use crate::model::{
    CrateDetails, CrateFileRef, CrateOverview, CrateSummary, IndexFile, MIN_SUBSTRING_QUERY,
    NewVersion, OwnerAction, OwnerActor, OwnerChange, SearchHit, SearchPage, User, UserId,
    VersionDetails, VersionSummary, YankChange, max_version, search_matches, search_rank,
    stored_crate_id, trigrams, words,
};
use crate::traits::CrateStore;

/// The version record a script stores as JSON.
#[derive(Debug, Deserialize)]
pub(super) struct VersionRecord {
    pub(super) vers: String,
    pub(super) cksum: String,
    pub(super) blob_key: String,
    pub(super) yanked: bool,
    /// Milliseconds since the epoch; unknown for versions stored before the registry kept it.
    #[serde(default)]
    pub(super) published_at: Option<i64>,
    /// Unknown for versions stored before the registry kept it.
    #[serde(default)]
    pub(super) publisher: Option<UserId>,
    /// The version's line in the index file, from 0.
    #[serde(default)]
    pub(super) line: u64,
}

impl RedisStore {
    /// Returns a crate's name and its owners' ids in ascending order.
    pub(super) async fn name_and_owners(
        &self,
        canonical: &str,
    ) -> Result<Option<(String, Vec<UserId>)>, StoreError> {
        let (name, mut owners): (Option<String>, Vec<UserId>) = redis::pipe()
            .hget(self.keys.krate(canonical), "name")
            .smembers(self.keys.owners(canonical))
            .query_async(&mut self.connection())
            .await
            .map_err(classify)?;
        owners.sort_unstable();
        Ok(name.map(|name| (name, owners)))
    }

    /// Returns the canonical names that may match a query, from the search indexes: those
    /// whose name holds the whole query, and those where each word of the query is in the
    /// name or in the description's word index ([`search_matches`] decides).
    pub(super) async fn search_candidates(
        &self,
        query: &str,
    ) -> Result<BTreeSet<String>, StoreError> {
        let mut candidates = self.name_candidates(query).await?;
        let mut every_word: Option<BTreeSet<String>> = None;
        for word in words(query) {
            let mut matching = self.name_candidates(&word).await?;
            let described: Vec<String> = self
                .connection()
                .smembers(self.keys.description_word(&word))
                .await
                .map_err(classify)?;
            matching.extend(described);
            every_word = Some(match every_word {
                None => matching,
                Some(found) => found.intersection(&matching).cloned().collect(),
            });
        }
        candidates.extend(every_word.unwrap_or_default());
        Ok(candidates)
    }

    /// Returns the canonical names that hold `text` (see [`crate::model::name_contains`]),
    /// from the name index.
    async fn name_candidates(&self, text: &str) -> Result<BTreeSet<String>, StoreError> {
        let folded = canonical_crate_name(text);
        let mut connection = self.connection();
        let names: Vec<String> = if folded.chars().count() < MIN_SUBSTRING_QUERY {
            if folded.is_empty() {
                return Ok(BTreeSet::new());
            }
            let start = format!("[{folded}");
            let end = format!("[{folded}\u{ff}");
            connection
                .zrangebylex(self.keys.crate_names(), start, end)
                .await
                .map_err(classify)?
        } else {
            let grams: Vec<String> = trigrams(&folded)
                .iter()
                .map(|gram| self.keys.name_trigram(gram))
                .collect();
            connection.sinter(grams).await.map_err(classify)?
        };
        Ok(names.into_iter().collect())
    }

    pub(super) async fn version_summaries(
        &self,
        canonical: &str,
    ) -> Result<Vec<VersionSummary>, StoreError> {
        let raw: Vec<String> = self
            .connection()
            .hvals(self.keys.versions(canonical))
            .await
            .map_err(classify)?;
        let mut records: Vec<(u64, VersionSummary)> = raw
            .iter()
            .map(|text| {
                let record: VersionRecord = serde_json::from_str(text).map_err(internal)?;
                Ok((
                    record.line,
                    VersionSummary {
                        version: record.vers,
                        yanked: record.yanked,
                    },
                ))
            })
            .collect::<Result<_, StoreError>>()?;
        records.sort_by_key(|(line, _)| *line);
        Ok(records.into_iter().map(|(_, summary)| summary).collect())
    }
}

/// The crate record's fields a listing reads, in [`OVERVIEW_FIELDS`] order.
const OVERVIEW_FIELDS: [&str; 7] = [
    "name",
    "description",
    "created_at",
    "last_modified",
    "newest_version",
    "version_count",
    "downloads",
];

/// [`OVERVIEW_FIELDS`] as read.
type OverviewFields = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<u32>,
    Option<u64>,
);

/// An owner among the users read for a crate; an owner without a user record is an
/// inconsistency.
fn known_user(users: &BTreeMap<UserId, User>, id: UserId) -> Result<User, StoreError> {
    users
        .get(&id)
        .cloned()
        .ok_or_else(|| internal(format!("user id {id} has no name")))
}

#[async_trait]
impl CrateStore for RedisStore {
    async fn crate_summary(&self, krate: &CrateId) -> Result<Option<CrateSummary>, StoreError> {
        let canonical = krate.canonical();
        let Some((name, owners)) = self.name_and_owners(canonical).await? else {
            return Ok(None);
        };
        Ok(Some(CrateSummary {
            name,
            owners,
            versions: self.version_summaries(canonical).await?,
        }))
    }

    async fn crate_details(&self, krate: &CrateId) -> Result<Option<CrateDetails>, StoreError> {
        let canonical = krate.canonical();
        let (name, owner_ids, versions, metadata): (
            Option<String>,
            Vec<UserId>,
            HashMap<String, String>,
            HashMap<String, String>,
        ) = redis::pipe()
            .hget(self.keys.krate(canonical), "name")
            .smembers(self.keys.owners(canonical))
            .hgetall(self.keys.versions(canonical))
            .hgetall(self.keys.version_metadata(canonical))
            .query_async(&mut self.connection())
            .await
            .map_err(classify)?;
        let Some(name) = name else {
            return Ok(None);
        };
        let mut records = versions
            .iter()
            .map(|(key, text)| {
                let record: VersionRecord = serde_json::from_str(text).map_err(internal)?;
                Ok((key, record))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        records.sort_by_key(|(_, record)| record.line);
        let mut users: BTreeMap<UserId, User> = BTreeMap::new();
        let wanted: BTreeSet<UserId> = owner_ids
            .iter()
            .copied()
            .chain(records.iter().filter_map(|(_, record)| record.publisher))
            .collect();
        for id in wanted {
            if let Some(user) = self.find_user_by_id(id).await? {
                users.insert(id, user);
            }
        }
        let mut owners: Vec<User> = owner_ids
            .iter()
            .map(|id| known_user(&users, *id))
            .collect::<Result<_, _>>()?;
        owners.sort_by_key(|user| user.id);
        let versions = records
            .into_iter()
            .map(|(key, record)| {
                Ok(VersionDetails {
                    published_at: record
                        .published_at
                        .and_then(chrono::DateTime::from_timestamp_millis),
                    publisher: record.publisher.and_then(|id| users.get(&id).cloned()),
                    metadata: metadata
                        .get(key)
                        .map(|text| serde_json::from_str(text))
                        .transpose()
                        .map_err(internal)?,
                    version: record.vers,
                    yanked: record.yanked,
                    cksum: record.cksum,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(Some(CrateDetails {
            name,
            owners,
            versions,
        }))
    }

    async fn crates_overview(&self) -> Result<Vec<CrateOverview>, StoreError> {
        let names: Vec<String> = self
            .connection()
            .zrange(self.keys.crate_names(), 0, -1)
            .await
            .map_err(classify)?;
        let mut overview = Vec::with_capacity(names.len());
        for chunk in names.chunks(512) {
            let mut pipe = redis::pipe();
            for canonical in chunk {
                pipe.hmget(self.keys.krate(canonical), &OVERVIEW_FIELDS)
                    .smembers(self.keys.owners(canonical));
            }
            let rows: Vec<(OverviewFields, Vec<UserId>)> = pipe
                .query_async(&mut self.connection())
                .await
                .map_err(classify)?;
            for (fields, mut owners) in rows {
                let (
                    name,
                    description,
                    created_at,
                    last_modified,
                    newest_version,
                    count,
                    downloads,
                ) = fields;
                owners.sort_unstable();
                let (Some(name), Some(last_modified)) = (name, last_modified) else {
                    continue;
                };
                overview.push(CrateOverview {
                    name,
                    description,
                    created_at: created_at.as_deref().map(from_millis).transpose()?,
                    updated_at: from_millis(&last_modified)?,
                    newest_version,
                    version_count: count.unwrap_or_default(),
                    owners,
                    downloads: downloads.unwrap_or_default(),
                });
            }
        }
        Ok(overview)
    }

    async fn readme(
        &self,
        krate: &CrateId,
        version: &VersionId,
    ) -> Result<Option<String>, StoreError> {
        self.connection()
            .hget(self.keys.readmes(krate.canonical()), version.key())
            .await
            .map_err(classify)
    }

    async fn keep_version_metadata(
        &self,
        krate: &CrateId,
        version: &VersionId,
        metadata: VersionMetadata,
        readme: Option<String>,
    ) -> Result<bool, StoreError> {
        let canonical = krate.canonical();
        let mut connection = self.primary.writer().await;
        let kept: i64 = self
            .scripts
            .keep_metadata
            .key(self.keys.versions(canonical))
            .key(self.keys.version_metadata(canonical))
            .key(self.keys.readmes(canonical))
            .arg(version.key())
            .arg(serde_json::to_string(&metadata).map_err(internal)?)
            .arg(readme.as_deref().unwrap_or_default())
            .arg(if readme.is_some() { "1" } else { "0" })
            .invoke_async(&mut connection)
            .await
            .map_err(classify)?;
        if kept == 1 {
            self.primary.replicated(&mut connection).await?;
        }
        Ok(kept == 1)
    }

    async fn publish(&self, new: NewVersion) -> Result<IndexFile, StoreError> {
        let canonical = new.krate.canonical();
        let key = new.version.key();
        let mut invocation = self.scripts.publish.prepare_invoke();
        invocation
            .key(self.keys.krate(canonical))
            .key(self.keys.versions(canonical))
            .key(self.keys.owners(canonical))
            .key(self.keys.pending())
            .key(self.keys.crate_names())
            .key(self.keys.pending_since())
            .key(self.keys.version_metadata(canonical))
            .key(self.keys.readmes(canonical));
        for gram in trigrams(canonical) {
            invocation.key(self.keys.name_trigram(&gram));
        }
        let description = new.metadata.description.as_deref();
        for word in words(description.unwrap_or_default()) {
            invocation.key(self.keys.description_word(&word));
        }
        invocation
            .arg(canonical)
            .arg(&new.line.name)
            .arg(key)
            .arg(&new.line.vers)
            .arg(&new.line.cksum)
            .arg(&new.blob_key)
            .arg(new.line.to_json())
            .arg(new.publisher)
            .arg(description.unwrap_or_default())
            .arg(if description.is_some() { "1" } else { "0" })
            .arg(millis(new.published_at))
            .arg(match new.crate_exists {
                Some(true) => "1",
                Some(false) => "0",
                None => "",
            })
            .arg(serde_json::to_string(&new.metadata).map_err(internal)?)
            .arg(new.readme.as_deref().unwrap_or_default())
            .arg(if new.readme.is_some() { "1" } else { "0" })
            .audit(self.keys.audit(), &new.audit)?;
        let mut connection = self.primary.writer().await;
        let reply: Vec<Value> = invocation
            .invoke_async(&mut connection)
            .await
            .map_err(classify)?;
        match index_file_reply(reply)? {
            Ok(file) => {
                // Only a change waits for replicas: a refusal wrote nothing.
                self.primary.replicated(&mut connection).await?;
                Ok(file)
            }
            Err((status, detail)) => {
                let detail = detail.unwrap_or_default();
                Err(match status.as_str() {
                    "taken" => StoreError::NameTaken {
                        name: new.line.name,
                        existing: detail,
                    },
                    "not_owner" => StoreError::NotOwner(detail),
                    "changed" => StoreError::CrateChanged(detail),
                    "duplicate" => StoreError::DuplicateVersion {
                        name: new.line.name,
                        version: detail,
                    },
                    other => internal(format!("publish script answered {other}")),
                })
            }
        }
    }

    async fn set_yanked(&self, change: YankChange) -> Result<(IndexFile, bool), StoreError> {
        let YankChange {
            krate,
            version,
            yanked,
            actor,
            audit,
        } = change;
        let canonical = krate.canonical();
        let mut connection = self.primary.writer().await;
        let mut reply: Vec<Value> = self
            .scripts
            .yank
            .key(self.keys.krate(canonical))
            .key(self.keys.versions(canonical))
            .key(self.keys.owners(canonical))
            .key(self.keys.pending())
            .key(self.keys.pending_since())
            .arg(canonical)
            .arg(version.key())
            .arg(if yanked { "1" } else { "0" })
            .arg(actor)
            .arg(millis(Utc::now()))
            .audit(self.keys.audit(), &audit)?
            .invoke_async(&mut connection)
            .await
            .map_err(classify)?;
        let unchanged =
            matches!(reply.first(), Some(Value::BulkString(status)) if status == b"unchanged");
        if unchanged {
            reply[0] = Value::SimpleString("ok".to_owned());
        }
        match index_file_reply(reply)? {
            Ok(file) => {
                // Only a change waits for replicas: an unchanged flag or a refusal wrote nothing.
                if !unchanged {
                    self.primary.replicated(&mut connection).await?;
                }
                Ok((file, !unchanged))
            }
            Err((status, detail)) => Err(match status.as_str() {
                "no_crate" => StoreError::CrateNotFound(canonical.to_owned()),
                "not_owner" => StoreError::NotOwner(detail.unwrap_or_default()),
                "no_version" => StoreError::VersionNotFound {
                    name: detail.unwrap_or_default(),
                    version: version.to_string(),
                },
                other => internal(format!("yank script answered {other}")),
            }),
        }
    }

    async fn owners(&self, krate: &CrateId) -> Result<Option<Vec<User>>, StoreError> {
        let Some((_, owners)) = self.name_and_owners(krate.canonical()).await? else {
            return Ok(None);
        };
        let mut users = Vec::with_capacity(owners.len());
        for id in owners {
            users.push(self.user_by_id(id).await?);
        }
        Ok(Some(users))
    }

    async fn change_owners(&self, change: OwnerChange) -> Result<Vec<User>, StoreError> {
        let canonical = change.krate.canonical();
        let users = self.users_by_name(&change.names).await?;
        let mut invocation = self.scripts.owners.prepare_invoke();
        invocation
            .key(self.keys.krate(canonical))
            .key(self.keys.owners(canonical))
            .arg(match change.action {
                OwnerAction::Add => "add",
                OwnerAction::Remove => "remove",
            })
            .arg(match change.actor {
                OwnerActor::Owner(user) => user.to_string(),
                OwnerActor::Admin => String::new(),
            });
        for user in &users {
            invocation.arg(user.id).arg(&user.name);
        }
        invocation.audit(self.keys.audit(), &change.audit)?;
        let mut connection = self.primary.writer().await;
        let reply: Vec<Value> = invocation
            .invoke_async(&mut connection)
            .await
            .map_err(classify)?;
        self.primary.replicated(&mut connection).await?;
        let status: String = reply
            .first()
            .cloned()
            .map(redis::from_redis_value)
            .transpose()
            .map_err(internal)?
            .unwrap_or_default();
        let detail = || -> Result<String, StoreError> {
            reply
                .get(1)
                .cloned()
                .map(redis::from_redis_value::<String>)
                .transpose()
                .map_err(internal)
                .map(Option::unwrap_or_default)
        };
        match status.as_str() {
            "ok" => {
                let changed: Vec<UserId> = reply
                    .get(1)
                    .cloned()
                    .map(redis::from_redis_value)
                    .transpose()
                    .map_err(internal)?
                    .unwrap_or_default();
                Ok(changed
                    .into_iter()
                    .filter_map(|id| users.iter().find(|user| user.id == id).cloned())
                    .collect())
            }
            "no_crate" => Err(StoreError::CrateNotFound(canonical.to_owned())),
            "not_owner" => Err(StoreError::NotOwner(detail()?)),
            "last_owner" => Err(StoreError::LastOwner(detail()?)),
            other => Err(internal(format!("owners script answered {other}"))),
        }
    }

    async fn search(&self, query: &str, offset: u64, limit: u64) -> Result<SearchPage, StoreError> {
        let query_lower = query.to_lowercase();
        let candidates = self.search_candidates(&query_lower).await?;
        let mut connection = self.connection();
        let mut matches = Vec::new();
        for canonical in candidates {
            let (name, description): (Option<String>, Option<String>) = connection
                .hmget(self.keys.krate(&canonical), &["name", "description"])
                .await
                .map_err(classify)?;
            let Some(name) = name else {
                continue;
            };
            // The indexes may hold stale words; the current description decides.
            if search_matches(&query_lower, &canonical, description.as_deref()) {
                matches.push((search_rank(&query_lower, &canonical), name, description));
            }
        }
        matches.sort_by(|a, b| a.0.cmp(&b.0));
        let total = u64::try_from(matches.len()).map_err(internal)?;
        let skip = usize::try_from(offset).unwrap_or(usize::MAX);
        let take = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut hits = Vec::new();
        for ((_, canonical), name, description) in matches.into_iter().skip(skip).take(take) {
            let versions = self.version_summaries(&canonical).await?;
            hits.push(SearchHit {
                name,
                max_version: max_version(&versions),
                description,
            });
        }
        Ok(SearchPage { hits, total })
    }

    async fn crate_file(
        &self,
        krate: &CrateId,
        version: &VersionId,
    ) -> Result<Option<CrateFileRef>, StoreError> {
        let canonical = krate.canonical();
        let (name, record): (Option<String>, Option<String>) = redis::pipe()
            .hget(self.keys.krate(canonical), "name")
            .hget(self.keys.versions(canonical), version.key())
            .query_async(&mut self.connection())
            .await
            .map_err(classify)?;
        let (Some(name), Some(record)) = (name, record) else {
            return Ok(None);
        };
        let record: VersionRecord = serde_json::from_str(&record).map_err(internal)?;
        Ok(Some(CrateFileRef {
            name,
            version: record.vers,
            blob_key: record.blob_key,
            cksum: record.cksum,
        }))
    }

    async fn crate_names(
        &self,
        after: Option<&CrateId>,
        limit: usize,
    ) -> Result<Vec<CrateId>, StoreError> {
        let start = match after {
            Some(after) => format!("({}", after.canonical()),
            None => "-".to_owned(),
        };
        let names: Vec<String> = self
            .connection()
            .zrangebylex_limit(
                self.keys.crate_names(),
                start,
                "+",
                0,
                isize::try_from(limit).unwrap_or(isize::MAX),
            )
            .await
            .map_err(classify)?;
        names.iter().map(|name| stored_crate_id(name)).collect()
    }
}
