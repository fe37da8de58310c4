//! The pull-through mirror's routes (see [`crate::mirror`]):
//!
//! - `GET /mirror/index/config.json` and `GET /mirror/index/{path}`: the upstream's sparse
//!   index, cached; cargo reaches it through `[source.crates-io] replace-with`.
//! - `GET /mirror/dl/{crate}/{version}/download`, and Ktra's
//!   `GET /ktra/api/v1/mirror/{crate}/{version}/download`: crate files, verified and cached.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, ETAG, LAST_MODIFIED};
use http::{HeaderMap, HeaderValue, StatusCode};
use ktra_core::index::index_path;
use ktra_core::name::validate_crate_name;

use crate::error::ApiError;
use crate::extract::ApiPath;
use crate::handlers::index::{http_date, not_modified};
use crate::mirror::{CrateFile, Mirror};
use crate::state::AppState;

/// Crate files never change once published.
const CRATE_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

/// The state of the mirror's routes, which exist only when the mirror is enabled.
#[derive(Debug, Clone)]
pub struct MirrorState {
    app: AppState,
    mirror: Arc<Mirror>,
}

impl MirrorState {
    /// Pairs the registry's state with its mirror.
    pub fn new(app: AppState, mirror: Arc<Mirror>) -> Self {
        Self { app, mirror }
    }
}

/// `GET /mirror/index/config.json`: downloads go through this registry.
pub async fn config_json(State(MirrorState { app: state, .. }): State<MirrorState>) -> Response {
    let body = serde_json::json!({
        "dl": format!("{}/mirror/dl", state.config.public_base()),
        "auth-required": state.config.registry.auth_required,
    });
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        format!("{body}\n"),
    )
        .into_response()
}

/// `GET /mirror/index/{path}`: one crate's index file, as the upstream serves it.
#[tracing::instrument(skip_all, fields(path = %path))]
pub async fn index_file(
    State(MirrorState { mirror, .. }): State<MirrorState>,
    ApiPath(path): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let name = path.rsplit('/').next().unwrap_or_default();
    if validate_crate_name(name).is_err()
        || name.to_ascii_lowercase() != name
        || index_path(name) != path
    {
        return Err(ApiError::not_found(format!("no index file at `{path}`")));
    }
    mirror.check_allowed(name)?;
    let entry = mirror.index_file(&path, None).await?;
    let etag = HeaderValue::from_str(entry.etag())
        .map_err(|_| ApiError::internal("a cached etag is not a header value"))?;
    let validators = [
        (ETAG, etag),
        (LAST_MODIFIED, http_date(entry.last_modified())),
        (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    if not_modified(&headers, entry.etag(), entry.last_modified()) {
        return Ok((StatusCode::NOT_MODIFIED, validators).into_response());
    }
    Ok((
        validators,
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        Body::from(entry.content),
    )
        .into_response())
}

/// `GET /mirror/dl/{crate}/{version}/download` and Ktra's
/// `GET /ktra/api/v1/mirror/{crate}/{version}/download`.
#[tracing::instrument(skip_all, fields(crate_name = %name, version = %version))]
pub async fn download(
    State(MirrorState { app: state, mirror }): State<MirrorState>,
    ApiPath((name, version)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let headers = [
        (CONTENT_TYPE, HeaderValue::from_static("application/gzip")),
        (CACHE_CONTROL, HeaderValue::from_static(CRATE_CACHE_CONTROL)),
    ];
    Ok(match mirror.crate_file(&name, &version).await? {
        CrateFile::Cached(read) => {
            state.metrics.downloaded_bytes.inc_by(read.size);
            (
                headers,
                [(CONTENT_LENGTH, HeaderValue::from(read.size))],
                Body::from_stream(read.stream.map_err(std::io::Error::other)),
            )
                .into_response()
        }
        CrateFile::Fetched(bytes) => {
            state.metrics.downloaded_bytes.inc_by(bytes.len() as u64);
            (headers, Body::from(bytes)).into_response()
        }
    })
}
