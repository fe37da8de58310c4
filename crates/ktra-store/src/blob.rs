//! The blob store for `.crate` files, over the `object_store` crate.
//!
//! Crate files are immutable: each publish writes a new key with a create-only condition, so a
//! file is never overwritten. The key carries a random part, so a publish that loses a race (or
//! fails after writing its file) can delete its own file without touching anyone else's. A file
//! is reachable only through the version record that names its key.
//!
//! Backends: a local directory, S3 and S3-compatible servers (with explicit settings), and any
//! other `object_store` backend (Google Cloud Storage, Azure Blob Storage) from a URL, with
//! credentials from the environment as each service's SDKs read them. S3 answers 403 for a
//! missing key when the caller may not list the bucket; reads map that to "not found".

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::signer::Signer;
use object_store::{
    BackoffConfig, ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutMode,
    PutOptions, PutPayload, RetryConfig,
};

use crate::error::BlobError;
use crate::observer::{StoreKind, StoreObserver, observe};

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

/// How to reach an S3 bucket. Credentials come from the standard AWS environment variables and
/// credential chain (web identity tokens, container and instance metadata), so IAM roles need
/// no static keys.
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    /// The bucket.
    pub bucket: String,
    /// The region.
    pub region: String,
    /// A custom endpoint for S3-compatible servers (MinIO, SeaweedFS, Ceph...).
    pub endpoint: Option<String>,
    /// Whether plain `http://` endpoints are allowed.
    pub allow_http: bool,
    /// Virtual-hosted-style requests (`bucket.host`) instead of path style (`host/bucket`).
    pub virtual_hosted_style: bool,
    /// A key prefix inside the bucket, so several registries can share one.
    pub prefix: Option<String>,
    /// Static credentials, overriding the environment and the credential chain.
    pub access_key_id: Option<String>,
    /// The secret of `access_key_id`.
    pub secret_access_key: Option<String>,
}

/// Where crate files live.
#[derive(Debug, Clone)]
pub struct BlobStore {
    inner: Arc<dyn ObjectStore>,
    /// The directory of a local store, read directly for downloads.
    local_root: Option<std::path::PathBuf>,
    /// Signs download URLs (S3 only), and the key prefix it must add.
    signer: Option<(Arc<AmazonS3>, Option<String>)>,
    /// Where every operation is reported, once [`BlobStore::observed_by`] set it.
    observer: Option<Arc<dyn StoreObserver>>,
}

fn classify(key: &str, error: object_store::Error) -> BlobError {
    match error {
        object_store::Error::NotFound { .. } => BlobError::NotFound(key.to_owned()),
        object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. } => {
            BlobError::AlreadyExists(key.to_owned())
        }
        // Without list permission S3 answers 403 for a key that does not exist.
        object_store::Error::PermissionDenied { .. } => BlobError::NotFound(key.to_owned()),
        other => BlobError::Unavailable(other.to_string()),
    }
}

