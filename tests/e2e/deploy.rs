//! The environment the compose file, the Helm chart and the Dockerfiles give the services is
//! exactly what the binaries read: both binaries start with it (only hosts, ports and paths
//! pointed at servers this test runs) and serve a publish. The services refuse unknown `KTRA_`
//! variables, so a misspelt name in a deployment file fails here.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use ktra_testing::fixtures::CrateFixture;
use ktra_testing::git::branch_files;
use ktra_testing::poll::poll_until_true;
use ktra_testing::process::{free_port, project_path, start_ktra_service, workspace_binary};
use ktra_testing::servers::{RedisServer, S3Server};
use reqwest::StatusCode;
use serde_json::Value;

fn run_json(command: &mut Command) -> Value {
    let output = command.output().expect("the tool runs");
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON output")
}

/// `ENV` settings of a Dockerfile's last stage.
fn dockerfile_env(file: &str) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(project_path(file)).expect("the Dockerfile");
    let last_stage = text.rsplit("\nFROM ").next().unwrap_or_default();
    let joined = last_stage.replace("\\\n", " ");
    joined
        .lines()
        .filter_map(|line| line.trim().strip_prefix("ENV "))
        .flat_map(|pairs| {
            pairs
                .split_whitespace()
                .filter_map(|pair| pair.split_once('='))
                .map(|(name, value)| (name.to_owned(), value.to_owned()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The environment of each compose service, as `docker-compose config` resolves it with the
/// example `.env`.
fn compose_env() -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let root = project_path("");
    let config = run_json(
        Command::new(root.join(".venv/bin/docker-compose"))
            .current_dir(&root)
            .args([
                "-f",
                "deploy/compose/compose.yaml",
                "--env-file",
                "deploy/compose/.env.example",
            ])
            .args(["config", "--format", "json"]),
    );
    let env_of = |service: &str| -> BTreeMap<String, String> {
        config["services"][service]["environment"]
            .as_object()
            .unwrap_or_else(|| panic!("no environment for {service}"))
            .iter()
            .map(|(name, value)| (name.clone(), value.as_str().unwrap_or_default().to_owned()))
            .collect()
    };
    (env_of("api"), env_of("indexer"))
}

/// The environment of the API and indexer containers rendered by the chart with `values`: the
/// ConfigMaps' data plus each container's `env` (values from Secrets get a placeholder).
fn helm_env(values: Option<&str>) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let root = project_path("");
    let xdg = tempfile::tempdir().unwrap();
    let mut helm = Command::new(root.join(".tools/helm"));
    helm.current_dir(&root)
        .env("XDG_CACHE_HOME", xdg.path())
        .env("XDG_CONFIG_HOME", xdg.path())
        .env("XDG_DATA_HOME", xdg.path())
        .args(["template", "ktra", "deploy/helm/ktra"]);
    if let Some(values) = values {
        helm.args(["-f", values]);
    }
    let rendered = helm.output().expect("helm runs");
    assert!(
        rendered.status.success(),
        "{}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    let mut to_json = Command::new(root.join(".venv/bin/python"));
    to_json
        .args(["-c", "import json, sys, yaml; print(json.dumps([d for d in yaml.safe_load_all(sys.stdin) if d]))"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = to_json.spawn().expect("python runs");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), &rendered.stdout).unwrap();
    let output = child.wait_with_output().unwrap();
    let documents: Vec<Value> = serde_json::from_slice(&output.stdout).expect("rendered YAML");
    let config_map = |component: &str| -> BTreeMap<String, String> {
        documents
            .iter()
            .find(|doc| {
                doc["kind"] == "ConfigMap" && doc["metadata"]["name"] == format!("ktra-{component}")
            })
            .and_then(|doc| doc["data"].as_object())
            .unwrap_or_else(|| panic!("no ConfigMap for {component}"))
            .iter()
            .map(|(name, value)| (name.clone(), value.as_str().unwrap_or_default().to_owned()))
            .collect()
    };
    let container_env = |kind: &str| -> BTreeMap<String, String> {
        let workload = documents
            .iter()
            .find(|doc| doc["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind}"));
        workload["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|entry| {
                let name = entry["name"].as_str().unwrap().to_owned();
                let value = entry["value"]
                    .as_str()
                    .unwrap_or("from-a-secret")
                    .to_owned();
                (name, value)
            })
            .collect()
    };
    let mut api = config_map("api");
    api.extend(container_env("Deployment"));
    let mut indexer = config_map("indexer");
    indexer.extend(container_env("StatefulSet"));
    (api, indexer)
}

/// Points a deployment's environment at this test's servers and directories. Only values
/// change; a name the deployment did not set is added only where the test needs it (an S3
/// endpoint and keys, a git remote).
fn localise(env: &mut BTreeMap<String, String>, local: &BTreeMap<&str, String>, add: &[&str]) {
    for (name, value) in env.iter_mut() {
        if let Some(replacement) = local.get(name.as_str()) {
            value.clone_from(replacement);
        }
    }
    for name in add {
        env.insert((*name).to_owned(), local[name].clone());
    }
    // Credentials the test does not use.
    for name in [
        "KTRA_GIT_HTTPS_PASSWORD",
        "KTRA_GIT_SSH_PRIVKEY_PATH",
        "KTRA_GIT_SSH_KNOWN_HOSTS",
    ] {
        env.remove(name);
    }
}

async fn serve_a_publish(api_env: BTreeMap<String, String>, indexer_env: BTreeMap<String, String>) {
    let dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start(dir.path());
    let s3 = S3Server::start(dir.path());
    let bucket = api_env
        .get("KTRA_S3_BUCKET")
        .cloned()
        .unwrap_or_else(|| "crates".into());
    s3.create_bucket(&bucket);
    let (api_port, indexer_port) = (free_port(), free_port());
    let base = format!("http://127.0.0.1:{api_port}");
    let remote = dir.path().join("index.git");
    let local: BTreeMap<&str, String> = [
        ("KTRA_HTTP_PORT", api_port.to_string()),
        ("KTRA_REGISTRY_PUBLIC_URL", base.clone()),
        ("KTRA_DB_REDIS_URL", redis.url.clone()),
        ("KTRA_S3_ENDPOINT", s3.endpoint.clone()),
        ("KTRA_S3_ALLOW_HTTP", "true".to_owned()),
        ("AWS_ACCESS_KEY_ID", s3.access_key.clone()),
        ("AWS_SECRET_ACCESS_KEY", s3.secret_key.clone()),
        (
            "KTRA_INDEXER_URL",
            format!("http://127.0.0.1:{indexer_port}"),
        ),
        ("KTRA_INDEXER_LISTEN", format!("127.0.0.1:{indexer_port}")),
        (
            "KTRA_INDEXER_METRICS_LISTEN",
            format!("127.0.0.1:{}", free_port()),
        ),
        (
            "KTRA_GIT_LOCAL_PATH",
            dir.path().join("clone").display().to_string(),
        ),
        (
            "KTRA_GIT_REMOTE_URL",
            format!("file://{}", remote.display()),
        ),
        (
            "KTRA_DB_DIR_PATH",
            dir.path().join("db").display().to_string(),
        ),
        (
            "KTRA_BLOB_DIR_PATH",
            dir.path().join("crates").display().to_string(),
        ),
    ]
    .into_iter()
    .collect();
    let mut api_env = api_env;
    let mut indexer_env = indexer_env;
    localise(
        &mut api_env,
        &local,
        &[
            "KTRA_S3_ENDPOINT",
            "KTRA_S3_ALLOW_HTTP",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
        ],
    );
    localise(
        &mut indexer_env,
        &local,
        &["KTRA_GIT_REMOTE_URL", "KTRA_INDEXER_METRICS_LISTEN"],
    );
    let indexer = start_ktra_service(
        "indexer",
        "ktra-indexer",
        indexer_env.clone(),
        dir.path(),
        indexer_port,
    );
    let api = start_ktra_service("api", "ktra-api", api_env.clone(), dir.path(), api_port);

    // The container health checks pass.
    for (binary, env) in [("ktra-api", &api_env), ("ktra-indexer", &indexer_env)] {
        let ready = poll_until_true(Duration::from_secs(10), async || {
            Command::new(workspace_binary(binary))
                .arg("healthcheck")
                .env_clear()
                .envs(env)
                .status()
                .expect("the health check runs")
                .success()
        })
        .await;
        assert!(
            ready,
            "{binary} never became healthy\n{}\n{}\n--- seaweedfs log ---\n{}",
            api.log_tail(),
            indexer.log_tail(),
            s3.log_tail()
        );
    }

    let client = reqwest::Client::new();
    let mut new_user = client
        .post(format!("{base}/ktra/api/v1/new_user/alice"))
        .json(&serde_json::json!({"password": "password123"}));
    // With registration closed, the bootstrap token (a Secret's placeholder here) creates it.
    if let Some(bootstrap) = api_env.get("KTRA_AUTH_BOOTSTRAP_TOKEN") {
        new_user = new_user.header("Authorization", format!("Bearer {bootstrap}"));
    }
    let created: Value = new_user.send().await.unwrap().json().await.unwrap();
    let token = created["token"].as_str().expect("a token").to_owned();
    let response = client
        .put(format!("{base}/api/v1/crates/new"))
        .header("Authorization", token)
        .body(CrateFixture::new("deployed", "1.0.0").body())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{}", api.log_tail());
    let pushed = poll_until_true(Duration::from_secs(10), async || {
        branch_files(&remote, "main").contains_key("de/pl/deployed")
    })
    .await;
    assert!(
        pushed,
        "the git index never got the crate\n{}",
        indexer.log_tail()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compose_environment_runs_the_binaries() {
    let (mut api, mut indexer) = compose_env();
    // The images' own ENV comes first; compose overrides it.
    let mut api_env = dockerfile_env("Dockerfile.api");
    api_env.append(&mut api);
    let mut indexer_env = dockerfile_env("Dockerfile.indexer");
    indexer_env.append(&mut indexer);
    assert_eq!(api_env["KTRA_DB_KIND"], "redis");
    serve_a_publish(api_env, indexer_env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_helm_environment_runs_the_binaries() {
    for values in [
        None,
        Some("deploy/helm/ktra/ci/external-services-values.yaml"),
        Some("deploy/helm/ktra/ci/inline-credentials-values.yaml"),
    ] {
        let (mut api, mut indexer) = helm_env(values);
        let mut api_env = dockerfile_env("Dockerfile.api");
        api_env.append(&mut api);
        let mut indexer_env = dockerfile_env("Dockerfile.indexer");
        indexer_env.append(&mut indexer);
        serve_a_publish(api_env, indexer_env).await;
    }
}
