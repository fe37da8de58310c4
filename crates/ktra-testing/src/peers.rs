//! Peer registries run beside ours: Ktra 0.7.0, the registry our users move from, as its book
//! sets one up (sled, a `file://` git remote). Installed by `make setup` into `.tools/`.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::git::{git, init_bare};
use crate::process::{Service, free_port, project_path};
use crate::registry::new_user;

/// Where `scripts/setup-test-deps.sh` installs Ktra.
pub fn ktra_binary() -> PathBuf {
    let path = project_path(".tools/ktra-0.7.0/bin/ktra");
    assert!(
        path.is_file(),
        "{} is missing: run scripts/setup-test-deps.sh (make setup)",
        path.display()
    );
    path
}

/// A Ktra installation as its book sets one up: a bare remote holding the operator's
/// `config.json`, and a `ktra.toml` with absolute paths. Listening once `start` returns.
#[derive(Debug)]
pub struct Ktra {
    /// The running process.
    pub service: Service,
    /// Its `ktra.toml`.
    pub toml: PathBuf,
    /// The bare git remote of its index.
    pub remote: PathBuf,
    /// Its base URL.
    pub base: String,
    /// Its port on loopback.
    pub port: u16,
}

impl Ktra {
    /// Starts Ktra with its files under `dir`.
    pub fn start(dir: &Path) -> Self {
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let remote = dir.join("index.git");
        init_bare(&remote);
        let seed = dir.join("seed");
        std::fs::create_dir_all(&seed).unwrap();
        git(&seed, &["init", "--quiet", "--initial-branch=main", "."]);
        std::fs::write(
            seed.join("config.json"),
            json!({"dl": format!("{base}/dl"), "api": base}).to_string(),
        )
        .unwrap();
        git(&seed, &["add", "config.json"]);
        git(&seed, &["commit", "--quiet", "-m", "initial commit"]);
        git(
            &seed,
            &[
                "push",
                "--quiet",
                &format!("file://{}", remote.display()),
                "HEAD:main",
            ],
        );
        let toml = dir.join("ktra.toml");
        std::fs::write(
            &toml,
            format!(
                "[index_config]\nremote_url = \"file://{remote}\"\nlocal_path = \"{dir}/index\"\n\
                 branch = \"main\"\nname = \"ktra\"\nemail = \"ktra@example.com\"\n\n\
                 [crate_files_config]\ndl_dir_path = \"{dir}/crates\"\n\
                 cache_dir_path = \"{dir}/crates_io_caches\"\n\n\
                 [db_config]\ndb_dir_path = \"{dir}/db\"\n\n\
                 [server_config]\naddress = [127, 0, 0, 1]\nport = {port}\n",
                remote = remote.display(),
                dir = dir.display(),
            ),
        )
        .unwrap();
        let service = Service::new(
            "ktra",
            ktra_binary(),
            &["-c", &toml.display().to_string()],
            vec![("RUST_LOG".to_owned(), "info".to_owned())],
            dir,
            port,
        );
        service.start();
        Self {
            service,
            toml,
            remote,
            base,
            port,
        }
    }

    /// Registers a user through Ktra's API; returns the token.
    pub async fn new_user(&self, name: &str, password: &str) -> String {
        new_user(&self.base, name, password).await
    }
}
