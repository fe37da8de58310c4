//! What the registry shows about its crates, to people (the pages) and to tools (crates.io's
//! read API): a crate's versions joined with their index lines ([`CrateView`]), listings of
//! every crate ([`listing`]), and READMEs rendered ([`readme`]).

pub mod crate_view;
pub mod crates_io;
pub mod listing;
pub mod readme;

pub use crate_view::{CrateView, VersionView};
pub use listing::Listings;
