//! The state every handler shares, built once at start.

use std::sync::Arc;

use bytes::Bytes;
use ktra_store::blob::S3Options;
use ktra_store::{BlobStore, MetadataStore};

use crate::config::{BlobKind, Config, DbKind};
use crate::index_sync::IndexSync;
use crate::password::PasswordHasher;

/// Handles to the stores and the settings handlers need. Cloned for every request, so it is
/// one reference-counted pointer.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] points at.
#[derive(Debug)]
pub struct Shared {
    /// Users, tokens, owners, crates and index entries.
    pub store: Arc<dyn MetadataStore>,
    /// Crate files.
    pub blobs: BlobStore,
    /// Argon2id hashing, off the async workers.
    pub passwords: PasswordHasher,
    /// The git indexer, when configured.
    pub index_sync: IndexSync,
    /// Prometheus metrics.
    pub metrics: Arc<crate::metrics::ApiMetrics>,
    /// Every crate, briefly, for listings (read at most every few seconds).
    pub listings: crate::catalog::Listings,
    /// Downloads counted and not yet in the store.
    pub downloads: Arc<crate::downloads::DownloadCounter>,
    /// The configuration.
    pub config: Arc<Config>,
    /// `config.json` as served, rendered once.
    pub index_config: Bytes,
    /// `WWW-Authenticate` of every `401`: where cargo sends people for a token.
    pub login_challenge: http::HeaderValue,
    /// The pull-through mirror, when `KTRA_MIRROR_ENABLED`.
    #[cfg(feature = "crates-io-mirroring")]
    pub mirror: Option<Arc<crate::mirror::Mirror>>,
    /// Crashes the tests simulate.
    #[cfg(feature = "fault-injection")]
    pub faults: Faults,
}

/// Points where the integration tests make a request fail as if the process died there
/// (feature `fault-injection`, which only the test builds enable; it has no setting).
#[cfg(feature = "fault-injection")]
#[derive(Default)]
pub struct Faults {
    /// Runs right after a publish committed in the store, before the indexer hears of it and
    /// before cargo gets its answer; a panic here loses the answer.
    pub after_publish_commit: Option<Box<dyn Fn() + Send + Sync>>,
}

#[cfg(feature = "fault-injection")]
impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faults")
            .field("after_publish_commit", &self.after_publish_commit.is_some())
            .finish()
    }
}

impl AppState {
    /// Opens the configured stores.
    ///
    /// # Errors
    ///
    /// Fails when a store cannot be opened or the password parameters are invalid.
    pub async fn open(config: Config) -> anyhow::Result<Self> {
        let store = open_metadata_store(&config).await?;
        let blobs = open_blob_store(&config)?;
        Self::with_stores(config, store, blobs)
    }

    /// Builds the state over stores opened by the caller.
    ///
    /// # Errors
    ///
    /// Fails when the password parameters are invalid.
    pub fn with_stores(
        config: Config,
        store: Arc<dyn MetadataStore>,
        blobs: BlobStore,
    ) -> anyhow::Result<Self> {
        let passwords = PasswordHasher::new(&config.auth)?;
        let metrics = Arc::new(crate::metrics::ApiMetrics::new());
        let store: Arc<dyn MetadataStore> = Arc::new(ktra_store::InstrumentedStore::new(
            store,
            Arc::clone(&metrics) as Arc<dyn ktra_store::StoreObserver>,
        ));
        let blobs = blobs.observed_by(Arc::clone(&metrics) as Arc<dyn ktra_store::StoreObserver>);
        let index_sync = IndexSync::new(&config.indexer, Arc::clone(&store))?;
        let index_config = config.registry.index_config(config.http.port);
        // Where cargo sends people for a token: the sign-in page, which leads to the tokens
        // page, or the user API's instructions when the pages are off.
        let login_page = if config.ui.enabled { "login" } else { "me" };
        let login_challenge = http::HeaderValue::from_str(&format!(
            "Cargo login_url=\"{}/{login_page}\"",
            config.public_base()
        ))
        .unwrap_or_else(|_| http::HeaderValue::from_static("Cargo"));
        #[cfg(feature = "crates-io-mirroring")]
        let mirror = if config.mirror.enabled {
            Some(Arc::new(crate::mirror::Mirror::new(
                &config,
                &blobs,
                Arc::clone(&metrics),
            )?))
        } else {
            None
        };
        Ok(Self(Arc::new(Shared {
            #[cfg(feature = "crates-io-mirroring")]
            mirror,
            #[cfg(feature = "fault-injection")]
            faults: Faults::default(),
            store,
            blobs,
            passwords,
            index_sync,
            metrics,
            listings: crate::catalog::Listings::default(),
            downloads: Arc::default(),
            index_config: Bytes::from(index_config.to_json()),
            login_challenge,
            config: Arc::new(config),
        })))
    }
}

