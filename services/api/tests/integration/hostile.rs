//! Hostile input beyond malformed publishes (which `api.rs` covers): what a crate may hold,
//! bodies far past the limit with flat memory, header floods and slow clients. Each gets its
//! 4xx (or, for clients too slow to send a request head, a closed connection) and leaves
//! nothing behind.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use http::StatusCode;
use ktra_testing::fixtures::CrateFixture;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::harness::{TestApp, assert_error, assert_refused};

async fn assert_publish_refused(app: &TestApp, token: &str, fixture: &CrateFixture, needle: &str) {
    let reply = app.publish(Some(token), fixture.body()).await;
    assert_refused(&reply, StatusCode::BAD_REQUEST, needle);
    app.assert_not_stored(&fixture.name, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn what_a_crate_may_hold_is_bounded() {
    let app = TestApp::embedded(&[
        ("KTRA_HTTP_MAX_UNPACKED_BYTES", "1048576"),
        ("KTRA_LIMITS_MAX_DEPENDENCIES", "3"),
        ("KTRA_LIMITS_MAX_FEATURES", "3"),
        ("KTRA_LIMITS_MAX_FEATURE_VALUES", "3"),
        ("KTRA_LIMITS_MAX_DESCRIPTION_BYTES", "64"),
        ("KTRA_LIMITS_MAX_CRATE_FILES", "10"),
    ])
    .await;
    let token = app.create_user("alice").await;

    let mut deps = CrateFixture::new("many-deps", "1.0.0");
    for name in ["a", "b", "c", "d"] {
        deps = deps.dep(name, "1");
    }
    assert_publish_refused(&app, &token, &deps, "4 dependencies").await;

    let mut features = CrateFixture::new("many-features", "1.0.0");
    for name in ["a", "b", "c", "d"] {
        features.features.insert(name.to_owned(), Vec::new());
    }
    assert_publish_refused(&app, &token, &features, "4 features").await;

    let mut wide = CrateFixture::new("wide-feature", "1.0.0");
    wide.features.insert(
        "all".to_owned(),
        ["a", "b", "c", "d"].map(str::to_owned).to_vec(),
    );
    assert_publish_refused(&app, &token, &wide, "enables 4").await;

    let mut talkative = CrateFixture::new("talkative", "1.0.0");
    talkative.description = Some("x".repeat(65));
    assert_publish_refused(&app, &token, &talkative, "65 bytes long").await;

    // 64 MiB of zeros gzip to about 64 KiB: a small body that would fill a disk unpacked.
    let mut bomb = CrateFixture::new("bomb", "1.0.0");
    bomb.files.push(("zeros.bin".to_owned(), vec![0; 64 << 20]));
    assert!(bomb.crate_file().len() < 1 << 20);
    assert_publish_refused(&app, &token, &bomb, "unpacks to more than 1048576 bytes").await;

    let mut scattered = CrateFixture::new("scattered", "1.0.0");
    for index in 0..10 {
        scattered
            .files
            .push((format!("src/part{index}.rs"), b"// part\n".to_vec()));
    }
    assert_publish_refused(&app, &token, &scattered, "more than 10 files").await;
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

/// Sends a request `head` to `address`, then `body_bytes` of body in 64 KiB chunks (chunked
/// encoding: no declared length), and returns the answer, read while the body is still being
/// sent.
///
/// The server answers a refused body before it has all arrived, then closes the connection
/// without reading the rest (see `extract::discard`). A client that looks for the answer
/// only when its write fails, as hyper's does, may report the closed connection and drop an
/// answer that did arrive; reading while sending always gets it. The write side stays open
/// until the answer is in, as a real client's does (the server drops a connection whose
/// client shuts down its writing before the answer). Panics when the connection ends before
/// a whole answer, or none comes within 30 s.
async fn answer_while_sending(
    address: &str,
    head: String,
    body_bytes: usize,
) -> (StatusCode, Value) {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let (mut reader, mut writer) = stream.split();
    let send = async {
        // A failed write ends the sending, not the exchange: the answer may be there to read.
        let _ = send_chunked(&mut writer, head.as_bytes(), body_bytes).await;
        std::future::pending::<()>().await;
    };
    let receive = async {
        let mut received = Vec::new();
        let mut buffer = [0_u8; 8192];
        loop {
            if let Some(answer) = whole_answer(&received) {
                return answer;
            }
            let problem = match reader.read(&mut buffer).await {
                Ok(0) => "the server closed the connection".to_owned(),
                Ok(read) => {
                    received.extend_from_slice(&buffer[..read]);
                    continue;
                }
                Err(error) => format!("the connection failed: {error}"),
            };
            panic!(
                "{problem} before a whole answer; received {:?}",
                String::from_utf8_lossy(&received)
            );
        }
    };
    let exchange = async {
        tokio::select! {
            answer = receive => answer,
            () = send => unreachable!("sending never ends by itself"),
        }
    };
    tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .expect("the server answers within 30 s")
}

/// Writes `head`, then `body_bytes` of body in 64 KiB chunks and the last, empty chunk.
async fn send_chunked(
    writer: &mut (impl AsyncWrite + Unpin),
    head: &[u8],
    body_bytes: usize,
) -> std::io::Result<()> {
    writer.write_all(head).await?;
    if body_bytes == 0 {
        return Ok(());
    }
    let chunk = vec![0x5a_u8; 64 * 1024];
    let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
    frame.extend_from_slice(&chunk);
    frame.extend_from_slice(b"\r\n");
    for _ in 0..body_bytes / chunk.len() {
        writer.write_all(&frame).await?;
    }
    writer.write_all(b"0\r\n\r\n").await
}

/// The head of a publish whose body follows in chunks, with no declared length.
fn chunked_publish(token: Option<&str>) -> String {
    let authorization =
        token.map_or_else(String::new, |token| format!("Authorization: {token}\r\n"));
    format!(
        "PUT /api/v1/crates/new HTTP/1.1\r\nHost: x\r\n{authorization}\
         Transfer-Encoding: chunked\r\n\r\n"
    )
}

/// Parses an HTTP/1.1 answer with a `Content-Length` and a JSON body; `None` while part of it
/// has yet to arrive.
fn whole_answer(received: &[u8]) -> Option<(StatusCode, Value)> {
    let split = received
        .windows(4)
        .position(|window| window == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&received[..split]);
    let body = &received[split + 4..];
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {head:?}"));
    assert!(
        !status.is_informational(),
        "the server asked for the body instead of refusing it: {head:?}"
    );
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or_else(|| panic!("an answer without a Content-Length: {head:?}"));
    let body = body.get(..length)?;
    let json = serde_json::from_slice(body).unwrap_or_else(|error| {
        panic!(
            "status {status}: body is not JSON ({error}): {:?}",
            String::from_utf8_lossy(body)
        )
    });
    Some((status, json))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oversized_bodies_keep_memory_flat() {
    let app = TestApp::embedded(&[("KTRA_HTTP_MAX_PUBLISH_BYTES", "1048576")]).await;
    let token = app.create_user("alice").await;
    let address = app.base.trim_start_matches("http://").to_owned();
    // Warm up the allocator with one refused publish.
    let (status, body) =
        answer_while_sending(&address, chunked_publish(Some(&token)), 2 << 20).await;
    assert_error(
        status,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "larger than the limit of 1048576 bytes",
    );
    let before = resident_bytes();

    // 8 clients at once, each sending 256 MiB without a declared length (2 GiB in all): half
    // without a token, half with one. Every one of them reads its refusal.
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..8 {
        let head = chunked_publish((client % 2 == 0).then_some(token.as_str()));
        let address = address.clone();
        tasks.spawn(async move {
            (
                client,
                answer_while_sending(&address, head, 256 << 20).await,
            )
        });
    }
    while let Some(joined) = tasks.join_next().await {
        let (client, (status, body)) = joined.unwrap();
        if client % 2 == 0 {
            assert_error(
                status,
                &body,
                StatusCode::PAYLOAD_TOO_LARGE,
                "larger than the limit of 1048576 bytes",
            );
        } else {
            assert_error(
                status,
                &body,
                StatusCode::UNAUTHORIZED,
                "requires authentication",
            );
        }
    }
    // A declared length past the limit is refused before the body is sent at all: the
    // client sends `Expect: 100-continue` and waits, and the refusal comes instead.
    let head = format!(
        "PUT /api/v1/crates/new HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\n\
         Content-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        1_u64 << 30
    );
    let reply = answer_while_sending(&address, head, 0).await;
    assert_refused(
        &reply,
        StatusCode::PAYLOAD_TOO_LARGE,
        "accepts publish requests up to 1048576 bytes",
    );
    let grown = resident_bytes().saturating_sub(before);
    println!("resident set grew by {} KiB", grown / 1024);
    assert!(grown < 64 << 20, "the server kept {grown} bytes");
    assert!(app.blob_keys().await.is_empty());
    assert_eq!(app.get("/livez").await.0, StatusCode::OK);
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
    let app = TestApp::embedded(&[
        ("KTRA_LIMITS_HEADER_READ_TIMEOUT_SECS", "1"),
        ("KTRA_LIMITS_MAX_HEADER_BYTES", "16384"),
        ("KTRA_LIMITS_MAX_HEADERS", "50"),
        ("KTRA_HTTP_REQUEST_TIMEOUT_SECS", "2"),
    ])
    .await;
    let token = app.create_user("alice").await;
    let app = std::sync::Arc::new(app);
    let run = |request: Vec<u8>, wait: Duration| {
        let app = std::sync::Arc::clone(&app);
        ktra_core::task::spawn_blocking(move || raw_exchange(&app, &request, wait))
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
    assert_eq!(app.get("/livez").await.0, StatusCode::OK);
}
