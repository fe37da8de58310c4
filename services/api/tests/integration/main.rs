//! The API's integration tests: the real server on a loopback port, real stores in temporary
//! directories, and the real `cargo` binary.

mod api;
mod cargo;
mod concurrency;
mod harness;
