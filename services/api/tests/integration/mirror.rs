//! The pull-through mirror: another Ktra (or a small fixture server) as the upstream, the real
//! cargo building through `[source.crates-io] replace-with`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::response::IntoResponse;
use ktra_testing::cargo::{CargoHome, library_manifest, package};
use reqwest::StatusCode;
use sha2::Digest;

use crate::harness::{Backend, TestApp, assert_error, read_json};

const CACHE_REQUESTS: &str = "ktra_mirror_cache_requests_total";

/// Publishes `ab` 0.1.0 and `mid-crate` 0.1.0 (which depends on `ab`) to `upstream` (as
/// registry `up`); returns the publisher's cargo.
async fn publish_upstream_crates(upstream: &TestApp, root: &Path) -> CargoHome {
    publish_upstream_crates_as(upstream, root, &upstream.create_user("alice").await).await
}

async fn publish_upstream_crates_as(upstream: &TestApp, root: &Path, token: &str) -> CargoHome {
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
fn consumer(root: &Path, index: &str) -> std::path::PathBuf {
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

fn point_crates_io_at(dir: &Path, index: &str) {
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

async fn start_mirror(upstream_index: &str, extra: &[(&str, &str)]) -> TestApp {
    start_mirror_on(Backend::Embedded, upstream_index, extra).await
}

/// On Redis and S3, the mirror's cache lives in the bucket, under `mirror/`.
async fn start_mirror_on(
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
async fn closed_port_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}/index/")
}

/// Downloads counted by an upstream Ktra.
async fn upstream_downloads(upstream: &TestApp) -> f64 {
    upstream
        .metric("ktra_http_requests_total{route=\"/dl/{name}/{version}/download\",method=\"GET\",status=\"200\"")
        .await
}

pub(crate) async fn cargo_builds_through_the_mirror_and_from_its_cache_once_the_upstream_is_gone() {
    let work = tempfile::tempdir().unwrap();
    let upstream = TestApp::start_on(Backend::Embedded, &[]).await;
    publish_upstream_crates(&upstream, work.path()).await;
    // Freshness 0: every index read revalidates with the upstream, so the stale path is
    // taken as soon as the upstream is gone.
    let mirror = start_mirror(
        &format!("{}/index/", upstream.base),
        &[("KTRA_MIRROR_FRESHNESS_SECS", "0")],
    )
    .await;
    let project = consumer(work.path(), &format!("{}/mirror/index/", mirror.base));

    let first = CargoHome::new(&[]);
    let output = first.ok(&project, &["run", "-q"]).await;
    assert!(output.contains("value=3"), "{output}");
    assert_eq!(
        upstream_downloads(&upstream).await,
        2.0,
        "one fetch per crate"
    );
    assert_eq!(
        mirror
            .metric(&format!(
                "{CACHE_REQUESTS}{{kind=\"crate\",result=\"miss\"}}"
            ))
            .await,
        2.0
    );
    assert_eq!(
        mirror.metric("ktra_mirror_upstream_errors_total").await,
        0.0
    );
    // Two index files and two crate files, each timed.
    assert!(
        mirror
            .metric("ktra_mirror_upstream_request_duration_seconds_count")
            .await
            >= 4.0
    );

    // A second build from a clean CARGO_HOME revalidates the index (304 upstream) and reads
    // the crate files from the mirror's cache.
    let second = CargoHome::new(&[]);
    let output = second.ok(&project, &["run", "-q"]).await;
    assert!(output.contains("value=3"), "{output}");
    assert_eq!(
        upstream_downloads(&upstream).await,
        2.0,
        "served from the cache"
    );
    assert!(
        mirror
            .metric(&format!(
                "{CACHE_REQUESTS}{{kind=\"index\",result=\"revalidated\"}}"
            ))
            .await
            >= 2.0
    );
    assert_eq!(
        mirror
            .metric(&format!(
                "{CACHE_REQUESTS}{{kind=\"crate\",result=\"hit\"}}"
            ))
            .await,
        2.0
    );

    upstream.stop().await;

    // The upstream is gone: a third clean CARGO_HOME and target still build, from the cache.
    let third = CargoHome::new(&[]);
    let output = third.ok(&project, &["run", "-q"]).await;
    assert!(output.contains("value=3"), "{output}");
    assert!(
        mirror
            .metric(&format!(
                "{CACHE_REQUESTS}{{kind=\"index\",result=\"stale\"}}"
            ))
            .await
            >= 2.0,
        "stale index files are counted"
    );
    assert!(
        mirror
            .metric("ktra_mirror_upstream_errors_total{kind=\"index\",error=\"unreachable\"}")
            .await
            >= 1.0
    );

    // What was never cached fails in cargo's format, never as crate bytes.
    let (status, body) = mirror.get("/mirror/index/ne/ve/never").await;
    assert_error(
        status,
        &body,
        StatusCode::BAD_GATEWAY,
        "could not be reached",
    );
    for path in [
        "/mirror/dl/never/1.0.0/download",
        "/ktra/api/v1/mirror/never/1.0.0/download",
    ] {
        let (status, body) = mirror.get(path).await;
        assert_error(
            status,
            &body,
            StatusCode::BAD_GATEWAY,
            "could not be reached",
        );
    }
}

pub(crate) async fn prefetch_fills_the_cache_for_a_build_after_the_upstream_is_gone() {
    let work = tempfile::tempdir().unwrap();
    let upstream = TestApp::start_on(Backend::Embedded, &[]).await;
    publish_upstream_crates(&upstream, work.path()).await;
    let upstream_index = format!("{}/index/", upstream.base);
    // The lockfile of a project resolved against the upstream directly: its packages say
    // crates.io, as on a developer's machine.
    let project = consumer(work.path(), &upstream_index);
    CargoHome::new(&[])
        .ok(&project, &["generate-lockfile"])
        .await;
    let lockfile = std::fs::read_to_string(project.join("Cargo.lock")).unwrap();
    assert!(
        lockfile.contains("source = \"registry+https://github.com/rust-lang/crates.io-index\""),
        "{lockfile}"
    );

    let cache = work.path().join("mirror-cache");
    let prefetch = |label: &'static str| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_ktra-api"));
        command
            .env_clear()
            .env("KTRA_MIRROR_UPSTREAM_INDEX", &upstream_index)
            .env("KTRA_MIRROR_CACHE_DIR_PATH", &cache)
            .env("KTRA_BLOB_DIR_PATH", work.path().join("blobs"))
            .env("KTRA_DB_DIR_PATH", work.path().join("db"))
            .args(["mirror-prefetch", "Cargo.lock"])
            .current_dir(&project);
        async move {
            let output = ktra_core::task::spawn_blocking(move || command.output().unwrap())
                .await
                .unwrap();
            let text = String::from_utf8_lossy(&output.stdout).into_owned();
            assert!(
                output.status.success(),
                "{label}: {text}{}",
                String::from_utf8_lossy(&output.stderr)
            );
            text
        }
    };
    let report = prefetch("first").await;
    assert!(report.contains("fetched now: 2"), "{report}");
    assert!(report.contains("failed: 0"), "{report}");
    let report = prefetch("again").await;
    assert!(report.contains("already cached: 2"), "{report}");
    assert_eq!(upstream_downloads(&upstream).await, 2.0);

    upstream.stop().await;

    let cache_setting = cache.display().to_string();
    let mirror = start_mirror(
        &upstream_index,
        &[("KTRA_MIRROR_CACHE_DIR_PATH", &cache_setting)],
    )
    .await;
    point_crates_io_at(&project, &format!("{}/mirror/index/", mirror.base));
    let output = CargoHome::new(&[]).ok(&project, &["run", "-q"]).await;
    assert!(output.contains("value=3"), "{output}");
    assert_eq!(
        mirror
            .metric(&format!(
                "{CACHE_REQUESTS}{{kind=\"crate\",result=\"hit\"}}"
            ))
            .await,
        2.0
    );
}

pub(crate) async fn allow_and_deny_lists_refuse_what_they_exclude() {
    let work = tempfile::tempdir().unwrap();
    let upstream = TestApp::start_on(Backend::Embedded, &[]).await;
    publish_upstream_crates(&upstream, work.path()).await;
    let mirror = start_mirror(
        &format!("{}/index/", upstream.base),
        &[("KTRA_MIRROR_ALLOW", "mid*,a?"), ("KTRA_MIRROR_DENY", "AB")],
    )
    .await;
    for path in [
        "/mirror/index/2/ab",
        "/mirror/dl/ab/0.1.0/download",
        "/ktra/api/v1/mirror/ab/0.1.0/download",
        // Not on the allow list.
        "/mirror/index/ot/he/other",
    ] {
        let (status, body) = mirror.get(path).await;
        assert_error(
            status,
            &body,
            StatusCode::FORBIDDEN,
            "may not be pulled through this mirror",
        );
    }
    let allowed = mirror
        .client
        .get(mirror.url("/mirror/index/mi/d-/mid-crate"))
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);
    assert_eq!(upstream_downloads(&upstream).await, 0.0);

    // cargo stops at the refused dependency and shows why.
    let project = consumer(work.path(), &format!("{}/mirror/index/", mirror.base));
    let output = CargoHome::new(&[])
        .output(&project, &["generate-lockfile"], None)
        .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("403"), "{stderr}");
    assert!(
        stderr.contains("may not be pulled through this mirror"),
        "{stderr}"
    );
}

