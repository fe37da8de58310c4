//! The end-to-end harness: both services as processes, git remotes over every transport, and
//! the real `cargo` with throwaway `CARGO_HOME`s.

pub mod cargo;
pub mod collector;
pub mod git;
pub mod metrics;
pub mod process;
pub mod registry;
pub mod remotes;
pub mod servers;
