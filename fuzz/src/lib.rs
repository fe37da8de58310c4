//! What the fuzz targets check beyond "does not panic": the invariants every input the publish
//! checks accept must satisfy, re-derived here from the raw bytes.

use std::io::Read;
use std::path::{Component, Path};

/// The crate every `.crate`-only target expects (the seed corpus uses the same).
pub const NAME: &str = "demo";
/// Its version.
pub const VERSION: &str = "1.0.0";
/// Small limits, so that an iteration stays fast and the limits themselves get exercised.
pub const MAX_UNPACKED_BYTES: u64 = 1 << 20;
/// See [`MAX_UNPACKED_BYTES`].
pub const MAX_FILES: usize = 64;

/// The publish limits the `publish_body` target checks with.
pub const LIMITS: ktra_publish::PublishLimits = ktra_publish::PublishLimits {
    max_unpacked_bytes: MAX_UNPACKED_BYTES,
    max_files: MAX_FILES,
    ..ktra_publish::PublishLimits::DEFAULT
};

/// Panics unless `crate_file`, which the validator accepted for `name@version`, really is a
/// gzipped tarball whose every entry is a regular file or directory strictly inside
/// `{name}-{version}/` (plain components only: no `..`, no root, no `.`), with at most
/// `max_files` entries and `max_unpacked_bytes` of content, and whose `Cargo.toml` names the
/// same crate and version.
pub fn assert_accepted_tarball(
    crate_file: &[u8],
    name: &str,
    version: &str,
    max_unpacked_bytes: u64,
    max_files: usize,
) {
    let prefix = format!("{name}-{version}");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(crate_file));
    let mut entries = 0_usize;
    let mut content_bytes = 0_u64;
    let mut manifest = None;
    for entry in archive.entries().expect("accepted, so a tar archive") {
        let mut entry = entry.expect("accepted, so every entry reads");
        entries += 1;
        let path = entry
            .path()
            .expect("accepted, so paths decode")
            .into_owned();
        let mut components = path.components();
        assert_eq!(
            components.next(),
            Some(Component::Normal(prefix.as_ref())),
            "accepted an entry outside {prefix}/: {path:?}"
        );
        assert!(
            components.all(|component| matches!(component, Component::Normal(_))),
            "accepted a path with a non-plain component: {path:?}"
        );
        let kind = entry.header().entry_type();
        assert!(
            matches!(
                kind,
                tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::Directory
            ),
            "accepted {path:?} of type {kind:?}"
        );
        let mut content = Vec::new();
        entry
            .read_to_end(&mut content)
            .expect("accepted, so every entry reads");
        content_bytes += content.len() as u64;
        if path == Path::new(&prefix).join("Cargo.toml") && kind != tar::EntryType::Directory {
            manifest = Some(content);
        }
    }
    assert!(entries > 0, "accepted an empty archive");
    assert!(
        entries <= max_files,
        "accepted {entries} > {max_files} entries"
    );
    assert!(
        content_bytes <= max_unpacked_bytes,
        "accepted {content_bytes} > {max_unpacked_bytes} bytes"
    );
    let manifest = manifest.expect("accepted without a Cargo.toml");
    let manifest = String::from_utf8(manifest).expect("accepted a non-UTF-8 Cargo.toml");
    let table: toml::Table = toml::from_str(&manifest).expect("accepted an unparsable Cargo.toml");
    let package = table
        .get("package")
        .and_then(toml::Value::as_table)
        .expect("accepted without [package]");
    assert_eq!(
        package.get("name").and_then(toml::Value::as_str),
        Some(name),
        "accepted another name"
    );
    let found_version = package
        .get("version")
        .map_or(Some("0.0.0"), toml::Value::as_str);
    assert_eq!(found_version, Some(version), "accepted another version");
}

/// Returns whether `crate_file` gunzips to at least `at_least` bytes (reading no further).
pub fn unpacked_len_at_least(crate_file: &[u8], at_least: u64) -> bool {
    let mut decoder = flate2::read::GzDecoder::new(crate_file).take(at_least);
    let mut read = 0_u64;
    let mut buffer = [0_u8; 8192];
    loop {
        match decoder.read(&mut buffer) {
            Ok(0) | Err(_) => return read >= at_least,
            Ok(count) => read += count as u64,
        }
    }
}

/// Counts the entries tar yields before its first error, stopping at `at_most`.
pub fn readable_entries(crate_file: &[u8], at_most: usize) -> usize {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(crate_file));
    let Ok(entries) = archive.entries() else {
        return 0;
    };
    entries.take(at_most).take_while(Result::is_ok).count()
}
