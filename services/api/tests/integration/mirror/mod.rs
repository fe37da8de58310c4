//! The pull-through mirror: another Ktra (or a small fixture server) as the upstream, the real
//! cargo building through `[source.crates-io] replace-with`.
//!
//! One file per concern: [`cargo_builds`] (cargo through the mirror, prefetch, lists and
//! tokens), [`caching`] (what the cache keeps and shares), [`upstream_failures`] (an upstream
//! that is down, slow, lying or a captive portal), with the fixture upstream in [`fixture`].

use std::path::Path;

use ktra_testing::cargo::{CargoHome, library_manifest, package};
use tempfile::TempDir;

use crate::harness::{Backend, TestApp};

mod caching;
mod cargo_builds;
mod fixture;
mod upstream_failures;

/// Returns the sparse index URL of a registry served at `base`.
pub(super) fn index_of(base: &str) -> String {
    format!("{base}/index/")
}

/// Returns how many requests for `kind` (`index` or `crate`) the mirror's cache answered with
/// `result` (`hit`, `miss`, `revalidated`, `stale`).
pub(super) async fn cache_requests(mirror: &TestApp, kind: &str, result: &str) -> f64 {
    let labels = format!("{{kind=\"{kind}\",result=\"{result}\"}}");
    mirror
        .metric(&format!("ktra_mirror_cache_requests_total{labels}"))
        .await
}

/// Returns how many upstream requests for `kind` failed with `error`.
pub(super) async fn upstream_errors(mirror: &TestApp, kind: &str, error: &str) -> f64 {
    let labels = format!("{{kind=\"{kind}\",error=\"{error}\"}}");
    mirror
        .metric(&format!("ktra_mirror_upstream_errors_total{labels}"))
        .await
}

/// Starts an upstream Ktra with the crates of [`publish_upstream_crates`]; returns the work
/// directory its packages are in, the upstream and the publisher's cargo.
pub(super) async fn upstream_with_crates() -> (TempDir, TestApp, CargoHome) {
    let work = tempfile::tempdir().unwrap();
    let upstream = TestApp::embedded(&[]).await;
    let publisher = publish_upstream_crates(&upstream, work.path()).await;
    (work, upstream, publisher)
}

/// Publishes `ab` 0.1.0 and `mid-crate` 0.1.0 (which depends on `ab`) to `upstream` (as
/// registry `up`); returns the publisher's cargo.
async fn publish_upstream_crates(upstream: &TestApp, root: &Path) -> CargoHome {
    publish_upstream_crates_as(upstream, root, &upstream.create_user("alice").await).await
}

pub(super) async fn publish_upstream_crates_as(
    upstream: &TestApp,
    root: &Path,
    token: &str,
) -> CargoHome {
    let publisher = CargoHome::new(&[("up", &format!("sparse+{}/index/", upstream.base))]);
    publisher.login(root, "up", token).await;
    let ab = package(
        root,
        "ab",
        &library_manifest("ab", "0.1.0", ""),
        &[("src/lib.rs", "pub fn value() -> u32 { 2 }\n")],
    );
    publisher.publish(&ab, "up").await;
    let mid = package(
        root,
        "mid",
        &library_manifest(
            "mid-crate",
            "0.1.0",
            "[dependencies]\nab = { version = \"0.1\", registry = \"up\" }\n",
        ),
        &[("src/lib.rs", "pub fn value() -> u32 { ab::value() + 1 }\n")],
    );
    publisher.publish(&mid, "up").await;
    publisher
}

/// Writes a binary depending on `mid-crate` from crates.io, with `.cargo/config.toml` sending
/// crates.io to `index` (a sparse index URL).
pub(super) fn consumer(root: &Path, index: &str) -> std::path::PathBuf {
    let dir = package(
        root,
        "consumer",
        "[package]\nname = \"consumer\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\
         [dependencies]\nmid-crate = \"0.1\"\n",
        &[(
            "src/main.rs",
            "fn main() { println!(\"value={}\", mid_crate::value()); }\n",
        )],
    );
    point_crates_io_at(&dir, index);
    dir
}

pub(super) fn point_crates_io_at(dir: &Path, index: &str) {
    std::fs::create_dir_all(dir.join(".cargo")).unwrap();
    std::fs::write(
        dir.join(".cargo/config.toml"),
        format!(
            "[source.crates-io]\nreplace-with = \"ktra-mirror\"\n\
             [source.ktra-mirror]\nregistry = \"sparse+{index}\"\n"
        ),
    )
    .unwrap();
}

pub(super) async fn start_mirror(upstream_index: &str, extra: &[(&str, &str)]) -> TestApp {
    start_mirror_on(Backend::Embedded, upstream_index, extra).await
}

/// On Redis and S3, the mirror's cache lives in the bucket, under `mirror/`.
pub(super) async fn start_mirror_on(
    backend: Backend,
    upstream_index: &str,
    extra: &[(&str, &str)],
) -> TestApp {
    let mut settings = vec![
        ("KTRA_MIRROR_ENABLED", "true"),
        ("KTRA_MIRROR_UPSTREAM_INDEX", upstream_index),
    ];
    settings.extend_from_slice(extra);
    TestApp::start_on(backend, &settings).await
}

/// A port nothing listens on.
pub(super) async fn closed_port_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}/index/")
}

/// Downloads counted by an upstream Ktra.
pub(super) async fn upstream_downloads(upstream: &TestApp) -> f64 {
    upstream
        .metric("ktra_http_requests_total{route=\"/dl/{name}/{version}/download\",method=\"GET\",status=\"200\"")
        .await
}
