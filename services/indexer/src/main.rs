//! The `ktra-indexer` binary.

use std::path::PathBuf;

use clap::Parser;
use ktra_core::config::Settings;
use ktra_core::telemetry::{self, LogConfig};
use ktra_indexer::Config;

/// Ktra's git indexer: the one writer of the git index.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Ktra's TOML configuration file (default: ./ktra.toml when present).
    #[arg(short = 'c', long = "config")]
    config: Option<PathBuf>,
}

/// Bounds libgit2's network waits (connect 10 s, then 60 s without progress), so a remote
/// that hangs fails the push and the writer retries, instead of wedging it forever.
#[expect(unsafe_code, reason = "libgit2's global options have no safe setter")]
fn bound_libgit2_network_waits() -> anyhow::Result<()> {
    // SAFETY: git2 requires these globals to be set before any other thread exists; this runs
    // first in `main`, before the tokio runtime starts its threads.
    unsafe {
        git2::opts::set_server_connect_timeout_in_milliseconds(10_000)?;
        git2::opts::set_server_timeout_in_milliseconds(60_000)?;
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    bound_libgit2_network_waits()?;
    let args = Args::parse();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(serve(args))
}

async fn serve(args: Args) -> anyhow::Result<()> {
    let settings = Settings::load(args.config.as_deref(), std::env::vars())?;
    let telemetry = telemetry::init(&LogConfig::from_settings(&settings)?)?;
    let config = Config::from_settings(&settings)?;
    let listener = tokio::net::TcpListener::bind(config.endpoint.listen).await?;
    let result = ktra_indexer::run(config, listener, ktra_core::shutdown::signal()).await;
    telemetry.shutdown();
    result
}
