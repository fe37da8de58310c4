//! The `ktra-indexer` binary. The git index is not written yet; the sparse index served by
//! `ktra-api` is complete without it.

use std::path::PathBuf;

use clap::Parser;
use ktra_core::config::Settings;
use ktra_core::telemetry::{self, LogConfig};

/// Ktra's git indexer: the one writer of the git index.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Ktra's TOML configuration file (default: ./ktra.toml when present).
    #[arg(short = 'c', long = "config")]
    config: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let settings = Settings::load(args.config.as_deref(), std::env::vars())?;
    let telemetry = telemetry::init(&LogConfig::from_settings(&settings)?)?;
    tracing::error!("the git indexer is not implemented yet; use the sparse index");
    telemetry.shutdown();
    std::process::exit(2);
}
