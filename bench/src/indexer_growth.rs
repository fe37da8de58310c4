//! How the cost of one index update grows with the index: the indexer alone, fed over gRPC,
//! pushing to a `file://` remote, at increasing numbers of crates.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use ktra_proto::indexer::v1::indexer_client::IndexerClient;
use ktra_proto::indexer::v1::{ApplyRequest, CrateState};
use ktra_testing::process::{Service, free_port, workspace_binary};
use serde::Serialize;

use crate::stats::{percentile, rss_mib};

/// The figures at one index size.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct GrowthPoint {
    /// Crates in the index.
    pub crates: usize,
    /// Single-crate updates measured.
    pub updates: usize,
    /// Latency of one update (commit and push), milliseconds.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// Worst.
    pub max_ms: f64,
    /// The indexer's resident set after the updates, MiB.
    pub indexer_rss_mib: f64,
    /// Pack files in the remote.
    pub remote_packs: usize,
    /// Loose objects in the remote.
    pub remote_loose_objects: usize,
}

/// Returns the `index`th crate name. Names spread over the index's directories as real names
/// do (a name's first four letters pick its directories), rather than all landing in one.
pub(crate) fn crate_name(index: usize) -> String {
    const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
    const ALPHANUMERIC: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    // A multiplicative hash scatters consecutive indexes.
    let mut state = (index as u64)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .rotate_left(17);
    let mut name = String::new();
    name.push(LETTERS[(state % 26) as usize] as char);
    for _ in 0..3 {
        state /= 26;
        name.push(ALPHANUMERIC[(state % 36) as usize] as char);
    }
    name.push_str(&format!("-{index}"));
    name
}

fn line(name: &str, version: usize) -> String {
    format!(
        "{{\"name\":\"{name}\",\"vers\":\"1.{version}.0\",\"deps\":[],\"cksum\":\"{}\",\"features\":{{}},\"yanked\":false}}\n",
        "0".repeat(64)
    )
}

fn count_objects(remote: &Path) -> (usize, usize) {
    let objects = remote.join("objects");
    let packs = std::fs::read_dir(objects.join("pack"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "pack"))
                .count()
        })
        .unwrap_or(0);
    let loose = std::fs::read_dir(&objects)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|entry| entry.file_name().len() == 2)
                .map(|dir| {
                    std::fs::read_dir(dir.path())
                        .map(Iterator::count)
                        .unwrap_or(0)
                })
                .sum()
        })
        .unwrap_or(0);
    (packs, loose)
}

/// Grows an index through `sizes` crates and measures `updates` single-crate updates at each.
///
/// # Errors
///
/// Fails when the indexer cannot be started or an update fails.
pub(crate) async fn run(
    sizes: &[usize],
    updates: usize,
    over_git_daemon: bool,
) -> anyhow::Result<Vec<GrowthPoint>> {
    let dir = tempfile::Builder::new().prefix("ktra-growth").tempdir()?;
    if std::env::var_os("KTRA_BENCH_KEEP").is_some() {
        println!("work directory: {}", dir.path().display());
    }
    let port = free_port();
    let remote = dir.path().join("remote.git");
    let daemon = if over_git_daemon {
        ktra_testing::git::init_bare(&remote);
        Some(ktra_testing::remotes::GitDaemon::start(
            dir.path(),
            dir.path(),
        ))
    } else {
        None
    };
    let remote_url = match &daemon {
        Some(daemon) => daemon.url("remote.git"),
        None => format!("file://{}", remote.display()),
    };
    let env = vec![
        (
            "KTRA_INDEXER_LISTEN".to_owned(),
            format!("127.0.0.1:{port}"),
        ),
        ("KTRA_GIT_REMOTE_URL".to_owned(), remote_url),
        (
            "KTRA_GIT_LOCAL_PATH".to_owned(),
            dir.path().join("clone").display().to_string(),
        ),
        (
            "RUST_LOG".to_owned(),
            std::env::var("KTRA_BENCH_INDEXER_LOG").unwrap_or_else(|_| "warn".to_owned()),
        ),
    ];
    let indexer = Service::new(
        "indexer",
        workspace_binary("ktra-indexer"),
        &[],
        env,
        dir.path(),
        port,
    );
    indexer.start();
    let mut client = IndexerClient::connect(format!("http://127.0.0.1:{port}"))
        .await?
        .max_decoding_message_size(256 << 20)
        .max_encoding_message_size(256 << 20);
    // name -> (revision, content)
    let mut crates: HashMap<String, (u64, String)> = HashMap::new();
    let mut points = Vec::new();
    for &size in sizes {
        while crates.len() < size {
            let batch: Vec<CrateState> = (crates.len()..size.min(crates.len() + 2000))
                .map(|index| {
                    let name = crate_name(index);
                    let content: String = (0..3).map(|version| line(&name, version)).collect();
                    crates.insert(name.clone(), (1, content.clone()));
                    CrateState {
                        name,
                        revision: 1,
                        content: content.into_bytes(),
                    }
                })
                .collect();
            client.apply(ApplyRequest { crates: batch }).await?;
        }
        let mut latencies = Vec::with_capacity(updates);
        for step in 0..updates {
            let name = crate_name((step * 7919) % size);
            let entry = crates.get_mut(&name).expect("populated above");
            entry.0 += 1;
            entry
                .1
                .push_str(&line(&name, usize::try_from(entry.0).unwrap_or(0) + 2));
            let request = ApplyRequest {
                crates: vec![CrateState {
                    name,
                    revision: entry.0,
                    content: entry.1.clone().into_bytes(),
                }],
            };
            let started = Instant::now();
            client.apply(request).await?;
            latencies.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        let (remote_packs, remote_loose_objects) = count_objects(&remote);
        points.push(GrowthPoint {
            crates: size,
            updates,
            p50_ms: percentile(&latencies, 50.0),
            p90_ms: percentile(&latencies, 90.0),
            max_ms: percentile(&latencies, 100.0),
            indexer_rss_mib: indexer.pid().and_then(rss_mib).unwrap_or(0.0),
            remote_packs,
            remote_loose_objects,
        });
    }
    if std::env::var_os("KTRA_BENCH_KEEP").is_some() {
        let kept = dir.keep();
        println!("kept {}", kept.display());
    }
    Ok(points)
}
