//! Cargo's publish body: a little-endian `u32` length, the JSON metadata, another `u32`
//! length, and the `.crate` file.

use bytes::Bytes;

/// Why a publish body could not be split.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The body ends inside a length field or a declared part.
    #[error("the publish body ends early: {0}")]
    Truncated(&'static str),
    /// Bytes follow the crate file.
    #[error("the publish body has {0} unexpected bytes after the crate file")]
    TrailingBytes(usize),
}

/// The two parts of a publish body.
#[derive(Debug, Clone)]
pub struct PublishParts {
    /// The JSON metadata.
    pub metadata: Bytes,
    /// The `.crate` file (a gzipped tarball).
    pub crate_file: Bytes,
}

fn take_length(body: &mut Bytes, what: &'static str) -> Result<usize, WireError> {
    if body.len() < 4 {
        return Err(WireError::Truncated(what));
    }
    let prefix = body.split_to(4);
    let length = u32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
    // A u32 always fits in usize on the 32- and 64-bit targets this service builds for.
    Ok(usize::try_from(length).unwrap_or(usize::MAX))
}

/// Splits a publish body without copying.
///
/// # Errors
///
/// Fails when a declared length runs past the end of the body or bytes are left over.
pub fn split(mut body: Bytes) -> Result<PublishParts, WireError> {
    let metadata_len = take_length(&mut body, "missing the metadata length")?;
    if body.len() < metadata_len {
        return Err(WireError::Truncated(
            "the metadata is shorter than its declared length",
        ));
    }
    let metadata = body.split_to(metadata_len);
    let crate_len = take_length(&mut body, "missing the crate file length")?;
    if body.len() < crate_len {
        return Err(WireError::Truncated(
            "the crate file is shorter than its declared length",
        ));
    }
    let crate_file = body.split_to(crate_len);
    if !body.is_empty() {
        return Err(WireError::TrailingBytes(body.len()));
    }
    Ok(PublishParts {
        metadata,
        crate_file,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(metadata: &[u8], crate_file: &[u8]) -> Vec<u8> {
        let metadata: serde_json::Value = serde_json::from_slice(metadata).unwrap();
        ktra_testing::fixtures::CrateFixture::body_from(&metadata, crate_file)
    }

    #[test]
    fn round_trips() {
        let body = encode(b"{}", b"crate");
        let parts = split(Bytes::from(body)).unwrap();
        assert_eq!(&parts.metadata[..], b"{}");
        assert_eq!(&parts.crate_file[..], b"crate");
    }

    #[test]
    fn refuses_lengths_past_the_end_and_leftovers() {
        assert_eq!(
            split(Bytes::from_static(&[1, 0])).unwrap_err(),
            WireError::Truncated("missing the metadata length")
        );
        let mut huge = u32::MAX.to_le_bytes().to_vec();
        huge.extend_from_slice(b"{}");
        assert!(matches!(
            split(Bytes::from(huge)),
            Err(WireError::Truncated(_))
        ));
        let mut body = encode(b"{}", b"crate");
        body.truncate(body.len() - 1);
        assert!(matches!(
            split(Bytes::from(body)),
            Err(WireError::Truncated(_))
        ));
        let mut body = encode(b"{}", b"crate");
        body.push(0);
        assert_eq!(
            split(Bytes::from(body)).unwrap_err(),
            WireError::TrailingBytes(1)
        );
        let body = encode(b"{}", b"")[..6].to_vec();
        assert_eq!(
            split(Bytes::from(body)).unwrap_err(),
            WireError::Truncated("missing the crate file length")
        );
    }
}
