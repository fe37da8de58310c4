//! The metadata store seen through a span and a latency metric per operation.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use ktra_store::model::{
    AuditEvent, AuditRecord, CrateFileRef, CrateSummary, IndexFile, Invitation, NewToken,
    NewVersion, OwnerActor, PendingChange, SearchPage, StoredToken, TokenId, TokenInfo, User,
    UserCredentials, UserId,
};
use ktra_store::{MetadataStore, StoreError};
use tracing::Instrument;

use crate::metrics::ApiMetrics;

/// Wraps a metadata store: every operation gets a `store` span and is timed; failures (not
/// refusals such as a duplicate version) are counted.
#[derive(Debug)]
pub struct InstrumentedStore {
    inner: Arc<dyn MetadataStore>,
    metrics: Arc<ApiMetrics>,
}

impl InstrumentedStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn MetadataStore>, metrics: Arc<ApiMetrics>) -> Self {
        Self { inner, metrics }
    }

    async fn observe<T>(
        &self,
        operation: &'static str,
        work: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let result = work
            .instrument(tracing::info_span!("store", operation))
            .await;
        let failed = matches!(&result, Err(error) if error.code().is_server_error());
        self.metrics.storage("metadata", operation, started, failed);
        result
    }
}

#[async_trait]
impl MetadataStore for InstrumentedStore {
    async fn ping(&self) -> Result<(), StoreError> {
        let result = self.inner.ping().await;
        self.metrics
            .metadata_store_up
            .set(i64::from(result.is_ok()));
        result
    }

    async fn create_user(
        &self,
        name: &str,
        password_hash: &str,
        token: NewToken,
    ) -> Result<User, StoreError> {
        self.observe(
            "create_user",
            self.inner.create_user(name, password_hash, token),
        )
        .await
    }

    async fn create_invited_user(
        &self,
        invitation: [u8; 32],
        name: &str,
        password_hash: &str,
        token: NewToken,
    ) -> Result<User, StoreError> {
        self.observe(
            "create_invited_user",
            self.inner
                .create_invited_user(invitation, name, password_hash, token),
        )
        .await
    }

    async fn create_invitation(&self, invitation: Invitation) -> Result<(), StoreError> {
        self.observe(
            "create_invitation",
            self.inner.create_invitation(invitation),
        )
        .await
    }

    async fn list_tokens(&self, user: UserId) -> Result<Vec<TokenInfo>, StoreError> {
        self.observe("list_tokens", self.inner.list_tokens(user))
            .await
    }

    async fn revoke_token(&self, user: UserId, id: TokenId) -> Result<(), StoreError> {
        self.observe("revoke_token", self.inner.revoke_token(user, id))
            .await
    }

    async fn set_user_disabled(&self, name: &str, disabled: bool) -> Result<User, StoreError> {
        self.observe(
            "set_user_disabled",
            self.inner.set_user_disabled(name, disabled),
        )
        .await
    }

    async fn record_audit(&self, event: AuditEvent) -> Result<(), StoreError> {
        self.observe("record_audit", self.inner.record_audit(event))
            .await
    }

    async fn audit_events(
        &self,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        self.observe("audit_events", self.inner.audit_events(before, limit))
            .await
    }

    async fn user_credentials(&self, name: &str) -> Result<Option<UserCredentials>, StoreError> {
        self.observe("user_credentials", self.inner.user_credentials(name))
            .await
    }

    async fn add_token(&self, user: UserId, token: NewToken) -> Result<(), StoreError> {
        self.observe("add_token", self.inner.add_token(user, token))
            .await
    }

    async fn change_password(
        &self,
        user: UserId,
        old_password_hash: &str,
        new_password_hash: &str,
        token: NewToken,
    ) -> Result<(), StoreError> {
        self.observe(
            "change_password",
            self.inner
                .change_password(user, old_password_hash, new_password_hash, token),
        )
        .await
    }

