//! Several API replicas over one Redis and one bucket behave as one registry, and outages of
//! Redis or S3 answer 503, never 500, and lose nothing that was acknowledged.

use ktra_core::name::CrateId;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use ktra_testing::fixtures::CrateFixture;
use reqwest::StatusCode;
use tokio::task::JoinSet;

use crate::harness::{Backend, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_act_as_one_registry() {
    let first = Arc::new(TestApp::start_on(Backend::RedisS3, &[]).await);
    let second = Arc::new(first.replica().await);
    let token = Arc::new(first.create_user("alice").await);
    let mut tasks = JoinSet::new();
    let mut submit = |app: &Arc<TestApp>, fixture: CrateFixture| {
        let app = Arc::clone(app);
        let token = Arc::clone(&token);
        tasks.spawn(async move {
            let (status, body) = app.publish(Some(&token), fixture.body()).await;
            (fixture.name, fixture.version, status, body)
        });
    };
    for index in 0..60 {
        let app = if index % 2 == 0 { &first } else { &second };
        // Different crates, versions of one crate, and the same version from both at once.
        submit(
            app,
            CrateFixture::new(&format!("replicated{index}"), "1.0.0"),
        );
        submit(app, CrateFixture::new("together", &format!("1.0.{index}")));
        if index < 20 {
            submit(
                &first,
                CrateFixture::new("contested", &format!("2.0.{index}")),
            );
            // Another crate file: the same file again would be a retry, which succeeds.
            submit(
                &second,
                CrateFixture::new("contested", &format!("2.0.{index}")).with_payload(1),
            );
        }
    }
    let mut accepted: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut refused = 0;
    while let Some(result) = tasks.join_next().await {
        let (name, version, status, body) = result.unwrap();
        match status {
            StatusCode::OK => {
                assert!(accepted.entry(name).or_default().insert(version));
            }
            StatusCode::BAD_REQUEST if body.to_string().contains("already uploaded") => {
                refused += 1
            }
            other => panic!("{name}@{version}: {other} {body}"),
        }
    }
    assert_eq!(
        accepted["contested"].len(),
        20,
        "one of each contested pair wins"
    );
    assert_eq!(refused, 20, "the other of each pair is refused");
    assert_eq!(accepted["together"].len(), 60);
    let total: usize = accepted.values().map(BTreeSet::len).sum();
    assert_eq!(
        first.blob_keys().await.len(),
        total,
        "refused publishes left files behind"
    );
    // Both replicas serve the same state.
    first.assert_intact(&accepted).await;
    second.assert_intact(&accepted).await;
    let from_second = second.index_lines("together").await.unwrap();
    assert_eq!(first.index_lines("together").await.unwrap(), from_second);
}

/// Publishes from several clients while `outage` runs; returns what was acknowledged, and
/// asserts that every failure was a 503 in cargo's format.
async fn burst_through_outage(
    app: &Arc<TestApp>,
    token: &Arc<String>,
    outage: impl std::future::Future<Output = ()>,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut tasks = JoinSet::new();
    for client in 0..6 {
        let app = Arc::clone(app);
        let token = Arc::clone(token);
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
    outage.await;
    let mut accepted: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
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
    accepted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_restart_mid_burst_answers_503_and_loses_nothing() {
    let app = Arc::new(TestApp::start_on(Backend::RedisS3, &[]).await);
    let token = Arc::new(app.create_user("alice").await);
    let servers = app.servers.clone().unwrap();
    let accepted = burst_through_outage(&app, &token, async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        servers.redis.kill();
        tokio::time::sleep(Duration::from_millis(800)).await;
        servers.redis.restart();
    })
    .await;
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK, "readiness recovers");
    app.assert_intact(&accepted).await;
    // S3 stayed up, so every refused publish deleted its file again.
    let total: usize = accepted.values().map(BTreeSet::len).sum();
    assert_eq!(app.blob_keys().await.len(), total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_restart_mid_burst_answers_503_and_loses_nothing() {
    let app = Arc::new(TestApp::start_on(Backend::RedisS3, &[]).await);
    let token = Arc::new(app.create_user("alice").await);
    let servers = app.servers.clone().unwrap();
    let accepted = burst_through_outage(&app, &token, async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        servers.s3.kill();
        tokio::time::sleep(Duration::from_millis(800)).await;
        servers.s3.restart();
    })
    .await;
    app.assert_intact(&accepted).await;
    // Refused publishes left no version behind; their files, if any, are orphans no version
    // names.
    for key in app.blob_keys().await {
        let crate_dir = key.split('/').nth(1).unwrap().to_owned();
        assert!(accepted.contains_key(&crate_dir) || app.index_lines(&crate_dir).await.is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_replica_reports_the_git_index_lag_from_the_store() {
    // No indexer: the change stays unacknowledged until the test acknowledges it.
    let first = TestApp::start_on(Backend::RedisS3, &[]).await;
    let second = first.replica().await;
    let token = first.create_user("alice").await;
    assert_eq!(second.metric("ktra_index_unacknowledged_crates").await, 0.0);
    let (status, body) = first
        .publish(Some(&token), CrateFixture::new("lagging", "1.0.0").body())
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // The replica that served nothing of it reports it at once.
    assert_eq!(second.metric("ktra_index_unacknowledged_crates").await, 1.0);
    let age = second
        .metric("ktra_index_unacknowledged_oldest_age_seconds")
        .await;
    assert!((1.0..30.0).contains(&age), "{age}");
    let file = first
        .store
        .index_file(&CrateId::new("lagging").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(
        first
            .store
            .acknowledge(&CrateId::new("lagging").unwrap(), file.revision)
            .await
            .unwrap()
    );
    assert_eq!(second.metric("ktra_index_unacknowledged_crates").await, 0.0);
    assert_eq!(
        second
            .metric("ktra_index_unacknowledged_oldest_age_seconds")
            .await,
        0.0
    );
}