#[cfg(feature = "fault-injection")]
impl AppState {
    /// Installs the crashes a test simulates, on a state not handed out yet.
    ///
    /// # Panics
    ///
    /// When the state is already shared (cloned): set faults right after building it.
    pub fn with_faults(mut self, faults: Faults) -> Self {
        Arc::get_mut(&mut self.0)
            .expect("faults are set on a state that has not been cloned yet")
            .faults = faults;
        self
    }
}

/// Opens the configured metadata store.
///
/// # Errors
///
/// Fails when the store cannot be opened (for the embedded store: when another process, such
/// as a running `ktra-api`, holds it).
pub async fn open_metadata_store(config: &Config) -> anyhow::Result<Arc<dyn MetadataStore>> {
    match config.db.kind {
        #[cfg(feature = "db-embedded")]
        DbKind::Embedded => {
            crate::ktra_data::refuse_sled_database(&config.db.dir_path)?;
            let dir = config.db.dir_path.clone();
            let store =
                ktra_core::task::spawn_blocking(move || ktra_store::EmbeddedStore::open(&dir))
                    .await?
                    .map_err(|error| {
                        anyhow::anyhow!(
                            "{error} (the embedded database can be open in one process only)"
                        )
                    })?;
            Ok(Arc::new(store))
        }
        #[cfg(feature = "db-redis")]
        DbKind::Redis => {
            use secrecy::ExposeSecret;
            let options = ktra_store::RedisOptions {
                url: config.db.redis_url.clone(),
                prefix: config.db.key_prefix.clone(),
                sentinels: config.db.sentinels(),
                sentinel_master: config.db.redis_sentinel_master.clone(),
                sentinel_username: config.db.redis_sentinel_username.clone(),
                sentinel_password: config
                    .db
                    .redis_sentinel_password
                    .as_ref()
                    .map(|password| password.expose_secret().to_owned()),
                wait_replicas: config.db.redis_wait_replicas,
                wait_timeout: std::time::Duration::from_millis(config.db.redis_wait_timeout_ms),
            };
            let named = if options.sentinels.is_empty() {
                "Redis at KTRA_DB_REDIS_URL"
            } else {
                "Redis through KTRA_DB_REDIS_SENTINELS"
            };
            let store = ktra_store::RedisStore::connect_with(&options)
                .await
                .map_err(|error| anyhow::anyhow!("{named}: {error}"))?;
            Ok(Arc::new(store))
        }
        #[allow(unreachable_patterns, reason = "reached when a store's feature is off")]
        kind => anyhow::bail!(
            "setting KTRA_DB_KIND: this build has no {kind:?} store (built without its db-* feature)"
        ),
    }
}

/// Opens the configured blob store.
///
/// # Errors
///
/// Fails when the settings are incomplete or the local directory cannot be created.
pub fn open_blob_store(config: &Config) -> anyhow::Result<BlobStore> {
    Ok(match config.blob.kind {
        BlobKind::Local => BlobStore::local(&config.blob.dir_path)?,
        BlobKind::S3 => BlobStore::s3(&S3Options {
            bucket: config.s3.bucket.clone().unwrap_or_default(),
            region: config.s3.region.clone(),
            endpoint: config.s3.endpoint.clone(),
            allow_http: config.s3.allow_http,
            virtual_hosted_style: config.s3.virtual_hosted_style,
            prefix: config.s3.prefix.clone(),
            access_key_id: config.s3.access_key_id.clone(),
            secret_access_key: config
                .s3
                .secret_access_key
                .as_ref()
                .map(|secret| secrecy::ExposeSecret::expose_secret(secret).to_owned()),
        })?,
        BlobKind::Url => BlobStore::from_url(config.blob.url.as_deref().unwrap_or_default())?,
    })
}
