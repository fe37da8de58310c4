//! The metadata store seam, one trait per domain.
//!
//! The store is the registry's source of truth. Every method that changes more than one record
//! does so atomically, and checks its preconditions (ownership, version uniqueness, name
//! collisions) inside the same atomic step, so that several API replicas may call it at once
//! without read-modify-write races. A method that returns an error has written nothing.
//!
//! Every method that changes what users, tokens, invitations, crates or owners are takes the
//! [`AuditEvent`] that records it and appends it in the same atomic step, so the log holds
//! exactly the changes that happened. [`AuditLog::record_audit`] is for events that change
//! nothing else (a refused login).
//!
//! Crates are named by [`CrateId`], derived once where a name enters the registry.
//!
//! [`MetadataStore`] is every domain together, as the API holds it; a backend implements each
//! domain trait in its own file (`embedded/accounts.rs`, `redis/accounts.rs`, ...).

use std::sync::Arc;

use async_trait::async_trait;

use crate::error::StoreError;
use ktra_core::metadata::VersionMetadata;
use ktra_core::name::CrateId;
use ktra_core::version::VersionId;

use crate::model::{
    AuditEvent, AuditRecord, CrateDetails, CrateDownloads, CrateFileRef, CrateOverview,
    CrateSummary, DownloadCount, IndexFile, Invitation, NewSession, NewToken, NewUser, NewVersion,
    OwnerChange, PasswordChange, PendingChange, PendingSummary, SearchPage, Session, StoredToken,
    TokenId, TokenInfo, User, UserCredentials, UserId, UserSummary, YankChange,
};
use crate::observer::{StoreKind, StoreObserver, observe};

