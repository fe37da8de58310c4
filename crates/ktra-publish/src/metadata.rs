//! Cargo's publish metadata, and the index line built from it.
//!
//! Field names follow cargo's `NewCrate` (the JSON `cargo publish` sends). Unknown fields are
//! ignored, as on crates.io, so newer cargo versions keep working.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use ktra_core::index::{DependencyKind, IndexDependency, IndexLine};
use ktra_core::metadata::VersionMetadata;
use ktra_core::name::{CrateId, validate_crate_name};
use ktra_core::version::VersionId;
use serde::Deserialize;

/// The metadata of one publish, as cargo sends it.
#[derive(Debug, Clone, Deserialize)]
pub struct PublishMetadata {
    /// The crate name.
    pub name: String,
    /// The version.
    pub vers: String,
    /// Every dependency, dev-dependencies included.
    #[serde(default)]
    pub deps: Vec<PublishDependency>,
    /// Feature name to what it enables.
    #[serde(default)]
    pub features: BTreeMap<String, Vec<String>>,
    /// One-line description.
    pub description: Option<String>,
    /// The `links` key of the manifest.
    pub links: Option<String>,
    /// The minimum supported Rust version.
    pub rust_version: Option<String>,
    /// Authors, as the manifest lists them.
    #[serde(default)]
    pub authors: Vec<String>,
    /// URL of the documentation.
    pub documentation: Option<String>,
    /// URL of the home page.
    pub homepage: Option<String>,
    /// URL of the source repository.
    pub repository: Option<String>,
    /// The README's text.
    pub readme: Option<String>,
    /// The README's path in the package.
    pub readme_file: Option<String>,
    /// Search keywords.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// crates.io category slugs.
    #[serde(default)]
    pub categories: Vec<String>,
    /// SPDX license expression.
    pub license: Option<String>,
    /// Path of a license file in the package.
    pub license_file: Option<String>,
}

/// One dependency in the publish metadata.
#[derive(Debug, Clone, Deserialize)]
pub struct PublishDependency {
    /// The real crate name of the dependency.
    pub name: String,
    /// The version requirement.
    pub version_req: String,
    /// Features enabled on it.
    #[serde(default)]
    pub features: Vec<String>,
    /// Whether it is optional.
    #[serde(default)]
    pub optional: bool,
    /// Whether its default features are on.
    #[serde(default = "default_true")]
    pub default_features: bool,
    /// The target it is limited to.
    pub target: Option<String>,
    /// `normal`, `build` or `dev`.
    pub kind: Option<String>,
    /// The index URL of its registry; absent for this registry.
    pub registry: Option<String>,
    /// The name the dependent uses when it renamed the dependency.
    pub explicit_name_in_toml: Option<String>,
}

fn default_true() -> bool {
    true
}

/// Why the metadata was refused; the message is shown by cargo.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MetadataError(pub String);

fn refuse(message: impl Into<String>) -> MetadataError {
    MetadataError(message.into())
}

/// Checks that a `rust-version` is a partial version: one to three dot-separated numbers.
fn is_partial_version(text: &str) -> bool {
    let parts: Vec<&str> = text.split('.').collect();
    (1..=3).contains(&parts.len())
        && parts
            .iter()
            .all(|part| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit()))
}

/// Checks a feature name as cargo does: letters, digits, `_`, `-`, `+` and `.`, not starting
/// with `-`, `+` or `.`.
fn is_feature_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphanumeric() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+' | '.'))
}

impl PublishMetadata {
    /// Parses the JSON metadata.
    ///
    /// # Errors
    ///
    /// Fails with the parser's message when the JSON is malformed or lacks a required field.
    pub fn parse(json: &[u8]) -> Result<Self, MetadataError> {
        serde_json::from_slice(json)
            .map_err(|error| refuse(format!("invalid publish metadata: {error}")))
    }

