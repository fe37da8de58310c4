//! What Ktra's two services must agree on.
//!
//! This crate holds only what both `ktra-api` and `ktra-indexer` depend on: crate-name rules,
//! the index entry format and paths, error codes, configuration sources, telemetry and metrics
//! set-up, and shutdown signals. Code that only one service needs stays in that service.

pub mod config;
pub mod error;
pub mod index;
pub mod metrics;
pub mod name;
pub mod registry;
pub mod shutdown;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
