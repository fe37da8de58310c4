//! Ktra's MongoDB store, written as Ktra's `mongo_db_manager.rs` writes it (one collection per
//! sled key; ids as Int64, the `u2i` encoding), into a real MongoDB-wire server, read back.

use ktra_import::{KtraDatabaseKind, KtraFile, read_plan};
use ktra_testing::fixtures::CrateFixture;
use ktra_testing::servers::MongoServer;
use mongodb::bson::{Document, doc};
use sha2::{Digest, Sha256};

const HASH: &str = "$argon2id$v=19$m=4096,t=3,p=4$bFVncFBmSEY3OVo5ampzSTAyZ05lTlRqREltNkNVeDE$Aub2mPt+Utw8YMZolcHKOfJ3Fh0zAa4hdKKfT3+e/L4";
const TOKEN: &str = "nhINw1RGyMgARLWcG4JlXk1EJyGAQI1i";

fn metadata(name: &str, vers: &str, yanked: bool) -> Document {
    doc! {"name": name, "vers": vers, "deps": [], "features": {}, "authors": [],
    "description": "from Ktra's MongoDB", "documentation": null, "homepage": null,
    "readme": null, "readme_file": null, "keywords": [], "categories": [],
    "license": "MIT", "license_file": null, "repository": null, "badges": {},
    "links": null, "yanked": yanked}
}

#[test]
fn ktras_mongodb_is_read_into_the_same_plan() {
    let dir = tempfile::tempdir().unwrap();
    let server = MongoServer::start(dir.path());
    let url = format!("{}/registry", server.url);

    // Crate files and index lines, as for any Ktra.
    let mut lines = Vec::new();
    for vers in ["0.1.0", "0.2.0"] {
        let bytes = CrateFixture::new("mongo-crate", vers).crate_file();
        let file = dir.path().join("crates/mongo-crate").join(vers);
        std::fs::create_dir_all(&file).unwrap();
        std::fs::write(file.join("download"), &bytes).unwrap();
        let cksum = hex::encode(Sha256::digest(&bytes));
        lines.push(format!(
            r#"{{"name":"mongo-crate","vers":"{vers}","deps":[],"cksum":"{cksum}","features":{{}},"yanked":{},"links":null}}"#,
            vers == "0.1.0"
        ));
    }
    let index = dir.path().join("index/mo/ng");
    std::fs::create_dir_all(&index).unwrap();
    std::fs::write(index.join("mongo-crate"), lines.join("\n")).unwrap();

    let client = mongodb::sync::Client::with_uri_str(&url).unwrap();
    let database = client.database("registry");
    let insert = |collection: &str, document: Document| {
        database
            .collection::<Document>(collection)
            .insert_one(document)
            .run()
            .unwrap();
    };
    insert("__SCHEMA_VERSION__", doc! {"version": 1_i64});
    for (id, name) in [(0_i64, "dora"), (1, "eve")] {
        insert(
            "__USERS__",
            doc! {"id": id, "login": format!("ktra-secure-auth:{name}"), "name": name},
        );
        insert("__PASSWORDS__", doc! {"id": id, "password": HASH});
    }
    insert("__TOKENS__", doc! {"id": 0_i64, "token": TOKEN});
    insert(
        "__ENTRIES__",
        doc! {"name": "mongo=crate", "entry": {
        "versions": {"0.1.0": metadata("mongo-crate", "0.1.0", true),
            "0.2.0": metadata("mongo-crate", "0.2.0", false)},
        "owner_ids": [0_i64, 1_i64]}},
    );

    // A document Ktra did not write: reported, the rest imported.
    insert(
        "__ENTRIES__",
        doc! {"name": "garbled", "entry": {"versions": 3_i64}},
    );

    let mut file = KtraFile::default();
    file.db_config.mongodb_url = url;
    let source = file.into_source(KtraDatabaseKind::Mongodb, dir.path());
    let plan = read_plan(&source).unwrap();
    let problems: Vec<String> = plan.problems.iter().map(ToString::to_string).collect();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].starts_with("crate `garbled`"), "{problems:?}");
    let users: Vec<_> = plan
        .users
        .iter()
        .map(|user| {
            (
                user.name.as_str(),
                user.token.as_deref(),
                user.password_hash.as_str(),
            )
        })
        .collect();
    assert_eq!(users, [("dora", Some(TOKEN), HASH), ("eve", None, HASH)]);
    let krate = &plan.crates[0];
    assert_eq!(krate.name, "mongo-crate");
    assert_eq!(krate.owners, ["dora", "eve"]);
    let versions: Vec<_> = krate
        .versions
        .iter()
        .map(|version| (version.line.vers.as_str(), version.line.yanked))
        .collect();
    assert_eq!(versions, [("0.1.0", true), ("0.2.0", false)]);
    assert_eq!(
        krate.versions[0].description.as_deref(),
        Some("from Ktra's MongoDB")
    );
}

#[test]
fn an_unreachable_mongodb_names_the_setting() {
    let mut file = KtraFile::default();
    file.db_config.mongodb_url = "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=500".to_owned();
    let dir = tempfile::tempdir().unwrap();
    let source = file.into_source(KtraDatabaseKind::Mongodb, dir.path());
    let error = read_plan(&source).unwrap_err().to_string();
    assert!(error.contains("db_config.mongodb_url"), "{error}");
}
