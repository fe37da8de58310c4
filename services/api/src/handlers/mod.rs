//! Request handlers, one module per resource.

pub mod crates;
pub mod download;
pub mod health;
pub mod index;
pub mod publish;
pub mod users;
