//! Users, tokens, passwords and invitations.

use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use ktra_store::model::{ApiToken, EndpointScope, TokenDetails, TokenScope, User};
use ktra_store::{MetadataStore, StoreError};

use super::fixtures::*;

pub(crate) async fn users_and_tokens(store: Arc<dyn MetadataStore>) {
    store.ping().await.unwrap();
    let first = ApiToken::generate();
    let alice = registered_with(&*store, "Alice", "hash-1", &first).await;
    assert_eq!(alice.name, "Alice");
    assert!(matches!(
        store.create_user(new_user("alice", "x", token())).await,
        Err(StoreError::UserExists(_))
    ));
    let bob = store
        .create_user(new_user("bob", "hash-b", token()))
        .await
        .unwrap();
    assert_ne!(alice.id, bob.id);

    let credentials = store.user_credentials("ALICE").await.unwrap().unwrap();
    assert_eq!(credentials.user, alice);
    assert_eq!(credentials.password_hash, "hash-1");
    assert!(store.user_credentials("carol").await.unwrap().is_none());

    let stored = store.token(first.id()).await.unwrap().unwrap();
    assert_eq!(stored.user, alice);
    assert!(first.matches(&stored.secret_hash));
    assert!(
        store
            .token(ApiToken::generate().id())
            .await
            .unwrap()
            .is_none()
    );

    let second = ApiToken::generate();
    add_token(&*store, alice.id, second.to_new_token("login", Utc::now())).await;
    assert!(store.token(first.id()).await.unwrap().is_some());
    assert!(store.token(second.id()).await.unwrap().is_some());

    // A stale old hash loses the race and changes nothing.
    let third = ApiToken::generate();
    assert!(matches!(
        store
            .change_password(password_change(
                alice.id,
                "stale",
                "hash-2",
                third.to_new_token("login", Utc::now())
            ))
            .await,
        Err(StoreError::PasswordChanged)
    ));
    assert!(store.token(first.id()).await.unwrap().is_some());
    store
        .change_password(password_change(
            alice.id,
            "hash-1",
            "hash-2",
            third.to_new_token("login", Utc::now()),
        ))
        .await
        .unwrap();
    assert!(store.token(first.id()).await.unwrap().is_none());
    assert!(store.token(second.id()).await.unwrap().is_none());
    assert_eq!(store.token(third.id()).await.unwrap().unwrap().user, alice);
    let credentials = store.user_credentials("alice").await.unwrap().unwrap();
    assert_eq!(credentials.password_hash, "hash-2");
    // Bob's tokens are untouched.
    assert!(store.user_credentials("bob").await.unwrap().is_some());
}

pub(crate) async fn rehashing_a_password_keeps_the_tokens(store: Arc<dyn MetadataStore>) {
    let first = ApiToken::generate();
    let alice = registered_with(&*store, "alice", "old-params", &first).await;
    // A stale hash loses the race and changes nothing.
    assert!(
        !store
            .rehash_password(alice.id, "stale", "new-params")
            .await
            .unwrap()
    );
    assert!(
        store
            .rehash_password(alice.id, "old-params", "new-params")
            .await
            .unwrap()
    );
    let credentials = store.user_credentials("alice").await.unwrap().unwrap();
    assert_eq!(credentials.password_hash, "new-params");
    assert_eq!(store.token(first.id()).await.unwrap().unwrap().user, alice);
    assert!(
        !store
            .rehash_password(u32::MAX, "new-params", "x")
            .await
            .unwrap()
    );
}

pub(crate) async fn scoped_tokens_list_and_revoke(store: Arc<dyn MetadataStore>) {
    let alice = registered(&*store, "alice").await;
    let bob = registered(&*store, "bob").await;
    let scoped = ApiToken::generate();
    let details = TokenDetails {
        name: "ci".into(),
        // Listed after the login token: stores keep milliseconds, and both may fall in one.
        created_at: Utc::now() + TimeDelta::milliseconds(2),
        expires_at: Some(Utc::now() + TimeDelta::days(30)),
        scope: TokenScope {
            endpoints: Some(vec![EndpointScope::PublishUpdate]),
            crates: Some(vec!["acme-*".into()]),
        },
    };
    add_token(&*store, alice.id, scoped.to_new_token_with(details.clone())).await;
    let stored = store.token(scoped.id()).await.unwrap().unwrap();
    assert_eq!(stored.id, scoped.id());
    // An expired token stays listed for a while, so its holder is told it expired.
    let expired = ApiToken::generate();
    let mut old = details.clone();
    old.name = "old".into();
    old.expires_at = Some(Utc::now() - TimeDelta::days(1));
    add_token(&*store, alice.id, expired.to_new_token_with(old)).await;
    assert!(store.token(expired.id()).await.unwrap().is_some());
    store
        .revoke_token(alice.id, expired.id(), audit("token.revoke", "t"))
        .await
        .unwrap();
    // Stores keep milliseconds.
    let trimmed = |time: chrono::DateTime<Utc>| time.timestamp_millis();
    assert_eq!(stored.details.name, "ci");
    assert_eq!(stored.details.scope, details.scope);
    assert_eq!(
        stored.details.expires_at.map(trimmed),
        details.expires_at.map(trimmed)
    );
    let listed = store.list_tokens(alice.id).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].details.name, "login");
    assert!(listed[0].details.scope.is_unrestricted());
    assert_eq!(listed[1].id, scoped.id());
    // Only the owner revokes a token.
    assert!(matches!(
        store
            .revoke_token(bob.id, scoped.id(), audit("token.revoke", "t"))
            .await,
        Err(StoreError::TokenNotFound(_))
    ));
    store
        .revoke_token(alice.id, scoped.id(), audit("token.revoke", "t"))
        .await
        .unwrap();
    assert!(store.token(scoped.id()).await.unwrap().is_none());
    assert_eq!(store.list_tokens(alice.id).await.unwrap().len(), 1);
    assert!(matches!(
        store
            .revoke_token(alice.id, scoped.id(), audit("token.revoke", "t"))
            .await,
        Err(StoreError::TokenNotFound(_))
    ));
}

