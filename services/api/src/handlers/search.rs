//! `GET /api/v1/crates?q=...`: search, as `cargo search` and crates.io's clients call it.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::state::AppState;

/// The largest page size, as on crates.io.
pub const MAX_PER_PAGE: u64 = 100;

/// The page size when none is asked for.
pub const DEFAULT_PER_PAGE: u64 = 10;

/// The longest query accepted.
const MAX_QUERY_LEN: usize = 256;

/// Search parameters, as cargo sends them.
#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
    per_page: Option<u64>,
    page: Option<u64>,
}

/// One search result.
#[derive(Debug, Serialize)]
pub struct SearchCrate {
    id: String,
    name: String,
    max_version: String,
    description: Option<String>,
}

/// Search results with the total count.
#[derive(Debug, Serialize)]
pub struct SearchResults {
    crates: Vec<SearchCrate>,
    meta: SearchMeta,
}

/// `{"total": N, "next_page": "?q=...&page=2", "prev_page": null}`: crates.io's paging.
#[derive(Debug, Serialize)]
pub struct SearchMeta {
    total: u64,
    next_page: Option<String>,
    prev_page: Option<String>,
}

/// A checked search: the query, the page (from 1) and its size.
#[derive(Debug, Clone)]
pub struct Search {
    /// The query, trimmed.
    pub query: String,
    /// The page, from 1.
    pub page: u64,
    /// Results per page.
    pub per_page: u64,
}

impl Search {
    /// Checks the parameters: a page size within [`MAX_PER_PAGE`], a query within 256 bytes.
    ///
    /// # Errors
    ///
    /// A 400 saying which limit was broken.
    pub fn new(query: &str, page: Option<u64>, per_page: Option<u64>) -> Result<Self, ApiError> {
        let per_page = per_page.unwrap_or(DEFAULT_PER_PAGE);
        if per_page == 0 || per_page > MAX_PER_PAGE {
            return Err(ApiError::bad_request(format!(
                "per_page must be between 1 and {MAX_PER_PAGE}"
            )));
        }
        if query.len() > MAX_QUERY_LEN {
            return Err(ApiError::bad_request(format!(
                "the search query is longer than {MAX_QUERY_LEN} bytes"
            )));
        }
        Ok(Self {
            query: query.trim().to_owned(),
            page: page.unwrap_or(1).max(1),
            per_page,
        })
    }

    /// How many results come before this page.
    pub fn offset(&self) -> u64 {
        (self.page - 1).saturating_mul(self.per_page)
    }

    /// The query string of page `page` of the same search (`?q=...&page=N&per_page=M`).
    pub fn page_link(&self, page: u64) -> String {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("q", &self.query)
            .append_pair("page", &page.to_string())
            .append_pair("per_page", &self.per_page.to_string())
            .finish();
        format!("?{query}")
    }

    /// Whether a page follows this one among `total` results.
    pub fn has_next(&self, total: u64) -> bool {
        self.offset().saturating_add(self.per_page) < total
    }
}

/// `GET /api/v1/crates?q=...&per_page=N&page=P`.
#[tracing::instrument(skip_all, fields(query = %query.q))]
pub async fn search(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> Result<Json<SearchResults>, ApiError> {
    let search = Search::new(&query.q, query.page, query.per_page)?;
    let results = state
        .store
        .search(&search.query, search.offset(), search.per_page)
        .await?;
    Ok(Json(SearchResults {
        crates: results
            .hits
            .into_iter()
            .map(|hit| SearchCrate {
                id: hit.name.clone(),
                name: hit.name,
                max_version: hit.max_version,
                description: hit.description,
            })
            .collect(),
        meta: SearchMeta {
            next_page: search
                .has_next(results.total)
                .then(|| search.page_link(search.page + 1)),
            prev_page: (search.page > 1).then(|| search.page_link(search.page - 1)),
            total: results.total,
        },
    }))
}