/// A small upstream registry serving one crate, `tam` 0.1.0, whose download answers
/// `served` after `delay` while its index lists the checksum of `listed`. `config.json`
/// answers after `config_delay`. With `portal` set, every route answers 200 with a captive
/// portal's HTML page; with `stalled` set, every route waits 30 s before answering.
struct Fixture {
    base: String,
    index_hits: AtomicUsize,
    crate_hits: AtomicUsize,
    missing_hits: AtomicUsize,
    config_hits: AtomicUsize,
    portal: AtomicBool,
    stalled: AtomicBool,
    served: &'static [u8],
    listed_cksum: String,
    delay: Duration,
    config_delay: Duration,
}

const PORTAL_PAGE: &str = "<html><body>Sign in to the guest Wi-Fi</body></html>\n";

impl Fixture {
    /// Waits `delay`, longer when stalled; returns the portal page when one is shown.
    async fn answer_after(&self, delay: Duration) -> Option<axum::response::Response> {
        tokio::time::sleep(delay).await;
        if self.stalled.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        self.portal
            .load(Ordering::SeqCst)
            .then(|| axum::response::Html(PORTAL_PAGE).into_response())
    }
}

async fn fixture(served: &'static [u8], listed: &[u8], delay: Duration) -> Arc<Fixture> {
    fixture_with(served, listed, delay, Duration::ZERO).await
}

