//! The `ktra-indexer` binary as operators and container runtimes call it: `--version`, the
//! health check subcommand, its HTTP endpoints, a port conflict and SIGTERM.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_ktra-indexer");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

/// The indexer with a local-only index under `dir` on the given ports.
fn indexer(dir: &Path, grpc: u16, http: u16) -> Command {
    let mut command = Command::new(BINARY);
    command
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("KTRA_INDEXER_LISTEN", format!("127.0.0.1:{grpc}"))
        .env("KTRA_INDEXER_METRICS_LISTEN", format!("127.0.0.1:{http}"))
        .env("KTRA_GIT_LOCAL_PATH", dir.join("index"))
        .env("RUST_LOG", "info");
    command
}

fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("the child can be polled") {
            return Some(status);
        }
        sleep(Duration::from_millis(50));
    }
    None
}

/// A plain HTTP/1.1 GET; returns the status line and the body.
fn get(port: u16, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("the HTTP port accepts");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .expect("the request is sent");
    let mut reply = String::new();
    stream
        .read_to_string(&mut reply)
        .expect("the reply is read");
    let (head, body) = reply
        .split_once("\r\n\r\n")
        .expect("the reply has a head and a body");
    let status = head.lines().next().unwrap_or_default().to_owned();
    (status, body.to_owned())
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn version_names_the_binary_and_its_version() {
    let output = Command::new(BINARY)
        .arg("--version")
        .output()
        .expect("the binary runs");
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("ktra-indexer {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn healthcheck_fails_when_no_indexer_serves() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let started = Instant::now();
    let output = indexer(dir.path(), free_port(), free_port())
        .arg("healthcheck")
        .output()
        .expect("the binary runs");
    assert!(!output.status.success(), "nothing serves, yet it passed");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the health check must give up quickly, took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_taken_metrics_port_fails_the_start_with_the_variable_named() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let taken = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let port = taken.local_addr().expect("an address").port();
    let output = indexer(dir.path(), free_port(), port)
        .output()
        .expect("the binary runs");
    assert!(!output.status.success(), "it started on a taken port");
    assert!(
        stderr_of(&output).contains("KTRA_INDEXER_METRICS_LISTEN"),
        "{}",
        stderr_of(&output)
    );
}

#[test]
fn serves_health_and_metrics_then_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (grpc, http) = (free_port(), free_port());
    let mut child = indexer(dir.path(), grpc, http)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the indexer starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let check = indexer(dir.path(), grpc, http)
            .arg("healthcheck")
            .output()
            .expect("the binary runs");
        if check.status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the indexer never became healthy: {}",
            stderr_of(&check)
        );
        sleep(Duration::from_millis(100));
    }

    let (status, body) = get(http, "/readyz");
    assert!(status.contains(" 200 "), "{status}");
    assert!(body.contains("ok"), "{body}");
    let (status, metrics) = get(http, "/metrics");
    assert!(status.contains(" 200 "), "{status}");
    for name in [
        "# TYPE ktra_indexer_queue_depth gauge",
        "# TYPE ktra_indexer_push_duration_seconds histogram",
        "ktra_indexer_rounds_total ",
    ] {
        assert!(metrics.contains(name), "{name} is missing from\n{metrics}");
    }
    assert!(metrics.ends_with("# EOF\n"), "{metrics}");

    let pid = child.id().to_string();
    let kill = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(kill.success());
    let status = wait_with_timeout(&mut child, Duration::from_secs(25));
    let Some(status) = status else {
        let _ = child.kill();
        panic!("the indexer did not stop within 25 s of SIGTERM");
    };
    assert!(status.success(), "the indexer exited with {status}");
}
