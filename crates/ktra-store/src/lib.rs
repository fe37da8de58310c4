//! Ktra's storage seams.
//!
//! Two stores back the registry: the [`MetadataStore`] (users, tokens, owners, crates and every
//! index line; the source of truth) and the [`BlobStore`] (immutable `.crate` files). The API
//! service uses both; the indexer uses neither. This crate ships the embedded metadata store
//! (redb, feature `embedded`), the Redis metadata store (feature `redis`) and the
//! `object_store`-based blob store.

pub mod blob;
#[cfg(feature = "embedded")]
pub mod embedded;
pub mod error;
mod local_read;
pub mod model;
pub mod observer;
#[cfg(feature = "redis")]
pub mod redis;
pub mod traits;

pub use blob::BlobStore;
#[cfg(feature = "embedded")]
pub use embedded::EmbeddedStore;
pub use error::{BlobError, StoreError};
pub use observer::{StoreKind, StoreObserver};
#[cfg(feature = "redis")]
pub use redis::{RedisOptions, RedisStore};
pub use traits::{
    AccountStore, AuditLog, CoordinationStore, CrateStore, DownloadStore, IndexStore,
    InstrumentedStore, MetadataStore, SessionStore,
};