async fn fixture_with(
    served: &'static [u8],
    listed: &[u8],
    delay: Duration,
    config_delay: Duration,
) -> Arc<Fixture> {
    async fn config(State(fixture): State<Arc<Fixture>>) -> axum::response::Response {
        fixture.config_hits.fetch_add(1, Ordering::SeqCst);
        if let Some(portal) = fixture.answer_after(fixture.config_delay).await {
            return portal;
        }
        format!(
            "{{\"dl\":\"{}/files/{{crate}}-{{version}}.crate\"}}",
            fixture.base
        )
        .into_response()
    }
    async fn index(
        State(fixture): State<Arc<Fixture>>,
        axum::extract::Path(path): axum::extract::Path<String>,
    ) -> axum::response::Response {
        if path != "3/t/tam" {
            fixture.missing_hits.fetch_add(1, Ordering::SeqCst);
        } else {
            fixture.index_hits.fetch_add(1, Ordering::SeqCst);
        }
        if let Some(portal) = fixture.answer_after(fixture.delay).await {
            return portal;
        }
        if path != "3/t/tam" {
            return StatusCode::NOT_FOUND.into_response();
        }
        format!(
            "{{\"name\":\"tam\",\"vers\":\"0.1.0\",\"deps\":[],\"cksum\":\"{}\",\"features\":{{}},\"yanked\":false}}\n",
            fixture.listed_cksum
        )
        .into_response()
    }
    async fn download(State(fixture): State<Arc<Fixture>>) -> axum::response::Response {
        fixture.crate_hits.fetch_add(1, Ordering::SeqCst);
        if let Some(portal) = fixture.answer_after(fixture.delay).await {
            return portal;
        }
        fixture.served.into_response()
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let state = Arc::new(Fixture {
        base,
        index_hits: AtomicUsize::new(0),
        crate_hits: AtomicUsize::new(0),
        missing_hits: AtomicUsize::new(0),
        config_hits: AtomicUsize::new(0),
        portal: AtomicBool::new(false),
        stalled: AtomicBool::new(false),
        served,
        listed_cksum: hex::encode(sha2::Sha256::digest(listed)),
        delay,
        config_delay,
    });
    let app = axum::Router::new()
        .route("/index/config.json", axum::routing::get(config))
        .route("/index/{*path}", axum::routing::get(index))
        .route("/files/tam-0.1.0.crate", axum::routing::get(download))
        .with_state(Arc::clone(&state));
    tokio::spawn(async move { axum::serve(listener, app).await });
    state
}

pub(crate) async fn a_crate_whose_bytes_do_not_match_the_index_is_refused_and_not_cached() {
    let upstream = fixture(b"tampered bytes", b"the real crate", Duration::ZERO).await;
    let mirror = start_mirror_on(Backend::RedisS3, &format!("{}/index/", upstream.base), &[]).await;
    for _ in 0..2 {
        let response = mirror
            .client
            .get(mirror.url("/mirror/dl/tam/0.1.0/download"))
            .send()
            .await
            .unwrap();
        let (status, body) = read_json(response).await;
        assert_error(
            status,
            &body,
            StatusCode::BAD_GATEWAY,
            "checksum that does not match its index",
        );
    }
    assert_eq!(
        upstream.crate_hits.load(Ordering::SeqCst),
        2,
        "refused bytes are not cached"
    );
    assert!(mirror.blobs.list("mirror/crates").await.unwrap().is_empty());
    assert_eq!(
        mirror
            .metric("ktra_mirror_upstream_errors_total{kind=\"crate\",error=\"checksum\"}")
            .await,
        2.0
    );
}

pub(crate) async fn concurrent_requests_for_an_uncached_crate_make_one_upstream_fetch() {
    const REQUESTS: usize = 16;
    let bytes: &'static [u8] = b"the real crate";
    let upstream = fixture(bytes, bytes, Duration::from_millis(300)).await;
    let mirror = start_mirror_on(Backend::RedisS3, &format!("{}/index/", upstream.base), &[]).await;
    let mirror = Arc::new(mirror);
    let requests = (0..REQUESTS).map(|index| {
        let mirror = Arc::clone(&mirror);
        // Half through Ktra's route: both share one cache and one fetch.
        let path = if index % 2 == 0 {
            "/mirror/dl/tam/0.1.0/download"
        } else {
            "/ktra/api/v1/mirror/tam/0.1.0/download"
        };
        tokio::spawn(async move {
            let response = mirror.client.get(mirror.url(path)).send().await.unwrap();
            (response.status(), response.bytes().await.unwrap())
        })
    });
    for answer in futures::future::join_all(requests).await {
        let (status, body) = answer.unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body.as_ref(), bytes);
    }
    assert_eq!(
        upstream.crate_hits.load(Ordering::SeqCst),
        1,
        "one upstream fetch"
    );
    assert_eq!(
        upstream.index_hits.load(Ordering::SeqCst),
        1,
        "one index fetch"
    );
    // Later requests are cache hits.
    let again = mirror
        .client
        .get(mirror.url("/mirror/dl/tam/0.1.0/download"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.bytes().await.unwrap().as_ref(), bytes);
    assert_eq!(upstream.crate_hits.load(Ordering::SeqCst), 1);
    assert_eq!(
        mirror.blobs.list("mirror/crates").await.unwrap(),
        ["mirror/crates/tam/tam-0.1.0.crate"]
    );
    assert_eq!(
        mirror
            .metric(&format!(
                "{CACHE_REQUESTS}{{kind=\"crate\",result=\"hit\"}}"
            ))
            .await,
        1.0
    );
}

pub(crate) async fn index_files_revalidate_and_missing_crates_are_remembered() {
    let upstream = fixture(b"x", b"x", Duration::ZERO).await;
    let mirror = start_mirror(&format!("{}/index/", upstream.base), &[]).await;
    let first = mirror
        .client
        .get(mirror.url("/mirror/index/3/t/tam"))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let etag = first.headers()["etag"].clone();
    assert!(first.headers().contains_key("last-modified"));
    assert!(first.text().await.unwrap().contains("\"tam\""));
    let revalidation = mirror
        .client
        .get(mirror.url("/mirror/index/3/t/tam"))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(revalidation.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(
        upstream.index_hits.load(Ordering::SeqCst),
        1,
        "fresh copies are served"
    );

    for _ in 0..2 {
        let (status, body) = mirror.get("/mirror/index/ot/he/other").await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "no index file");
    }
    assert_eq!(
        upstream.missing_hits.load(Ordering::SeqCst),
        1,
        "404s are remembered"
    );

    let config = mirror
        .client
        .get(mirror.url("/mirror/index/config.json"))
        .send()
        .await
        .unwrap();
    let config: serde_json::Value = config.json().await.unwrap();
    assert_eq!(config["dl"], format!("{}/mirror/dl", mirror.base));
}

pub(crate) async fn an_upstream_that_is_down_or_slow_gives_502_or_504() {
    let down = start_mirror(&closed_port_url().await, &[]).await;
    let (status, body) = down.get("/mirror/dl/tam/0.1.0/download").await;
    assert_error(
        status,
        &body,
        StatusCode::BAD_GATEWAY,
        "could not be reached",
    );

    let slow_upstream = fixture(b"x", b"x", Duration::from_secs(3)).await;
    let slow = start_mirror(
        &format!("{}/index/", slow_upstream.base),
        &[("KTRA_MIRROR_UPSTREAM_TIMEOUT_SECS", "1")],
    )
    .await;
    for path in ["/mirror/index/3/t/tam", "/mirror/dl/tam/0.1.0/download"] {
        let (status, body) = slow.get(path).await;
        assert_error(
            status,
            &body,
            StatusCode::GATEWAY_TIMEOUT,
            "did not answer in time",
        );
    }
    assert!(
        slow.metric("ktra_mirror_upstream_errors_total{kind=\"index\",error=\"timeout\"}")
            .await
            >= 1.0
    );
}

pub(crate) async fn mirror_routes_need_a_token_in_a_private_registry() {
    let work = tempfile::tempdir().unwrap();
    let upstream = TestApp::start_on(Backend::Embedded, &[]).await;
    publish_upstream_crates(&upstream, work.path()).await;
    let mirror = start_mirror(
        &format!("{}/index/", upstream.base),
        &[("KTRA_REGISTRY_AUTH_REQUIRED", "true")],
    )
    .await;
    let token = mirror.create_user("alice").await;
    for path in [
        "/mirror/index/config.json",
        "/mirror/index/3/t/tam",
        "/mirror/dl/tam/0.1.0/download",
        "/ktra/api/v1/mirror/tam/0.1.0/download",
    ] {
        let (status, body) = mirror.get(path).await;
        assert_error(
            status,
            &body,
            StatusCode::UNAUTHORIZED,
            "requires authentication",
        );
    }
    let (status, body) = mirror
        .call(
            reqwest::Method::GET,
            "/mirror/index/config.json",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["auth-required"], true);

    // cargo sends the mirror registry's token when crates.io is replaced by it.
    let project = consumer(work.path(), "unused");
    std::fs::write(
        project.join(".cargo/config.toml"),
        format!(
            "[registries.ktra-mirror]\nindex = \"sparse+{}/mirror/index/\"\n\
             credential-provider = \"cargo:token\"\n\
             [source.crates-io]\nreplace-with = \"ktra-mirror\"\n",
            mirror.base
        ),
    )
    .unwrap();
    let home = CargoHome::new(&[]);
    let refused = home.output(&project, &["generate-lockfile"], None).await;
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "no token, no crates: {stderr}");
    assert!(stderr.contains("token"), "{stderr}");
    home.login(&project, "ktra-mirror", &token).await;
    let output = home.ok(&project, &["run", "-q"]).await;
    assert!(output.contains("value=3"), "{output}");
}

