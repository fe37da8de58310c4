//! Password hashing with Argon2id, off the async workers.
//!
//! Hashing is deliberately slow, so it runs on tokio's blocking pool behind a semaphore: at most
//! [`crate::config::AuthConfig::hash_permits`] hashes run at once and further logins queue,
//! which keeps a login flood from taking every core (or the blocking pool) from publishes.

use std::sync::Arc;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::config::AuthConfig;
use crate::error::ApiError;

/// Hashes and verifies passwords.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    argon2: Arc<Argon2<'static>>,
    permits: Arc<Semaphore>,
    /// A hash of a random password, verified against when a user does not exist so that the
    /// answer takes as long as for a wrong password.
    decoy_hash: Arc<str>,
}

impl PasswordHasher {
    /// Builds a hasher from the configured Argon2id parameters.
    ///
    /// # Errors
    ///
    /// Fails when the parameters are out of Argon2's range.
    pub fn new(config: &AuthConfig) -> anyhow::Result<Self> {
        let params = Params::new(
            config.argon2_memory_kib,
            config.argon2_iterations,
            config.argon2_parallelism,
            None,
        )
        .map_err(|error| anyhow::anyhow!("setting KTRA_AUTH_ARGON2_*: {error}"))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut decoy = [0_u8; 16];
        rand::fill(&mut decoy);
        let decoy_hash = argon2
            .hash_password(hex::encode(decoy).as_bytes())
            .map_err(|error| anyhow::anyhow!("cannot hash a password: {error}"))?
            .to_string();
        Ok(Self {
            argon2: Arc::new(argon2),
            permits: Arc::new(Semaphore::new(config.hash_permits())),
            decoy_hash: decoy_hash.into(),
        })
    }

    /// Hashes a new password into a PHC string (algorithm, parameters and salt included).
    ///
    /// # Errors
    ///
    /// Internal error when hashing fails.
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        let argon2 = Arc::clone(&self.argon2);
        self.run(move || {
            argon2
                .hash_password(password.as_bytes())
                .map(|hash| hash.to_string())
                .map_err(|error| ApiError::internal(format!("password hashing failed: {error}")))
        })
        .await?
    }

    /// Checks a password against a stored PHC string, or against the decoy when `stored` is
    /// `None` (the answer is then always `false`, after the same work).
    ///
    /// # Errors
    ///
    /// Internal error when the stored hash cannot be parsed.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, ApiError> {
        let argon2 = Arc::clone(&self.argon2);
        let decoy = Arc::clone(&self.decoy_hash);
        self.run(move || {
            let is_real = stored.is_some();
            let text = stored.as_deref().unwrap_or(&decoy);
            let parsed = PasswordHash::new(text)
                .map_err(|error| ApiError::internal(format!("stored password hash: {error}")))?;
            let matches = argon2.verify_password(password.as_bytes(), &parsed).is_ok();
            Ok(is_real && matches)
        })
        .await?
    }

    /// Returns whether a stored hash was made with other parameters than the configured ones
    /// (another Argon2 variant, version or cost, such as a hash imported from Ktra): the next
    /// successful login replaces it.
    pub fn needs_rehash(&self, stored: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(stored) else {
            return true;
        };
        let ours = self.argon2.params();
        parsed.algorithm != Algorithm::Argon2id.ident()
            || parsed.version != Some(Version::V0x13.into())
            || Params::try_from(&parsed).map_or(true, |theirs| {
                (theirs.m_cost(), theirs.t_cost(), theirs.p_cost())
                    != (ours.m_cost(), ours.t_cost(), ours.p_cost())
            })
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| ApiError::internal("the password hasher is closed"))?;
        ktra_core::task::spawn_blocking(work)
            .await
            .map_err(|error| ApiError::internal(format!("password hashing task failed: {error}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> AuthConfig {
        AuthConfig {
            argon2_memory_kib: 64,
            argon2_iterations: 1,
            argon2_parallelism: 1,
            hash_concurrency: Some(1),
            min_password_len: 8,
            registration: crate::config::Registration::Open,
            admins: Vec::new(),
            bootstrap_token: None,
        }
    }

    #[tokio::test]
    async fn hashes_verify_and_use_argon2id() {
        let hasher = PasswordHasher::new(&cheap()).unwrap();
        let hash = hasher.hash("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{hash}");
        assert!(
            hasher
                .verify("correct horse".into(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(!hasher.verify("wrong".into(), Some(hash)).await.unwrap());
        assert!(!hasher.verify("anything".into(), None).await.unwrap());
    }

    #[tokio::test]
    async fn only_hashes_with_other_parameters_need_a_rehash() {
        let hasher = PasswordHasher::new(&cheap()).unwrap();
        let ours = hasher.hash("correct horse".into()).await.unwrap();
        assert!(!hasher.needs_rehash(&ours));
        // Ktra's parameters, and Argon2i: both replaced at the next login.
        let ktra = "$argon2id$v=19$m=4096,t=3,p=4$bFVncFBmSEY3OVo5ampzSTAyZ05lTlRqREltNkNVeDE$Aub2mPt+Utw8YMZolcHKOfJ3Fh0zAa4hdKKfT3+e/L4";
        assert!(hasher.needs_rehash(ktra));
        assert!(hasher.needs_rehash(&ours.replace("$argon2id$", "$argon2i$")));
        assert!(hasher.needs_rehash("not a hash"));
    }
}
