//! `ktra`: runs the indexer and the API from one Ktra configuration file, as Ktra ran as one
//! binary with one file.
//!
//! Both children read the same file (`-c`, default `./ktra.toml`) and environment, plus what
//! they must agree on and a Ktra file does not say: the indexer listens on loopback
//! (`127.0.0.1:8001`, metrics on `:8002`) unless `[indexer_config]` or `KTRA_INDEXER_*` say
//! otherwise, and the API is given that address as `KTRA_INDEXER_URL`. SIGINT or SIGTERM
//! stops both, the API first; when one exits, the other is stopped and `ktra` exits with a
//! failure. A `ktra` killed with SIGKILL leaves them running (they are in a process group of
//! their own): stop them by that group, or run `ktra` under a supervisor that kills its cgroup.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use ktra_core::config::IndexerEndpointConfig;
use ktra_core::config::{ConfigFileArg, Settings};
use tokio::process::{Child, Command};
use tokio::signal::unix::{SignalKind, signal};

/// Runs Ktra's registry (the git indexer and the API) from one Ktra configuration file.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    #[command(flatten)]
    config: ConfigFileArg,
}

/// How long the children get to drain before they are killed.
const STOP_GRACE: Duration = Duration::from_secs(30);

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    let settings = args.config.load()?;
    let env = derived_env(&settings)?;
    let config_args: Vec<OsString> = match &args.config.config {
        Some(path) => vec!["-c".into(), path.clone().into_os_string()],
        None => Vec::new(),
    };
    // Listening before the children exist: a signal in between must not kill `ktra` alone.
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut indexer = spawn("ktra-indexer", &config_args, &env)?;
    let mut api = match spawn("ktra-api", &config_args, &env) {
        Ok(api) => api,
        Err(error) => {
            stop(&mut indexer).await;
            return Err(error);
        }
    };
    let stop_requested = async {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    };
    let code = tokio::select! {
        () = stop_requested => {
            // The API first, so that it hands the indexer what it still holds.
            stop(&mut api).await;
            stop(&mut indexer).await;
            ExitCode::SUCCESS
        }
        status = api.wait() => {
            eprintln!("ktra: ktra-api exited ({}); stopping ktra-indexer", describe(status));
            stop(&mut indexer).await;
            ExitCode::FAILURE
        }
        status = indexer.wait() => {
            eprintln!("ktra: ktra-indexer exited ({}); stopping ktra-api", describe(status));
            stop(&mut api).await;
            ExitCode::FAILURE
        }
    };
    Ok(code)
}

/// The variables both children need to agree on, where neither the file nor the environment
/// sets them.
fn derived_env(settings: &Settings) -> anyhow::Result<Vec<(String, String)>> {
    let mut env = Vec::new();
    let listen = if settings.is_set("KTRA_INDEXER_LISTEN") {
        IndexerEndpointConfig::from_settings(settings)?.listen
    } else {
        let listen = std::net::SocketAddr::from(([127, 0, 0, 1], 8001));
        env.push(("KTRA_INDEXER_LISTEN".to_owned(), listen.to_string()));
        listen
    };
    if !settings.is_set("KTRA_INDEXER_METRICS_LISTEN") {
        env.push((
            "KTRA_INDEXER_METRICS_LISTEN".to_owned(),
            format!("{}:{}", listen.ip(), listen.port() + 1),
        ));
    }
    if !settings.is_set("KTRA_INDEXER_URL") {
        let host = if listen.ip().is_unspecified() {
            "127.0.0.1".to_owned()
        } else {
            listen.ip().to_string()
        };
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host
        };
        env.push((
            "KTRA_INDEXER_URL".to_owned(),
            format!("http://{host}:{}", listen.port()),
        ));
    }
    Ok(env)
}

/// The binary beside this one (as installed together), else the one on `PATH`.
fn binary(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(name)))
        .filter(|path| path.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

fn spawn(name: &str, args: &[OsString], env: &[(String, String)]) -> anyhow::Result<Child> {
    let path = binary(name);
    Command::new(&path)
        .args(args)
        .envs(env.iter().map(|(key, value)| (key, value)))
        .kill_on_drop(true)
        // A group of its own: a terminal's Ctrl-C (or a process-group signal) reaches `ktra`
        // alone, which stops the API first so that it hands the indexer what it holds.
        .process_group(0)
        .spawn()
        .map_err(|error| anyhow::anyhow!("cannot start {}: {error}", display(&path)))
}

/// Sends SIGTERM and waits for the child to drain; kills it after [`STOP_GRACE`].
async fn stop(child: &mut Child) {
    if let Some(pid) = child
        .id()
        .and_then(|id| rustix::process::Pid::from_raw(id.cast_signed()))
    {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
    if tokio::time::timeout(STOP_GRACE, child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
}

fn describe(status: std::io::Result<std::process::ExitStatus>) -> String {
    match status {
        Ok(status) => status.to_string(),
        Err(error) => error.to_string(),
    }
}

fn display(path: &Path) -> String {
    path.display().to_string()
}
