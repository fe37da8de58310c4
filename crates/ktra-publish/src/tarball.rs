//! Checks a `.crate` file: a readable gzipped tarball whose entries all live under
//! `{name}-{version}/`, that holds no links or devices, unpacks within a size limit, and whose
//! `Cargo.toml` names the same crate and version as the metadata.
//!
//! The archive is read as a stream; nothing is written to disk.

use std::io::Read;
use std::path::{Component, Path};

use flate2::read::GzDecoder;
use ktra_core::metadata::{MAX_README_BYTES, VersionMetadata};
use serde::Deserialize;
use tar::EntryType;

/// The largest `Cargo.toml` read from a tarball.
const MAX_MANIFEST_BYTES: u64 = 1024 * 1024;

/// Why a crate file was refused; the message is shown by cargo.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TarballError {
    /// Not a gzip stream or not a tar archive.
    #[error("the crate file is not a readable gzipped tarball: {0}")]
    Unreadable(String),
    /// An entry escapes the crate's directory.
    #[error("the crate file holds `{path}`, outside `{prefix}/`")]
    OutsidePrefix {
        /// The entry's path.
        path: String,
        /// The directory every entry must be under.
        prefix: String,
    },
    /// An entry is a link, device or other special file.
    #[error("the crate file holds `{0}`, which is not a regular file or directory")]
    SpecialEntry(String),
    /// The unpacked content is too large.
    #[error("the crate file unpacks to more than {0} bytes")]
    TooLarge(u64),
    /// More entries than allowed.
    #[error("the crate file holds more than {0} files")]
    TooManyFiles(usize),
    /// `Cargo.toml` is missing.
    #[error("the crate file has no `{0}/Cargo.toml`")]
    MissingManifest(String),
    /// `Cargo.toml` does not parse or lacks `package.name`/`package.version`.
    #[error("the crate file's Cargo.toml is invalid: {0}")]
    InvalidManifest(String),
    /// `Cargo.toml` names another crate or version.
    #[error(
        "the crate file's Cargo.toml says `{found}` but the publish metadata says `{expected}`"
    )]
    ManifestMismatch {
        /// What the metadata says, `name@version`.
        expected: String,
        /// What the manifest says.
        found: String,
    },
}

#[derive(Deserialize)]
struct Manifest {
    package: Option<toml::Table>,
}

/// The `[package]` table of a crate file's `Cargo.toml`, as cargo normalises it when it
/// packages a crate (workspace values resolved, `readme` a path or `false`).
#[derive(Debug, Clone, PartialEq)]
pub struct PackageManifest {
    table: toml::Table,
}

impl PackageManifest {
    /// A string field; absent when missing or of another type (a hand-made manifest may hold
    /// `{ workspace = true }`).
    fn text(&self, key: &str) -> Option<String> {
        self.table
            .get(key)
            .and_then(toml::Value::as_str)
            .map(str::to_owned)
    }

