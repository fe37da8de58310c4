//! The registry index: where a crate's file lives, and what one line of it holds.
//!
//! The git index and the sparse index share both. Cargo silently skips lines it cannot parse,
//! so the field names and shapes here follow cargo's `IndexPackage` and crates.io's writer
//! exactly; the snapshot tests pin them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A crate's features: feature name to the features and dependencies it enables.
pub type FeatureMap = BTreeMap<String, Vec<String>>;

/// Returns the path of a crate's index file, relative to the index root.
///
/// The path is built from the lower-cased name: `1/a`, `2/ab`, `3/a/abc`, `ab/cd/abcd...`.
/// `name` must already be a valid crate name (ASCII only).
pub fn index_path(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    if lower.is_empty() {
        return String::new();
    }
    format!("{}/{lower}", index_prefix(&lower))
}

/// Returns the directory part of a crate's index path in the name's own case: cargo's
/// `{prefix}` marker in a `dl` template (`1`, `2`, `3/A`, `Ab/Cd`); lower-case it for
/// `{lowerprefix}`. `name` must already be a valid crate name (ASCII only).
pub fn index_prefix(name: &str) -> String {
    match name.len() {
        0 => String::new(),
        1 => "1".to_owned(),
        2 => "2".to_owned(),
        3 => format!("3/{}", &name[..1]),
        _ => format!("{}/{}", &name[..2], &name[2..4]),
    }
}

/// The kind of a dependency, as the index spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DependencyKind {
    /// A regular dependency.
    Normal,
    /// A build-script dependency.
    Build,
    /// A dependency of tests, examples and benchmarks only.
    Dev,
}

/// One dependency of one version, as written in the index.
///
/// Unset optional keys are left out, never written as `null`: readers built on `tame-index`
/// (cargo-deny among them) refuse `"package": null`, crates.io never writes `package` or
/// `registry` unset, and every reader takes a missing `target` as none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexDependency {
    /// The name the dependent uses: the renamed name when the dependency is renamed.
    pub name: String,
    /// The version requirement, verbatim as cargo sent it.
    pub req: String,
    /// Features enabled on the dependency.
    pub features: Vec<String>,
    /// Whether the dependency is optional.
    pub optional: bool,
    /// Whether the dependency's default features are enabled.
    pub default_features: bool,
    /// The `cfg(...)` or target triple the dependency is limited to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Normal, build or dev.
    pub kind: DependencyKind,
    /// The index URL of the registry the dependency comes from; `None` means this registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    /// The real crate name when the dependency is renamed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
}

impl IndexDependency {
    /// Returns the key the index sorts dependencies by: crates.io's order, which puts the
    /// normal dependency first when a crate appears under several kinds (old cargo versions
    /// misread `optional` otherwise).
    fn sort_key(&self) -> impl Ord + '_ {
        (
            &self.name,
            self.kind,
            &self.req,
            self.optional,
            self.default_features,
            &self.target,
            &self.package,
            &self.features,
        )
    }
}

/// One line of a crate's index file: one published version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexLine {
    /// The crate name, in the case it was published with.
    pub name: String,
    /// The version, including any build metadata, as published.
    pub vers: String,
    /// Dependencies, in crates.io's order.
    pub deps: Vec<IndexDependency>,
    /// SHA-256 of the `.crate` file, lower-case hex.
    pub cksum: String,
    /// Features that old cargo versions can read.
    pub features: FeatureMap,
    /// Features using `dep:` or `?/` syntax, and those that enable them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features2: Option<FeatureMap>,
    /// Whether the version is yanked.
    pub yanked: bool,
    /// The native library the crate links, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links: Option<String>,
    /// The minimum supported Rust version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rust_version: Option<String>,
    /// When the version was published, `YYYY-MM-DDTHH:MM:SSZ`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pubtime: Option<String>,
    /// The entry's schema version: `2` when `features2` is present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v: Option<u32>,
}

impl IndexLine {
    /// Builds a line, sorting `deps` and splitting `features` the way crates.io does.
    #[expect(clippy::too_many_arguments, reason = "one argument per index field")]
    pub fn new(
        name: String,
        vers: String,
        mut deps: Vec<IndexDependency>,
        cksum: String,
        features: FeatureMap,
        links: Option<String>,
        rust_version: Option<String>,
        pubtime: chrono::DateTime<chrono::Utc>,
    ) -> Self {
        deps.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        let (features, features2) = split_features(features);
        let (features2, v) = if features2.is_empty() {
            (None, None)
        } else {
            (Some(features2), Some(2))
        };
        Self {
            name,
            vers,
            deps,
            cksum,
            features,
            features2,
            yanked: false,
            links,
            rust_version,
            pubtime: Some(format_pubtime(pubtime)),
            v,
        }
    }

    /// Serializes the line as the index stores it: compact JSON, no trailing newline.
    pub fn to_json(&self) -> String {
        // Serializing a struct of strings, bools and string maps cannot fail.
        serde_json::to_string(self).expect("an index line always serializes")
    }
}

