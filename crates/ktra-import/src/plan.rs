//! The import plan: what Ktra's database, index and crate files agree on, and every problem
//! found on the way. A problem leaves its subject (a user, a crate, or one version) out of the
//! plan; the rest is imported.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use argon2::password_hash::phc::PasswordHash;
use chrono::{DateTime, Utc};
use ktra_core::index::IndexLine;
use ktra_core::name::{validate_crate_name, validate_user_name};
use ktra_core::version::VersionId;
use ktra_publish::PublishLimits;
use ktra_store::model::ApiToken;
use sha2::{Digest, Sha256};

use crate::config::KtraSource;
use crate::index::{KtraIndex, KtraIndexLine};
use crate::records::{KtraDatabase, KtraEntry, KtraMetadata, ktra_key};

/// A user to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedUser {
    /// The name, without Ktra's login prefix.
    pub name: String,
    /// The Argon2 PHC string, as Ktra stored it.
    pub password_hash: String,
    /// Ktra's token in plain text, when there is a usable one.
    pub token: Option<String>,
}

/// A crate to create, with its versions in the order Ktra published them.
#[derive(Debug, Clone)]
pub struct PlannedCrate {
    /// The name, as published.
    pub name: String,
    /// Owners, by user name; the first publishes every version.
    pub owners: Vec<String>,
    /// The versions to import.
    pub versions: Vec<PlannedVersion>,
}

/// One version: its index line as Ktra served it and its crate file.
#[derive(Debug, Clone)]
pub struct PlannedVersion {
    /// The version and its key.
    pub version: VersionId,
    /// The index line, yanked flag included.
    pub line: IndexLine,
    /// The crate file in Ktra's `dl_dir_path`.
    pub file: PathBuf,
    /// The description Ktra kept.
    pub description: Option<String>,
    /// When the crate file was written, the best record Ktra left of the publish time.
    pub published_at: DateTime<Utc>,
}

/// Something that keeps a user, a crate or a version out of the import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What is left out: `user alice`, `crate foo`, `foo@1.0.0`, or an index line.
    pub subject: String,
    /// Why.
    pub detail: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}: {}", self.subject, self.detail)
    }
}

/// What an import will do.
#[derive(Debug, Default)]
pub struct ImportPlan {
    /// Users to create.
    pub users: Vec<PlannedUser>,
    /// Crates to create, by name.
    pub crates: Vec<PlannedCrate>,
    /// What is left out, and why.
    pub problems: Vec<Problem>,
    /// What was adjusted or is worth knowing, without leaving anything out.
    pub notes: Vec<String>,
}

impl ImportPlan {
    /// Counts the versions to import.
    pub fn version_count(&self) -> usize {
        self.crates
            .iter()
            .map(|planned| planned.versions.len())
            .sum()
    }

    fn problem(&mut self, subject: impl Into<String>, detail: impl Into<String>) {
        self.problems.push(Problem {
            subject: subject.into(),
            detail: detail.into(),
        });
    }
}

/// Builds the plan from what was read. Reads every crate file once, to check it.
pub fn build(source: &KtraSource, database: &KtraDatabase, index: &KtraIndex) -> ImportPlan {
    let mut plan = ImportPlan::default();
    let user_names = plan_users(source, database, &mut plan);
    for file in &index.ignored {
        plan.notes.push(format!(
            "index file {file} is not where cargo looks for a crate; left out"
        ));
    }
    let mut lines_by_key: BTreeMap<String, Vec<(String, KtraIndexLine)>> = BTreeMap::new();
    for (file, lines) in &index.files {
        for found in lines {
            let at = format!("index file {} line {}", found.file, found.number);
            match &found.line {
                Err(error) => plan.problem(at, format!("not an index line: {error}")),
                Ok(line) if line.name.to_ascii_lowercase() != *file => plan.problem(
                    at,
                    format!("a line of `{}` in the file of another crate", line.name),
                ),
                Ok(line) => lines_by_key
                    .entry(ktra_key(&line.name))
                    .or_default()
                    .push((at, line.clone())),
            }
        }
    }
    let keys: BTreeSet<&String> = database.entries.keys().chain(lines_by_key.keys()).collect();
    for key in keys {
        let lines = lines_by_key
            .get(key.as_str())
            .map_or(&[][..], Vec::as_slice);
        match database.entries.get(key.as_str()) {
            Some(Err(error)) => plan.problem(
                format!("crate `{key}` (Ktra's key)"),
                format!("Ktra's record does not parse: {error}"),
            ),
            None => {
                for (_, line) in lines {
                    plan.problem(
                        format!("{}@{}", line.name, line.vers),
                        "in Ktra's index but not in its database (Ktra failed after writing \
                         the index); its owner is unknown",
                    );
                }
            }
            Some(Ok(entry)) => {
                if let Some(planned) = plan_crate(source, entry, lines, &user_names, &mut plan) {
                    plan.crates.push(planned);
                }
            }
        }
    }
    plan
}

