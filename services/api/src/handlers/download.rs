//! Crate downloads: `GET /{dl_path}/{crate}/{version}/download` (and `HEAD`).
//!
//! The version is looked up in the metadata store first, so only files of committed versions
//! are ever served. Files stream from the blob store; single byte ranges are honoured; with
//! presigned downloads configured, the answer is a redirect to the object store instead. A
//! whole file served (or a redirect to it) counts one download of the version
//! ([`crate::downloads`]); a `HEAD` or a range does not.

use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use http::header::{
    ACCEPT_RANGES, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG, LOCATION,
    RANGE,
};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use ktra_core::name::CrateId;
use ktra_core::version::VersionId;
use ktra_store::BlobError;
use ktra_store::model::CrateFileRef;

use crate::error::{ApiError, error_response};
use crate::extract::ApiPath;
use crate::state::AppState;

/// Crate files never change once published.
const CRATE_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

/// A parsed `Range` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ByteRange {
    /// `bytes=start-` or `bytes=start-end` (end inclusive).
    From { start: u64, end: Option<u64> },
    /// `bytes=-length`: the last `length` bytes.
    Suffix(u64),
}

impl ByteRange {
    /// Parses a single range; `None` for anything else (several ranges, other units), which
    /// is then ignored and the whole file served, as RFC 9110 allows.
    fn parse(header: &str) -> Option<Self> {
        let spec = header.trim().strip_prefix("bytes=")?;
        if spec.contains(',') {
            return None;
        }
        let (start, end) = spec.split_once('-')?;
        let (start, end) = (start.trim(), end.trim());
        if start.is_empty() {
            return end.parse().ok().map(Self::Suffix);
        }
        let start = start.parse().ok()?;
        let end = if end.is_empty() {
            None
        } else {
            Some(end.parse().ok()?)
        };
        Some(Self::From { start, end })
    }

    /// Resolves against a file's size into a half-open range; `None` when unsatisfiable.
    fn resolve(self, size: u64) -> Option<std::ops::Range<u64>> {
        match self {
            Self::From { start, end } => {
                let end = end.map_or(size, |end| end.saturating_add(1).min(size));
                (start < end).then_some(start..end)
            }
            Self::Suffix(length) => {
                (length > 0 && size > 0).then(|| size.saturating_sub(length)..size)
            }
        }
    }
}

fn file_headers(file: &CrateFileRef) -> Result<[(http::HeaderName, HeaderValue); 4], ApiError> {
    let etag = HeaderValue::from_str(&format!("\"{}\"", file.cksum))
        .map_err(|_| ApiError::internal("stored checksum is not a header value"))?;
    Ok([
        (CONTENT_TYPE, HeaderValue::from_static("application/gzip")),
        (CACHE_CONTROL, HeaderValue::from_static(CRATE_CACHE_CONTROL)),
        (ETAG, etag),
        (ACCEPT_RANGES, HeaderValue::from_static("bytes")),
    ])
}

fn missing_file(error: BlobError) -> ApiError {
    match error {
        // The store names a file the blob store lacks: that is data loss, not a client error.
        BlobError::NotFound(key) => ApiError::internal(format!("crate file {key} is missing")),
        other => other.into(),
    }
}

/// Serves a version's `.crate` file.
#[tracing::instrument(skip_all, fields(crate_name = %name, version = %version))]
pub async fn download(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    ApiPath((name, version)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let missing = || ApiError::not_found(format!("crate `{name}` has no version `{version}`"));
    let krate = CrateId::new(&name).map_err(|_| missing())?;
    let parsed = VersionId::parse(&version).map_err(|_| missing())?;
    let file = state
        .store
        .crate_file(&krate, &parsed)
        .await?
        .ok_or_else(missing)?;

    if state.config.s3.presigned_downloads {
        let expiry = Duration::from_secs(state.config.s3.presign_expiry_secs);
        if let Some(url) = state
            .blobs
            .signed_download_url(&file.blob_key, expiry)
            .await?
        {
            let location = HeaderValue::from_str(url.as_str())
                .map_err(|_| ApiError::internal("a presigned URL is not a header value"))?;
            if method == Method::GET {
                state.downloads.count(&krate, &parsed);
            }
            return Ok((
                StatusCode::TEMPORARY_REDIRECT,
                [
                    (LOCATION, location),
                    (CACHE_CONTROL, HeaderValue::from_static("no-store")),
                ],
            )
                .into_response());
        }
    }

    let common = file_headers(&file)?;
    let range = headers
        .get(RANGE)
        .and_then(|value| value.to_str().ok())
        .and_then(ByteRange::parse);
    if method == Method::HEAD || range.is_some() {
        let size = state
            .blobs
            .size(&file.blob_key)
            .await
            .map_err(missing_file)?;
        if let Some(range) = range {
            let Some(bounds) = range.resolve(size) else {
                let mut response = error_response(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "the requested range is outside the file",
                );
                if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    response.headers_mut().insert(CONTENT_RANGE, value);
                }
                return Ok(response);
            };
            let content_range =
                HeaderValue::from_str(&format!("bytes {}-{}/{size}", bounds.start, bounds.end - 1))
                    .map_err(|_| ApiError::internal("a content range is not a header value"))?;
            let length = bounds.end - bounds.start;
            let body = if method == Method::HEAD {
                Body::empty()
            } else {
                let read = state
                    .blobs
                    .get_range(&file.blob_key, bounds)
                    .await
                    .map_err(missing_file)?;
                state.metrics.downloaded_bytes.inc_by(read.size);
                Body::from_stream(read.stream.map_err(std::io::Error::other))
            };
            return Ok((
                StatusCode::PARTIAL_CONTENT,
                common,
                [
                    (CONTENT_RANGE, content_range),
                    (CONTENT_LENGTH, HeaderValue::from(length)),
                ],
                body,
            )
                .into_response());
        }
        return Ok((
            common,
            [(CONTENT_LENGTH, HeaderValue::from(size))],
            Body::empty(),
        )
            .into_response());
    }

    let read = state
        .blobs
        .get(&file.blob_key)
        .await
        .map_err(missing_file)?;
    state.metrics.downloaded_bytes.inc_by(read.size);
    state.downloads.count(&krate, &parsed);
    Ok((
        common,
        [(CONTENT_LENGTH, HeaderValue::from(read.size))],
        Body::from_stream(read.stream.map_err(std::io::Error::other)),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_resolve() {
        assert_eq!(
            ByteRange::parse("bytes=0-9").unwrap().resolve(100),
            Some(0..10)
        );
        assert_eq!(
            ByteRange::parse("bytes=90-").unwrap().resolve(100),
            Some(90..100)
        );
        assert_eq!(
            ByteRange::parse("bytes=-10").unwrap().resolve(100),
            Some(90..100)
        );
        assert_eq!(
            ByteRange::parse("bytes=50-500").unwrap().resolve(100),
            Some(50..100)
        );
        assert_eq!(
            ByteRange::parse("bytes=-500").unwrap().resolve(100),
            Some(0..100)
        );
        assert_eq!(ByteRange::parse("bytes=100-").unwrap().resolve(100), None);
        assert_eq!(ByteRange::parse("bytes=5-2").unwrap().resolve(100), None);
        assert_eq!(ByteRange::parse("bytes=0-1,5-6"), None);
        assert_eq!(ByteRange::parse("items=0-1"), None);
        assert_eq!(ByteRange::parse("bytes=x-1"), None);
    }
}
