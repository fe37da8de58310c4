//! Ktra's Redis database (`db_config.redis_url`): JSON strings under `ktra:` keys, crates in
//! the `ktra:__ENTRIES__` hash.

use crate::records::{DatabaseError, KtraDatabase};

/// The prefix Ktra's Redis store puts before every key.
const PREFIX: &str = "ktra:";
/// The hash holding every crate entry.
const ENTRIES: &str = "ktra:__ENTRIES__";

/// Reads Ktra's keys from Redis (read commands only).
pub(super) fn read(url: &str) -> Result<KtraDatabase, DatabaseError> {
    let unavailable = |error: redis::RedisError| {
        DatabaseError::Unavailable(format!(
            "cannot read Ktra's Redis at {} (db_config.redis_url): {error}",
            crate::config::redacted(url)
        ))
    };
    let client = redis::Client::open(url).map_err(unavailable)?;
    let mut connection = client.get_connection().map_err(unavailable)?;
    let mut records = Vec::new();
    for key in ["__USERS__", "__PASSWORDS__", "__TOKENS__"] {
        let value: Option<Vec<u8>> = redis::cmd("GET")
            .arg(format!("{PREFIX}{key}"))
            .query(&mut connection)
            .map_err(unavailable)?;
        if let Some(value) = value {
            records.push((key.as_bytes().to_vec(), value));
        }
    }
    let entries: Vec<(Vec<u8>, Vec<u8>)> = redis::cmd("HGETALL")
        .arg(ENTRIES)
        .query(&mut connection)
        .map_err(unavailable)?;
    records.extend(entries);
    KtraDatabase::from_records(records)
}
