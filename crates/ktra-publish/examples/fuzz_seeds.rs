//! Writes the seed corpus of the fuzz targets (`fuzz/corpus/`), and checks that each seed gets
//! the verdict it was made for, so the seeds keep covering both accepted and refused paths.
//!
//! `cargo run -p ktra-publish --example fuzz_seeds -- fuzz/corpus` (or `make fuzz-seeds`).
//! The output is deterministic: gzip and tar headers carry no timestamps. The test
//! `tests/fuzz_seeds.rs` regenerates it and fails when the committed corpus is stale.

use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use ktra_publish::PublishError;
use ktra_publish::tarball::{self, TarballError};
use ktra_publish::wire::WireError;
use ktra_testing::fixtures::CrateFixture;
use tar::EntryType;

/// The crate the `.crate`-only targets expect (`fuzz/src/lib.rs` uses the same).
const NAME: &str = "demo";
const VERSION: &str = "1.0.0";
const MAX_UNPACKED_BYTES: u64 = 1 << 20;
const MAX_FILES: usize = 64;

/// What a seed is made to provoke: a predicate on the error it must get.
type Expected<E> = fn(&E) -> bool;

/// A seed: its file name, its bytes, and what it must get.
type Seed<E> = (&'static str, Vec<u8>, E);

/// How a tar entry's path is written.
enum PathEncoding {
    /// Through the builder (GNU long-name entry when longer than 100 bytes).
    Builder,
    /// Raw bytes in the header's name field, as a hostile packer would.
    Raw,
    /// A PAX `path` record, with a harmless name in the header itself.
    Pax,
}

fn tarball(entries: &[(&str, EntryType, &[u8], PathEncoding)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::best()));
    for (path, kind, content, encoding) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(*kind);
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        if matches!(kind, EntryType::Symlink | EntryType::Link) {
            header
                .set_link_name("../../../etc/passwd")
                .expect("a short relative link name");
        }
        match encoding {
            PathEncoding::Builder => builder
                .append_data(&mut header, path, *content)
                .expect("writing to memory"),
            PathEncoding::Raw => {
                let name = &mut header.as_old_mut().name;
                name[..path.len()].copy_from_slice(path.as_bytes());
                header.set_cksum();
                builder
                    .append(&header, *content)
                    .expect("writing to memory");
            }
            PathEncoding::Pax => {
                builder
                    .append_pax_extensions([("path", path.as_bytes())])
                    .expect("writing to memory");
                header
                    .set_path("demo-1.0.0/harmless")
                    .expect("a plain path");
                header.set_cksum();
                builder
                    .append(&header, *content)
                    .expect("writing to memory");
            }
        }
    }
    let mut encoder = builder.into_inner().expect("writing to memory");
    encoder.flush().expect("writing to memory");
    encoder.finish().expect("writing to memory")
}

fn manifest(name: &str, version: &str) -> Vec<u8> {
    format!(
        "[package]\nedition = \"2021\"\nname = \"{name}\"\nversion = \"{version}\"\n\
         description = \"a small crate\"\nlicense = \"MIT\"\n\n[dependencies.serde]\nversion = \"1\"\n"
    )
    .into_bytes()
}

/// The files `cargo package` puts in a small library crate.
fn cargo_package_files() -> Vec<(String, Vec<u8>)> {
    vec![
        (
            "Cargo.toml.orig".to_owned(),
            b"[package]\nname = \"demo\"\nversion = \"1.0.0\"\nedition = \"2021\"\n".to_vec(),
        ),
        (
            ".cargo_vcs_info.json".to_owned(),
            b"{\n  \"git\": {\n    \"sha1\": \"0000000000000000000000000000000000000000\"\n  },\n  \"path_in_vcs\": \"\"\n}".to_vec(),
        ),
        (
            "src/lib.rs".to_owned(),
            b"//! A demo.\n\npub fn add(a: u32, b: u32) -> u32 {\n    a + b\n}\n".to_vec(),
        ),
        ("README.md".to_owned(), b"# demo\n".to_vec()),
    ]
}

fn fixture() -> CrateFixture {
    let mut fixture = CrateFixture::new(NAME, VERSION).dep("serde", "^1.0.100");
    fixture.files = cargo_package_files();
    fixture
        .features
        .insert("std".to_owned(), vec!["serde/std".to_owned()]);
    fixture
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes).expect("writing a seed");
}

