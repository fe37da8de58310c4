//! Reading a Ktra database where Ktra kept it, changing nothing: sled (opened on a copy),
//! Redis or MongoDB (read commands only). Each yields the records as sled holds them (key and
//! JSON value), which [`KtraDatabase::from_records`] reads.

mod mongodb;
mod redis;
mod sled;

use crate::config::{KtraDatabaseKind, KtraSource};
use crate::records::{DatabaseError, KtraDatabase};

/// Reads the database `source` names.
///
/// # Errors
///
/// When the database cannot be opened or its user records do not parse.
pub fn read(source: &KtraSource) -> Result<KtraDatabase, DatabaseError> {
    match source.database {
        KtraDatabaseKind::Sled => sled::read(&source.db_dir_path),
        KtraDatabaseKind::Redis => redis::read(&source.redis_url),
        KtraDatabaseKind::Mongodb => mongodb::read(&source.mongodb_url),
    }
}
