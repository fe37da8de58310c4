//! Ktra's sled database (`db_config.db_dir_path`), sled 0.34 as Ktra wrote it.

use std::path::Path;

use crate::records::{DatabaseError, KtraDatabase};

/// Reads a sled database. sled opens read-write and recovers its log on open, so the
/// directory is copied and the copy is opened: Ktra's files are left exactly as they were.
pub(super) fn read(dir: &Path) -> Result<KtraDatabase, DatabaseError> {
    if !dir.join("conf").is_file() || !dir.join("db").is_file() {
        return Err(DatabaseError::Unavailable(format!(
            "no Ktra sled database at {} (db_config.db_dir_path): give the path Ktra used, or \
             --db redis or --db mongodb if Ktra ran with those",
            dir.display()
        )));
    }
    refuse_while_open(dir)?;
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

/// Refuses a database a running Ktra holds: sled locks its `db` file while open, and a copy
/// taken meanwhile may miss or tear its latest writes.
fn refuse_while_open(dir: &Path) -> Result<(), DatabaseError> {
    let file = std::fs::File::open(dir.join("db")).map_err(|error| {
        DatabaseError::Unavailable(format!("cannot open {}: {error}", dir.join("db").display()))
    })?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockShared) {
        Ok(()) => Ok(()),
        Err(error) if error == rustix::io::Errno::WOULDBLOCK => {
            Err(DatabaseError::Unavailable(format!(
                "Ktra's sled database at {} is open (Ktra is running): stop Ktra first",
                dir.display()
            )))
        }
        Err(error) => Err(DatabaseError::Unavailable(format!(
            "cannot lock {}: {error}",
            dir.join("db").display()
        ))),
    }
}