pub(crate) async fn replicas_share_the_cache_and_find_versions_published_since() {
    let work = tempfile::tempdir().unwrap();
    let upstream = TestApp::start_on(Backend::Embedded, &[]).await;
    let publisher = publish_upstream_crates(&upstream, work.path()).await;
    let first = start_mirror_on(Backend::RedisS3, &format!("{}/index/", upstream.base), &[]).await;
    let second = first.replica().await;
    let get = |app: &TestApp, path: &str| {
        let request = app.client.get(app.url(path));
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.bytes().await.unwrap())
        }
    };
    let (status, fetched) = get(&first, "/mirror/dl/ab/0.1.0/download").await;
    assert_eq!(status, StatusCode::OK);
    // The other replica reads the same bucket: no upstream request.
    let (status, cached) = get(&second, "/mirror/dl/ab/0.1.0/download").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cached, fetched);
    let (status, _) = get(&second, "/mirror/index/2/ab").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        second
            .metric(&format!(
                "{CACHE_REQUESTS}{{kind=\"index\",result=\"hit\"}}"
            ))
            .await,
        1.0
    );
    assert_eq!(
        second
            .metric("ktra_mirror_upstream_request_duration_seconds_count")
            .await,
        0.0
    );
    assert_eq!(upstream_downloads(&upstream).await, 1.0);

    // A version published after the index file was cached (and still fresh) is found: the
    // download refreshes the index once when it does not list the version.
    let ab = package(
        work.path(),
        "ab2",
        &library_manifest("ab", "0.2.0", ""),
        &[("src/lib.rs", "pub fn value() -> u32 { 20 }\n")],
    );
    publisher.publish(&ab, "up").await;
    // Only a cached copy older than the mirror's refresh floor (3 s) is refreshed.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let (status, _) = get(&second, "/mirror/dl/ab/0.2.0/download").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(upstream_downloads(&upstream).await, 2.0);
    let (status, body) = get(&second, "/mirror/dl/ab/0.3.0/download").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body:?}");
}

