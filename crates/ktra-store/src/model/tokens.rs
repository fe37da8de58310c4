//! API tokens: their wire form, scopes and what the store keeps of them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::accounts::User;

/// The public half of an API token: a random id used to find the token's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenId(pub [u8; 8]);

impl TokenId {
    /// Returns the id as lower-case hex, the form stores use as a key.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// An API token as handed to a user once: `ktra_` followed by the id and a 32-byte secret,
/// both in hex. Only the id and the secret's SHA-256 are stored.
///
/// Lookups go by id, which is not secret; the secret's hash is then compared in constant time,
/// so response timing reveals nothing about how much of a guessed secret was right.
#[derive(Clone)]
pub struct ApiToken {
    id: TokenId,
    secret: [u8; 32],
}

impl ApiToken {
    const PREFIX: &'static str = "ktra_";

    /// Generates a token from the operating system's random source.
    pub fn generate() -> Self {
        let mut id = [0_u8; 8];
        let mut secret = [0_u8; 32];
        rand::fill(&mut id);
        rand::fill(&mut secret);
        Self {
            id: TokenId(id),
            secret,
        }
    }

    /// Parses a token presented by a client: one of ours, or one imported from Ktra (see
    /// [`ApiToken::from_imported`]); `None` when it is of neither form.
    pub fn parse(text: &str) -> Option<Self> {
        let Some(body) = text.strip_prefix(Self::PREFIX) else {
            return Self::from_imported(text);
        };
        if body.len() != 16 + 64 || !body.is_ascii() {
            return None;
        }
        let mut id = [0_u8; 8];
        let mut secret = [0_u8; 32];
        hex::decode_to_slice(&body[..16], &mut id).ok()?;
        hex::decode_to_slice(&body[16..], &mut secret).ok()?;
        Some(Self {
            id: TokenId(id),
            secret,
        })
    }

    /// Derives a token from one that Ktra (moriturus/ktra) issued: 16 to 128 ASCII letters and
    /// digits (Ktra's are 32), which Ktra kept in plain text. Its id and secret are two
    /// domain-separated SHA-256 digests of the text, so the import stores only the secret's
    /// hash, as for our own tokens, and the holder keeps presenting the same text. Our tokens
    /// contain `_`, so the two forms never overlap.
    pub fn from_imported(text: &str) -> Option<Self> {
        if !(16..=128).contains(&text.len()) || !text.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return None;
        }
        let digest = |domain: &[u8]| -> [u8; 32] {
            Sha256::new()
                .chain_update(domain)
                .chain_update(text.as_bytes())
                .finalize()
                .into()
        };
        let id_digest = digest(b"ktra imported token id\0");
        let mut id = [0_u8; 8];
        id.copy_from_slice(&id_digest[..8]);
        Some(Self {
            id: TokenId(id),
            secret: digest(b"ktra imported token secret\0"),
        })
    }

    /// Returns the token's id.
    pub fn id(&self) -> TokenId {
        self.id
    }

    /// Returns the SHA-256 of the secret, the form that is stored.
    pub fn secret_hash(&self) -> [u8; 32] {
        Sha256::digest(self.secret).into()
    }

    /// Returns whether `stored_hash` is this token's secret hash, in constant time.
    pub fn matches(&self, stored_hash: &[u8; 32]) -> bool {
        use subtle::ConstantTimeEq;
        self.secret_hash().ct_eq(stored_hash).into()
    }

    /// Returns the token's text, to show the user once.
    pub fn reveal(&self) -> String {
        format!(
            "{}{}{}",
            Self::PREFIX,
            hex::encode(self.id.0),
            hex::encode(self.secret)
        )
    }

    /// Returns the record to store for an unrestricted token without expiry, named `name`.
    pub fn to_new_token(&self, name: &str, created_at: DateTime<Utc>) -> NewToken {
        self.to_new_token_with(TokenDetails::unrestricted(name, created_at))
    }

