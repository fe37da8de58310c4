//! The mirror's copy of one upstream index file, as one object in the blob store.
//!
//! An entry is a JSON header line (when it was fetched, the upstream's validators, our ETag,
//! whether the upstream had the file) followed by the file's bytes. Keeping both in one object
//! means every replica sees them change together: blob stores replace an object in one step.

use bytes::{BufMut, Bytes, BytesMut};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What the mirror knows about a cached index file besides its bytes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct EntryHeader {
    /// Whether the upstream has the file (false: a remembered 404).
    pub(crate) found: bool,
    /// When the upstream last confirmed this content, Unix seconds.
    pub(crate) fetched_at: i64,
    /// The upstream's `ETag`, for conditional requests.
    pub(crate) upstream_etag: Option<String>,
    /// The upstream's `Last-Modified`, for conditional requests and for cargo.
    pub(crate) upstream_last_modified: Option<String>,
    /// Our `ETag` for cargo (quoted), a hash of the content.
    pub(crate) etag: String,
}

/// A cached index file.
#[derive(Debug, Clone)]
pub struct IndexEntry {
    pub(crate) header: EntryHeader,
    /// The file's bytes (empty when the upstream has no such file).
    pub content: Bytes,
}

impl IndexEntry {
    /// Returns the entry of a file the upstream does not have, as of `fetched_at`.
    pub(crate) fn not_found(fetched_at: i64) -> Self {
        Self {
            header: EntryHeader {
                found: false,
                fetched_at,
                upstream_etag: None,
                upstream_last_modified: None,
                etag: String::new(),
            },
            content: Bytes::new(),
        }
    }

    /// Returns the entry's `ETag`, quoted.
    pub fn etag(&self) -> &str {
        &self.header.etag
    }

    /// Returns whether the upstream has the file.
    pub fn found(&self) -> bool {
        self.header.found
    }

    /// Returns the `Last-Modified` cargo is told: the upstream's, or when we fetched the file.
    pub fn last_modified(&self) -> DateTime<Utc> {
        self.header
            .upstream_last_modified
            .as_deref()
            .and_then(|text| httpdate::parse_http_date(text).ok())
            .map(DateTime::<Utc>::from)
            .or_else(|| DateTime::from_timestamp(self.header.fetched_at, 0))
            .unwrap_or_default()
    }

    /// Returns how many seconds ago the upstream last confirmed the entry.
    pub fn age_secs(&self, now: DateTime<Utc>) -> u64 {
        u64::try_from(now.timestamp() - self.header.fetched_at).unwrap_or(0)
    }

    /// Serialises the entry as stored.
    pub(crate) fn encode(&self) -> Bytes {
        // A struct of strings, numbers and booleans always serialises.
        let header = serde_json::to_vec(&self.header).unwrap_or_default();
        let mut bytes = BytesMut::with_capacity(header.len() + 1 + self.content.len());
        bytes.put_slice(&header);
        bytes.put_u8(b'\n');
        bytes.put_slice(&self.content);
        bytes.freeze()
    }

    /// Reads a stored entry; `None` when it is not one (it is then fetched again).
    pub(crate) fn decode(bytes: &Bytes) -> Option<Self> {
        let split = bytes.iter().position(|&byte| byte == b'\n')?;
        let header = serde_json::from_slice(&bytes[..split]).ok()?;
        Some(Self {
            header,
            content: bytes.slice(split + 1..),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip() {
        let entry = IndexEntry {
            header: EntryHeader {
                found: true,
                fetched_at: 1_700_000_000,
                upstream_etag: Some("\"u\"".to_owned()),
                upstream_last_modified: Some("Tue, 14 Nov 2023 22:13:20 GMT".to_owned()),
                etag: "\"ours\"".to_owned(),
            },
            content: Bytes::from_static(b"{\"a\":1}\n{\"b\":2}\n"),
        };
        let decoded = IndexEntry::decode(&entry.encode()).unwrap();
        assert_eq!(decoded.content, entry.content);
        assert_eq!(decoded.etag(), "\"ours\"");
        assert_eq!(decoded.last_modified().timestamp(), 1_700_000_000);
        let later = DateTime::from_timestamp(1_700_000_042, 0).unwrap();
        assert_eq!(decoded.age_secs(later), 42);
        assert!(IndexEntry::decode(&Bytes::from_static(b"garbage")).is_none());
    }
}
