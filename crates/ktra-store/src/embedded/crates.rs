//! Crates, versions and owners in the embedded store: publish, yank, owner changes and search.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::Utc;
use ktra_core::index::IndexLine;
use ktra_core::metadata::VersionMetadata;
use ktra_core::name::CrateId;
use ktra_core::version::VersionId;
use redb::{ReadableTable, WriteTransaction};

use super::EmbeddedStore;
use super::accounts::{resolve_users, user_by_id};
use super::audit::append_audit;
use super::index::{commit_crate_change, index_file_of};
use super::schema::{
    CRATES, CrateRecord, INDEX_FILES, READMES, USER_IDS, USERS, VERSION_METADATA, VERSIONS,
    VersionRecord, crate_record, decode, encode, internal,
};
use crate::error::StoreError;
use crate::model::{
    CrateDetails, CrateFileRef, CrateOverview, CrateSummary, IndexFile, NewVersion, OwnerAction,
    OwnerActor, OwnerChange, SearchHit, SearchPage, User, UserId, VersionDetails, VersionSummary,
    YankChange, check_publisher, max_version, search_matches, search_rank, stored_crate_id,
};
use crate::traits::CrateStore;

/// Returns a crate's versions in publish order.
pub(super) fn version_records(
    versions: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    canonical: &str,
) -> Result<Vec<VersionRecord>, StoreError> {
    let mut records = Vec::new();
    for entry in versions.range((canonical, "")..).map_err(internal)? {
        let (key, value) = entry.map_err(internal)?;
        if key.value().0 != canonical {
            break;
        }
        records.push(decode::<VersionRecord>(value.value())?);
    }
    records.sort_by_key(|record| record.line);
    Ok(records)
}

pub(super) fn require_owner(record: &CrateRecord, actor: UserId) -> Result<(), StoreError> {
    if record.owners.contains(&actor) {
        Ok(())
    } else {
        Err(StoreError::NotOwner(record.name.clone()))
    }
}

pub(super) fn require_owner_or_admin(
    record: &CrateRecord,
    actor: OwnerActor,
) -> Result<(), StoreError> {
    match actor {
        OwnerActor::Owner(user) => require_owner(record, user),
        OwnerActor::Admin => Ok(()),
    }
}

/// Writes a version's metadata and README.
fn keep_metadata(
    txn: &WriteTransaction,
    canonical: &str,
    key: &str,
    metadata: &VersionMetadata,
    readme: Option<&str>,
) -> Result<(), StoreError> {
    txn.open_table(VERSION_METADATA)
        .map_err(internal)?
        .insert((canonical, key), encode(metadata)?.as_slice())
        .map_err(internal)?;
    if let Some(readme) = readme {
        txn.open_table(READMES)
            .map_err(internal)?
            .insert((canonical, key), readme)
            .map_err(internal)?;
    }
    Ok(())
}

#[async_trait]
impl CrateStore for EmbeddedStore {
    async fn crate_summary(&self, krate: &CrateId) -> Result<Option<CrateSummary>, StoreError> {
        self.read_crate(krate, |txn, record, canonical| {
            let versions = txn.open_table(VERSIONS).map_err(internal)?;
            let versions = version_records(&versions, canonical)?
                .into_iter()
                .map(|version| VersionSummary {
                    version: version.vers,
                    yanked: version.yanked,
                })
                .collect();
            Ok(Some(CrateSummary {
                name: record.name,
                owners: record.owners,
                versions,
            }))
        })
    }

