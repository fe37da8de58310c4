//! The real `cargo` against the running service, with throwaway `CARGO_HOME`s.

use ktra_testing::cargo::{CargoHome, library_manifest, package};
use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::{Backend, TestApp};

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

pub(crate) async fn cargo_publishes_builds_yanks_owns_searches_and_updates(backend: Backend) {
    // The e2e suite uses the production Argon2 parameters.
    let app = TestApp::start_on(
        backend,
        &[
            ("KTRA_AUTH_ARGON2_MEMORY_KIB", "19456"),
            ("KTRA_AUTH_ARGON2_ITERATIONS", "2"),
        ],
    )
    .await;
    let token = app.create_user("alice").await;
    app.create_user("bob").await;
    let publisher = cargo_home(&app);
    let work = tempfile::tempdir().unwrap();
    let root = work.path();
    publisher.login(root, "ktra", &token).await;

    // Dependencies with 1-, 2-, 3- and 4+-letter and upper-case names.
    for (name, value) in [
        ("x", 1),
        ("ab", 2),
        ("abc", 3),
        ("RealName", 4),
        ("opt_dep", 5),
    ] {
        let dir = package(
            root,
            name,
            &library_manifest(name, "0.1.0", ""),
            &[(
                "src/lib.rs",
                &format!("pub fn value() -> u32 {{ {value} }}\n"),
            )],
        );
        publisher
            .ok(&dir, &["publish", "--registry", "ktra", "--no-verify"])
            .await;
    }

    // The library under test, verified by cargo (which downloads its dependencies from us).
    let fancy = package(
        root,
        "fancy",
        &fancy_manifest("0.1.0"),
        &[
            ("src/lib.rs", FANCY_LIB),
            ("build.rs", "fn main() { let _ = ab::value(); }\n"),
        ],
    );
    publisher
        .ok(&fancy, &["publish", "--registry", "ktra", "--allow-dirty"])
        .await;
    let lines = app.index_lines("Fancy_Lib").await.unwrap();
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

    // A binary that depends on it builds from a clean CARGO_HOME, without credentials.
    let app_dir = package(
        root,
        "app",
        "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\npublish = false\n\n\
         [dependencies]\nfancy = { package = \"Fancy_Lib\", version = \"0.1\", registry = \"ktra\", features = [\"extra\"] }\n",
        &[(
            "src/main.rs",
            "fn main() { println!(\"answer={}\", fancy::answer()); }\n",
        )],
    );
    let consumer = cargo_home(&app);
    let run = consumer.ok(&app_dir, &["run", "--quiet"]).await;
    assert!(run.contains("answer=12"), "{run}");
    let lock = std::fs::read_to_string(app_dir.join("Cargo.lock")).unwrap();
    assert!(
        lock.contains("name = \"Fancy_Lib\"\nversion = \"0.1.0\""),
        "{lock}"
    );

    // Yank and undo, for every name length and case.
    for (name, version) in [
        ("x", "0.1.0"),
        ("ab", "0.1.0"),
        ("abc", "0.1.0"),
        ("RealName", "0.1.0"),
        ("Fancy_Lib", "0.1.0"),
    ] {
        let spec = format!("{name}@{version}");
        publisher
            .ok(root, &["yank", "--registry", "ktra", &spec])
            .await;
        assert_yanked(&app, name, version, true).await;
        publisher
            .ok(root, &["yank", "--registry", "ktra", "--undo", &spec])
            .await;
        assert_yanked(&app, name, version, false).await;
    }

    // Owners.
    publisher
        .ok(
            root,
            &["owner", "--registry", "ktra", "--add", "bob", "Fancy_Lib"],
        )
        .await;
    let listed = publisher
        .ok(
            root,
            &["owner", "--registry", "ktra", "--list", "Fancy_Lib"],
        )
        .await;
    assert!(
        listed.contains("alice") && listed.contains("bob"),
        "{listed}"
    );
    publisher
        .ok(
            root,
            &[
                "owner",
                "--registry",
                "ktra",
                "--remove",
                "bob",
                "Fancy_Lib",
            ],
        )
        .await;
    let listed = publisher
        .ok(
            root,
            &["owner", "--registry", "ktra", "--list", "Fancy_Lib"],
        )
        .await;
    assert!(
        listed.contains("alice") && !listed.contains("bob"),
        "{listed}"
    );

    // A second version, then `cargo update` picks it up.
    std::fs::write(fancy.join("Cargo.toml"), fancy_manifest("0.1.1")).unwrap();
    publisher
        .ok(
            &fancy,
            &[
                "publish",
                "--registry",
                "ktra",
                "--allow-dirty",
                "--no-verify",
            ],
        )
        .await;
    let found = publisher
        .ok(root, &["search", "--registry", "ktra", "fancy"])
        .await;
    assert!(found.contains("Fancy_Lib = \"0.1.1\""), "{found}");
    consumer.ok(&app_dir, &["update"]).await;
    let lock = std::fs::read_to_string(app_dir.join("Cargo.lock")).unwrap();
    assert!(
        lock.contains("name = \"Fancy_Lib\"\nversion = \"0.1.1\""),
        "{lock}"
    );
    let run = consumer.ok(&app_dir, &["run", "--quiet"]).await;
    assert!(run.contains("answer=12"), "{run}");

    // A publish cargo refuses to repeat shows the registry's message.
    let again = publisher
        .output(
            &fancy,
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
    let response = app.client.get(app.url("/me")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

crate::on_every_backend!(cargo_publishes_builds_yanks_owns_searches_and_updates);
