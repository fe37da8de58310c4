//! What Ktra's two services must agree on.
//!
//! This crate holds what the services and the crates beside them share: crate-name rules, the
//! index entry format and paths, what a version says about itself (kept by the API, read from
//! `.crate` files by the import and the backfill), error codes, configuration sources,
//! telemetry and metrics set-up, shutdown signals, and blocking work that keeps its span. Code
//! that only one service needs stays in that service.
//!
//! Without the default feature `service`, only the name rules and the index format are built:
//! enough for validation code that must not pull in the async and telemetry stacks.

#[cfg(feature = "service")]
pub mod config;
#[cfg(feature = "service")]
pub mod error;
pub mod index;
pub mod metadata;
#[cfg(feature = "service")]
pub mod metrics;
pub mod name;
#[cfg(feature = "service")]
pub mod shutdown;
#[cfg(feature = "service")]
pub mod task;
#[cfg(feature = "service")]
pub mod telemetry;
pub mod version;
