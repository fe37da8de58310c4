//! The metadata store contract, run against every backend.

mod blob;
mod embedded;
mod redis;
mod suite;
