//! Storage servers the tests start on loopback ports: redis-server and SeaweedFS (S3).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::poll::poll_until_blocking;
use crate::process::{Service, free_port, project_path};

/// A redis-server owned by a test.
#[derive(Debug)]
pub struct RedisServer {
    service: Service,
    /// `redis://127.0.0.1:{port}`.
    pub url: String,
}

impl RedisServer {
    /// Starts redis-server without persistence.
    pub fn start(dir: &Path) -> Self {
        Self::start_with(dir, false)
    }

    /// Starts redis-server; with `durable`, every write is in the append-only file before
    /// Redis answers, so a restart loses nothing that was acknowledged.
    pub fn start_with(dir: &Path, durable: bool) -> Self {
        let persistence: &[&str] = if durable {
            &["--appendonly", "yes", "--appendfsync", "always"]
        } else {
            &["--appendonly", "no"]
        };
        Self::start_args(dir, persistence)
    }

    /// Starts redis-server without persistence as a replica of the server on `primary_port`,
    /// and waits until it is in sync.
    pub fn start_replica_of(dir: &Path, primary_port: u16) -> Self {
        let primary = primary_port.to_string();
        let replica = Self::start_args(
            dir,
            &["--appendonly", "no", "--replicaof", "127.0.0.1", &primary],
        );
        wait_until(Duration::from_secs(20), "the replica to sync", || {
            redis_cli(replica.port(), &["INFO", "replication"]).contains("master_link_status:up")
        });
        replica
    }

