//! The indexer notices a foreign commit on schedule, whatever else it is asked meanwhile, and
//! at once when a verify finds the remote wrong.

use std::time::Duration;

use ktra_proto::indexer::v1::indexer_client::IndexerClient;
use ktra_proto::indexer::v1::{ApplyRequest, CrateState};
use ktra_testing::git::push_foreign_commit;
use ktra_testing::registry::Registry;
use ktra_testing::servers::RedisServer;

use crate::remotes::publish_many;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verify_that_finds_a_foreign_commit_has_it_reverted_at_once() {
    // The scheduled fetch is a minute away: only the verify can explain a quick revert. Over
    // Redis, the verify runs beside the serving API.
    let dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start(dir.path());
    let (registry, token) = Registry::builder()
        .env("KTRA_GIT_FETCH_INTERVAL_SECS", "60")
        .env("KTRA_DB_KIND", "redis")
        .env("KTRA_DB_REDIS_URL", &redis.url)
        .start_with_user("alice")
        .await;
    let names = publish_many(&registry, &token, "verified", 2).await;
    let work = tempfile::tempdir().unwrap();
    push_foreign_commit(
        &registry.remote_path,
        work.path(),
        "ve/ri/verified0",
        Some("ve/ri/verified1"),
    );
    let (code, report) = registry.api_command(&["verify-index"]);
    assert_eq!(code, 1, "the verify sees the foreign commit: {report}");
    registry
        .wait_remote_converged(&names, Duration::from_secs(5))
        .await;
    let (code, report) = registry.api_command(&["verify-index"]);
    assert_eq!(code, 0, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_more_often_than_the_fetch_interval_do_not_postpone_it() {
    let (registry, token) = Registry::builder()
        .env("KTRA_GIT_FETCH_INTERVAL_SECS", "2")
        .start_with_user("alice")
        .await;
    let names = publish_many(&registry, &token, "busy", 1).await;
    let listen = registry
        .env()
        .iter()
        .find(|(name, _)| name == "KTRA_INDEXER_LISTEN")
        .map(|(_, value)| value.clone())
        .expect("the harness sets the indexer's address");
    let mut client = IndexerClient::connect(format!("http://{listen}"))
        .await
        .expect("the indexer answers");
    let work = tempfile::tempdir().unwrap();
    push_foreign_commit(&registry.remote_path, work.path(), "bu/sy/busy0", None);

    // Every 300 ms a command that needs no push (revision 1 is in the index already), for
    // longer than the interval plus a round.
    let caller = tokio::spawn(async move {
        for _ in 0..30 {
            let request = ApplyRequest {
                crates: vec![CrateState {
                    name: "busy0".to_owned(),
                    revision: 1,
                    content: Vec::new(),
                }],
            };
            let answer = client.apply(request).await.expect("apply answers");
            assert_eq!(answer.into_inner().acknowledged[0].revision, 1);
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    registry
        .wait_remote_converged(&names, Duration::from_secs(5))
        .await;
    assert!(!caller.is_finished(), "the calls went on while it reverted");
    caller.await.unwrap();
}