    /// Validates the metadata and returns the identities of the crate and of the version.
    ///
    /// # Errors
    ///
    /// Fails on the first rule broken: crate and dependency names, versions and requirements,
    /// dependency kinds, feature names, `rust-version`, and the counts and lengths `limits`
    /// allows.
    pub fn validate(
        &self,
        limits: &crate::PublishLimits,
    ) -> Result<(CrateId, VersionId), MetadataError> {
        let krate = CrateId::new(&self.name)
            .map_err(|error| refuse(format!("invalid crate name: {error}")))?;
        if self.deps.len() > limits.max_dependencies {
            return Err(refuse(format!(
                "the crate declares {} dependencies; this registry allows at most {}",
                self.deps.len(),
                limits.max_dependencies
            )));
        }
        if self.features.len() > limits.max_features {
            return Err(refuse(format!(
                "the crate declares {} features; this registry allows at most {}",
                self.features.len(),
                limits.max_features
            )));
        }
        if let Some((feature, values)) = self
            .features
            .iter()
            .find(|(_, values)| values.len() > limits.max_feature_values)
        {
            return Err(refuse(format!(
                "feature `{feature}` enables {} features or dependencies; this registry allows at most {}",
                values.len(),
                limits.max_feature_values
            )));
        }
        if let Some(description) = &self.description
            && description.len() > limits.max_description_bytes
        {
            return Err(refuse(format!(
                "the description is {} bytes long; this registry allows at most {}",
                description.len(),
                limits.max_description_bytes
            )));
        }
        let version = VersionId::parse(&self.vers).map_err(|error| {
            refuse(format!(
                "invalid version `{}`: {error} (versions follow semver, e.g. 1.2.3)",
                self.vers
            ))
        })?;
        for dep in &self.deps {
            validate_crate_name(&dep.name)
                .map_err(|error| refuse(format!("invalid dependency name: {error}")))?;
            if let Some(alias) = &dep.explicit_name_in_toml {
                validate_crate_name(alias).map_err(|error| {
                    refuse(format!("invalid renamed dependency `{alias}`: {error}"))
                })?;
            }
            semver::VersionReq::parse(&dep.version_req).map_err(|error| {
                refuse(format!(
                    "dependency `{}` has an invalid version requirement `{}`: {error}",
                    dep.name, dep.version_req
                ))
            })?;
            dependency_kind(dep.kind.as_deref()).map_err(refuse)?;
        }
        for (feature, values) in &self.features {
            if !is_feature_name(feature) {
                return Err(refuse(format!("invalid feature name `{feature}`")));
            }
            if values.iter().any(String::is_empty) {
                return Err(refuse(format!("feature `{feature}` enables an empty name")));
            }
        }
        if let Some(rust_version) = &self.rust_version
            && !is_partial_version(rust_version)
        {
            return Err(refuse(format!(
                "invalid rust-version `{rust_version}`: expected a version such as 1.70"
            )));
        }
        Ok((krate, version))
    }

    /// The descriptive metadata to keep for the version; `edition` comes from the package's
    /// `Cargo.toml` (cargo does not send it), `crate_size` is the `.crate` file's size.
    pub fn version_metadata(&self, edition: Option<String>, crate_size: u64) -> VersionMetadata {
        VersionMetadata {
            description: self.description.clone(),
            documentation: self.documentation.clone(),
            homepage: self.homepage.clone(),
            repository: self.repository.clone(),
            license: self.license.clone(),
            license_file: self.license_file.clone(),
            readme_file: self.readme_file.clone(),
            keywords: self.keywords.clone(),
            categories: self.categories.clone(),
            authors: self.authors.clone(),
            links: self.links.clone(),
            rust_version: self.rust_version.clone(),
            edition,
            crate_size: Some(crate_size),
        }
    }

    /// Builds the index line, as crates.io would: renamed dependencies keep their alias in
    /// `name` and the real name in `package`, requirements are kept verbatim, features using
    /// `dep:` or `?/` go to `features2`.
    pub fn to_index_line(&self, cksum: String, published_at: DateTime<Utc>) -> IndexLine {
        let deps = self
            .deps
            .iter()
            .map(|dep| {
                let (name, package) = match &dep.explicit_name_in_toml {
                    Some(alias) => (alias.clone(), Some(dep.name.clone())),
                    None => (dep.name.clone(), None),
                };
                IndexDependency {
                    name,
                    req: dep.version_req.clone(),
                    features: dep.features.clone(),
                    optional: dep.optional,
                    default_features: dep.default_features,
                    target: dep.target.clone(),
                    // Validated above; `validate` runs before this.
                    kind: dependency_kind(dep.kind.as_deref()).unwrap_or(DependencyKind::Normal),
                    registry: dep.registry.clone(),
                    package,
                }
            })
            .collect();
        IndexLine::new(
            self.name.clone(),
            self.vers.clone(),
            deps,
            cksum,
            self.features.clone(),
            self.links.clone(),
            self.rust_version.clone(),
            published_at,
        )
    }
}

