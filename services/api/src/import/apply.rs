//! Applying an import plan to our stores, step by step, each step looking before it writes.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use chrono::Utc;
use ktra_core::name::CrateId;
use ktra_import::{ImportPlan, PlannedCrate, PlannedVersion};
use ktra_publish::PublishLimits;
use ktra_store::model::{
    ApiToken, NewUser, NewVersion, OwnerAction, OwnerActor, OwnerChange, UserId, YankChange,
};
use ktra_store::{BlobStore, MetadataStore, StoreError};
use sha2::{Digest, Sha256};

use super::OnProblem;
use crate::handlers::publish::remove_unless_committed;
use crate::upgrade::version_metadata::from_crate_file;

/// The name given to imported tokens.
const TOKEN_NAME: &str = "imported from Ktra";

/// What the import did.
#[derive(Debug, Default)]
pub(super) struct Report {
    users_created: usize,
    users_present: usize,
    versions_imported: usize,
    versions_present: usize,
    crates_touched: usize,
    yanked: usize,
    owners_added: usize,
    tokens_added: usize,
    /// Problems found while applying (a name taken here already, a file changed since).
    problems: Vec<String>,
}

impl Report {
    /// Prints what the import did and the problems it met while applying; returns how many.
    pub(super) fn print(&self) -> usize {
        println!(
            "\nImported: {} user(s), {} version(s) of {} crate(s), {} version(s) yanked again, {} \
             owner(s) added.\nAlready there (an earlier run): {} user(s), {} version(s); {} newer \
             Ktra token(s) added.",
            self.users_created,
            self.versions_imported,
            self.crates_touched,
            self.yanked,
            self.owners_added,
            self.users_present,
            self.versions_present,
            self.tokens_added,
        );
        for problem in &self.problems {
            println!("  problem: {problem}");
        }
        self.problems.len()
    }
}

/// A problem found while applying: with `Stop` it ends the import.
#[derive(Debug)]
struct Stopped;

pub(super) struct Import {
    store: Arc<dyn MetadataStore>,
    blobs: BlobStore,
    on_problem: OnProblem,
    report: Report,
    /// Our user ids, by name, of the users imported (now or before).
    user_ids: BTreeMap<String, UserId>,
    progress: indicatif::ProgressBar,
}

impl Import {
    pub(super) fn new(
        store: Arc<dyn MetadataStore>,
        blobs: BlobStore,
        on_problem: OnProblem,
        progress: indicatif::ProgressBar,
    ) -> Self {
        Self {
            store,
            blobs,
            on_problem,
            report: Report::default(),
            user_ids: BTreeMap::new(),
            progress,
        }
    }

    /// Applies the plan and says what it did; the progress bar is cleared either way.
    pub(super) async fn apply(mut self, plan: &ImportPlan) -> anyhow::Result<Report> {
        let finished = self.apply_steps(plan).await;
        self.progress.finish_and_clear();
        finished.map(|()| self.report)
    }

    async fn apply_steps(&mut self, plan: &ImportPlan) -> anyhow::Result<()> {
        let applied = async {
            for user in &plan.users {
                self.user(user).await?;
            }
            for planned in &plan.crates {
                self.krate(planned).await?;
            }
            Ok::<_, anyhow::Error>(())
        };
        match applied.await {
            Err(error) if error.is::<Stopped>() => Ok(()),
            other => other,
        }
    }

    /// Prints something worth knowing that leaves nothing out.
    fn note(&self, note: String) {
        self.progress.suspend(|| println!("  note: {note}"));
    }

    /// Records a problem found while applying; with `Stop`, ends the import.
    fn problem(&mut self, subject: &str, detail: impl std::fmt::Display) -> anyhow::Result<()> {
        let problem = format!("{subject}: {detail}");
        self.progress.suspend(|| println!("  problem: {problem}"));
        self.report.problems.push(problem);
        match self.on_problem {
            OnProblem::Skip => Ok(()),
            OnProblem::Stop => Err(anyhow::Error::new(Stopped)),
        }
    }

