//! The `ktra-indexer` binary.

use clap::{Parser, Subcommand};
use ktra_core::config::ConfigFileArg;
use ktra_core::telemetry::{self, LogConfig};
use ktra_indexer::Config;

/// Ktra's git indexer: the one writer of the git index.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    #[command(flatten)]
    config: ConfigFileArg,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve (the default).
    Serve,
    /// Exit 0 when the indexer on this machine serves (gRPC health), for container health
    /// checks.
    Healthcheck,
}

/// Sets libgit2's process-wide options: network waits are bounded (connect 10 s, then 60 s
/// without progress), so a remote that hangs fails the push and the writer retries instead of
/// wedging; the object cache is capped at 64 MiB (libgit2's default, 256 MiB, would let a large
/// index take most of the indexer's memory).
#[expect(unsafe_code, reason = "libgit2's global options have no safe setter")]
fn configure_libgit2() -> anyhow::Result<()> {
    // SAFETY: git2 requires these globals to be set before any other thread exists; this runs
    // first in `main`, before the tokio runtime starts its threads.
    unsafe {
        git2::opts::set_server_connect_timeout_in_milliseconds(10_000)?;
        git2::opts::set_server_timeout_in_milliseconds(60_000)?;
        git2::opts::set_cache_max_size(64 * 1024 * 1024)?;
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    configure_libgit2()?;
    let args = Args::parse();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(serve(args))
}

async fn serve(args: Args) -> anyhow::Result<()> {
    let settings = args.config.load()?;
    let telemetry = telemetry::init(&LogConfig::from_settings(&settings)?, "ktra-indexer")?;
    let config = Config::from_settings(&settings)?;
    let result = match args.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let listener = tokio::net::TcpListener::bind(config.endpoint.listen).await?;
            ktra_indexer::run(config, listener, ktra_core::shutdown::signal()).await
        }
        Command::Healthcheck => ktra_indexer::healthcheck(&config).await,
    };
    telemetry.shutdown();
    result
}
