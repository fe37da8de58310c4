//! `ktra-bench`: Ktra's benchmarks. `make bench` runs them; BENCHMARKS.md holds the results.

mod indexer_growth;
mod load;
mod nginx;
mod peers;
mod scenarios;
mod stats;
mod system;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use scenarios::{Figure, Figures, Sizes};
use system::{Configuration, System};

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
    /// Every scenario, in every named configuration, several runs each.
    Run {
        /// Configurations: embedded, redis, redis-s3, redis-wait; and the peer ktra-0.7.0
        /// (publishing and downloads).
        #[arg(long, value_delimiter = ',', default_value = "embedded,redis-s3")]
        configs: Vec<String>,
        /// Runs of each scenario.
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// A short smoke version (CI): small sizes, one run.
        #[arg(long)]
        quick: bool,
        /// Skip the growth scenario.
        #[arg(long)]
        no_growth: bool,
        /// Run only these scenarios: publish, visible, reads, downloads, pages.
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
    },
    /// The cost of one git index update as the index grows (the indexer alone).
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

fn sizes(quick: bool) -> Sizes {
    if quick {
        Sizes {
            publishes: 200,
            publish_clients: vec![1, 8],
            duration: Duration::from_secs(1),
            connections: 16,
            growth: vec![200],
            visible_samples: 5,
        }
    } else {
        Sizes {
            publishes: 4000,
            publish_clients: vec![1, 8, 32, 64],
            duration: Duration::from_secs(5),
            connections: 64,
            growth: vec![1000, 10_000, 50_000],
            visible_samples: 50,
        }
    }
}

fn print_table(figures: &[Figure]) {
    println!("| scenario | variant | metric | configuration | median (min-max) | unit |");
    println!("|---|---|---|---|---|---|");
    for figure in figures {
        let spread = {
            let mut sorted = figure.runs.clone();
            sorted.sort_by(f64::total_cmp);
            let precision = if figure.median().abs() >= 100.0 { 0 } else { 2 };
            if sorted.len() > 1 {
                format!(
                    "{:.precision$} ({:.precision$}-{:.precision$})",
                    figure.median(),
                    sorted[0],
                    sorted[sorted.len() - 1]
                )
            } else {
                format!("{:.precision$}", figure.median())
            }
        };
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            figure.scenario,
            figure.variant,
            figure.metric,
            figure.configuration,
            spread,
            figure.unit
        );
    }
}

async fn run_configuration(
    configuration: Configuration,
    sizes: &Sizes,
    runs: usize,
    growth: bool,
    only: &[String],
) -> anyhow::Result<Vec<Figure>> {
    let wanted = |scenario: &str| only.is_empty() || only.iter().any(|name| name == scenario);
    eprintln!("bench: starting the {} configuration", configuration.name());
    let system = System::start(configuration).await?;
    let nginx_dir = tempfile::Builder::new().disable_cleanup(true).tempdir()?;
    let nginx = nginx::Nginx::start(nginx_dir.path())?;
    let mut figures = Figures::new(configuration.name());
    for run in 0..runs {
        eprintln!("bench: {} run {}/{runs}", configuration.name(), run + 1);
        let label = scenarios::Label::default();
        if wanted("publish") {
            scenarios::publish(&system, sizes, run, &label, &mut figures).await?;
        }
        if wanted("visible") {
            scenarios::visible(&system, sizes, run, &label, &mut figures).await?;
        }
        if wanted("reads") {
            scenarios::reads(&system, &nginx, sizes, run, &mut figures).await?;
        }
        if wanted("downloads") {
            scenarios::downloads(&system, &nginx, sizes, run, &mut figures).await?;
        }
        if wanted("pages") {
            scenarios::pages(&system, sizes, run, &mut figures).await?;
        }
    }
    if growth {
        eprintln!("bench: {} growth", configuration.name());
        scenarios::growth(&system, sizes, &mut figures).await?;
    }
    let memory = system.memory();
    figures.record("memory", "idle", "api RSS", "MiB", memory.api_idle);
    figures.record("memory", "peak", "api RSS", "MiB", memory.api_peak);
    figures.record("memory", "idle", "indexer RSS", "MiB", memory.indexer_idle);
    figures.record("memory", "peak", "indexer RSS", "MiB", memory.indexer_peak);
    Ok(figures.into_inner())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Every configuration's files stay until the whole run ends and are removed together
    // then. Removing a configuration's tens of thousands of files while the next one is
    // measured slows that one down: a journal-less ext4 (as on our machines) skips inodes
    // freed in the last minute or more when it allocates new ones, so each file the next
    // configuration creates scans past them.
    let work = tempfile::Builder::new().prefix("ktra-bench-").tempdir()?;
    tempfile::env::override_temp_dir(work.path())
        .map_err(|_| anyhow::anyhow!("the temporary directory was already chosen"))?;
    let json = match args.command {
        Command::Run {
            configs,
            runs,
            quick,
            no_growth,
            only,
        } => {
            let sizes = sizes(quick);
            let runs = if quick { 1 } else { runs.max(1) };
            let mut all = Vec::new();
            for name in configs {
                if name == peers::KTRA_0_7 {
                    all.extend(peers::ktra_0_7(&sizes, runs).await?);
                    continue;
                }
                let configuration = Configuration::parse(&name)
                    .ok_or_else(|| anyhow::anyhow!("unknown configuration `{name}`"))?;
                all.extend(
                    run_configuration(configuration, &sizes, runs, !no_growth, &only).await?,
                );
            }
            all.sort_by(|a, b| {
                (&a.scenario, &a.variant, &a.metric).cmp(&(&b.scenario, &b.variant, &b.metric))
            });
            print_table(&all);
            serde_json::json!({
                "machine": machine(),
                "runs": runs,
                "quick": quick,
                "figures": all,
            })
        }
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
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, serde_json::to_string_pretty(&json)?)?;
    }
    Ok(())
}

/// Describes the machine the figures come from.
fn machine() -> serde_json::Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split(':').nth(1))
                .map(|name| name.trim().to_owned())
        })
        .unwrap_or_default();
    serde_json::json!({
        "cpus": std::thread::available_parallelism().map(std::num::NonZeroUsize::get).unwrap_or(0),
        "cpu": cpu,
    })
}
