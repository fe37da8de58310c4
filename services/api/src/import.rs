//! `ktra-api import ktra`: moving a Ktra installation into this registry.
//!
//! `ktra-import` reads Ktra's data into a plan and names every problem; this module prints the
//! plan (`--dry-run`) or applies it to the configured stores:
//!
//! - users are created with Ktra's password hash and token (kept by hash, as ours are), so the
//!   same passwords log in and every `cargo login` keeps working;
//! - each version is published as its first owner, with its crate file (checked again against
//!   the index's checksum) stored first and the index line as Ktra served it; a failed step
//!   removes the file again, so a version is imported with its file or not at all;
//! - yanked versions are yanked again, the other owners added.
//!
//! Every step looks before it writes (a user with the token, a version with the same
//! checksum are already imported), so a second run changes nothing and an interrupted one
//! resumes. Exit codes: 0 when everything was imported, 2 when problems left something out
//! (or stopped the import, with `--on-problem stop`), 1 when the import could not run.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use chrono::Utc;
use ktra_core::name::CrateId;
use ktra_import::config::redacted;
use ktra_import::{ImportPlan, KtraDatabaseKind, KtraFile, PlannedCrate, PlannedVersion};
use ktra_store::model::{
    ApiToken, NewUser, NewVersion, OwnerAction, OwnerActor, OwnerChange, UserId, YankChange,
    version_key,
};
use ktra_store::{BlobStore, MetadataStore, StoreError};
use sha2::{Digest, Sha256};

use crate::Config;
use crate::handlers::publish::remove_unless_committed;
use crate::index_sync::IndexSync;

/// The exit code when problems left something out.
const PROBLEMS: u8 = 2;
/// The name given to imported tokens.
const TOKEN_NAME: &str = "imported from Ktra";

/// What to do when a user, crate or version cannot be imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnProblem {
    /// Leave it out, import the rest, and exit 2.
    Skip,
    /// Import nothing (when the plan has problems) or stop at the first problem, and exit 2.
    Stop,
}

/// `ktra-api import ktra`: where Ktra's data is, in Ktra's terms.
#[derive(Debug, clap::Args)]
pub struct KtraImportArgs {
    /// Ktra's configuration file (ktra.toml); without one, Ktra's defaults.
    pub ktra_config: Option<PathBuf>,
    /// The directory Ktra ran in: relative paths of its file are read from there, as Ktra read
    /// them (default: the file's directory, or the current one).
    #[arg(long)]
    pub ktra_dir: Option<PathBuf>,
    /// The database Ktra was built with: sled (Ktra's default), redis or mongodb.
    #[arg(long, default_value = "sled", value_parser = parse_database)]
    pub db: KtraDatabaseKind,
    /// Overrides db_config.db_dir_path.
    #[arg(long)]
    pub db_dir_path: Option<PathBuf>,
    /// Overrides db_config.redis_url.
    #[arg(long)]
    pub redis_url: Option<String>,
    /// Overrides db_config.mongodb_url (the database is the URL's path, else `ktra`).
    #[arg(long)]
    pub mongodb_url: Option<String>,
    /// Overrides db_config.login_prefix.
    #[arg(long)]
    pub login_prefix: Option<String>,
    /// Overrides crate_files_config.dl_dir_path.
    #[arg(long)]
    pub dl_dir_path: Option<PathBuf>,
    /// Overrides index_config.local_path: any checkout of Ktra's index.
    #[arg(long)]
    pub local_path: Option<PathBuf>,
    /// Print what would be imported and every problem found; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// What a problem does.
    #[arg(long, value_enum, default_value = "skip")]
    pub on_problem: OnProblem,
}

fn parse_database(text: &str) -> Result<KtraDatabaseKind, String> {
    text.parse()
}

impl KtraImportArgs {
    fn source(&self) -> anyhow::Result<ktra_import::KtraSource> {
        let file = KtraFile::load(self.ktra_config.as_deref())?;
        let dir = match (&self.ktra_dir, &self.ktra_config) {
            (Some(dir), _) => dir.clone(),
            (None, Some(path)) => path
                .parent()
                .filter(|parent| !parent.as_os_str().is_empty())
                .map_or_else(std::env::current_dir, |parent| Ok(parent.to_owned()))?,
            (None, None) => std::env::current_dir()?,
        };
        let mut source = file.into_source(self.db, &dir);
        let absolute = |path: &PathBuf| {
            if path.is_absolute() {
                path.clone()
            } else {
                dir.join(path)
            }
        };
        if let Some(path) = &self.db_dir_path {
            source.db_dir_path = absolute(path);
        }
        if let Some(path) = &self.dl_dir_path {
            source.dl_dir_path = absolute(path);
        }
        if let Some(path) = &self.local_path {
            source.index_path = absolute(path);
        }
        if let Some(url) = &self.redis_url {
            source.redis_url.clone_from(url);
        }
        if let Some(url) = &self.mongodb_url {
            source.mongodb_url.clone_from(url);
        }
        if let Some(prefix) = &self.login_prefix {
            source.login_prefix.clone_from(prefix);
        }
        Ok(source)
    }
}

