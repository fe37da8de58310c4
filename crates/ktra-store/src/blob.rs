//! The blob store for `.crate` files, over the `object_store` crate.
//!
//! Crate files are immutable: each publish writes a new key with a create-only condition, so a
//! file is never overwritten. The key carries a random part, so a publish that loses a race (or
//! fails after writing its file) can delete its own file without touching anyone else's. A file
//! is reachable only through the version record that names its key.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::error::BlobError;

/// A crate file read from the blob store.
pub struct BlobRead {
    /// The file's size in bytes.
    pub size: u64,
    /// The file's bytes.
    pub stream: BoxStream<'static, Result<Bytes, BlobError>>,
}

impl std::fmt::Debug for BlobRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobRead")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// Where crate files live.
#[derive(Debug, Clone)]
pub struct BlobStore {
    inner: Arc<dyn ObjectStore>,
}

fn classify(key: &str, error: object_store::Error) -> BlobError {
    match error {
        object_store::Error::NotFound { .. } => BlobError::NotFound(key.to_owned()),
        object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. } => {
            BlobError::AlreadyExists(key.to_owned())
        }
        other => BlobError::Unavailable(other.to_string()),
    }
}

impl BlobStore {
    /// Wraps any `object_store` backend.
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        Self { inner }
    }

    /// Opens a local directory, creating it if needed.
    ///
    /// # Errors
    ///
    /// Fails when the directory cannot be created or resolved.
    pub fn local(dir: &Path) -> Result<Self, BlobError> {
        std::fs::create_dir_all(dir).map_err(|error| {
            BlobError::Unavailable(format!("cannot create {}: {error}", dir.display()))
        })?;
        let store = LocalFileSystem::new_with_prefix(dir)
            .map_err(|error| BlobError::Unavailable(error.to_string()))?
            .with_automatic_cleanup(true);
        Ok(Self::new(Arc::new(store)))
    }

    /// Returns a fresh key for a version's crate file: `crates/{canonical}/{version}/{random}.crate`.
    pub fn new_crate_key(canonical: &str, version_key: &str) -> String {
        let mut nonce = [0_u8; 12];
        rand::fill(&mut nonce);
        format!(
            "crates/{canonical}/{version_key}/{}.crate",
            hex::encode(nonce)
        )
    }

    /// Stores a new file under `key`; never overwrites.
    ///
    /// # Errors
    ///
    /// [`BlobError::AlreadyExists`] when the key is taken, [`BlobError::Unavailable`] when the
    /// store fails.
    pub async fn put_new(&self, key: &str, bytes: Bytes) -> Result<(), BlobError> {
        let options = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        self.inner
            .put_opts(&ObjectPath::from(key), PutPayload::from(bytes), options)
            .await
            .map(|_| ())
            .map_err(|error| classify(key, error))
    }

    /// Opens a file for reading.
    ///
    /// # Errors
    ///
    /// [`BlobError::NotFound`] when there is no such file.
    pub async fn get(&self, key: &str) -> Result<BlobRead, BlobError> {
        let result = self
            .inner
            .get(&ObjectPath::from(key))
            .await
            .map_err(|error| classify(key, error))?;
        let size = result.meta.size;
        let owned_key = key.to_owned();
        let stream = result
            .into_stream()
            .map_err(move |error| classify(&owned_key, error))
            .boxed();
        Ok(BlobRead { size, stream })
    }

    /// Reads a whole file into memory.
    ///
    /// # Errors
    ///
    /// As [`BlobStore::get`].
    pub async fn get_bytes(&self, key: &str) -> Result<Bytes, BlobError> {
        let result = self
            .inner
            .get(&ObjectPath::from(key))
            .await
            .map_err(|error| classify(key, error))?;
        result.bytes().await.map_err(|error| classify(key, error))
    }

    /// Deletes a file; deleting a missing file succeeds.
    ///
    /// # Errors
    ///
    /// [`BlobError::Unavailable`] when the store fails.
    pub async fn delete(&self, key: &str) -> Result<(), BlobError> {
        match self.inner.delete(&ObjectPath::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(classify(key, error)),
        }
    }

    /// Lists every key under `prefix`, for tests and sweeps.
    ///
    /// # Errors
    ///
    /// [`BlobError::Unavailable`] when the store fails.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, BlobError> {
        let prefix = ObjectPath::from(prefix);
        self.inner
            .list(Some(&prefix))
            .map_ok(|meta| meta.location.to_string())
            .try_collect()
            .await
            .map_err(|error| classify(prefix.as_ref(), error))
    }

    /// Checks that the store answers: a read of a key that does not exist must say "not found".
    ///
    /// # Errors
    ///
    /// [`BlobError::Unavailable`] when the store fails.
    pub async fn ping(&self) -> Result<(), BlobError> {
        match self
            .inner
            .head(&ObjectPath::from("ktra-readiness-probe"))
            .await
        {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(classify("ktra-readiness-probe", error)),
        }
    }
}
