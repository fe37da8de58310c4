//! The `ktra-api` binary.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ktra_api::Config;
use ktra_api::index_sync::IndexSync;
use ktra_core::config::ConfigFileArg;
use ktra_core::telemetry::{self, LogConfig};

/// Ktra's registry API: cargo's web API, Ktra's user API and the sparse index.
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
    /// Serve the registry (the default).
    Serve,
    /// Compare the git index with the store, changing nothing; exits 1 when they differ.
    VerifyIndex,
    /// Make the git index equal to the store: write what is missing or different, remove what
    /// the store does not know.
    RebuildIndex,
    /// Fill the mirror's cache with the crates.io packages of a Cargo.lock (index files and
    /// crate files, checked as downloads are), e.g. before a site is cut off; exits 1 when a
    /// package could not be fetched.
    #[cfg(feature = "crates-io-mirroring")]
    MirrorPrefetch {
        /// The lockfile.
        lockfile: PathBuf,
    },
    /// Import another registry's users, tokens, owners, crates and index lines into this one.
    #[cfg(feature = "import-ktra")]
    Import {
        #[command(subcommand)]
        from: ImportFrom,
    },
    /// Exit 0 when the API on this machine answers `/readyz` with 200 (for container health
    /// checks; the images have no shell or curl).
    Healthcheck,
}

#[cfg(feature = "import-ktra")]
#[derive(Debug, Subcommand)]
enum ImportFrom {
    /// A Ktra installation (0.3 to 0.7): its sled, Redis or MongoDB database, crate files
    /// and index.
    /// Read-only on Ktra's side; safe to run again. Exit codes: 0 everything imported, 2 a
    /// problem left something out (or stopped the import), 1 the import could not run.
    Ktra(ktra_api::import::KtraImportArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    let settings = args.config.load()?;
    let telemetry = telemetry::init(&LogConfig::from_settings(&settings)?, "ktra-api")?;
    let config = Config::from_settings(&settings)?;
    let result = match args.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            for warning in ktra_api::config::unused_settings(&settings, &config) {
                tracing::warn!("{warning}");
            }
            let listener = tokio::net::TcpListener::bind(config.http.socket_addr()).await?;
            ktra_api::run(config, listener, ktra_core::shutdown::signal())
                .await
                .map(|()| ExitCode::SUCCESS)
        }
        Command::VerifyIndex => index_command(&config, true).await,
        Command::RebuildIndex => index_command(&config, false).await,
        #[cfg(feature = "import-ktra")]
        Command::Import {
            from: ImportFrom::Ktra(import),
        } => ktra_api::import::import_ktra(&config, &import).await,
        Command::Healthcheck => healthcheck(&config).map(|()| ExitCode::SUCCESS),
        #[cfg(feature = "crates-io-mirroring")]
        Command::MirrorPrefetch { lockfile } => mirror_prefetch(&config, &lockfile).await,
    };
    // Flushed on every exit, a failing exit code included.
    telemetry.shutdown();
    result
}

async fn index_command(config: &Config, verify_only: bool) -> anyhow::Result<ExitCode> {
    let store = ktra_api::state::open_metadata_store(config).await?;
    let report = IndexSync::new(&config.indexer, store)?
        .rebuild(verify_only)
        .await?;
    println!(
        "crates in the store: {}\nmissing from the git index: {}\ndifferent: {}\nnot in the store: {}\nconfig.json differs: {}",
        report.crates,
        report.added.len(),
        report.changed.len(),
        report.removed.len(),
        report.config_changed
    );
    for (label, paths) in [
        ("missing", &report.added),
        ("different", &report.changed),
        ("not in the store", &report.removed),
    ] {
        for path in paths.iter().take(50) {
            println!("  {label}: {path}");
        }
    }
    if !report.commit.is_empty() {
        println!("commit: {}", report.commit);
    }
    let differs =
        !(report.added.is_empty() && report.changed.is_empty() && report.removed.is_empty())
            || report.config_changed;
    if verify_only && differs {
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(feature = "crates-io-mirroring")]
async fn mirror_prefetch(config: &Config, lockfile: &std::path::Path) -> anyhow::Result<ExitCode> {
    let report = ktra_api::mirror::prefetch::run(config, lockfile).await?;
    println!(
        "packages from the mirrored registry: {}\nfetched now: {}\nalready cached: {}\nfailed: {}\nother sources, skipped: {}",
        report.packages,
        report.fetched,
        report.cached,
        report.failed.len(),
        report.skipped
    );
    for failure in &report.failed {
        println!("  failed: {failure}");
    }
    if !report.failed.is_empty() {
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Asks the local API for `/readyz`.
fn healthcheck(config: &Config) -> anyhow::Result<()> {
    use std::io::{Read, Write};
    let mut address = config.http.socket_addr();
    if address.ip().is_unspecified() {
        address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let timeout = std::time::Duration::from_secs(2);
    let mut stream = std::net::TcpStream::connect_timeout(&address, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.write_all(b"GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    if answer.starts_with("HTTP/1.1 200") {
        return Ok(());
    }
    let status = answer.lines().next().unwrap_or("no answer").to_owned();
    anyhow::bail!("not ready: {status}")
}
