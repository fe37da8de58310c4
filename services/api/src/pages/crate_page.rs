//! A crate's page: its README, how to add it, what it says about itself, its dependencies,
//! features, owners and versions, at its default version or a chosen one.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use ktra_core::index::{DependencyKind, IndexDependency};
use ktra_core::version::VersionId;

use super::session::Viewer;
use super::{Chrome, PageError, day, render, safe_link};
use crate::catalog::{CrateView, VersionView};
use crate::state::AppState;

/// The crates.io index, as a dependency on a crates.io crate names it.
const CRATES_IO_INDEX: &str = "https://github.com/rust-lang/crates.io-index";

/// A version as the page shows it.
#[derive(Debug)]
pub struct ShownVersion {
    /// The version.
    pub number: String,
    /// Whether it is yanked.
    pub yanked: bool,
    /// The day it was published, if known.
    pub published: Option<String>,
    /// Who published it, if known.
    pub publisher: Option<String>,
    /// Its description.
    pub description: Option<String>,
    /// Its license.
    pub license: Option<String>,
    /// Its minimum Rust version.
    pub rust_version: Option<String>,
    /// Its edition.
    pub edition: Option<String>,
    /// Its crate file's size, for people (`12.3 KiB`).
    pub size: Option<String>,
    /// How often it was downloaded.
    pub downloads: u64,
}

impl ShownVersion {
    fn new(version: &VersionView) -> Self {
        let metadata = version.details.metadata.clone().unwrap_or_default();
        Self {
            number: version.number().to_owned(),
            yanked: version.yanked(),
            published: version.details.published_at.map(day),
            publisher: version
                .details
                .publisher
                .as_ref()
                .map(|user| user.name.clone()),
            description: metadata.description,
            license: metadata.license,
            rust_version: metadata.rust_version,
            edition: metadata.edition,
            size: metadata.crate_size.map(human_size),
            downloads: version.downloads,
        }
    }
}

/// A dependency as the page shows it.
#[derive(Debug)]
pub struct ShownDependency {
    /// The crate depended on (its real name).
    pub name: String,
    /// The requirement.
    pub req: String,
    /// Whether it is optional.
    pub optional: bool,
    /// `normal`, `build` or `dev`.
    pub kind: &'static str,
    /// Its page: here for this registry's crates, crates.io for crates.io's, none otherwise.
    pub href: Option<String>,
}

impl ShownDependency {
    fn new(dependency: &IndexDependency) -> Self {
        let name = dependency
            .package
            .clone()
            .unwrap_or_else(|| dependency.name.clone());
        let href = match dependency.registry.as_deref() {
            None => Some(format!("/crates/{name}")),
            Some(CRATES_IO_INDEX) => Some(format!("https://crates.io/crates/{name}")),
            Some(_) => None,
        };
        Self {
            req: dependency.req.clone(),
            optional: dependency.optional,
            kind: match dependency.kind {
                DependencyKind::Normal => "normal",
                DependencyKind::Build => "build",
                DependencyKind::Dev => "dev",
            },
            href,
            name,
        }
    }
}

#[derive(Template)]
#[template(path = "crate.html")]
struct CratePage {
    chrome: Chrome,
    name: String,
    version: ShownVersion,
    keywords: Vec<String>,
    readme: Option<String>,
    links: Vec<(&'static str, String)>,
    owners: Vec<String>,
    dependencies: Vec<ShownDependency>,
    features: Vec<(String, String)>,
    versions: Vec<ShownVersion>,
    downloads: u64,
}

/// `GET /crates/{name}`: the crate at its default version.
pub async fn default_version(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    crate_page(&state, &viewer, &name, None).await
}

/// `GET /crates/{name}/{version}`.
pub async fn chosen_version(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((name, version)): Path<(String, String)>,
) -> Result<Response, PageError> {
    crate_page(&state, &viewer, &name, Some(&version)).await
}

async fn crate_page(
    state: &AppState,
    viewer: &Viewer,
    name: &str,
    version: Option<&str>,
) -> Result<Response, PageError> {
    let missing = || PageError::not_found(state, format!("There is no crate named {name}."));
    let krate = ktra_core::name::CrateId::new(name).map_err(|_| missing())?;
    let view = CrateView::load(state.store.as_ref(), &krate)
        .await
        .map_err(|error| PageError::store(state, &error))?
        .ok_or_else(missing)?;
    let shown = match version {
        None => view.default_version(),
        Some(text) => VersionId::parse(text)
            .ok()
            .and_then(|wanted| view.version(&wanted)),
    }
    .ok_or_else(|| {
        PageError::not_found(
            state,
            format!("{} has no version {}.", view.name, version.unwrap_or("")),
        )
    })?;
    let readme = crate::catalog::readme::rendered(state.store.as_ref(), &view, shown)
        .await
        .map_err(|error| PageError::store(state, &error))?;
    let page = page(state, viewer, &view, shown, readme);
    Ok(render(&page))
}

fn page(
    state: &AppState,
    viewer: &Viewer,
    view: &CrateView,
    shown: &VersionView,
    readme: Option<String>,
) -> CratePage {
    let metadata = shown.details.metadata.clone().unwrap_or_default();
    let links = [
        ("Homepage", metadata.homepage.as_deref()),
        ("Repository", metadata.repository.as_deref()),
        ("Documentation", metadata.documentation.as_deref()),
    ]
    .into_iter()
    .filter_map(|(label, url)| safe_link(url).map(|url| (label, url)))
    .collect();
    let mut dependencies: Vec<ShownDependency> = shown
        .line
        .iter()
        .flat_map(|line| line.deps.iter())
        .map(ShownDependency::new)
        .collect();
    dependencies.sort_by(|a, b| {
        (a.kind != "normal", a.kind, &a.name).cmp(&(b.kind != "normal", b.kind, &b.name))
    });
    CratePage {
        chrome: Chrome::new(state, viewer, ""),
        name: view.name.clone(),
        version: ShownVersion::new(shown),
        keywords: metadata.keywords,
        readme,
        links,
        owners: view.owners.iter().map(|user| user.name.clone()).collect(),
        dependencies,
        features: shown
            .features()
            .into_iter()
            .map(|(name, enables)| (name, enables.join(", ")))
            .collect(),
        versions: view
            .versions_highest_first()
            .into_iter()
            .map(ShownVersion::new)
            .collect(),
        downloads: view.downloads.total(),
    }
}

/// A size for people: bytes, KiB or MiB with one decimal.
fn human_size(bytes: u64) -> String {
    #[expect(clippy::cast_precision_loss, reason = "one decimal is shown")]
    let value = bytes as f64;
    if bytes < 1024 {
        format!("{bytes} B")
    } else if bytes < 1024 * 1024 {
        format!("{:.1} KiB", value / 1024.0)
    } else {
        format!("{:.1} MiB", value / (1024.0 * 1024.0))
    }
}

#[cfg(test)]
mod tests {
    use super::human_size;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(12_600), "12.3 KiB");
        assert_eq!(human_size(3 * 1024 * 1024), "3.0 MiB");
    }
}
