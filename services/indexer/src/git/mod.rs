//! The git side of the indexer: the clone, its remote and host keys.

mod auth;
pub mod clone_lock;
pub mod known_hosts;
pub mod maintenance;
pub mod push;
mod rebase;
pub mod repo;
pub mod stale_locks;
#[cfg(test)]
mod tests;
