//! `PUT /api/v1/crates/new`: publishing a version.
//!
//! The order keeps a failed publish from leaving anything behind: authenticate before reading
//! the body, enforce the size limit while streaming, validate off the async workers, check the
//! store, write the crate file under a fresh key, then commit everything else in one atomic
//! store step. If that step fails the crate file is deleted again; if the process dies between
//! the two, the file is an orphan no version points at, so nothing serves it.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use chrono::Utc;
use http::HeaderMap;
use http::header::CONTENT_LENGTH;
use ktra_core::metadata::bounded_readme;
use ktra_core::name::CrateId;
use ktra_core::version::VersionId;
use ktra_publish::CheckedPublish;
use ktra_store::model::{EndpointScope, IndexFile, NewVersion, check_publisher};
use ktra_store::{BlobStore, MetadataStore, StoreError};
use serde::Serialize;
use tracing::Instrument;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{discard, expects_continue, read_body};
use crate::limits::{self, ClientIp, Limit};
use crate::state::AppState;

/// What cargo expects after a successful publish.
#[derive(Debug, Serialize)]
pub struct PublishResponse {
    warnings: PublishWarnings,
}

#[derive(Debug, Serialize)]
struct PublishWarnings {
    invalid_categories: Vec<String>,
    invalid_badges: Vec<String>,
    other: Vec<String>,
}

