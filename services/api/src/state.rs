//! The state every handler shares, built once at start.

use std::sync::Arc;

use bytes::Bytes;
use ktra_core::index::IndexConfig;
use ktra_store::{BlobStore, EmbeddedStore, MetadataStore};

use crate::config::{BlobKind, Config, DbKind};
use crate::password::PasswordHasher;

/// Handles to the stores and the settings handlers need.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Users, tokens, owners, crates and index entries.
    pub store: Arc<dyn MetadataStore>,
    /// Crate files.
    pub blobs: BlobStore,
    /// Argon2id hashing, off the async workers.
    pub passwords: PasswordHasher,
    /// The configuration.
    pub config: Arc<Config>,
    /// `config.json` as served, rendered once.
    pub index_config: Bytes,
}

impl AppState {
    /// Opens the configured stores.
    ///
    /// # Errors
    ///
    /// Fails when a store cannot be opened or the password parameters are invalid.
    pub async fn open(config: Config) -> anyhow::Result<Self> {
        let store: Arc<dyn MetadataStore> = match config.db.kind {
            DbKind::Embedded => {
                let dir = config.db.dir_path.clone();
                let store =
                    tokio::task::spawn_blocking(move || EmbeddedStore::open(&dir)).await??;
                Arc::new(store)
            }
        };
        let blobs = match config.blob.kind {
            BlobKind::Local => BlobStore::local(&config.blob.dir_path)?,
        };
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
        let base = config.http.public_base();
        let index_config = IndexConfig {
            dl: format!("{base}/{}", config.http.dl_segments().join("/")),
            api: base,
            auth_required: false,
        };
        Ok(Self {
            store,
            blobs,
            passwords,
            index_config: Bytes::from(index_config.to_json()),
            config: Arc::new(config),
        })
    }
}
