//! Crashes and outages: after each, the remote's index equals the store's state, with every
//! accepted version exactly once and the yanked flags right.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ktra_testing::fixtures::CrateFixture;
use ktra_testing::git::{branch_files, commit_count, push_foreign_commit};
use ktra_testing::poll::poll_until_true;
use ktra_testing::registry::{Registry, RegistryBuilder};
use ktra_testing::remotes::{ServedRepo, set_push_delay};
use reqwest::StatusCode;
use tokio::task::JoinSet;

use crate::remotes::publish_many;

/// The versions a burst publishes: `clients` clients, each publishing `per_client` crates,
/// plus versions of one shared crate.
fn burst_work(clients: usize, per_client: usize) -> Vec<Vec<CrateFixture>> {
    (0..clients)
        .map(|client| {
            (0..per_client)
                .map(|index| {
                    if index % 4 == 0 {
                        CrateFixture::new("shared", &format!("{client}.{index}.0"))
                    } else {
                        CrateFixture::new(&format!("burst{client}x{index}"), "1.0.0")
                    }
                })
                .collect()
        })
        .collect()
}

/// Runs a burst; calls `midway` once `trigger` publishes got an answer. Returns the names of
/// the crates published and the accepted (name, version) pairs.
async fn burst(
    registry: &Arc<Registry>,
    token: &str,
    work: Vec<Vec<CrateFixture>>,
    trigger: usize,
    midway: impl FnOnce() + Send + 'static,
) -> (Vec<String>, BTreeSet<(String, String)>) {
    let answered = Arc::new(AtomicUsize::new(0));
    let names: BTreeSet<String> = work
        .iter()
        .flatten()
        .map(|fixture| fixture.name.clone())
        .collect();
    let mut tasks = JoinSet::new();
    for fixtures in work {
        let registry = Arc::clone(registry);
        let token = token.to_owned();
        let answered = Arc::clone(&answered);
        tasks.spawn(async move {
            let mut accepted = Vec::new();
            for fixture in fixtures {
                // A request the API never answered (it was killed) is retried, as cargo's
                // user would; a version already taken then answers 400.
                for _ in 0..100 {
                    match registry.publish(&token, fixture.body()).await {
                        Some((StatusCode::OK, _)) => {
                            accepted.push((fixture.name.clone(), fixture.version.clone()));
                            break;
                        }
                        Some((StatusCode::BAD_REQUEST, body))
                            if body.to_string().contains("already uploaded") =>
                        {
                            accepted.push((fixture.name.clone(), fixture.version.clone()));
                            break;
                        }
                        Some((status, body)) if status.is_server_error() => {
                            panic!("{} answered {status}: {body}", fixture.name)
                        }
                        Some((status, body)) => panic!("{}: {status} {body}", fixture.name),
                        None => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
                answered.fetch_add(1, Ordering::SeqCst);
            }
            accepted
        });
    }
    let watcher = {
        let answered = Arc::clone(&answered);
        tokio::spawn(async move {
            while answered.load(Ordering::SeqCst) < trigger {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            midway();
        })
    };
    let mut accepted = BTreeSet::new();
    while let Some(result) = tasks.join_next().await {
        accepted.extend(result.expect("a publishing task panicked"));
    }
    watcher.await.expect("the midway action ran");
    (names.into_iter().collect(), accepted)
}

/// Counts the lines of an index file that are `version`.
fn lines_of_version(file: &str, version: &str) -> usize {
    let needle = format!("\"vers\":\"{version}\"");
    file.lines().filter(|line| line.contains(&needle)).count()
}

/// Asserts that every accepted version is in the remote exactly once.
fn assert_each_version_once(remote: &std::path::Path, accepted: &BTreeSet<(String, String)>) {
    let files = branch_files(remote, "main");
    for (name, version) in accepted {
        let path = ktra_core::index::index_path(name);
        let content = files
            .get(&path)
            .unwrap_or_else(|| panic!("{name} is missing from the remote"));
        let count = lines_of_version(content, version);
        assert_eq!(count, 1, "{name}@{version} appears {count} times");
    }
}

/// Starts a registry the tasks of a burst share; returns it with a publisher's token.
async fn start_shared(builder: RegistryBuilder) -> (Arc<Registry>, String) {
    let (registry, token) = builder.start_with_user("alice").await;
    (Arc::new(registry), token)
}

/// Waits until the registry's own remote equals the store, then asserts that every accepted
/// version is there exactly once.
async fn assert_burst_converged(
    registry: &Registry,
    names: &[String],
    accepted: &BTreeSet<(String, String)>,
) {
    registry
        .wait_remote_converged(names, Duration::from_secs(30))
        .await;
    assert_each_version_once(&registry.remote_path, accepted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn indexer_killed_mid_burst_converges() {
    let (registry, token) =
        start_shared(Registry::builder().env("KTRA_INDEXER_ACK_TIMEOUT_MS", "500")).await;
    let killer = Arc::clone(&registry);
    let (names, accepted) = burst(&registry, &token, burst_work(8, 10), 30, move || {
        killer.indexer().kill();
    })
    .await;
    assert_eq!(accepted.len(), 80);
    assert!(!registry.indexer().is_running());
    registry.indexer().start();
    assert_burst_converged(&registry, &names, &accepted).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_indexer_killed_while_moving_its_branch_starts_again() {
    let (registry, token) = Registry::builder().start_with_user("alice").await;
    let mut names = publish_many(&registry, &token, "before", 1).await;
    registry
        .wait_remote_converged(&names, Duration::from_secs(10))
        .await;
    registry.indexer().kill();
    // What git leaves when the process dies between taking a ref's lock and renaming it.
    let lock = registry.dir().join("index/repo.git/refs/heads/main.lock");
    std::fs::write(&lock, "").unwrap();
    registry.indexer().start();
    names.extend(publish_many(&registry, &token, "after", 2).await);
    registry
        .wait_remote_converged(&names, Duration::from_secs(20))
        .await;
    assert!(!lock.is_file(), "the stale lock was removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn api_killed_mid_stream_converges() {
    let (registry, token) = start_shared(Registry::builder()).await;
    let restarter = Arc::clone(&registry);
    let (names, accepted) = burst(&registry, &token, burst_work(6, 10), 20, move || {
        restarter.api.kill();
        restarter.api.start();
    })
    .await;
    assert_eq!(accepted.len(), 60);
    registry.wait_ready().await;
    assert_burst_converged(&registry, &names, &accepted).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_away_and_back_converges() {
    let served = ServedRepo::create();
    let remote = served.path.clone();
    let (daemon, url) = served.git_daemon();
    let (registry, token) = Registry::builder()
        .remote(&url)
        .env("KTRA_INDEXER_ACK_TIMEOUT_MS", "300")
        .start_with_user("alice")
        .await;
    let mut names = publish_many(&registry, &token, "before", 2).await;
    registry
        .wait_converged(&remote, &names, Duration::from_secs(10))
        .await;

    daemon.stop();
    names.extend(publish_many(&registry, &token, "during", 3).await);
    registry.set_yanked(&token, "before0", "1.0.0", true).await;
    let files = branch_files(&remote, "main");
    assert!(
        !files.contains_key("du/ri/during0"),
        "pushed while the remote was away"
    );

    daemon.restart();
    registry
        .wait_converged(&remote, &names, Duration::from_secs(20))
        .await;
    assert!(branch_files(&remote, "main")["be/fo/before0"].contains("\"yanked\":true"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_commits_are_overwritten_with_the_store_state() {
    let (registry, token) = Registry::builder()
        .env("KTRA_GIT_FETCH_INTERVAL_SECS", "1")
        .start_with_user("alice")
        .await;
    let mut names = publish_many(&registry, &token, "mine", 3).await;
    let work = tempfile::tempdir().unwrap();

    // Someone edits one crate file, deletes another and adds a README; the next publish
    // finds its push refused, fetches, and re-applies the store's state on top.
    push_foreign_commit(
        &registry.remote_path,
        work.path(),
        "mi/ne/mine0",
        Some("mi/ne/mine1"),
    );
    names.extend(publish_many(&registry, &token, "later", 1).await);
    registry
        .wait_remote_converged(&names, Duration::from_secs(10))
        .await;
    let files = branch_files(&registry.remote_path, "main");
    assert_eq!(
        files["README.md"], "an index\n",
        "files outside the index are left alone"
    );

    // With nothing to publish, the idle fetch notices the next foreign commit.
    let second = tempfile::tempdir().unwrap();
    push_foreign_commit(&registry.remote_path, second.path(), "la/te/later0", None);
    registry
        .wait_remote_converged(&names, Duration::from_secs(10))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_becomes_few_pushes() {
    // Over git:// with a remote that takes 100 ms per push, what arrives while a push is in
    // flight must ride the next one. (A local remote pushes in a few milliseconds, so how
    // much coalesces there depends on how fast the clients are.)
    let served = ServedRepo::create();
    let remote = served.path.clone();
    let (_daemon, url) = served.git_daemon();
    let (registry, token) = start_shared(Registry::builder().remote(&url)).await;
    // The indexer's first commit (config.json) is not part of the burst.
    registry
        .wait_converged(&remote, &[], Duration::from_secs(10))
        .await;
    set_push_delay(&remote, Duration::from_millis(100));
    let before = commit_count(&remote, "main");
    let (names, accepted) = burst(&registry, &token, burst_work(16, 16), 0, || {}).await;
    let publishes = accepted.len();
    registry
        .wait_converged(&remote, &names, Duration::from_secs(30))
        .await;
    let commits = commit_count(&remote, "main") - before;
    println!(
        "{publishes} publishes from 16 clients became {commits} commits ({:.1} publishes per commit)",
        publishes as f64 / commits as f64
    );
    assert_eq!(publishes, 256);
    assert!(
        commits * 4 <= publishes,
        "{commits} commits for {publishes} publishes"
    );
    assert_each_version_once(&remote, &accepted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_and_rebuild_from_the_store() {
    let (registry, token) = Registry::builder().start_with_user("alice").await;
    let names = publish_many(&registry, &token, "kept", 3).await;
    registry
        .wait_remote_converged(&names, Duration::from_secs(10))
        .await;
    // The embedded store is held by the running API; the admin commands run beside a stopped
    // API.
    registry.api.terminate();
    let (code, output) = registry.api_command(&["verify-index"]);
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("crates in the store: 3"), "{output}");

    let work = tempfile::tempdir().unwrap();
    push_foreign_commit(
        &registry.remote_path,
        work.path(),
        "st/ra/stray",
        Some("ke/pt/kept2"),
    );
    let (code, output) = registry.api_command(&["verify-index"]);
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("missing: ke/pt/kept2"), "{output}");
    assert!(output.contains("not in the store: st/ra/stray"), "{output}");

    let (code, output) = registry.api_command(&["rebuild-index"]);
    assert_eq!(code, 0, "{output}");
    let (code, output) = registry.api_command(&["verify-index"]);
    assert_eq!(code, 0, "{output}");
    registry.api.start();
    registry.wait_ready().await;
    registry
        .wait_remote_converged(&names, Duration::from_secs(10))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_indexer_on_the_same_clone_refuses_to_start() {
    let registry = Registry::start().await;
    let mut env = registry.env().to_vec();
    env.retain(|(name, _)| name != "KTRA_INDEXER_LISTEN");
    env.push((
        "KTRA_INDEXER_LISTEN".to_owned(),
        format!("127.0.0.1:{}", ktra_testing::process::free_port()),
    ));
    let output =
        std::process::Command::new(ktra_testing::process::workspace_binary("ktra-indexer"))
            .env_clear()
            .envs(env)
            .output()
            .expect("the indexer runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("another ktra-indexer holds"), "{stderr}");
    // The first one still works.
    let token = registry.create_user("alice").await;
    let names = publish_many(&registry, &token, "solo", 1).await;
    registry
        .wait_remote_converged(&names, Duration::from_secs(10))
        .await;
}

/// Runs `stop` (which stops one service with SIGTERM and returns how long it took to exit)
/// once 30 publishes of a burst were answered, then restarts nothing: `stop` does.
async fn burst_with_sigterm(
    registry: &Arc<Registry>,
    token: &str,
    stop: impl FnOnce(&Registry) -> Duration + Send + 'static,
) -> (Vec<String>, BTreeSet<(String, String)>, Duration) {
    let took = Arc::new(Mutex::new(None));
    let stopper = Arc::clone(registry);
    let recorded = Arc::clone(&took);
    let (names, accepted) = burst(registry, token, burst_work(8, 10), 30, move || {
        let elapsed = stop(&stopper);
        *recorded.lock().unwrap_or_else(PoisonError::into_inner) = Some(elapsed);
    })
    .await;
    let took = took
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .expect("the service was stopped");
    (names, accepted, took)
}

/// Asserts that every accepted version is in the sparse index once and downloads byte for
/// byte.
async fn assert_each_version_served(registry: &Registry, accepted: &BTreeSet<(String, String)>) {
    for (name, version) in accepted {
        let file = registry
            .sparse_file(&ktra_core::index::index_path(name))
            .await
            .unwrap_or_else(|| panic!("{name} is missing from the sparse index"));
        let count = lines_of_version(&file, version);
        assert_eq!(count, 1, "{name}@{version} appears {count} times");
        let download = registry
            .get(&format!("/dl/{name}/{version}/download"), None)
            .await;
        assert_eq!(download.status(), StatusCode::OK, "{name}@{version}");
        assert_eq!(
            download.bytes().await.expect("a body"),
            CrateFixture::new(name, version).crate_file(),
            "{name}@{version}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_to_the_api_mid_burst_finishes_what_it_answers() {
    let (registry, token) =
        start_shared(Registry::builder().env("KTRA_HTTP_REQUEST_TIMEOUT_SECS", "5")).await;
    let (names, accepted, took) = burst_with_sigterm(&registry, &token, |registry| {
        let took = registry.api.terminate();
        registry.api.start();
        took
    })
    .await;
    println!("the API exited {took:?} after SIGTERM");
    // The bound is the drain timeout (the request timeout, 5 s here).
    assert!(took < Duration::from_secs(6), "the API took {took:?}");
    let log = registry.api.log();
    assert!(log.contains("draining in-flight requests"), "{log}");
    assert!(!log.contains("did not finish in time"), "{log}");
    assert_eq!(accepted.len(), 80);
    registry.wait_ready().await;
    assert_each_version_served(&registry, &accepted).await;
    assert_burst_converged(&registry, &names, &accepted).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_to_the_indexer_mid_burst_pushes_and_exits() {
    let (registry, token) =
        start_shared(Registry::builder().env("KTRA_INDEXER_ACK_TIMEOUT_MS", "500")).await;
    let (names, accepted, took) = burst_with_sigterm(&registry, &token, |registry| {
        let took = registry.indexer().terminate();
        registry.indexer().start();
        took
    })
    .await;
    println!("the indexer exited {took:?} after SIGTERM");
    // The bound is the writer's grace period (20 s) for the push in flight.
    assert!(took < Duration::from_secs(21), "the indexer took {took:?}");
    let log = registry.indexer().log();
    assert!(!log.contains("did not finish in time"), "{log}");
    assert_eq!(accepted.len(), 80);
    assert_each_version_served(&registry, &accepted).await;
    assert_burst_converged(&registry, &names, &accepted).await;
}

/// Starts a registry whose publishes do not wait for the push and whose resender would only
/// look again in an hour, and publishes a burst of 96 versions.
async fn burst_without_waiting(
    builder: RegistryBuilder,
) -> (
    Arc<Registry>,
    String,
    Vec<String>,
    BTreeSet<(String, String)>,
) {
    let (registry, token) = start_shared(
        builder
            .env("KTRA_INDEXER_ACK_TIMEOUT_MS", "0")
            .env("KTRA_INDEXER_RESEND_INTERVAL_SECS", "3600"),
    )
    .await;
    let (names, accepted) = burst(&registry, &token, burst_work(8, 12), 0, || {}).await;
    assert_eq!(accepted.len(), 96);
    (registry, token, names, accepted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn changes_handed_over_without_waiting_all_reach_the_remote() {
    // Publishes answer before the push, and the resender would only look again in an hour:
    // everything on the remote came through the background hand-off, newest revision first.
    let (registry, token, names, accepted) = burst_without_waiting(Registry::builder()).await;
    registry
        .wait_remote_converged(&names, Duration::from_secs(20))
        .await;
    assert_each_version_once(&registry.remote_path, &accepted);

    registry.set_yanked(&token, "shared", "3.4.0", true).await;
    registry
        .wait_remote_converged(&names, Duration::from_secs(10))
        .await;
    let files = branch_files(&registry.remote_path, "main");
    let shared = &files[&ktra_core::index::index_path("shared")];
    assert!(
        shared
            .lines()
            .any(|line| line.contains("\"vers\":\"3.4.0\"") && line.contains("\"yanked\":true")),
        "{shared}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_hands_the_indexer_what_waits_to_be_handed_over() {
    // Slow pushes keep the hand-off's requests waiting, so changes gather in the API; it
    // stops right after the burst and is not restarted, and the resender would only look in
    // an hour: what reaches the remote was handed over at shutdown.
    let served = ServedRepo::create();
    let remote = served.path.clone();
    set_push_delay(&remote, Duration::from_millis(300));
    let (_daemon, url) = served.git_daemon();
    let (registry, _, _, accepted) = burst_without_waiting(Registry::builder().remote(&url)).await;
    let took = registry.api.terminate();
    assert!(took < Duration::from_secs(10), "the API took {took:?}");
    let missing = || {
        let files = branch_files(&remote, "main");
        accepted
            .iter()
            .filter(|(name, version)| {
                files
                    .get(&ktra_core::index::index_path(name))
                    .is_none_or(|file| lines_of_version(file, version) == 0)
            })
            .cloned()
            .collect::<Vec<_>>()
    };
    let arrived = poll_until_true(Duration::from_secs(30), async || missing().is_empty()).await;
    assert!(
        arrived,
        "never reached the remote: {:?}\n{}",
        missing(),
        registry.api.log_tail()
    );
    assert_each_version_once(&remote, &accepted);
}
