//! Configuration sources shared by both services.
//!
//! Every setting has one environment variable name (`KTRA_<SECTION>_<KEY>`). Ktra's TOML file
//! is accepted as well: each key of Ktra's configuration appendix maps to one of those names
//! (see [`KTRA_TOML_KEYS`]), so the file and the environment feed the same parser. Precedence,
//! lowest first: built-in defaults, the TOML file, the environment.
//!
//! Each service reads its concerns as flat structs with [`Settings::section`]; the structs use
//! `#[serde(deny_unknown_fields)]` so that a misspelt variable fails at start instead of being
//! silently ignored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// Every variable prefix the two services read. A `KTRA_` variable outside these is a typo.
pub const KNOWN_PREFIXES: &[&str] = &[
    "KTRA_HTTP_",
    "KTRA_REGISTRY_",
    "KTRA_DB_",
    "KTRA_BLOB_",
    "KTRA_S3_",
    "KTRA_AUTH_",
    "KTRA_LIMITS_",
    "KTRA_INDEXER_",
    "KTRA_GIT_",
    "KTRA_LOG_",
    "KTRA_MIRROR_",
];

/// The file read when no `-c` is given, if it exists (Ktra's behaviour).
pub const DEFAULT_CONFIG_FILE: &str = "ktra.toml";

/// How a value in Ktra's TOML file becomes a string for the environment-style parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TomlShape {
    /// A string, number or boolean, used as written.
    Scalar,
    /// An array of four octets, `[0, 0, 0, 0]`, or a string address.
    Address,
    /// An array of path segments, `["dl"]`, or a string path.
    Segments,
}

/// Ktra's TOML keys (`section.key`) and the variable each one sets.
pub const KTRA_TOML_KEYS: &[(&str, &str)] = &[
    ("index_config.remote_url", "KTRA_GIT_REMOTE_URL"),
    ("index_config.local_path", "KTRA_GIT_LOCAL_PATH"),
    ("index_config.branch", "KTRA_GIT_BRANCH"),
    ("index_config.https_username", "KTRA_GIT_HTTPS_USERNAME"),
    ("index_config.https_password", "KTRA_GIT_HTTPS_PASSWORD"),
    ("index_config.ssh_privkey_path", "KTRA_GIT_SSH_PRIVKEY_PATH"),
    (
        "index_config.ssh_key_passphrase",
        "KTRA_GIT_SSH_KEY_PASSPHRASE",
    ),
    ("index_config.ssh_pubkey_path", "KTRA_GIT_SSH_PUBKEY_PATH"),
    ("index_config.ssh_username", "KTRA_GIT_SSH_USERNAME"),
    // Ktra reads `name` and `email`; its book says `git_name` and `git_email`: both work.
    ("index_config.email", "KTRA_GIT_EMAIL"),
    ("index_config.name", "KTRA_GIT_NAME"),
    ("index_config.git_email", "KTRA_GIT_EMAIL"),
    ("index_config.git_name", "KTRA_GIT_NAME"),
    ("crate_files_config.dl_dir_path", "KTRA_BLOB_DIR_PATH"),
    (
        "crate_files_config.cache_dir_path",
        "KTRA_MIRROR_CACHE_DIR_PATH",
    ),
    ("crate_files_config.dl_path", "KTRA_REGISTRY_DL_PATH"),
    ("db_config.db_dir_path", "KTRA_DB_DIR_PATH"),
    ("db_config.redis_url", "KTRA_DB_REDIS_URL"),
    ("db_config.redis_sentinels", "KTRA_DB_REDIS_SENTINELS"),
    (
        "db_config.redis_sentinel_master",
        "KTRA_DB_REDIS_SENTINEL_MASTER",
    ),
    (
        "db_config.redis_sentinel_username",
        "KTRA_DB_REDIS_SENTINEL_USERNAME",
    ),
    (
        "db_config.redis_sentinel_password",
        "KTRA_DB_REDIS_SENTINEL_PASSWORD",
    ),
    (
        "db_config.redis_wait_replicas",
        "KTRA_DB_REDIS_WAIT_REPLICAS",
    ),
    (
        "db_config.redis_wait_timeout_ms",
        "KTRA_DB_REDIS_WAIT_TIMEOUT_MS",
    ),
    ("db_config.mongodb_url", "KTRA_DB_MONGODB_URL"),
    ("db_config.login_prefix", "KTRA_DB_LOGIN_PREFIX"),
    ("server_config.address", "KTRA_HTTP_ADDRESS"),
    ("server_config.port", "KTRA_HTTP_PORT"),
    // Settings Ktra had no key for (it was one process with no public URL or database kind
    // to name); in the file so that one Ktra-style file can run both services.
    ("server_config.public_url", "KTRA_REGISTRY_PUBLIC_URL"),
    ("db_config.kind", "KTRA_DB_KIND"),
    ("indexer_config.url", "KTRA_INDEXER_URL"),
    ("indexer_config.listen", "KTRA_INDEXER_LISTEN"),
    (
        "indexer_config.metrics_listen",
        "KTRA_INDEXER_METRICS_LISTEN",
    ),
];