    async fn user(&mut self, user: &ktra_import::PlannedUser) -> anyhow::Result<()> {
        let token = match &user.token {
            Some(text) => ApiToken::from_imported(text)
                .ok_or_else(|| anyhow::anyhow!("the plan holds an invalid token"))?,
            // The store wants one; nobody knows this one, so the user logs in for another.
            None => ApiToken::generate(),
        };
        let new = NewUser {
            name: user.name.clone(),
            password_hash: user.password_hash.clone(),
            token: token.to_new_token(TOKEN_NAME, Utc::now()),
            invitation: None,
            audit: event("user.create", &user.name, &user.name),
        };
        match self.store.create_user(new).await {
            Ok(created) => {
                self.report.users_created += 1;
                self.user_ids.insert(user.name.clone(), created.id);
            }
            Err(StoreError::UserExists(_)) => {
                let existing = self.store.user_credentials(&user.name).await?;
                let stored = self.store.token(token.id()).await?;
                let holds_token = stored
                    .as_ref()
                    .zip(existing.as_ref())
                    .is_some_and(|(stored, existing)| stored.user.id == existing.user.id);
                match existing {
                    // Imported by an earlier run: the token Ktra issued is this user's, or the
                    // hash is still Ktra's.
                    Some(existing)
                        if holds_token || existing.password_hash == user.password_hash =>
                    {
                        self.report.users_present += 1;
                        self.user_ids.insert(user.name.clone(), existing.user.id);
                        // Logged in to Ktra since: its newer token works here too.
                        if user.token.is_some() && stored.is_none() {
                            let audit = event("token.create", &user.name, &token.id().to_hex());
                            self.store
                                .add_token(
                                    existing.user.id,
                                    token.to_new_token(TOKEN_NAME, Utc::now()),
                                    audit,
                                )
                                .await?;
                            self.report.tokens_added += 1;
                        }
                    }
                    _ => self.problem(
                        &format!("user `{}`", user.name),
                        "exists in this registry and matches neither Ktra's token nor its \
                         password hash (another user, or changed here since an earlier import)",
                    )?,
                }
            }
            Err(other) => return Err(other.into()),
        }
        Ok(())
    }

    async fn krate(&mut self, planned: &PlannedCrate) -> anyhow::Result<()> {
        let owners: Vec<(&String, UserId)> = planned
            .owners
            .iter()
            .filter_map(|name| self.user_ids.get(name).map(|id| (name, *id)))
            .collect();
        let Some(&(publisher_name, publisher)) = owners.first() else {
            return self.problem(
                &format!("crate `{}`", planned.name),
                "none of its owners was imported",
            );
        };
        let krate = CrateId::new(&planned.name)?;
        // Yanked flags as they are here, for versions an earlier run imported.
        let yanked_here: BTreeMap<String, bool> = self
            .store
            .crate_summary(&krate)
            .await?
            .map(|summary| {
                summary
                    .versions
                    .into_iter()
                    .map(|version| (version.version, version.yanked))
                    .collect()
            })
            .unwrap_or_default();
        let mut touched = false;
        for version in &planned.versions {
            self.progress
                .set_message(format!("{}@{}", planned.name, version.line.vers));
            let imported = self
                .version(&krate, version, publisher, publisher_name)
                .await?;
            self.progress.inc(1);
            touched |= imported;
            let here = yanked_here.get(&version.line.vers).copied();
            if !imported && here.is_some_and(|yanked| yanked != version.line.yanked) {
                self.note(format!(
                    "{}@{}: yanked={} in Ktra but {} here (changed since an earlier import, or \
                     one interrupted): left as it is here",
                    planned.name, version.line.vers, version.line.yanked, !version.line.yanked
                ));
            }
        }
        let others: Vec<String> = owners
            .iter()
            .skip(1)
            .map(|(name, _)| (*name).clone())
            .collect();
        if !touched {
            // Owners are this registry's business once imported: a re-run adds none back.
            return Ok(());
        }
        self.report.crates_touched += 1;
        if others.is_empty() {
            return Ok(());
        }
        let change = OwnerChange {
            krate,
            action: OwnerAction::Add,
            actor: OwnerActor::Owner(publisher),
            names: others,
            audit: event("crate.owner_add", publisher_name, &planned.name),
        };
        match self.store.change_owners(change).await {
            Ok(added) => self.report.owners_added += added.len(),
            Err(error @ StoreError::NotOwner(_)) => {
                self.problem(&format!("crate `{}`", planned.name), error)?;
            }
            Err(other) => return Err(other.into()),
        }
        Ok(())
    }