fn publish_body_seeds(dir: &Path) {
    let limits = ktra_publish::PublishLimits {
        max_unpacked_bytes: MAX_UNPACKED_BYTES,
        max_files: MAX_FILES,
        ..ktra_publish::PublishLimits::DEFAULT
    };
    let check = |body: &[u8]| ktra_publish::check(Bytes::copy_from_slice(body), &limits);
    let valid = fixture().body();
    assert!(check(&valid).is_ok(), "the valid seed must pass");
    write(dir, "valid", &valid);

    let minimal = CrateFixture::new("a", "0.0.1-alpha.1+build.5").body();
    assert!(check(&minimal).is_ok(), "the minimal seed must pass");
    write(dir, "valid-minimal", &minimal);

    let seeds: Vec<Seed<Expected<PublishError>>> = vec![
        ("empty", Vec::new(), |error| {
            matches!(error, PublishError::Wire(WireError::Truncated(_)))
        }),
        ("truncated-length", valid[..2].to_vec(), |error| {
            matches!(error, PublishError::Wire(WireError::Truncated(_)))
        }),
        (
            "truncated-crate",
            valid[..valid.len() - 1].to_vec(),
            |error| matches!(error, PublishError::Wire(WireError::Truncated(_))),
        ),
        (
            "huge-metadata-length",
            [&u32::MAX.to_le_bytes()[..], b"{}"].concat(),
            |error| matches!(error, PublishError::Wire(WireError::Truncated(_))),
        ),
        (
            "huge-crate-length",
            [
                &2_u32.to_le_bytes()[..],
                b"{}",
                &u32::MAX.to_le_bytes(),
                b"\x1f\x8b",
            ]
            .concat(),
            |error| matches!(error, PublishError::Wire(WireError::Truncated(_))),
        ),
        ("trailing-bytes", [&valid[..], b"\0"].concat(), |error| {
            matches!(error, PublishError::Wire(WireError::TrailingBytes(1)))
        }),
        (
            "bad-json",
            CrateFixture::body_from(&serde_json::json!({"name": "demo"}), b""),
            |error| matches!(error, PublishError::Metadata(_)),
        ),
        (
            "bad-metadata",
            CrateFixture::body_from(
                &serde_json::json!({"name": "demo", "vers": "1.0.0",
                    "deps": [{"name": "x", "version_req": "1", "kind": "weird"}],
                    "features": {"-bad": []}, "rust_version": "1.x"}),
                b"",
            ),
            |error| matches!(error, PublishError::Metadata(_)),
        ),
        (
            "manifest-mismatch",
            {
                let mut other = fixture();
                other.manifest_override =
                    Some("[package]\nname = \"demo\"\nversion = \"2.0.0\"\n".to_owned());
                other.body()
            },
            |error| {
                matches!(
                    error,
                    PublishError::Tarball(TarballError::ManifestMismatch { .. })
                )
            },
        ),
        (
            "traversal",
            CrateFixture::body_from(
                &fixture().metadata(),
                &tarball(&[
                    (
                        "demo-1.0.0/Cargo.toml",
                        EntryType::Regular,
                        &manifest(NAME, VERSION),
                        PathEncoding::Builder,
                    ),
                    (
                        "demo-1.0.0/../../evil",
                        EntryType::Regular,
                        b"x",
                        PathEncoding::Raw,
                    ),
                ]),
            ),
            |error| {
                matches!(
                    error,
                    PublishError::Tarball(TarballError::OutsidePrefix { .. })
                )
            },
        ),
    ];
    for (name, body, expected) in seeds {
        let error = check(&body).expect_err(name);
        assert!(expected(&error), "{name}: unexpected {error}");
        write(dir, name, &body);
    }
}

