//! Behaviour every metadata store must show, by domain. Each case takes a fresh, empty store.

mod accounts;
mod audit;
mod coordination;
mod crates;
mod downloads;
pub(crate) mod fixtures;
mod index;
mod sessions;

pub(crate) use accounts::*;
pub(crate) use audit::*;
pub(crate) use coordination::*;
pub(crate) use crates::*;
pub(crate) use downloads::*;
pub(crate) use index::*;
pub(crate) use sessions::*;
