//! Many publishes at once, and the sorting of their answers.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ktra_testing::fixtures::CrateFixture;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::task::JoinSet;

use super::TestApp;

/// The versions a registry acknowledged, by crate name.
pub(crate) type Accepted = BTreeMap<String, BTreeSet<String>>;

/// A publish that was refused with 400: the crate's name, its version and the answer's body.
pub(crate) type Refusal = (String, String, Value);

/// Sends every publish of `work` (each to its app) at once with `token`, and sorts the
/// answers: the versions acknowledged, each once, and the refusals with 400. Panics on any
/// other answer.
pub(crate) async fn publish_at_once(
    token: &str,
    work: Vec<(Arc<TestApp>, CrateFixture)>,
) -> (Accepted, Vec<Refusal>) {
    let token: Arc<str> = Arc::from(token);
    let mut tasks = JoinSet::new();
    for (app, fixture) in work {
        let token = Arc::clone(&token);
        tasks.spawn(async move {
            let (status, body) = app.publish(Some(&token), fixture.body()).await;
            (fixture.name, fixture.version, status, body)
        });
    }
    let mut accepted = Accepted::new();
    let mut refused = Vec::new();
    while let Some(result) = tasks.join_next().await {
        let (name, version, status, body) = result.unwrap();
        match status {
            StatusCode::OK => {
                assert!(accepted.entry(name).or_default().insert(version));
            }
            StatusCode::BAD_REQUEST => refused.push((name, version, body)),
            other => panic!("{name}@{version}: {other} {body}"),
        }
    }
    (accepted, refused)
}

/// Returns how many versions `accepted` holds, over every crate.
pub(crate) fn version_count(accepted: &Accepted) -> usize {
    accepted.values().map(BTreeSet::len).sum()
}
