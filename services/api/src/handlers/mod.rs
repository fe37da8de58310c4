//! Request handlers, one module per resource.

pub mod admin;
pub mod crates;
pub mod download;
pub mod health;
pub mod index;
pub mod publish;
pub mod tokens;
pub mod users;
