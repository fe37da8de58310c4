//! Crate downloads: `GET /{dl_path}/{crate}/{version}/download`.
//!
//! The version is looked up in the metadata store first, so only files of committed versions
//! are ever served.

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use http::HeaderValue;
use http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, ETAG};
use ktra_core::name::{canonical_crate_name, validate_crate_name};
use ktra_store::BlobError;

use crate::error::ApiError;
use crate::extract::ApiPath;
use crate::state::AppState;

/// Crate files never change once published.
const CRATE_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

/// Streams a version's `.crate` file.
#[tracing::instrument(skip_all, fields(crate_name = %name, version = %version))]
pub async fn download(
    State(state): State<AppState>,
    ApiPath((name, version)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let missing = || ApiError::not_found(format!("crate `{name}` has no version `{version}`"));
    if validate_crate_name(&name).is_err() {
        return Err(missing());
    }
    let parsed = semver::Version::parse(&version).map_err(|_| missing())?;
    let file = state
        .store
        .crate_file(&canonical_crate_name(&name), &parsed)
        .await?
        .ok_or_else(missing)?;
    let read = state
        .blobs
        .get(&file.blob_key)
        .await
        .map_err(|error| match error {
            // The store names a file the blob store lacks: that is data loss, not a client error.
            BlobError::NotFound(key) => ApiError::internal(format!("crate file {key} is missing")),
            other => other.into(),
        })?;
    let etag = HeaderValue::from_str(&format!("\"{}\"", file.cksum))
        .map_err(|_| ApiError::internal("stored checksum is not a header value"))?;
    let stream = read.stream.map_err(std::io::Error::other);
    Ok((
        [
            (CONTENT_TYPE, HeaderValue::from_static("application/gzip")),
            (CONTENT_LENGTH, HeaderValue::from(read.size)),
            (CACHE_CONTROL, HeaderValue::from_static(CRATE_CACHE_CONTROL)),
            (ETAG, etag),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}