    async fn crate_details(&self, krate: &CrateId) -> Result<Option<CrateDetails>, StoreError> {
        let krate = krate.clone();
        // A crate with a thousand versions reads a thousand metadata records: off the task.
        self.scan(move |txn| {
            let crates = txn.open_table(CRATES).map_err(internal)?;
            let canonical = krate.canonical();
            let Some(record) = crate_record(&crates, canonical)? else {
                return Ok(None);
            };
            let user_ids = txn.open_table(USER_IDS).map_err(internal)?;
            let users = txn.open_table(USERS).map_err(internal)?;
            let mut known: BTreeMap<UserId, User> = BTreeMap::new();
            let mut user = |id: UserId| -> Result<User, StoreError> {
                if let Some(user) = known.get(&id) {
                    return Ok(user.clone());
                }
                let user = user_by_id(&user_ids, &users, id)?;
                known.insert(id, user.clone());
                Ok(user)
            };
            let owners = record
                .owners
                .iter()
                .map(|id| user(*id))
                .collect::<Result<Vec<_>, _>>()?;
            let versions_table = txn.open_table(VERSIONS).map_err(internal)?;
            let metadata_table = txn.open_table(VERSION_METADATA).map_err(internal)?;
            let mut versions = Vec::new();
            for version in version_records(&versions_table, canonical)? {
                let key = VersionId::parse(&version.vers).map_err(internal)?;
                let metadata = metadata_table
                    .get((canonical, key.key()))
                    .map_err(internal)?
                    .map(|value| decode::<VersionMetadata>(value.value()))
                    .transpose()?;
                versions.push(VersionDetails {
                    publisher: version.publisher.map(&mut user).transpose()?,
                    version: version.vers,
                    yanked: version.yanked,
                    cksum: version.cksum,
                    published_at: version.published_at,
                    metadata,
                });
            }
            Ok(Some(CrateDetails {
                name: record.name,
                owners,
                versions,
            }))
        })
        .await
    }

    async fn crates_overview(&self) -> Result<Vec<CrateOverview>, StoreError> {
        self.scan(|txn| {
            let crates = txn.open_table(CRATES).map_err(internal)?;
            let mut overview = Vec::new();
            for entry in crates.iter().map_err(internal)? {
                let record: CrateRecord = decode(entry.map_err(internal)?.1.value())?;
                overview.push(CrateOverview {
                    name: record.name,
                    description: record.description,
                    created_at: record.created_at,
                    updated_at: record.last_modified,
                    newest_version: record.newest_version,
                    version_count: record.version_count,
                    owners: record.owners,
                    downloads: record.downloads,
                });
            }
            Ok(overview)
        })
        .await
    }

    async fn readme(
        &self,
        krate: &CrateId,
        version: &VersionId,
    ) -> Result<Option<String>, StoreError> {
        let canonical = krate.canonical().to_owned();
        let key = version.key().to_owned();
        self.read(move |txn| {
            Ok(txn
                .open_table(READMES)
                .map_err(internal)?
                .get((canonical.as_str(), key.as_str()))
                .map_err(internal)?
                .map(|value| value.value().to_owned()))
        })
        .await
    }

    async fn keep_version_metadata(
        &self,
        krate: &CrateId,
        version: &VersionId,
        metadata: VersionMetadata,
        readme: Option<String>,
    ) -> Result<bool, StoreError> {
        let canonical = krate.canonical().to_owned();
        let key = version.key().to_owned();
        self.write(move |txn| {
            let exists = txn
                .open_table(VERSIONS)
                .map_err(internal)?
                .get((canonical.as_str(), key.as_str()))
                .map_err(internal)?
                .is_some();
            let kept = txn
                .open_table(VERSION_METADATA)
                .map_err(internal)?
                .get((canonical.as_str(), key.as_str()))
                .map_err(internal)?
                .is_some();
            if !exists || kept {
                return Ok(false);
            }
            keep_metadata(txn, &canonical, &key, &metadata, readme.as_deref())?;
            Ok(true)
        })
        .await
    }

