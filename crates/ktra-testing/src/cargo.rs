//! The real `cargo`, with a throwaway `CARGO_HOME` per user.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use tempfile::TempDir;

/// A `CARGO_HOME` that knows registries by name.
#[derive(Debug)]
pub struct CargoHome {
    home: TempDir,
    target: TempDir,
}

impl CargoHome {
    /// Configures `registries` (name, index URL); sparse URLs start with `sparse+`.
    pub fn new(registries: &[(&str, &str)]) -> Self {
        let home = tempfile::tempdir().expect("a temporary directory");
        let mut config = String::new();
        for (name, index) in registries {
            config.push_str(&format!(
                "[registries.{name}]\nindex = \"{index}\"\ncredential-provider = \"cargo:token\"\n"
            ));
        }
        config.push_str("[net]\nretry = 0\n");
        std::fs::write(home.path().join("config.toml"), config).expect("config.toml");
        Self {
            home,
            target: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    /// Configures the one registry `name` at `index` and logs in to it with `token`.
    pub async fn logged_in(name: &str, index: &str, token: &str) -> Self {
        let home = Self::new(&[(name, index)]);
        home.login(home.home.path(), name, token).await;
        home
    }

    fn command(&self, cwd: &Path, args: &[&str]) -> Command {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut command = Command::new(cargo);
        command
            .args(args)
            .current_dir(cwd)
            .env("CARGO_HOME", self.home.path())
            .env("CARGO_TARGET_DIR", self.target.path())
            .env("CARGO_TERM_COLOR", "never")
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_BUILD_TARGET_DIR");
        command
    }

    /// Runs cargo (off the async workers) and returns its output, whatever the exit status.
    pub async fn output(&self, cwd: &Path, args: &[&str], stdin: Option<&str>) -> Output {
        let mut command = self.command(cwd, args);
        let stdin = stdin.map(str::to_owned);
        ktra_core::task::spawn_blocking(move || {
            command.stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            });
            command.stdout(Stdio::piped()).stderr(Stdio::piped());
            let mut child = command.spawn().expect("cargo runs");
            if let Some(text) = stdin {
                use std::io::Write;
                child
                    .stdin
                    .take()
                    .expect("stdin is piped")
                    .write_all(text.as_bytes())
                    .expect("cargo reads stdin");
            }
            child.wait_with_output().expect("cargo finishes")
        })
        .await
        .expect("the cargo task completes")
    }

    /// Runs cargo, asserts success, and returns stdout and stderr together.
    pub async fn ok(&self, cwd: &Path, args: &[&str]) -> String {
        let output = self.output(cwd, args, None).await;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.status.success(), "cargo {args:?} failed:\n{text}");
        text
    }

    /// Publishes the package in `dir` to `registry` (without building it, and whatever the
    /// state of its files); asserts success and returns cargo's output.
    pub async fn publish(&self, dir: &Path, registry: &str) -> String {
        self.ok(
            dir,
            &[
                "publish",
                "--registry",
                registry,
                "--no-verify",
                "--allow-dirty",
            ],
        )
        .await
    }

    /// Runs the package in `dir` (`cargo run --quiet`) and asserts that it printed `expected`.
    pub async fn assert_runs_printing(&self, dir: &Path, expected: &str) {
        let run = self.ok(dir, &["run", "--quiet"]).await;
        assert!(run.contains(expected), "no `{expected}` in: {run}");
    }

    /// Searches `registry` for `query` (`cargo search`) and asserts that the results list
    /// `expected`.
    pub async fn assert_finds(&self, cwd: &Path, registry: &str, query: &str, expected: &str) {
        let found = self
            .ok(cwd, &["search", "--registry", registry, query])
            .await;
        assert!(found.contains(expected), "no `{expected}` in: {found}");
    }

    /// Logs in to a registry with a token.
    pub async fn login(&self, cwd: &Path, registry: &str, token: &str) {
        let output = self
            .output(
                cwd,
                &["login", "--registry", registry],
                Some(&format!("{token}\n")),
            )
            .await;
        assert!(
            output.status.success(),
            "cargo login failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// Writes a package into `root/dir`, with `Cargo.toml` and the given files.
pub fn package(root: &Path, dir: &str, manifest: &str, files: &[(&str, &str)]) -> PathBuf {
    let path = root.join(dir);
    std::fs::create_dir_all(path.join("src")).expect("the package directory");
    std::fs::write(path.join("Cargo.toml"), manifest).expect("Cargo.toml");
    for (file, content) in files {
        let file_path = path.join(file);
        std::fs::create_dir_all(file_path.parent().expect("files have a parent"))
            .expect("the file's directory");
        std::fs::write(file_path, content).expect("the file");
    }
    path
}

/// Replaces the manifest of the package in `dir` with [`library_manifest`]`(name, version,
/// extra)`: the next version of a library, say.
pub fn rewrite_library_manifest(dir: &Path, name: &str, version: &str, extra: &str) {
    std::fs::write(
        dir.join("Cargo.toml"),
        library_manifest(name, version, extra),
    )
    .expect("Cargo.toml");
}

/// A minimal library manifest.
pub fn library_manifest(name: &str, version: &str, extra: &str) -> String {
    format!(
        "[package]\nname = \"{name}\"\nversion = \"{version}\"\nedition = \"2021\"\n\
         description = \"the {name} crate\"\nlicense = \"MIT\"\n{extra}"
    )
}

/// Writes a library package into `root/{name in lower case}`: [`library_manifest`] without
/// extras, and `src/lib.rs` with `lib_rs`.
pub fn library_package(root: &Path, name: &str, version: &str, lib_rs: &str) -> PathBuf {
    package(
        root,
        &name.to_ascii_lowercase(),
        &library_manifest(name, version, ""),
        &[("src/lib.rs", lib_rs)],
    )
}

/// Writes an unpublished binary package `app` into `root/dir` whose one dependency is
/// `dependency` (a line of `[dependencies]`, naming its registry) and whose `main` prints
/// `{label}={expression}`, so `cargo run` shows what the dependency computed.
pub fn printing_app(
    root: &Path,
    dir: &str,
    dependency: &str,
    label: &str,
    expression: &str,
) -> PathBuf {
    package(
        root,
        dir,
        &format!(
            "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\npublish = false\n\n\
             [dependencies]\n{dependency}\n"
        ),
        &[(
            "src/main.rs",
            &format!("fn main() {{ println!(\"{label}={{}}\", {expression}); }}\n"),
        )],
    )
}
