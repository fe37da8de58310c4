//! crates.io's read API shapes (`GET /api/v1/crates/{name}` and below, `/api/v1/summary`),
//! built from a [`CrateView`]. Fields clients read are present; crates.io's that this
//! registry cannot know (badges, teams, download graphs) are left out or empty.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use ktra_core::index::{DependencyKind, FeatureMap, IndexDependency};
use ktra_core::version::VersionId;
use ktra_store::model::{CrateOverview, User};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::crate_view::{CrateView, VersionView};

/// A version's number in crates.io's shapes: stable, unique per crate and version, and below
/// 2^53 so JavaScript reads it exactly.
pub fn version_id(canonical: &str, version: &str) -> u64 {
    let digest = Sha256::digest(format!("{canonical}\0{version}").as_bytes());
    let mut bytes = [0_u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(bytes) >> 11
}

/// `{"crate": ..., "versions": [...], "keywords": [...], "categories": [...]}`.
#[derive(Debug, Serialize)]
pub struct CrateResponse {
    #[serde(rename = "crate")]
    krate: CrateJson,
    versions: Vec<VersionJson>,
    keywords: Vec<Keyword>,
    categories: Vec<Category>,
}

/// A crate in crates.io's shape.
#[derive(Debug, Serialize)]
pub struct CrateJson {
    id: String,
    name: String,
    description: Option<String>,
    homepage: Option<String>,
    documentation: Option<String>,
    repository: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    versions: Option<Vec<u64>>,
    keywords: Vec<String>,
    categories: Vec<String>,
    badges: [(); 0],
    downloads: u64,
    recent_downloads: u64,
    default_version: Option<String>,
    num_versions: usize,
    yanked: bool,
    max_version: String,
    newest_version: String,
    max_stable_version: Option<String>,
    exact_match: bool,
    links: CrateLinks,
}

#[derive(Debug, Serialize)]
struct CrateLinks {
    version_downloads: String,
    versions: String,
    owners: String,
    owner_team: String,
    owner_user: String,
    reverse_dependencies: String,
}

impl CrateLinks {
    fn new(name: &str) -> Self {
        let base = format!("/api/v1/crates/{name}");
        Self {
            version_downloads: format!("{base}/downloads"),
            versions: format!("{base}/versions"),
            owners: format!("{base}/owners"),
            owner_team: format!("{base}/owner_team"),
            owner_user: format!("{base}/owner_user"),
            reverse_dependencies: format!("{base}/reverse_dependencies"),
        }
    }
}

#[derive(Debug, Serialize)]
struct Keyword {
    id: String,
    keyword: String,
}

#[derive(Debug, Serialize)]
struct Category {
    id: String,
    category: String,
    slug: String,
}

/// A version in crates.io's shape.
#[derive(Debug, Serialize)]
pub struct VersionJson {
    id: u64,
    #[serde(rename = "crate")]
    krate: String,
    num: String,
    dl_path: String,
    readme_path: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    downloads: u64,
    features: FeatureMap,
    yanked: bool,
    checksum: String,
    license: Option<String>,
    lib_links: Option<String>,
    crate_size: Option<u64>,
    rust_version: Option<String>,
    edition: Option<String>,
    description: Option<String>,
    homepage: Option<String>,
    documentation: Option<String>,
    repository: Option<String>,
    published_by: Option<UserJson>,
    audit_actions: [(); 0],
    links: VersionLinks,
}

#[derive(Debug, Serialize)]
struct VersionLinks {
    dependencies: String,
    version_downloads: String,
}

/// A user in crates.io's shape.
#[derive(Debug, Serialize)]
pub struct UserJson {
    id: u32,
    login: String,
    name: Option<String>,
    url: String,
}

impl UserJson {
    /// The shape of a registered user.
    pub fn new(user: &User) -> Self {
        Self {
            id: user.id,
            login: user.name.clone(),
            name: None,
            url: format!("/users/{}", user.name),
        }
    }
}

/// A dependency in crates.io's shape.
#[derive(Debug, Serialize)]
pub struct DependencyJson {
    id: u64,
    version_id: u64,
    crate_id: String,
    req: String,
    optional: bool,
    default_features: bool,
    features: Vec<String>,
    target: Option<String>,
    kind: DependencyKind,
    downloads: u64,
}

impl DependencyJson {
    /// The dependency at `position` in the index line of `version` of `canonical`.
    fn new(canonical: &str, version: &str, position: usize, dependency: &IndexDependency) -> Self {
        Self {
            id: version_id(canonical, &format!("{version}#{position}")),
            version_id: version_id(canonical, version),
            crate_id: dependency
                .package
                .clone()
                .unwrap_or_else(|| dependency.name.clone()),
            req: dependency.req.clone(),
            optional: dependency.optional,
            default_features: dependency.default_features,
            features: dependency.features.clone(),
            target: dependency.target.clone(),
            kind: dependency.kind,
            downloads: 0,
        }
    }
}

/// The time a version was published: as kept, else its index line's `pubtime`, else the epoch
/// (versions stored before either existed).
fn published_at(version: &VersionView) -> DateTime<Utc> {
    version
        .details
        .published_at
        .or_else(|| {
            version
                .line
                .as_ref()
                .and_then(|line| line.pubtime.as_deref())
                .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
                .map(|time| time.with_timezone(&Utc))
        })
        .unwrap_or_default()
}

impl VersionJson {
    /// A version of `view`.
    pub fn new(view: &CrateView, version: &VersionView) -> Self {
        let metadata = version.details.metadata.clone().unwrap_or_default();
        let id = version_id(view.krate.canonical(), version.number());
        let base = format!("/api/v1/crates/{}/{}", view.name, version.number());
        let created_at = published_at(version);
        Self {
            id,
            krate: view.name.clone(),
            num: version.number().to_owned(),
            dl_path: format!("{base}/download"),
            readme_path: format!("{base}/readme"),
            created_at,
            updated_at: created_at,
            downloads: version.downloads,
            features: version.features(),
            yanked: version.yanked(),
            checksum: version.details.cksum.clone(),
            license: metadata.license,
            lib_links: metadata.links,
            crate_size: metadata.crate_size,
            rust_version: metadata.rust_version,
            edition: metadata.edition,
            description: metadata.description,
            homepage: metadata.homepage,
            documentation: metadata.documentation,
            repository: metadata.repository,
            published_by: version.details.publisher.as_ref().map(UserJson::new),
            audit_actions: [],
            links: VersionLinks {
                dependencies: format!("{base}/dependencies"),
                version_downloads: format!("{base}/downloads"),
            },
        }
    }
}

impl CrateJson {
    /// The crate of `view`; `with_versions` lists its version ids (as `GET /crates/{name}`).
    pub fn new(view: &CrateView, with_versions: bool) -> Self {
        let shown = view.default_version();
        let metadata = shown
            .and_then(|version| version.details.metadata.clone())
            .unwrap_or_default();
        let number = |version: Option<&VersionView>| {
            version.map_or_else(|| "0.0.0".to_owned(), |v| v.number().to_owned())
        };
        let times: Vec<DateTime<Utc>> = view.versions.iter().map(published_at).collect();
        let versions = view.versions_highest_first();
        Self {
            id: view.name.clone(),
            name: view.name.clone(),
            description: metadata.description,
            homepage: metadata.homepage,
            documentation: metadata.documentation,
            repository: metadata.repository,
            created_at: times.iter().min().copied().unwrap_or_default(),
            updated_at: times.iter().max().copied().unwrap_or_default(),
            versions: with_versions.then(|| {
                versions
                    .iter()
                    .map(|v| version_id(view.krate.canonical(), v.number()))
                    .collect()
            }),
            keywords: metadata.keywords,
            categories: metadata.categories,
            badges: [],
            downloads: view.downloads.total(),
            recent_downloads: recent_downloads(view),
            default_version: shown.map(|v| v.number().to_owned()),
            num_versions: view.versions.len(),
            yanked: view.versions.iter().all(VersionView::yanked),
            max_version: number(view.max_version()),
            newest_version: number(view.newest()),
            max_stable_version: view.max_stable_version().map(|v| v.number().to_owned()),
            exact_match: false,
            links: CrateLinks::new(&view.name),
        }
    }

    /// A crate of a listing, from what the listing knows.
    pub fn from_overview(overview: &CrateOverview) -> Self {
        let newest = overview
            .newest_version
            .clone()
            .unwrap_or_else(|| "0.0.0".to_owned());
        Self {
            id: overview.name.clone(),
            name: overview.name.clone(),
            description: overview.description.clone(),
            homepage: None,
            documentation: None,
            repository: None,
            created_at: overview.created_at.unwrap_or(overview.updated_at),
            updated_at: overview.updated_at,
            versions: None,
            keywords: Vec::new(),
            categories: Vec::new(),
            badges: [],
            downloads: overview.downloads,
            recent_downloads: 0,
            default_version: overview.newest_version.clone(),
            num_versions: overview.version_count as usize,
            yanked: false,
            max_version: newest.clone(),
            newest_version: newest,
            max_stable_version: None,
            exact_match: false,
            links: CrateLinks::new(&overview.name),
        }
    }
}

impl CrateResponse {
    /// `GET /api/v1/crates/{name}`.
    pub fn new(view: &CrateView) -> Self {
        let krate = CrateJson::new(view, true);
        let keywords = krate
            .keywords
            .iter()
            .map(|keyword| Keyword {
                id: keyword.clone(),
                keyword: keyword.clone(),
            })
            .collect();
        let categories = krate
            .categories
            .iter()
            .map(|slug| Category {
                id: slug.clone(),
                category: slug.clone(),
                slug: slug.clone(),
            })
            .collect();
        Self {
            versions: view
                .versions_highest_first()
                .into_iter()
                .map(|version| VersionJson::new(view, version))
                .collect(),
            krate,
            keywords,
            categories,
        }
    }
}

/// A version's dependencies, in crates.io's shape and order (by kind, then name).
pub fn dependencies(view: &CrateView, version: &VersionView) -> Vec<DependencyJson> {
    let canonical = view.krate.canonical();
    let mut dependencies: Vec<DependencyJson> = version
        .line
        .iter()
        .flat_map(|line| line.deps.iter())
        .enumerate()
        .map(|(position, dependency)| {
            DependencyJson::new(canonical, version.number(), position, dependency)
        })
        .collect();
    dependencies.sort_by(|a, b| (a.kind, &a.crate_id).cmp(&(b.kind, &b.crate_id)));
    dependencies
}

/// The dependencies of other crates' versions on one crate, with those versions.
#[derive(Debug, Serialize)]
pub struct ReverseDependencies {
    dependencies: Vec<DependencyJson>,
    versions: Vec<VersionJson>,
    meta: Total,
}

/// `{"total": N}`.
#[derive(Debug, Serialize)]
pub struct Total {
    total: usize,
}

impl ReverseDependencies {
    /// A page of `dependents` (each a crate and its version that depends on `target`), of
    /// `total` in all.
    pub fn new(target: &str, dependents: &[(CrateView, usize)], total: usize) -> Self {
        let mut dependencies = Vec::new();
        let mut versions = Vec::new();
        for (view, index) in dependents {
            let version = &view.versions[*index];
            if let Some(line) = &version.line {
                dependencies.extend(
                    line.deps
                        .iter()
                        .enumerate()
                        .filter(|(_, dep)| depends_on(dep, target))
                        .map(|(position, dep)| {
                            DependencyJson::new(
                                view.krate.canonical(),
                                version.number(),
                                position,
                                dep,
                            )
                        }),
                );
            }
            versions.push(VersionJson::new(view, version));
        }
        Self {
            dependencies,
            versions,
            meta: Total { total },
        }
    }
}

/// `GET /api/v1/summary`.
#[derive(Debug, Serialize)]
pub struct SummaryJson {
    num_crates: usize,
    num_downloads: u64,
    new_crates: Vec<CrateJson>,
    most_downloaded: Vec<CrateJson>,
    most_recently_downloaded: Vec<CrateJson>,
    just_updated: Vec<CrateJson>,
    popular_keywords: Vec<Keyword>,
    popular_categories: Vec<Category>,
}

impl SummaryJson {
    /// The summary's shape.
    pub fn new(summary: &super::listing::Summary) -> Self {
        let crates = |list: &[CrateOverview]| list.iter().map(CrateJson::from_overview).collect();
        Self {
            num_crates: summary.crate_count,
            num_downloads: summary.download_count,
            new_crates: crates(&summary.new_crates),
            most_downloaded: crates(&summary.most_downloaded),
            most_recently_downloaded: Vec::new(),
            just_updated: crates(&summary.just_updated),
            popular_keywords: Vec::new(),
            popular_categories: Vec::new(),
        }
    }
}

/// Downloads in the last 90 days, as crates.io's `recent_downloads`.
fn recent_downloads(view: &CrateView) -> u64 {
    let since = Utc::now().date_naive() - chrono::TimeDelta::days(90);
    view.downloads
        .by_day
        .iter()
        .filter(|((day, _), _)| *day >= since)
        .map(|(_, count)| count)
        .sum()
}

/// One day's downloads of one version.
#[derive(Debug, Serialize)]
pub struct VersionDownloads {
    version: u64,
    downloads: u64,
    date: String,
}

/// `GET /api/v1/crates/{name}/downloads` (every version) and
/// `/{version}/downloads` (`only` that one): downloads per version and day, oldest first.
pub fn version_downloads(view: &CrateView, only: Option<&VersionView>) -> Vec<VersionDownloads> {
    let canonical = view.krate.canonical();
    let wanted = only.and_then(|version| version.id.as_ref().map(VersionId::key));
    // The version as published, by its key.
    let numbers: HashMap<&str, &str> = view
        .versions
        .iter()
        .filter_map(|version| Some((version.id.as_ref()?.key(), version.number())))
        .collect();
    view.downloads
        .by_day
        .iter()
        .filter(|((_, key), _)| wanted.is_none_or(|wanted| wanted == key))
        .map(|((day, key), count)| {
            let number = numbers.get(key.as_str()).copied().unwrap_or(key.as_str());
            VersionDownloads {
                version: version_id(canonical, number),
                downloads: *count,
                date: day.format("%Y-%m-%d").to_string(),
            }
        })
        .collect()
}

/// Whether `dependency` names `target` (a canonical name) in this registry.
pub fn depends_on(dependency: &IndexDependency, target: &str) -> bool {
    dependency.registry.is_none()
        && ktra_core::name::canonical_crate_name(
            dependency.package.as_deref().unwrap_or(&dependency.name),
        ) == target
}
