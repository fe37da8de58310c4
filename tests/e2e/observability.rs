//! Observability seen from outside: one OTLP trace per `cargo publish` across both services,
//! and `/metrics` pages that move and parse.

use std::collections::BTreeSet;
use std::time::Duration;

use ktra_testing::cargo::{CargoHome, library_package};
use ktra_testing::collector::{Collector, ReceivedSpan};
use ktra_testing::fixtures::CrateFixture;
use ktra_testing::metrics::{Sample, parse, sum};
use ktra_testing::registry::Registry;
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_cargo_publish_is_one_trace_across_both_services() {
    let collector = Collector::start().await;
    let (registry, token) = Registry::builder()
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.endpoint)
        .start_with_user("alice")
        .await;
    let index = format!("sparse+{}/index/", registry.base);
    let cargo = CargoHome::logged_in("ktra", &index, &token).await;
    let work = tempfile::tempdir().unwrap();
    let lib = library_package(work.path(), "traced", "0.1.0", "pub fn f() {}\n");
    cargo.publish(&lib, "ktra").await;

    // A proxy in front of the API started a trace: the request joins it.
    let proxy_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let proxy_span = "00f067aa0ba902b7";
    let response = registry
        .client
        .get(registry.url("/index/config.json"))
        .header("traceparent", format!("00-{proxy_trace}-{proxy_span}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    // Nothing waits for the exporters' schedule: SIGTERM must flush what is buffered.
    registry.api.terminate();
    registry.indexer().terminate();
    let spans = collector.spans();
    let summary = || {
        spans
            .iter()
            .map(|span| format!("{} {} {}", span.service, span.name, span.trace_id))
            .collect::<Vec<_>>()
            .join("\n")
    };

    let publish_request = spans
        .iter()
        .find(|span| {
            span.service == "ktra-api"
                && span.name == "request"
                && span.attributes.get("route").map(String::as_str) == Some("/api/v1/crates/new")
        })
        .unwrap_or_else(|| panic!("no publish request span among:\n{}", summary()));
    let trace: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|span| span.trace_id == publish_request.trace_id)
        .collect();
    let ids: BTreeSet<&str> = trace.iter().map(|span| span.span_id.as_str()).collect();
    let roots: Vec<&&ReceivedSpan> = trace
        .iter()
        .filter(|span| !ids.contains(span.parent_span_id.as_str()))
        .collect();
    assert_eq!(
        roots.len(),
        1,
        "one tree, one root; the trace's spans:\n{}",
        describe(&trace)
    );
    println!("{}", describe(&trace));
    assert_eq!(roots[0].span_id, publish_request.span_id);
    assert!(publish_request.parent_span_id.is_empty());
    assert_eq!(publish_request.attributes["status"], "200");

    let services: BTreeSet<&str> = trace.iter().map(|span| span.service.as_str()).collect();
    assert_eq!(
        services,
        BTreeSet::from(["ktra-api", "ktra-indexer"]),
        "{}",
        describe(&trace)
    );
    let named = |service: &str, name: &str| {
        trace
            .iter()
            .find(|span| span.service == service && span.name == name)
            .copied()
            .unwrap_or_else(|| panic!("no {service} span {name}:\n{}", describe(&trace)))
    };
    let publish = named("ktra-api", "publish");
    assert_eq!(publish.attributes["crate_name"], "traced");
    assert_eq!(publish.attributes["version"], "0.1.0");
    assert_eq!(publish.attributes["user"], "alice");
    named("ktra-api", "publish.check");
    named("ktra-api", "blob.put");
    named("ktra-api", "store");
    named("ktra-api", "indexer.apply");
    named("ktra-indexer", "indexer.apply");
    let round = named("ktra-indexer", "indexer.round");
    let commit = &round.attributes["commit"];
    assert!(
        commit.len() == 40 && commit.chars().all(|c| c.is_ascii_hexdigit()),
        "{commit}"
    );
    named("ktra-indexer", "git.commit");
    named("ktra-indexer", "git.push");

    // No span anywhere carries the token.
    for span in &spans {
        for (key, value) in &span.attributes {
            assert!(
                !value.contains(&token),
                "{} {}: {key} holds the token",
                span.service,
                span.name
            );
        }
    }

    let joined = spans
        .iter()
        .find(|span| span.trace_id == proxy_trace)
        .unwrap_or_else(|| panic!("the proxy's trace is not continued:\n{}", summary()));
    assert_eq!(joined.name, "request");
    assert_eq!(joined.parent_span_id, proxy_span);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_rebuild_is_one_trace_across_both_services() {
    let collector = Collector::start().await;
    let registry = Registry::builder()
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.endpoint)
        .start()
        .await;
    // The embedded store is held by the running API; the command runs beside a stopped one.
    registry.api.terminate();
    let (code, output) = registry.api_command(&["verify-index"]);
    // 1 when the indexer has not written config.json yet: the comparison ran all the same.
    assert!(
        [0, 1].contains(&code) && output.contains("crates in the store: 0"),
        "{code}: {output}"
    );
    registry.indexer().terminate();
    let spans = collector.spans();

    let rebuild = spans
        .iter()
        .find(|span| span.service == "ktra-api" && span.name == "index.rebuild")
        .unwrap_or_else(|| panic!("no index.rebuild span among {} spans", spans.len()));
    let trace: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|span| span.trace_id == rebuild.trace_id)
        .collect();
    // The indexer's request span is a child of the API's, through the gRPC metadata.
    let request = trace
        .iter()
        .find(|span| span.service == "ktra-indexer" && span.name == "grpc")
        .unwrap_or_else(|| panic!("the indexer did not join:\n{}", describe(&trace)));
    assert_eq!(
        request.attributes["rpc"],
        "/ktra.indexer.v1.Indexer/Rebuild",
        "{}",
        describe(&trace)
    );
    assert!(
        trace
            .iter()
            .any(|span| span.service == "ktra-indexer" && span.name == "rebuild"),
        "{}",
        describe(&trace)
    );
}

