//! Structured `.crate` files: arbitrary tar entries (raw or long paths, PAX paths, every entry
//! type, hostile names) wrapped in valid gzip, so mutations reach the tar and path checks
//! instead of dying on a gzip checksum. Checks both directions: whatever is accepted satisfies
//! `assert_accepted_tarball`, and a plainly well-formed crate is accepted.
#![no_main]

use std::io::Write;

use arbitrary::Arbitrary;
use flate2::Compression;
use flate2::write::GzEncoder;
use ktra_fuzz::{MAX_FILES, MAX_UNPACKED_BYTES, NAME, VERSION, assert_accepted_tarball};
use ktra_publish::tarball::validate;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
enum EntryPath {
    /// `demo-1.0.0/Cargo.toml`.
    Manifest,
    /// `demo-1.0.0/{segments joined by /}`.
    Inside(Vec<String>),
    /// Raw bytes in the header's 100-byte name field (no validation by the writer).
    Raw(Vec<u8>),
    /// Raw bytes in the ustar prefix (155 bytes) and name fields.
    UstarSplit(Vec<u8>, Vec<u8>),
    /// A path given as a PAX `path` record, with a different raw name in the header.
    Pax(Vec<u8>, Vec<u8>),
    /// A path written through the builder, which uses a GNU long-name entry past 100 bytes.
    Long(String),
}

#[derive(Debug, Arbitrary)]
enum Kind {
    Regular,
    Directory,
    Symlink,
    HardLink,
    Continuous,
    Char,
    Block,
    Fifo,
    GnuSparse,
    Other(u8),
}

