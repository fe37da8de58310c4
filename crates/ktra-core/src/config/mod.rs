//! Configuration of both services: where settings come from and the sections both read.
//!
//! Each service keeps its own sections in one place (`ktra_api::config`,
//! `ktra_indexer::config`); this module holds the sources they parse from ([`Settings`]), Ktra's
//! TOML file ([`ktra_toml`]) and the sections both services read ([`shared`]).
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

pub mod ktra_toml;
pub mod shared;

pub use ktra_toml::{DEFAULT_CONFIG_FILE, KTRA_TOML_KEYS, setting_name};
pub use shared::{DEFAULT_API_PORT, DEFAULT_INDEXER_PORT, IndexerEndpointConfig, RegistryConfig};

use ktra_toml::parse_ktra_toml;

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

/// The `-c`/`--config` option of every Ktra binary: Ktra's TOML file.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConfigFileArg {
    /// Ktra's TOML configuration file (default: ./ktra.toml when present).
    #[arg(short = 'c', long = "config", global = true)]
    pub config: Option<PathBuf>,
}

impl ConfigFileArg {
    /// Loads the settings from the file and this process's environment (see [`Settings::load`]).
    ///
    /// # Errors
    ///
    /// As [`Settings::load`].
    pub fn load(&self) -> Result<Settings, ConfigError> {
        Settings::load(self.config.as_deref(), std::env::vars())
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    /// A section as the services declare theirs, for the tests of both sources.
    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Http {
        pub(super) port: Option<u16>,
        pub(super) address: Option<String>,
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
