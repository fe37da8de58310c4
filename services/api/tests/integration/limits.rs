//! Rate limits (429 with `Retry-After`, shared by replicas) and login answers that do not tell
//! whether a user exists.

use std::time::{Duration, Instant};

use http::StatusCode;
use ktra_testing::fixtures::CrateFixture;
use serde_json::{Value, json};

use crate::harness::{Backend, PRODUCTION_ARGON2, TestApp, assert_ok, assert_refused, read_json};

on_every_backend!(rate_limits_answer_429_and_keep_nothing);

/// POSTs to the user API as if from `client` (the test trusts `x-forwarded-for`).
async fn post_from(app: &TestApp, client: &str, path: &str, body: &Value) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .header("x-forwarded-for", format!("203.0.113.200, {client}"))
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn assert_limited(response: reqwest::Response) {
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .expect("a 429 says when to retry")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&retry_after), "{retry_after}");
    let reply = read_json(response).await;
    assert_refused(&reply, StatusCode::TOO_MANY_REQUESTS, "too many requests");
}

async fn rate_limits_answer_429_and_keep_nothing(backend: Backend) {
    let app = TestApp::start_on(
        backend,
        &[
            ("KTRA_LIMITS_CLIENT_IP_HEADER", "x-forwarded-for"),
            ("KTRA_LIMITS_REGISTER_PER_IP_PER_HOUR", "2"),
            ("KTRA_LIMITS_LOGIN_PER_IP_PER_MINUTE", "3"),
            ("KTRA_LIMITS_LOGIN_PER_USER_PER_MINUTE", "2"),
            ("KTRA_LIMITS_PUBLISH_PER_USER_PER_MINUTE", "2"),
            ("KTRA_LIMITS_PUBLISH_PER_IP_PER_MINUTE", "2"),
        ],
    )
    .await;
    let password = json!({"password": "password123"});

    // Registration, per address: the third user from one address waits and is not created.
    for name in ["alice", "bob"] {
        let response = post_from(
            &app,
            "10.0.0.1",
            &format!("/ktra/api/v1/new_user/{name}"),
            &password,
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_limited(post_from(&app, "10.0.0.1", "/ktra/api/v1/new_user/carol", &password).await)
        .await;
    assert!(app.store.user_credentials("carol").await.unwrap().is_none());
    let response = post_from(&app, "10.0.0.2", "/ktra/api/v1/new_user/carol", &password).await;
    assert_eq!(response.status(), StatusCode::OK);

    // Login, per user name, from changing addresses; a user who does not exist is limited
    // the same way, so the limit tells nothing either.
    for name in ["alice", "ghost"] {
        for attempt in 0..2 {
            let response = post_from(
                &app,
                &format!("10.1.{attempt}.1"),
                &format!("/ktra/api/v1/login/{name}"),
                &json!({"password": "wrong-password"}),
            )
            .await;
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{name}");
        }
        let response = post_from(
            &app,
            "10.1.9.1",
            &format!("/ktra/api/v1/login/{name}"),
            &password,
        )
        .await;
        assert_limited(response).await;
    }

    // Login, per address, whatever the user names.
    for name in ["bob", "carol", "nobody"] {
        let response = post_from(
            &app,
            "10.2.0.1",
            &format!("/ktra/api/v1/login/{name}"),
            &password,
        )
        .await;
        assert_ne!(response.status(), StatusCode::TOO_MANY_REQUESTS, "{name}");
    }
    assert_limited(post_from(&app, "10.2.0.1", "/ktra/api/v1/login/bob", &password).await).await;

    // Publish, per user: the third publish within the minute is refused and leaves nothing.
    let (_, body) =
        read_json(post_from(&app, "10.3.0.1", "/ktra/api/v1/login/bob", &password).await).await;
    let token = body["token"].as_str().expect("a token").to_owned();
    for name in ["limited-one", "limited-two"] {
        assert_ok(&app.publish_crate(&token, name, "1.0.0").await);
    }
    let refused = app
        .client
        .put(app.url("/api/v1/crates/new"))
        .header("Authorization", &token)
        .body(CrateFixture::new("limited-three", "1.0.0").body())
        .send()
        .await
        .unwrap();
    assert_limited(refused).await;
    app.assert_not_stored("limited-three", 2).await;

    // Publishes that fail authentication count against their address; authenticated ones
    // (two above, from the same address) did not.
    for _ in 0..2 {
        let (status, _) = app
            .publish_crate("ktra_guessed-token", "guess", "1.0.0")
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let guessing = app
        .client
        .put(app.url("/api/v1/crates/new"))
        .body(CrateFixture::new("guess", "1.0.0").body())
        .send()
        .await
        .unwrap();
    assert_limited(guessing).await;

    // Replicas share the counters.
    if backend == Backend::RedisS3 {
        let replica = app.replica().await;
        let reply = replica.publish_crate(&token, "limited-four", "1.0.0").await;
        assert_refused(&reply, StatusCode::TOO_MANY_REQUESTS, "too many requests");
        let response = post_from(
            &replica,
            "10.0.0.1",
            "/ktra/api/v1/new_user/dave",
            &password,
        )
        .await;
        assert_limited(response).await;
    }

    let metrics = app.metrics_text().await;
    assert!(
        metrics.contains("ktra_rate_limited_requests_total{limit=\"publish:user\"} 1"),
        "{metrics}"
    );
}

/// The median of `samples`.
fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn login_does_not_tell_whether_a_user_exists() {
    // The production Argon2 parameters, so a skipped hash would stand out.
    let app = TestApp::start_on(Backend::Embedded, PRODUCTION_ARGON2).await;
    app.create_user("alice").await;
    let mut existing = Vec::new();
    let mut missing = Vec::new();
    let mut answers = Vec::new();
    // Interleaved, so drift on a noisy machine hits both sides alike.
    for _ in 0..15 {
        for (name, samples) in [("alice", &mut existing), ("nobody", &mut missing)] {
            let started = Instant::now();
            let answer = app.login(name, "wrong-password").await;
            samples.push(started.elapsed());
            answers.push(answer);
        }
    }
    assert!(
        answers.windows(2).all(|pair| pair[0] == pair[1]),
        "{answers:?}"
    );
    assert_eq!(answers[0].0, StatusCode::FORBIDDEN);
    let (existing, missing) = (median(existing), median(missing));
    let ratio = missing.as_secs_f64() / existing.as_secs_f64();
    println!("login medians: existing user {existing:?}, missing user {missing:?} ({ratio:.2})");
    assert!(
        (0.5..2.0).contains(&ratio),
        "existing {existing:?} vs missing {missing:?}"
    );
}
