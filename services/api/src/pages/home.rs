//! The home page and search results.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use ktra_store::model::CrateOverview;
use serde::Deserialize;

use super::session::Viewer;
use super::{Chrome, PageError, day, render};
use crate::handlers::search::Search;
use crate::state::AppState;

/// A crate in a list.
#[derive(Debug)]
pub struct Entry {
    /// Its name.
    pub name: String,
    /// Its newest version, if known.
    pub version: Option<String>,
    /// Its description.
    pub description: Option<String>,
    /// When it last changed.
    pub when: String,
    /// How often it was downloaded.
    pub downloads: u64,
}

impl Entry {
    /// The entry of a crate of a listing.
    pub fn new(overview: &CrateOverview) -> Self {
        Self {
            name: overview.name.clone(),
            version: overview.newest_version.clone(),
            description: overview.description.clone(),
            when: day(overview.updated_at),
            downloads: overview.downloads,
        }
    }
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    chrome: Chrome,
    crate_count: usize,
    version_count: u64,
    new_crates: Vec<Entry>,
    just_updated: Vec<Entry>,
    most_downloaded: Vec<Entry>,
    download_count: u64,
    cargo_config: String,
    base: String,
    token_variable: String,
}

/// `GET /`.
pub async fn home(State(state): State<AppState>, viewer: Viewer) -> Result<Response, PageError> {
    let summary = state
        .listings
        .summary(state.store.as_ref())
        .await
        .map_err(|error| PageError::store(&state, &error))?;
    let base = state.config.public_base();
    let name = &state.config.ui.registry_name;
    let cargo_config = format!(
        "[registries.{name}]\nindex = \"sparse+{base}/index/\"\ncredential-provider = \"cargo:token\"\n"
    );
    let page = HomePage {
        chrome: Chrome::new(&state, &viewer, ""),
        crate_count: summary.crate_count,
        version_count: summary.version_count,
        new_crates: summary.new_crates.iter().map(Entry::new).collect(),
        just_updated: summary.just_updated.iter().map(Entry::new).collect(),
        most_downloaded: summary.most_downloaded.iter().map(Entry::new).collect(),
        download_count: summary.download_count,
        cargo_config,
        base,
        token_variable: state.config.ui.token_variable(),
    };
    Ok(render(&page))
}

/// `?q=...&page=N`.
#[derive(Debug, Deserialize)]
pub struct SearchParams {
    #[serde(default)]
    q: String,
    page: Option<u64>,
}

struct Hit {
    name: String,
    max_version: String,
    description: Option<String>,
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    chrome: Chrome,
    total: u64,
    hits: Vec<Hit>,
    prev_page: Option<String>,
    next_page: Option<String>,
}

/// `GET /search?q=...&page=N`: 20 crates a page; an empty query lists every crate.
pub async fn search(
    State(state): State<AppState>,
    viewer: Viewer,
    params: Result<Query<SearchParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageError> {
    let Ok(Query(params)) = params else {
        return Err(PageError::bad_request(
            &state,
            "The search's page must be a number.",
        ));
    };
    let search = Search::new(&params.q, params.page, Some(20))
        .map_err(|error| PageError::bad_request(&state, error.detail()))?;
    let (hits, total) = if search.query.is_empty() {
        let overview = state
            .listings
            .overview(state.store.as_ref())
            .await
            .map_err(|error| PageError::store(&state, &error))?;
        let skip = usize::try_from(search.offset()).unwrap_or(usize::MAX);
        let hits = overview
            .iter()
            .skip(skip)
            .take(20)
            .map(|entry| Hit {
                name: entry.name.clone(),
                max_version: entry.newest_version.clone().unwrap_or_default(),
                description: entry.description.clone(),
            })
            .collect();
        (hits, overview.len() as u64)
    } else {
        let page = state
            .store
            .search(&search.query, search.offset(), search.per_page)
            .await
            .map_err(|error| PageError::store(&state, &error))?;
        let hits = page
            .hits
            .into_iter()
            .map(|hit| Hit {
                name: hit.name,
                max_version: hit.max_version,
                description: hit.description,
            })
            .collect();
        (hits, page.total)
    };
    let page = SearchPage {
        chrome: Chrome::new(&state, &viewer, &search.query),
        total,
        hits,
        prev_page: (search.page > 1).then(|| search.page_link(search.page - 1)),
        next_page: search
            .has_next(total)
            .then(|| search.page_link(search.page + 1)),
    };
    Ok(render(&page).into_response())
}
