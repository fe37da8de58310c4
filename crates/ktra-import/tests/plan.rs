//! A Ktra installation written on disk as Ktra 0.7 writes it (a real sled 0.34 database, crate
//! files, an index checkout), with hostile and inconsistent parts, read into a plan.

use std::io::Write;
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;
use ktra_import::{KtraDatabaseKind, KtraFile, read_plan};
use ktra_testing::fixtures::CrateFixture;
use serde_json::json;
use sha2::{Digest, Sha256};

const ALICE_HASH: &str = "$argon2id$v=19$m=4096,t=3,p=4$bFVncFBmSEY3OVo5ampzSTAyZ05lTlRqREltNkNVeDE$Aub2mPt+Utw8YMZolcHKOfJ3Fh0zAa4hdKKfT3+e/L4";
const ALICE_TOKEN: &str = "aQkGKnM77Wa1SYkXiPPIqbkWvcIM5G8U";

/// An installation under construction: its database records, index files and crate files.
struct Installation {
    dir: tempfile::TempDir,
    records: Vec<(String, String)>,
}

impl Installation {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["index", "crates"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        std::fs::write(
            dir.path().join("index/config.json"),
            r#"{"dl":"http://localhost:8000/dl","api":"http://localhost:8000"}"#,
        )
        .unwrap();
        Self {
            dir,
            records: Vec::new(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn record(&mut self, key: &str, value: serde_json::Value) {
        self.records.push((key.to_owned(), value.to_string()));
    }

    /// Appends a line to a crate's index file as Ktra does (joined by `\n`, no trailing one).
    fn index_line(&self, name: &str, vers: &str, cksum: &str, yanked: bool) {
        let path = self
            .path()
            .join("index")
            .join(ktra_core::index::index_path(name));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let line = json!({"name": name, "vers": vers, "deps": [], "cksum": cksum,
            "features": {}, "yanked": yanked, "links": null})
        .to_string();
        let text = match std::fs::read_to_string(&path) {
            Ok(existing) => format!("{existing}\n{line}"),
            Err(_) => line,
        };
        std::fs::write(path, text).unwrap();
    }

    /// Writes a crate file where Ktra keeps it and returns its sha256.
    fn crate_file(&self, name: &str, vers: &str, bytes: &[u8]) -> String {
        let dir = self.path().join("crates").join(name).join(vers);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("download"), bytes).unwrap();
        hex::encode(Sha256::digest(bytes))
    }

    /// A version Ktra published whole: file, index line; returns its metadata record.
    fn published(&self, name: &str, vers: &str, yanked: bool) -> serde_json::Value {
        let cksum = self.crate_file(name, vers, &CrateFixture::new(name, vers).crate_file());
        self.index_line(name, vers, &cksum, yanked);
        metadata(name, vers, yanked)
    }

    /// Writes the sled database with the real sled 0.34, as Ktra does.
    fn write_database(&self) {
        let db = sled::open(self.path().join("db")).unwrap();
        db.insert("__SCHEMA_VERSION__", &[0, 0, 0, 0, 0, 0, 0, 3])
            .unwrap();
        for (key, value) in &self.records {
            db.insert(key.as_bytes(), value.as_bytes()).unwrap();
        }
        db.flush().unwrap();
    }
}

fn metadata(name: &str, vers: &str, yanked: bool) -> serde_json::Value {
    json!({"name": name, "vers": vers, "deps": [], "features": {}, "authors": [],
        "description": format!("the {name} crate"), "documentation": null, "homepage": null,
        "readme": null, "readme_file": null, "keywords": [], "categories": [], "license": null,
        "license_file": null, "repository": null, "badges": {}, "links": null, "yanked": yanked})
}

fn entry(versions: &[serde_json::Value], owners: &[u32]) -> serde_json::Value {
    let versions: serde_json::Map<String, serde_json::Value> = versions
        .iter()
        .map(|meta| (meta["vers"].as_str().unwrap().to_owned(), meta.clone()))
        .collect();
    json!({"versions": versions, "owner_ids": owners})
}

/// A `.crate` whose one entry climbs out of the crate's directory.
fn path_traversing_tarball(name: &str, vers: &str) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let content = b"[package]\n";
    let mut header = tar::Header::new_old();
    let path = format!("{name}-{vers}/../../etc/evil");
    header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    builder.append(&header, &content[..]).unwrap();
    let tar = builder.into_inner().unwrap();
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

#[test]
fn every_consistent_version_is_planned_and_every_problem_named() {
    let mut ktra = Installation::new();
    ktra.record(
        "__USERS__",
        json!([
            {"id": 0, "login": "ktra-secure-auth:alice", "name": "alice"},
            {"id": 1, "login": "ktra-secure-auth:bob", "name": "bob"},
            {"id": 2, "login": "ktra-secure-auth:nohash", "name": "nohash"},
        ]),
    );
    ktra.record("__PASSWORDS__", json!({"0": ALICE_HASH, "1": ALICE_HASH}));
    ktra.record(
        "__TOKENS__",
        json!({"0": ALICE_TOKEN, "1": "short", "2": ALICE_TOKEN}),
    );

    // A healthy crate: two versions, the first yanked, two owners.
    let good = [
        ktra.published("tiny-crate", "0.1.0", true),
        ktra.published("tiny-crate", "0.2.0", false),
    ];
    ktra.record("tiny=crate", entry(&good, &[0, 1]));

    // One version's file is missing, one mismatches its checksum, one is not gzip, one climbs
    // out of its directory; the last version is fine.
    let mut versions = vec![metadata("mixed", "1.0.0", false)];
    ktra.index_line("mixed", "1.0.0", &"0".repeat(64), false);
    let real = CrateFixture::new("mixed", "1.1.0").crate_file();
    ktra.crate_file("mixed", "1.1.0", &real);
    ktra.index_line("mixed", "1.1.0", &"1".repeat(64), false);
    versions.push(metadata("mixed", "1.1.0", false));
    let cksum = ktra.crate_file("mixed", "1.2.0", b"not a gzip stream");
    ktra.index_line("mixed", "1.2.0", &cksum, false);
    versions.push(metadata("mixed", "1.2.0", false));
    let cksum = ktra.crate_file("mixed", "1.3.0", &path_traversing_tarball("mixed", "1.3.0"));
    ktra.index_line("mixed", "1.3.0", &cksum, false);
    versions.push(metadata("mixed", "1.3.0", false));
    versions.push(ktra.published("mixed", "1.4.0", false));
    // In the database, never in the index.
    versions.push(metadata("mixed", "2.0.0", false));
    ktra.record("mixed", entry(&versions, &[0]));

    // Names Ktra accepted and we refuse.
    let reserved = ktra.published("lpt1", "0.1.0", false);
    ktra.record("lpt1", entry(&[reserved], &[0]));
    let long = "a".repeat(65);
    let long_version = ktra.published(&long, "0.1.0", false);
    ktra.record(&long, entry(&[long_version], &[0]));

    // In the index (with its file) but not in the database: Ktra failed half-way.
    ktra.published("orphan", "0.1.0", false);

    // A version published under the other spelling of the name (Ktra folds `-` and `_`).
    let first = ktra.published("two-ways", "0.1.0", false);
    let second = ktra.published("two_ways", "0.2.0", false);
    ktra.record("two=ways", entry(&[first, second], &[0]));

    // Owned only by a user who cannot be imported.
    let unowned = ktra.published("unowned", "0.1.0", false);
    ktra.record("unowned", entry(&[unowned], &[2]));

    // A record that is not Ktra's JSON.
    ktra.records
        .push(("garbled".to_owned(), "{\"versions\":".to_owned()));
    ktra.write_database();

    let source = KtraFile::default().into_source(KtraDatabaseKind::Sled, ktra.path());
    let plan = read_plan(&source).unwrap();

    let users: Vec<_> = plan
        .users
        .iter()
        .map(|user| (user.name.as_str(), user.token.as_deref()))
        .collect();
    assert_eq!(users, [("alice", Some(ALICE_TOKEN)), ("bob", None)]);
    assert_eq!(plan.users[0].password_hash, ALICE_HASH);

    let crates: Vec<_> = plan
        .crates
        .iter()
        .map(|planned| {
            let versions: Vec<_> = planned
                .versions
                .iter()
                .map(|version| (version.version.to_string(), version.line.yanked))
                .collect();
            (planned.name.as_str(), planned.owners.clone(), versions)
        })
        .collect();
    assert_eq!(
        crates,
        [
            (
                "mixed",
                vec!["alice".to_owned()],
                vec![("1.4.0".to_owned(), false)]
            ),
            (
                "tiny-crate",
                vec!["alice".to_owned(), "bob".to_owned()],
                vec![("0.1.0".to_owned(), true), ("0.2.0".to_owned(), false)]
            ),
            (
                "two-ways",
                vec!["alice".to_owned()],
                vec![("0.1.0".to_owned(), false)]
            ),
        ]
    );

    let problems: Vec<String> = plan.problems.iter().map(ToString::to_string).collect();
    let expect = |subject: &str, detail: &str| {
        assert!(
            problems
                .iter()
                .any(|problem| problem.starts_with(subject) && problem.contains(detail)),
            "no problem `{subject}` ... `{detail}` in {problems:#?}"
        );
    };
    expect("user `ktra-secure-auth:nohash`", "no password hash");
    expect("user `ktra-secure-auth:bob`'s token", "not 16 to 128");
    expect("mixed@1.0.0", "No such file");
    expect("mixed@1.1.0", "but the index says");
    expect("mixed@1.2.0", "not a readable gzipped tarball");
    expect("mixed@1.3.0", "outside `mixed-1.3.0/`");
    expect("mixed@2.0.0", "not in its index");
    expect("crate `lpt1`", "reserved on Windows");
    expect(&format!("crate `{long}`"), "longer than 64");
    expect("orphan@0.1.0", "not in its database");
    expect("two_ways@0.2.0", "only in case or `-`/`_`");
    expect("crate `unowned`", "none of its owners");
    expect("crate `garbled`", "does not parse");
    assert_eq!(problems.len(), 13, "{problems:#?}");
}

#[test]
fn the_sled_database_is_read_from_a_copy_and_left_unchanged() {
    let mut ktra = Installation::new();
    ktra.record("__USERS__", json!([]));
    ktra.write_database();
    let before = std::fs::read(ktra.path().join("db/db")).unwrap();
    let source = KtraFile::default().into_source(KtraDatabaseKind::Sled, ktra.path());
    read_plan(&source).unwrap();
    assert_eq!(std::fs::read(ktra.path().join("db/db")).unwrap(), before);
}

#[test]
fn a_missing_database_names_the_setting_and_the_alternative() {
    let ktra = Installation::new();
    let source = KtraFile::default().into_source(KtraDatabaseKind::Sled, ktra.path());
    let error = read_plan(&source).unwrap_err().to_string();
    assert!(error.contains("db_config.db_dir_path"), "{error}");
    assert!(error.contains("--db redis"), "{error}");
}

#[test]
fn renamed_dependencies_written_backwards_by_old_ktra_are_turned_round() {
    let mut ktra = Installation::new();
    ktra.record(
        "__USERS__",
        json!([{"id": 0, "login": "ktra-secure-auth:alice", "name": "alice"}]),
    );
    ktra.record("__PASSWORDS__", json!({"0": ALICE_HASH}));
    ktra.record("__TOKENS__", json!({"0": ALICE_TOKEN}));
    let cksum = ktra.crate_file(
        "user",
        "0.1.0",
        &CrateFixture::new("user", "0.1.0").crate_file(),
    );
    let path = ktra.path().join("index/us/er");
    std::fs::create_dir_all(&path).unwrap();
    // Ktra 0.5: `name` is the real crate, `package` the rename.
    std::fs::write(
        path.join("user"),
        json!({"name": "user", "vers": "0.1.0", "cksum": cksum, "features": {}, "yanked": false,
            "links": null, "deps": [{"name": "tiny-crate", "req": ">=0.1.0, <0.2.0",
            "features": [], "optional": false, "default_features": true, "target": null,
            "kind": "normal", "registry": null, "package": "tiny"}]})
        .to_string(),
    )
    .unwrap();
    let mut meta = metadata("user", "0.1.0", false);
    meta["deps"] = json!([{"name": "tiny-crate", "version_req": ">=0.1.0, <0.2.0",
        "features": [], "optional": false, "default_features": true, "target": null,
        "kind": "normal", "registry": null, "explicit_name_in_toml": "tiny"}]);
    ktra.record("user", entry(&[meta], &[0]));
    ktra.write_database();
    let source = KtraFile::default().into_source(KtraDatabaseKind::Sled, ktra.path());
    let plan = read_plan(&source).unwrap();
    assert!(plan.problems.is_empty(), "{:?}", plan.problems);
    let dep = &plan.crates[0].versions[0].line.deps[0];
    assert_eq!(
        (dep.name.as_str(), dep.package.as_deref()),
        ("tiny", Some("tiny-crate"))
    );
}

#[test]
fn a_database_ktra_holds_open_is_refused() {
    let mut ktra = Installation::new();
    ktra.record("__USERS__", json!([]));
    ktra.write_database();
    let running = sled::open(ktra.path().join("db")).unwrap();
    let source = KtraFile::default().into_source(KtraDatabaseKind::Sled, ktra.path());
    let error = read_plan(&source).unwrap_err().to_string();
    assert!(error.contains("stop Ktra first"), "{error}");
    drop(running);
    read_plan(&source).unwrap();
}
