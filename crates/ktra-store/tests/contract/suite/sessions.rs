//! Browser sessions and the list of users.

use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use ktra_store::MetadataStore;
use ktra_store::model::NewSession;

use super::fixtures::*;

fn session(id: u8, user: u32, lifetime: TimeDelta) -> NewSession {
    NewSession {
        id_hash: [id; 32],
        user,
        csrf: format!("csrf-{id}"),
        expires_at: Utc::now() + lifetime,
    }
}

pub(crate) async fn sessions_live_until_they_end_or_expire(store: Arc<dyn MetadataStore>) {
    let alice = registered(&*store, "alice").await;
    assert_eq!(store.session([1; 32]).await.unwrap(), None);
    store
        .create_session(session(1, alice.id, TimeDelta::hours(1)))
        .await
        .unwrap();
    store
        .create_session(session(2, alice.id, TimeDelta::hours(1)))
        .await
        .unwrap();
    let found = store.session([1; 32]).await.unwrap().unwrap();
    assert_eq!(found.user, alice);
    assert_eq!(found.csrf, "csrf-1");
    assert!(found.expires_at > Utc::now());

    store.end_session([1; 32]).await.unwrap();
    assert_eq!(store.session([1; 32]).await.unwrap(), None);
    store.end_session([1; 32]).await.unwrap();
    assert!(
        store.session([2; 32]).await.unwrap().is_some(),
        "ending one session keeps the others"
    );

    // Ending a user's sessions ends them all, and no one else's.
    let bob = registered(&*store, "bob").await;
    store
        .create_session(session(4, alice.id, TimeDelta::hours(1)))
        .await
        .unwrap();
    store
        .create_session(session(5, bob.id, TimeDelta::hours(1)))
        .await
        .unwrap();
    store.end_user_sessions(alice.id).await.unwrap();
    assert_eq!(store.session([2; 32]).await.unwrap(), None);
    assert_eq!(store.session([4; 32]).await.unwrap(), None);
    assert!(store.session([5; 32]).await.unwrap().is_some());
    store.end_user_sessions(alice.id).await.unwrap();

    store
        .create_session(session(3, alice.id, TimeDelta::milliseconds(300)))
        .await
        .unwrap();
    assert!(store.session([3; 32]).await.unwrap().is_some());
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(store.session([3; 32]).await.unwrap(), None, "expired");
}

pub(crate) async fn users_are_listed_with_their_state(store: Arc<dyn MetadataStore>) {
    assert!(store.list_users().await.unwrap().is_empty());
    let before = Utc::now() - TimeDelta::seconds(5);
    let alice = registered(&*store, "Alice").await;
    let bob = registered(&*store, "bob").await;
    store
        .set_user_disabled("bob", true, audit("user.disable", "bob"))
        .await
        .unwrap();
    let users = store.list_users().await.unwrap();
    let listed: Vec<(&str, bool)> = users
        .iter()
        .map(|summary| (summary.user.name.as_str(), summary.disabled))
        .collect();
    assert_eq!(listed, [("Alice", false), ("bob", true)]);
    assert_eq!(users[0].user, alice);
    assert_eq!(users[1].user, bob);
    assert!(users.iter().all(|summary| summary.created_at >= before));
}
