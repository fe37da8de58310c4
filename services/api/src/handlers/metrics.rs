//! `GET /metrics`: the API's Prometheus metrics.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::HeaderValue;
use http::header::CONTENT_TYPE;

use crate::state::AppState;

/// `GET /metrics`. The git index's lag is read from the store at each scrape, so every
/// replica reports it, current to the scrape.
pub async fn scrape(State(state): State<AppState>) -> Response {
    refresh_index_lag(&state).await;
    (
        [(
            CONTENT_TYPE,
            HeaderValue::from_static(ktra_core::metrics::CONTENT_TYPE),
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// Sets the unacknowledged-crates gauges from the store; a store that does not answer leaves
/// them as they were (`ktra_metadata_store_up` says why).
async fn refresh_index_lag(state: &AppState) {
    match state.store.pending_summary().await {
        Ok(summary) => {
            state
                .metrics
                .index_unacknowledged
                .set(i64::try_from(summary.crates).unwrap_or(i64::MAX));
            let age = summary.oldest.map_or(0.0, |since| {
                (chrono::Utc::now() - since).num_milliseconds().max(0) as f64 / 1000.0
            });
            state.metrics.index_unacknowledged_oldest_age.set(age);
        }
        Err(error) => tracing::debug!(%error, "cannot read the index lag for /metrics"),
    }
}