    /// Imports one version unless it is there already; then yanks it if Ktra had. Returns
    /// whether it was imported now.
    async fn version(
        &mut self,
        krate: &CrateId,
        version: &PlannedVersion,
        publisher: UserId,
        publisher_name: &str,
    ) -> anyhow::Result<bool> {
        let subject = format!("{}@{}", version.line.name, version.line.vers);
        let imported = match self.store.crate_file(krate, &version.version).await? {
            Some(existing) if existing.cksum == version.line.cksum => {
                self.report.versions_present += 1;
                false
            }
            Some(_) => {
                self.problem(&subject, "published here already, with another checksum")?;
                return Ok(false);
            }
            None => {
                if !self
                    .publish(krate, version, publisher, publisher_name, &subject)
                    .await?
                {
                    return Ok(false);
                }
                self.report.versions_imported += 1;
                true
            }
        };
        if imported && version.line.yanked {
            let change = YankChange {
                krate: krate.clone(),
                version: version.version.clone(),
                yanked: true,
                actor: publisher,
                audit: event("crate.yank", publisher_name, &subject),
            };
            match self.store.set_yanked(change).await {
                Ok((_, changed)) => self.report.yanked += usize::from(changed),
                Err(error @ StoreError::NotOwner(_)) => self.problem(&subject, error)?,
                Err(other) => return Err(other.into()),
            }
        }
        Ok(imported)
    }

    /// Stores the crate file, then commits the version; removes the file again when the
    /// commit fails. Returns whether the version was committed.
    async fn publish(
        &mut self,
        krate: &CrateId,
        version: &PlannedVersion,
        publisher: UserId,
        publisher_name: &str,
        subject: &str,
    ) -> anyhow::Result<bool> {
        let bytes = match tokio::fs::read(&version.file).await {
            Ok(bytes) => bytes,
            Err(error) => {
                self.problem(subject, format!("{}: {error}", version.file.display()))?;
                return Ok(false);
            }
        };
        let sha256 = hex::encode(Sha256::digest(&bytes));
        if sha256 != version.line.cksum {
            self.problem(
                subject,
                format!("{} changed since it was checked", version.file.display()),
            )?;
            return Ok(false);
        }
        let bytes = Bytes::from(bytes);
        let (mut metadata, readme, unreadable) = from_crate_file(
            bytes.clone(),
            &version.line.name,
            &version.line.vers,
            &PublishLimits::DEFAULT,
        )
        .await;
        if let Some(problem) = unreadable {
            tracing::warn!(%subject, %problem, "the crate file does not pass the publish checks; only its size and description are kept");
        }
        metadata.description = metadata.description.or_else(|| version.description.clone());
        let blob_key = BlobStore::new_crate_key(krate.canonical(), version.version.key());
        self.blobs.put_new(&blob_key, bytes).await?;
        let mut line = version.line.clone();
        // Published as it was first, then yanked as a yank would (one audit event each).
        line.yanked = false;
        let new = NewVersion {
            krate: krate.clone(),
            line,
            version: version.version.clone(),
            blob_key: blob_key.clone(),
            metadata,
            readme,
            publisher,
            published_at: version.published_at,
            audit: event("crate.import", publisher_name, subject),
            crate_exists: None,
        };
        match self.store.publish(new).await {
            Ok(_) => Ok(true),
            Err(error) => {
                remove_unless_committed(
                    self.store.as_ref(),
                    &self.blobs,
                    krate,
                    &version.version,
                    &blob_key,
                )
                .await;
                match error {
                    StoreError::NameTaken { .. }
                    | StoreError::NotOwner(_)
                    | StoreError::DuplicateVersion { .. } => {
                        self.problem(subject, error)?;
                        Ok(false)
                    }
                    other => Err(other.into()),
                }
            }
        }
    }
}

fn event(action: &str, actor: &str, target: &str) -> ktra_store::model::AuditEvent {
    crate::audit::event(
        action,
        Some(actor),
        target,
        "ktra-api import ktra",
        Some("imported from Ktra".to_owned()),
    )
}

impl std::fmt::Display for Stopped {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("stopped at the first problem (--on-problem stop)")
    }
}

impl std::error::Error for Stopped {}
