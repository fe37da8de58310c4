//! crates.io's read API: a crate, its versions, a version's dependencies and README, the
//! crates that depend on it, and the registry's summary, in crates.io's JSON shapes.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::header::CONTENT_TYPE;
use serde::{Deserialize, Serialize};

use crate::catalog::CrateView;
use crate::catalog::crates_io::{
    self, CrateResponse, DependencyJson, ReverseDependencies, SummaryJson, VersionJson,
};
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery};
use crate::handlers::crates::{crate_from_path, parse_version};
use crate::handlers::search::{DEFAULT_PER_PAGE, MAX_PER_PAGE};
use crate::state::AppState;

/// Reads a crate, or answers 404.
pub(crate) async fn load(state: &AppState, name: &str) -> Result<CrateView, ApiError> {
    let krate = crate_from_path(name)?;
    CrateView::load(state.store.as_ref(), &krate)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("crate `{name}` does not exist")))
}

/// `GET /api/v1/crates/{name}`.
pub async fn krate(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<CrateResponse>, ApiError> {
    Ok(Json(CrateResponse::new(&load(&state, &name).await?)))
}

/// Reads a crate and finds its version `version`, or answers 404.
async fn load_version(
    state: &AppState,
    name: &str,
    version: &str,
) -> Result<(CrateView, usize), ApiError> {
    let view = load(state, name).await?;
    let wanted = parse_version(name, version)?;
    let found = view
        .version_index(&wanted)
        .ok_or_else(|| ApiError::not_found(format!("crate `{name}` has no version `{version}`")))?;
    Ok((view, found))
}

/// `{"version": ...}`.
#[derive(Debug, Serialize)]
pub struct OneVersion {
    version: VersionJson,
}

/// `GET /api/v1/crates/{name}/{version}`.
pub async fn version(
    State(state): State<AppState>,
    ApiPath((name, version)): ApiPath<(String, String)>,
) -> Result<Json<OneVersion>, ApiError> {
    let (view, found) = load_version(&state, &name, &version).await?;
    Ok(Json(OneVersion {
        version: VersionJson::new(&view, &view.versions[found]),
    }))
}

/// `{"versions": [...], "meta": {"total": N, "next_page": null}}`.
#[derive(Debug, Serialize)]
pub struct Versions {
    versions: Vec<VersionJson>,
    meta: VersionsMeta,
}

/// Every version is on the one page.
#[derive(Debug, Serialize)]
pub struct VersionsMeta {
    total: usize,
    next_page: Option<String>,
}

/// `GET /api/v1/crates/{name}/versions`: every version, highest first.
pub async fn versions(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Versions>, ApiError> {
    let view = load(&state, &name).await?;
    let versions: Vec<VersionJson> = view
        .versions_highest_first()
        .into_iter()
        .map(|version| VersionJson::new(&view, version))
        .collect();
    Ok(Json(Versions {
        meta: VersionsMeta {
            total: versions.len(),
            next_page: None,
        },
        versions,
    }))
}

/// `{"dependencies": [...]}`.
#[derive(Debug, Serialize)]
pub struct Dependencies {
    dependencies: Vec<DependencyJson>,
}

/// `GET /api/v1/crates/{name}/{version}/dependencies`.
pub async fn dependencies(
    State(state): State<AppState>,
    ApiPath((name, version)): ApiPath<(String, String)>,
) -> Result<Json<Dependencies>, ApiError> {
    let (view, found) = load_version(&state, &name, &version).await?;
    Ok(Json(Dependencies {
        dependencies: crates_io::dependencies(&view, &view.versions[found]),
    }))
}

/// `GET /api/v1/crates/{name}/{version}/readme`: the README rendered as sanitised HTML.
pub async fn readme(
    State(state): State<AppState>,
    ApiPath((name, version)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let (view, found) = load_version(&state, &name, &version).await?;
    let html = crate::catalog::readme::rendered(state.store.as_ref(), &view, &view.versions[found])
        .await?
        .ok_or_else(|| ApiError::not_found(format!("`{name}` {version} has no README")))?;
    Ok(([(CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response())
}

/// Paging of the reverse dependencies.
#[derive(Debug, Deserialize)]
pub struct Paging {
    page: Option<u64>,
    per_page: Option<u64>,
}

/// `GET /api/v1/crates/{name}/reverse_dependencies`: for each crate whose newest version
/// depends on this one, that version and its dependency. Reads every crate's index file.
pub async fn reverse_dependencies(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(paging): ApiQuery<Paging>,
) -> Result<Json<ReverseDependencies>, ApiError> {
    let target = load(&state, &name).await?;
    let per_page = paging.per_page.unwrap_or(DEFAULT_PER_PAGE);
    if per_page == 0 || per_page > MAX_PER_PAGE {
        return Err(ApiError::bad_request(format!(
            "per_page must be between 1 and {MAX_PER_PAGE}"
        )));
    }
    let page = paging.page.unwrap_or(1).max(1);
    let canonical = target.krate.canonical();
    let overview = state.listings.overview(state.store.as_ref()).await?;
    let mut dependents = Vec::new();
    for entry in overview.iter() {
        let Ok(krate) = ktra_core::name::CrateId::new(&entry.name) else {
            continue;
        };
        if krate.canonical() == canonical {
            continue;
        }
        let Some(file) = state.store.index_file(&krate).await? else {
            continue;
        };
        if !crate::catalog::crate_view::mentions(&file.content, &target.name) {
            continue;
        }
        let Some(view) = CrateView::load(state.store.as_ref(), &krate).await? else {
            continue;
        };
        let newest = view.versions.iter().rposition(|version| {
            !version.yanked()
                && version.line.as_ref().is_some_and(|line| {
                    line.deps
                        .iter()
                        .any(|dep| crates_io::depends_on(dep, canonical))
                })
        });
        if let Some(index) = newest {
            dependents.push((view, index));
        }
    }
    let total = dependents.len();
    let skip = usize::try_from((page - 1).saturating_mul(per_page)).unwrap_or(usize::MAX);
    let take = usize::try_from(per_page).unwrap_or(usize::MAX);
    let shown: Vec<_> = dependents.into_iter().skip(skip).take(take).collect();
    Ok(Json(ReverseDependencies::new(canonical, &shown, total)))
}

/// `{"version_downloads": [...], "meta": {"extra_downloads": []}}`.
#[derive(Debug, Serialize)]
pub struct Downloads {
    version_downloads: Vec<crates_io::VersionDownloads>,
    meta: DownloadsMeta,
}

/// crates.io's place for downloads of versions it no longer lists: none here.
#[derive(Debug, Serialize)]
pub struct DownloadsMeta {
    extra_downloads: [(); 0],
}

/// `GET /api/v1/crates/{name}/downloads`: every version's downloads per day.
pub async fn downloads(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Downloads>, ApiError> {
    let view = load(&state, &name).await?;
    Ok(Json(Downloads {
        version_downloads: crates_io::version_downloads(&view, None),
        meta: DownloadsMeta {
            extra_downloads: [],
        },
    }))
}

/// `{"version_downloads": [...]}`.
#[derive(Debug, Serialize)]
pub struct OneVersionDownloads {
    version_downloads: Vec<crates_io::VersionDownloads>,
}

/// `GET /api/v1/crates/{name}/{version}/downloads`: one version's downloads per day.
pub async fn version_downloads(
    State(state): State<AppState>,
    ApiPath((name, version)): ApiPath<(String, String)>,
) -> Result<Json<OneVersionDownloads>, ApiError> {
    let (view, found) = load_version(&state, &name, &version).await?;
    Ok(Json(OneVersionDownloads {
        version_downloads: crates_io::version_downloads(&view, Some(&view.versions[found])),
    }))
}

/// `GET /api/v1/summary`.
pub async fn summary(State(state): State<AppState>) -> Result<Json<SummaryJson>, ApiError> {
    let summary = state.listings.summary(state.store.as_ref()).await?;
    Ok(Json(SummaryJson::new(&summary)))
}
