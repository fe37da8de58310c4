//! Request handlers, one module per resource.

pub mod admin;
pub mod crate_info;
pub mod crates;
pub mod download;
pub mod health;
pub mod index;
pub mod metrics;
#[cfg(feature = "crates-io-mirroring")]
pub mod mirror;
pub mod publish;
pub mod search;
pub mod tokens;
pub mod users;
