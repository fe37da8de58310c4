//! Reading an existing Ktra installation (moriturus/ktra 0.3 to 0.7) into an import plan.
//!
//! Ktra keeps users, passwords, tokens, owners and publish metadata in a database (sled by
//! default, Redis or MongoDB), crate files under `dl_dir_path`, and cargo's index in a git
//! checkout.
//! This crate reads all three without changing them ([`config`], [`database`], [`index`]),
//! cross-checks them and builds an [`ImportPlan`] ([`plan`]) that says what would be imported
//! and every problem found. `ktra-api import ktra` prints it (`--dry-run`) or applies it to the
//! registry's stores. `docs/ktra-data-layout.md` describes Ktra's layout.

pub mod config;
pub mod database;
pub mod index;
pub mod plan;
pub mod records;

pub use config::{KtraDatabaseKind, KtraFile, KtraSource};
pub use plan::{ImportPlan, PlannedCrate, PlannedUser, PlannedVersion, Problem};

/// Why Ktra's data could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The database could not be read.
    #[error(transparent)]
    Database(#[from] records::DatabaseError),
    /// The index checkout could not be read.
    #[error("Ktra's index: {0}")]
    Index(#[from] std::io::Error),
}

/// Reads Ktra's database and index and builds the plan, reading every crate file once.
///
/// # Errors
///
/// When the database or the index cannot be read at all; problems with single users, crates
/// or versions are in the plan instead.
pub fn read_plan(source: &KtraSource) -> Result<ImportPlan, ReadError> {
    let database = database::read(source)?;
    let index = index::KtraIndex::read(&source.index_path)?;
    Ok(plan::build(source, &database, &index))
}
