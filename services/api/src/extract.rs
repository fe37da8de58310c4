//! Extractors whose rejections answer in cargo's error format.

use axum::extract::{FromRequestParts, Path, Query};
use bytes::Bytes;
use http::request::Parts;
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Defines an extractor that wraps one of axum's and answers its rejections as a 400 in
/// cargo's format, saying what was invalid (`$what`) and why, without axum's wording.
macro_rules! cargo_format_extractor {
    ($(#[$doc:meta])* $name:ident wraps $inner:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name<T>(pub T);

        impl<S, T> FromRequestParts<S> for $name<T>
        where
            T: DeserializeOwned + Send,
            S: Send + Sync,
        {
            type Rejection = ApiError;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &S,
            ) -> Result<Self, Self::Rejection> {
                $inner::<T>::from_request_parts(parts, state)
                    .await
                    .map(|$inner(value)| Self(value))
                    .map_err(|rejection| ApiError::bad_request(format!("invalid {}: {}", $what, innermost(&rejection))))
            }
        }
    };
}

cargo_format_extractor!(
    /// Path parameters; a malformed path is a 400 in cargo's format.
    ApiPath wraps Path, "path"
);
cargo_format_extractor!(
    /// Query parameters; a malformed query is a 400 in cargo's format.
    ApiQuery wraps Query, "query string"
);

/// The innermost cause of an error: the parser's own words, without the framework's.
fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

/// How much of a refused body is read and thrown away before answering, so that a client
/// still sending it sees the answer instead of a reset connection.
const DISCARD_LIMIT: usize = 1024 * 1024;

/// How long discarding a refused body may take.
const DISCARD_TIME: std::time::Duration = std::time::Duration::from_secs(2);

/// Reads and throws away up to 1 MiB more of a body, for at most 2 seconds. A client that waits for `100 Continue` sent nothing, so nothing is read.
pub async fn discard(mut body: axum::body::Body, expects_continue: bool) {
    if expects_continue {
        return;
    }
    let drain = async {
        let mut discarded = 0;
        while discarded < DISCARD_LIMIT {
            match body.frame().await {
                Some(Ok(frame)) => {
                    discarded += frame.data_ref().map_or(0, Bytes::len);
                }
                _ => return,
            }
        }
    };
    let _ = tokio::time::timeout(DISCARD_TIME, drain).await;
}

/// Returns whether the client waits for `100 Continue` before sending its body.
pub fn expects_continue(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::EXPECT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.eq_ignore_ascii_case("100-continue"))
}

/// Reads a whole body, refusing it with 413 as soon as it passes `limit` bytes (the rest is
/// discarded within bounds, see [`discard`], so the client reads the refusal).
///
/// # Errors
///
/// 413 past the limit, 400 when the client stops sending mid-body.
pub async fn read_body(
    mut body: axum::body::Body,
    limit: usize,
    expects_continue: bool,
) -> Result<Bytes, ApiError> {
    let mut collected = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| {
            ApiError::bad_request(format!("the request body could not be read: {error}"))
        })?;
        let Some(data) = frame.data_ref() else {
            continue;
        };
        if collected.len() + data.len() > limit {
            discard(body, expects_continue).await;
            return Err(ApiError::too_large(format!(
                "the request body is larger than the limit of {limit} bytes"
            )));
        }
        collected.extend_from_slice(data);
    }
    Ok(collected.freeze())
}

/// Reads a small JSON body (the user and owner APIs), at most `limit` bytes.
///
/// # Errors
///
/// 413 past the limit, 400 when the JSON does not match `T`.
pub async fn json_body<T: DeserializeOwned>(
    body: axum::body::Body,
    limit: usize,
) -> Result<T, ApiError> {
    let bytes = read_body(body, limit, false).await?;
    serde_json::from_slice(&bytes)
        .map_err(|error| ApiError::bad_request(format!("invalid JSON body: {error}")))
}
