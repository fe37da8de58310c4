//! Hostile input beyond malformed publishes (which `api.rs` covers): what a crate may hold,
//! bodies far past the limit with flat memory, header floods and slow clients. Each gets its
//! 4xx (or, for clients too slow to send a request head, a closed connection) and leaves
//! nothing behind.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::StatusCode;
use ktra_core::testing::CrateFixture;

use crate::harness::{Backend, TestApp, assert_error};

async fn assert_refused(app: &TestApp, token: &str, fixture: &CrateFixture, needle: &str) {
    let (status, reply) = app.publish(Some(token), fixture.body()).await;
    assert_error(status, &reply, StatusCode::BAD_REQUEST, needle);
    app.assert_not_stored(&fixture.name, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn what_a_crate_may_hold_is_bounded() {
    let app = TestApp::start_on(
        Backend::Embedded,
        &[
            ("KTRA_HTTP_MAX_UNPACKED_BYTES", "1048576"),
            ("KTRA_LIMITS_MAX_DEPENDENCIES", "3"),
            ("KTRA_LIMITS_MAX_FEATURES", "3"),
            ("KTRA_LIMITS_MAX_FEATURE_VALUES", "3"),
            ("KTRA_LIMITS_MAX_DESCRIPTION_BYTES", "64"),
            ("KTRA_LIMITS_MAX_CRATE_FILES", "10"),
        ],
    )
    .await;
    let token = app.create_user("alice").await;

    let mut deps = CrateFixture::new("many-deps", "1.0.0");
    for name in ["a", "b", "c", "d"] {
        deps = deps.dep(name, "1");
    }
    assert_refused(&app, &token, &deps, "4 dependencies").await;

    let mut features = CrateFixture::new("many-features", "1.0.0");
    for name in ["a", "b", "c", "d"] {
        features.features.insert(name.to_owned(), Vec::new());
    }
    assert_refused(&app, &token, &features, "4 features").await;

    let mut wide = CrateFixture::new("wide-feature", "1.0.0");
    wide.features.insert(
        "all".to_owned(),
        ["a", "b", "c", "d"].map(str::to_owned).to_vec(),
    );
    assert_refused(&app, &token, &wide, "enables 4").await;

    let mut talkative = CrateFixture::new("talkative", "1.0.0");
    talkative.description = Some("x".repeat(65));
    assert_refused(&app, &token, &talkative, "65 bytes long").await;

    // 64 MiB of zeros gzip to about 64 KiB: a small body that would fill a disk unpacked.
    let mut bomb = CrateFixture::new("bomb", "1.0.0");
    bomb.files.push(("zeros.bin".to_owned(), vec![0; 64 << 20]));
    assert!(bomb.crate_file().len() < 1 << 20);
    assert_refused(&app, &token, &bomb, "unpacks to more than 1048576 bytes").await;

    let mut scattered = CrateFixture::new("scattered", "1.0.0");
    for index in 0..10 {
        scattered
            .files
            .push((format!("src/part{index}.rs"), b"// part\n".to_vec()));
    }
    assert_refused(&app, &token, &scattered, "more than 10 files").await;
}

/// The resident set of this process (the server runs in it), in bytes.
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// An endless-looking body: `total` bytes in 64 KiB chunks, generated as they are sent.
fn streamed(total: usize) -> reqwest::Body {
    let chunk = Bytes::from(vec![0x5a_u8; 64 * 1024]);
    let count = total / chunk.len();
    reqwest::Body::wrap_stream(futures::stream::iter(
        (0..count).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oversized_bodies_keep_memory_flat() {
    let app = TestApp::start_on(
        Backend::Embedded,
        &[("KTRA_HTTP_MAX_PUBLISH_BYTES", "1048576")],
    )
    .await;
    let token = app.create_user("alice").await;
    // Warm up the allocator and the connection pool with one refused publish.
    let (status, _) = app.publish(Some(&token), vec![0; 2 << 20]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let before = resident_bytes();

    // 8 clients at once, each sending 256 MiB without a declared length (2 GiB in all): half
    // without a token, half with one.
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..8 {
        let request = app
            .client
            .put(app.url("/api/v1/crates/new"))
            .body(streamed(256 << 20));
        let request = if client % 2 == 0 {
            request.header("Authorization", &token)
        } else {
            request
        };
        tasks.spawn(async move { (client, request.send().await) });
    }
    let mut answered = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (client, result) = joined.unwrap();
        // The server answers and closes without reading the rest; a client still sending may
        // see the connection end before it reads the answer.
        if let Ok(response) = result {
            let expected = if client % 2 == 0 {
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                StatusCode::UNAUTHORIZED
            };
            assert_eq!(response.status(), expected, "client {client}");
            answered.push(client);
        }
    }
    // A declared length past the limit is refused before the body is sent at all.
    let response = app
        .client
        .put(app.url("/api/v1/crates/new"))
        .header("Authorization", &token)
        .header("content-length", (1_u64 << 30).to_string())
        .header("expect", "100-continue")
        .body(streamed(1 << 30))
        .send()
        .await;
    if let Ok(response) = response {
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
    let grown = resident_bytes().saturating_sub(before);
    println!(
        "resident set grew by {} KiB; {} of 8 clients read their answer",
        grown / 1024,
        answered.len()
    );
    assert!(grown < 64 << 20, "the server kept {grown} bytes");
    assert!(app.blob_keys().await.is_empty());
    let livez = app.client.get(app.url("/livez")).send().await.unwrap();
    assert_eq!(livez.status(), StatusCode::OK);
}

/// Sends raw bytes and returns everything the server answers until it closes the connection
/// or `wait` passes.
fn raw_exchange(app: &TestApp, request: &[u8], wait: Duration) -> (String, Duration) {
    let address = app.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(wait)).unwrap();
    let started = Instant::now();
    // The server may close while a flood is still being written.
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn header_floods_and_slow_clients() {
    let app = TestApp::start_on(
        Backend::Embedded,
        &[
            ("KTRA_LIMITS_HEADER_READ_TIMEOUT_SECS", "1"),
            ("KTRA_LIMITS_MAX_HEADER_BYTES", "16384"),
            ("KTRA_LIMITS_MAX_HEADERS", "50"),
            ("KTRA_HTTP_REQUEST_TIMEOUT_SECS", "2"),
        ],
    )
    .await;
    let token = app.create_user("alice").await;
    let app = std::sync::Arc::new(app);
    let run = |request: Vec<u8>, wait: Duration| {
        let app = std::sync::Arc::clone(&app);
        tokio::task::spawn_blocking(move || raw_exchange(&app, &request, wait))
    };

    // Too many header fields, and one huge field.
    let mut many = String::from("GET /livez HTTP/1.1\r\nHost: x\r\n");
    for index in 0..60 {
        many.push_str(&format!("X-Flood-{index}: 1\r\n"));
    }
    many.push_str("\r\n");
    let (answer, _) = run(many.into_bytes(), Duration::from_secs(5))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    let huge = format!(
        "GET /livez HTTP/1.1\r\nHost: x\r\nX-Huge: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let (answer, _) = run(huge.into_bytes(), Duration::from_secs(5))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");

    // Slow loris: half a request head, then silence. The connection is closed after the
    // header timeout (1 s here), not held open.
    let (answer, took) = run(
        b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Slow: ".to_vec(),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert!(took < Duration::from_secs(5), "held for {took:?}");
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );

    // A slow body: the head arrives, the body stalls. The request timeout answers 408 and
    // nothing is stored.
    let slow_body = format!(
        "PUT /api/v1/crates/new HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\n\
         Content-Length: 100000\r\n\r\n0123456789"
    );
    let (answer, took) = run(slow_body.into_bytes(), Duration::from_secs(10))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"errors\""), "{answer}");
    assert!(took < Duration::from_secs(6), "held for {took:?}");
    assert!(app.blob_keys().await.is_empty());

    // The server serves normally all along.
    let livez = app.client.get(app.url("/livez")).send().await.unwrap();
    assert_eq!(livez.status(), StatusCode::OK);
}
