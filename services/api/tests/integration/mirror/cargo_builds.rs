//! The real cargo building through the mirror: from its cache once the upstream is gone, after
//! a prefetch, refused by allow and deny lists, and with tokens on either side.

use ktra_testing::cargo::CargoHome;
use reqwest::StatusCode;

use super::{
    cache_requests, consumer, index_of, point_crates_io_at, publish_upstream_crates_as,
    start_mirror, upstream_downloads, upstream_errors, upstream_with_crates,
};
use crate::harness::{PRIVATE, TestApp, assert_forbidden, assert_refused};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cargo_builds_through_the_mirror_and_from_its_cache_once_the_upstream_is_gone() {
    let (work, upstream, _) = upstream_with_crates().await;
    // Freshness 0: every index read revalidates with the upstream, so the stale path is
    // taken as soon as the upstream is gone.
    let mirror = start_mirror(
        &index_of(&upstream.base),
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
    assert_eq!(cache_requests(&mirror, "crate", "miss").await, 2.0);
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
    assert!(cache_requests(&mirror, "index", "revalidated").await >= 2.0);
    assert_eq!(cache_requests(&mirror, "crate", "hit").await, 2.0);

    upstream.stop().await;

    // The upstream is gone: a third clean CARGO_HOME and target still build, from the cache.
    let third = CargoHome::new(&[]);
    let output = third.ok(&project, &["run", "-q"]).await;
    assert!(output.contains("value=3"), "{output}");
    assert!(
        cache_requests(&mirror, "index", "stale").await >= 2.0,
        "stale index files are counted"
    );
    assert!(upstream_errors(&mirror, "index", "unreachable").await >= 1.0);

    // What was never cached fails in cargo's format, never as crate bytes.
    let reply = mirror.get("/mirror/index/ne/ve/never").await;
    assert_refused(&reply, StatusCode::BAD_GATEWAY, "could not be reached");
    for path in [
        "/mirror/dl/never/1.0.0/download",
        "/ktra/api/v1/mirror/never/1.0.0/download",
    ] {
        let reply = mirror.get(path).await;
        assert_refused(&reply, StatusCode::BAD_GATEWAY, "could not be reached");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prefetch_fills_the_cache_for_a_build_after_the_upstream_is_gone() {
    let (work, upstream, _) = upstream_with_crates().await;
    let upstream_index = index_of(&upstream.base);
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
    assert_eq!(cache_requests(&mirror, "crate", "hit").await, 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn allow_and_deny_lists_refuse_what_they_exclude() {
    let (work, upstream, _) = upstream_with_crates().await;
    let mirror = start_mirror(
        &index_of(&upstream.base),
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
        let reply = mirror.get(path).await;
        assert_forbidden(&reply, "may not be pulled through this mirror");
    }
    let (status, _) = mirror.get_bytes("/mirror/index/mi/d-/mid-crate").await;
    assert_eq!(status, StatusCode::OK);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mirror_routes_need_a_token_in_a_private_registry() {
    let (work, upstream, _) = upstream_with_crates().await;
    let mirror = start_mirror(&index_of(&upstream.base), PRIVATE).await;
    let token = mirror.create_user("alice").await;
    for path in [
        "/mirror/index/config.json",
        "/mirror/index/3/t/tam",
        "/mirror/dl/tam/0.1.0/download",
        "/ktra/api/v1/mirror/tam/0.1.0/download",
    ] {
        let reply = mirror.get(path).await;
        assert_refused(&reply, StatusCode::UNAUTHORIZED, "requires authentication");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_private_upstream_is_read_with_the_configured_token() {
    let work = tempfile::tempdir().unwrap();
    let upstream = TestApp::embedded(PRIVATE).await;
    let token = upstream.create_user("alice").await;
    publish_upstream_crates_as(&upstream, work.path(), &token).await;
    let upstream_index = index_of(&upstream.base);

    let without = start_mirror(&upstream_index, &[]).await;
    let reply = without.get("/mirror/index/2/ab").await;
    assert_refused(&reply, StatusCode::BAD_GATEWAY, "failed to serve");

    let with = start_mirror(&upstream_index, &[("KTRA_MIRROR_UPSTREAM_TOKEN", &token)]).await;
    let project = consumer(work.path(), &format!("{}/mirror/index/", with.base));
    let output = CargoHome::new(&[]).ok(&project, &["run", "-q"]).await;
    assert!(output.contains("value=3"), "{output}");
    assert_eq!(upstream_downloads(&upstream).await, 2.0);
}
