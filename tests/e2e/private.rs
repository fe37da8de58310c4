//! A private registry (`KTRA_REGISTRY_AUTH_REQUIRED`, cargo's `auth-required`): the real cargo
//! with and without a token, and what an anonymous client can learn.

use ktra_testing::cargo::{CargoHome, library_package, printing_app};
use ktra_testing::git::branch_files;
use ktra_testing::registry::Registry;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CACHE_CONTROL, WWW_AUTHENTICATE};
use serde_json::Value;

/// The `Cache-Control` header of an answer.
fn cache_control(response: &reqwest::Response) -> &str {
    response.headers()[CACHE_CONTROL]
        .to_str()
        .expect("Cache-Control is ASCII")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cargo_needs_a_token_for_everything_in_a_private_registry() {
    let (registry, token) = Registry::builder()
        .env("KTRA_REGISTRY_AUTH_REQUIRED", "true")
        .start_with_user("alice")
        .await;
    let index = format!("sparse+{}/index/", registry.base);

    // cargo asks for config.json without a token first and must be told to send one.
    let anonymous = registry.get("/index/config.json", None).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        anonymous.headers()[WWW_AUTHENTICATE],
        format!("Cargo login_url=\"{}/login\"", registry.base).as_str()
    );
    let body: Value = anonymous.json().await.unwrap();
    assert!(
        body["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("token")
    );
    let config = registry.get("/index/config.json", Some(&token)).await;
    assert_eq!(config.status(), StatusCode::OK);
    assert!(cache_control(&config).contains("private"));
    let config: Value = config.json().await.unwrap();
    assert_eq!(config["auth-required"], true);
    for open in ["/livez", "/readyz", "/me", "/metrics"] {
        assert_eq!(
            registry.get(open, None).await.status(),
            StatusCode::OK,
            "{open}"
        );
    }

    let publisher = CargoHome::logged_in("ktra", &index, &token).await;
    let work = tempfile::tempdir().unwrap();
    let root = work.path();
    let lib = library_package(
        root,
        "secret_lib",
        "0.1.0",
        "pub fn value() -> u32 { 42 }\n",
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
        let response = registry.get(path, None).await;
        let status = response.status();
        anonymous_answers.push((status, response.text().await.unwrap()));
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
    assert!(anonymous_answers.windows(2).all(|pair| pair[0] == pair[1]));
    // A wrong token is refused without being echoed.
    let forged = "ktra_forgedtoken0123456789abcdefghijklmnopqrstuv";
    let refused = registry.get("/index/se/cr/secret_lib", Some(forged)).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(!refused.text().await.unwrap().contains(forged));
    // With the token: the crate's file, privately cached; unknown crates are plain 404s.
    let file = registry.get("/index/se/cr/secret_lib", Some(&token)).await;
    assert_eq!(file.status(), StatusCode::OK);
    assert!(cache_control(&file).contains("private"));
    let download = registry
        .get("/dl/secret_lib/0.1.0/download", Some(&token))
        .await;
    assert_eq!(download.status(), StatusCode::OK);
    let cache = cache_control(&download);
    assert!(
        cache.contains("private") && !cache.contains("public"),
        "{cache}"
    );
    assert_eq!(
        registry
            .get("/index/no/ne/none_such", Some(&token))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );

    // A consumer without a token fails cleanly; after `cargo login` it builds.
    let consumer = CargoHome::new(&[("ktra", &index)]);
    let app = printing_app(
        root,
        "app",
        "secret_lib = { version = \"0.1\", registry = \"ktra\" }",
        "value",
        "secret_lib::value()",
    );
    let failed = consumer.output(&app, &["build"], None).await;
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success(), "{stderr}");
    assert!(
        stderr.contains("token") && stderr.contains("ktra"),
        "{stderr}"
    );
    consumer.login(root, "ktra", &token).await;
    consumer.assert_runs_printing(&app, "value=42").await;

    // The web API through cargo, with the token.
    publisher
        .assert_finds(root, "ktra", "secret", "secret_lib = \"0.1.0\"")
        .await;
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
    let file = registry.get("/index/se/cr/secret_lib", Some(&token)).await;
    assert!(file.text().await.unwrap().contains("\"yanked\":true"));

    // The git index says the same, so cargo sends the token for downloads there too.
    let git_config: Value =
        serde_json::from_str(&branch_files(&registry.remote_path, "main")["config.json"]).unwrap();
    assert_eq!(git_config["auth-required"], true);
}

/// Creates a token for the holder of `token` through Ktra's token API.
async fn scoped_token(registry: &Registry, token: &str, request: Value) -> String {
    let response = registry
        .client
        .post(registry.url("/ktra/api/v1/tokens"))
        .header(AUTHORIZATION, token)
        .json(&request)
        .send()
        .await
        .expect("the API answers");
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["token"].as_str().unwrap().to_owned()
}

/// Appends `--token TOKEN` to cargo's arguments.
fn with_token<'a>(args: &[&'a str], token: &'a str) -> Vec<&'a str> {
    let mut all = args.to_vec();
    all.extend(["--token", token]);
    all
}