impl Kind {
    fn entry_type(&self) -> tar::EntryType {
        match self {
            Kind::Regular => tar::EntryType::Regular,
            Kind::Directory => tar::EntryType::Directory,
            Kind::Symlink => tar::EntryType::Symlink,
            Kind::HardLink => tar::EntryType::Link,
            Kind::Continuous => tar::EntryType::Continuous,
            Kind::Char => tar::EntryType::Char,
            Kind::Block => tar::EntryType::Block,
            Kind::Fifo => tar::EntryType::Fifo,
            Kind::GnuSparse => tar::EntryType::GNUSparse,
            Kind::Other(byte) => tar::EntryType::new(*byte),
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Content {
    /// A manifest naming `demo@1.0.0`.
    MatchingManifest,
    /// Arbitrary text (a manifest with other names, versions or syntax).
    Text(String),
    /// `n` zero bytes (up to 64 KiB), to reach the size limit cheaply.
    Zeros(u16),
    Bytes(Vec<u8>),
}

#[derive(Debug, Arbitrary)]
struct Entry {
    path: EntryPath,
    kind: Kind,
    content: Content,
    link_name: Option<String>,
    gnu: bool,
}

#[derive(Debug, Arbitrary)]
struct Crate {
    entries: Vec<Entry>,
    /// Leave out the end-of-archive blocks.
    unterminated: bool,
    /// Bytes after the gzip stream.
    trailer: Vec<u8>,
}

fn copy_raw(field: &mut [u8], bytes: &[u8]) {
    let length = bytes.len().min(field.len());
    field[..length].copy_from_slice(&bytes[..length]);
}

fn is_plain_segment(segment: &str) -> bool {
    !segment.is_empty()
        && segment != "."
        && segment != ".."
        && segment
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'.'))
}

/// Writes the archive; returns it and whether it is a plainly well-formed crate (only regular
/// files and directories at plain paths, a matching manifest, within the limits), which the
/// validator must accept.
fn build(input: &Crate) -> (Vec<u8>, bool) {
    let prefix = format!("{NAME}-{VERSION}");
    let mut well_formed = !input.entries.is_empty() && input.entries.len() <= MAX_FILES;
    let mut has_manifest = false;
    let mut total = 0_u64;
    let mut builder = tar::Builder::new(Vec::new());
    for entry in &input.entries {
        let content: Vec<u8> = match &entry.content {
            Content::MatchingManifest => {
                format!("[package]\nname = \"{NAME}\"\nversion = \"{VERSION}\"\n").into_bytes()
            }
            Content::Text(text) => text.clone().into_bytes(),
            Content::Zeros(count) => vec![0; usize::from(*count)],
            Content::Bytes(bytes) => bytes.clone(),
        };
        total += 512 + content.len().div_ceil(512) as u64 * 512;
        let mut header = if entry.gnu {
            tar::Header::new_gnu()
        } else {
            tar::Header::new_ustar()
        };
        header.set_entry_type(entry.kind.entry_type());
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        if let Some(link_name) = &entry.link_name {
            copy_raw(&mut header.as_old_mut().linkname, link_name.as_bytes());
        }
        let plain_kind = matches!(entry.kind, Kind::Regular | Kind::Directory);
        let dir_has_content = matches!(entry.kind, Kind::Directory) && !content.is_empty();
        let result = match &entry.path {
            EntryPath::Manifest | EntryPath::Inside(_) => {
                let path = match &entry.path {
                    EntryPath::Inside(segments) => {
                        let plain = !segments.is_empty()
                            && segments.iter().all(|segment| is_plain_segment(segment))
                            && segments.join("/") != "Cargo.toml";
                        well_formed &= plain && plain_kind && !dir_has_content;
                        format!("{prefix}/{}", segments.join("/"))
                    }
                    _ => {
                        let matching = matches!(entry.content, Content::MatchingManifest);
                        well_formed &= matches!(entry.kind, Kind::Regular) && matching;
                        has_manifest |= matching;
                        format!("{prefix}/Cargo.toml")
                    }
                };
                builder.append_data(&mut header, path, content.as_slice())
            }
            EntryPath::Raw(name) => {
                well_formed = false;
                copy_raw(&mut header.as_old_mut().name, name);
                header.set_cksum();
                builder.append(&header, content.as_slice())
            }
            EntryPath::UstarSplit(prefix_bytes, name) => {
                well_formed = false;
                if let Some(ustar) = header.as_ustar_mut() {
                    copy_raw(&mut ustar.prefix, prefix_bytes);
                }
                copy_raw(&mut header.as_old_mut().name, name);
                header.set_cksum();
                builder.append(&header, content.as_slice())
            }
            EntryPath::Pax(pax_path, name) => {
                well_formed = false;
                builder
                    .append_pax_extensions([("path", pax_path.as_slice())])
                    .and_then(|()| {
                        copy_raw(&mut header.as_old_mut().name, name);
                        header.set_cksum();
                        builder.append(&header, content.as_slice())
                    })
            }
            EntryPath::Long(path) => {
                well_formed = false;
                builder.append_data(&mut header, path, content.as_slice())
            }
        };
        if result.is_err() {
            // The writer refused (e.g. `..` in a path): the archive is cut short here.
            well_formed = false;
            break;
        }
    }
    well_formed &= has_manifest && total + 1024 <= MAX_UNPACKED_BYTES;
    let tar_bytes = if input.unterminated {
        well_formed = false;
        builder.get_ref().clone()
    } else {
        builder.into_inner().expect("writing to memory cannot fail")
    };
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder
        .write_all(&tar_bytes)
        .expect("writing to memory cannot fail");
    let mut crate_file = encoder.finish().expect("writing to memory cannot fail");
    crate_file.extend_from_slice(&input.trailer);
    (crate_file, well_formed)
}

fuzz_target!(|input: Crate| {
    let (crate_file, well_formed) = build(&input);
    let result = validate(&crate_file, NAME, VERSION, MAX_UNPACKED_BYTES, MAX_FILES);
    if well_formed {
        assert!(result.is_ok(), "refused a well-formed crate: {result:?}");
    }
    if result.is_ok() {
        assert_accepted_tarball(&crate_file, NAME, VERSION, MAX_UNPACKED_BYTES, MAX_FILES);
    }
});