/// Runs `ktra-api import ktra`.
///
/// # Errors
///
/// When Ktra's data cannot be read at all, or a store fails (the import can be run again).
pub async fn import_ktra(config: &Config, args: &KtraImportArgs) -> anyhow::Result<ExitCode> {
    let source = args.source()?;
    println!(
        "Reading Ktra's {} database, its index at {} and its crate files at {}",
        match source.database {
            KtraDatabaseKind::Sled => format!("sled ({})", source.db_dir_path.display()),
            KtraDatabaseKind::Redis => format!("Redis ({})", redacted(&source.redis_url)),
            KtraDatabaseKind::Mongodb => format!("MongoDB ({})", redacted(&source.mongodb_url)),
        },
        source.index_path.display(),
        source.dl_dir_path.display()
    );
    let plan = ktra_core::task::spawn_blocking(move || ktra_import::read_plan(&source)).await??;
    if plan.users.is_empty() && plan.crates.is_empty() && plan.problems.is_empty() {
        anyhow::bail!(
            "Ktra's database holds no users and no crates: is this the database Ktra used?"
        );
    }
    print_plan(&plan);
    if args.dry_run {
        println!("\nDry run: nothing was changed.");
        return Ok(exit_code(plan.problems.len()));
    }
    if !plan.problems.is_empty() && args.on_problem == OnProblem::Stop {
        println!(
            "\nStopped before changing anything: {} problem(s), and --on-problem stop. Fix \
             them in Ktra's data, or run with --on-problem skip to import the rest.",
            plan.problems.len()
        );
        return Ok(ExitCode::from(PROBLEMS));
    }
    let store = crate::state::open_metadata_store(config).await?;
    let blobs = crate::state::open_blob_store(config)?;
    let mut import = Import {
        store: Arc::clone(&store),
        blobs,
        on_problem: args.on_problem,
        report: Report::default(),
        user_ids: BTreeMap::new(),
        progress: progress_bar(plan.version_count()),
    };
    let finished = import.apply(&plan).await;
    import.progress.finish_and_clear();
    let report = import.report;
    finished?;
    println!(
        "\nImported: {} user(s), {} version(s) of {} crate(s), {} version(s) yanked again, {} \
         owner(s) added.\nAlready there (an earlier run): {} user(s), {} version(s); {} newer \
         Ktra token(s) added.",
        report.users_created,
        report.versions_imported,
        report.crates_touched,
        report.yanked,
        report.owners_added,
        report.users_present,
        report.versions_present,
        report.tokens_added,
    );
    let problems = plan.problems.len() + report.problems.len();
    for problem in &report.problems {
        println!("  problem: {problem}");
    }
    let sync = IndexSync::new(&config.indexer, store)?;
    if sync.is_enabled() {
        match sync.resend_pending().await {
            Ok(handed) => println!("The indexer wrote {handed} crate(s) to the git index."),
            // Everything is imported; the marks stay in the store for the API's resender.
            Err(error) => println!(
                "The indexer could not be reached ({error}): the imported crates reach the git \
                 index when the API runs with an indexer."
            ),
        }
    } else {
        println!(
            "No indexer is configured here (KTRA_INDEXER_URL): the git index is written when \
             the API starts with one."
        );
    }
    if problems > 0 {
        println!("{problems} problem(s) left something out; see above.");
    }
    Ok(exit_code(problems))
}

fn exit_code(problems: usize) -> ExitCode {
    if problems == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(PROBLEMS)
    }
}

fn print_plan(plan: &ImportPlan) {
    println!(
        "\n{} user(s), {} crate(s), {} version(s) to import:",
        plan.users.len(),
        plan.crates.len(),
        plan.version_count()
    );
    for user in &plan.users {
        let token = if user.token.is_some() {
            "with their token"
        } else {
            "without a token"
        };
        println!("  user {} ({token})", user.name);
    }
    for planned in &plan.crates {
        let yanked = planned
            .versions
            .iter()
            .filter(|version| version.line.yanked)
            .count();
        let versions: Vec<String> = planned
            .versions
            .iter()
            .map(|version| version.line.vers.clone())
            .collect();
        println!(
            "  crate {}: {} ({} yanked), owners {}",
            planned.name,
            versions.join(", "),
            yanked,
            planned.owners.join(", ")
        );
    }
    for note in &plan.notes {
        println!("  note: {note}");
    }
    if plan.problems.is_empty() {
        println!("No problems found.");
    } else {
        println!(
            "{} problem(s), each leaving its subject out:",
            plan.problems.len()
        );
        for problem in &plan.problems {
            println!("  problem: {problem}");
        }
    }
}

/// A progress bar on a terminal; nothing otherwise (the summary follows either way).
fn progress_bar(versions: usize) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(versions as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} versions {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

/// What the import did.
#[derive(Debug, Default)]
struct Report {
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

/// A problem found while applying: with `Stop` it ends the import.
#[derive(Debug)]
struct Stopped;

struct Import {
    store: Arc<dyn MetadataStore>,
    blobs: BlobStore,
    on_problem: OnProblem,
    report: Report,
    /// Our user ids, by name, of the users imported (now or before).
    user_ids: BTreeMap<String, UserId>,
    progress: indicatif::ProgressBar,
}

impl Import {
    async fn apply(&mut self, plan: &ImportPlan) -> anyhow::Result<()> {
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
        let blob_key = BlobStore::new_crate_key(krate.canonical(), &version_key(&version.version));
        self.blobs.put_new(&blob_key, bytes.into()).await?;
        let mut line = version.line.clone();
        // Published as it was first, then yanked as a yank would (one audit event each).
        line.yanked = false;
        let new = NewVersion {
            krate: krate.clone(),
            line,
            version: version.version.clone(),
            blob_key: blob_key.clone(),
            description: version.description.clone(),
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
