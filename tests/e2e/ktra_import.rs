//! Moving from Ktra: the real Ktra 0.7.0 (sled, a `file://` git remote) is used with the real
//! cargo, stopped, and imported; cargo then carries on against this registry with the same
//! tokens and the same index URL (the remote is kept).

use ktra_testing::cargo::{
    CargoHome, library_manifest, library_package, package, printing_app, rewrite_library_manifest,
};
use ktra_testing::git::branch_files;
use ktra_testing::peers::Ktra;
use ktra_testing::registry::Registry;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ktra_installation_moves_here_with_its_tokens_owners_yanks_and_remote() {
    let dir = tempfile::tempdir().unwrap();
    let ktra = Ktra::start(dir.path());
    let alice_token = ktra.new_user("alice", "alice's password").await;
    let bob_token = ktra.new_user("bob", "bob's password").await;
    let index_url = format!("file://{}", ktra.remote.display());
    let alice = CargoHome::logged_in("ktra", &index_url, &alice_token).await;
    let bob = CargoHome::logged_in("ktra", &index_url, &bob_token).await;
    let work = dir.path().join("work");

    // An upper-case name; a crate with two versions, the first yanked, and a second owner; a
    // dependent with a renamed optional dependency behind a `dep:` feature.
    let upper = library_package(
        &work,
        "Upper_Crate",
        "1.0.0",
        "pub fn upper() -> u32 { 1 }\n",
    );
    alice.publish(&upper, "ktra").await;
    let tiny = library_package(
        &work,
        "tiny-crate",
        "0.1.0",
        "pub fn tiny() -> u32 { 10 }\n",
    );
    alice.publish(&tiny, "ktra").await;
    rewrite_library_manifest(&tiny, "tiny-crate", "0.2.0", "\n[features]\nextra = []\n");
    std::fs::write(tiny.join("src/lib.rs"), "pub fn tiny() -> u32 { 20 }\n").unwrap();
    alice.publish(&tiny, "ktra").await;
    let dependent = package(
        &work,
        "dependent",
        &library_manifest(
            "dependent",
            "0.1.0",
            "\n[dependencies]\ntiny = { package = \"tiny-crate\", version = \"0.2\", registry = \"ktra\", optional = true }\n\
             upper = { package = \"Upper_Crate\", version = \"1\", registry = \"ktra\" }\n\n\
             [features]\nfast = [\"dep:tiny\"]\n",
        ),
        &[(
            "src/lib.rs",
            "pub fn total() -> u32 { upper::upper() + extra() }\n\
             #[cfg(feature = \"fast\")] fn extra() -> u32 { tiny::tiny() }\n\
             #[cfg(not(feature = \"fast\"))] fn extra() -> u32 { 0 }\n",
        )],
    );
    alice.publish(&dependent, "ktra").await;
    alice
        .ok(
            dir.path(),
            &["yank", "--registry", "ktra", "tiny-crate@0.1.0"],
        )
        .await;
    alice
        .ok(
            dir.path(),
            &[
                "owner",
                "--registry",
                "ktra",
                "--add",
                "ktra-secure-auth:bob",
                "tiny-crate",
            ],
        )
        .await;
    let ktra_lines = branch_files(&ktra.remote, "main");
    ktra.service.terminate();

    // Our registry, pointed at Ktra's remote. Its API stops for the import (the embedded
    // store is one process's); the indexer stays up to write what is imported.
    let registry = Registry::builder().remote(&index_url).start().await;
    registry.api.terminate();
    let toml = ktra.toml.display().to_string();
    let (code, dry_run) = registry.api_command(&["import", "ktra", &toml, "--dry-run"]);
    assert_eq!(code, 0, "{dry_run}");
    for expected in [
        "2 user(s), 3 crate(s), 4 version(s) to import",
        "crate tiny-crate: 0.1.0, 0.2.0 (1 yanked), owners alice, bob",
        "crate Upper_Crate: 1.0.0 (0 yanked), owners alice",
        "No problems found.",
        "Dry run: nothing was changed.",
    ] {
        assert!(dry_run.contains(expected), "no `{expected}` in:\n{dry_run}");
    }
    let (code, imported) = registry.api_command(&["import", "ktra", &toml]);
    assert_eq!(code, 0, "{imported}");
    assert!(
        imported.contains("Imported: 2 user(s), 4 version(s) of 3 crate(s), 1 version(s) yanked again, 1 owner(s) added."),
        "{imported}"
    );
    assert!(
        imported.contains("The indexer wrote 3 crate(s)"),
        "{imported}"
    );
    // Safe to repeat: the second run finds everything there.
    let (code, again) = registry.api_command(&["import", "ktra", &toml]);
    assert_eq!(code, 0, "{again}");
    assert!(
        again.contains("Imported: 0 user(s), 0 version(s) of 0 crate(s), 0 version(s) yanked again, 0 owner(s) added.")
            && again.contains("Already there (an earlier run): 2 user(s), 4 version(s);")
            && !again.contains("note:"),
        "{again}"
    );
    let (code, verify) = registry.api_command(&["verify-index"]);
    assert_eq!(code, 0, "{verify}");

    // Every line Ktra served is in the kept remote, the same but for its null keys; and
    // config.json now sends cargo here.
    let ours = branch_files(&ktra.remote, "main");
    for (path, text) in &ktra_lines {
        if path == "config.json" {
            continue;
        }
        let theirs: Vec<Value> = text
            .lines()
            .map(|line| without_nulls(serde_json::from_str(line).unwrap()))
            .collect();
        let now: Vec<Value> = ours[path]
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(now, theirs, "{path}");
        assert!(!ours[path].contains("null"), "{}", ours[path]);
    }
    let config: Value = serde_json::from_str(&ours["config.json"]).unwrap();
    assert_eq!(config["dl"], format!("{}/dl", registry.base).as_str());

    registry.api.start();
    registry.wait_ready().await;

    // A fresh cargo, with the same index URL, builds the dependent from crate files served here.
    let consumer = CargoHome::new(&[("ktra", &index_url)]);
    let app = printing_app(
        &work,
        "app",
        "dependent = { version = \"0.1\", registry = \"ktra\", features = [\"fast\"] }",
        "total",
        "dependent::total()",
    );
    consumer.assert_runs_printing(&app, "total=21").await;

    // Alice's Ktra token publishes; Bob, a second owner in Ktra, still owns the crate.
    rewrite_library_manifest(&upper, "Upper_Crate", "1.1.0", "");
    alice.publish(&upper, "ktra").await;
    rewrite_library_manifest(&tiny, "tiny-crate", "0.3.0", "");
    bob.publish(&tiny, "ktra").await;
    let owners = alice
        .ok(
            dir.path(),
            &["owner", "--registry", "ktra", "--list", "tiny-crate"],
        )
        .await;
    assert!(
        owners.contains("alice") && owners.contains("bob"),
        "{owners}"
    );
    // The yank survived, and an upper-case crate can be yanked now (Ktra could not).
    let sparse = registry.sparse_file("ti/ny/tiny-crate").await.unwrap();
    assert!(
        sparse.lines().next().unwrap().contains("\"yanked\":true"),
        "{sparse}"
    );
    alice
        .ok(
            dir.path(),
            &["yank", "--registry", "ktra", "Upper_Crate@1.0.0"],
        )
        .await;

    // Ktra's passwords log in.
    for (name, password) in [("alice", "alice's password"), ("bob", "bob's password")] {
        let response = registry
            .client
            .post(registry.url(&format!("/ktra/api/v1/login/{name}")))
            .json(&json!({"password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            200,
            "{name}: {}",
            response.text().await.unwrap()
        );
    }
}

/// Drops the keys whose value is `null` from a line and its dependencies, as we write them.
fn without_nulls(mut line: Value) -> Value {
    fn strip(object: &mut Value) {
        if let Some(map) = object.as_object_mut() {
            map.retain(|_, value| !value.is_null());
        }
    }
    strip(&mut line);
    if let Some(deps) = line["deps"].as_array_mut() {
        deps.iter_mut().for_each(strip);
    }
    line
}

/// Runs `redis-cli -x` with `args`, `value` (raw bytes) as the last argument: writes a key
/// as Ktra's Redis store does.
fn redis_cli(url: &str, args: &[&str], value: &[u8]) {
    use std::io::Write;
    let mut child = std::process::Command::new("redis-cli")
        .args(["-u", url, "-x"])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("redis-cli runs");
    child.stdin.take().unwrap().write_all(value).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
}

/// Ktra's Redis store (0.4 to 0.7) has no build that compiles with our Rust, so its data is
/// written as its source writes it (`redis_db_manager.rs`: JSON strings under `ktra:` keys,
/// crates in the `ktra:__ENTRIES__` hash), with a custom login prefix. Imported into a
/// registry with a new remote; one crate file is not gzip and is reported, the rest imported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ktra_on_redis_moves_to_a_new_remote_and_a_bad_file_is_reported() {
    use ktra_testing::fixtures::CrateFixture;
    use sha2::{Digest, Sha256};

    let dir = tempfile::tempdir().unwrap();
    let redis = ktra_testing::servers::RedisServer::start(dir.path());
    let crates = dir.path().join("crates");
    let index = dir.path().join("index");
    let mut entries = Vec::new();
    for (name, vers, bytes) in [
        (
            "corp-lib",
            "1.0.0",
            CrateFixture::new("corp-lib", "1.0.0").crate_file(),
        ),
        (
            "corp-lib",
            "1.1.0",
            CrateFixture::new("corp-lib", "1.1.0").crate_file(),
        ),
        ("broken", "0.1.0", b"not gzip".to_vec()),
        (
            "taken",
            "0.1.0",
            CrateFixture::new("taken", "0.1.0").crate_file(),
        ),
    ] {
        let file = crates.join(name).join(vers);
        std::fs::create_dir_all(&file).unwrap();
        std::fs::write(file.join("download"), &bytes).unwrap();
        let cksum: String = Sha256::digest(&bytes)
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        let path = index.join(ktra_core::index::index_path(name));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let line = json!({"name": name, "vers": vers, "deps": [], "cksum": cksum,
            "features": {}, "yanked": false, "links": null})
        .to_string();
        let text =
            std::fs::read_to_string(&path).map_or(line.clone(), |old| format!("{old}\n{line}"));
        std::fs::write(&path, text).unwrap();
        entries.push((name, vers));
    }
    let metadata = |name: &str, vers: &str| {
        json!({"name": name, "vers": vers, "deps": [], "features": {}, "authors": [],
            "description": "from Ktra", "documentation": null, "homepage": null, "readme": null,
            "readme_file": null, "keywords": [], "categories": [], "license": "MIT",
            "license_file": null, "repository": null, "badges": {}, "links": null,
            "yanked": false})
    };
    let password = "$argon2id$v=19$m=4096,t=3,p=4$bFVncFBmSEY3OVo5ampzSTAyZ05lTlRqREltNkNVeDE$Aub2mPt+Utw8YMZolcHKOfJ3Fh0zAa4hdKKfT3+e/L4";
    redis_cli(
        &redis.url,
        &["SET", "ktra:__SCHEMA_VERSION__"],
        &[0, 0, 0, 0, 0, 0, 0, 1],
    );
    let users = json!([{"id": 0, "login": "corp:carol", "name": "carol"},
        {"id": 1, "login": "corp:mallory", "name": "mallory"}]);
    redis_cli(
        &redis.url,
        &["SET", "ktra:__USERS__"],
        users.to_string().as_bytes(),
    );
    let passwords = json!({"0": password, "1": password});
    redis_cli(
        &redis.url,
        &["SET", "ktra:__PASSWORDS__"],
        passwords.to_string().as_bytes(),
    );
    let tokens = json!({"0": "nhINw1RGyMgARLWcG4JlXk1EJyGAQI1i",
        "1": "MALLORYmalloryMALLORYmallory1234"});
    redis_cli(
        &redis.url,
        &["SET", "ktra:__TOKENS__"],
        tokens.to_string().as_bytes(),
    );
    let corp = json!({"versions": {"1.0.0": metadata("corp-lib", "1.0.0"),
        "1.1.0": metadata("corp-lib", "1.1.0")}, "owner_ids": [0]});
    let broken = json!({"versions": {"0.1.0": metadata("broken", "0.1.0")}, "owner_ids": [0]});
    // A crate whose name someone here already published: Ktra's owners gain nothing on it.
    let taken = json!({"versions": {"0.1.0": metadata("taken", "0.1.0")}, "owner_ids": [0, 1]});
    for (key, entry) in [("corp=lib", corp), ("broken", broken), ("taken", taken)] {
        redis_cli(
            &redis.url,
            &["HSET", "ktra:__ENTRIES__", key],
            entry.to_string().as_bytes(),
        );
    }

    let registry = Registry::start().await;
    let zoe = registry.create_user("zoe").await;
    let (status, body) = registry
        .publish(&zoe, CrateFixture::new("taken", "0.2.0").body())
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    registry.api.terminate();
    let args = [
        "import",
        "ktra",
        "--db",
        "redis",
        "--redis-url",
        &redis.url,
        "--login-prefix",
        "corp:",
        "--dl-dir-path",
        &crates.display().to_string(),
        "--local-path",
        &index.display().to_string(),
    ];
    let (code, output) = registry.api_command(&args);
    assert_eq!(code, 2, "{output}");
    assert!(
        output.contains("broken@0.1.0: crate file")
            && output.contains("not a readable gzipped tarball"),
        "{output}"
    );
    assert!(
        output.contains("Imported: 2 user(s), 2 version(s) of 1 crate(s)")
            && output.contains("problem: taken@0.1.0"),
        "{output}"
    );
    let (code, verify) = registry.api_command(&["verify-index"]);
    assert_eq!(code, 0, "{verify}");
    registry.api.start();
    registry.wait_ready().await;
    let file = registry.sparse_file("co/rp/corp-lib").await.unwrap();
    assert_eq!(file.lines().count(), 2, "{file}");
    assert!(registry.sparse_file("br/ok/broken").await.is_none());
    let files = branch_files(&registry.remote_path, "main");
    assert_eq!(files["co/rp/corp-lib"].lines().count(), 2);
    // The user is named without the prefix and keeps Ktra's token.
    let carol = "nhINw1RGyMgARLWcG4JlXk1EJyGAQI1i";
    assert_eq!(owner_logins(&registry, "corp-lib", carol).await, ["carol"]);
    assert_eq!(owner_logins(&registry, "taken", &zoe).await, ["zoe"]);
}

/// The logins `GET /api/v1/crates/{name}/owners` lists, asked with `token`.
async fn owner_logins(registry: &Registry, name: &str, token: &str) -> Vec<String> {
    let owners: Value = registry
        .get(&format!("/api/v1/crates/{name}/owners"), Some(token))
        .await
        .json()
        .await
        .unwrap();
    owners["users"]
        .as_array()
        .unwrap_or_else(|| panic!("no owners: {owners}"))
        .iter()
        .map(|user| user["login"].as_str().unwrap().to_owned())
        .collect()
}
