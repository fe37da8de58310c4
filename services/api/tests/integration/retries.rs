//! Retries after a lost answer: the same publish, yank or unyank again succeeds and changes
//! nothing; a different file under the same version is still refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ktra_api::state::Faults;
use ktra_testing::fixtures::CrateFixture;
use reqwest::{Method, StatusCode};

use crate::harness::{Backend, TestApp, assert_forbidden, assert_ok, assert_refused};

crate::on_every_backend!(a_publish_whose_answer_was_lost_succeeds_when_retried);

async fn a_publish_whose_answer_was_lost_succeeds_when_retried(backend: Backend) {
    // The first publish commits, then its request dies before answering, as when a replica is
    // killed between the store step and the answer.
    let crash = Arc::new(AtomicBool::new(true));
    let crash_once = Arc::clone(&crash);
    let faults = Faults {
        after_publish_commit: Some(Box::new(move || {
            if crash_once.swap(false, Ordering::SeqCst) {
                panic!("simulated crash between the store commit and the answer");
            }
        })),
    };
    let app = TestApp::start_with_faults(backend, faults).await;
    let token = app.create_user("alice").await;
    let fixture = CrateFixture::new("retried", "1.0.0");
    let (status, body) = app.publish(Some(&token), fixture.body()).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert!(!crash.load(Ordering::SeqCst), "the fault ran");
    let committed = app.index_lines("retried").await.unwrap();
    assert_eq!(committed.len(), 1, "the first try was committed");

    // The client retries the same file: success, with a warning, and nothing changes.
    let (status, body) = app.publish(Some(&token), fixture.body()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let warning = body["warnings"]["other"][0].as_str().unwrap_or_default();
    assert!(warning.contains("already published"), "{body}");
    assert_eq!(app.index_lines("retried").await.unwrap(), committed);

    // Another file under that version, or the version with other build metadata, is refused.
    let other_file = CrateFixture::new("retried", "1.0.0").with_payload(64);
    let reply = app.publish(Some(&token), other_file.body()).await;
    assert_refused(&reply, StatusCode::BAD_REQUEST, "already");
    let other_build = CrateFixture::new("retried", "1.0.0+rebuilt");
    let reply = app.publish(Some(&token), other_build.body()).await;
    assert_refused(&reply, StatusCode::BAD_REQUEST, "already");
    // Another user may not "retry" it.
    let mallory = app.create_user("mallory").await;
    let reply = app.publish(Some(&mallory), fixture.body()).await;
    assert_forbidden(&reply, "");

    // A yank or unyank sent twice succeeds twice.
    for (method, action, yanked) in [
        (Method::DELETE, "yank", true),
        (Method::DELETE, "yank", true),
        (Method::PUT, "unyank", false),
        (Method::PUT, "unyank", false),
    ] {
        let path = format!("/api/v1/crates/retried/1.0.0/{action}");
        let (status, body) = app.call(method, &path, Some(&token), None).await;
        assert_eq!(status, StatusCode::OK, "{action}: {body}");
        let lines = app.index_lines("retried").await.unwrap();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["yanked"], yanked, "{action}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_publish_committed_but_unconfirmed_keeps_its_crate_file() {
    // A replica whose changes wait for a Redis replica, and there is none: the publish
    // commits, then fails. (The user is created through one that does not wait.)
    let plain = TestApp::start_on(Backend::RedisS3, &[]).await;
    let token = plain.create_user("alice").await;
    let app = TestApp::start_over(
        plain.servers.clone(),
        &[
            ("KTRA_DB_REDIS_WAIT_REPLICAS", "1"),
            ("KTRA_DB_REDIS_WAIT_TIMEOUT_MS", "50"),
        ],
    )
    .await;
    let fixture = CrateFixture::new("unconfirmed", "1.0.0");
    let reply = app.publish(Some(&token), fixture.body()).await;
    assert_refused(&reply, StatusCode::SERVICE_UNAVAILABLE, "");
    // The version is in the store, so its file must be too: it downloads.
    assert_eq!(app.index_lines("unconfirmed").await.unwrap().len(), 1);
    let download = app.get_bytes("/dl/unconfirmed/1.0.0/download").await;
    assert_eq!(download, (StatusCode::OK, fixture.crate_file()));
    // What changes nothing does not wait for a replica: a refusal is still a 400 and an
    // unchanged flag a 200, not 503s.
    let other_file = CrateFixture::new("unconfirmed", "1.0.0").with_payload(8);
    let reply = app.publish(Some(&token), other_file.body()).await;
    assert_refused(&reply, StatusCode::BAD_REQUEST, "already");
    let unyank = "/api/v1/crates/unconfirmed/1.0.0/unyank";
    assert_ok(&app.call(Method::PUT, unyank, Some(&token), None).await);
}
