//! Many publishes at once: no lost entry, never two lines for one version.

use std::collections::BTreeSet;
use std::sync::Arc;

use ktra_testing::fixtures::CrateFixture;

use crate::harness::{Backend, TestApp, publish_at_once, version_count};

pub(crate) async fn concurrent_publishes_keep_one_line_per_accepted_version(backend: Backend) {
    let app = Arc::new(TestApp::start_on(backend, &[]).await);
    let token = app.create_user("alice").await;
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
    let work = work
        .into_iter()
        .map(|fixture| (Arc::clone(&app), fixture))
        .collect();
    let (accepted, refused) = publish_at_once(&token, work).await;
    for (name, version, body) in &refused {
        assert_eq!(name, "raced", "{name}@{version}: {body}");
        assert!(body.to_string().contains("already uploaded"), "{body}");
    }
    assert_eq!(accepted["raced"].len(), 1);
    assert_eq!(refused.len(), 11);
    assert_eq!(accepted["shared"].len(), 24);
    assert_eq!(accepted.len(), 26);

    // One line per version, each downloading with its checksum, and no line for a refused
    // publish.
    app.assert_intact(&accepted).await;
    for (name, versions) in &accepted {
        let listed: BTreeSet<String> = app
            .index_lines(name)
            .await
            .unwrap()
            .iter()
            .map(|line| line["vers"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(&listed, versions, "{name}");
    }
    // Refused publishes left no crate file behind.
    assert_eq!(app.blob_keys().await.len(), version_count(&accepted));
}

crate::on_every_backend!(concurrent_publishes_keep_one_line_per_accepted_version);
