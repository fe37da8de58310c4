//! Ktra's TOML file: each key of Ktra's configuration appendix names one environment variable,
//! so a Ktra 0.7 file and the environment feed the same parser.

use std::collections::BTreeMap;
use std::path::Path;

use super::ConfigError;

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

pub(super) fn parse_ktra_toml(
    path: &Path,
    text: &str,
) -> Result<BTreeMap<String, String>, ConfigError> {
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
    use std::path::PathBuf;

    use super::*;
    use crate::config::Settings;
    use crate::config::tests::Http;

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
        let registry = crate::config::RegistryConfig::from_settings(&settings).unwrap();
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
}
