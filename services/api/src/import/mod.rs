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

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use ktra_import::config::redacted;
use ktra_import::{ImportPlan, KtraDatabaseKind, KtraFile};

use crate::Config;
use crate::index_sync::IndexSync;

mod apply;

use apply::Import;

/// The exit code when problems left something out.
const PROBLEMS: u8 = 2;

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
    let import = Import::new(
        Arc::clone(&store),
        blobs,
        args.on_problem,
        progress_bar(plan.version_count()),
    );
    let report = import.apply(&plan).await?;
    let problems = plan.problems.len() + report.print();
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
