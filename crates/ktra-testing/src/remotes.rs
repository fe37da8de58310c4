//! Real git servers for the indexer to push to: `git daemon` (git://), lighttpd with
//! git-http-backend and basic auth (http://), and sshd with a key (ssh://).

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use crate::git::init_bare;
use crate::process::{Service, free_port};

/// An empty bare repository, [`ServedRepo::NAME`], alone in a temporary directory for one of
/// the servers below to serve (they write their logs there too).
#[derive(Debug)]
pub struct ServedRepo {
    root: TempDir,
    /// The bare repository's directory, to read what was pushed.
    pub path: PathBuf,
}

impl ServedRepo {
    /// The repository's name under the served directory, as server URLs name it.
    pub const NAME: &'static str = "index.git";

    /// Creates the directory and the repository.
    pub fn create() -> Self {
        let root = tempfile::tempdir().expect("a temporary directory");
        let path = root.path().join(Self::NAME);
        init_bare(&path);
        Self { root, path }
    }

    /// The served directory.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// Serves the directory over git:// with a [`GitDaemon`]; returns it with the
    /// repository's URL.
    pub fn git_daemon(&self) -> (GitDaemon, String) {
        let daemon = GitDaemon::start(self.root(), self.root());
        let url = daemon.url(Self::NAME);
        (daemon, url)
    }
}

/// Makes a bare repository refuse every push (a `pre-receive` hook that fails), or accept
/// them again. Hooks run for pushes over git://, http:// and ssh://, not for libgit2's
/// `file://` transport.
pub fn set_refusing(repo_dir: &Path, refuse: bool) {
    set_pre_receive(
        repo_dir,
        refuse.then_some("echo 'pushes are frozen by policy' >&2\nexit 1"),
    );
}

/// Makes every push to a bare repository take at least `delay` (a `pre-receive` hook that
/// sleeps), the way a busy hosted remote does. Same transports as [`set_refusing`].
pub fn set_push_delay(repo_dir: &Path, delay: std::time::Duration) {
    set_pre_receive(
        repo_dir,
        Some(&format!("sleep {:.3}\nexit 0", delay.as_secs_f64())),
    );
}

fn set_pre_receive(repo_dir: &Path, body: Option<&str>) {
    let hook = repo_dir.join("hooks").join("pre-receive");
    let Some(body) = body else {
        let _ = std::fs::remove_file(&hook);
        return;
    };
    std::fs::create_dir_all(hook.parent().expect("hooks have a parent")).expect("hooks dir");
    std::fs::write(&hook, format!("#!/bin/sh\n{body}\n")).expect("the hook is written");
    let status = Command::new("chmod")
        .args(["+x", &hook.display().to_string()])
        .status()
        .expect("chmod runs");
    assert!(status.success());
}

/// `git daemon` serving every repository under a directory, pushes enabled.
#[derive(Debug)]
pub struct GitDaemon {
    service: Service,
}

impl GitDaemon {
    /// Starts the daemon.
    pub fn start(base: &Path, log_dir: &Path) -> Self {
        let port = free_port();
        let base_arg = format!("--base-path={}", base.display());
        let port_arg = format!("--port={port}");
        // Run git-daemon itself: `git daemon` runs it as a child, which would outlive a kill.
        let exec_path = Command::new("git")
            .arg("--exec-path")
            .output()
            .expect("git runs")
            .stdout;
        let daemon = Path::new(String::from_utf8_lossy(&exec_path).trim()).join("git-daemon");
        let service = Service::new(
            "git-daemon",
            daemon,
            &[
                "--listen=127.0.0.1",
                &port_arg,
                &base_arg,
                "--export-all",
                "--enable=receive-pack",
                "--reuseaddr",
                &base.display().to_string(),
            ],
            Vec::new(),
            log_dir,
            port,
        );
        service.start();
        Self { service }
    }

    /// Returns the git:// URL of a repository under the base directory.
    pub fn url(&self, repo: &str) -> String {
        format!("git://127.0.0.1:{}/{repo}", self.service.port)
    }

    /// Stops the daemon (the remote becomes unreachable).
    pub fn stop(&self) {
        self.service.kill();
    }

    /// Starts it again on the same port.
    pub fn restart(&self) {
        self.service.start();
    }
}

/// lighttpd running git-http-backend behind basic authentication.
#[derive(Debug)]
pub struct HttpRemote {
    service: Service,
    /// The user name accepted.
    pub user: String,
    /// The password accepted.
    pub password: String,
}