    async fn publish(&self, new: NewVersion) -> Result<IndexFile, StoreError> {
        self.write(move |txn| {
            let canonical = new.krate.canonical();
            let key = new.version.key().to_owned();
            let crates = txn.open_table(CRATES).map_err(internal)?;
            let existing = crate_record(&crates, canonical)?;
            drop(crates);
            if new
                .crate_exists
                .is_some_and(|expected| expected != existing.is_some())
            {
                return Err(StoreError::CrateChanged(new.line.name.clone()));
            }
            let mut versions = txn.open_table(VERSIONS).map_err(internal)?;
            let mut record = match existing {
                Some(record) => {
                    check_publisher(&record.name, &record.owners, &new.line.name, new.publisher)?;
                    if let Some(duplicate) =
                        versions.get((canonical, key.as_str())).map_err(internal)?
                    {
                        let duplicate: VersionRecord = decode(duplicate.value())?;
                        return Err(StoreError::DuplicateVersion {
                            name: record.name,
                            version: duplicate.vers,
                        });
                    }
                    record
                }
                None => CrateRecord {
                    name: new.line.name.clone(),
                    owners: vec![new.publisher],
                    description: None,
                    version_count: 0,
                    revision: 0,
                    etag: String::new(),
                    last_modified: new.published_at,
                    created_at: Some(new.published_at),
                    newest_version: None,
                    downloads: 0,
                },
            };
            let version = VersionRecord {
                vers: new.line.vers.clone(),
                line: record.version_count,
                cksum: new.line.cksum.clone(),
                blob_key: new.blob_key.clone(),
                yanked: false,
                published_at: Some(new.published_at),
                publisher: Some(new.publisher),
            };
            versions
                .insert((canonical, key.as_str()), encode(&version)?.as_slice())
                .map_err(internal)?;
            drop(versions);
            keep_metadata(txn, canonical, &key, &new.metadata, new.readme.as_deref())?;
            record.version_count += 1;
            record.description = new.metadata.description.clone();
            record.newest_version = Some(new.line.vers.clone());
            let mut content = txn
                .open_table(INDEX_FILES)
                .map_err(internal)?
                .get(canonical)
                .map_err(internal)?
                .map(|value| value.value().to_vec())
                .unwrap_or_default();
            content.extend_from_slice(new.line.to_json().as_bytes());
            content.push(b'\n');
            append_audit(txn, &new.audit)?;
            commit_crate_change(txn, canonical, record, content, new.published_at)
        })
        .await
    }

    async fn set_yanked(&self, change: YankChange) -> Result<(IndexFile, bool), StoreError> {
        let YankChange {
            krate,
            version,
            yanked,
            actor,
            audit,
        } = change;
        let canonical = krate.canonical().to_owned();
        let key = version.key().to_owned();
        let version_text = version.to_string();
        self.write(move |txn| {
            let crates = txn.open_table(CRATES).map_err(internal)?;
            let record = crate_record(&crates, &canonical)?
                .ok_or_else(|| StoreError::CrateNotFound(canonical.clone()))?;
            drop(crates);
            require_owner(&record, actor)?;
            let mut versions = txn.open_table(VERSIONS).map_err(internal)?;
            let mut version: VersionRecord = versions
                .get((canonical.as_str(), key.as_str()))
                .map_err(internal)?
                .map(|value| decode(value.value()))
                .transpose()?
                .ok_or_else(|| StoreError::VersionNotFound {
                    name: record.name.clone(),
                    version: version_text,
                })?;
            let files = txn.open_table(INDEX_FILES).map_err(internal)?;
            if version.yanked == yanked {
                return Ok((index_file_of(&record, &files, &canonical)?, false));
            }
            let old = index_file_of(&record, &files, &canonical)?;
            drop(files);
            let mut lines: Vec<&[u8]> = old.content.split(|byte| *byte == b'\n').collect();
            // The file ends with a newline, so the split leaves an empty last piece.
            lines.pop();
            let slot = usize::try_from(version.line).map_err(internal)?;
            let Some(line) = lines.get(slot) else {
                return Err(StoreError::Internal(format!(
                    "crate `{canonical}` has no line {slot}"
                )));
            };
            let mut parsed: IndexLine = serde_json::from_slice(line).map_err(internal)?;
            parsed.yanked = yanked;
            let replaced = parsed.to_json();
            lines[slot] = replaced.as_bytes();
            let mut content = Vec::with_capacity(old.content.len() + 1);
            for line in lines {
                content.extend_from_slice(line);
                content.push(b'\n');
            }
            version.yanked = yanked;
            versions
                .insert(
                    (canonical.as_str(), key.as_str()),
                    encode(&version)?.as_slice(),
                )
                .map_err(internal)?;
            drop(versions);
            append_audit(txn, &audit)?;
            Ok((
                commit_crate_change(txn, &canonical, record, content, Utc::now())?,
                true,
            ))
        })
        .await
    }

    async fn owners(&self, krate: &CrateId) -> Result<Option<Vec<User>>, StoreError> {
        self.read_crate(krate, |txn, record, _| {
            let user_ids = txn.open_table(USER_IDS).map_err(internal)?;
            let users = txn.open_table(USERS).map_err(internal)?;
            record
                .owners
                .iter()
                .map(|id| user_by_id(&user_ids, &users, *id))
                .collect::<Result<Vec<_>, _>>()
                .map(Some)
        })
    }

