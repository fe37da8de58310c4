//! Probes for orchestration, and the page cargo sends people to for a token.

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use http::StatusCode;
use serde::Serialize;

use crate::error::error_response;
use crate::state::AppState;

/// The body of a healthy probe.
#[derive(Debug, Serialize)]
pub struct Healthy {
    status: &'static str,
}

/// `GET /livez`: the process is serving requests.
pub async fn livez() -> Json<Healthy> {
    Json(Healthy { status: "ok" })
}

/// `GET /readyz`: the metadata and blob stores answer.
pub async fn readyz(State(state): State<AppState>) -> axum::response::Response {
    let (store, blobs) = tokio::join!(state.store.ping(), state.blobs.ping());
    let problems: Vec<String> = [
        store.err().map(|error| format!("metadata store: {error}")),
        blobs.err().map(|error| format!("blob store: {error}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if problems.is_empty() {
        return Json(Healthy { status: "ok" }).into_response();
    }
    tracing::warn!(?problems, "not ready");
    error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        "not ready: a storage dependency is unreachable",
    )
}

/// `GET /me`: where `cargo login` tells people to get a token.
pub async fn me(State(state): State<AppState>) -> impl IntoResponse {
    let base = state.config.public_base();
    format!(
        "Ktra issues tokens through its user API.\n\n\
         Create a user:   curl -X POST -H 'Content-Type: application/json' -d '{{\"password\":\"...\"}}' {base}/ktra/api/v1/new_user/<name>\n\
         New token:       curl -X POST -H 'Content-Type: application/json' -d '{{\"password\":\"...\"}}' {base}/ktra/api/v1/login/<name>\n\n\
         Then paste the token into `cargo login --registry <name>`.\n"
    )
}
