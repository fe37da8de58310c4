//! What a version says about itself: the descriptive fields of its manifest, as cargo sends
//! them at publish (or as its `.crate` file's `Cargo.toml` holds them, for versions kept
//! before the registry stored them). Dependencies and features are not here: the index line
//! holds them.
//!
//! Stored as JSON; unset fields are left out, so a record stays small and a field added later
//! reads as unset in older records.

use serde::{Deserialize, Serialize};

/// The longest README the registry keeps, in bytes; a longer one is cut at a character
/// boundary (the whole text stays in the `.crate` file).
pub const MAX_README_BYTES: usize = 1024 * 1024;

/// The descriptive metadata of one version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct VersionMetadata {
    /// One-line description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// URL of the documentation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub documentation: Option<String>,
    /// URL of the home page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
    /// URL of the source repository.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// SPDX license expression.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// Path of a license file in the package, when there is no SPDX expression.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub license_file: Option<String>,
    /// Path of the README in the package.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readme_file: Option<String>,
    /// Search keywords.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
    /// crates.io category slugs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    /// Authors, as the manifest lists them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub authors: Vec<String>,
    /// The native library the package links.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub links: Option<String>,
    /// The minimum supported Rust version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rust_version: Option<String>,
    /// The Rust edition (from the package's `Cargo.toml`; cargo does not send it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edition: Option<String>,
    /// Size of the `.crate` file in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crate_size: Option<u64>,
}

/// Returns `readme` cut to at most [`MAX_README_BYTES`], at a character boundary.
pub fn bounded_readme(mut readme: String) -> String {
    if readme.len() > MAX_README_BYTES {
        let mut end = MAX_README_BYTES;
        while !readme.is_char_boundary(end) {
            end -= 1;
        }
        readme.truncate(end);
    }
    readme
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_fields_are_left_out() {
        let metadata = VersionMetadata {
            license: Some("MIT".to_owned()),
            ..VersionMetadata::default()
        };
        assert_eq!(
            serde_json::to_string(&metadata).unwrap(),
            r#"{"license":"MIT"}"#
        );
        let read: VersionMetadata = serde_json::from_str(r#"{"license":"MIT"}"#).unwrap();
        assert_eq!(read, metadata);
    }

    #[test]
    fn long_readmes_are_cut_at_a_character_boundary() {
        let readme = "é".repeat(MAX_README_BYTES);
        let cut = bounded_readme(readme);
        assert!(cut.len() <= MAX_README_BYTES);
        assert!(cut.len() > MAX_README_BYTES - 2);
        assert_eq!(bounded_readme("short".to_owned()), "short");
    }
}
