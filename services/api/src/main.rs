//! The `ktra-api` binary.

use std::path::PathBuf;

use clap::Parser;
use ktra_api::Config;
use ktra_core::config::Settings;
use ktra_core::telemetry::{self, LogConfig};

/// Ktra's registry API: cargo's web API, Ktra's user API and the sparse index.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Ktra's TOML configuration file (default: ./ktra.toml when present).
    #[arg(short = 'c', long = "config")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let settings = Settings::load(args.config.as_deref(), std::env::vars())?;
    let telemetry = telemetry::init(&LogConfig::from_settings(&settings)?)?;
    let config = Config::from_settings(&settings)?;
    let listener = tokio::net::TcpListener::bind(config.http.socket_addr()).await?;
    let result = ktra_api::run(config, listener, ktra_core::shutdown::signal()).await;
    telemetry.shutdown();
    result
}
