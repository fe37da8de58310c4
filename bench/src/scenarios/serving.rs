//! Serving scenarios: index reads and crate downloads, beside nginx serving the same files.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use ktra_core::index::index_path;
use ktra_testing::fixtures::CrateFixture;

use super::publishing::{publish_all, publish_bodies, publish_load};
use super::{Figures, Sizes, crate_name};
use crate::load::{self, LoadResult, Protocol, Stop};
use crate::nginx::Nginx;
use crate::system::System;

fn get_request(
    path: String,
    etag: Option<String>,
) -> Arc<dyn Fn(usize) -> Request<Full<Bytes>> + Send + Sync> {
    Arc::new(move |_| {
        let mut request = Request::get(path.as_str()).header("host", "bench");
        if let Some(etag) = &etag {
            request = request.header("if-none-match", etag.as_str());
        }
        request
            .body(Full::new(Bytes::new()))
            .expect("a valid request")
    })
}

/// Fetches a path once; returns the body and its ETag.
/// Names a download measurement, the same for every registry measured.
fn download_variant(bytes: usize, sizes: &Sizes) -> String {
    format!(
        "{:.1} MB crate, {} connections",
        bytes as f64 / 1e6,
        sizes.connections
    )
}

/// Publishes the 1 MB crate `name` the download scenarios read; returns its download path and
/// the file as served.
async fn publish_download_crate(
    address: SocketAddr,
    token: &str,
    name: &str,
) -> anyhow::Result<(String, Bytes)> {
    let fixture = CrateFixture::new(name, "1.0.0").with_payload(1_000_000);
    let published = publish_load(address, token, 1, vec![Bytes::from(fixture.body())]).await?;
    anyhow::ensure!(
        published.unexpected(200) == 0,
        "the download crate was refused: {:?}",
        published.statuses
    );
    let path = format!("/dl/{name}/1.0.0/download");
    let (content, _) = fetch(address, &path).await?;
    Ok((path, content))
}

/// Scenario 4 against a peer registry at `address`: the same 1 MB crate, the same load,
/// recorded as `peer` under the peer's configuration.
pub(crate) async fn peer_downloads(
    address: SocketAddr,
    token: &str,
    sizes: &Sizes,
    run: usize,
    figures: &mut Figures,
) -> anyhow::Result<()> {
    let (path, content) =
        publish_download_crate(address, token, &format!("peerdownload{run}")).await?;
    let peer = read_load(
        address,
        Protocol::Http1,
        sizes,
        get_request(path, None),
        (200, "peer downloads"),
    )
    .await?;
    figures.record(
        "downloads",
        &download_variant(content.len(), sizes),
        "peer",
        "MB/s",
        peer.megabytes_per_second(),
    );
    Ok(())
}

/// Runs reads against `address` for the scenario's duration and checks that every answer had
/// the expected status (`expect`: the status, and what the error names).
async fn read_load(
    address: SocketAddr,
    protocol: Protocol,
    sizes: &Sizes,
    request: Arc<dyn Fn(usize) -> Request<Full<Bytes>> + Send + Sync>,
    (status, what): (u16, &str),
) -> anyhow::Result<LoadResult> {
    let result = load::run(
        address,
        protocol,
        sizes.connections,
        Stop::After(sizes.duration),
        request,
    )
    .await?;
    anyhow::ensure!(
        result.unexpected(status) == 0,
        "{what}: {:?}",
        result.statuses
    );
    Ok(result)
}

async fn fetch(address: SocketAddr, path: &str) -> anyhow::Result<(Bytes, Option<String>)> {
    let response = reqwest::get(format!("http://{address}{path}")).await?;
    anyhow::ensure!(
        response.status() == 200,
        "GET {path}: {}",
        response.status()
    );
    let etag = response
        .headers()
        .get("etag")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    Ok((response.bytes().await?, etag))
}