pub(crate) async fn a_private_upstream_is_read_with_the_configured_token() {
    let work = tempfile::tempdir().unwrap();
    let upstream = TestApp::start_on(
        Backend::Embedded,
        &[("KTRA_REGISTRY_AUTH_REQUIRED", "true")],
    )
    .await;
    let token = upstream.create_user("alice").await;
    publish_upstream_crates_as(&upstream, work.path(), &token).await;
    let upstream_index = format!("{}/index/", upstream.base);

    let without = start_mirror(&upstream_index, &[]).await;
    let (status, body) = without.get("/mirror/index/2/ab").await;
    assert_error(status, &body, StatusCode::BAD_GATEWAY, "failed to serve");

    let with = start_mirror(&upstream_index, &[("KTRA_MIRROR_UPSTREAM_TOKEN", &token)]).await;
    let project = consumer(work.path(), &format!("{}/mirror/index/", with.base));
    let output = CargoHome::new(&[]).ok(&project, &["run", "-q"]).await;
    assert!(output.contains("value=3"), "{output}");
    assert_eq!(upstream_downloads(&upstream).await, 2.0);
}

pub(crate) async fn a_captive_portal_page_never_replaces_cached_index_files() {
    let upstream = fixture(b"the real crate", b"the real crate", Duration::ZERO).await;
    let upstream_index = format!("{}/index/", upstream.base);
    // Freshness 0: every read asks the upstream.
    let mirror = start_mirror(&upstream_index, &[("KTRA_MIRROR_FRESHNESS_SECS", "0")]).await;
    let read = |path: &'static str| {
        let request = mirror.client.get(mirror.url(path));
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.text().await.unwrap())
        }
    };
    let (status, good) = read("/mirror/index/3/t/tam").await;
    assert_eq!(status, StatusCode::OK);
    assert!(good.contains("\"tam\""), "{good}");

    upstream.portal.store(true, Ordering::SeqCst);
    let (status, body) = read("/mirror/index/3/t/tam").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, good, "the cached copy is served, not the portal page");
    assert!(
        mirror
            .metric(&format!(
                "{CACHE_REQUESTS}{{kind=\"index\",result=\"stale\"}}"
            ))
            .await
            >= 1.0
    );
    assert!(
        mirror
            .metric("ktra_mirror_upstream_errors_total{kind=\"index\",error=\"bad_answer\"}")
            .await
            >= 1.0
    );
    // Nothing cached: 502, not the portal page as an index file.
    let (status, body) = mirror.get("/mirror/index/3/n/new").await;
    assert_error(status, &body, StatusCode::BAD_GATEWAY, "failed to serve");

    // A portal's config.json is not cached either: once the portal is gone, downloads work
    // at once instead of after KTRA_MIRROR_FRESHNESS_SECS.
    upstream.portal.store(false, Ordering::SeqCst);
    let fresh = start_mirror(&upstream_index, &[]).await;
    let (status, _) = fresh.get("/mirror/index/3/t/tam").await;
    assert_eq!(status, StatusCode::OK);
    upstream.portal.store(true, Ordering::SeqCst);
    let (status, body) = fresh.get("/mirror/dl/tam/0.1.0/download").await;
    assert_error(status, &body, StatusCode::BAD_GATEWAY, "config.json");
    upstream.portal.store(false, Ordering::SeqCst);
    let response = fresh
        .client
        .get(fresh.url("/mirror/dl/tam/0.1.0/download"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.bytes().await.unwrap().as_ref(), b"the real crate");
}

