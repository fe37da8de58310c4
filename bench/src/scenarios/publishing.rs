//! Publishing scenarios: publishes per second, publish to visible, and the registry grown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use ktra_core::index::index_path;
use ktra_testing::fixtures::CrateFixture;

use super::{Figures, Sizes, crate_name};
use crate::load::{self, LoadResult, Protocol, Stop};
use crate::system::System;

/// Pre-builds publish bodies, so the load generator does not spend its time compressing.
pub(crate) fn publish_bodies(prefix: &str, count: usize, versions: usize) -> Vec<Bytes> {
    (0..count)
        .map(|index| {
            let crate_index = index / versions.max(1);
            let version = index % versions.max(1);
            Bytes::from(
                CrateFixture::new(&crate_name(prefix, crate_index), &format!("1.{version}.0"))
                    .body(),
            )
        })
        .collect()
}

fn publish_request(
    token: &str,
    bodies: Arc<Vec<Bytes>>,
) -> Arc<dyn Fn(usize) -> Request<Full<Bytes>> + Send + Sync> {
    let token = token.to_owned();
    Arc::new(move |index| {
        Request::put("/api/v1/crates/new")
            .header("host", "bench")
            .header("authorization", token.as_str())
            .body(Full::new(bodies[index].clone()))
            .expect("a valid request")
    })
}

/// Publishes `bodies` through `clients` connections; fails unless every publish got 200.
pub(crate) async fn publish_all(
    system: &System,
    clients: usize,
    bodies: Vec<Bytes>,
) -> anyhow::Result<LoadResult> {
    let result = publish_load(system.address, &system.token, clients, bodies).await?;
    anyhow::ensure!(
        result.unexpected(200) == 0,
        "publishes failed: {:?}",
        result.statuses
    );
    Ok(result)
}

/// Publishes `bodies` to the registry at `address` through `clients` connections, each once,
/// whatever the answers.
pub(crate) async fn publish_load(
    address: SocketAddr,
    token: &str,
    clients: usize,
    bodies: Vec<Bytes>,
) -> anyhow::Result<LoadResult> {
    let total = bodies.len();
    load::run(
        address,
        Protocol::Http1,
        clients,
        Stop::Count(Arc::new(AtomicUsize::new(0)), total),
        publish_request(token, Arc::new(bodies)),
    )
    .await
}

/// Records a publish measurement: throughput and latency.
pub(crate) fn record_publish(figures: &mut Figures, variant: &str, result: &LoadResult) {
    figures.record(
        "publish",
        variant,
        "throughput",
        "publishes/s",
        result.rate(),
    );
    figures.record(
        "publish",
        variant,
        "latency p50",
        "ms",
        result.latency_ms(50.0),
    );
    figures.record(
        "publish",
        variant,
        "latency p99",
        "ms",
        result.latency_ms(99.0),
    );
}

/// Names a measurement: `tag` goes into crate names (letters and digits only), `label` into
/// the variant shown.
#[derive(Debug, Clone, Default)]
pub(crate) struct Label {
    /// Part of crate names.
    pub(crate) tag: String,
    /// Part of the variant.
    pub(crate) text: String,
}

/// Scenario 1: publish throughput and latency by client count.
pub(crate) async fn publish(
    system: &System,
    sizes: &Sizes,
    run: usize,
    label: &Label,
    figures: &mut Figures,
) -> anyhow::Result<()> {
    for &clients in &sizes.publish_clients {
        let bodies = publish_bodies(
            &format!("pub{}r{run}c{clients}n", label.tag),
            sizes.publishes,
            1,
        );
        let result = publish_all(system, clients, bodies).await?;
        let variant = format!("{clients} clients{}", label.text);
        record_publish(figures, &variant, &result);
    }
    Ok(())
}

fn git_file(remote: &std::path::Path, path: &str) -> Option<String> {
    let repo = git2::Repository::open_bare(remote).ok()?;
    let tree = repo
        .find_reference("refs/heads/main")
        .ok()?
        .peel_to_tree()
        .ok()?;
    let entry = tree.get_path(std::path::Path::new(path)).ok()?;
    let blob = repo.find_blob(entry.id()).ok()?;
    Some(String::from_utf8_lossy(blob.content()).into_owned())
}

async fn sparse_has(client: &reqwest::Client, base: &str, name: &str, version: &str) -> bool {
    let url = format!("{base}/index/{}", index_path(name));
    match client.get(url).send().await {
        Ok(response) => response
            .text()
            .await
            .is_ok_and(|text| text.contains(&format!("\"vers\":\"{version}\""))),
        Err(_) => false,
    }
}

