//! A user's page: the crates they own.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;

use super::home::Entry;
use super::session::Viewer;
use super::{Chrome, PageError, render};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "user.html")]
struct UserPage {
    chrome: Chrome,
    user: String,
    crates: Vec<Entry>,
}

/// `GET /users/{name}`.
pub async fn user(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    let store_error = |error| PageError::store(&state, &error);
    let user = state
        .store
        .user_credentials(&name)
        .await
        .map_err(store_error)?
        .ok_or_else(|| PageError::not_found(&state, format!("There is no user named {name}.")))?
        .user;
    let overview = state
        .listings
        .overview(state.store.as_ref())
        .await
        .map_err(store_error)?;
    let crates = overview
        .iter()
        .filter(|entry| entry.owners.contains(&user.id))
        .map(Entry::new)
        .collect();
    let page = UserPage {
        chrome: Chrome::new(&state, &viewer, ""),
        user: user.name,
        crates,
    };
    Ok(render(&page))
}