fn describe(trace: &[&ReceivedSpan]) -> String {
    trace
        .iter()
        .map(|span| {
            format!(
                "{} {} id={} parent={}",
                span.service, span.name, span.span_id, span.parent_span_id
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

async fn scrape(registry: &Registry, base: &str) -> Vec<Sample> {
    let response = registry
        .client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    parse(&response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_with_publishes_downloads_and_failures() {
    let (registry, token) = Registry::builder().start_with_user("alice").await;
    let api_before = scrape(&registry, &registry.base).await;
    let indexer_before = scrape(&registry, &registry.indexer_metrics).await;
    let publish_route = [("route", "/api/v1/crates/new"), ("method", "PUT")];
    assert_eq!(
        sum(&api_before, "ktra_publishes_total", &[]),
        0.0,
        "{api_before:?}"
    );

    let fixture = CrateFixture::new("measured", "1.0.0");
    let crate_bytes = fixture.crate_file().len() as f64;
    let (status, body) = registry.publish(&token, fixture.body()).await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    let download = registry
        .client
        .get(registry.url("/dl/measured/1.0.0/download"))
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), StatusCode::OK);
    assert_eq!(download.bytes().await.unwrap().len() as f64, crate_bytes);
    // Another file under the same version: refused.
    let other_file = CrateFixture::new("measured", "1.0.0").with_payload(8);
    let (status, body) = registry.publish(&token, other_file.body()).await.unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    registry
        .wait_remote_converged(&["measured".to_owned()], Duration::from_secs(10))
        .await;

    let api = scrape(&registry, &registry.base).await;
    let moved = |name: &str, labels: &[(&str, &str)]| {
        sum(&api, name, labels) - sum(&api_before, name, labels)
    };
    assert_eq!(
        moved(
            "ktra_http_requests_total",
            &[publish_route[0], publish_route[1], ("status", "200")]
        ),
        1.0
    );
    assert_eq!(
        moved(
            "ktra_http_requests_total",
            &[publish_route[0], publish_route[1], ("status", "400")]
        ),
        1.0
    );
    assert_eq!(
        moved("ktra_http_request_duration_seconds_count", &publish_route),
        2.0
    );
    assert!(moved("ktra_http_request_duration_seconds_sum", &publish_route) > 0.0);
    assert_eq!(
        moved("ktra_publishes_total", &[("outcome", "ok")]),
        1.0,
        "{api:?}"
    );
    assert_eq!(
        moved("ktra_publishes_total", &[("outcome", "refused")]),
        1.0
    );
    assert_eq!(moved("ktra_uploaded_crate_bytes_total", &[]), crate_bytes);
    assert_eq!(moved("ktra_downloaded_crate_bytes_total", &[]), crate_bytes);
    let downloads = api
        .iter()
        .filter(|sample| {
            sample.name == "ktra_http_requests_total"
                && sample.labels["route"].ends_with("/download")
                && sample.labels["status"] == "200"
        })
        .map(|sample| sample.value)
        .sum::<f64>();
    assert_eq!(downloads, 1.0);
    assert!(
        moved(
            "ktra_storage_operation_duration_seconds_count",
            &[("store", "blob")]
        ) >= 2.0
    );
    assert!(
        moved(
            "ktra_storage_operation_duration_seconds_count",
            &[("store", "metadata")]
        ) >= 2.0
    );
    assert_eq!(sum(&api, "ktra_metadata_store_up", &[]), 1.0);

    let indexer = scrape(&registry, &registry.indexer_metrics).await;
    let moved = |name: &str| sum(&indexer, name, &[]) - sum(&indexer_before, name, &[]);
    assert!(moved("ktra_indexer_rounds_total") >= 1.0, "{indexer:?}");
    assert!(moved("ktra_indexer_acknowledged_updates_total") >= 1.0);
    assert!(moved("ktra_indexer_commit_duration_seconds_count") >= 1.0);
    assert!(moved("ktra_indexer_push_duration_seconds_count") >= 1.0);
    assert!(moved("ktra_indexer_batch_size_files_count") >= 1.0);
    assert_eq!(sum(&indexer, "ktra_indexer_push_failures_total", &[]), 0.0);
    assert_eq!(sum(&indexer, "ktra_indexer_queue_depth", &[]), 0.0);
    assert!(sum(&indexer, "ktra_indexer_last_push_timestamp_seconds", &[]) > 1.7e9);
}
