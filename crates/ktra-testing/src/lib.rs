//! Ktra's test harness: every test fixture the workspace shares, in one place.
//!
//! - [`fixtures`]: crate versions to publish, built as `cargo publish` builds its request.
//! - [`registry`]: both services as processes over stores in a temporary directory, with a
//!   check that a test leaves no index change unacknowledged.
//! - [`servers`], [`remotes`], [`collector`]: the real servers the stores, the git remotes and
//!   the trace exporter talk to, started on loopback ports.
//! - [`cargo`], [`git`], [`process`], [`metrics`]: the real `cargo` with throwaway
//!   `CARGO_HOME`s, git repositories, child processes, and `/metrics` pages.
//!
//! Unit tests, integration tests, the end-to-end suite (`tests/`, package `ktra-e2e`) and the
//! benchmarks depend on it; it depends on no Ktra crate but `ktra-core`'s name and index rules,
//! so no dependency cycle runs through it.

pub mod browser;
pub mod cargo;
pub mod collector;
pub mod fixtures;
pub mod git;
pub mod metrics;
pub mod peers;
pub mod poll;
pub mod process;
pub mod registry;
pub mod remotes;
pub mod servers;
