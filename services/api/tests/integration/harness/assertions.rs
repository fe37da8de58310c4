//! Assertions on what the registry answered and stored.

use reqwest::StatusCode;
use serde_json::Value;

use super::{Accepted, Reply, TestApp};

impl TestApp {
    /// Asserts that every accepted version (crate name to versions) has exactly one index line
    /// and downloads with that line's checksum.
    pub(crate) async fn assert_intact(&self, accepted: &Accepted) {
        for (name, versions) in accepted {
            let lines = self.index_lines(name).await.unwrap_or_default();
            let listed: Vec<&str> = lines
                .iter()
                .map(|line| line["vers"].as_str().unwrap())
                .collect();
            let unique: std::collections::BTreeSet<&str> = listed.iter().copied().collect();
            assert_eq!(
                listed.len(),
                unique.len(),
                "{name} has duplicate lines: {listed:?}"
            );
            for version in versions {
                let line = lines
                    .iter()
                    .find(|line| line["vers"] == version.as_str())
                    .unwrap_or_else(|| panic!("{name}@{version} was acknowledged but is missing"));
                let bytes = self
                    .client
                    .get(self.url(&format!("/dl/{name}/{version}/download")))
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap();
                assert_eq!(
                    line["cksum"],
                    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)),
                    "{name}@{version}"
                );
            }
        }
    }

    /// Asserts that a crate has no record, no index file and that the blob store holds exactly
    /// `expected_blobs` files.
    pub(crate) async fn assert_not_stored(&self, name: &str, expected_blobs: usize) {
        let krate = ktra_core::name::CrateId::new(name).unwrap();
        assert!(
            self.store.crate_summary(&krate).await.unwrap().is_none(),
            "crate {name} was stored"
        );
        assert!(
            self.index_lines(name).await.is_none(),
            "index file of {name} exists"
        );
        assert_eq!(self.blob_keys().await.len(), expected_blobs, "blob files");
    }
}

/// Asserts cargo's error format with a message containing `needle`.
pub(crate) fn assert_error(status: StatusCode, body: &Value, expected: StatusCode, needle: &str) {
    assert_eq!(status, expected, "{body}");
    let detail = body["errors"][0]["detail"]
        .as_str()
        .unwrap_or_else(|| panic!("not cargo's error format: {body}"));
    assert!(
        detail.contains(needle),
        "expected {needle:?} in the error, got {detail:?}"
    );
    assert_eq!(body["errors"].as_array().unwrap().len(), 1);
}

/// Asserts that `reply` is a 200, showing its body otherwise.
pub(crate) fn assert_ok(reply: &Reply) {
    let (status, body) = reply;
    assert_eq!(*status, StatusCode::OK, "{body}");
}

/// Asserts that `reply` refuses with `expected` in cargo's error format, its message
/// containing `needle`.
pub(crate) fn assert_refused(reply: &Reply, expected: StatusCode, needle: &str) {
    assert_error(reply.0, &reply.1, expected, needle);
}

/// Asserts the caller was refused with 403 (authenticated, not allowed), the detail containing
/// `needle`.
pub(crate) fn assert_forbidden(reply: &Reply, needle: &str) {
    assert_refused(reply, StatusCode::FORBIDDEN, needle);
}
