//! Checks a `.crate` file: a readable gzipped tarball whose entries all live under
//! `{name}-{version}/`, that holds no links or devices, unpacks within a size limit, and whose
//! `Cargo.toml` names the same crate and version as the metadata.
//!
//! The archive is read as a stream; nothing is written to disk.

use std::io::Read;
use std::path::{Component, Path};

use flate2::read::GzDecoder;
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
    package: Option<ManifestPackage>,
}

#[derive(Deserialize)]
struct ManifestPackage {
    name: String,
    version: Option<String>,
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

/// Checks a crate file for the crate `name` at `version` (both as in the metadata).
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
) -> Result<(), TarballError> {
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
    let package = parsed
        .package
        .ok_or_else(|| TarballError::InvalidManifest("no [package] table".to_owned()))?;
    let found_version = package.version.unwrap_or_else(|| "0.0.0".to_owned());
    if package.name != name || found_version != version {
        return Err(TarballError::ManifestMismatch {
            expected: format!("{name}@{version}"),
            found: format!("{}@{found_version}", package.name),
        });
    }
    Ok(())
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
        assert_eq!(validate(&file, "Demo", "1.0.0", 1 << 20, 2), Ok(()));
        assert_eq!(
            validate(&file, "Demo", "1.0.0", 1 << 20, 1),
            Err(TarballError::TooManyFiles(1))
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
