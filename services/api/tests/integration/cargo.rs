//! The real `cargo` against the running service, with throwaway `CARGO_HOME`s: each case starts
//! from a registry where cargo has published a library with every kind of dependency.

use std::path::{Path, PathBuf};

use ktra_testing::cargo::{CargoHome, library_manifest, package};
use reqwest::StatusCode;
use serde_json::Value;
use tempfile::TempDir;

use crate::harness::{Backend, PRODUCTION_ARGON2, TestApp};

fn cargo_home(app: &TestApp) -> CargoHome {
    CargoHome::new(&[("ktra", &format!("sparse+{}/index/", app.base))])
}

const FANCY_LIB: &str = r#"
pub fn answer() -> u32 {
    renamed::value() + abc_value() + extra()
}
#[cfg(unix)]
fn abc_value() -> u32 { abc::value() }
#[cfg(not(unix))]
fn abc_value() -> u32 { 0 }
#[cfg(feature = "extra")]
fn extra() -> u32 { opt_dep::value() }
#[cfg(not(feature = "extra"))]
fn extra() -> u32 { 0 }
#[cfg(test)]
mod tests { #[test] fn uses_dev_dep() { assert_eq!(x::value(), 1); } }
"#;

fn fancy_manifest(version: &str) -> String {
    format!(
        r#"[package]
name = "Fancy_Lib"
version = "{version}"
edition = "2021"
description = "a library with every kind of dependency"
license = "MIT"
build = "build.rs"

[features]
default = ["std"]
std = []
extra = ["dep:opt_dep"]

[dependencies]
renamed = {{ package = "RealName", version = "0.1", registry = "ktra" }}
opt_dep = {{ version = "0.1", registry = "ktra", optional = true }}

[target.'cfg(unix)'.dependencies]
abc = {{ version = "0.1", registry = "ktra" }}

[build-dependencies]
ab = {{ version = "0.1", registry = "ktra" }}

[dev-dependencies]
x = {{ version = "0.1", registry = "ktra" }}
"#
    )
}

fn line_of<'a>(lines: &'a [Value], version: &str) -> &'a Value {
    lines
        .iter()
        .find(|line| line["vers"] == version)
        .unwrap_or_else(|| panic!("no line for {version}: {lines:?}"))
}

async fn assert_yanked(app: &TestApp, name: &str, version: &str, yanked: bool) {
    let lines = app.index_lines(name).await.unwrap();
    assert_eq!(
        line_of(&lines, version)["yanked"],
        yanked,
        "{name}@{version}"
    );
}

/// A registry where alice (through cargo) published `Fancy_Lib` 0.1.0 and its dependencies,
/// which have 1-, 2-, 3- and 4+-letter and upper-case names; bob exists.
struct Published {
    app: TestApp,
    /// Alice's cargo, logged in to the registry as `ktra`.
    publisher: CargoHome,
    /// The directory of `Fancy_Lib`'s package.
    fancy: PathBuf,
    work: TempDir,
}

/// Whether cargo builds `Fancy_Lib` before publishing it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Verify {
    Yes,
    No,
}

impl Published {
    async fn start(backend: Backend, verify: Verify) -> Self {
        // The e2e suite uses the production Argon2 parameters.
        let app = TestApp::start_on(backend, PRODUCTION_ARGON2).await;
        let token = app.create_user("alice").await;
        app.create_user("bob").await;
        let publisher = cargo_home(&app);
        let work = tempfile::tempdir().unwrap();
        let root = work.path();
        publisher.login(root, "ktra", &token).await;
        for (name, value) in [
            ("x", 1),
            ("ab", 2),
            ("abc", 3),
            ("RealName", 4),
            ("opt_dep", 5),
        ] {
            let lib = format!("pub fn value() -> u32 {{ {value} }}\n");
            let manifest = library_manifest(name, "0.1.0", "");
            let dir = package(root, name, &manifest, &[("src/lib.rs", &lib)]);
            publisher.publish(&dir, "ktra").await;
        }
        let fancy = package(
            root,
            "fancy",
            &fancy_manifest("0.1.0"),
            &[
                ("src/lib.rs", FANCY_LIB),
                ("build.rs", "fn main() { let _ = ab::value(); }\n"),
            ],
        );
        if verify == Verify::Yes {
            publisher
                .ok(&fancy, &["publish", "--registry", "ktra", "--allow-dirty"])
                .await;
        } else {
            publisher.publish(&fancy, "ktra").await;
        }
        Self {
            app,
            publisher,
            fancy,
            work,
        }
    }

    fn root(&self) -> &Path {
        self.work.path()
    }

    /// Writes a binary that depends on `Fancy_Lib` 0.1 with its `extra` feature; returns its
    /// directory.
    fn dependent_binary(&self) -> PathBuf {
        package(
            self.root(),
            "app",
            "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\npublish = false\n\n\
             [dependencies]\nfancy = { package = \"Fancy_Lib\", version = \"0.1\", registry = \"ktra\", features = [\"extra\"] }\n",
            &[(
                "src/main.rs",
                "fn main() { println!(\"answer={}\", fancy::answer()); }\n",
            )],
        )
    }

    /// Runs cargo `args` on `Fancy_Lib` in the registry as alice; returns cargo's output.
    async fn cargo(&self, args: &[&str]) -> String {
        let mut all = vec![args[0], "--registry", "ktra"];
        all.extend_from_slice(&args[1..]);
        self.publisher.ok(self.root(), &all).await
    }
}

/// Asserts that the `Cargo.lock` in `dir` locks `Fancy_Lib` at `version`.
fn assert_locks_fancy_at(dir: &Path, version: &str) {
    let lock = std::fs::read_to_string(dir.join("Cargo.lock")).unwrap();
    assert!(
        lock.contains(&format!("name = \"Fancy_Lib\"\nversion = \"{version}\"")),
        "{lock}"
    );
}