    async fn rehash_password(
        &self,
        user: UserId,
        old_password_hash: &str,
        new_password_hash: &str,
    ) -> Result<bool, StoreError> {
        self.observe(
            "rehash_password",
            self.inner
                .rehash_password(user, old_password_hash, new_password_hash),
        )
        .await
    }

    async fn token(&self, id: TokenId) -> Result<Option<StoredToken>, StoreError> {
        self.observe("token", self.inner.token(id)).await
    }

    async fn crate_summary(&self, canonical: &str) -> Result<Option<CrateSummary>, StoreError> {
        self.observe("crate_summary", self.inner.crate_summary(canonical))
            .await
    }

    async fn publish(&self, version: NewVersion) -> Result<IndexFile, StoreError> {
        self.observe("publish", self.inner.publish(version)).await
    }

    async fn set_yanked(
        &self,
        canonical: &str,
        version: &semver::Version,
        yanked: bool,
        actor: UserId,
        audit: Option<AuditEvent>,
    ) -> Result<(IndexFile, bool), StoreError> {
        self.observe(
            "set_yanked",
            self.inner
                .set_yanked(canonical, version, yanked, actor, audit),
        )
        .await
    }

    async fn replace_index_file(
        &self,
        canonical: &str,
        revision: u64,
        content: bytes::Bytes,
    ) -> Result<Option<IndexFile>, StoreError> {
        self.observe(
            "replace_index_file",
            self.inner.replace_index_file(canonical, revision, content),
        )
        .await
    }

    async fn pending_summary(&self) -> Result<ktra_store::model::PendingSummary, StoreError> {
        self.observe("pending_summary", self.inner.pending_summary())
            .await
    }

    async fn owners(&self, canonical: &str) -> Result<Option<Vec<User>>, StoreError> {
        self.observe("owners", self.inner.owners(canonical)).await
    }

    async fn add_owners(
        &self,
        canonical: &str,
        actor: OwnerActor,
        names: &[String],
    ) -> Result<Vec<User>, StoreError> {
        self.observe("add_owners", self.inner.add_owners(canonical, actor, names))
            .await
    }

    async fn remove_owners(
        &self,
        canonical: &str,
        actor: OwnerActor,
        names: &[String],
    ) -> Result<Vec<User>, StoreError> {
        self.observe(
            "remove_owners",
            self.inner.remove_owners(canonical, actor, names),
        )
        .await
    }

    async fn search(&self, query: &str, offset: u64, limit: u64) -> Result<SearchPage, StoreError> {
        self.observe("search", self.inner.search(query, offset, limit))
            .await
    }

    async fn index_file(&self, canonical: &str) -> Result<Option<IndexFile>, StoreError> {
        self.observe("index_file", self.inner.index_file(canonical))
            .await
    }

    async fn index_validators(&self, canonical: &str) -> Result<Option<IndexFile>, StoreError> {
        self.observe("index_validators", self.inner.index_validators(canonical))
            .await
    }

    async fn crate_file(
        &self,
        canonical: &str,
        version: &semver::Version,
    ) -> Result<Option<CrateFileRef>, StoreError> {
        self.observe("crate_file", self.inner.crate_file(canonical, version))
            .await
    }

    async fn pending_changes(&self, limit: usize) -> Result<Vec<PendingChange>, StoreError> {
        self.observe("pending_changes", self.inner.pending_changes(limit))
            .await
    }

    async fn acknowledge(&self, canonical: &str, revision: u64) -> Result<bool, StoreError> {
        self.observe("acknowledge", self.inner.acknowledge(canonical, revision))
            .await
    }

    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreError> {
        self.observe("try_lease", self.inner.try_lease(name, holder, ttl))
            .await
    }

    async fn count_hit(
        &self,
        bucket: &str,
        window: std::time::Duration,
    ) -> Result<(u64, std::time::Duration), StoreError> {
        self.observe("count_hit", self.inner.count_hit(bucket, window))
            .await
    }

    async fn crate_names(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        self.observe("crate_names", self.inner.crate_names(after, limit))
            .await
    }
}