/// Names a setting for a message: the variable, and Ktra's TOML key when it has one
/// (`KTRA_DB_REDIS_URL (db_config.redis_url)`), so users find it the way they wrote it.
pub fn setting_name(variable: &str) -> String {
    match KTRA_TOML_KEYS.iter().find(|(_, name)| *name == variable) {
        Some((key, _)) => format!("{variable} ({key})"),
        None => variable.to_owned(),
    }
}

fn toml_shape(key: &str) -> TomlShape {
    match key {
        "server_config.address" => TomlShape::Address,
        "crate_files_config.dl_path" => TomlShape::Segments,
        _ => TomlShape::Scalar,
    }
}

/// A configuration that cannot be used; the message names the setting.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file cannot be read.
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML.
    #[error("configuration file {path} is not valid TOML: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A key or value in the configuration file is not accepted.
    #[error("configuration file {path}: setting `{key}` {problem}")]
    FileSetting {
        /// The file.
        path: PathBuf,
        /// The TOML key, `section.key`.
        key: String,
        /// What is wrong with it.
        problem: String,
    },
    /// An environment variable is not accepted.
    #[error("setting {variable}: {problem}")]
    Setting {
        /// The variable name, or a prefix followed by `*` when the parser did not say which.
        variable: String,
        /// What is wrong with it.
        problem: String,
    },
}

/// The merged settings: the TOML file's values overlaid by the environment, by variable name.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    vars: BTreeMap<String, String>,
}

impl Settings {
    /// Loads settings from Ktra's TOML file (the given one, else `./ktra.toml` when present) and
    /// from the given environment, which wins over the file.
    ///
    /// # Errors
    ///
    /// Fails when the file cannot be read or holds an unknown key or a value of the wrong shape,
    /// or when a `KTRA_` variable belongs to no known section.
    pub fn load(
        config_file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let default_file = Path::new(DEFAULT_CONFIG_FILE);
        let file = match config_file {
            Some(path) => Some(path),
            None if default_file.is_file() => Some(default_file),
            None => None,
        };
        let mut vars = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                parse_ktra_toml(path, &text)?
            }
            None => BTreeMap::new(),
        };
        for (name, value) in env {
            // An empty variable counts as unset: deployment files write `X: ${X:-}`.
            if !name.starts_with("KTRA_") || value.is_empty() {
                continue;
            }
            if !KNOWN_PREFIXES.iter().any(|prefix| name.starts_with(prefix)) {
                return Err(ConfigError::Setting {
                    variable: name,
                    problem: format!(
                        "unknown variable: Ktra reads only {}",
                        KNOWN_PREFIXES
                            .iter()
                            .map(|prefix| format!("{prefix}*"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
            vars.insert(name, value);
        }
        Ok(Self { vars })
    }

    /// Builds settings from variable pairs only, as tests do.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self {
            vars: pairs
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value.to_owned()))
                .collect(),
        }
    }

    /// Returns a copy with one more variable set.
    #[must_use]
    pub fn with(mut self, name: &str, value: &str) -> Self {
        self.vars.insert(name.to_owned(), value.to_owned());
        self
    }

    /// Returns whether the variable was given (in the environment or, through its TOML key, in
    /// the file), not left to its default.
    pub fn is_set(&self, variable: &str) -> bool {
        self.vars.contains_key(variable)
    }

    /// Parses the variables under `prefix` (e.g. `KTRA_HTTP_`) into a section struct.
    ///
    /// # Errors
    ///
    /// Fails naming the variable when a value does not parse or a name is unknown.
    pub fn section<T: DeserializeOwned>(&self, prefix: &str) -> Result<T, ConfigError> {
        let pairs = self.pairs_under(prefix);
        envy::prefixed(prefix)
            .from_iter(pairs.clone())
            .map_err(|error| Self::describe_envy_error::<T>(prefix, &pairs, &error))
    }

    fn pairs_under(&self, prefix: &str) -> Vec<(String, String)> {
        self.vars
            .iter()
            .filter(|(name, _)| name.starts_with(prefix))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect()
    }

    /// Turns envy's message into one that names the variable. envy names fields in lower case
    /// without the prefix, and for some failures (enum variants, addresses) not at all; then
    /// the variable that fails on its own with the same message is the culprit.
    fn describe_envy_error<T: DeserializeOwned>(
        prefix: &str,
        pairs: &[(String, String)],
        error: &envy::Error,
    ) -> ConfigError {
        let message = error.to_string();
        let culprit = pairs.iter().find(|pair| {
            envy::prefixed(prefix)
                .from_iter::<_, T>([(*pair).clone()])
                .is_err_and(|alone| alone.to_string() == message)
        });
        match culprit {
            Some((name, _)) if !message.contains(" provided by ") => ConfigError::Setting {
                variable: name.clone(),
                problem: message,
            },
            _ => describe_named_field(prefix, message),
        }
    }
}