    async fn change_owners(&self, change: OwnerChange) -> Result<Vec<User>, StoreError> {
        self.write(move |txn| {
            let canonical = change.krate.canonical();
            let mut crates = txn.open_table(CRATES).map_err(internal)?;
            let mut record = crate_record(&crates, canonical)?
                .ok_or_else(|| StoreError::CrateNotFound(canonical.to_owned()))?;
            require_owner_or_admin(&record, change.actor)?;
            let users = resolve_users(txn, &change.names)?;
            let mut changed: Vec<User> = Vec::new();
            for user in users {
                let owner = record.owners.contains(&user.id);
                if owner != (change.action == OwnerAction::Remove) {
                    continue;
                }
                match change.action {
                    OwnerAction::Add => record.owners.push(user.id),
                    OwnerAction::Remove => record.owners.retain(|id| *id != user.id),
                }
                changed.push(user);
            }
            if record.owners.is_empty() {
                return Err(StoreError::LastOwner(record.name));
            }
            if changed.is_empty() {
                return Ok(changed);
            }
            crates
                .insert(canonical, encode(&record)?.as_slice())
                .map_err(internal)?;
            drop(crates);
            append_audit(txn, &change.audit.naming_users(&changed))?;
            Ok(changed)
        })
        .await
    }

    async fn search(&self, query: &str, offset: u64, limit: u64) -> Result<SearchPage, StoreError> {
        let query = query.to_lowercase();
        self.scan(move |txn| {
            let crates = txn.open_table(CRATES).map_err(internal)?;
            let mut matches = Vec::new();
            for entry in crates.iter().map_err(internal)? {
                let (key, value) = entry.map_err(internal)?;
                let record: CrateRecord = decode(value.value())?;
                if search_matches(&query, key.value(), record.description.as_deref()) {
                    matches.push((search_rank(&query, key.value()), record));
                }
            }
            matches.sort_by(|a, b| a.0.cmp(&b.0));
            let total = u64::try_from(matches.len()).map_err(internal)?;
            let versions = txn.open_table(VERSIONS).map_err(internal)?;
            let skip = usize::try_from(offset).unwrap_or(usize::MAX);
            let take = usize::try_from(limit).unwrap_or(usize::MAX);
            let hits = matches
                .into_iter()
                .skip(skip)
                .take(take)
                .map(|((_, canonical), record)| {
                    let summaries: Vec<VersionSummary> = version_records(&versions, &canonical)?
                        .into_iter()
                        .map(|version| VersionSummary {
                            version: version.vers,
                            yanked: version.yanked,
                        })
                        .collect();
                    Ok(SearchHit {
                        name: record.name,
                        max_version: max_version(&summaries),
                        description: record.description,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            Ok(SearchPage { hits, total })
        })
        .await
    }

    async fn crate_file(
        &self,
        krate: &CrateId,
        version: &VersionId,
    ) -> Result<Option<CrateFileRef>, StoreError> {
        self.read_crate(krate, |txn, record, canonical| {
            let versions = txn.open_table(VERSIONS).map_err(internal)?;
            let Some(version) = versions
                .get((canonical, version.key()))
                .map_err(internal)?
                .map(|value| decode::<VersionRecord>(value.value()))
                .transpose()?
            else {
                return Ok(None);
            };
            Ok(Some(CrateFileRef {
                name: record.name,
                version: version.vers,
                blob_key: version.blob_key,
                cksum: version.cksum,
            }))
        })
    }

    async fn crate_names(
        &self,
        after: Option<&CrateId>,
        limit: usize,
    ) -> Result<Vec<CrateId>, StoreError> {
        let after = after.map(|krate| krate.canonical().to_owned());
        self.scan(move |txn| {
            let crates = txn.open_table(CRATES).map_err(internal)?;
            let range = match &after {
                Some(after) => crates.range::<&str>((
                    std::ops::Bound::Excluded(after.as_str()),
                    std::ops::Bound::Unbounded,
                )),
                None => crates.range::<&str>(..),
            }
            .map_err(internal)?;
            range
                .take(limit)
                .map(|entry| stored_crate_id(entry.map_err(internal)?.0.value()))
                .collect()
        })
        .await
    }
}