fn crate_tarball_seeds(dir: &Path) {
    let good_manifest = manifest(NAME, VERSION);
    let manifest_entry = (
        "demo-1.0.0/Cargo.toml",
        EntryType::Regular,
        good_manifest.as_slice(),
        PathEncoding::Builder,
    );
    let long_path = format!("demo-1.0.0/{}/lib.rs", "nested".repeat(30));
    let zeros = vec![0_u8; 2 * MAX_UNPACKED_BYTES as usize];
    let seeds: Vec<Seed<Option<Expected<TarballError>>>> = vec![
        ("valid.crate", fixture().crate_file(), None),
        (
            "long-path.crate",
            tarball(&[
                (
                    "demo-1.0.0/Cargo.toml",
                    EntryType::Regular,
                    &good_manifest,
                    PathEncoding::Builder,
                ),
                (
                    &long_path,
                    EntryType::Regular,
                    b"pub fn f() {}",
                    PathEncoding::Builder,
                ),
                (
                    "demo-1.0.0/src",
                    EntryType::Directory,
                    b"",
                    PathEncoding::Builder,
                ),
            ]),
            None,
        ),
        (
            "traversal.crate",
            tarball(&[
                (
                    "demo-1.0.0/Cargo.toml",
                    EntryType::Regular,
                    &good_manifest,
                    PathEncoding::Builder,
                ),
                (
                    "demo-1.0.0/../evil",
                    EntryType::Regular,
                    b"x",
                    PathEncoding::Raw,
                ),
            ]),
            Some(|error| matches!(error, TarballError::OutsidePrefix { .. })),
        ),
        (
            "absolute.crate",
            tarball(&[("/etc/passwd", EntryType::Regular, b"x", PathEncoding::Raw)]),
            Some(|error| matches!(error, TarballError::OutsidePrefix { .. })),
        ),
        (
            "pax-traversal.crate",
            tarball(&[
                (
                    "demo-1.0.0/Cargo.toml",
                    EntryType::Regular,
                    &good_manifest,
                    PathEncoding::Builder,
                ),
                (
                    "demo-1.0.0/../../evil",
                    EntryType::Regular,
                    b"x",
                    PathEncoding::Pax,
                ),
            ]),
            Some(|error| matches!(error, TarballError::OutsidePrefix { .. })),
        ),
        (
            "symlink.crate",
            tarball(&[
                (
                    "demo-1.0.0/Cargo.toml",
                    EntryType::Regular,
                    &good_manifest,
                    PathEncoding::Builder,
                ),
                (
                    "demo-1.0.0/link",
                    EntryType::Symlink,
                    b"",
                    PathEncoding::Builder,
                ),
            ]),
            Some(|error| matches!(error, TarballError::SpecialEntry(_))),
        ),
        (
            "hardlink.crate",
            tarball(&[
                (
                    "demo-1.0.0/Cargo.toml",
                    EntryType::Regular,
                    &good_manifest,
                    PathEncoding::Builder,
                ),
                (
                    "demo-1.0.0/hard",
                    EntryType::Link,
                    b"",
                    PathEncoding::Builder,
                ),
            ]),
            Some(|error| matches!(error, TarballError::SpecialEntry(_))),
        ),
        (
            "no-manifest.crate",
            tarball(&[(
                "demo-1.0.0/src/lib.rs",
                EntryType::Regular,
                b"",
                PathEncoding::Builder,
            )]),
            Some(|error| matches!(error, TarballError::MissingManifest(_))),
        ),
        (
            "bomb.crate",
            tarball(&[
                manifest_entry,
                (
                    "demo-1.0.0/zeros",
                    EntryType::Regular,
                    &zeros,
                    PathEncoding::Builder,
                ),
            ]),
            Some(|error| matches!(error, TarballError::TooLarge(_))),
        ),
        (
            "not-gzip.crate",
            b"PK\x03\x04 not a tarball".to_vec(),
            Some(|error| matches!(error, TarballError::Unreadable(_))),
        ),
    ];
    for (name, crate_file, expected) in seeds {
        let result = tarball::validate(&crate_file, NAME, VERSION, MAX_UNPACKED_BYTES, MAX_FILES);
        match expected {
            None => assert!(result.is_ok(), "{name} must pass: {result:?}"),
            Some(expected) => {
                let error = result.expect_err(name);
                assert!(expected(&error), "{name}: unexpected {error}");
            }
        }
        write(dir, name, &crate_file);
    }
}

/// Writes every target's seeds under `root/TARGET/`; returns the directories written.
pub(crate) fn write_corpus(root: &Path) -> Vec<PathBuf> {
    let mut written = Vec::new();
    for (target, seeds) in [
        ("publish_body", publish_body_seeds as fn(&Path)),
        ("crate_tarball", crate_tarball_seeds),
    ] {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).expect("creating the corpus directory");
        seeds(&dir);
        written.push(dir);
    }
    written
}

fn main() {
    let root: PathBuf = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("fuzz/corpus"), PathBuf::from);
    for dir in write_corpus(&root) {
        println!("wrote {}", dir.display());
    }
}
