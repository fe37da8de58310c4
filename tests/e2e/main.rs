//! End-to-end tests: both services as processes, real git remotes, the real cargo.

mod browser;
mod deploy;
mod failover;
mod faults;
mod foreign_index;
mod git_index;
mod harness;
mod index_readers;
mod ktra_import;
mod launcher;
mod observability;
mod private;
mod remotes;
mod scheduled_fetch;