/// Names the variable when envy's message names the field.
fn describe_named_field(prefix: &str, message: String) -> ConfigError {
    let variable_of = |field: &str| format!("{prefix}{}", field.to_ascii_uppercase());
    if let Some(field) = message.strip_prefix("missing value for field ") {
        return ConfigError::Setting {
            variable: variable_of(field.trim_matches('`')),
            problem: "required but not set".to_owned(),
        };
    }
    if let Some(field) = message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split('`').next())
    {
        return ConfigError::Setting {
            variable: variable_of(field),
            problem: "unknown variable".to_owned(),
        };
    }
    if let Some((problem, field)) = message.rsplit_once(" provided by ") {
        return ConfigError::Setting {
            variable: variable_of(field.trim()),
            problem: problem.to_owned(),
        };
    }
    ConfigError::Setting {
        variable: format!("{prefix}*"),
        problem: message,
    }
}

fn parse_ktra_toml(path: &Path, text: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    let table: toml::Table = toml::from_str(text).map_err(|error| ConfigError::Syntax {
        path: path.to_owned(),
        message: error.message().to_owned(),
    })?;
    let setting_error = |key: &str, problem: String| ConfigError::FileSetting {
        path: path.to_owned(),
        key: key.to_owned(),
        problem,
    };
    let mut vars = BTreeMap::new();
    for (section, body) in &table {
        let toml::Value::Table(body) = body else {
            return Err(setting_error(section, "must be a table".to_owned()));
        };
        if section == "openid_config" {
            tracing::warn!(
                section = "openid_config",
                "OpenID login is not supported; the section is ignored"
            );
            continue;
        }
        for (key, value) in body {
            let full_key = format!("{section}.{key}");
            let Some((_, variable)) = KTRA_TOML_KEYS.iter().find(|(k, _)| *k == full_key) else {
                return Err(setting_error(&full_key, "is not a Ktra setting".to_owned()));
            };
            let rendered = render_toml_value(toml_shape(&full_key), value)
                .map_err(|problem| setting_error(&full_key, problem))?;
            vars.insert((*variable).to_owned(), rendered);
        }
    }
    Ok(vars)
}

