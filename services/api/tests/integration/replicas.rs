//! Several API replicas over one Redis and one bucket behave as one registry, and outages of
//! Redis or S3 answer 503, never 500, and lose nothing that was acknowledged.

use std::sync::Arc;
use std::time::Duration;

use ktra_core::name::CrateId;
use ktra_core::version::VersionId;
use ktra_testing::fixtures::CrateFixture;
use reqwest::StatusCode;
use tokio::task::JoinSet;

use crate::harness::{
    Accepted, Backend, SharedServers, TestApp, assert_ok, eventually, publish_at_once,
    version_count,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_act_as_one_registry() {
    let first = Arc::new(TestApp::start_on(Backend::RedisS3, &[]).await);
    let second = Arc::new(first.replica().await);
    let token = first.create_user("alice").await;
    let mut work = Vec::new();
    for index in 0..60 {
        let app = if index % 2 == 0 { &first } else { &second };
        // Different crates, versions of one crate, and the same version from both at once.
        let solo = CrateFixture::new(&format!("replicated{index}"), "1.0.0");
        work.push((Arc::clone(app), solo));
        let together = CrateFixture::new("together", &format!("1.0.{index}"));
        work.push((Arc::clone(app), together));
        if index < 20 {
            let contested = CrateFixture::new("contested", &format!("2.0.{index}"));
            work.push((Arc::clone(&first), contested));
            // Another crate file: the same file again would be a retry, which succeeds.
            let rival = CrateFixture::new("contested", &format!("2.0.{index}")).with_payload(1);
            work.push((Arc::clone(&second), rival));
        }
    }
    let (accepted, refused) = publish_at_once(&token, work).await;
    for (name, version, body) in &refused {
        let detail = body.to_string();
        assert!(
            detail.contains("already uploaded"),
            "{name}@{version}: {body}"
        );
    }
    assert_eq!(
        accepted["contested"].len(),
        20,
        "one of each contested pair wins"
    );
    assert_eq!(refused.len(), 20, "the other of each pair is refused");
    assert_eq!(accepted["together"].len(), 60);
    assert_eq!(
        first.blob_keys().await.len(),
        version_count(&accepted),
        "refused publishes left files behind"
    );
    // Both replicas serve the same state.
    first.assert_intact(&accepted).await;
    second.assert_intact(&accepted).await;
    let from_second = second.index_lines("together").await.unwrap();
    assert_eq!(first.index_lines("together").await.unwrap(), from_second);
}

/// Starts a service on Redis and S3 and publishes from several clients while `kill` stops one
/// of the servers, which `restart` brings back 800 ms later; returns the service and what it
/// acknowledged, and asserts that every failure was a 503 in cargo's format.
async fn burst_through_restart(
    kill: fn(&SharedServers),
    restart: fn(&SharedServers),
) -> (Arc<TestApp>, Accepted) {
    let app = Arc::new(TestApp::start_on(Backend::RedisS3, &[]).await);
    let token = Arc::new(app.create_user("alice").await);
    let servers = app.servers.clone().unwrap();
    let mut tasks = JoinSet::new();
    for client in 0..6 {
        let app = Arc::clone(&app);
        let token = Arc::clone(&token);
        tasks.spawn(async move {
            let mut results = Vec::new();
            for index in 0..40 {
                let fixture = CrateFixture::new(&format!("outage{client}x{index}"), "1.0.0");
                let (status, body) = app.publish(Some(&token), fixture.body()).await;
                results.push((fixture.name, fixture.version, status, body));
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
            results
        });
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    kill(&servers);
    tokio::time::sleep(Duration::from_millis(800)).await;
    restart(&servers);
    let mut accepted = Accepted::new();
    let mut unavailable = 0;
    while let Some(result) = tasks.join_next().await {
        for (name, version, status, body) in result.unwrap() {
            match status {
                StatusCode::OK => {
                    accepted.entry(name).or_default().insert(version);
                }
                StatusCode::SERVICE_UNAVAILABLE => {
                    assert!(
                        body["errors"][0]["detail"]
                            .as_str()
                            .is_some_and(|detail| !detail.contains("redis")),
                        "a 503 reveals nothing internal: {body}"
                    );
                    unavailable += 1;
                }
                other => panic!("{name}: {other} {body}"),
            }
        }
    }
    assert!(unavailable > 0, "the outage was never seen");
    assert!(!accepted.is_empty());
    (app, accepted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_restart_mid_burst_answers_503_and_loses_nothing() {
    let (app, accepted) = burst_through_restart(
        |servers| servers.redis.kill(),
        |servers| servers.redis.restart(),
    )
    .await;
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK, "readiness recovers");
    app.assert_intact(&accepted).await;
    // S3 stayed up, so a refused publish deleted its file again, unless the store could not yet
    // say whether the version was committed, or it had: then the file stays.
    assert!(app.blob_keys().await.len() >= version_count(&accepted));
    assert_extra_files_are_orphans(&app, &accepted).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_restart_mid_burst_answers_503_and_loses_nothing() {
    let (app, accepted) =
        burst_through_restart(|servers| servers.s3.kill(), |servers| servers.s3.restart()).await;
    app.assert_intact(&accepted).await;
    // Refused publishes left no version behind; their files, if any, are orphans no version
    // names.
    assert_extra_files_are_orphans(&app, &accepted).await;
}

/// Asserts every crate file belongs to an accepted publish, or is what a refused publish left:
/// an orphan no version names, or the file of a version that committed although its answer
/// failed (the store answered after the outage began; cargo's retry finds it published).
async fn assert_extra_files_are_orphans(app: &TestApp, accepted: &Accepted) {
    for key in app.blob_keys().await {
        let crate_dir = key.split('/').nth(1).unwrap().to_owned();
        if accepted.contains_key(&crate_dir) {
            continue;
        }
        let Some(lines) = app.index_lines(&crate_dir).await else {
            continue;
        };
        let krate = CrateId::new(&crate_dir).unwrap();
        let mut named = false;
        for line in &lines {
            let version = VersionId::parse(line["vers"].as_str().unwrap()).unwrap();
            let file = app.store.crate_file(&krate, &version).await.unwrap();
            named |= file.is_some_and(|file| file.blob_key == key);
        }
        assert!(named, "{key} is neither an orphan nor its version's file");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_replica_reports_the_git_index_lag_from_the_store() {
    // No indexer: the change stays unacknowledged until the test acknowledges it.
    let first = TestApp::start_on(Backend::RedisS3, &[]).await;
    let second = first.replica().await;
    let token = first.create_user("alice").await;
    assert_eq!(second.metric("ktra_index_unacknowledged_crates").await, 0.0);
    assert_ok(&first.publish_crate(&token, "lagging", "1.0.0").await);
    // The replica that served nothing of it reports it at once, with the age of the oldest
    // change by the store's clock: it passes a second.
    assert_eq!(second.metric("ktra_index_unacknowledged_crates").await, 1.0);
    let age = eventually("an age of a second", Duration::from_secs(10), || async {
        let age = second
            .metric("ktra_index_unacknowledged_oldest_age_seconds")
            .await;
        (age >= 1.0).then_some(age)
    })
    .await;
    assert!((1.0..30.0).contains(&age), "{age}");
    let file = first.stored_index_file("lagging").await;
    assert!(first.acknowledge("lagging", file.revision).await);
    assert_eq!(second.metric("ktra_index_unacknowledged_crates").await, 0.0);
    assert_eq!(
        second
            .metric("ktra_index_unacknowledged_oldest_age_seconds")
            .await,
        0.0
    );
}