/// Scenario 3: sparse index reads, 200s and 304s, HTTP/1.1 and h2c, against nginx.
pub(crate) async fn reads(
    system: &System,
    nginx: &Nginx,
    sizes: &Sizes,
    run: usize,
    figures: &mut Figures,
) -> anyhow::Result<()> {
    let small = format!("readsmall{run}");
    let big = format!("readbig{run}");
    publish_all(system, 1, publish_bodies(&small, 1, 1)).await?;
    publish_all(system, 8, publish_bodies(&big, 200, 200)).await?;
    let small = crate_name(&small, 0);
    let big = crate_name(&big, 0);
    for (label, name) in [("small file", &small), ("200-version file", &big)] {
        let path = format!("/index/{}", index_path(name));
        let (content, ktra_etag) = fetch(system.address, &path).await?;
        nginx.put(path.trim_start_matches('/'), &content)?;
        let (_, nginx_etag) = fetch(nginx.http1, &path).await?;
        for (kind, expected) in [("200", 200_u16), ("304", 304)] {
            for protocol in [Protocol::Http1, Protocol::H2c] {
                let protocol_name = if protocol == Protocol::Http1 {
                    "HTTP/1.1"
                } else {
                    "h2c"
                };
                let variant = format!("{label}, {kind}, {protocol_name}");
                let etag = |tag: &Option<String>| (expected == 304).then(|| tag.clone()).flatten();
                let ktra = read_load(
                    system.address,
                    protocol,
                    sizes,
                    get_request(path.clone(), etag(&ktra_etag)),
                    (expected, &format!("ktra {variant}")),
                )
                .await?;
                let reference_address = if protocol == Protocol::Http1 {
                    nginx.http1
                } else {
                    nginx.h2c
                };
                let reference = read_load(
                    reference_address,
                    protocol,
                    sizes,
                    get_request(path.clone(), etag(&nginx_etag)),
                    (expected, &format!("nginx {variant}")),
                )
                .await?;
                figures.record("sparse reads", &variant, "ktra", "req/s", ktra.rate());
                figures.record("sparse reads", &variant, "nginx", "req/s", reference.rate());
                figures.record(
                    "sparse reads",
                    &variant,
                    "ktra / nginx",
                    "ratio",
                    ktra.rate() / reference.rate(),
                );
            }
        }
    }
    Ok(())
}

/// Scenario 4: 1 MB downloads at many connections, against nginx.
pub(crate) async fn downloads(
    system: &System,
    nginx: &Nginx,
    sizes: &Sizes,
    run: usize,
    figures: &mut Figures,
) -> anyhow::Result<()> {
    let (path, content) =
        publish_download_crate(system.address, &system.token, &format!("download{run}")).await?;
    nginx.put(path.trim_start_matches('/'), &content)?;
    let ktra = read_load(
        system.address,
        Protocol::Http1,
        sizes,
        get_request(path.clone(), None),
        (200, "downloads"),
    )
    .await?;
    let reference = load::run(
        nginx.http1,
        Protocol::Http1,
        sizes.connections,
        Stop::After(sizes.duration),
        get_request(path, None),
    )
    .await?;
    let variant = download_variant(content.len(), sizes);
    figures.record(
        "downloads",
        &variant,
        "ktra",
        "MB/s",
        ktra.megabytes_per_second(),
    );
    figures.record(
        "downloads",
        &variant,
        "nginx",
        "MB/s",
        reference.megabytes_per_second(),
    );
    figures.record(
        "downloads",
        &variant,
        "ktra / nginx",
        "ratio",
        ktra.megabytes_per_second() / reference.megabytes_per_second(),
    );
    Ok(())
}

/// A README of about 3 KB, as a documented crate has.
fn page_readme() -> String {
    let mut readme = String::from("# A crate with many versions\n\n");
    for section in 0..8 {
        readme.push_str(&format!(
            "## Section {section}\n\nSome **text** with a [link](https://example.com) and `code`.\n\n\
             ```rust\nlet value = compute({section});\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
        ));
    }
    readme
}

/// Scenario 5: a crate's page and its crates.io API answer, for a crate of 1,000 versions with
/// a README, rendered by the server. One connection, so the latency is the work of one
/// answer (goal: the page's p50 under 5 ms).
pub(crate) async fn pages(
    system: &System,
    sizes: &Sizes,
    run: usize,
    figures: &mut Figures,
) -> anyhow::Result<()> {
    let stem = format!("pages{run}");
    let name = crate_name(&stem, 0);
    let readme = page_readme();
    let bodies = (0..1000)
        .map(|version| {
            let fixture = CrateFixture::new(&name, &format!("1.{version}.0"));
            let mut metadata = fixture.metadata();
            metadata["readme"] = serde_json::Value::String(readme.clone());
            metadata["readme_file"] = serde_json::Value::String("README.md".to_owned());
            Bytes::from(CrateFixture::body_from(&metadata, &fixture.crate_file()))
        })
        .collect();
    publish_all(system, 8, bodies).await?;
    for (variant, path) in [
        ("crate page, 1,000 versions", format!("/crates/{name}")),
        (
            "crates.io API crate, 1,000 versions",
            format!("/api/v1/crates/{name}"),
        ),
    ] {
        let result = load::run(
            system.address,
            Protocol::Http1,
            1,
            Stop::After(sizes.duration),
            get_request(path, None),
        )
        .await?;
        anyhow::ensure!(
            result.unexpected(200) == 0,
            "{variant}: {:?}",
            result.statuses
        );
        figures.record("pages", variant, "p50", "ms", result.latency_ms(50.0));
        figures.record("pages", variant, "p90", "ms", result.latency_ms(90.0));
    }
    Ok(())
}