pub(crate) async fn disabled_users_lose_their_tokens(store: Arc<dyn MetadataStore>) {
    let first = ApiToken::generate();
    let alice = registered_with(&*store, "alice", "h", &first).await;
    let bob_token = ApiToken::generate();
    let bob = registered_with(&*store, "bob", "h", &bob_token).await;
    assert_eq!(
        store
            .set_user_disabled("ALICE", true, audit("user.disable", "u"))
            .await
            .unwrap(),
        alice
    );
    assert!(store.token(first.id()).await.unwrap().is_none());
    assert!(store.list_tokens(alice.id).await.unwrap().is_empty());
    assert!(
        store
            .user_credentials("alice")
            .await
            .unwrap()
            .unwrap()
            .disabled
    );
    assert!(matches!(
        store
            .add_token(alice.id, token(), audit("token.create", "t"))
            .await,
        Err(StoreError::UserDisabled(_))
    ));
    // Others keep theirs.
    assert!(store.token(bob_token.id()).await.unwrap().is_some());
    assert!(
        !store
            .user_credentials("bob")
            .await
            .unwrap()
            .unwrap()
            .disabled
    );
    store
        .set_user_disabled("alice", false, audit("user.disable", "u"))
        .await
        .unwrap();
    assert!(
        !store
            .user_credentials("alice")
            .await
            .unwrap()
            .unwrap()
            .disabled
    );
    store
        .add_token(alice.id, token(), audit("token.create", "t"))
        .await
        .unwrap();
    assert!(matches!(
        store
            .set_user_disabled("nobody", true, audit("user.disable", "u"))
            .await,
        Err(StoreError::UserNotFound(_))
    ));
    let _ = bob;
}

pub(crate) async fn invitations_are_single_use(store: Arc<dyn MetadataStore>) {
    let admin = registered(&*store, "admin").await;
    registered(&*store, "taken").await;
    let code = [7_u8; 32];
    invite(&*store, code, admin.id, TimeDelta::hours(1)).await;
    assert!(matches!(
        signs_up(&*store, [8; 32], "carol").await,
        Err(StoreError::InvitationInvalid)
    ));
    // A taken name keeps the invitation for another try.
    assert!(matches!(
        signs_up(&*store, code, "Taken").await,
        Err(StoreError::UserExists(_))
    ));
    let carol = signs_up(&*store, code, "carol").await.unwrap();
    assert_eq!(carol.name, "carol");
    assert_sign_up_refused(&*store, code, "dave").await;
    // An expired invitation is refused.
    let stale = [9_u8; 32];
    invite(&*store, stale, admin.id, TimeDelta::milliseconds(50)).await;
    tokio::time::sleep(std::time::Duration::from_millis(120)).await;
    assert_sign_up_refused(&*store, stale, "erin").await;
    // Disabling an administrator drops the invitations they issued.
    let pending = [10_u8; 32];
    invite(&*store, pending, admin.id, TimeDelta::hours(1)).await;
    store
        .set_user_disabled("admin", true, audit("user.disable", "u"))
        .await
        .unwrap();
    assert!(matches!(
        signs_up(&*store, pending, "frank").await,
        Err(StoreError::InvitationInvalid)
    ));
    // An unknown invitation is refused whether or not the name is taken.
    assert!(matches!(
        signs_up(&*store, [11; 32], "carol").await,
        Err(StoreError::InvitationInvalid)
    ));
}

/// A sign-up with invitation `code` as `name`.
async fn signs_up(
    store: &dyn MetadataStore,
    code: [u8; 32],
    name: &str,
) -> Result<User, StoreError> {
    store
        .create_user(invited_user(code, name, "h", token()))
        .await
}

/// Asserts a sign-up with invitation `code` is refused and creates nobody.
async fn assert_sign_up_refused(store: &dyn MetadataStore, code: [u8; 32], name: &str) {
    assert!(matches!(
        signs_up(store, code, name).await,
        Err(StoreError::InvitationInvalid)
    ));
    assert!(store.user_credentials(name).await.unwrap().is_none());
}