pub(crate) async fn downloads_of_an_unknown_crate_ask_the_upstream_once_and_store_nothing() {
    let upstream = fixture(b"x", b"x", Duration::ZERO).await;
    let mirror = start_mirror_on(Backend::RedisS3, &format!("{}/index/", upstream.base), &[]).await;
    for attempt in 0..3 {
        if attempt > 0 {
            // Older than a second: the cached index's age no longer reads as 0.
            tokio::time::sleep(Duration::from_millis(1100)).await;
        }
        for path in [
            "/mirror/dl/nope/1.0.0/download",
            "/ktra/api/v1/mirror/nope/1.0.0/download",
            "/mirror/index/no/pe/nope",
        ] {
            let (status, body) = mirror.get(path).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        }
    }
    assert_eq!(
        upstream.missing_hits.load(Ordering::SeqCst),
        1,
        "the 404 is remembered for KTRA_MIRROR_NOT_FOUND_SECS"
    );
    assert_eq!(
        mirror.blobs.list("mirror/index").await.unwrap(),
        Vec::<String>::new(),
        "names the upstream does not have are not written to the bucket"
    );
}

pub(crate) async fn a_fetch_has_one_deadline_and_keeps_its_error_kind() {
    // Each upstream request is within KTRA_MIRROR_UPSTREAM_TIMEOUT_SECS, but the index file
    // and the download together take longer than the request may: 504 from the mirror, not
    // 408 from the request's time limit.
    let sluggish = fixture(b"x", b"x", Duration::from_millis(600)).await;
    let mirror = start_mirror(
        &format!("{}/index/", sluggish.base),
        &[
            ("KTRA_HTTP_REQUEST_TIMEOUT_SECS", "1"),
            ("KTRA_MIRROR_UPSTREAM_TIMEOUT_SECS", "1"),
        ],
    )
    .await;
    let (status, body) = mirror.get("/mirror/dl/tam/0.1.0/download").await;
    assert_error(
        status,
        &body,
        StatusCode::GATEWAY_TIMEOUT,
        "did not answer in time",
    );

    // A config.json that does not come in time is a timeout, not an unusable file.
    let slow_config = fixture_with(b"x", b"x", Duration::ZERO, Duration::from_secs(3)).await;
    let mirror = start_mirror(
        &format!("{}/index/", slow_config.base),
        &[("KTRA_MIRROR_UPSTREAM_TIMEOUT_SECS", "1")],
    )
    .await;
    let (status, body) = mirror.get("/mirror/dl/tam/0.1.0/download").await;
    assert_error(
        status,
        &body,
        StatusCode::GATEWAY_TIMEOUT,
        "did not answer in time for the index file `config.json`",
    );
    assert_eq!(slow_config.config_hits.load(Ordering::SeqCst), 1);
}

