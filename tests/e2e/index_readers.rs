//! Index readers other than cargo parse our index: `tame-index` (cargo-deny's reader) and
//! `crates-index`, over the sparse index and over the git index the indexer pushes.

use ktra_core::index::index_path;
use ktra_testing::cargo::{CargoHome, library_manifest, library_package, package};
use ktra_testing::git::branch_files;
use ktra_testing::registry::Registry;

/// What a reader must find in the dependent's index file, whichever reader it is: per
/// dependency (name as written, real crate name, kind).
const EXPECTED_DEPS: [(&str, &str, &str); 3] = [
    ("Reader_Base", "Reader_Base", "dev"),
    ("Reader_Base", "Reader_Base", "normal"),
    ("base", "Reader_Base", "normal"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn independent_readers_parse_the_sparse_and_git_index() {
    let (registry, token) = Registry::builder().start_with_user("alice").await;
    let sparse = format!("sparse+{}", registry.url("/index/"));
    let publisher = CargoHome::logged_in("ktra", &sparse, &token).await;
    let work = tempfile::tempdir().unwrap();
    let root = work.path();

    let base = library_package(
        root,
        "Reader_Base",
        "0.1.0",
        "pub fn value() -> u32 { 1 }\n",
    );
    publisher.publish(&base, "ktra").await;
    // A renamed dependency, an optional one limited to a target and enabled through `dep:`,
    // and a dev dependency: every optional key of an index dependency, set and unset.
    let dependent = package(
        root,
        "dependent",
        &library_manifest(
            "reader-app",
            "0.1.0",
            "\n[dependencies]\nbase = { package = \"Reader_Base\", version = \"0.1\", registry = \"ktra\" }\n\
             \n[target.'cfg(unix)'.dependencies]\nReader_Base = { version = \"0.1\", registry = \"ktra\", optional = true }\n\
             \n[dev-dependencies]\nReader_Base = { version = \"0.1\", registry = \"ktra\" }\n\
             \n[features]\nextra = [\"dep:Reader_Base\"]\n",
        ),
        &[("src/lib.rs", "pub fn value() -> u32 { base::value() }\n")],
    );
    publisher.publish(&dependent, "ktra").await;

    let path = index_path("reader-app");
    let from_sparse = registry
        .sparse_file(&path)
        .await
        .expect("the sparse index has the dependent");
    // Publish answered after the indexer pushed, so the remote already has the file.
    let from_git = branch_files(&registry.remote_path, "main")
        .remove(&path)
        .expect("the git index has the dependent");
    assert_eq!(from_sparse, from_git);
    for (label, content) in [("sparse", &from_sparse), ("git", &from_git)] {
        check_with_tame_index(label, content);
        check_with_crates_index(label, content);
        assert!(!content.contains("null"), "{label}: {content}");
    }
}

fn check_with_tame_index(label: &str, content: &str) {
    let krate = tame_index::IndexKrate::from_slice(content.as_bytes())
        .unwrap_or_else(|error| panic!("{label}: tame-index refuses {content}: {error}"));
    assert_eq!(krate.versions.len(), 1, "{label}");
    let version = &krate.versions[0];
    assert_eq!(version.version.as_str(), "0.1.0", "{label}");
    let mut deps: Vec<(String, String, String)> = version
        .deps
        .iter()
        .map(|dep| {
            (
                dep.name.to_string(),
                dep.crate_name().to_owned(),
                format!("{:?}", dep.kind).to_lowercase(),
            )
        })
        .collect();
    deps.sort();
    assert_eq!(deps, expected_deps(), "{label}");
    let targeted = version
        .deps
        .iter()
        .find(|dep| dep.optional)
        .expect("the optional dependency");
    assert_eq!(
        targeted.target.as_deref().map(|target| target.as_str()),
        Some("cfg(unix)")
    );
}

fn check_with_crates_index(label: &str, content: &str) {
    let krate = crates_index::Crate::from_slice(content.as_bytes())
        .unwrap_or_else(|error| panic!("{label}: crates-index refuses {content}: {error}"));
    let [version] = krate.versions() else {
        panic!("{label}: one version expected in {content}");
    };
    assert_eq!(version.version(), "0.1.0", "{label}");
    let mut deps: Vec<(String, String, String)> = version
        .dependencies()
        .iter()
        .map(|dep| {
            (
                dep.name().to_owned(),
                dep.crate_name().to_owned(),
                format!("{:?}", dep.kind()).to_lowercase(),
            )
        })
        .collect();
    deps.sort();
    assert_eq!(deps, expected_deps(), "{label}");
    assert!(
        version.features().contains_key("extra"),
        "{label}: the `dep:` feature is readable"
    );
}

fn expected_deps() -> Vec<(String, String, String)> {
    EXPECTED_DEPS
        .iter()
        .map(|(name, crate_name, kind)| {
            (
                (*name).to_owned(),
                (*crate_name).to_owned(),
                (*kind).to_owned(),
            )
        })
        .collect()
}
