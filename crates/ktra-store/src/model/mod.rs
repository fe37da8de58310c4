//! The records the metadata store keeps and returns, by domain.

mod accounts;
mod audit;
mod crates;
mod downloads;
mod index;
mod search;
mod sessions;
mod tokens;

pub use accounts::*;
pub use audit::*;
pub use crates::*;
pub use downloads::*;
pub use index::*;
pub use search::*;
pub use sessions::*;
pub use tokens::*;