/// Runs cargo, expecting it to fail with a 403 naming `reason`.
async fn refused(home: &CargoHome, dir: &std::path::Path, args: &[&str], reason: &str) {
    let output = home.output(dir, args, None).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "cargo {args:?} succeeded: {stderr}"
    );
    assert!(
        stderr.contains("403") && stderr.contains(reason),
        "cargo {args:?}: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cargo_obeys_token_scopes_in_a_private_registry() {
    let registry = Registry::builder()
        .env("KTRA_REGISTRY_AUTH_REQUIRED", "true")
        .start()
        .await;
    let full = registry.create_user("alice").await;
    registry.create_user("bob").await;
    let index = format!("sparse+{}/index/", registry.base);
    let read_only = scoped_token(
        &registry,
        &full,
        serde_json::json!({"name": "builds", "endpoint_scopes": ["read-only"]}),
    )
    .await;
    let publish = scoped_token(
        &registry,
        &full,
        serde_json::json!({"name": "ci", "endpoint_scopes": ["publish-new", "publish-update"], "crate_scopes": ["scoped_*"]}),
    )
    .await;
    let yank = scoped_token(
        &registry,
        &full,
        serde_json::json!({"name": "yanker", "endpoint_scopes": ["yank"], "expires_in_days": 1}),
    )
    .await;
    let owners = scoped_token(
        &registry,
        &full,
        serde_json::json!({"name": "owners", "endpoint_scopes": ["change-owners"], "crate_scopes": ["scoped_lib"]}),
    )
    .await;

    let home = CargoHome::logged_in("ktra", &index, &read_only).await;
    let work = tempfile::tempdir().unwrap();
    let root = work.path();
    let lib = library_package(root, "scoped_lib", "0.1.0", "pub fn value() -> u32 { 7 }\n");
    let other = library_package(root, "other_lib", "0.1.0", "");
    let publish_args = |token| {
        with_token(
            &[
                "publish",
                "--registry",
                "ktra",
                "--no-verify",
                "--allow-dirty",
            ],
            token,
        )
    };

    // The logged-in read-only token reads but cannot publish.
    refused(
        &home,
        &lib,
        &publish_args(&read_only),
        "does not allow publishing new crates",
    )
    .await;
    // The publishing token publishes crates its pattern covers, and only those.
    home.ok(&lib, &publish_args(&publish)).await;
    refused(
        &home,
        &other,
        &publish_args(&publish),
        "does not cover crate `other_lib`",
    )
    .await;
    // Builds and searches need only the read-only token.
    let app = printing_app(
        root,
        "app",
        "scoped_lib = { version = \"0.1\", registry = \"ktra\" }",
        "value",
        "scoped_lib::value()",
    );
    home.assert_runs_printing(&app, "value=7").await;
    home.assert_finds(root, "ktra", "scoped", "scoped_lib = \"0.1.0\"")
        .await;
    // Yank and owner changes each need their scope.
    let yank_args = |token| with_token(&["yank", "--registry", "ktra", "scoped_lib@0.1.0"], token);
    refused(&home, root, &yank_args(&publish), "does not allow yanking").await;
    home.ok(root, &yank_args(&yank)).await;
    let owner_args = |token| {
        with_token(
            &["owner", "--registry", "ktra", "--add", "bob", "scoped_lib"],
            token,
        )
    };
    refused(
        &home,
        root,
        &owner_args(&yank),
        "does not allow changing owners",
    )
    .await;
    home.ok(root, &owner_args(&owners)).await;
    let listed = home
        .ok(
            root,
            &["owner", "--registry", "ktra", "--list", "scoped_lib"],
        )
        .await;
    assert!(
        listed.contains("alice") && listed.contains("bob"),
        "{listed}"
    );
    let file = registry
        .get("/index/sc/op/scoped_lib", Some(&read_only))
        .await;
    assert!(file.text().await.unwrap().contains("\"yanked\":true"));
    assert_eq!(
        registry
            .get("/index/ot/he/other_lib", Some(&read_only))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}
