//! How the indexer authenticates to its remote and checks the remote's host key: the
//! callbacks every fetch and push uses.

use std::cell::RefCell;

use git2::{CertificateCheckStatus, Cred, CredentialType, RemoteCallbacks};
use secrecy::ExposeSecret;

use crate::config::GitConfig;
use crate::git::known_hosts::KnownHosts;

/// Returns the callbacks for one fetch or push: credentials from `config` (ssh key or agent,
/// https user and password), given up after three refusals, and, with `known_hosts`, ssh host
/// keys checked against it (TLS certificates keep libgit2's own verification).
pub(crate) fn remote_callbacks<'a>(
    config: &'a GitConfig,
    known_hosts: Option<&'a KnownHosts>,
) -> RemoteCallbacks<'a> {
    let mut callbacks = RemoteCallbacks::new();
    let attempts = RefCell::new(0_u32);
    callbacks.credentials(move |_url, username_from_url, allowed| {
        let mut count = attempts.borrow_mut();
        *count += 1;
        if *count > 3 {
            return Err(git2::Error::from_str(
                "the remote refused the configured credentials",
            ));
        }
        credentials(config, username_from_url, allowed)
    });
    if let Some(known_hosts) = known_hosts {
        callbacks.certificate_check(move |cert, host| match cert.as_hostkey() {
            Some(hostkey) => known_hosts.check(host, hostkey),
            None => Ok(CertificateCheckStatus::CertificatePassthrough),
        });
    }
    callbacks
}

fn credentials(
    config: &GitConfig,
    username_from_url: Option<&str>,
    allowed: CredentialType,
) -> Result<Cred, git2::Error> {
    let ssh_user = username_from_url
        .map(str::to_owned)
        .or_else(|| config.ssh_username.clone())
        .unwrap_or_else(|| "git".to_owned());
    if allowed.contains(CredentialType::SSH_KEY) {
        return match &config.ssh_privkey_path {
            Some(private_key) => Cred::ssh_key(
                &ssh_user,
                config.ssh_pubkey_path.as_deref(),
                private_key,
                config
                    .ssh_key_passphrase
                    .as_ref()
                    .map(|secret| secret.expose_secret()),
            ),
            None => Cred::ssh_key_from_agent(&ssh_user),
        };
    }
    if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
        return match (&config.https_username, &config.https_password) {
            (Some(user), Some(password)) => {
                Cred::userpass_plaintext(user, password.expose_secret())
            }
            (None, Some(password)) => Cred::userpass_plaintext(
                username_from_url.unwrap_or("git"),
                password.expose_secret(),
            ),
            _ => Err(git2::Error::from_str(
                "the remote asks for a password: set KTRA_GIT_HTTPS_USERNAME and KTRA_GIT_HTTPS_PASSWORD",
            )),
        };
    }
    if allowed.contains(CredentialType::USERNAME) {
        return Cred::username(&ssh_user);
    }
    Cred::default()
}
