//! crates.io's read API: a crate, its versions, dependencies, README, reverse dependencies
//! and the summary, in crates.io's shapes, from what cargo sent at publish; and versions
//! stored before the registry kept that, filled from their crate files.

use chrono::Utc;
use ktra_core::metadata::VersionMetadata;
use ktra_core::name::CrateId;
use ktra_core::version::VersionId;
use ktra_store::BlobStore;
use ktra_store::model::{AuditEvent, NewVersion};
use ktra_testing::fixtures::CrateFixture;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use std::time::Duration;

use crate::harness::{Backend, TestApp, assert_ok, assert_refused, eventually};

/// A README with everything a page must not run.
const HOSTILE_README: &str = "# Demo\n\nUse it **well**.\n\n<script>alert(1)</script>\n\
    [click](javascript:alert(2)) <img src=x onerror=\"alert(3)\">\n";

/// `Demo` at `version` as cargo sends it with every descriptive field set.
fn described(version: &str) -> (Value, Vec<u8>) {
    let fixture = CrateFixture::new("Demo", version).dep("serde", "^1");
    let mut metadata = fixture.metadata();
    for (key, value) in [
        ("homepage", json!("https://demo.example")),
        ("repository", json!("https://git.example/demo")),
        ("documentation", json!("https://docs.example/demo")),
        ("keywords", json!(["demo", "example"])),
        ("categories", json!(["development-tools"])),
        ("authors", json!(["Ada <ada@example.com>"])),
        ("readme", json!(HOSTILE_README)),
        ("readme_file", json!("README.md")),
        ("rust_version", json!("1.70")),
    ] {
        metadata[key] = value;
    }
    (metadata, fixture.crate_file())
}

