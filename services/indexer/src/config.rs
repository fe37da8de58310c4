//! The indexer's configuration: the git remote and its credentials (`KTRA_GIT_*`), plus the
//! shared `KTRA_REGISTRY_*` and `KTRA_INDEXER_*` sections.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use ktra_core::config::{DEFAULT_API_PORT, IndexerEndpointConfig, RegistryConfig, Settings};
use secrecy::SecretString;
use serde::Deserialize;

/// `KTRA_GIT_*`: the index repository, its remote and how to authenticate to it. The names
/// follow Ktra's `index_config` keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitConfig {
    /// `KTRA_GIT_REMOTE_URL`: the index remote (`file://`, `git://`, `http(s)://`, `ssh://` or
    /// `user@host:path`). Unset: the index is only committed locally, under `local_path`.
    /// A `file://` remote that does not exist yet is created as an empty bare repository.
    pub remote_url: Option<String>,
    /// `KTRA_GIT_LOCAL_PATH`: the indexer's own clone (a bare repository) and state.
    #[serde(default = "default_local_path")]
    pub local_path: PathBuf,
    /// `KTRA_GIT_BRANCH`: the branch cargo reads.
    #[serde(default = "default_branch")]
    pub branch: String,
    /// `KTRA_GIT_HTTPS_USERNAME`: user name for http(s) remotes.
    pub https_username: Option<String>,
    /// `KTRA_GIT_HTTPS_PASSWORD`: password or access token for http(s) remotes.
    pub https_password: Option<SecretString>,
    /// `KTRA_GIT_SSH_PRIVKEY_PATH`: private key for ssh remotes.
    pub ssh_privkey_path: Option<PathBuf>,
    /// `KTRA_GIT_SSH_PUBKEY_PATH`: the matching public key (optional).
    pub ssh_pubkey_path: Option<PathBuf>,
    /// `KTRA_GIT_SSH_KEY_PASSPHRASE`: the private key's passphrase, if any.
    pub ssh_key_passphrase: Option<SecretString>,
    /// `KTRA_GIT_SSH_USERNAME`: ssh user when the URL names none (default `git`).
    pub ssh_username: Option<String>,
    /// `KTRA_GIT_SSH_KNOWN_HOSTS`: a known_hosts file; the remote's host key must be listed in
    /// it. Unset: libgit2 checks `~/.ssh/known_hosts`.
    pub ssh_known_hosts: Option<PathBuf>,
    /// `KTRA_GIT_EMAIL`: commit author email (Ktra's `git_email`).
    #[serde(default = "default_email")]
    pub email: String,
    /// `KTRA_GIT_NAME`: commit author name (Ktra's `git_name`).
    #[serde(default = "default_name")]
    pub name: String,
    /// `KTRA_GIT_RETRY_MAX_SECS`: the longest wait between push retries.
    #[serde(default = "default_retry_max_secs")]
    pub retry_max_secs: u64,
    /// `KTRA_GIT_FETCH_INTERVAL_SECS`: how often an idle indexer fetches to notice commits
    /// pushed by others (and restore the store's state over them).
    #[serde(default = "default_fetch_interval_secs")]
    pub fetch_interval_secs: u64,
    /// `KTRA_GIT_MAX_BATCH`: the most crate files in one commit.
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    /// `KTRA_GIT_OVERWRITE_FOREIGN_FILES`: replace crate files this indexer never wrote even
    /// when the store's file lacks versions they list (see [`crate::foreign`]). Off: such
    /// files are refused and left as they are, so an index written elsewhere loses nothing.
    #[serde(default)]
    pub overwrite_foreign_files: bool,
}

fn default_local_path() -> PathBuf {
    PathBuf::from("./data/index")
}

fn default_branch() -> String {
    "main".to_owned()
}

fn default_email() -> String {
    "ktra@localhost".to_owned()
}

fn default_name() -> String {
    "Ktra".to_owned()
}

fn default_retry_max_secs() -> u64 {
    30
}

fn default_fetch_interval_secs() -> u64 {
    60
}

fn default_max_batch() -> usize {
    4096
}

impl GitConfig {
    /// Returns the longest backoff between retries.
    pub fn retry_max(&self) -> Duration {
        Duration::from_secs(self.retry_max_secs.max(1))
    }
}

/// The indexer's whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The repository and remote.
    pub git: GitConfig,
    /// What `config.json` says.
    pub registry: RegistryConfig,
    /// Where to listen.
    pub endpoint: IndexerEndpointConfig,
    /// `KTRA_HTTP_PORT` (Ktra's `server_config.port`): the API's port, which `config.json`
    /// names when `KTRA_REGISTRY_PUBLIC_URL` is unset, as the API itself does.
    pub api_port: u16,
}

/// The one API listener setting the indexer reads.
#[derive(Debug, Deserialize)]
struct ApiListener {
    #[serde(default = "default_api_port")]
    port: u16,
}

fn default_api_port() -> u16 {
    DEFAULT_API_PORT
}

impl Config {
    /// Reads and checks every section.
    ///
    /// # Errors
    ///
    /// Fails naming the first setting that is missing or malformed.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let git: GitConfig = settings
            .section("KTRA_GIT_")
            .context("invalid configuration in KTRA_GIT_*")?;
        if git.branch.is_empty() || git2::Branch::name_is_valid(&git.branch) != Ok(true) {
            anyhow::bail!(
                "setting KTRA_GIT_BRANCH: `{}` is not a valid branch name",
                git.branch
            );
        }
        if git.max_batch == 0 {
            anyhow::bail!("setting KTRA_GIT_MAX_BATCH: must be at least 1");
        }
        Ok(Self {
            git,
            registry: RegistryConfig::from_settings(settings)?,
            endpoint: IndexerEndpointConfig::from_settings(settings)?,
            api_port: settings
                .section::<ApiListener>("KTRA_HTTP_")
                .context("invalid configuration in KTRA_HTTP_PORT")?
                .port,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_errors() {
        let config = Config::from_settings(&Settings::default()).unwrap();
        assert_eq!(config.git.branch, "main");
        assert_eq!(config.api_port, 8000);
        assert!(!config.git.overwrite_foreign_files);
        let on_9100 =
            Settings::from_pairs([("KTRA_HTTP_PORT", "9100"), ("KTRA_HTTP_ADDRESS", "::")]);
        assert_eq!(Config::from_settings(&on_9100).unwrap().api_port, 9100);
        assert!(config.git.remote_url.is_none());
        for (name, value) in [
            ("KTRA_GIT_BRANCH", "bad..name"),
            ("KTRA_GIT_MAX_BATCH", "0"),
            ("KTRA_GIT_RETRY_MAX_SECS", "x"),
            ("KTRA_GIT_REMOTEURL", "x"),
            ("KTRA_HTTP_PORT", "eighty"),
        ] {
            let error = Config::from_settings(&Settings::from_pairs([(name, value)])).unwrap_err();
            assert!(format!("{error:#}").contains(name), "{error:#}");
        }
    }
}