/// Defines each domain trait, and with it how [`InstrumentedStore`] passes every method on, so
/// that a method's signature is written down once.
macro_rules! store_domains {
    ($(
        $(#[$trait_meta:meta])*
        pub trait $trait:ident {
            $(
                $(#[$method_meta:meta])*
                async fn $method:ident(&self $(, $arg:ident: $ty:ty)* $(,)?) -> $ret:ty;
            )*
        }
    )*) => {
        $(
            $(#[$trait_meta])*
            #[async_trait]
            pub trait $trait: Send + Sync {
                $(
                    $(#[$method_meta])*
                    async fn $method(&self $(, $arg: $ty)*) -> $ret;
                )*
            }

            #[async_trait]
            impl $trait for InstrumentedStore {
                $(
                    async fn $method(&self $(, $arg: $ty)*) -> $ret {
                        self.observe(stringify!($method), self.inner.$method($($arg),*))
                            .await
                    }
                )*
            }
        )*
    };
}

/// Every domain of the metadata store: what the API service holds.
#[async_trait]
pub trait MetadataStore:
    AccountStore
    + SessionStore
    + DownloadStore
    + CrateStore
    + IndexStore
    + AuditLog
    + CoordinationStore
    + std::fmt::Debug
{
    /// Checks that the store answers.
    async fn ping(&self) -> Result<(), StoreError>;
}

store_domains! {
    /// Users, their password hashes, tokens and invitations.
    pub trait AccountStore {
        /// Creates a user holding one token and, when the user comes with an invitation, uses
        /// it up in the same step. The invitation is checked before the name, so a guessed code
        /// learns nothing about which names exist.
        ///
        /// # Errors
        ///
        /// [`StoreError::InvitationInvalid`] when the invitation is unknown, used, or expired at
        /// the token's creation time; [`StoreError::UserExists`] when the name is taken (the
        /// invitation is kept then).
        async fn create_user(&self, user: NewUser) -> Result<User, StoreError>;

        /// Stores a single-use invitation.
        async fn create_invitation(
            &self,
            invitation: Invitation,
            audit: AuditEvent,
        ) -> Result<(), StoreError>;

        /// Returns a user and their password hash.
        async fn user_credentials(&self, name: &str) -> Result<Option<UserCredentials>, StoreError>;

        /// Adds a token to a user, keeping the others.
        ///
        /// # Errors
        ///
        /// [`StoreError::UserDisabled`] when the user is disabled, checked in the same step.
        async fn add_token(
            &self,
            user: UserId,
            token: NewToken,
            audit: AuditEvent,
        ) -> Result<(), StoreError>;

        /// Lists a user's tokens, oldest first.
        async fn list_tokens(&self, user: UserId) -> Result<Vec<TokenInfo>, StoreError>;

        /// Revokes one of a user's tokens.
        ///
        /// # Errors
        ///
        /// [`StoreError::TokenNotFound`] when the user has no such token.
        async fn revoke_token(
            &self,
            user: UserId,
            id: TokenId,
            audit: AuditEvent,
        ) -> Result<(), StoreError>;

        /// Disables a user (revoking every token and unused invitation of theirs in the same step)
        /// or enables them again. Returns the user.
        ///
        /// # Errors
        ///
        /// [`StoreError::UserNotFound`] when the name is unknown.
        async fn set_user_disabled(
            &self,
            name: &str,
            disabled: bool,
            audit: AuditEvent,
        ) -> Result<User, StoreError>;

        /// Replaces the password, revokes every token of the user and stores the change's token
        /// as the only one, provided the stored hash is still the one the caller checked.
        ///
        /// # Errors
        ///
        /// [`StoreError::PasswordChanged`] when another change won the race,
        /// [`StoreError::UserDisabled`] when the user was disabled meanwhile.
        async fn change_password(&self, change: PasswordChange) -> Result<(), StoreError>;

        /// Replaces the password hash with a new hash of the same password (new parameters),
        /// provided the stored hash is still `old_password_hash`; tokens are kept. Returns whether
        /// it was replaced (not when another change won the race, or the user is gone).
        async fn rehash_password(
            &self,
            user: UserId,
            old_password_hash: &str,
            new_password_hash: &str,
        ) -> Result<bool, StoreError>;

        /// Returns a token's record and the user it belongs to; the caller verifies the secret.
        async fn token(&self, id: TokenId) -> Result<Option<StoredToken>, StoreError>;
    }

    /// Crates, their versions and owners: publishing, yanking, owner changes and search.
    pub trait CrateStore {
        /// Returns a crate's name, owners and versions.
        async fn crate_summary(&self, krate: &CrateId) -> Result<Option<CrateSummary>, StoreError>;

        /// Returns a crate's name, owners and versions with what each says about itself, for
        /// pages and the crates.io read API.
        async fn crate_details(&self, krate: &CrateId) -> Result<Option<CrateDetails>, StoreError>;

        /// Returns every crate, briefly, in canonical order: for listings, which the API
        /// caches (one read of every crate record).
        async fn crates_overview(&self) -> Result<Vec<CrateOverview>, StoreError>;

        /// Returns a version's README as kept at publish (or by the backfill); `None` when the
        /// version has none or does not exist.
        async fn readme(
            &self,
            krate: &CrateId,
            version: &VersionId,
        ) -> Result<Option<String>, StoreError>;

        /// Keeps the metadata and README of a version whose metadata was not kept yet (one
        /// published before the registry kept it); returns whether it did. A version that has
        /// metadata keeps it, and a missing version is no error (`false`).
        async fn keep_version_metadata(
            &self,
            krate: &CrateId,
            version: &VersionId,
            metadata: VersionMetadata,
            readme: Option<String>,
        ) -> Result<bool, StoreError>;

        /// Publishes a version: checks that the name does not collide with another crate, that the
        /// version is new and that the publisher owns the crate (or creates it and becomes its
        /// owner), appends the index line, bumps the crate's revision and marks it unacknowledged,
        /// all in one atomic step. Returns the new index file.
        async fn publish(&self, version: NewVersion) -> Result<IndexFile, StoreError>;

        /// Sets or clears a version's yanked flag if the actor owns the crate, recording the
        /// change's event in the same step when the flag changed. Returns the index file, with a
        /// new revision only when the flag changed, and whether it changed.
        async fn set_yanked(&self, change: YankChange) -> Result<(IndexFile, bool), StoreError>;

        /// Returns a crate's owners, or `None` when the crate does not exist.
        async fn owners(&self, krate: &CrateId) -> Result<Option<Vec<User>>, StoreError>;

        /// Adds or removes owners by user name if the actor owns the crate or is an
        /// administrator. Returns the users added or removed (owners already present, or users
        /// who were not owners, are skipped); when there are any, records the change's event
        /// named for them ([`AuditEvent::naming_users`]) in the same step.
        ///
        /// # Errors
        ///
        /// [`StoreError::UserNotFound`] when a name is unknown, [`StoreError::LastOwner`] when
        /// no owner would remain; nothing changes then.
        async fn change_owners(&self, change: OwnerChange) -> Result<Vec<User>, StoreError>;

        /// Finds crates whose name (or description) contains `query`, ranked by
        /// [`crate::model::search_rank`].
        async fn search(
            &self,
            query: &str,
            offset: u64,
            limit: u64,
        ) -> Result<SearchPage, StoreError>;

        /// Returns where a version's crate file lives.
        async fn crate_file(
            &self,
            krate: &CrateId,
            version: &VersionId,
        ) -> Result<Option<CrateFileRef>, StoreError>;

        /// Returns up to `limit` crates after `after` in canonical order, for walking every crate
        /// (index rebuilds). Each is named by its canonical name.
        async fn crate_names(
            &self,
            after: Option<&CrateId>,
            limit: usize,
        ) -> Result<Vec<CrateId>, StoreError>;
    }

    /// Each crate's index file, its revisions and the marks the indexer acknowledges.
    pub trait IndexStore {
        /// Returns a crate's index file.
        async fn index_file(&self, krate: &CrateId) -> Result<Option<IndexFile>, StoreError>;

        /// Returns a crate's index file without its content (empty), for answering revalidations
        /// without moving the file.
        async fn index_validators(&self, krate: &CrateId) -> Result<Option<IndexFile>, StoreError>;

        /// Replaces a crate's whole index file with `content` if its revision is still
        /// `revision`: bumps the revision and marks it unacknowledged, as a publish does. Returns
        /// the new file, or `None` when the revision moved meanwhile (nothing is written then).
        ///
        /// # Errors
        ///
        /// [`StoreError::CrateNotFound`] when the crate does not exist.
        async fn replace_index_file(
            &self,
            krate: &CrateId,
            revision: u64,
            content: bytes::Bytes,
        ) -> Result<Option<IndexFile>, StoreError>;

        /// Returns up to `limit` crates whose latest revision is not acknowledged by the indexer.
        async fn pending_changes(&self, limit: usize) -> Result<Vec<PendingChange>, StoreError>;

        /// Counts the crates waiting for the indexer and finds when the oldest waiting change was
        /// made, cheaply enough for every metrics scrape.
        async fn pending_summary(&self) -> Result<PendingSummary, StoreError>;

        /// Records that the indexer holds `revision` of a crate; clears the crate's mark unless a
        /// newer revision arrived meanwhile. Returns whether the mark was cleared.
        async fn acknowledge(&self, krate: &CrateId, revision: u64) -> Result<bool, StoreError>;
    }

    /// How often each version was downloaded, in all and per day.
    pub trait DownloadStore {
        /// Adds a batch of counts, in one atomic step (each replica sends its own every few
        /// seconds). The counts name versions that exist: the API counts served files only.
        async fn add_downloads(&self, counts: Vec<DownloadCount>) -> Result<(), StoreError>;

        /// A crate's counts per version and per day; empty for a crate never downloaded.
        async fn crate_downloads(&self, krate: &CrateId) -> Result<CrateDownloads, StoreError>;
    }

    /// Browser sessions of the pages, shared by every replica, and the list of users the
    /// administrators' pages show.
    pub trait SessionStore {
        /// Stores a new session.
        async fn create_session(&self, session: NewSession) -> Result<(), StoreError>;

        /// Returns the session whose secret hashes to `id_hash`, unless it ended or expired.
        async fn session(&self, id_hash: [u8; 32]) -> Result<Option<Session>, StoreError>;

        /// Ends a session (signing out); ending one that is gone is no error.
        async fn end_session(&self, id_hash: [u8; 32]) -> Result<(), StoreError>;

        /// Ends every session of a user (a password change, a disabled user).
        async fn end_user_sessions(&self, user: UserId) -> Result<(), StoreError>;

        /// Every user, by id.
        async fn list_users(&self) -> Result<Vec<UserSummary>, StoreError>;
    }

    /// The bounded log of who changed what.
    pub trait AuditLog {
        /// Appends an event to the audit log, which keeps the latest
        /// [`crate::model::AUDIT_RETAIN`] events.
        async fn record_audit(&self, event: AuditEvent) -> Result<(), StoreError>;

        /// Returns up to `limit` audit events older than the cursor `before` (or the newest),
        /// newest first.
        async fn audit_events(
            &self,
            before: Option<&str>,
            limit: usize,
        ) -> Result<Vec<AuditRecord>, StoreError>;
    }

    /// What replicas share to coordinate: leases and rate-limit windows.
    pub trait CoordinationStore {
        /// Takes or renews the lease `name` for `holder` for `ttl`; returns whether `holder` holds
        /// it now. A lease another holder took and has not let expire is refused.
        async fn try_lease(
            &self,
            name: &str,
            holder: &str,
            ttl: std::time::Duration,
        ) -> Result<bool, StoreError>;

        /// Counts one hit against the rate-limit `bucket`, a fixed window of `window` that starts
        /// with its first hit; returns the hits in the current window (this one included) and the
        /// time until it ends. Shared by every replica using the same store.
        async fn count_hit(
            &self,
            bucket: &str,
            window: std::time::Duration,
        ) -> Result<(u64, std::time::Duration), StoreError>;
    }
}

/// Wraps a metadata store: every operation gets a `store` span and is reported. The domain
/// traits pass each method on (see `store_domains!`), so no method is restated.
#[derive(Debug)]
pub struct InstrumentedStore {
    inner: Arc<dyn MetadataStore>,
    observer: Arc<dyn StoreObserver>,
}

impl InstrumentedStore {
    /// Wraps `inner`, reporting to `observer`.
    pub fn new(inner: Arc<dyn MetadataStore>, observer: Arc<dyn StoreObserver>) -> Self {
        Self { inner, observer }
    }

    async fn observe<T>(
        &self,
        operation: &'static str,
        work: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        observe(
            self.observer.as_ref(),
            StoreKind::Metadata,
            operation,
            work,
            |error: &StoreError| error.code().is_server_error(),
        )
        .await
    }
}

#[async_trait]
impl MetadataStore for InstrumentedStore {
    async fn ping(&self) -> Result<(), StoreError> {
        let result = self.inner.ping().await;
        self.observer.metadata_up(result.is_ok());
        result
    }
}