impl BlobStore {
    /// Wraps any `object_store` backend.
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        Self {
            inner,
            signer: None,
            local_root: None,
            observer: None,
        }
    }

    /// Reports every operation to `observer`, each in a `store` span.
    #[must_use]
    pub fn observed_by(mut self, observer: Arc<dyn StoreObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    async fn observed<T>(
        &self,
        operation: &'static str,
        work: impl Future<Output = Result<T, BlobError>>,
    ) -> Result<T, BlobError> {
        match &self.observer {
            Some(observer) => {
                observe(
                    observer.as_ref(),
                    StoreKind::Blob,
                    operation,
                    work,
                    |error: &BlobError| matches!(error, BlobError::Unavailable(_)),
                )
                .await
            }
            None => work.await,
        }
    }

    /// Connects to an S3 bucket; nothing is requested until the first use.
    ///
    /// # Errors
    ///
    /// Fails when the options are incomplete (no bucket, an unusable endpoint).
    pub fn s3(options: &S3Options) -> Result<Self, BlobError> {
        // Fail within seconds when S3 is away, so the API answers 503 instead of holding
        // requests for object_store's default three minutes of retries.
        let retry = RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: 3,
            retry_timeout: Duration::from_secs(10),
        };
        let client = ClientOptions::new()
            .with_connect_timeout(Duration::from_secs(3))
            .with_timeout(Duration::from_secs(300));
        let mut builder = AmazonS3Builder::from_env()
            .with_retry(retry)
            .with_client_options(client)
            .with_bucket_name(&options.bucket)
            .with_region(&options.region)
            .with_allow_http(options.allow_http)
            .with_virtual_hosted_style_request(options.virtual_hosted_style);
        if let Some(endpoint) = &options.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let (Some(key), Some(secret)) = (&options.access_key_id, &options.secret_access_key) {
            builder = builder
                .with_access_key_id(key)
                .with_secret_access_key(secret);
        }
        let s3 = Arc::new(
            builder
                .build()
                .map_err(|error| BlobError::Unavailable(format!("S3 settings: {error}")))?,
        );
        let prefix = options
            .prefix
            .as_deref()
            .map(|prefix| prefix.trim_matches('/').to_owned())
            .filter(|prefix| !prefix.is_empty());
        let inner: Arc<dyn ObjectStore> = match &prefix {
            Some(prefix) => Arc::new(PrefixStore::new(Arc::clone(&s3), prefix.as_str())),
            None => s3.clone(),
        };
        Ok(Self {
            inner,
            signer: Some((s3, prefix)),
            local_root: None,
            observer: None,
        })
    }

    /// Opens any backend `object_store` knows from a URL (`gs://bucket/prefix`,
    /// `az://container/prefix`, `s3://bucket/prefix`, `file:///dir`), configured from the
    /// environment variables its builder reads (`GOOGLE_*`, `AZURE_*`, `AWS_*`).
    ///
    /// # Errors
    ///
    /// Fails when the URL names an unknown scheme or its settings are incomplete.
    pub fn from_url(url: &str) -> Result<Self, BlobError> {
        let parsed = url::Url::parse(url)
            .map_err(|error| BlobError::Unavailable(format!("blob store URL: {error}")))?;
        let options = std::env::vars().map(|(name, value)| (name.to_ascii_lowercase(), value));
        let (store, prefix) = object_store::parse_url_opts(&parsed, options)
            .map_err(|error| BlobError::Unavailable(format!("blob store URL: {error}")))?;
        let store: Arc<dyn ObjectStore> = Arc::from(store);
        let inner: Arc<dyn ObjectStore> = if prefix.as_ref().is_empty() {
            store
        } else {
            Arc::new(PrefixStore::new(store, prefix))
        };
        Ok(Self::new(inner))
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
        let root = dir
            .canonicalize()
            .map_err(|error| BlobError::Unavailable(format!("{}: {error}", dir.display())))?;
        let store = LocalFileSystem::new_with_prefix(&root)
            .map_err(|error| BlobError::Unavailable(error.to_string()))?
            .with_automatic_cleanup(true);
        Ok(Self {
            local_root: Some(root),
            ..Self::new(Arc::new(store))
        })
    }

    /// Returns a fresh key for a version's crate file:
    /// `crates/{canonical}/{version}-{random}.crate`. One directory per crate keeps a local
    /// store from creating a directory per version.
    pub fn new_crate_key(canonical: &str, version_key: &str) -> String {
        let mut nonce = [0_u8; 12];
        rand::fill(&mut nonce);
        format!(
            "crates/{canonical}/{version_key}-{}.crate",
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
        self.observed("put_new", async {
            let options = PutOptions {
                mode: PutMode::Create,
                ..PutOptions::default()
            };
            self.inner
                .put_opts(&ObjectPath::from(key), PutPayload::from(bytes), options)
                .await
                .map(|_| ())
                .map_err(|error| match error {
                    // A refused write is a configuration problem, never a missing key.
                    object_store::Error::PermissionDenied { .. }
                    | object_store::Error::Unauthenticated { .. } => {
                        BlobError::Unavailable(error.to_string())
                    }
                    other => classify(key, other),
                })
        })
        .await
    }

    /// Stores `bytes` under `key`, replacing what is there. Only for cache entries that are
    /// meant to change (the mirror's copies of upstream index files); crate files use
    /// [`BlobStore::put_new`]. Every backend replaces an object in one step, so a reader sees
    /// the old or the new bytes, never a mix.
    ///
    /// # Errors
    ///
    /// [`BlobError::Unavailable`] when the store fails.
    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<(), BlobError> {
        self.observed("put", async {
            self.inner
                .put(&ObjectPath::from(key), PutPayload::from(bytes))
                .await
                .map(|_| ())
                .map_err(|error| BlobError::Unavailable(error.to_string()))
        })
        .await
    }

    /// Opens a file for reading.
    ///
    /// # Errors
    ///
    /// [`BlobError::NotFound`] when there is no such file.
    pub async fn get(&self, key: &str) -> Result<BlobRead, BlobError> {
        self.observed("get", async {
            if let Some(root) = &self.local_root {
                return Self::get_local(root, key).await;
            }
            self.read(key, GetOptions::default()).await
        })
        .await
    }

    async fn get_local(root: &Path, key: &str) -> Result<BlobRead, BlobError> {
        // Keys are made by `new_crate_key` and stored by us; refuse anything that could leave
        // the directory all the same.
        if key
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
        {
            return Err(BlobError::NotFound(key.to_owned()));
        }
        // object_store reads local files 8 KiB at a time through the blocking pool; this reads
        // them in larger pieces, usually without leaving the task.
        let (size, stream) = crate::local_read::open(root.join(key), key).await?;
        Ok(BlobRead { size, stream })
    }

    /// Opens part of a file: `range` of its bytes, clamped to the file's end.
    ///
    /// # Errors
    ///
    /// [`BlobError::NotFound`] when there is no such file; [`BlobError::Unavailable`] when the
    /// range starts past the end.
    pub async fn get_range(
        &self,
        key: &str,
        range: std::ops::Range<u64>,
    ) -> Result<BlobRead, BlobError> {
        self.observed("get_range", async {
            let options = GetOptions {
                range: Some(GetRange::Bounded(range)),
                ..GetOptions::default()
            };
            self.read(key, options).await
        })
        .await
    }

    /// Reads through `object_store`: the bytes `options` select, and how many they are.
    async fn read(&self, key: &str, options: GetOptions) -> Result<BlobRead, BlobError> {
        let result = self
            .inner
            .get_opts(&ObjectPath::from(key), options)
            .await
            .map_err(|error| classify(key, error))?;
        let size = result.range.end - result.range.start;
        let owned_key = key.to_owned();
        let stream = result
            .into_stream()
            .map_err(move |error| classify(&owned_key, error))
            .boxed();
        Ok(BlobRead { size, stream })
    }

    /// Returns a file's size.
    ///
    /// # Errors
    ///
    /// [`BlobError::NotFound`] when there is no such file.
    pub async fn size(&self, key: &str) -> Result<u64, BlobError> {
        self.observed("size", async {
            self.inner
                .head(&ObjectPath::from(key))
                .await
                .map(|meta| meta.size)
                .map_err(|error| classify(key, error))
        })
        .await
    }

    /// Returns a URL that lets its holder download a file for `expires_in` without
    /// credentials, or `None` when the backend cannot sign URLs.
    ///
    /// # Errors
    ///
    /// [`BlobError::Unavailable`] when signing fails (no credentials, say).
    pub async fn signed_download_url(
        &self,
        key: &str,
        expires_in: std::time::Duration,
    ) -> Result<Option<url::Url>, BlobError> {
        self.observed("signed_download_url", async {
            let Some((signer, prefix)) = &self.signer else {
                return Ok(None);
            };
            let full_key = match prefix {
                Some(prefix) => format!("{prefix}/{key}"),
                None => key.to_owned(),
            };
            signer
                .signed_url(http::Method::GET, &ObjectPath::from(full_key), expires_in)
                .await
                .map(Some)
                .map_err(|error| BlobError::Unavailable(format!("signing a download URL: {error}")))
        })
        .await
    }

    /// Reads a whole file into memory.
    ///
    /// # Errors
    ///
    /// As [`BlobStore::get`].
    pub async fn get_bytes(&self, key: &str) -> Result<Bytes, BlobError> {
        self.observed("get_bytes", async {
            let result = self
                .inner
                .get(&ObjectPath::from(key))
                .await
                .map_err(|error| classify(key, error))?;
            result.bytes().await.map_err(|error| classify(key, error))
        })
        .await
    }

    /// Deletes a file; deleting a missing file succeeds.
    ///
    /// # Errors
    ///
    /// [`BlobError::Unavailable`] when the store fails.
    pub async fn delete(&self, key: &str) -> Result<(), BlobError> {
        self.observed("delete", async {
            match self.inner.delete(&ObjectPath::from(key)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(error) => Err(classify(key, error)),
            }
        })
        .await
    }

    /// Lists every key under `prefix`, for tests and sweeps.
    ///
    /// # Errors
    ///
    /// [`BlobError::Unavailable`] when the store fails.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, BlobError> {
        self.observed("list", async {
            let prefix = ObjectPath::from(prefix);
            self.inner
                .list(Some(&prefix))
                .map_ok(|meta| meta.location.to_string())
                .try_collect()
                .await
                .map_err(|error| classify(prefix.as_ref(), error))
        })
        .await
    }

    /// Checks that the store answers: a read of a key that does not exist must say "not found".
    ///
    /// # Errors
    ///
    /// [`BlobError::Unavailable`] when the store fails.
    /// Not reported to the observer: readiness probes run every few seconds, and their answer
    /// is `/readyz`'s.
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
