//! Child processes the tests own: the two services and the git servers.

use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Returns a free loopback port below the kernel's ephemeral range.
///
/// Outgoing connections take their local ports from the ephemeral range, so a server that is
/// killed and restarted on a port from that range can find it taken by some client meanwhile.
/// Ports below the range are only ever taken by a deliberate bind. The port is checked free and
/// released; two tests picking the same one at the same instant is rare enough here.
pub fn free_port() -> u16 {
    let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    let low = 10_000_u16;
    let span = u32::from(ephemeral_start.saturating_sub(low).max(1));
    // A per-process counter spreads picks; the clock separates processes.
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.subsec_nanos())
        .unwrap_or(0)
        ^ std::process::id().wrapping_mul(2_654_435_761);
    for _ in 0..1000 {
        let step = NEXT.fetch_add(7_919, std::sync::atomic::Ordering::Relaxed);
        let candidate = low + u16::try_from((seed.wrapping_add(step)) % span).unwrap_or(0);
        if TcpListener::bind(("127.0.0.1", candidate)).is_ok() {
            return candidate;
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("binding an ephemeral loopback port works")
}

/// Returns `relative` under the workspace root: where `scripts/setup-test-deps.sh` installs its
/// tools (`.venv/`, `.tools/`) and where the project's files live.
pub fn project_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative)
}

/// Returns the path of a workspace binary of the same build profile as the running one: beside
/// it (a binary in `target/<profile>/`) or one level up (a test in `target/<profile>/deps/`).
pub fn workspace_binary(name: &str) -> PathBuf {
    let current = std::env::current_exe().expect("the running binary has a path");
    let dir = current.parent().expect("binaries live in a directory");
    let candidates = [
        dir.join(name),
        dir.parent().map(|up| up.join(name)).unwrap_or_default(),
    ];
    candidates
        .into_iter()
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{name} is missing beside {}: build the workspace first (`cargo build --workspace`, or run the tests with `--workspace`)",
                current.display()
            )
        })
}

/// Starts one of the workspace's services (`ktra-api`, `ktra-indexer`) as `name`, with no
/// arguments and the environment `env`, logging under `log_dir`; returns it once `port`
/// accepts connections.
pub fn start_ktra_service(
    name: &str,
    binary: &str,
    env: impl IntoIterator<Item = (String, String)>,
    log_dir: &Path,
    port: u16,
) -> Service {
    let service = Service::new(
        name,
        workspace_binary(binary),
        &[],
        env.into_iter().collect(),
        log_dir,
        port,
    );
    service.start();
    service
}

/// Waits until something accepts TCP connections on `port`.
pub fn wait_for_port(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&address, Duration::from_millis(100)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A process started by a test, logging to a file, killed when dropped.
#[derive(Debug)]
pub struct Service {
    name: String,
    command: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Mutex<Option<Child>>,
    /// The port the process listens on.
    pub port: u16,
}

impl Service {
    /// Describes a process; nothing runs until [`Service::start`].
    pub fn new(
        name: &str,
        command: impl Into<PathBuf>,
        args: &[&str],
        env: Vec<(String, String)>,
        log_dir: &Path,
        port: u16,
    ) -> Self {
        Self {
            name: name.to_owned(),
            command: command.into(),
            args: args.iter().map(|arg| (*arg).to_owned()).collect(),
            env,
            log: log_dir.join(format!("{name}.log")),
            child: Mutex::new(None),
            port,
        }
    }

    /// Starts the process with a clean environment (`PATH`, `HOME` and the given variables),
    /// appending to its log, and waits until its port accepts connections.
    pub fn start(&self) {
        if let Err(problem) = self.try_start() {
            panic!("{problem}");
        }
    }

    /// Like [`Service::start`], but says why the process is not listening instead of
    /// panicking: it exited (a port taken meanwhile by another test, say), or it did not
    /// listen within 20 s.
    pub fn try_start(&self) -> Result<(), String> {
        assert!(self.child().is_none(), "{} is already running", self.name);
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("the log file opens");
        let mut command = Command::new(&self.command);
        command
            .args(&self.args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", std::env::var_os("HOME").unwrap_or_default())
            .envs(self.env.iter().map(|(name, value)| (name, value)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the log file handle clones"))
            .stderr(log);
        let child = command
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", self.name));
        *self.child() = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if wait_for_port(self.port, Duration::from_millis(100)) {
                return Ok(());
            }
            if !self.is_running() {
                self.child().take();
                return Err(format!(
                    "{} exited before listening on {}:\n{}",
                    self.name,
                    self.port,
                    self.log_tail()
                ));
            }
        }
        Err(format!(
            "{} did not listen on {}:\n{}",
            self.name,
            self.port,
            self.log_tail()
        ))
    }

    fn child(&self) -> MutexGuard<'_, Option<Child>> {
        // A panic while holding the lock leaves a usable Option behind.
        self.child
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Kills the process with SIGKILL, as a crash would.
    pub fn kill(&self) {
        let taken = self.child().take();
        if let Some(mut child) = taken {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits for the exit; returns how long it took.
    pub fn terminate(&self) -> Duration {
        let taken = self.child().take();
        let Some(mut child) = taken else {
            return Duration::ZERO;
        };
        let started = Instant::now();
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let _ = child.wait();
        started.elapsed()
    }

    /// Returns the process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child().as_ref().map(Child::id)
    }

    /// Returns whether the process is running.
    pub fn is_running(&self) -> bool {
        self.child()
            .as_mut()
            .is_some_and(|child| child.try_wait().ok().flatten().is_none())
    }

    /// Returns the last lines of the log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let start = lines.len().saturating_sub(60);
        format!("--- {} log ---\n{}", self.name, lines[start..].join("\n"))
    }

    /// Returns the whole log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if std::thread::panicking() && self.child().is_some() {
            eprintln!("{}", self.log_tail());
        }
        self.kill();
    }
}