impl HttpRemote {
    /// Starts lighttpd serving the repositories under `root` at `/git/`.
    pub fn start(root: &Path, work: &Path) -> Self {
        let port = free_port();
        let user = "indexer".to_owned();
        let password = "s3cret-pass".to_owned();
        std::fs::write(work.join("users"), format!("{user}:{password}\n")).expect("users file");
        let backend = [
            "/usr/lib/git-core/git-http-backend",
            "/usr/local/libexec/git-core/git-http-backend",
        ]
        .into_iter()
        .find(|path| Path::new(path).is_file())
        .expect("git-http-backend is installed");
        let config = format!(
            r#"server.modules = ("mod_alias", "mod_auth", "mod_authn_file", "mod_cgi", "mod_setenv")
server.bind = "127.0.0.1"
server.port = {port}
server.document-root = "{work}"
server.errorlog = "{work}/lighttpd-error.log"
alias.url = ("/git" => "{backend}")
$HTTP["url"] =~ "^/git" {{
    cgi.assign = ("" => "")
    setenv.set-environment = ("GIT_PROJECT_ROOT" => "{root}", "GIT_HTTP_EXPORT_ALL" => "1")
}}
auth.backend = "plain"
auth.backend.plain.userfile = "{work}/users"
auth.require = ("/git" => ("method" => "basic", "realm" => "git", "require" => "valid-user"))
"#,
            work = work.display(),
            root = root.display(),
        );
        let config_path = work.join("lighttpd.conf");
        std::fs::write(&config_path, config).expect("lighttpd.conf");
        let service = Service::new(
            "lighttpd",
            "/usr/sbin/lighttpd",
            &["-D", "-f", &config_path.display().to_string()],
            Vec::new(),
            work,
            port,
        );
        service.start();
        Self {
            service,
            user,
            password,
        }
    }

    /// Returns the http:// URL of a repository under the root.
    pub fn url(&self, repo: &str) -> String {
        format!("http://127.0.0.1:{}/git/{repo}", self.service.port)
    }
}

/// sshd accepting one client key for the current user.
#[derive(Debug)]
pub struct SshRemote {
    service: Service,
    /// The client's private key.
    pub private_key: PathBuf,
    /// A known_hosts file listing the server's host key.
    pub known_hosts: PathBuf,
    user: String,
}

fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-f",
            &path.display().to_string(),
        ])
        .status()
        .expect("ssh-keygen runs");
    assert!(status.success());
}

impl SshRemote {
    /// Starts sshd on a loopback port with fresh host and client keys.
    pub fn start(work: &Path) -> Self {
        let port = free_port();
        std::fs::create_dir_all("/run/sshd").expect("sshd's privilege separation directory");
        let host_key = work.join("host_key");
        let private_key = work.join("client_key");
        keygen(&host_key);
        keygen(&private_key);
        let public = std::fs::read_to_string(work.join("client_key.pub")).expect("client key");
        std::fs::write(work.join("authorized_keys"), public).expect("authorized_keys");
        let host_public = std::fs::read_to_string(work.join("host_key.pub")).expect("host key");
        let mut host_fields = host_public.split_whitespace();
        let known_hosts = work.join("known_hosts");
        std::fs::write(
            &known_hosts,
            format!(
                "[127.0.0.1]:{port} {} {}\n",
                host_fields.next().expect("key type"),
                host_fields.next().expect("key")
            ),
        )
        .expect("known_hosts");
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {host}\nAuthorizedKeysFile {work}/authorized_keys\n\
             StrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             PermitRootLogin prohibit-password\nPidFile {work}/sshd.pid\n",
            host = host_key.display(),
            work = work.display()
        );
        let config_path = work.join("sshd_config");
        std::fs::write(&config_path, config).expect("sshd_config");
        let service = Service::new(
            "sshd",
            "/usr/sbin/sshd",
            &["-D", "-e", "-f", &config_path.display().to_string()],
            Vec::new(),
            work,
            port,
        );
        service.start();
        let user = String::from_utf8(
            Command::new("id")
                .arg("-un")
                .output()
                .expect("id runs")
                .stdout,
        )
        .expect("a user name")
        .trim()
        .to_owned();
        Self {
            service,
            private_key,
            known_hosts,
            user,
        }
    }

    /// Returns the ssh:// URL of a repository at an absolute path.
    pub fn url(&self, repo: &Path) -> String {
        format!(
            "ssh://{}@127.0.0.1:{}{}",
            self.user,
            self.service.port,
            repo.display()
        )
    }
}
