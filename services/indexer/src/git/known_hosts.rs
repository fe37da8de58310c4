//! Host key verification for ssh remotes against a known_hosts file
//! (`KTRA_GIT_SSH_KNOWN_HOSTS`), so containers can mount one anywhere.
//!
//! Plain entries (`host[,host...] type base64-key`, hosts possibly as `[host]:port`) are
//! understood; hashed entries (`|1|...`, written by `ssh-keyscan -H`) and `@revoked` or
//! `@cert-authority` lines are skipped, so list the remote with plain host names.

use std::path::Path;

use base64::Engine as _;
use git2::CertificateCheckStatus;
use git2::cert::CertHostkey;

use crate::error::IndexerError;

/// The keys of a known_hosts file.
#[derive(Debug, Clone)]
pub struct KnownHosts {
    /// (host patterns, key blob) per entry.
    entries: Vec<(Vec<String>, Vec<u8>)>,
}

/// Returns the host part of a known_hosts pattern: `[host]:port` gives `host`.
fn host_of(pattern: &str) -> &str {
    pattern
        .strip_prefix('[')
        .and_then(|rest| rest.split_once("]:"))
        .map_or(pattern, |(host, _)| host)
}

impl KnownHosts {
    /// Reads a known_hosts file.
    ///
    /// # Errors
    ///
    /// Fails when the file cannot be read or holds no usable entry.
    pub fn load(path: &Path) -> Result<Self, IndexerError> {
        let text = std::fs::read_to_string(path).map_err(|error| {
            IndexerError::Setup(format!(
                "KTRA_GIT_SSH_KNOWN_HOSTS {}: {error}",
                path.display()
            ))
        })?;
        let known = Self::parse(&text);
        if known.entries.is_empty() {
            return Err(IndexerError::Setup(format!(
                "KTRA_GIT_SSH_KNOWN_HOSTS {}: no plain `host type key` entry",
                path.display()
            )));
        }
        Ok(known)
    }

    fn parse(text: &str) -> Self {
        let engine = base64::engine::general_purpose::STANDARD;
        let entries = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#') && !line.starts_with('@'))
            .filter_map(|line| {
                let mut fields = line.split_whitespace();
                let hosts = fields.next()?;
                let _key_type = fields.next()?;
                let key = engine.decode(fields.next()?).ok()?;
                if hosts.starts_with('|') {
                    return None;
                }
                let patterns = hosts
                    .split(',')
                    .map(|pattern| host_of(pattern).to_owned())
                    .collect();
                Some((patterns, key))
            })
            .collect();
        Self { entries }
    }

    /// Accepts the host key if an entry for `host` lists exactly this key.
    ///
    /// # Errors
    ///
    /// Refuses the connection when the host is unknown or its key differs.
    pub fn check(
        &self,
        host: &str,
        hostkey: &CertHostkey<'_>,
    ) -> Result<CertificateCheckStatus, git2::Error> {
        let Some(offered) = hostkey.hostkey() else {
            return Err(git2::Error::from_str("the ssh server offered no host key"));
        };
        self.check_key(host, offered)
    }

    fn check_key(&self, host: &str, offered: &[u8]) -> Result<CertificateCheckStatus, git2::Error> {
        let mut known_host = false;
        for (patterns, key) in &self.entries {
            if patterns.iter().any(|pattern| pattern == host) {
                known_host = true;
                if key.as_slice() == offered {
                    return Ok(CertificateCheckStatus::CertificateOk);
                }
            }
        }
        let problem = if known_host {
            format!("the host key of {host} does not match KTRA_GIT_SSH_KNOWN_HOSTS")
        } else {
            format!("{host} is not listed in KTRA_GIT_SSH_KNOWN_HOSTS")
        };
        Err(git2::Error::from_str(&problem))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_plain_and_bracketed_hosts_only() {
        let key = base64::engine::general_purpose::STANDARD.encode(b"key-one");
        let other = base64::engine::general_purpose::STANDARD.encode(b"key-two");
        let text = format!(
            "# comment\n[127.0.0.1]:2222,git.example.com ssh-ed25519 {key}\n\
             |1|c2FsdA==|aGFzaA== ssh-ed25519 {other}\n@revoked bad.example.com ssh-ed25519 {other}\n"
        );
        let known = KnownHosts::parse(&text);
        assert!(known.check_key("127.0.0.1", b"key-one").is_ok());
        assert!(known.check_key("git.example.com", b"key-one").is_ok());
        let Err(mismatch) = known.check_key("git.example.com", b"key-two") else {
            panic!("a different key was accepted");
        };
        assert!(mismatch.message().contains("does not match"));
        let Err(unknown) = known.check_key("bad.example.com", b"key-two") else {
            panic!("an unknown host was accepted");
        };
        assert!(unknown.message().contains("not listed"));
    }
}
