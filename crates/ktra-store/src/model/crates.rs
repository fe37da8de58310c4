//! Crates and versions: what a publish brings and what the store answers about them.

use chrono::{DateTime, Utc};
use ktra_core::index::IndexLine;
use ktra_core::metadata::VersionMetadata;
use ktra_core::name::CrateId;
use ktra_core::version::VersionId;

use super::accounts::{OwnerActor, User, UserId};
use super::audit::AuditEvent;
use crate::error::StoreError;

/// The rules an existing crate sets for a publish: the name must be the crate's own (not a
/// variant of it in case or `-`/`_`), and the publisher must own the crate. The API checks them
/// early, to refuse before storing a crate file, and each store again in its atomic step (the
/// Redis store in `publish.lua`, which follows this function).
///
/// # Errors
///
/// [`StoreError::NameTaken`] or [`StoreError::NotOwner`].
pub fn check_publisher(
    existing_name: &str,
    owners: &[UserId],
    name: &str,
    publisher: UserId,
) -> Result<(), StoreError> {
    if existing_name != name {
        return Err(StoreError::NameTaken {
            name: name.to_owned(),
            existing: existing_name.to_owned(),
        });
    }
    if !owners.contains(&publisher) {
        return Err(StoreError::NotOwner(existing_name.to_owned()));
    }
    Ok(())
}

/// A version to publish, fully validated by the caller.
#[derive(Debug, Clone)]
pub struct NewVersion {
    /// The crate, named as published (`line.name`).
    pub krate: CrateId,
    /// The index line, with `yanked` false.
    pub line: IndexLine,
    /// The version (`line.vers`) and its key.
    pub version: VersionId,
    /// Where the crate file was stored.
    pub blob_key: String,
    /// What the version says about itself; its description becomes the crate's, for search.
    pub metadata: VersionMetadata,
    /// The README's text, at most [`MAX_README_BYTES`](ktra_core::metadata::MAX_README_BYTES).
    pub readme: Option<String>,
    /// The publishing user; becomes the owner of a new crate and must own an existing one.
    pub publisher: UserId,
    /// The publication time.
    pub published_at: DateTime<Utc>,
    /// The audit event, recorded in the same atomic step as the version.
    pub audit: AuditEvent,
    /// Whether the crate must already exist (`Some(true)`) or must be new (`Some(false)`),
    /// checked in the same atomic step: a token allowed only one of the two cannot do the
    /// other because the crate appeared or went meanwhile. `None` accepts either.
    pub crate_exists: Option<bool>,
}

/// A version to yank or unyank: what [`crate::CrateStore::set_yanked`] takes.
#[derive(Debug, Clone)]
pub struct YankChange {
    /// The crate.
    pub krate: CrateId,
    /// The version.
    pub version: VersionId,
    /// `true` to yank, `false` to unyank.
    pub yanked: bool,
    /// The user acting, who must own the crate.
    pub actor: UserId,
    /// The event recorded when the flag changes.
    pub audit: AuditEvent,
}

/// Whether an owner change adds or removes owners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerAction {
    /// Adds the users as owners.
    Add,
    /// Removes them; the crate keeps at least one owner.
    Remove,
}

/// An owner change: what [`crate::CrateStore::change_owners`] takes.
#[derive(Debug, Clone)]
pub struct OwnerChange {
    /// The crate.
    pub krate: CrateId,
    /// Adding or removing.
    pub action: OwnerAction,
    /// Who acts: an owner of the crate, or an administrator.
    pub actor: OwnerActor,
    /// The user names to add or remove.
    pub names: Vec<String>,
    /// The event recorded when some owner changes, named for the users changed.
    pub audit: AuditEvent,
}

/// A crate's name, owners and versions, as checks before a publish need them.
#[derive(Debug, Clone)]
pub struct CrateSummary {
    /// The name as first published.
    pub name: String,
    /// The owners' ids.
    pub owners: Vec<UserId>,
    /// The versions, in publish order.
    pub versions: Vec<VersionSummary>,
}

/// One version of a crate, briefly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionSummary {
    /// The version as published.
    pub version: String,
    /// Whether it is yanked.
    pub yanked: bool,
}

/// A crate as people and the crates.io read API see it.
#[derive(Debug, Clone)]
pub struct CrateDetails {
    /// The name as first published.
    pub name: String,
    /// The owners.
    pub owners: Vec<User>,
    /// The versions, in publish order.
    pub versions: Vec<VersionDetails>,
}

/// One version of a crate, in full but for its README (see [`crate::CrateStore::readme`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionDetails {
    /// The version as published.
    pub version: String,
    /// Whether it is yanked.
    pub yanked: bool,
    /// SHA-256 of the crate file, hex.
    pub cksum: String,
    /// When it was published; unknown for versions stored before the registry kept it.
    pub published_at: Option<DateTime<Utc>>,
    /// Who published it; unknown for versions stored before the registry kept it.
    pub publisher: Option<User>,
    /// What it says about itself; `None` until kept (at publish, or by the backfill for
    /// versions published before the registry kept it).
    pub metadata: Option<VersionMetadata>,
}

/// A crate in listings: the home page and the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrateOverview {
    /// The name as first published.
    pub name: String,
    /// The latest published description.
    pub description: Option<String>,
    /// When its first version was published; unknown for crates stored before the registry
    /// kept it.
    pub created_at: Option<DateTime<Utc>>,
    /// When its index file last changed (a publish or a yank).
    pub updated_at: DateTime<Utc>,
    /// The version published last; unknown for crates not published to since the registry
    /// kept it.
    pub newest_version: Option<String>,
    /// How many versions it has.
    pub version_count: u32,
    /// Its owners' ids.
    pub owners: Vec<UserId>,
    /// How often its versions were downloaded, in all.
    pub downloads: u64,
}

/// Where a version's crate file lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrateFileRef {
    /// The crate's name as published.
    pub name: String,
    /// The version as published.
    pub version: String,
    /// The blob store key.
    pub blob_key: String,
    /// SHA-256 of the file, hex.
    pub cksum: String,
}

/// Returns the highest non-yanked version among `versions`, or `0.0.0` when none qualifies.
pub fn max_version<'a>(versions: impl IntoIterator<Item = &'a VersionSummary>) -> String {
    versions
        .into_iter()
        .filter(|summary| !summary.yanked)
        .filter_map(|summary| semver::Version::parse(&summary.version).ok())
        .max_by(|a, b| a.cmp_precedence(b).then_with(|| a.cmp(b)))
        .map_or_else(|| "0.0.0".to_owned(), |version| version.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_version_skips_yanked() {
        let versions = [
            VersionSummary {
                version: "1.0.0".into(),
                yanked: false,
            },
            VersionSummary {
                version: "2.0.0".into(),
                yanked: true,
            },
            VersionSummary {
                version: "1.5.0-beta".into(),
                yanked: false,
            },
        ];
        assert_eq!(max_version(&versions), "1.5.0-beta");
        assert_eq!(max_version(&versions[1..2]), "0.0.0");
    }
}
