//! A private registry (`KTRA_REGISTRY_AUTH_REQUIRED`, cargo's `auth-required`): the real cargo
//! with and without a token, and what an anonymous client can learn.

use ktra_e2e::cargo::{CargoHome, library_manifest, package};
use ktra_e2e::git::branch_files;
use ktra_e2e::registry::Registry;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CACHE_CONTROL, WWW_AUTHENTICATE};
use serde_json::Value;

async fn get(registry: &Registry, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = registry.client.get(registry.url(path));
    if let Some(token) = token {
        request = request.header(AUTHORIZATION, token);
    }
    request.send().await.expect("the API answers")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cargo_needs_a_token_for_everything_in_a_private_registry() {
    let registry = Registry::builder()
        .env("KTRA_REGISTRY_AUTH_REQUIRED", "true")
        .start()
        .await;
    let token = registry.create_user("alice").await;
    let index = format!("sparse+{}/index/", registry.base);

    // cargo asks for config.json without a token first and must be told to send one.
    let anonymous = get(&registry, "/index/config.json", None).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        anonymous.headers()[WWW_AUTHENTICATE],
        format!("Cargo login_url=\"{}/me\"", registry.base).as_str()
    );
    let body: Value = anonymous.json().await.unwrap();
    assert!(
        body["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("token")
    );
    let config = get(&registry, "/index/config.json", Some(&token)).await;
    assert_eq!(config.status(), StatusCode::OK);
    assert!(
        config.headers()[CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("private")
    );
    let config: Value = config.json().await.unwrap();
    assert_eq!(config["auth-required"], true);
    for open in ["/livez", "/readyz", "/me", "/metrics"] {
        assert_eq!(
            get(&registry, open, None).await.status(),
            StatusCode::OK,
            "{open}"
        );
    }

    let publisher = CargoHome::new(&[("ktra", &index)]);
    let work = tempfile::tempdir().unwrap();
    let root = work.path();
    publisher.login(root, "ktra", &token).await;
    let lib = package(
        root,
        "secret",
        &library_manifest("secret_lib", "0.1.0", ""),
        &[("src/lib.rs", "pub fn value() -> u32 { 42 }\n")],
    );
    publisher.publish(&lib, "ktra").await;

    // Anonymous clients cannot tell a crate that exists from one that does not.
    let mut anonymous_answers = Vec::new();
    for path in [
        "/index/se/cr/secret_lib",
        "/index/no/ne/none_such",
        "/dl/secret_lib/0.1.0/download",
        "/dl/none_such/0.1.0/download",
        "/api/v1/crates?q=secret",
        "/api/v1/crates/secret_lib/owners",
    ] {
        let response = get(&registry, path, None).await;
        let status = response.status();
        anonymous_answers.push((status, response.text().await.unwrap()));
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
    assert!(anonymous_answers.windows(2).all(|pair| pair[0] == pair[1]));
    // A wrong token is refused without being echoed.
    let forged = "ktra_forgedtoken0123456789abcdefghijklmnopqrstuv";
    let refused = get(&registry, "/index/se/cr/secret_lib", Some(forged)).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(!refused.text().await.unwrap().contains(forged));
    // With the token: the crate's file, privately cached; unknown crates are plain 404s.
    let file = get(&registry, "/index/se/cr/secret_lib", Some(&token)).await;
    assert_eq!(file.status(), StatusCode::OK);
    assert!(
        file.headers()[CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("private")
    );
    let download = get(&registry, "/dl/secret_lib/0.1.0/download", Some(&token)).await;
    assert_eq!(download.status(), StatusCode::OK);
    let cache = download.headers()[CACHE_CONTROL]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cache.contains("private") && !cache.contains("public"),
        "{cache}"
    );
    assert_eq!(
        get(&registry, "/index/no/ne/none_such", Some(&token))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );

    // A consumer without a token fails cleanly; after `cargo login` it builds.
    let consumer = CargoHome::new(&[("ktra", &index)]);
    let app = package(
        root,
        "app",
        "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\npublish = false\n\n\
         [dependencies]\nsecret_lib = { version = \"0.1\", registry = \"ktra\" }\n",
        &[(
            "src/main.rs",
            "fn main() { println!(\"value={}\", secret_lib::value()); }\n",
        )],
    );
    let failed = consumer.output(&app, &["build"], None).await;
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success(), "{stderr}");
    assert!(
        stderr.contains("token") && stderr.contains("ktra"),
        "{stderr}"
    );
    consumer.login(root, "ktra", &token).await;
    let run = consumer.ok(&app, &["run", "--quiet"]).await;
    assert!(run.contains("value=42"), "{run}");

    // The web API through cargo, with the token.
    let found = publisher
        .ok(root, &["search", "--registry", "ktra", "secret"])
        .await;
    assert!(found.contains("secret_lib = \"0.1.0\""), "{found}");
    let owners = publisher
        .ok(
            root,
            &["owner", "--registry", "ktra", "--list", "secret_lib"],
        )
        .await;
    assert!(owners.contains("alice"), "{owners}");
    publisher
        .ok(root, &["yank", "--registry", "ktra", "secret_lib@0.1.0"])
        .await;
    let file = get(&registry, "/index/se/cr/secret_lib", Some(&token)).await;
    assert!(file.text().await.unwrap().contains("\"yanked\":true"));

    // The git index says the same, so cargo sends the token for downloads there too.
    let git_config: Value =
        serde_json::from_str(&branch_files(&registry.remote_path, "main")["config.json"]).unwrap();
    assert_eq!(git_config["auth-required"], true);
}
