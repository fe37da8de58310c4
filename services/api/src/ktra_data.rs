//! Ktra's own data, found where this registry keeps its data: a Ktra user who reuses their
//! `ktra.toml` gets our defaults pointed at Ktra's `db` and `crates` directories. Neither is
//! read in place (their layout is Ktra's), so the database is refused and the crate files are
//! named, each with the way over: `ktra-api import ktra`.

use std::path::Path;

use ktra_core::config::setting_name;

/// Refuses a database directory holding Ktra's sled database (and none of ours): opening ours
/// there would write beside Ktra's files and serve none of its crates.
///
/// # Errors
///
/// When `dir` holds a sled database.
pub fn refuse_sled_database(dir: &Path) -> anyhow::Result<()> {
    let sled = dir.join("conf").is_file() && dir.join("db").is_file();
    if sled && !dir.join("ktra.redb").is_file() {
        anyhow::bail!(
            "{} is {}, which holds Ktra's sled database: this registry does not read it in \
             place. Import it with `ktra-api import ktra <ktra.toml>` (the README's \"Moving \
             from Ktra\") into another directory, and point {} there",
            setting_name("KTRA_DB_DIR_PATH"),
            dir.display(),
            setting_name("KTRA_DB_DIR_PATH"),
        );
    }
    Ok(())
}

/// Names a crate file directory holding Ktra's files (`<name>/<version>/download`), which this
/// registry does not serve until they are imported.
pub fn crate_files_warning(dir: &Path) -> Option<String> {
    let crates = std::fs::read_dir(dir).ok()?;
    let found = crates.flatten().take(1000).find_map(|krate| {
        let versions = std::fs::read_dir(krate.path()).ok()?;
        versions
            .flatten()
            .take(100)
            .find(|version| version.path().join("download").is_file())
            .map(|version| version.path().join("download"))
    })?;
    Some(format!(
        "{} ({}) holds Ktra's crate files (such as {}): they are not served until imported with \
         `ktra-api import ktra`",
        setting_name("KTRA_BLOB_DIR_PATH"),
        dir.display(),
        found.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sled_directory_is_refused_and_ours_is_not() {
        let dir = tempfile::tempdir().unwrap();
        refuse_sled_database(dir.path()).unwrap();
        std::fs::write(dir.path().join("conf"), "segment_size: 524288").unwrap();
        std::fs::write(dir.path().join("db"), "").unwrap();
        let error = refuse_sled_database(dir.path()).unwrap_err().to_string();
        assert!(error.contains("ktra-api import ktra"), "{error}");
        std::fs::write(dir.path().join("ktra.redb"), "").unwrap();
        refuse_sled_database(dir.path()).unwrap();
    }

    #[test]
    fn ktra_crate_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(crate_files_warning(dir.path()), None);
        std::fs::create_dir_all(dir.path().join("crates/foo")).unwrap();
        std::fs::write(dir.path().join("crates/foo/0.1.0-abc.crate"), "").unwrap();
        assert_eq!(crate_files_warning(dir.path()), None);
        std::fs::create_dir_all(dir.path().join("tiny-crate/0.1.0")).unwrap();
        std::fs::write(dir.path().join("tiny-crate/0.1.0/download"), "").unwrap();
        let warning = crate_files_warning(dir.path()).unwrap();
        assert!(warning.contains("KTRA_BLOB_DIR_PATH"), "{warning}");
    }
}
