//! The metadata store contract, run against every backend.

mod embedded;
mod suite;