/// Asserts that `cargo run` in `dir` prints what `Fancy_Lib` answers.
async fn assert_runs(consumer: &CargoHome, dir: &Path) {
    let run = consumer.ok(dir, &["run", "--quiet"]).await;
    assert!(run.contains("answer=12"), "{run}");
}

async fn cargo_publishes_every_kind_of_dependency_into_the_index_line(backend: Backend) {
    // The library is verified by cargo, which downloads its dependencies from us.
    let published = Published::start(backend, Verify::Yes).await;
    let lines = published.app.index_lines("Fancy_Lib").await.unwrap();
    let line = line_of(&lines, "0.1.0");
    assert_eq!(line["name"], "Fancy_Lib");
    assert_eq!(line["v"], 2);
    assert_eq!(
        line["features"],
        serde_json::json!({"default": ["std"], "std": []})
    );
    assert_eq!(
        line["features2"],
        serde_json::json!({"extra": ["dep:opt_dep"]})
    );
    let deps: Vec<(String, String, Value, Value, bool)> = line["deps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|dep| {
            (
                dep["name"].as_str().unwrap().to_owned(),
                dep["kind"].as_str().unwrap().to_owned(),
                dep["target"].clone(),
                dep["package"].clone(),
                dep["optional"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        deps,
        vec![
            ("ab".into(), "build".into(), Value::Null, Value::Null, false),
            (
                "abc".into(),
                "normal".into(),
                "cfg(unix)".into(),
                Value::Null,
                false
            ),
            (
                "opt_dep".into(),
                "normal".into(),
                Value::Null,
                Value::Null,
                true
            ),
            (
                "renamed".into(),
                "normal".into(),
                Value::Null,
                "RealName".into(),
                false
            ),
            ("x".into(), "dev".into(), Value::Null, Value::Null, false),
        ]
    );
    assert!(line["deps"][0]["req"].as_str().unwrap().contains("0.1"));
    assert_eq!(line["cksum"].as_str().unwrap().len(), 64);
}

async fn a_dependent_binary_builds_from_a_clean_cargo_home_without_credentials(backend: Backend) {
    let published = Published::start(backend, Verify::No).await;
    let app_dir = published.dependent_binary();
    assert_runs(&cargo_home(&published.app), &app_dir).await;
    assert_locks_fancy_at(&app_dir, "0.1.0");
}

async fn cargo_yanks_and_unyanks_every_name_length_and_case(backend: Backend) {
    let published = Published::start(backend, Verify::No).await;
    for (name, version) in [
        ("x", "0.1.0"),
        ("ab", "0.1.0"),
        ("abc", "0.1.0"),
        ("RealName", "0.1.0"),
        ("Fancy_Lib", "0.1.0"),
    ] {
        let spec = format!("{name}@{version}");
        published.cargo(&["yank", &spec]).await;
        assert_yanked(&published.app, name, version, true).await;
        published.cargo(&["yank", "--undo", &spec]).await;
        assert_yanked(&published.app, name, version, false).await;
    }
}

async fn cargo_adds_lists_and_removes_owners(backend: Backend) {
    let published = Published::start(backend, Verify::No).await;
    published
        .cargo(&["owner", "--add", "bob", "Fancy_Lib"])
        .await;
    let listed = published.cargo(&["owner", "--list", "Fancy_Lib"]).await;
    assert!(
        listed.contains("alice") && listed.contains("bob"),
        "{listed}"
    );
    published
        .cargo(&["owner", "--remove", "bob", "Fancy_Lib"])
        .await;
    let listed = published.cargo(&["owner", "--list", "Fancy_Lib"]).await;
    assert!(
        listed.contains("alice") && !listed.contains("bob"),
        "{listed}"
    );
}

async fn cargo_search_and_update_find_a_new_version(backend: Backend) {
    let published = Published::start(backend, Verify::No).await;
    let app_dir = published.dependent_binary();
    let consumer = cargo_home(&published.app);
    consumer.ok(&app_dir, &["generate-lockfile"]).await;
    assert_locks_fancy_at(&app_dir, "0.1.0");
    std::fs::write(published.fancy.join("Cargo.toml"), fancy_manifest("0.1.1")).unwrap();
    published.publisher.publish(&published.fancy, "ktra").await;
    let found = published.cargo(&["search", "fancy"]).await;
    assert!(found.contains("Fancy_Lib = \"0.1.1\""), "{found}");
    consumer.ok(&app_dir, &["update"]).await;
    assert_locks_fancy_at(&app_dir, "0.1.1");
    assert_runs(&consumer, &app_dir).await;
}

async fn a_publish_cargo_repeats_shows_the_registrys_message(backend: Backend) {
    let published = Published::start(backend, Verify::No).await;
    let again = published
        .publisher
        .output(
            &published.fancy,
            &[
                "publish",
                "--registry",
                "ktra",
                "--allow-dirty",
                "--no-verify",
            ],
            None,
        )
        .await;
    assert!(!again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains("already uploaded") || stderr.contains("already exists"),
        "{stderr}"
    );
    let (status, _) = published.app.get_bytes("/me").await;
    assert_eq!(status, StatusCode::OK);
}

crate::on_every_backend!(
    cargo_publishes_every_kind_of_dependency_into_the_index_line,
    a_dependent_binary_builds_from_a_clean_cargo_home_without_credentials,
    cargo_yanks_and_unyanks_every_name_length_and_case,
    cargo_adds_lists_and_removes_owners,
    cargo_search_and_update_find_a_new_version,
    a_publish_cargo_repeats_shows_the_registrys_message,
);
