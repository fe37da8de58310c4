//! Ktra's storage seams.
//!
//! Two stores back the registry: the [`MetadataStore`] (users, tokens, owners, crates and every
//! index line; the source of truth) and the [`BlobStore`] (immutable `.crate` files). The API
//! service uses both; the indexer uses neither. This crate ships the embedded metadata store
//! (redb) and the `object_store`-based blob store.

pub mod blob;
pub mod embedded;
pub mod error;
pub mod metadata;
pub mod model;
pub mod redis;

pub use blob::BlobStore;
pub use embedded::EmbeddedStore;
pub use error::{BlobError, StoreError};
pub use metadata::MetadataStore;
pub use redis::RedisStore;