/// Publishes a crate version.
#[tracing::instrument(skip_all, fields(user = %caller.user.name, crate_name, version, bytes))]
pub async fn publish(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<PublishResponse>, ApiError> {
    let result = publish_version(&state, &client, caller, headers, body).await;
    let status = match &result {
        Ok(_) => http::StatusCode::OK,
        Err(error) => error.code().http_status(),
    };
    state
        .metrics
        .publishes
        .get_or_create(&crate::metrics::OutcomeLabels {
            outcome: crate::metrics::outcome(status),
        })
        .inc();
    result
}

async fn publish_version(
    state: &AppState,
    client: &str,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<PublishResponse>, ApiError> {
    let state = state.clone();
    let expects_continue = expects_continue(&headers);
    // One counter per publish, the user's: each counter is a store round trip on the publish
    // path. Requests that fail authentication count against their address instead (see
    // auth::required_for_publish), so guessing tokens stays slow.
    if let Err(error) =
        limits::check(&state, Limit::PublishPerUser, &caller.user.id.to_string()).await
    {
        // Nothing of the body is kept; a bounded part is read so the client sees the error.
        discard(body, expects_continue).await;
        return Err(error);
    }
    let limit = state.config.http.max_publish_bytes;
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        // Refused before a byte of the body is kept.
        discard(body, expects_continue).await;
        return Err(too_large(limit));
    }
    let body = read_body(
        body,
        usize::try_from(limit).unwrap_or(usize::MAX),
        expects_continue,
    )
    .await?;
    let limits = state.config.publish_limits();
    let span = tracing::Span::current();
    span.record("bytes", body.len());
    let checked = ktra_core::task::spawn_blocking(move || {
        tracing::info_span!("publish.check", bytes = body.len())
            .in_scope(|| ktra_publish::check(body, &limits))
    })
    .await
    .map_err(|error| ApiError::internal(format!("publish check task failed: {error}")))?
    .map_err(|error| ApiError::bad_request(error.to_string()))?;
    span.record("crate_name", checked.metadata.name.as_str());
    span.record("version", checked.metadata.vers.as_str());
    let crate_bytes = checked.crate_file.len() as u64;

    // From here on the work runs in its own task: a client that disconnects must not cancel a
    // publish between writing the crate file and committing (or cleaning up after) it.
    let task = tokio::spawn(tracing::Instrument::in_current_span(store_version(
        state.clone(),
        caller,
        client.to_owned(),
        checked,
    )));
    let stored = task
        .await
        .map_err(|error| ApiError::internal(format!("publish task failed: {error}")))??;
    let mut other = Vec::new();
    match stored {
        Stored::Published(file) => {
            tracing::info!(revision = file.revision, "published");
            state.metrics.uploaded_bytes.inc_by(crate_bytes);
        }
        Stored::AlreadyThere {
            file,
            name,
            version,
        } => {
            tracing::info!(
                revision = file.revision,
                "already published with the same checksum; answered as a success"
            );
            other.push(format!(
                "{name}@{version} was already published with this exact crate file \
                 (a retry?); nothing changed"
            ));
        }
    }
    Ok(Json(PublishResponse {
        warnings: PublishWarnings {
            invalid_categories: Vec::new(),
            invalid_badges: Vec::new(),
            other,
        },
    }))
}

/// What a publish did in the store.
#[derive(Debug)]
enum Stored {
    /// The version was committed; its crate's index file now.
    Published(IndexFile),
    /// The same version with the same checksum was there already: a retry of a publish whose
    /// answer was lost. Nothing changed.
    AlreadyThere {
        /// The crate's index file.
        file: IndexFile,
        /// The crate name as published.
        name: String,
        /// The version as published.
        version: String,
    },
}

fn too_large(limit: u64) -> ApiError {
    ApiError::too_large(format!(
        "the crate is too large: the registry accepts publish requests up to {limit} bytes"
    ))
}

/// Checks the token's scope and the store, writes the crate file, commits the version (with
/// its audit event), cleaning up on failure. A version that exists with the same checksum is
/// a retry and succeeds without change; with another checksum it is refused.
async fn store_version(
    state: AppState,
    caller: Caller,
    client: String,
    checked: CheckedPublish,
) -> Result<Stored, ApiError> {
    let user = caller.user.clone();
    let CheckedPublish {
        krate,
        metadata,
        edition,
        version,
        crate_file,
        cksum,
    } = checked;
    // Refuse early what the store would refuse anyway, so that no crate file is written for
    // it. The atomic publish below checks all of this again.
    let existing = state.store.crate_summary(&krate).await?;
    let endpoint = if existing.is_some() {
        EndpointScope::PublishUpdate
    } else {
        EndpointScope::PublishNew
    };
    caller.require_scope(endpoint, &metadata.name)?;
    // A token allowed only one of the two is held to the choice in the atomic step.
    let crate_exists = (!caller.details.scope.is_unrestricted())
        .then_some(endpoint == EndpointScope::PublishUpdate);
    if let Some(existing) = existing {
        check_publisher(&existing.name, &existing.owners, &metadata.name, user.id)?;
        if let Some(duplicate) = existing
            .versions
            .iter()
            .find(|summary| version.is(&summary.version))
        {
            let duplicate = (existing.name.clone(), duplicate.version.clone());
            return already_there(&state, &krate, &version, &cksum, duplicate).await;
        }
    }
    let blob_key = BlobStore::new_crate_key(krate.canonical(), version.key());
    let crate_size = u64::try_from(crate_file.len()).unwrap_or(u64::MAX);
    state
        .blobs
        .put_new(&blob_key, crate_file)
        .instrument(tracing::info_span!("blob.put", key = blob_key.as_str()))
        .await?;
    let published_at = Utc::now();
    let new = NewVersion {
        krate: krate.clone(),
        crate_exists,
        line: metadata.to_index_line(cksum.clone(), published_at),
        version: version.clone(),
        blob_key: blob_key.clone(),
        metadata: metadata.version_metadata(edition, crate_size),
        readme: metadata.readme.clone().map(bounded_readme),
        publisher: user.id,
        published_at,
        audit: crate::audit::event(
            "crate.publish",
            Some(&user.name),
            format!("{}@{}", metadata.name, metadata.vers),
            &client,
            Some(format!("token `{}`", caller.details.name)),
        ),
    };
    match state.store.publish(new).await {
        Ok(file) => {
            #[cfg(feature = "fault-injection")]
            if let Some(fault) = &state.faults.after_publish_commit {
                fault();
            }
            state.index_sync.changed(&file).await;
            Ok(Stored::Published(file))
        }
        Err(error) => {
            remove_unless_committed(
                state.store.as_ref(),
                &state.blobs,
                &krate,
                &version,
                &blob_key,
            )
            .await;
            match error {
                // Another request published it meanwhile: the same file is a retry too.
                StoreError::DuplicateVersion {
                    name,
                    version: existing,
                } => already_there(&state, &krate, &version, &cksum, (name, existing)).await,
                other => Err(other.into()),
            }
        }
    }
}

/// Deletes the crate file of a publish that failed, unless the store committed the version
/// with it after all: a change can commit and still fail (no replica confirmed it, or the
/// answer timed out), and its file is then the version's. When the store cannot say, the file
/// stays: an orphan is harmless, a version without its file is not. (The import commits
/// versions the same way.)
pub(crate) async fn remove_unless_committed(
    store: &dyn MetadataStore,
    blobs: &BlobStore,
    krate: &CrateId,
    version: &VersionId,
    blob_key: &str,
) {
    match store.crate_file(krate, version).await {
        Ok(Some(file)) if file.blob_key == blob_key => {
            tracing::warn!(
                blob_key,
                "the publish failed after its version was committed; its crate file stays"
            );
        }
        Ok(_) => {
            if let Err(cleanup) = blobs.delete(blob_key).await {
                tracing::warn!(%cleanup, blob_key, "cannot delete the crate file of a failed publish");
            }
        }
        Err(error) => {
            tracing::warn!(%error, blob_key, "cannot tell whether a failed publish committed; its crate file stays");
        }
    }
}

/// Answers a publish of a version the store has (by its version key; `existing` is the crate
/// name and version as published): success when it is the same version with the same
/// checksum, after handing the crate to the indexer again as the first try would have; the
/// duplicate error otherwise.
async fn already_there(
    state: &AppState,
    krate: &CrateId,
    version: &VersionId,
    cksum: &str,
    (name, existing): (String, String),
) -> Result<Stored, ApiError> {
    let same_file = existing == version.to_string()
        && state
            .store
            .crate_file(krate, version)
            .await?
            .is_some_and(|file| file.cksum == cksum);
    let file = match same_file {
        true => state.store.index_file(krate).await?,
        false => None,
    };
    let Some(file) = file else {
        return Err(StoreError::DuplicateVersion {
            name,
            version: existing,
        }
        .into());
    };
    state.index_sync.changed(&file).await;
    Ok(Stored::AlreadyThere {
        name,
        version: existing,
        file,
    })
}
