//! The sparse index: `GET /index/config.json` and `GET /index/{path}`.
//!
//! Files are rendered from the metadata store, so they are exact the moment a publish commits,
//! on every replica. Each carries an `ETag` (see `IndexFile::etag`) and `Last-Modified`, and a
//! revalidation that matches either gets `304` without a body.

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use http::header::{
    CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED,
};
use http::{HeaderMap, HeaderValue, StatusCode};
use ktra_core::name::CrateId;
use ktra_store::model::IndexFile;

use crate::error::ApiError;
use crate::extract::ApiPath;
use crate::state::AppState;

/// Index files change on every publish; caches must ask before reusing them.
const INDEX_CACHE_CONTROL: &str = "no-cache";

/// `GET /index/config.json`.
pub async fn config_json(State(state): State<AppState>) -> Response {
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (CACHE_CONTROL, HeaderValue::from_static(INDEX_CACHE_CONTROL)),
        ],
        state.index_config.clone(),
    )
        .into_response()
}

/// Returns whether the request's validators match the file, so `304` is the answer.
///
/// `If-None-Match` wins over `If-Modified-Since` when both are sent (RFC 9110 13.2.2).
pub(crate) fn not_modified(headers: &HeaderMap, etag: &str, last_modified: DateTime<Utc>) -> bool {
    if let Some(candidates) = headers.get(IF_NONE_MATCH) {
        let Ok(candidates) = candidates.to_str() else {
            return false;
        };
        return candidates.split(',').map(str::trim).any(|candidate| {
            candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == etag
        });
    }
    headers
        .get(IF_MODIFIED_SINCE)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| httpdate::parse_http_date(text).ok())
        .is_some_and(|since| {
            let since = DateTime::<Utc>::from(since);
            last_modified.timestamp() <= since.timestamp()
        })
}

pub(crate) fn http_date(time: DateTime<Utc>) -> HeaderValue {
    let text = httpdate::fmt_http_date(time.into());
    // An HTTP date is ASCII by construction.
    HeaderValue::from_str(&text).expect("HTTP dates are valid header values")
}

/// Returns the headers that let cargo revalidate a file.
fn validators(file: &IndexFile) -> Result<[(http::HeaderName, HeaderValue); 3], ApiError> {
    let etag = HeaderValue::from_str(&file.etag())
        .map_err(|_| ApiError::internal(format!("the etag of `{}` is not a header", file.krate)))?;
    Ok([
        (ETAG, etag),
        (LAST_MODIFIED, http_date(file.last_modified)),
        (CACHE_CONTROL, HeaderValue::from_static(INDEX_CACHE_CONTROL)),
    ])
}

/// `GET /index/{path}`: one crate's file.
#[tracing::instrument(skip_all, fields(path = %path))]
pub async fn crate_file(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found(format!("no index file at `{path}`"));
    let name = path.rsplit('/').next().unwrap_or_default();
    // Only the canonical path of a lower-case name is an index file.
    let krate = CrateId::new(name).map_err(|_| not_found())?;
    if name.to_ascii_lowercase() != name || krate.index_path() != path {
        return Err(not_found());
    }
    let conditional =
        headers.contains_key(IF_NONE_MATCH) || headers.contains_key(IF_MODIFIED_SINCE);
    // A revalidation usually matches: check the validators before moving the file.
    let mut file = if conditional {
        state.store.index_validators(&krate).await?
    } else {
        state.store.index_file(&krate).await?
    }
    .ok_or_else(not_found)?;
    if file.krate.name().to_ascii_lowercase() != name {
        return Err(not_found());
    }
    if not_modified(&headers, &file.etag(), file.last_modified) {
        return Ok((StatusCode::NOT_MODIFIED, validators(&file)?).into_response());
    }
    if conditional {
        file = state
            .store
            .index_file(&krate)
            .await?
            .ok_or_else(not_found)?;
    }
    Ok((
        validators(&file)?,
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        Body::from(file.content),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(http::HeaderName, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| (name.clone(), HeaderValue::from_str(value).unwrap()))
            .collect()
    }

    #[test]
    fn revalidation_rules() {
        let modified = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let etag = "\"abc\"";
        assert!(not_modified(
            &headers(&[(IF_NONE_MATCH, "\"abc\"")]),
            etag,
            modified
        ));
        assert!(not_modified(
            &headers(&[(IF_NONE_MATCH, "\"x\", W/\"abc\"")]),
            etag,
            modified
        ));
        assert!(!not_modified(
            &headers(&[(IF_NONE_MATCH, "\"x\"")]),
            etag,
            modified
        ));
        let same = httpdate::fmt_http_date(modified.into());
        let earlier = httpdate::fmt_http_date((modified - chrono::Duration::seconds(1)).into());
        assert!(not_modified(
            &headers(&[(IF_MODIFIED_SINCE, &same)]),
            etag,
            modified
        ));
        assert!(!not_modified(
            &headers(&[(IF_MODIFIED_SINCE, &earlier)]),
            etag,
            modified
        ));
        // A failing If-None-Match is not rescued by If-Modified-Since.
        assert!(!not_modified(
            &headers(&[(IF_NONE_MATCH, "\"x\""), (IF_MODIFIED_SINCE, &same)]),
            etag,
            modified
        ));
        assert!(!not_modified(
            &headers(&[(IF_MODIFIED_SINCE, "garbage")]),
            etag,
            modified
        ));
        assert!(!not_modified(&HeaderMap::new(), etag, modified));
    }
}