/// Formats a publication time as the index's `pubtime` field.
pub fn format_pubtime(time: chrono::DateTime<chrono::Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Splits features into those old cargo versions can read and those they cannot.
///
/// A feature goes to the second map when one of its values uses `dep:` or `?/`, or when it
/// enables a feature that went there (old cargo would otherwise find a dangling reference).
pub fn split_features(features: FeatureMap) -> (FeatureMap, FeatureMap) {
    fn uses_new_syntax(value: &str) -> bool {
        value.starts_with("dep:") || value.contains("?/")
    }
    let (mut plain, mut extended): (FeatureMap, FeatureMap) = features
        .into_iter()
        .partition(|(_, values)| !values.iter().any(|value| uses_new_syntax(value)));
    // Each pass moves at least one feature or stops, so this ends after at most
    // `plain.len()` passes.
    loop {
        let (keep, moved): (FeatureMap, FeatureMap) = plain
            .into_iter()
            .partition(|(_, values)| !values.iter().any(|value| extended.contains_key(value)));
        plain = keep;
        if moved.is_empty() {
            break;
        }
        extended.extend(moved);
    }
    (plain, extended)
}

/// The index's `config.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexConfig {
    /// Where crates download from; cargo appends `/{crate}/{version}/download`.
    pub dl: String,
    /// The web API's base URL, no trailing slash.
    pub api: String,
    /// Whether cargo must send its token on every read.
    #[serde(rename = "auth-required", default, skip_serializing_if = "is_false")]
    pub auth_required: bool,
}

fn is_false(value: &bool) -> bool {
    !*value
}

impl IndexConfig {
    /// Serializes the configuration as the index stores it, pretty-printed with a final newline.
    pub fn to_json(&self) -> String {
        let mut json =
            serde_json::to_string_pretty(self).expect("the index configuration always serializes");
        json.push('\n');
        json
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn features(pairs: &[(&str, &[&str])]) -> FeatureMap {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.iter().map(|s| (*s).to_owned()).collect()))
            .collect()
    }

    #[test]
    fn index_paths_by_length() {
        assert_eq!(index_path("a"), "1/a");
        assert_eq!(index_path("AB"), "2/ab");
        assert_eq!(index_path("Abc"), "3/a/abc");
        assert_eq!(index_path("abcd"), "ab/cd/abcd");
        assert_eq!(index_path("Serde_Json"), "se/rd/serde_json");
        assert_eq!(index_prefix("Serde_Json"), "Se/rd");
        assert_eq!(index_prefix("Abc"), "3/A");
    }

    proptest! {
        #[test]
        fn index_path_ends_with_lowercase_name(name in "[a-zA-Z][a-zA-Z0-9_-]{0,63}") {
            let path = index_path(&name);
            let lower = name.to_ascii_lowercase();
            let suffix = format!("/{lower}");
            prop_assert!(path.ends_with(&suffix));
            let expected_depth = match lower.len() { 1 | 2 => 2, _ => 3 };
            prop_assert_eq!(path.split('/').count(), expected_depth);
            prop_assert!(path.split('/').all(|segment| !segment.is_empty()));
        }
    }

    #[test]
    fn splits_features_like_crates_io() {
        let (plain, extended) = split_features(features(&[
            ("default", &["std"]),
            ("std", &[]),
            ("serde", &["dep:serde"]),
            ("weak", &["log?/std"]),
            ("all", &["serde", "std"]),
            ("uses-all", &["all"]),
        ]));
        assert_eq!(plain, features(&[("default", &["std"]), ("std", &[])]));
        assert_eq!(
            extended,
            features(&[
                ("serde", &["dep:serde"]),
                ("weak", &["log?/std"]),
                ("all", &["serde", "std"]),
                ("uses-all", &["all"]),
            ])
        );
    }

    #[test]
    fn line_matches_crates_io_shape() {
        let pubtime = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let line = IndexLine::new(
            "Demo".into(),
            "1.0.0+meta".into(),
            vec![
                IndexDependency {
                    name: "zeta".into(),
                    req: "^1".into(),
                    features: vec![],
                    optional: false,
                    default_features: true,
                    target: None,
                    kind: DependencyKind::Dev,
                    registry: None,
                    package: None,
                },
                IndexDependency {
                    name: "alias".into(),
                    req: ">=0.2, <0.4".into(),
                    features: vec!["x".into()],
                    optional: true,
                    default_features: false,
                    target: Some("cfg(unix)".into()),
                    kind: DependencyKind::Normal,
                    registry: Some("https://github.com/rust-lang/crates.io-index".into()),
                    package: Some("real".into()),
                },
            ],
            "ab".repeat(32),
            features(&[("default", &[]), ("x", &["dep:alias"])]),
            Some("z".into()),
            Some("1.70".into()),
            pubtime,
        );
        assert_eq!(
            line.to_json(),
            concat!(
                r#"{"name":"Demo","vers":"1.0.0+meta","deps":["#,
                r#"{"name":"alias","req":">=0.2, <0.4","features":["x"],"optional":true,"default_features":false,"target":"cfg(unix)","kind":"normal","registry":"https://github.com/rust-lang/crates.io-index","package":"real"},"#,
                r#"{"name":"zeta","req":"^1","features":[],"optional":false,"default_features":true,"kind":"dev"}],"#,
                r#""cksum":"abababababababababababababababababababababababababababababababab","#,
                r#""features":{"default":[]},"features2":{"x":["dep:alias"]},"yanked":false,"links":"z","rust_version":"1.70","pubtime":"2023-11-14T22:13:20Z","v":2}"#
            )
        );
        let parsed: IndexLine = serde_json::from_str(&line.to_json()).unwrap();
        assert_eq!(parsed, line);
    }

    #[test]
    fn config_json_omits_auth_required_when_false() {
        let public = IndexConfig {
            dl: "http://h/dl".into(),
            api: "http://h".into(),
            auth_required: false,
        };
        assert_eq!(
            public.to_json(),
            "{\n  \"dl\": \"http://h/dl\",\n  \"api\": \"http://h\"\n}\n"
        );
        let private = IndexConfig {
            auth_required: true,
            ..public
        };
        assert!(private.to_json().contains("\"auth-required\": true"));
    }
}