fn dependency_kind(kind: Option<&str>) -> Result<DependencyKind, String> {
    match kind {
        None | Some("normal") => Ok(DependencyKind::Normal),
        Some("build") => Ok(DependencyKind::Build),
        Some("dev") => Ok(DependencyKind::Dev),
        Some(other) => Err(format!(
            "invalid dependency kind `{other}`: expected normal, build or dev"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PublishLimits;

    fn metadata(json: serde_json::Value) -> PublishMetadata {
        PublishMetadata::parse(json.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn renamed_dependencies_keep_both_names() {
        let meta = metadata(serde_json::json!({
            "name": "app", "vers": "0.1.0",
            "deps": [{
                "name": "real", "version_req": "^1.2", "features": [], "optional": false,
                "default_features": true, "target": null, "kind": "normal",
                "explicit_name_in_toml": "alias"
            }],
            "features": {}, "unknown_future_field": 1
        }));
        meta.validate(&PublishLimits::DEFAULT).unwrap();
        let line = meta.to_index_line("00".repeat(32), Utc::now());
        assert_eq!(line.deps[0].name, "alias");
        assert_eq!(line.deps[0].package.as_deref(), Some("real"));
        assert_eq!(line.deps[0].req, "^1.2");
    }

    #[test]
    fn refuses_bad_metadata() {
        let base = serde_json::json!({"name": "ok", "vers": "1.0.0", "deps": [], "features": {}});
        let cases = [
            ("name", serde_json::json!("nul"), "invalid crate name"),
            ("name", serde_json::json!("9lives"), "invalid crate name"),
            ("vers", serde_json::json!("1.0"), "invalid version"),
            (
                "deps",
                serde_json::json!([{"name": "x", "version_req": "not a req"}]),
                "invalid version requirement",
            ),
            (
                "deps",
                serde_json::json!([{"name": "x", "version_req": "1", "kind": "weird"}]),
                "invalid dependency kind",
            ),
            (
                "features",
                serde_json::json!({"-bad": []}),
                "invalid feature name",
            ),
            (
                "rust_version",
                serde_json::json!("1.x"),
                "invalid rust-version",
            ),
        ];
        for (field, value, expected) in cases {
            let mut json = base.clone();
            json[field] = value;
            let error = metadata(json)
                .validate(&PublishLimits::DEFAULT)
                .unwrap_err()
                .to_string();
            assert!(error.contains(expected), "{field}: {error}");
        }
        let error = PublishMetadata::parse(b"{\"name\": \"x\"").unwrap_err();
        assert!(error.0.starts_with("invalid publish metadata"), "{error}");
    }

    #[test]
    fn counts_and_lengths_are_bounded() {
        let limits = PublishLimits {
            max_dependencies: 2,
            max_features: 2,
            max_feature_values: 2,
            max_description_bytes: 10,
            ..PublishLimits::DEFAULT
        };
        let dep = serde_json::json!({"name": "x", "version_req": "1"});
        let cases = [
            ("deps", serde_json::json!([dep, dep, dep]), "3 dependencies"),
            (
                "features",
                serde_json::json!({"a": [], "b": [], "c": []}),
                "3 features",
            ),
            (
                "features",
                serde_json::json!({"a": ["b", "c", "d"]}),
                "feature `a` enables 3",
            ),
            (
                "description",
                serde_json::json!("eleven char"),
                "11 bytes long",
            ),
        ];
        let base = serde_json::json!({"name": "ok", "vers": "1.0.0"});
        for (field, value, expected) in cases {
            let mut json = base.clone();
            json[field] = value.clone();
            let error = metadata(json).validate(&limits).unwrap_err().to_string();
            assert!(error.contains(expected), "{field}: {error}");
        }
        let mut json = base;
        json["deps"] = serde_json::json!([dep, dep]);
        json["description"] = serde_json::json!("ten chars!");
        metadata(json).validate(&limits).unwrap();
    }
}
