//! A small upstream registry whose answers the tests control.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::response::IntoResponse;
use reqwest::StatusCode;
use sha2::Digest;

/// A small upstream registry serving one crate, `tam` 0.1.0, whose download answers
/// `served` after `delay` while its index lists the checksum of `listed`. `config.json`
/// answers after `config_delay`. With `portal` set, every route answers 200 with a captive
/// portal's HTML page; with `stalled` set, every route waits 30 s before answering.
pub(super) struct Fixture {
    pub(super) base: String,
    pub(super) index_hits: AtomicUsize,
    pub(super) crate_hits: AtomicUsize,
    pub(super) missing_hits: AtomicUsize,
    pub(super) config_hits: AtomicUsize,
    pub(super) portal: AtomicBool,
    pub(super) stalled: AtomicBool,
    served: &'static [u8],
    listed_cksum: String,
    delay: Duration,
    config_delay: Duration,
}

const PORTAL_PAGE: &str = "<html><body>Sign in to the guest Wi-Fi</body></html>\n";

impl Fixture {
    /// Waits `delay`, longer when stalled; returns the portal page when one is shown.
    async fn answer_after(&self, delay: Duration) -> Option<axum::response::Response> {
        tokio::time::sleep(delay).await;
        if self.stalled.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        self.portal
            .load(Ordering::SeqCst)
            .then(|| axum::response::Html(PORTAL_PAGE).into_response())
    }
}

pub(super) async fn fixture(served: &'static [u8], listed: &[u8], delay: Duration) -> Arc<Fixture> {
    fixture_with(served, listed, delay, Duration::ZERO).await
}

pub(super) async fn fixture_with(
    served: &'static [u8],
    listed: &[u8],
    delay: Duration,
    config_delay: Duration,
) -> Arc<Fixture> {
    async fn config(State(fixture): State<Arc<Fixture>>) -> axum::response::Response {
        fixture.config_hits.fetch_add(1, Ordering::SeqCst);
        if let Some(portal) = fixture.answer_after(fixture.config_delay).await {
            return portal;
        }
        format!(
            "{{\"dl\":\"{}/files/{{crate}}-{{version}}.crate\"}}",
            fixture.base
        )
        .into_response()
    }
    async fn index(
        State(fixture): State<Arc<Fixture>>,
        axum::extract::Path(path): axum::extract::Path<String>,
    ) -> axum::response::Response {
        if path != "3/t/tam" {
            fixture.missing_hits.fetch_add(1, Ordering::SeqCst);
        } else {
            fixture.index_hits.fetch_add(1, Ordering::SeqCst);
        }
        if let Some(portal) = fixture.answer_after(fixture.delay).await {
            return portal;
        }
        if path != "3/t/tam" {
            return StatusCode::NOT_FOUND.into_response();
        }
        format!(
            "{{\"name\":\"tam\",\"vers\":\"0.1.0\",\"deps\":[],\"cksum\":\"{}\",\"features\":{{}},\"yanked\":false}}\n",
            fixture.listed_cksum
        )
        .into_response()
    }
    async fn download(State(fixture): State<Arc<Fixture>>) -> axum::response::Response {
        fixture.crate_hits.fetch_add(1, Ordering::SeqCst);
        if let Some(portal) = fixture.answer_after(fixture.delay).await {
            return portal;
        }
        fixture.served.into_response()
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let state = Arc::new(Fixture {
        base,
        index_hits: AtomicUsize::new(0),
        crate_hits: AtomicUsize::new(0),
        missing_hits: AtomicUsize::new(0),
        config_hits: AtomicUsize::new(0),
        portal: AtomicBool::new(false),
        stalled: AtomicBool::new(false),
        served,
        listed_cksum: hex::encode(sha2::Sha256::digest(listed)),
        delay,
        config_delay,
    });
    let app = axum::Router::new()
        .route("/index/config.json", axum::routing::get(config))
        .route("/index/{*path}", axum::routing::get(index))
        .route("/files/tam-0.1.0.crate", axum::routing::get(download))
        .with_state(Arc::clone(&state));
    tokio::spawn(async move { axum::serve(listener, app).await });
    state
}