    /// A list of strings; the strings of it, or empty.
    fn list(&self, key: &str) -> Vec<String> {
        self.table
            .get(key)
            .and_then(toml::Value::as_array)
            .map(|values| {
                values
                    .iter()
                    .filter_map(toml::Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The Rust edition.
    pub fn edition(&self) -> Option<String> {
        self.text("edition")
    }

    /// The README's path in the package: `readme` when it is a path, none when it is `false`,
    /// and cargo's default (`README.md`) when it is missing.
    pub fn readme_file(&self) -> Option<String> {
        match self.table.get("readme") {
            Some(toml::Value::String(path)) => Some(path.clone()),
            Some(toml::Value::Boolean(false)) => None,
            _ => Some("README.md".to_owned()),
        }
    }

    /// What the manifest says about the version, for a version whose publish metadata was not
    /// kept; `crate_size` is the `.crate` file's size.
    pub fn version_metadata(&self, crate_size: u64) -> VersionMetadata {
        VersionMetadata {
            description: self.text("description"),
            documentation: self.text("documentation"),
            homepage: self.text("homepage"),
            repository: self.text("repository"),
            license: self.text("license"),
            license_file: self.text("license-file"),
            readme_file: match self.table.get("readme") {
                Some(toml::Value::String(path)) => Some(path.clone()),
                _ => None,
            },
            keywords: self.list("keywords"),
            categories: self.list("categories"),
            authors: self.list("authors"),
            links: self.text("links"),
            rust_version: self.text("rust-version"),
            edition: self.edition(),
            crate_size: Some(crate_size),
        }
    }
}

/// A reader that fails once more than `remaining` bytes were read through it.
struct Bounded<R> {
    inner: R,
    remaining: u64,
    limit: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        let read_u64 = u64::try_from(read).unwrap_or(u64::MAX);
        self.remaining = self
            .remaining
            .checked_sub(read_u64)
            .ok_or_else(|| std::io::Error::other(TarballError::TooLarge(self.limit).to_string()))?;
        Ok(read)
    }
}

/// Checks a crate file for the crate `name` at `version` (both as in the metadata), and
/// returns its manifest's `[package]` table.
///
/// # Errors
///
/// Returns the first problem found.
pub fn validate(
    crate_file: &[u8],
    name: &str,
    version: &str,
    max_unpacked_bytes: u64,
    max_files: usize,
) -> Result<PackageManifest, TarballError> {
    let prefix = format!("{name}-{version}");
    let decoder = Bounded {
        inner: GzDecoder::new(crate_file),
        // Tar headers count against the limit too; they are a small share of any real crate.
        remaining: max_unpacked_bytes,
        limit: max_unpacked_bytes,
    };
    let mut archive = tar::Archive::new(decoder);
    let unreadable = |error: std::io::Error| {
        if error.to_string() == TarballError::TooLarge(max_unpacked_bytes).to_string() {
            TarballError::TooLarge(max_unpacked_bytes)
        } else {
            TarballError::Unreadable(error.to_string())
        }
    };
    let mut manifest: Option<String> = None;
    let mut entries_seen = 0_usize;
    for entry in archive.entries().map_err(unreadable)? {
        let mut entry = entry.map_err(unreadable)?;
        entries_seen += 1;
        if entries_seen > max_files {
            return Err(TarballError::TooManyFiles(max_files));
        }
        let path = entry.path().map_err(unreadable)?.into_owned();
        let shown = path.display().to_string();
        let entry_type = entry.header().entry_type();
        if !matches!(
            entry_type,
            EntryType::Regular | EntryType::Continuous | EntryType::Directory
        ) {
            return Err(TarballError::SpecialEntry(shown));
        }
        if !is_under(&path, &prefix) {
            return Err(TarballError::OutsidePrefix {
                path: shown,
                prefix,
            });
        }
        if path == Path::new(&prefix).join("Cargo.toml") && entry_type != EntryType::Directory {
            let mut text = String::new();
            (&mut entry)
                .take(MAX_MANIFEST_BYTES)
                .read_to_string(&mut text)
                .map_err(|error| TarballError::InvalidManifest(error.to_string()))?;
            manifest = Some(text);
        } else {
            // Read through the entry so the size limit sees every byte.
            std::io::copy(&mut entry, &mut std::io::sink()).map_err(unreadable)?;
        }
    }
    if entries_seen == 0 {
        return Err(TarballError::Unreadable("the archive is empty".to_owned()));
    }
    let manifest = manifest.ok_or_else(|| TarballError::MissingManifest(prefix.clone()))?;
    let parsed: Manifest = toml::from_str(&manifest)
        .map_err(|error| TarballError::InvalidManifest(error.message().to_owned()))?;
    let table = parsed
        .package
        .ok_or_else(|| TarballError::InvalidManifest("no [package] table".to_owned()))?;
    let found_name = table.get("name").and_then(toml::Value::as_str);
    let found_version = match table.get("version") {
        None => Some("0.0.0"),
        Some(value) => value.as_str(),
    };
    let (Some(found_name), Some(found_version)) = (found_name, found_version) else {
        return Err(TarballError::InvalidManifest(
            "`package.name` and `package.version` must be strings".to_owned(),
        ));
    };
    if found_name != name || found_version != version {
        return Err(TarballError::ManifestMismatch {
            expected: format!("{name}@{version}"),
            found: format!("{found_name}@{found_version}"),
        });
    }
    Ok(PackageManifest { table })
}

/// Reads a README from a crate file already checked by [`validate`]: `path` relative to the
/// package's root (`prefix`, `{name}-{version}`), at most
/// [`MAX_README_BYTES`] of it, cut at a character
/// boundary. `None` when the file is missing, not UTF-8, or the path leaves the package.
#[must_use]
pub fn readme_text(crate_file: &[u8], prefix: &str, path: &str) -> Option<String> {
    let relative = Path::new(path);
    if !relative
        .components()
        .all(|component| matches!(component, Component::Normal(_) | Component::CurDir))
    {
        return None;
    }
    let wanted = Path::new(prefix).join(relative);
    let mut archive = tar::Archive::new(GzDecoder::new(crate_file));
    for entry in archive.entries().ok()? {
        let mut entry = entry.ok()?;
        if entry.header().entry_type() == EntryType::Directory
            || entry.path().ok()?.components().ne(wanted.components())
        {
            continue;
        }
        let limit = u64::try_from(MAX_README_BYTES).unwrap_or(u64::MAX);
        let mut bytes = Vec::new();
        (&mut entry).take(limit).read_to_end(&mut bytes).ok()?;
        return match String::from_utf8(bytes) {
            Ok(text) => Some(text),
            // Cut inside a character by the limit: keep what precedes it.
            Err(error) if error.utf8_error().error_len().is_none() => {
                let valid = error.utf8_error().valid_up_to();
                let mut bytes = error.into_bytes();
                bytes.truncate(valid);
                String::from_utf8(bytes).ok()
            }
            Err(_) => None,
        };
    }
    None
}

/// Returns whether `path` is `prefix` or lies under it, using only plain components.
fn is_under(path: &Path, prefix: &str) -> bool {
    let mut components = path.components();
    let first_is_prefix =
        matches!(components.next(), Some(Component::Normal(first)) if first == prefix);
    first_is_prefix && components.all(|component| matches!(component, Component::Normal(_)))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;

    /// Builds a gzipped tarball from (path, type, content) entries, writing raw header paths so
    /// that hostile paths can be expressed.
    pub(crate) fn tarball(entries: &[(&str, EntryType, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
        for (path, kind, content) in entries {
            let mut header = tar::Header::new_gnu();
            let name = &mut header.as_old_mut().name;
            name[..path.len()].copy_from_slice(path.as_bytes());
            header.set_entry_type(*kind);
            header.set_size(content.len() as u64);
            header.set_mode(0o644);
            if *kind == EntryType::Symlink {
                header.set_link_name("../../etc/passwd").unwrap();
            }
            header.set_cksum();
            builder.append(&header, *content).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    fn manifest(name: &str, version: &str) -> Vec<u8> {
        format!("[package]\nname = \"{name}\"\nversion = \"{version}\"\n").into_bytes()
    }

    #[test]
    fn accepts_a_cargo_package() {
        let file = tarball(&[
            (
                "Demo-1.0.0/Cargo.toml",
                EntryType::Regular,
                &manifest("Demo", "1.0.0"),
            ),
            (
                "Demo-1.0.0/src/lib.rs",
                EntryType::Regular,
                b"pub fn f() {}",
            ),
        ]);
        let manifest = validate(&file, "Demo", "1.0.0", 1 << 20, 2).unwrap();
        assert_eq!(manifest.edition(), None);
        assert_eq!(manifest.readme_file().as_deref(), Some("README.md"));
        assert_eq!(
            validate(&file, "Demo", "1.0.0", 1 << 20, 1),
            Err(TarballError::TooManyFiles(1))
        );
    }

    #[test]
    fn reads_what_the_manifest_says_and_the_readme() {
        let manifest = br#"[package]
name = "demo"
version = "1.0.0"
edition = "2021"
rust-version = "1.70"
authors = ["Ada <ada@example.com>"]
description = "A demo"
homepage = "https://example.com"
keywords = ["demo", 7]
license = "MIT OR Apache-2.0"
readme = "docs/INTRO.md"
repository = { workspace = true }
"#;
        let file = tarball(&[
            ("demo-1.0.0/Cargo.toml", EntryType::Regular, manifest),
            (
                "demo-1.0.0/docs/INTRO.md",
                EntryType::Regular,
                "# Démo".as_bytes(),
            ),
            ("demo-1.0.0/README.md", EntryType::Regular, b"not this one"),
            ("demo-1.0.0/bad.md", EntryType::Regular, b"\xff\xfe"),
        ]);
        let package = validate(&file, "demo", "1.0.0", 1 << 20, 10).unwrap();
        let metadata = package.version_metadata(123);
        assert_eq!(metadata.edition.as_deref(), Some("2021"));
        assert_eq!(metadata.rust_version.as_deref(), Some("1.70"));
        assert_eq!(metadata.authors, ["Ada <ada@example.com>"]);
        assert_eq!(metadata.keywords, ["demo"], "only strings are kept");
        assert_eq!(metadata.repository, None, "an unresolved table is no URL");
        assert_eq!(metadata.license.as_deref(), Some("MIT OR Apache-2.0"));
        assert_eq!(metadata.readme_file.as_deref(), Some("docs/INTRO.md"));
        assert_eq!(metadata.crate_size, Some(123));
        let readme_file = package.readme_file().unwrap();
        assert_eq!(
            readme_text(&file, "demo-1.0.0", &readme_file).as_deref(),
            Some("# Démo")
        );
        assert_eq!(readme_text(&file, "demo-1.0.0", "bad.md"), None);
        assert_eq!(readme_text(&file, "demo-1.0.0", "missing.md"), None);
        assert_eq!(
            readme_text(&file, "demo-1.0.0", "../demo-1.0.0/README.md"),
            None
        );
    }

    #[test]
    fn refuses_hostile_archives() {
        let good_manifest = manifest("demo", "1.0.0");
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"not gzip".to_vec(), "not a readable"),
            (
                tarball(&[
                    ("demo-1.0.0/Cargo.toml", EntryType::Regular, &good_manifest),
                    ("demo-1.0.0/../evil", EntryType::Regular, b"x"),
                ]),
                "outside",
            ),
            (
                tarball(&[("/etc/passwd", EntryType::Regular, b"x")]),
                "outside",
            ),
            (
                tarball(&[("other-1.0.0/Cargo.toml", EntryType::Regular, &good_manifest)]),
                "outside",
            ),
            (
                tarball(&[
                    ("demo-1.0.0/Cargo.toml", EntryType::Regular, &good_manifest),
                    ("demo-1.0.0/link", EntryType::Symlink, b""),
                ]),
                "not a regular file",
            ),
            (
                tarball(&[
                    ("demo-1.0.0/Cargo.toml", EntryType::Regular, &good_manifest),
                    ("demo-1.0.0/hard", EntryType::Link, b""),
                ]),
                "not a regular file",
            ),
            (
                tarball(&[("demo-1.0.0/src/lib.rs", EntryType::Regular, b"")]),
                "no `demo-1.0.0/Cargo.toml`",
            ),
            (
                tarball(&[(
                    "demo-1.0.0/Cargo.toml",
                    EntryType::Regular,
                    &manifest("demo", "2.0.0"),
                )]),
                "says `demo@2.0.0`",
            ),
            (
                tarball(&[(
                    "demo-1.0.0/Cargo.toml",
                    EntryType::Regular,
                    b"[package\nname=",
                )]),
                "Cargo.toml is invalid",
            ),
            (
                tarball(&[
                    ("demo-1.0.0/Cargo.toml", EntryType::Regular, &good_manifest),
                    ("demo-1.0.0/big", EntryType::Regular, &vec![0_u8; 4096]),
                ]),
                "unpacks to more than",
            ),
        ];
        for (file, expected) in cases {
            let error = validate(&file, "demo", "1.0.0", 2048, 100)
                .unwrap_err()
                .to_string();
            assert!(
                error.contains(expected),
                "expected {expected:?}, got {error}"
            );
        }
    }
}