/// Plans every user with a valid name and password hash; returns Ktra's id to our name.
fn plan_users(
    source: &KtraSource,
    database: &KtraDatabase,
    plan: &mut ImportPlan,
) -> BTreeMap<u32, String> {
    let mut names = BTreeMap::new();
    let mut taken = BTreeSet::new();
    for user in &database.users {
        let subject = format!("user `{}`", user.login);
        let name = match user.login.strip_prefix(&source.login_prefix) {
            Some(name) => name,
            None => {
                plan.notes.push(format!(
                    "{subject} does not start with the login prefix `{}`; imported under its \
                     whole login",
                    source.login_prefix
                ));
                &user.login
            }
        };
        if let Err(error) = validate_user_name(name) {
            plan.problem(subject, format!("refused as a user name here: {error}"));
            continue;
        }
        // User names here are unique without regard to case.
        if !taken.insert(name.to_ascii_lowercase()) {
            plan.problem(subject, format!("a second user named `{name}`"));
            continue;
        }
        let Some(hash) = database.passwords.get(&user.id) else {
            plan.problem(subject, "has no password hash in Ktra's database");
            continue;
        };
        match PasswordHash::new(hash) {
            Ok(parsed) if parsed.algorithm.as_str().starts_with("argon2") => {}
            Ok(parsed) => {
                plan.problem(
                    subject,
                    format!("its password hash uses `{}`, not Argon2", parsed.algorithm),
                );
                continue;
            }
            Err(error) => {
                plan.problem(
                    subject,
                    format!("its password hash is not a PHC string: {error}"),
                );
                continue;
            }
        }
        let token = match database.tokens.get(&user.id) {
            Some(token) if ApiToken::from_imported(token).is_some() => Some(token.clone()),
            Some(_) => {
                plan.problem(
                    format!("{subject}'s token"),
                    "not 16 to 128 letters and digits; the user logs in again for a new one",
                );
                None
            }
            None => {
                plan.notes.push(format!(
                    "{subject} has no token in Ktra's database; logging in gives one"
                ));
                None
            }
        };
        names.insert(user.id, name.to_owned());
        plan.users.push(PlannedUser {
            name: name.to_owned(),
            password_hash: hash.clone(),
            token,
        });
    }
    names
}

/// Plans one crate, or reports why it cannot be imported at all.
fn plan_crate(
    source: &KtraSource,
    entry: &KtraEntry,
    lines: &[(String, KtraIndexLine)],
    user_names: &BTreeMap<u32, String>,
    plan: &mut ImportPlan,
) -> Option<PlannedCrate> {
    let name = lines
        .first()
        .map(|(_, line)| line.name.clone())
        .or_else(|| {
            entry
                .versions
                .values()
                .next()
                .map(|metadata| metadata.name.clone())
        })?;
    if let Err(error) = validate_crate_name(&name) {
        plan.problem(
            format!("crate `{name}`"),
            format!("Ktra accepted the name but this registry refuses it: {error}"),
        );
        return None;
    }
    let owners: Vec<String> = entry
        .owner_ids
        .iter()
        .filter_map(|id| user_names.get(id).cloned())
        .collect();
    if owners.is_empty() {
        plan.problem(
            format!("crate `{name}`"),
            "none of its owners can be imported, so nobody could publish it",
        );
        return None;
    }
    // Every version once, in the order its first line appears (Ktra appended: publish order).
    let mut candidates: Vec<(String, Vec<&KtraIndexLine>)> = Vec::new();
    let mut other_spelling = BTreeSet::new();
    for (at, line) in lines {
        if line.name != name {
            other_spelling.insert(line.vers.as_str());
            plan.problem(
                format!("{}@{}", line.name, line.vers),
                format!(
                    "differs from `{name}` only in case or `-`/`_` ({at}); a crate keeps one name"
                ),
            );
            continue;
        }
        match candidates.iter_mut().find(|(vers, _)| *vers == line.vers) {
            Some((_, found)) => found.push(line),
            None => candidates.push((line.vers.clone(), vec![line])),
        }
    }
    let mut versions = Vec::new();
    for (vers, found) in &candidates {
        let subject = format!("{name}@{vers}");
        if found.len() > 1 {
            plan.notes.push(format!(
                "{subject}: {} lines in Ktra's index (a retried publish); one is kept",
                found.len()
            ));
        }
        let Some(metadata) = entry.versions.get(vers) else {
            plan.problem(
                subject,
                "in Ktra's index but not in its database (Ktra failed after writing the index)",
            );
            continue;
        };
        match plan_version(source, &name, found, metadata, plan) {
            Ok(version) => versions.push(version),
            Err(detail) => plan.problem(subject, detail),
        }
    }
    for vers in entry.versions.keys() {
        if !candidates.iter().any(|(found, _)| found == vers)
            && !other_spelling.contains(vers.as_str())
        {
            plan.problem(
                format!("{name}@{vers}"),
                "in Ktra's database but not in its index: cargo never saw it",
            );
        }
    }
    // A crate whose every version was left out is left out too (each said why).
    (!versions.is_empty()).then_some(PlannedCrate {
        name,
        owners,
        versions,
    })
}