    /// Returns the record to store for this token with the given details.
    pub fn to_new_token_with(&self, details: TokenDetails) -> NewToken {
        NewToken {
            id: self.id,
            secret_hash: self.secret_hash(),
            details,
        }
    }
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiToken")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// What a token may do beyond reading: crates.io's endpoint scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EndpointScope {
    /// Publish the first version of a crate.
    PublishNew,
    /// Publish a new version of an existing crate.
    PublishUpdate,
    /// Yank and unyank versions.
    Yank,
    /// Add and remove owners.
    ChangeOwners,
    /// Nothing beyond reading; stands alone.
    ReadOnly,
}

impl EndpointScope {
    /// The scope's name as clients write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PublishNew => "publish-new",
            Self::PublishUpdate => "publish-update",
            Self::Yank => "yank",
            Self::ChangeOwners => "change-owners",
            Self::ReadOnly => "read-only",
        }
    }
}

/// What a token is limited to; `None` means unrestricted, as for tokens from `login`.
///
/// Every valid token may read. Crate patterns are crate names, or a name prefix followed by
/// `*` (`*` alone matches every crate); names compare as crates.io compares them, ignoring
/// case and `-`/`_`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenScope {
    /// The actions allowed, or `None` for all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<Vec<EndpointScope>>,
    /// The crates those actions may touch, or `None` for all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crates: Option<Vec<String>>,
}

impl TokenScope {
    /// Returns whether the token has no restriction at all.
    pub fn is_unrestricted(&self) -> bool {
        self.endpoints.is_none() && self.crates.is_none()
    }

    /// Returns whether the token may perform `endpoint` on crate `name`.
    pub fn allows(&self, endpoint: EndpointScope, name: &str) -> bool {
        let endpoint_ok = self
            .endpoints
            .as_ref()
            .is_none_or(|allowed| allowed.contains(&endpoint));
        let crate_ok = self.crates.as_ref().is_none_or(|patterns| {
            patterns
                .iter()
                .any(|pattern| crate_pattern_matches(pattern, name))
        });
        endpoint_ok && crate_ok
    }
}

/// Returns whether a crate pattern (`name`, `prefix*` or `*`) matches `name`.
pub fn crate_pattern_matches(pattern: &str, name: &str) -> bool {
    use ktra_core::name::canonical_crate_name;
    let name = canonical_crate_name(name);
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(&canonical_crate_name(prefix)),
        None => name == canonical_crate_name(pattern),
    }
}

/// The name of tokens stored before tokens had names, and of tokens from `login`.
pub const DEFAULT_TOKEN_NAME: &str = "login";

/// How long a store keeps an expired token's record, so that its holder is told it expired
/// (rather than that it is unknown) and its owner still sees it listed.
pub const EXPIRED_TOKEN_KEPT: chrono::TimeDelta = chrono::TimeDelta::days(30);

/// What a token is for, as its holder described it, and its limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenDetails {
    /// A name for people (`ci-publish`); tokens from `login` are named `login`.
    pub name: String,
    /// When the token was issued.
    pub created_at: DateTime<Utc>,
    /// When the token stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// What the token may do.
    pub scope: TokenScope,
}

impl TokenDetails {
    /// A token without scopes or expiry.
    pub fn unrestricted(name: &str, created_at: DateTime<Utc>) -> Self {
        Self {
            name: name.to_owned(),
            created_at,
            expires_at: None,
            scope: TokenScope::default(),
        }
    }
}

/// A token about to be stored.
#[derive(Debug, Clone)]
pub struct NewToken {
    /// The token's id.
    pub id: TokenId,
    /// SHA-256 of the token's secret.
    pub secret_hash: [u8; 32],
    /// Its name, dates and scope.
    pub details: TokenDetails,
}

/// A stored token and the user it belongs to.
#[derive(Debug, Clone)]
pub struct StoredToken {
    /// The token's id.
    pub id: TokenId,
    /// The owner of the token.
    pub user: User,
    /// SHA-256 of the token's secret.
    pub secret_hash: [u8; 32],
    /// Its name, dates and scope.
    pub details: TokenDetails,
}

