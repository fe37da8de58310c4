//! The records the metadata store keeps and returns.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use ktra_core::index::IndexLine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A user's numeric id; it fits in `u32` because cargo parses owner ids that way.
pub type UserId = u32;

/// A registered user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The user's id.
    pub id: UserId,
    /// The user's login name.
    pub name: String,
}

/// A user together with the password hash needed to log in.
#[derive(Debug, Clone)]
pub struct UserCredentials {
    /// The user.
    pub user: User,
    /// The argon2 PHC string of the password.
    pub password_hash: String,
    /// Whether an administrator disabled the user: no login, no tokens.
    pub disabled: bool,
}

/// Who changes a crate's owners: an owner (checked by the store) or an administrator (not
/// checked; a crate still never loses its last owner).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerActor {
    /// A user who must own the crate.
    Owner(UserId),
    /// An administrator, who may change the owners of any crate.
    Admin,
}

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

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiToken")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
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

/// A single-use invitation to register, by the SHA-256 of its code.
#[derive(Debug, Clone)]
pub struct Invitation {
    /// SHA-256 of the code handed to the invitee.
    pub code_hash: [u8; 32],
    /// The administrator who issued it.
    pub created_by: UserId,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// How many audit events a store keeps; older ones are dropped as new ones arrive.
pub const AUDIT_RETAIN: u64 = 100_000;

/// A security-relevant event: who did what to what, when and from where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// When it happened.
    pub at: DateTime<Utc>,
    /// The user who acted, when known (`None` for anonymous failures).
    pub actor: Option<String>,
    /// What happened: `user.create`, `login.failure`, `token.create`, `crate.publish`, ...
    pub action: String,
    /// What it happened to: a user name, `crate@version`, a token id.
    pub target: String,
    /// The client's address, as the API saw it.
    pub client: Option<String>,
    /// More, when useful: owners added, a token's scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A stored audit event with its position, newest first in listings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// The event's position; pass it as `before` to page further back.
    pub cursor: String,
    /// The event.
    pub event: AuditEvent,
}

/// Returns the key under which a version is unique: the version without build metadata
/// (`1.0.7` and `1.0.7+x` are the same version for cargo).
pub fn version_key(version: &semver::Version) -> String {
    let mut key = version.clone();
    key.build = semver::BuildMetadata::EMPTY;
    key.to_string()
}

/// A version to publish, fully validated by the caller.
#[derive(Debug, Clone)]
pub struct NewVersion {
    /// The index line, with `yanked` false.
    pub line: IndexLine,
    /// The parsed version (`line.vers`).
    pub version: semver::Version,
    /// Where the crate file was stored.
    pub blob_key: String,
    /// The crate's description, for search.
    pub description: Option<String>,
    /// The publishing user; becomes the owner of a new crate and must own an existing one.
    pub publisher: UserId,
    /// The publication time.
    pub published_at: DateTime<Utc>,
    /// The audit event, recorded in the same atomic step as the version.
    pub audit: Option<AuditEvent>,
    /// Whether the crate must already exist (`Some(true)`) or must be new (`Some(false)`),
    /// checked in the same atomic step: a token allowed only one of the two cannot do the
    /// other because the crate appeared or went meanwhile. `None` accepts either.
    pub crate_exists: Option<bool>,
}

/// A crate's index file as the sparse index serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFile {
    /// The crate's name as first published.
    pub name: String,
    /// The file: one JSON line per version, each ending in `\n`.
    pub content: Bytes,
    /// A strong validator of the content (quoted, ready for the `ETag` header).
    pub etag: String,
    /// When the content last changed.
    pub last_modified: DateTime<Utc>,
    /// Bumped by every change; the indexer acknowledges revisions.
    pub revision: u64,
}

impl IndexFile {
    /// Computes the entity tag of a file's content.
    pub fn etag_of(content: &[u8]) -> String {
        let digest = Sha256::digest(content);
        format!("\"{}\"", hex::encode(&digest[..16]))
    }
}

/// A crate's name, owners and versions, as checks before a publish need them.
#[derive(Debug, Clone)]
pub struct CrateSummary {
    /// The name as first published.
    pub name: String,
    /// The owners' ids.
    pub owners: Vec<UserId>,
    /// The versions, in publish order.
    pub versions: Vec<VersionSummary>,
}

/// One version of a crate, briefly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionSummary {
    /// The version as published.
    pub version: String,
    /// Whether it is yanked.
    pub yanked: bool,
}

/// Where a version's crate file lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrateFileRef {
    /// The crate's name as published.
    pub name: String,
    /// The version as published.
    pub version: String,
    /// The blob store key.
    pub blob_key: String,
    /// SHA-256 of the file, hex.
    pub cksum: String,
}