/// Waits until the git remote holds `version` of `name`; returns how long that took.
async fn wait_on_remote(
    system: &System,
    name: &str,
    version: &str,
    since: Instant,
) -> anyhow::Result<Duration> {
    let path = index_path(name);
    let needle = format!("\"vers\":\"{version}\"");
    loop {
        if git_file(&system.registry.remote_path, &path).is_some_and(|text| text.contains(&needle))
        {
            return Ok(since.elapsed());
        }
        anyhow::ensure!(
            since.elapsed() < Duration::from_secs(60),
            "{name}@{version} never reached the git remote"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Reads one counter or gauge from the indexer's `/metrics`.
async fn indexer_metric(client: &reqwest::Client, system: &System, name: &str) -> Option<f64> {
    let url = format!("{}/metrics", system.registry.indexer_metrics);
    let text = client.get(url).send().await.ok()?.text().await.ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// Waits until the indexer has written everything it was handed and made no round for longer
/// than the resend interval (changes a full hand-off left to the resender come back within
/// it), so "idle" figures do not include the backlog of the scenario before.
async fn wait_index_idle(client: &reqwest::Client, system: &System) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut quiet_since: Option<(Instant, f64)> = None;
    while Instant::now() < deadline {
        let depth = indexer_metric(client, system, "ktra_indexer_queue_depth").await;
        let rounds = indexer_metric(client, system, "ktra_indexer_rounds_total").await;
        match (depth == Some(0.0), rounds) {
            (true, Some(rounds)) => match quiet_since {
                Some((since, seen)) if seen == rounds => {
                    if since.elapsed() > crate::system::RESEND_INTERVAL + Duration::from_secs(1) {
                        return Ok(());
                    }
                }
                _ => quiet_since = Some((Instant::now(), rounds)),
            },
            _ => quiet_since = None,
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("the indexer did not become idle within 300 s")
}

/// Scenario 2: publish-to-visible, idle and at the end of a 64-client burst.
pub(crate) async fn visible(
    system: &System,
    sizes: &Sizes,
    run: usize,
    label: &Label,
    figures: &mut Figures,
) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    wait_index_idle(&client, system).await?;
    let mut sparse_immediate = 0;
    let mut lags = Vec::new();
    for index in 0..sizes.visible_samples {
        let name = crate_name(&format!("vis{}r{run}n", label.tag), index);
        let body = CrateFixture::new(&name, "1.0.0").body();
        let (status, reply) = system
            .registry
            .publish(&system.token, body)
            .await
            .ok_or_else(|| anyhow::anyhow!("the API did not answer"))?;
        anyhow::ensure!(status == 200, "publish failed: {reply}");
        let answered = Instant::now();
        if sparse_has(&client, &system.registry.base, &name, "1.0.0").await {
            sparse_immediate += 1;
        }
        lags.push(
            wait_on_remote(system, &name, "1.0.0", answered)
                .await?
                .as_secs_f64()
                * 1000.0,
        );
        // Idle between samples: the previous push is done.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let variant = format!("idle{}", label.text);
    figures.record(
        "visible",
        &variant,
        "in sparse index at 200",
        "%",
        100.0 * sparse_immediate as f64 / sizes.visible_samples as f64,
    );
    figures.record(
        "visible",
        &variant,
        "on git remote p50",
        "ms",
        crate::stats::percentile(&lags, 50.0),
    );
    figures.record(
        "visible",
        &variant,
        "on git remote max",
        "ms",
        crate::stats::percentile(&lags, 100.0),
    );

    // Under a burst: how long after the last 200 the remote holds every version.
    let count = sizes.publishes;
    let prefix = format!("burst{}r{run}n", label.tag);
    publish_all(system, 64, publish_bodies(&prefix, count, 1)).await?;
    let answered = Instant::now();
    let drained =
        wait_on_remote(system, &crate_name(&prefix, count - 1), "1.0.0", answered).await?;
    let mut all_there = drained;
    for index in 0..count {
        let lag = wait_on_remote(system, &crate_name(&prefix, index), "1.0.0", answered).await?;
        all_there = all_there.max(lag);
    }
    figures.record(
        "visible",
        &format!("after 64-client burst of {count}{}", label.text),
        "on git remote, all",
        "ms",
        all_there.as_secs_f64() * 1000.0,
    );
    Ok(())
}

/// Scenario 5: grows the registry and reruns publishing and publish-to-visible at each size.
pub(crate) async fn growth(
    system: &System,
    sizes: &Sizes,
    figures: &mut Figures,
) -> anyhow::Result<()> {
    let mut populated = 0;
    let versions = 3;
    for &size in &sizes.growth {
        let started = Instant::now();
        let bodies: Vec<Bytes> = (populated..size)
            .flat_map(|index| {
                (0..versions).map(move |version| {
                    Bytes::from(
                        CrateFixture::new(&crate_name("grow", index), &format!("1.{version}.0"))
                            .body(),
                    )
                })
            })
            .collect();
        // Versions of one crate go in order; interleaving across crates keeps clients apart.
        let count = bodies.len();
        publish_all(system, 64, bodies).await?;
        populated = size;
        figures.record(
            "growth",
            &format!("to {size} crates"),
            "populating",
            "publishes/s",
            count as f64 / started.elapsed().as_secs_f64(),
        );
        // Measure the grown registry, not the indexer still writing what populating sent it.
        wait_index_idle(&reqwest::Client::new(), system).await?;
        let label = Label {
            tag: format!("g{size}"),
            text: format!(" at {size} crates"),
        };
        let growth_sizes = Sizes {
            publish_clients: vec![1, 64],
            ..sizes.clone()
        };
        publish(system, &growth_sizes, 0, &label, figures).await?;
        visible(system, &growth_sizes, 0, &label, figures).await?;
    }
    Ok(())
}
