//! Arbitrary bytes as a whole publish body (`u32` length, JSON, `u32` length, `.crate`),
//! through the same `check` the API runs. Checks that the split honours the declared lengths
//! exactly, that `check` refuses exactly what the split, the metadata rules or the tarball
//! validator refuse, and that an accepted publish is consistent with its bytes.
#![no_main]

use bytes::Bytes;
use ktra_core::index::IndexLine;
use ktra_fuzz::{LIMITS, assert_accepted_tarball};
use ktra_publish::PublishError;
use ktra_publish::metadata::PublishMetadata;
use ktra_publish::wire::{self, WireError};
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

fn declared_length(body: &[u8], at: usize) -> Option<usize> {
    let bytes = body.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?) as usize)
}

fuzz_target!(|body: &[u8]| {
    let split = wire::split(Bytes::copy_from_slice(body));
    // The wire format, re-derived from the raw bytes.
    let metadata_len = declared_length(body, 0);
    let crate_len = metadata_len.and_then(|len| declared_length(body, 4 + len));
    match (&split, metadata_len, crate_len) {
        (Ok(parts), Some(metadata_len), Some(crate_len)) => {
            assert_eq!(parts.metadata.len(), metadata_len);
            assert_eq!(parts.crate_file.len(), crate_len);
            assert_eq!(8 + metadata_len + crate_len, body.len());
            assert_eq!(&parts.metadata[..], &body[4..4 + metadata_len]);
            assert_eq!(&parts.crate_file[..], &body[8 + metadata_len..]);
        }
        (Ok(_), _, _) => panic!("split a body whose lengths do not fit"),
        (Err(WireError::TrailingBytes(extra)), Some(metadata_len), Some(crate_len)) => {
            assert!(*extra > 0);
            assert_eq!(8 + metadata_len + crate_len + extra, body.len());
        }
        (Err(WireError::TrailingBytes(_)), _, _) => panic!("trailing bytes after a truncation"),
        (Err(WireError::Truncated(_)), Some(metadata_len), Some(crate_len)) => {
            assert!(
                8 + metadata_len + crate_len > body.len(),
                "refused a complete body"
            );
        }
        (Err(WireError::Truncated(_)), _, _) => {}
    }

    let checked = ktra_publish::check(Bytes::copy_from_slice(body), &LIMITS);
    let parts = match (checked, split) {
        (Err(PublishError::Wire(error)), split) => {
            assert_eq!(split.err(), Some(error), "check and split disagree");
            return;
        }
        (_, Err(error)) => panic!("check went past a body split refuses: {error}"),
        (Err(_), Ok(_)) => return,
        (Ok(checked), Ok(parts)) => (checked, parts),
    };
    let (checked, parts) = parts;
    // Accepted: every part is what the bytes say, and each check accepts on its own.
    assert_eq!(checked.crate_file, parts.crate_file);
    assert_eq!(
        checked.cksum,
        hex::encode(Sha256::digest(&parts.crate_file))
    );
    let metadata = PublishMetadata::parse(&parts.metadata).expect("accepted, so it parses");
    assert_eq!(metadata.name, checked.metadata.name);
    assert_eq!(
        metadata.validate(&LIMITS),
        Ok((checked.krate.clone(), checked.version.clone()))
    );
    assert_eq!(
        checked.version.to_string(),
        checked.metadata.vers,
        "accepted a version that is not in canonical form"
    );
    assert_accepted_tarball(
        &checked.crate_file,
        &checked.metadata.name,
        &checked.metadata.vers,
        LIMITS.max_unpacked_bytes,
        LIMITS.max_files,
    );
    // The index line written for it reads back as the same line.
    let published_at = chrono_epoch();
    let line = checked
        .metadata
        .to_index_line(checked.cksum.clone(), published_at);
    let json = line.to_json();
    let read_back: IndexLine = serde_json::from_str(&json).expect("index lines read back");
    assert_eq!(read_back, line);
});

fn chrono_epoch() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::UNIX_EPOCH
}
