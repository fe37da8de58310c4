//! `ktra-bench`: Ktra's benchmarks. `make bench` runs them; see BENCHMARKS.md.

mod indexer_growth;
mod stats;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Ktra's benchmarks.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Where to write the results as JSON.
    #[arg(long, global = true)]
    json: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The cost of one git index update as the index grows.
    IndexerGrowth {
        /// Index sizes, in crates.
        #[arg(long, value_delimiter = ',', default_value = "1000,10000,50000")]
        sizes: Vec<usize>,
        /// Updates measured at each size.
        #[arg(long, default_value_t = 200)]
        updates: usize,
        /// Push over git:// to a git daemon instead of to a file:// remote.
        #[arg(long)]
        git_daemon: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let json = match args.command {
        Command::IndexerGrowth {
            sizes,
            updates,
            git_daemon,
        } => {
            let points = indexer_growth::run(&sizes, updates, git_daemon).await?;
            println!(
                "| crates | updates | p50 ms | p90 ms | max ms | indexer RSS MiB | remote packs | remote loose objects |"
            );
            println!("|---|---|---|---|---|---|---|---|");
            for point in &points {
                println!(
                    "| {} | {} | {:.2} | {:.2} | {:.2} | {:.1} | {} | {} |",
                    point.crates,
                    point.updates,
                    point.p50_ms,
                    point.p90_ms,
                    point.max_ms,
                    point.indexer_rss_mib,
                    point.remote_packs,
                    point.remote_loose_objects
                );
            }
            serde_json::to_value(&points)?
        }
    };
    if let Some(path) = args.json {
        std::fs::write(&path, serde_json::to_string_pretty(&json)?)?;
    }
    Ok(())
}