pub(crate) async fn after_an_upstream_failure_stale_copies_are_served_at_once() {
    let upstream = fixture(b"x", b"x", Duration::ZERO).await;
    let mirror = start_mirror(
        &format!("{}/index/", upstream.base),
        &[
            ("KTRA_MIRROR_FRESHNESS_SECS", "0"),
            ("KTRA_MIRROR_UPSTREAM_TIMEOUT_SECS", "1"),
        ],
    )
    .await;
    let read = || {
        let request = mirror.client.get(mirror.url("/mirror/index/3/t/tam"));
        async move {
            let started = std::time::Instant::now();
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            assert!(response.text().await.unwrap().contains("\"tam\""));
            started.elapsed()
        }
    };
    read().await;
    upstream.stalled.store(true, Ordering::SeqCst);
    // The first stale read waits for the upstream's timeout.
    assert!(read().await >= Duration::from_millis(900));
    let asked = upstream.index_hits.load(Ordering::SeqCst);
    assert_eq!(asked, 2);
    // Within the backoff, the next ones do not ask.
    for _ in 0..3 {
        let took = read().await;
        assert!(took < Duration::from_millis(500), "took {took:?}");
    }
    assert_eq!(upstream.index_hits.load(Ordering::SeqCst), asked);
    assert_eq!(
        mirror
            .metric(&format!(
                "{CACHE_REQUESTS}{{kind=\"index\",result=\"stale\"}}"
            ))
            .await,
        4.0
    );
    assert_eq!(
        mirror
            .metric("ktra_mirror_upstream_errors_total{kind=\"index\",error=\"timeout\"}")
            .await,
        1.0
    );
}

macro_rules! tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                super::$name().await;
            }
        )*
    };
}

mod run {
    tests!(
        cargo_builds_through_the_mirror_and_from_its_cache_once_the_upstream_is_gone,
        prefetch_fills_the_cache_for_a_build_after_the_upstream_is_gone,
        allow_and_deny_lists_refuse_what_they_exclude,
        a_crate_whose_bytes_do_not_match_the_index_is_refused_and_not_cached,
        concurrent_requests_for_an_uncached_crate_make_one_upstream_fetch,
        index_files_revalidate_and_missing_crates_are_remembered,
        an_upstream_that_is_down_or_slow_gives_502_or_504,
        mirror_routes_need_a_token_in_a_private_registry,
        replicas_share_the_cache_and_find_versions_published_since,
        a_private_upstream_is_read_with_the_configured_token,
        a_captive_portal_page_never_replaces_cached_index_files,
        downloads_of_an_unknown_crate_ask_the_upstream_once_and_store_nothing,
        a_fetch_has_one_deadline_and_keeps_its_error_kind,
        after_an_upstream_failure_stale_copies_are_served_at_once,
    );
}