pub(crate) async fn the_read_api_answers_in_crates_io_shapes(backend: Backend) {
    let app = TestApp::start_on(backend, &[]).await;
    let token = app.create_user("alice").await;
    for version in ["1.0.0", "1.1.0-beta.1", "0.9.0"] {
        let (metadata, crate_file) = described(version);
        assert_ok(
            &app.publish(
                Some(&token),
                CrateFixture::body_from(&metadata, &crate_file),
            )
            .await,
        );
    }
    assert_ok(&app.yank(&token, "Demo", "0.9.0").await);
    let user = CrateFixture::new("user-of-demo", "2.0.0").dep("demo", "^1");
    assert_ok(&app.publish(Some(&token), user.body()).await);

    let (status, body) = app.get("/api/v1/crates/demo").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let krate = &body["crate"];
    assert_eq!(krate["name"], "Demo");
    assert_eq!(krate["max_version"], "1.1.0-beta.1");
    assert_eq!(krate["max_stable_version"], "1.0.0");
    assert_eq!(krate["newest_version"], "0.9.0", "the one published last");
    assert_eq!(krate["default_version"], "1.0.0");
    assert_eq!(krate["num_versions"], 3);
    assert_eq!(krate["homepage"], "https://demo.example");
    assert_eq!(krate["keywords"], json!(["demo", "example"]));
    assert_eq!(body["keywords"][0]["keyword"], "demo");
    assert_eq!(body["categories"][0]["slug"], "development-tools");
    let numbers: Vec<&str> = body["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|version| version["num"].as_str().unwrap())
        .collect();
    assert_eq!(numbers, ["1.1.0-beta.1", "1.0.0", "0.9.0"], "highest first");
    assert_eq!(krate["versions"].as_array().unwrap().len(), 3);
    assert_eq!(body["versions"][2]["yanked"], true);

    let (status, body) = app.get("/api/v1/crates/Demo/1.0.0").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let version = &body["version"];
    for (key, expected) in [
        ("crate", json!("Demo")),
        ("num", json!("1.0.0")),
        ("license", json!("MIT")),
        ("rust_version", json!("1.70")),
        ("edition", json!("2021")),
        ("repository", json!("https://git.example/demo")),
        ("dl_path", json!("/api/v1/crates/Demo/1.0.0/download")),
        ("readme_path", json!("/api/v1/crates/Demo/1.0.0/readme")),
        ("yanked", json!(false)),
    ] {
        assert_eq!(version[key], expected, "{key} in {version}");
    }
    assert_eq!(version["published_by"]["login"], "alice");
    assert!(version["crate_size"].as_u64().unwrap() > 0);
    assert_eq!(version["checksum"].as_str().unwrap().len(), 64);
    let published =
        chrono::DateTime::parse_from_rfc3339(version["created_at"].as_str().unwrap()).unwrap();
    assert!((Utc::now() - published.with_timezone(&Utc)).num_seconds() < 120);

    let (status, body) = app.get("/api/v1/crates/demo/versions").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["meta"]["total"], 3);

    let (status, body) = app.get("/api/v1/crates/demo/1.0.0/dependencies").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["dependencies"][0]["crate_id"], "serde");
    assert_eq!(body["dependencies"][0]["req"], "^1");
    assert_eq!(body["dependencies"][0]["kind"], "normal");

    let (status, body) = app.get("/api/v1/crates/demo/reverse_dependencies").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["meta"]["total"], 1);
    assert_eq!(body["versions"][0]["crate"], "user-of-demo");
    assert_eq!(body["dependencies"][0]["crate_id"], "demo");

    let readme = app.get_with("/api/v1/crates/demo/1.0.0/readme", &[]).await;
    assert_eq!(readme.status(), StatusCode::OK);
    assert!(
        readme.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = readme.text().await.unwrap();
    assert!(
        html.contains("<h1>Demo</h1>") && html.contains("<strong>well</strong>"),
        "{html}"
    );
    for inert in ["<script", "javascript:", "onerror"] {
        assert!(!html.contains(inert), "{inert} in {html}");
    }

    let (status, body) = app.get("/api/v1/summary").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["num_crates"], 2);
    let newest: Vec<&str> = body["new_crates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|krate| krate["name"].as_str().unwrap())
        .collect();
    assert_eq!(newest, ["user-of-demo", "Demo"]);
    assert_eq!(body["just_updated"][0]["name"], "user-of-demo");

    for (path, needle) in [
        ("/api/v1/crates/missing", "crate `missing` does not exist"),
        ("/api/v1/crates/demo/9.9.9", "has no version `9.9.9`"),
        ("/api/v1/crates/demo/not-a-version", "has no version"),
        ("/api/v1/crates/user-of-demo/2.0.0/readme", "has no README"),
    ] {
        assert_refused(&app.get(path).await, StatusCode::NOT_FOUND, needle);
    }
    let refused = app
        .get("/api/v1/crates/demo/reverse_dependencies?page=x")
        .await;
    assert_refused(&refused, StatusCode::BAD_REQUEST, "invalid query string");
    let detail = refused.1["errors"][0]["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!detail.contains("Failed to deserialize"), "{detail}");
}

pub(crate) async fn search_pages_and_matches_every_word(backend: Backend) {
    let app = TestApp::start_on(backend, &[]).await;
    let token = app.create_user("alice").await;
    for name in ["serde_json", "serde_yaml", "json_tools", "other"] {
        assert_ok(&app.publish_crate(&token, name, "1.0.0").await);
    }
    let (_, body) = app.get("/api/v1/crates?q=serde%20json").await;
    assert_eq!(body["meta"]["total"], 1);
    assert_eq!(body["crates"][0]["name"], "serde_json");

    let (_, first) = app.get("/api/v1/crates?q=serde&per_page=1").await;
    assert_eq!(first["meta"]["total"], 2);
    assert_eq!(first["meta"]["prev_page"], Value::Null);
    let next = first["meta"]["next_page"].as_str().unwrap().to_owned();
    assert_eq!(next, "?q=serde&page=2&per_page=1");
    let (_, second) = app.get(&format!("/api/v1/crates{next}")).await;
    assert_eq!(second["crates"].as_array().unwrap().len(), 1);
    assert_ne!(second["crates"][0]["name"], first["crates"][0]["name"]);
    assert_eq!(second["meta"]["next_page"], Value::Null);
    assert_eq!(second["meta"]["prev_page"], "?q=serde&page=1&per_page=1");
}

async fn earlier_versions_get_metadata_on(backend: Backend) {
    let app = TestApp::start_on(backend, &[]).await;
    let token = app.create_user("alice").await;
    assert_ok(&app.publish_crate(&token, "bootstrap", "0.1.0").await);
    let publisher = app
        .store
        .user_credentials("alice")
        .await
        .unwrap()
        .unwrap()
        .user
        .id;
    // What an earlier release stored: the version and its file, nothing it said about itself.
    let mut fixture = CrateFixture::new("legacy", "1.0.0");
    fixture.manifest_override = Some(
        "[package]\nname = \"legacy\"\nversion = \"1.0.0\"\nedition = \"2018\"\n\
         homepage = \"https://legacy.example\"\nreadme = \"README.md\"\n"
            .to_owned(),
    );
    fixture.files.push((
        "README.md".to_owned(),
        b"# Legacy\n\nStill here.\n".to_vec(),
    ));
    let krate = CrateId::new("legacy").unwrap();
    let version = VersionId::parse("1.0.0").unwrap();
    let crate_file = fixture.crate_file();
    let blob_key = BlobStore::new_crate_key(krate.canonical(), version.key());
    app.blobs
        .put_new(&blob_key, crate_file.clone().into())
        .await
        .unwrap();
    let line = ktra_publish::metadata::PublishMetadata::parse(
        &serde_json::to_vec(&fixture.metadata()).unwrap(),
    )
    .unwrap()
    .to_index_line(hex::encode(Sha256::digest(&crate_file)), Utc::now());
    app.store
        .publish(NewVersion {
            krate: krate.clone(),
            line,
            version: version.clone(),
            blob_key,
            metadata: VersionMetadata::default(),
            readme: None,
            publisher,
            published_at: Utc::now(),
            audit: AuditEvent {
                at: Utc::now(),
                actor: Some("alice".to_owned()),
                action: "crate.publish".to_owned(),
                target: "legacy@1.0.0".to_owned(),
                client: None,
                detail: None,
            },
            crate_exists: None,
        })
        .await
        .unwrap();
    // The store keeps an empty record at publish; an earlier release kept none. The
    // backfill takes a version without one: drop it the way each backend would lack it.
    forget_metadata(&app).await;
    let (_, before) = app.get("/api/v1/crates/legacy/1.0.0").await;
    assert_eq!(before["version"]["homepage"], Value::Null);

    let backfill = || {
        ktra_api::upgrade::version_metadata::backfill(
            app.store.as_ref(),
            &app.blobs,
            &ktra_publish::PublishLimits::DEFAULT,
        )
    };
    let report = backfill().await.unwrap();
    assert_eq!((report.kept, report.unreadable), (1, 0), "{report:?}");
    assert_eq!(backfill().await.unwrap().kept, 0, "once is enough");
    let (_, after) = app.get("/api/v1/crates/legacy/1.0.0").await;
    let version = &after["version"];
    assert_eq!(version["homepage"], "https://legacy.example");
    assert_eq!(version["edition"], "2018");
    assert_eq!(version["crate_size"], crate_file.len());
    let readme = app
        .get_with("/api/v1/crates/legacy/1.0.0/readme", &[])
        .await;
    assert!(readme.text().await.unwrap().contains("<h1>Legacy</h1>"));
}

/// Removes `legacy@1.0.0`'s metadata record, as a version stored by an earlier release has
/// none. (The embedded store's file is locked while the service runs; the store contract
/// checks the same case on both backends.)
async fn forget_metadata(app: &TestApp) {
    let servers = app.servers.as_ref().unwrap();
    let client = redis::Client::open(servers.redis.url.as_str()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("DEL")
        .arg("ktra:v1:version_metadata:legacy")
        .query_async(&mut connection)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn earlier_versions_get_their_metadata_from_their_crate_files() {
    earlier_versions_get_metadata_on(Backend::RedisS3).await;
}

pub(crate) async fn downloads_are_counted_per_version_and_day(backend: Backend) {
    let app = TestApp::start_on(backend, &[]).await;
    let token = app.create_user("alice").await;
    for version in ["1.0.0", "1.1.0"] {
        assert_ok(&app.publish_crate(&token, "popular", version).await);
    }
    assert_ok(&app.publish_crate(&token, "unloved", "1.0.0").await);
    for version in ["1.0.0", "1.0.0", "1.0.0", "1.1.0"] {
        let (status, _) = app
            .get_bytes(&format!("/api/v1/crates/popular/{version}/download"))
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    // Neither a HEAD nor a range is a download.
    let head = app
        .client
        .head(app.url("/dl/popular/1.0.0/download"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    let range = app
        .get_with("/dl/popular/1.0.0/download", &[("Range", "bytes=0-9")])
        .await;
    assert_eq!(range.status(), StatusCode::PARTIAL_CONTENT);

    // Counted in memory, they reach the store within a flush (every 5 s).
    let krate = eventually(
        "the counts to reach the store",
        Duration::from_secs(15),
        || {
            let app = &app;
            async move {
                let (_, body) = app.get("/api/v1/crates/popular").await;
                (body["crate"]["downloads"] == 4).then_some(body)
            }
        },
    )
    .await;
    assert_eq!(krate["crate"]["recent_downloads"], 4);
    let per_version: Vec<(String, u64)> = krate["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["num"].as_str().unwrap().to_owned(),
                v["downloads"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        per_version,
        [("1.1.0".to_owned(), 1), ("1.0.0".to_owned(), 3)]
    );
    let today = Utc::now().date_naive().format("%Y-%m-%d").to_string();
    let (_, days) = app.get("/api/v1/crates/popular/downloads").await;
    let listed: u64 = days["version_downloads"]
        .as_array()
        .unwrap()
        .iter()
        .inspect(|entry| assert_eq!(entry["date"], today.as_str()))
        .map(|entry| entry["downloads"].as_u64().unwrap())
        .sum();
    assert_eq!(listed, 4);
    let (_, one) = app.get("/api/v1/crates/popular/1.0.0/downloads").await;
    assert_eq!(one["version_downloads"][0]["downloads"], 3);
    assert_eq!(one["version_downloads"].as_array().unwrap().len(), 1);
    let (_, summary) = eventually("the summary to list them", Duration::from_secs(10), || {
        let app = &app;
        async move {
            let reply = app.get("/api/v1/summary").await;
            (reply.1["num_downloads"] == 4).then_some(reply)
        }
    })
    .await;
    assert_eq!(summary["most_downloaded"][0]["name"], "popular");
    assert_eq!(summary["most_downloaded"].as_array().unwrap().len(), 1);
    let page = app
        .get_with("/crates/popular/1.0.0", &[])
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("<dt>Downloads</dt><dd>4 (3 of 1.0.0)</dd>"),
        "{page}"
    );
}

crate::on_every_backend!(
    the_read_api_answers_in_crates_io_shapes,
    downloads_are_counted_per_version_and_day,
    search_pages_and_matches_every_word,
);
