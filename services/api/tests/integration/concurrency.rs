//! Many publishes at once: no lost entry, never two lines for one version.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ktra_testing::fixtures::CrateFixture;
use reqwest::StatusCode;
use tokio::task::JoinSet;

use crate::harness::{Backend, TestApp};

pub(crate) async fn concurrent_publishes_keep_one_line_per_accepted_version(backend: Backend) {
    let app = Arc::new(TestApp::start_on(backend, &[]).await);
    let token = Arc::new(app.create_user("alice").await);
    let mut work = Vec::new();
    // Different crates.
    for index in 0..24 {
        work.push(CrateFixture::new(&format!("solo{index}"), "1.0.0"));
    }
    // Different versions of one crate, including its first version.
    for patch in 0..24 {
        work.push(CrateFixture::new("shared", &format!("1.0.{patch}")));
    }
    // The same version many times, some with build metadata, each a different crate file (the
    // same file again would be a retry, which succeeds).
    for attempt in 0..12 {
        let version = if attempt % 2 == 0 { "2.0.0" } else { "2.0.0+b" };
        work.push(CrateFixture::new("raced", version).with_payload(attempt + 1));
    }
    let mut tasks = JoinSet::new();
    for fixture in work {
        let app = Arc::clone(&app);
        let token = Arc::clone(&token);
        tasks.spawn(async move {
            let (status, body) = app.publish(Some(&token), fixture.body()).await;
            (fixture.name, fixture.version, status, body)
        });
    }
    let mut accepted: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut raced_refusals = 0;
    while let Some(result) = tasks.join_next().await {
        let (name, version, status, body) = result.unwrap();
        match status {
            StatusCode::OK => {
                assert!(accepted.entry(name).or_default().insert(version));
            }
            StatusCode::BAD_REQUEST if name == "raced" => {
                assert!(body.to_string().contains("already uploaded"), "{body}");
                raced_refusals += 1;
            }
            other => panic!("{name}@{version}: {other} {body}"),
        }
    }
    assert_eq!(accepted["raced"].len(), 1);
    assert_eq!(raced_refusals, 11);
    assert_eq!(accepted["shared"].len(), 24);
    assert_eq!(accepted.len(), 26);

    // One line per version, each downloading with its checksum, and no line for a refused
    // publish.
    app.assert_intact(&accepted).await;
    let mut total = 0;
    for (name, versions) in &accepted {
        let listed: BTreeSet<String> = app
            .index_lines(name)
            .await
            .unwrap()
            .iter()
            .map(|line| line["vers"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(&listed, versions, "{name}");
        total += versions.len();
    }
    // Refused publishes left no crate file behind.
    assert_eq!(app.blob_keys().await.len(), total);
}

crate::on_every_backend!(concurrent_publishes_keep_one_line_per_accepted_version);
