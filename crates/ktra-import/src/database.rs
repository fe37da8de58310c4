//! Reading a Ktra database where Ktra kept it: sled (a copy, never the original) or Redis.

use std::path::Path;

use crate::config::{KtraDatabaseKind, KtraSource};
use crate::records::{DatabaseError, KtraDatabase};

/// The prefix Ktra's Redis store puts before every key.
const REDIS_PREFIX: &str = "ktra:";
/// The hash holding every crate entry in Ktra's Redis store.
const REDIS_ENTRIES: &str = "ktra:__ENTRIES__";

/// Reads the database `source` names.
///
/// # Errors
///
/// When the database cannot be opened or its user records do not parse.
pub fn read(source: &KtraSource) -> Result<KtraDatabase, DatabaseError> {
    match source.database {
        KtraDatabaseKind::Sled => read_sled(&source.db_dir_path),
        KtraDatabaseKind::Redis => read_redis(&source.redis_url),
        KtraDatabaseKind::Mongodb => Err(DatabaseError::Unavailable(format!(
            "importing from Ktra's MongoDB ({}) is not supported yet: export it to sled or Redis \
             with Ktra first, or import from one of those",
            source.mongodb_url
        ))),
    }
}

/// Reads a sled database. sled opens read-write and recovers its log on open, so the
/// directory is copied and the copy is opened: Ktra's files are left exactly as they were.
fn read_sled(dir: &Path) -> Result<KtraDatabase, DatabaseError> {
    if !dir.join("conf").is_file() || !dir.join("db").is_file() {
        return Err(DatabaseError::Unavailable(format!(
            "no Ktra sled database at {} (db_config.db_dir_path): give the path Ktra used, or \
             --db redis if Ktra ran with Redis",
            dir.display()
        )));
    }
    let copy = tempfile::tempdir().map_err(|error| {
        DatabaseError::Unavailable(format!("cannot create a temporary directory: {error}"))
    })?;
    copy_dir(dir, copy.path()).map_err(|error| {
        DatabaseError::Unavailable(format!("cannot copy {}: {error}", dir.display()))
    })?;
    let db = sled::open(copy.path()).map_err(|error| {
        DatabaseError::Unavailable(format!(
            "cannot open Ktra's sled database at {}: {error}",
            dir.display()
        ))
    })?;
    let mut records = Vec::new();
    for record in db.iter() {
        let (key, value) = record.map_err(|error| {
            DatabaseError::Unavailable(format!("cannot read Ktra's sled database: {error}"))
        })?;
        records.push((key.to_vec(), value.to_vec()));
    }
    KtraDatabase::from_records(records)
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            std::fs::create_dir_all(&target)?;
            copy_dir(&entry.path(), &target)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Reads Ktra's keys from Redis (read commands only).
fn read_redis(url: &str) -> Result<KtraDatabase, DatabaseError> {
    let unavailable = |error: redis::RedisError| {
        DatabaseError::Unavailable(format!(
            "cannot read Ktra's Redis at {url} (db_config.redis_url): {error}"
        ))
    };
    let client = redis::Client::open(url).map_err(unavailable)?;
    let mut connection = client.get_connection().map_err(unavailable)?;
    let mut records = Vec::new();
    for key in ["__USERS__", "__PASSWORDS__", "__TOKENS__"] {
        let value: Option<Vec<u8>> = redis::cmd("GET")
            .arg(format!("{REDIS_PREFIX}{key}"))
            .query(&mut connection)
            .map_err(unavailable)?;
        if let Some(value) = value {
            records.push((key.as_bytes().to_vec(), value));
        }
    }
    let entries: Vec<(Vec<u8>, Vec<u8>)> = redis::cmd("HGETALL")
        .arg(REDIS_ENTRIES)
        .query(&mut connection)
        .map_err(unavailable)?;
    records.extend(entries);
    KtraDatabase::from_records(records)
}
