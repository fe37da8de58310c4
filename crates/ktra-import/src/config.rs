//! Where a Ktra installation keeps its data: Ktra's own `ktra.toml`, read with Ktra's own
//! defaults (`docs/ktra-data-layout.md`, section 1), with the command line's overrides.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The database a Ktra build was compiled with (Ktra chose it by cargo feature, so the file
/// does not say which).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KtraDatabaseKind {
    /// `db-sled`, Ktra's default: a directory at `db_config.db_dir_path`.
    Sled,
    /// `db-redis`: the server at `db_config.redis_url`, keys prefixed `ktra:`.
    Redis,
    /// `db-mongo`: the server at `db_config.mongodb_url`.
    Mongodb,
}

impl std::str::FromStr for KtraDatabaseKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "sled" => Ok(Self::Sled),
            "redis" => Ok(Self::Redis),
            "mongodb" | "mongo" => Ok(Self::Mongodb),
            other => Err(format!(
                "unknown Ktra database `{other}`: expected sled, redis or mongodb"
            )),
        }
    }
}

/// The parts of `ktra.toml` an import reads. Unknown keys are ignored, as Ktra ignores them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct KtraFile {
    /// `[index_config]`.
    pub index_config: IndexSection,
    /// `[crate_files_config]`.
    pub crate_files_config: CrateFilesSection,
    /// `[db_config]`.
    pub db_config: DbSection,
}

/// `[index_config]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct IndexSection {
    /// `remote_url`: the index's git remote.
    pub remote_url: Option<String>,
    /// `local_path`: Ktra's clone of the index (default `index`).
    pub local_path: PathBuf,
    /// `branch` (default `main`).
    pub branch: String,
}

impl Default for IndexSection {
    fn default() -> Self {
        Self {
            remote_url: None,
            local_path: PathBuf::from("index"),
            branch: "main".to_owned(),
        }
    }
}

/// `[crate_files_config]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct CrateFilesSection {
    /// `dl_dir_path`: the crate files, `<dir>/<name>/<version>/download` (default `crates`).
    pub dl_dir_path: PathBuf,
}

impl Default for CrateFilesSection {
    fn default() -> Self {
        Self {
            dl_dir_path: PathBuf::from("crates"),
        }
    }
}

/// `[db_config]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct DbSection {
    /// `login_prefix`: what Ktra put before every user name (default `ktra-secure-auth:`).
    pub login_prefix: String,
    /// `db_dir_path`: the sled database (default `db`).
    pub db_dir_path: PathBuf,
    /// `redis_url` (default `redis://localhost`).
    pub redis_url: String,
    /// `mongodb_url` (default `mongodb://localhost:27017`).
    pub mongodb_url: String,
}

impl Default for DbSection {
    fn default() -> Self {
        Self {
            login_prefix: "ktra-secure-auth:".to_owned(),
            db_dir_path: PathBuf::from("db"),
            redis_url: "redis://localhost".to_owned(),
            mongodb_url: "mongodb://localhost:27017".to_owned(),
        }
    }
}

/// Everything an import needs to find a Ktra installation's data, paths made absolute.
#[derive(Debug, Clone)]
pub struct KtraSource {
    /// Which database Ktra ran with.
    pub database: KtraDatabaseKind,
    /// The sled directory.
    pub db_dir_path: PathBuf,
    /// Ktra's Redis.
    pub redis_url: String,
    /// Ktra's MongoDB.
    pub mongodb_url: String,
    /// The login prefix.
    pub login_prefix: String,
    /// The crate files.
    pub dl_dir_path: PathBuf,
    /// A checkout of the index (Ktra's `local_path`, or any clone of its remote).
    pub index_path: PathBuf,
    /// The index's remote, when the file names one.
    pub remote_url: Option<String>,
}

/// Why Ktra's file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The file is not Ktra's TOML.
    #[error("{path} is not a Ktra configuration file: {error}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        error: toml::de::Error,
    },
}

impl KtraFile {
    /// Reads Ktra's configuration file; with none, Ktra's defaults.
    ///
    /// # Errors
    ///
    /// When the file cannot be read or parsed.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.to_owned(),
            error,
        })?;
        toml::from_str(&text).map_err(|error| ConfigError::Parse {
            path: path.to_owned(),
            error,
        })
    }

    /// Resolves the file's paths against `ktra_dir`, the directory Ktra ran in (Ktra reads
    /// relative paths from its working directory).
    pub fn into_source(self, database: KtraDatabaseKind, ktra_dir: &Path) -> KtraSource {
        let absolute = |path: PathBuf| {
            if path.is_absolute() {
                path
            } else {
                ktra_dir.join(path)
            }
        };
        KtraSource {
            database,
            db_dir_path: absolute(self.db_config.db_dir_path),
            redis_url: self.db_config.redis_url,
            mongodb_url: self.db_config.mongodb_url,
            login_prefix: self.db_config.login_prefix,
            dl_dir_path: absolute(self.crate_files_config.dl_dir_path),
            index_path: absolute(self.index_config.local_path),
            remote_url: self.index_config.remote_url.filter(|url| !url.is_empty()),
        }
    }
}

/// A database URL fit for output: the password, if any, replaced by `***`.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    let user = rest[..at].split(':').next().unwrap_or_default();
    format!("{scheme}://{user}:***{}", &rest[at..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_database_urls_are_not_shown() {
        assert_eq!(
            redacted("redis://:s3cret@cache:6379/0"),
            "redis://:***@cache:6379/0"
        );
        assert_eq!(
            redacted("mongodb://ktra:pw@h1,h2/db?authSource=admin"),
            "mongodb://ktra:***@h1,h2/db?authSource=admin"
        );
        assert_eq!(redacted("redis://localhost"), "redis://localhost");
    }

    #[test]
    fn ktra_defaults_apply_to_missing_keys_and_paths_resolve_from_ktras_directory() {
        let file: KtraFile = toml::from_str(
            r#"
            [index_config]
            remote_url = "file:///srv/index.git"
            [db_config]
            db_dir_path = "/var/lib/ktra/db"
            [server_config]
            address = [127, 0, 0, 1]
            port = 8000
            "#,
        )
        .unwrap();
        let source = file.into_source(KtraDatabaseKind::Sled, Path::new("/srv/ktra"));
        assert_eq!(source.db_dir_path, Path::new("/var/lib/ktra/db"));
        assert_eq!(source.dl_dir_path, Path::new("/srv/ktra/crates"));
        assert_eq!(source.index_path, Path::new("/srv/ktra/index"));
        assert_eq!(source.login_prefix, "ktra-secure-auth:");
        assert_eq!(source.redis_url, "redis://localhost");
        assert_eq!(source.remote_url.as_deref(), Some("file:///srv/index.git"));
    }

    #[test]
    fn database_kinds_parse_by_ktras_feature_names() {
        assert_eq!("sled".parse(), Ok(KtraDatabaseKind::Sled));
        assert_eq!("mongo".parse(), Ok(KtraDatabaseKind::Mongodb));
        assert!("postgres".parse::<KtraDatabaseKind>().is_err());
    }
}
