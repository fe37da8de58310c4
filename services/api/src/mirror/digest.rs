//! SHA-256 digests of upstream bytes: crate files are checked against the index's checksum
//! with them, and index files get their `ETag` from them.

use bytes::Bytes;
use sha2::{Digest, Sha256};

/// Hashes off the async workers (crate files run to megabytes). Always a full digest: if the
/// blocking task cannot run (the runtime is shutting down), the hash is computed here.
pub(crate) async fn sha256(bytes: Bytes) -> [u8; 32] {
    let copy = bytes.clone();
    let digest = ktra_core::task::spawn_blocking(move || Sha256::digest(&copy))
        .await
        .unwrap_or_else(|_| Sha256::digest(&bytes));
    digest.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn digests_are_whole() {
        let digest = sha256(Bytes::from_static(b"abc")).await;
        assert_eq!(
            hex::encode(digest),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