fn render_toml_value(shape: TomlShape, value: &toml::Value) -> Result<String, String> {
    match (shape, value) {
        (_, toml::Value::String(text)) => Ok(text.clone()),
        (TomlShape::Scalar, toml::Value::Integer(number)) => Ok(number.to_string()),
        (TomlShape::Scalar, toml::Value::Boolean(flag)) => Ok(flag.to_string()),
        (TomlShape::Address, toml::Value::Array(octets)) => {
            let parsed: Option<Vec<u8>> = octets
                .iter()
                .map(|octet| octet.as_integer().and_then(|n| u8::try_from(n).ok()))
                .collect();
            match parsed.as_deref() {
                Some([a, b, c, d]) => Ok(format!("{a}.{b}.{c}.{d}")),
                _ => Err("must be four octets such as [0, 0, 0, 0] or an address string".into()),
            }
        }
        (TomlShape::Segments, toml::Value::Array(segments)) => {
            let parsed: Option<Vec<&str>> = segments.iter().map(toml::Value::as_str).collect();
            match parsed {
                Some(parts) if !parts.is_empty() => Ok(parts.join("/")),
                _ => Err("must be a non-empty array of path segments such as [\"dl\"]".into()),
            }
        }
        _ => Err(format!("has the wrong type ({})", value.type_str())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Http {
        #[serde(default)]
        port: Option<u16>,
        #[serde(default)]
        address: Option<String>,
    }

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ktra.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn ktra_toml_maps_to_variables_and_env_wins() {
        let (_dir, path) = write(
            r#"
            [server_config]
            address = [127, 0, 0, 1]
            port = 9000
            [crate_files_config]
            dl_path = ["a", "b"]
            dl_dir_path = "/srv/crates"
            [index_config]
            remote_url = "https://example.com/index.git"
            branch = "main"
            [db_config]
            login_prefix = "ktra-secure-auth:"
            "#,
        );
        let settings = Settings::load(
            Some(&path),
            [("KTRA_HTTP_PORT".to_owned(), "9100".to_owned())],
        )
        .unwrap();
        let http: Http = settings.section("KTRA_HTTP_").unwrap();
        assert_eq!(
            http,
            Http {
                port: Some(9100),
                address: Some("127.0.0.1".into()),
            }
        );
        let registry = crate::registry::RegistryConfig::from_settings(&settings).unwrap();
        assert_eq!(registry.dl_segments(), ["a", "b"]);
    }

    #[test]
    fn a_file_ktra_0_7_reads_is_read_whole() {
        // Every section and key of the file the real Ktra 0.7.0 ran with in our tests.
        let (_dir, path) = write(
            r#"
            [index_config]
            remote_url = "file:///srv/index.git"
            local_path = "/srv/index"
            branch = "main"
            name = "ktra"
            email = "ktra@example.com"
            [crate_files_config]
            dl_dir_path = "/srv/crates"
            cache_dir_path = "/srv/crates_io_caches"
            dl_path = ["dl"]
            [db_config]
            db_dir_path = "/srv/db"
            login_prefix = "ktra-secure-auth:"
            [server_config]
            address = [127, 0, 0, 1]
            port = 18080
            "#,
        );
        #[derive(Debug, PartialEq, serde::Deserialize)]
        struct Git {
            name: String,
            email: String,
        }
        let settings = Settings::load(Some(&path), []).unwrap();
        let git: Git = settings.section("KTRA_GIT_").unwrap();
        assert_eq!(
            git,
            Git {
                name: "ktra".into(),
                email: "ktra@example.com".into()
            }
        );
        assert_eq!(
            setting_name("KTRA_GIT_EMAIL"),
            "KTRA_GIT_EMAIL (index_config.email)"
        );
    }

    #[test]
    fn unknown_toml_key_is_named() {
        let (_dir, path) = write("[server_config]\nprot = 8000\n");
        let error = Settings::load(Some(&path), []).unwrap_err().to_string();
        assert!(error.contains("`server_config.prot`"), "{error}");
    }

    #[test]
    fn wrong_toml_shape_is_named() {
        let (_dir, path) = write("[server_config]\naddress = [1, 2, 3]\n");
        let error = Settings::load(Some(&path), []).unwrap_err().to_string();
        assert!(error.contains("`server_config.address`"), "{error}");
    }

    #[test]
    fn empty_variables_are_unset() {
        let settings = Settings::load(
            None,
            [
                ("KTRA_HTTP_PORT".to_owned(), String::new()),
                ("KTRA_HTTP_ADDRESS".to_owned(), "127.0.0.1".to_owned()),
            ],
        )
        .unwrap();
        let http: Http = settings.section("KTRA_HTTP_").unwrap();
        assert_eq!(http.port, None);
        assert_eq!(http.address.as_deref(), Some("127.0.0.1"));
    }

    #[test]
    fn unknown_prefix_is_refused() {
        let error = Settings::load(None, [("KTRA_HTPP_PORT".to_owned(), "1".to_owned())])
            .unwrap_err()
            .to_string();
        assert!(error.contains("KTRA_HTPP_PORT"), "{error}");
    }

    #[test]
    fn bad_values_and_typos_name_the_variable() {
        let settings = Settings::from_pairs([("KTRA_HTTP_PORT", "eighty")]);
        let error = settings
            .section::<Http>("KTRA_HTTP_")
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("setting KTRA_HTTP_PORT:"), "{error}");

        let settings = Settings::from_pairs([("KTRA_HTTP_PROT", "80")]);
        let error = settings
            .section::<Http>("KTRA_HTTP_")
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("setting KTRA_HTTP_PROT:"), "{error}");
    }
}
