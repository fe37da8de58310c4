//! A version's identity: the version as published and the key under which it is unique.

use std::fmt;

/// A version and its key, computed once where the version enters (the publish check, a request
/// path, an import) and carried from there through the store calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionId {
    version: semver::Version,
    key: String,
}

impl VersionId {
    /// Derives the key of a parsed version.
    pub fn new(version: semver::Version) -> Self {
        let mut unique = version.clone();
        unique.build = semver::BuildMetadata::EMPTY;
        Self {
            key: unique.to_string(),
            version,
        }
    }

    /// Parses a version as cargo writes it.
    ///
    /// # Errors
    ///
    /// Returns semver's error when the text is not a version.
    pub fn parse(text: &str) -> Result<Self, semver::Error> {
        semver::Version::parse(text).map(Self::new)
    }

    /// Returns the version as published, build metadata included.
    pub fn version(&self) -> &semver::Version {
        &self.version
    }

    /// Returns the key under which the version is unique in its crate: the version without build
    /// metadata (`1.0.7` and `1.0.7+x` are the same version for cargo), what the stores and
    /// crate file names key a version by.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Returns whether `stored`, a version as a store keeps it, is this version for cargo.
    pub fn is(&self, stored: &str) -> bool {
        Self::parse(stored).is_ok_and(|other| other.key == self.key)
    }
}

impl fmt::Display for VersionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.version.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::VersionId;

    #[test]
    fn the_key_drops_build_metadata_only() {
        let version = VersionId::parse("1.0.7-rc.1+build.5").unwrap();
        assert_eq!(version.key(), "1.0.7-rc.1");
        assert_eq!(version.to_string(), "1.0.7-rc.1+build.5");
        assert!(version.is("1.0.7-rc.1"));
        assert!(version.is("1.0.7-rc.1+other"));
        assert!(!version.is("1.0.7"));
        assert!(!version.is("not a version"));
    }
}