/// A token as its owner sees it in a listing: never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// The token's id.
    pub id: TokenId,
    /// Its name, dates and scope.
    pub details: TokenDetails,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_verify() {
        let token = ApiToken::generate();
        let text = token.reveal();
        assert_eq!(text.len(), 5 + 16 + 64);
        let parsed = ApiToken::parse(&text).unwrap();
        assert_eq!(parsed.id(), token.id());
        assert!(parsed.matches(&token.secret_hash()));
        let other = ApiToken::generate();
        assert!(!other.matches(&token.secret_hash()));
        assert!(!format!("{token:?}").contains(&text[21..]));
    }

    #[test]
    fn scopes_limit_endpoints_and_crates() {
        let open = TokenScope::default();
        assert!(open.is_unrestricted());
        assert!(open.allows(EndpointScope::Yank, "anything"));
        let scoped = TokenScope {
            endpoints: Some(vec![EndpointScope::PublishUpdate, EndpointScope::Yank]),
            crates: Some(vec!["acme-*".into(), "exact_name".into()]),
        };
        assert!(scoped.allows(EndpointScope::Yank, "acme_core"));
        assert!(scoped.allows(EndpointScope::PublishUpdate, "Exact-Name"));
        assert!(!scoped.allows(EndpointScope::PublishNew, "acme_core"));
        assert!(!scoped.allows(EndpointScope::Yank, "other"));
        assert!(!scoped.allows(EndpointScope::Yank, "exact_name_2"));
        let read_only = TokenScope {
            endpoints: Some(vec![EndpointScope::ReadOnly]),
            crates: None,
        };
        for endpoint in [
            EndpointScope::PublishNew,
            EndpointScope::PublishUpdate,
            EndpointScope::Yank,
            EndpointScope::ChangeOwners,
        ] {
            assert!(!read_only.allows(endpoint, "foo"));
        }
        assert!(crate_pattern_matches("*", "foo"));
        let json = serde_json::to_string(&scoped).unwrap();
        assert_eq!(
            json,
            r#"{"endpoints":["publish-update","yank"],"crates":["acme-*","exact_name"]}"#
        );
        assert_eq!(serde_json::from_str::<TokenScope>(&json).unwrap(), scoped);
        assert_eq!(serde_json::from_str::<TokenScope>("{}").unwrap(), open);
    }

    #[test]
    fn malformed_tokens_do_not_parse() {
        let text = ApiToken::generate().reveal();
        assert!(ApiToken::parse(&text[1..]).is_none());
        assert!(ApiToken::parse(&text[..text.len() - 1]).is_none());
        assert!(ApiToken::parse(&format!("{}zz", &text[..text.len() - 2])).is_none());
        assert!(ApiToken::parse("").is_none());
        assert!(ApiToken::parse("ktra_\u{e9}").is_none());
    }

    #[test]
    fn tokens_imported_from_ktra_parse_as_they_were_issued() {
        // The form Ktra 0.7 issues: 32 letters and digits.
        let text = "aQkGKnM77Wa1SYkXiPPIqbkWvcIM5G8U";
        let imported = ApiToken::from_imported(text).unwrap();
        let presented = ApiToken::parse(text).unwrap();
        assert_eq!(presented.id(), imported.id());
        assert!(presented.matches(&imported.secret_hash()));
        // Another text, even one character apart, is another token.
        let other = ApiToken::parse("aQkGKnM77Wa1SYkXiPPIqbkWvcIM5G8V").unwrap();
        assert_ne!(other.id(), imported.id());
        assert!(!other.matches(&imported.secret_hash()));
        // Id and secret are not the same digest.
        assert_ne!(&imported.secret_hash()[..8], &imported.id().0[..]);
        for refused in [
            "short15charsabc",
            "Bearer aQkGKnM77Wa1SYkXiPPIqbkWvcIM5G8U",
            "aQkGKnM77Wa1SYkX-PPIqbkWvcIM5G8U",
        ] {
            assert!(ApiToken::parse(refused).is_none(), "{refused}");
        }
        assert!(ApiToken::parse(&"a".repeat(129)).is_none());
        assert!(ApiToken::parse(&"a".repeat(128)).is_some());
    }
}
