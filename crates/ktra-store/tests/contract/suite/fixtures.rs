//! What the contract's cases build their calls from.

use chrono::{TimeDelta, Utc};
use ktra_core::index::IndexLine;
use ktra_core::metadata::VersionMetadata;
use ktra_core::name::CrateId;
use ktra_core::version::VersionId;
use ktra_store::model::{
    ApiToken, AuditEvent, IndexFile, Invitation, NewToken, NewUser, NewVersion, OwnerAction,
    OwnerActor, OwnerChange, PasswordChange, User, UserId, YankChange,
};
use ktra_store::{MetadataStore, StoreError};

/// A fresh token record.
pub(crate) fn token() -> NewToken {
    ApiToken::generate().to_new_token("login", Utc::now())
}

/// Names a crate.
pub(crate) fn id(name: &str) -> CrateId {
    CrateId::new(name).unwrap()
}

/// An event by `alice` from `192.0.2.1`.
pub(crate) fn audit(action: &str, target: &str) -> AuditEvent {
    AuditEvent {
        at: Utc::now(),
        actor: Some("alice".into()),
        action: action.into(),
        target: target.into(),
        client: Some("192.0.2.1".into()),
        detail: None,
    }
}

/// Checks the fields an audit event keeps, returning it when they are as recorded.
pub(crate) fn audit_like(event: &AuditEvent, action: &str) -> AuditEvent {
    assert_eq!(event.action, action);
    assert_eq!(event.actor.as_deref(), Some("alice"));
    assert_eq!(event.client.as_deref(), Some("192.0.2.1"));
    event.clone()
}

/// A user registering without an invitation.
pub(crate) fn new_user(name: &str, password_hash: &str, token: NewToken) -> NewUser {
    NewUser {
        name: name.to_owned(),
        password_hash: password_hash.to_owned(),
        token,
        invitation: None,
        audit: audit("user.create", name),
    }
}

/// A user registering with the invitation whose code hashes to `invitation`.
pub(crate) fn invited_user(
    invitation: [u8; 32],
    name: &str,
    password_hash: &str,
    token: NewToken,
) -> NewUser {
    NewUser {
        invitation: Some(invitation),
        ..new_user(name, password_hash, token)
    }
}

/// A password change from `old` to `new`.
pub(crate) fn password_change(
    user: UserId,
    old: &str,
    new: &str,
    token: NewToken,
) -> PasswordChange {
    PasswordChange {
        user,
        old_password_hash: old.to_owned(),
        new_password_hash: new.to_owned(),
        token,
        audit: audit("user.password_change", "alice"),
    }
}

/// A yank (or unyank) by `actor`, recorded as `audit` when given.
pub(crate) fn yank(
    name: &str,
    version: &str,
    yanked: bool,
    actor: UserId,
    audit: Option<AuditEvent>,
) -> YankChange {
    YankChange {
        krate: id(name),
        version: VersionId::parse(version).unwrap(),
        yanked,
        actor,
        audit: audit.unwrap_or_else(|| self::audit("crate.yank", name)),
    }
}

/// Gives `user` one more token, as a login does.
pub(crate) async fn add_token(store: &dyn MetadataStore, user: UserId, token: NewToken) {
    store
        .add_token(user, token, audit("token.create", "t"))
        .await
        .unwrap();
}

/// An owner change of `names` by `actor`.
pub(crate) fn owner_change(
    name: &str,
    action: OwnerAction,
    actor: OwnerActor,
    names: &[&str],
) -> OwnerChange {
    OwnerChange {
        krate: id(name),
        action,
        actor,
        names: names.iter().map(|&name| name.to_owned()).collect(),
        audit: audit("crate.owner_add", name),
    }
}

/// Adds `names` to a crate's owners, or removes them, as `actor`; returns the users added or
/// removed.
pub(crate) async fn change_owners(
    store: &dyn MetadataStore,
    name: &str,
    action: OwnerAction,
    actor: OwnerActor,
    names: &[&str],
) -> Result<Vec<User>, StoreError> {
    store
        .change_owners(owner_change(name, action, actor, names))
        .await
}

/// A version with no dependencies, published by `publisher`.
pub(crate) fn new_version(name: &str, version: &str, publisher: UserId) -> NewVersion {
    let parsed = VersionId::parse(version).unwrap();
    let line = IndexLine::new(
        name.to_owned(),
        version.to_owned(),
        Vec::new(),
        "ab".repeat(32),
        Default::default(),
        None,
        None,
        Utc::now(),
    );
    NewVersion {
        krate: id(name),
        line,
        version: parsed,
        blob_key: format!("crates/{name}/{version}"),
        metadata: VersionMetadata {
            description: Some(format!("about {name}")),
            license: Some("MIT".to_owned()),
            ..VersionMetadata::default()
        },
        readme: Some(format!("# {name} {version}")),
        publisher,
        published_at: Utc::now(),
        audit: audit("crate.publish", &format!("{name}@{version}")),
        crate_exists: None,
    }
}

/// Publishes a bare version.
pub(crate) async fn publish_one(
    store: &dyn MetadataStore,
    name: &str,
    version: &str,
    publisher: UserId,
) -> Result<IndexFile, StoreError> {
    store.publish(new_version(name, version, publisher)).await
}

/// Registers `name` without an invitation (password hash `h`, a fresh login token).
pub(crate) async fn registered(store: &dyn MetadataStore, name: &str) -> User {
    store
        .create_user(new_user(name, "h", token()))
        .await
        .unwrap()
}

/// Registers `name` without an invitation, with `password_hash` and `token` as its login
/// token.
pub(crate) async fn registered_with(
    store: &dyn MetadataStore,
    name: &str,
    password_hash: &str,
    token: &ApiToken,
) -> User {
    store
        .create_user(new_user(
            name,
            password_hash,
            token.to_new_token("login", Utc::now()),
        ))
        .await
        .unwrap()
}

/// Stores an invitation whose code hashes to `code_hash`, issued by `admin` and valid for
/// `valid_for`.
pub(crate) async fn invite(
    store: &dyn MetadataStore,
    code_hash: [u8; 32],
    admin: UserId,
    valid_for: TimeDelta,
) {
    store
        .create_invitation(
            Invitation {
                code_hash,
                created_by: admin,
                expires_at: Utc::now() + valid_for,
            },
            audit("invitation.create", "i"),
        )
        .await
        .unwrap();
}

/// Publishes a bare version that the store accepts.
pub(crate) async fn published(
    store: &dyn MetadataStore,
    name: &str,
    version: &str,
    publisher: UserId,
) -> IndexFile {
    publish_one(store, name, version, publisher).await.unwrap()
}

/// The lines of an index file.
pub(crate) fn lines(file: &IndexFile) -> Vec<IndexLine> {
    std::str::from_utf8(&file.content)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}