/// One search result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchHit {
    /// The crate name.
    pub name: String,
    /// The highest version that is not yanked (`0.0.0` when all are).
    pub max_version: String,
    /// The latest published description.
    pub description: Option<String>,
}

/// A page of search results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchPage {
    /// The hits on this page.
    pub hits: Vec<SearchHit>,
    /// How many crates match in all.
    pub total: u64,
}

/// A crate whose latest revision the indexer has not acknowledged yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingChange {
    /// The crate's canonical name.
    pub canonical: String,
    /// The revision waiting for acknowledgement.
    pub revision: u64,
}

/// How far the indexer lags the store: what [`crate::IndexStore::pending_summary`] counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PendingSummary {
    /// Crates whose latest revision the indexer has not acknowledged.
    pub crates: u64,
    /// When the oldest of those changes was made (the change that marked its crate); `None`
    /// when nothing waits, or only marks older than this measure do.
    pub oldest: Option<DateTime<Utc>>,
}

/// Returns the highest non-yanked version among `versions`, or `0.0.0` when none qualifies.
pub fn max_version<'a>(versions: impl IntoIterator<Item = &'a VersionSummary>) -> String {
    versions
        .into_iter()
        .filter(|summary| !summary.yanked)
        .filter_map(|summary| semver::Version::parse(&summary.version).ok())
        .max_by(|a, b| a.cmp_precedence(b).then_with(|| a.cmp(b)))
        .map_or_else(|| "0.0.0".to_owned(), |version| version.to_string())
}

/// Orders search hits: the exact name first, then names starting with the query, then the rest,
/// each group alphabetically.
pub fn search_rank(query_lower: &str, canonical: &str) -> (u8, String) {
    let query = ktra_core::name::canonical_crate_name(query_lower);
    let group = if canonical == query {
        0
    } else if canonical.starts_with(&query) {
        1
    } else {
        2
    };
    (group, canonical.to_owned())
}

/// The shortest query matched anywhere in a name; shorter queries match name prefixes.
pub const MIN_SUBSTRING_QUERY: usize = 3;

/// Splits text into the lower-case words search matches descriptions by.
pub fn words(text: &str) -> Vec<String> {
    let mut words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .collect();
    words.sort();
    words.dedup();
    words
}

/// Returns the three-character windows of a canonical name, the keys of the name index.
pub fn trigrams(canonical: &str) -> Vec<String> {
    let chars: Vec<char> = canonical.chars().collect();
    let mut grams: Vec<String> = chars
        .windows(3)
        .map(|window| window.iter().collect())
        .collect();
    grams.sort();
    grams.dedup();
    grams
}

/// Returns whether a crate matches a search query: the query, folded like crate names, occurs
/// in the name (for queries shorter than [`MIN_SUBSTRING_QUERY`], starts it), or every word of
/// the query is a word of the description.
pub fn search_matches(query: &str, canonical: &str, description: Option<&str>) -> bool {
    let folded = ktra_core::name::canonical_crate_name(query);
    let name_matches = if folded.chars().count() < MIN_SUBSTRING_QUERY {
        canonical.starts_with(&folded)
    } else {
        canonical.contains(&folded)
    };
    if name_matches {
        return true;
    }
    let wanted = words(query);
    !wanted.is_empty()
        && description.is_some_and(|text| {
            let have = words(text);
            wanted.iter().all(|word| have.binary_search(word).is_ok())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_key_drops_build_metadata_only() {
        let version = semver::Version::parse("1.0.7-rc.1+build.5").unwrap();
        assert_eq!(version_key(&version), "1.0.7-rc.1");
    }

    #[test]
    fn search_matches_names_and_description_words() {
        assert!(search_matches("Serde", "serde_json", None));
        assert!(search_matches("json", "serde_json", None));
        assert!(!search_matches("js", "serde_json", None));
        assert!(search_matches("se", "serde_json", None));
        assert!(search_matches(
            "fast JSON",
            "simd",
            Some("A fast json parser.")
        ));
        assert!(!search_matches(
            "fast xml",
            "simd",
            Some("A fast json parser.")
        ));
        assert_eq!(trigrams("serde"), ["erd", "rde", "ser"]);
        assert_eq!(words("Fast, FAST json!"), ["fast", "json"]);
    }

    #[test]
    fn max_version_skips_yanked() {
        let versions = [
            VersionSummary {
                version: "1.0.0".into(),
                yanked: false,
            },
            VersionSummary {
                version: "2.0.0".into(),
                yanked: true,
            },
            VersionSummary {
                version: "1.5.0-beta".into(),
                yanked: false,
            },
        ];
        assert_eq!(max_version(&versions), "1.5.0-beta");
        assert_eq!(max_version(&versions[1..2]), "0.0.0");
    }

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