/// Checks one version's crate file against its index line(s).
fn plan_version(
    source: &KtraSource,
    name: &str,
    lines: &[&KtraIndexLine],
    metadata: &KtraMetadata,
    plan: &mut ImportPlan,
) -> Result<PlannedVersion, String> {
    let vers = &metadata.vers;
    let version = VersionId::parse(vers)
        .map_err(|error| format!("`{vers}` is not a semver version: {error}"))?;
    let file = crate_file_path(&source.dl_dir_path, name, vers);
    let bytes =
        std::fs::read(&file).map_err(|error| format!("crate file {}: {error}", file.display()))?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let Some(line) = lines.iter().find(|line| line.cksum == sha256) else {
        return Err(format!(
            "crate file {} has sha256 {sha256} but the index says {}",
            file.display(),
            lines[0].cksum
        ));
    };
    let limits = PublishLimits::DEFAULT;
    ktra_publish::tarball::validate(
        &bytes,
        name,
        vers,
        limits.max_unpacked_bytes,
        limits.max_files,
    )
    .map_err(|error| format!("crate file {}: {error}", file.display()))?;
    let mut line = line.to_index_line();
    if line.yanked != metadata.yanked {
        plan.notes.push(format!(
            "{name}@{vers}: Ktra's index says yanked={} and its database yanked={}; the index, \
             which cargo read, is kept",
            line.yanked, metadata.yanked
        ));
    }
    if fix_reversed_renames(&mut line, metadata) {
        plan.notes.push(format!(
            "{name}@{vers}: renamed dependencies written backwards (Ktra before 0.6) are put \
             the right way round"
        ));
    }
    let published_at = std::fs::metadata(&file)
        .and_then(|meta| meta.modified())
        .map_or_else(|_| Utc::now(), DateTime::<Utc>::from);
    Ok(PlannedVersion {
        version,
        line,
        file,
        description: metadata.description.clone(),
        published_at,
    })
}

/// Where Ktra kept a crate file: `<dl_dir_path>/<name as published>/<version>/download`.
pub fn crate_file_path(dl_dir: &Path, name: &str, vers: &str) -> PathBuf {
    dl_dir.join(name).join(vers).join("download")
}

/// Ktra before 0.6 wrote a renamed dependency with the real name in `name` and the rename in
/// `package`, the wrong way round. Such a dependency is recognised by the publish metadata
/// (real name, `explicit_name_in_toml`) and swapped. Returns whether any was.
fn fix_reversed_renames(line: &mut IndexLine, metadata: &KtraMetadata) -> bool {
    let mut fixed = false;
    for dep in &mut line.deps {
        let Some(package) = dep.package.clone() else {
            continue;
        };
        let reversed = metadata.deps.iter().any(|sent| {
            sent.name == dep.name && sent.explicit_name_in_toml.as_deref() == Some(&package)
        }) && !metadata.deps.iter().any(|sent| {
            sent.name == package && sent.explicit_name_in_toml.as_deref() == Some(&dep.name)
        });
        if reversed {
            dep.package = Some(std::mem::replace(&mut dep.name, package));
            fixed = true;
        }
    }
    fixed
}