    fn start_args(dir: &Path, extra: &[&str]) -> Self {
        let port = free_port();
        let data = dir.join(format!("redis-{port}"));
        std::fs::create_dir_all(&data).expect("the redis directory");
        let port_text = port.to_string();
        let data_text = data.display().to_string();
        let mut args = vec![
            "--bind",
            "127.0.0.1",
            "--port",
            &port_text,
            "--save",
            "",
            "--dir",
            &data_text,
        ];
        args.extend(extra);
        let service = Service::new(
            &format!("redis-{port}"),
            "redis-server",
            &args,
            Vec::new(),
            dir,
            port,
        );
        service.start();
        Self {
            service,
            url: format!("redis://127.0.0.1:{port}"),
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.service.port
    }

    /// Starts redis-server speaking TLS only (a fresh self-signed certificate) and requiring
    /// `password`; the URL is `rediss://:password@127.0.0.1:{port}/#insecure` (the certificate
    /// is not verified: it is the test's own).
    pub fn start_tls(dir: &Path, password: &str) -> Self {
        let port = free_port();
        let data = dir.join(format!("redis-tls-{port}"));
        std::fs::create_dir_all(&data).expect("the redis directory");
        let (cert, key) = (data.join("cert.pem"), data.join("key.pem"));
        let status = std::process::Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args(["-subj", "/CN=127.0.0.1", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl runs");
        assert!(status.success(), "a test certificate");
        let (port_text, cert_text, key_text, data_text) = (
            port.to_string(),
            cert.display().to_string(),
            key.display().to_string(),
            data.display().to_string(),
        );
        let args = [
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--tls-port",
            &port_text,
            "--tls-cert-file",
            &cert_text,
            "--tls-key-file",
            &key_text,
            "--tls-ca-cert-file",
            &cert_text,
            "--tls-auth-clients",
            "no",
            "--requirepass",
            password,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            &data_text,
        ];
        let service = Service::new("redis-tls", "redis-server", &args, Vec::new(), dir, port);
        service.start();
        Self {
            service,
            url: format!("rediss://:{password}@127.0.0.1:{port}/#insecure"),
        }
    }

    /// Kills the server as a crash would.
    pub fn kill(&self) {
        self.service.kill();
    }

    /// Starts it again on the same port and data directory.
    pub fn restart(&self) {
        self.service.start();
    }
}

/// A Redis primary with one replica, watched by three Sentinels (`redis-sentinel`), owned by
/// a test. Sentinel declares the primary down after 2 s without an answer.
#[derive(Debug)]
pub struct SentinelRedis {
    /// The primary at start.
    pub primary: RedisServer,
    /// Its replica, which Sentinel promotes when the primary dies.
    pub replica: RedisServer,
    sentinels: Vec<Service>,
    /// Replicas started later, as an orchestrator replaces a dead server.
    added: std::sync::Mutex<Vec<RedisServer>>,
    dir: PathBuf,
}

impl SentinelRedis {
    /// The name the Sentinels know the primary by.
    pub const MASTER: &'static str = "ktra-test";

    /// Starts the primary, the replica (in sync before this returns) and three Sentinels.
    pub fn start(dir: &Path) -> Self {
        let primary = RedisServer::start(dir);
        let replica = RedisServer::start_replica_of(dir, primary.port());
        let sentinels = (0..3)
            .map(|_| {
                let port = free_port();
                let config = dir.join(format!("sentinel-{port}.conf"));
                std::fs::write(
                    &config,
                    format!(
                        "port {port}\nbind 127.0.0.1\ndir {dir}\n\
                         sentinel resolve-hostnames no\n\
                         sentinel monitor {master} 127.0.0.1 {primary} 2\n\
                         sentinel down-after-milliseconds {master} 2000\n\
                         sentinel failover-timeout {master} 5000\n\
                         sentinel parallel-syncs {master} 1\n",
                        dir = dir.display(),
                        master = Self::MASTER,
                        primary = primary.port(),
                    ),
                )
                .expect("the sentinel configuration");
                let config_text = config.display().to_string();
                let service = Service::new(
                    &format!("sentinel-{port}"),
                    "redis-sentinel",
                    &[&config_text],
                    Vec::new(),
                    dir,
                    port,
                );
                service.start();
                service
            })
            .collect();
        Self {
            primary,
            replica,
            sentinels,
            added: std::sync::Mutex::default(),
            dir: dir.to_owned(),
        }
    }

    /// Starts a new replica of the current primary, as an orchestrator replaces a dead server
    /// (it asks Sentinel for the primary first: a restarted server that came back as an empty
    /// primary could be promoted over the data).
    pub fn add_replica(&self) {
        let primary = self.primary_port().expect("Sentinel names a primary");
        let replica = RedisServer::start_replica_of(&self.dir, primary);
        self.added
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(replica);
    }

    /// `KTRA_DB_REDIS_SENTINELS` for these Sentinels.
    pub fn addresses(&self) -> String {
        self.sentinels
            .iter()
            .map(|sentinel| format!("127.0.0.1:{}", sentinel.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The port of the server the Sentinels name as primary now.
    pub fn primary_port(&self) -> Option<u16> {
        let answer = redis_cli(
            self.sentinels[0].port,
            &["SENTINEL", "get-master-addr-by-name", Self::MASTER],
        );
        answer.lines().nth(1)?.trim().parse().ok()
    }
}

/// Runs `redis-cli` against a loopback port; returns its output.
fn redis_cli(port: u16, args: &[&str]) -> String {
    let output = std::process::Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli runs");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn wait_until(timeout: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let happened = poll_until_blocking(timeout, || done().then_some(()));
    assert!(happened.is_some(), "waited {timeout:?} for {what}");
}

/// A SeaweedFS server (`weed mini`) with its S3 gateway, owned by a test.
#[derive(Debug)]
pub struct S3Server {
    service: Service,
    /// `http://127.0.0.1:{port}`.
    pub endpoint: String,
    /// The access key accepted.
    pub access_key: String,
    /// The secret key accepted.
    pub secret_key: String,
    filer_port: u16,
    master_port: u16,
}

/// A MongoDB-wire server: SecantusDB (PyPI `secantusdb`, installed in the project's virtual
/// environment by `scripts/setup-test-deps.sh`), in memory, on loopback.
#[derive(Debug)]
pub struct MongoServer {
    _service: Service,
    /// `mongodb://127.0.0.1:{port}`.
    pub url: String,
}

impl MongoServer {
    /// Starts the server and waits until it listens.
    pub fn start(dir: &Path) -> Self {
        let binary = project_path(".venv/bin/secantusd-py");
        assert!(
            binary.is_file(),
            "{} is missing: run scripts/setup-test-deps.sh",
            binary.display()
        );
        let port = free_port();
        let service = Service::new(
            &format!("secantus-{port}"),
            binary,
            &[
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--storage-path",
                ":memory:",
            ],
            Vec::new(),
            dir,
            port,
        );
        service.start();
        Self {
            _service: service,
            url: format!("mongodb://127.0.0.1:{port}"),
        }
    }
}

/// Returns the `weed` binary: from the project's virtual environment (installed by
/// `scripts/setup-test-deps.sh`) or from `PATH`.
pub fn weed_binary() -> PathBuf {
    let venv = project_path(".venv/bin/weed");
    if venv.is_file() {
        return venv;
    }
    PathBuf::from("weed")
}

impl S3Server {
    /// Starts SeaweedFS with every port of its own. It binds seven ports; when another test
    /// takes one between our pick and its bind, SeaweedFS exits and is started again on fresh
    /// ports.
    pub fn start(dir: &Path) -> Self {
        let mut last_problem = String::new();
        for _ in 0..5 {
            match Self::try_start(dir) {
                Ok(server) => return server,
                Err(problem) => last_problem = problem,
            }
        }
        panic!("SeaweedFS did not start in five attempts:\n{last_problem}");
    }

    fn try_start(dir: &Path) -> Result<Self, String> {
        let s3_port = seaweed_port();
        let data = dir.join(format!("seaweed-{s3_port}"));
        std::fs::create_dir_all(&data).expect("the seaweed directory");
        // Every component gets its own port. SeaweedFS also binds each HTTP port + 10000 for
        // gRPC: both must be free and below the ephemeral range, so a restart finds them free.
        let port = seaweed_port;
        let filer_port = port();
        let master_port = port();
        let args: Vec<String> = vec![
            "mini".into(),
            format!("-dir={}", data.display()),
            "-ip=127.0.0.1".into(),
            "-ip.bind=127.0.0.1".into(),
            "-admin.ui=false".into(),
            format!("-master.port={master_port}"),
            format!("-volume.port={}", port()),
            format!("-filer.port={filer_port}"),
            format!("-s3.port={s3_port}"),
            format!("-webdav.port={}", port()),
            "-s3.port.iceberg=0".into(),
            "-s3.port.lance=0".into(),
            "-master.telemetry=false".into(),
            // A fixed number of small volumes: by default SeaweedFS sizes both from the free
            // disk space and, on a machine with little of it, starts with no volume to write to.
            "-master.volumeSizeLimitMB=64".into(),
            "-volume.max=16".into(),
            format!("-admin.port={}", port()),
            format!("-metricsPort={}", port()),
        ];
        let access_key = "ktra-test-access".to_owned();
        let secret_key = "ktra-test-secret-key".to_owned();
        let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let service = Service::new(
            "seaweedfs",
            weed_binary(),
            &arg_refs,
            vec![
                ("AWS_ACCESS_KEY_ID".to_owned(), access_key.clone()),
                ("AWS_SECRET_ACCESS_KEY".to_owned(), secret_key.clone()),
            ],
            dir,
            s3_port,
        );
        service.try_start()?;
        let server = Self {
            service,
            endpoint: format!("http://127.0.0.1:{s3_port}"),
            access_key,
            secret_key,
            filer_port,
            master_port,
        };
        if !server.wait_ready() {
            if server.service.is_running() {
                panic!(
                    "SeaweedFS never served requests\n{}",
                    server.service.log_tail()
                );
            }
            return Err(server.service.log_tail());
        }
        Ok(server)
    }

    /// Waits until the S3 gateway and the filer answer and the master can place a write (a
    /// volume server registered): they listen well before they serve. Returns false when it
    /// exited or did not get there within a minute.
    fn wait_ready(&self) -> bool {
        let s3 = self.endpoint.trim_start_matches("http://").to_owned();
        let filer = format!("127.0.0.1:{}", self.filer_port);
        let master = format!("127.0.0.1:{}", self.master_port);
        let answers =
            |address: &str| http_get(address, "GET", "/").is_some_and(|(status, _)| status < 500);
        // Some(true) when ready, Some(false) when the server exited first.
        let outcome = poll_until_blocking(Duration::from_secs(60), || {
            let writable = http_get(&master, "GET", "/dir/assign")
                .is_some_and(|(status, body)| status == 200 && body.contains("\"fid\""));
            if writable && answers(&s3) && answers(&filer) {
                return Some(true);
            }
            (!self.service.is_running()).then_some(false)
        });
        outcome.unwrap_or(false)
    }

    /// The end of SeaweedFS's log.
    pub fn log_tail(&self) -> String {
        self.service.log_tail()
    }

    /// Creates a bucket (a directory under the filer's `/buckets`).
    pub fn create_bucket(&self, bucket: &str) {
        let answer = http_get(
            &format!("127.0.0.1:{}", self.filer_port),
            "POST",
            &format!("/buckets/{bucket}/"),
        );
        assert_eq!(
            answer.map(|(status, _)| status),
            Some(201),
            "creating bucket {bucket}"
        );
    }

    /// The environment a Ktra service needs to use this server with `bucket`.
    pub fn env(&self, bucket: &str) -> Vec<(String, String)> {
        vec![
            ("KTRA_BLOB_KIND".to_owned(), "s3".to_owned()),
            ("KTRA_S3_BUCKET".to_owned(), bucket.to_owned()),
            ("KTRA_S3_ENDPOINT".to_owned(), self.endpoint.clone()),
            ("KTRA_S3_REGION".to_owned(), "us-east-1".to_owned()),
            ("KTRA_S3_ALLOW_HTTP".to_owned(), "true".to_owned()),
            ("AWS_ACCESS_KEY_ID".to_owned(), self.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY".to_owned(), self.secret_key.clone()),
        ]
    }

    /// Kills the server as a crash would.
    pub fn kill(&self) {
        self.service.kill();
    }

    /// Starts it again on the same ports and data.
    pub fn restart(&self) {
        self.service.start();
        assert!(
            self.wait_ready(),
            "SeaweedFS did not serve again\n{}",
            self.service.log_tail()
        );
    }
}

/// Sends a bodiless HTTP/1.1 request; returns the status code and the raw answer.
fn http_get(address: &str, method: &str, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let status = answer.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, answer))
}

/// Returns a free port whose gRPC twin (port + 10000) is free too, both below the ephemeral
/// range.
fn seaweed_port() -> u16 {
    loop {
        let port = free_port();
        if port < 22_000 && std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}
