//! The audit log: every change records its event in the same step.

use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use ktra_store::model::{ApiToken, Invitation, OwnerAction, OwnerActor};
use ktra_store::{MetadataStore, StoreError};

use super::fixtures::*;

pub(crate) async fn audit_log_pages_newest_first(store: Arc<dyn MetadataStore>) {
    assert!(store.audit_events(None, 10).await.unwrap().is_empty());
    let alice = registered(&*store, "alice").await;
    for n in 0..5 {
        store
            .record_audit(audit("login.failure", &format!("user{n}")))
            .await
            .unwrap();
    }
    // A publish records its event in the same step as the version.
    let mut version = new_version("audited", "1.0.0", alice.id);
    version.audit = audit("crate.publish", "audited@1.0.0");
    store.publish(version.clone()).await.unwrap();
    // A refused publish records nothing.
    assert!(store.publish(version).await.is_err());
    let first = store.audit_events(None, 4).await.unwrap();
    let targets: Vec<&str> = first.iter().map(|r| r.event.target.as_str()).collect();
    assert_eq!(targets, ["audited@1.0.0", "user4", "user3", "user2"]);
    assert_eq!(first[0].event, audit_like(&first[0].event, "crate.publish"));
    let rest = store
        .audit_events(Some(&first[3].cursor), 10)
        .await
        .unwrap();
    let targets: Vec<&str> = rest.iter().map(|r| r.event.target.as_str()).collect();
    // The oldest is the user's creation, recorded with the user.
    assert_eq!(targets, ["user1", "user0", "alice"]);
    assert!(matches!(
        store.audit_events(Some("not a cursor"), 10).await,
        Err(StoreError::InvalidCursor(_))
    ));
}

/// The actions of the newest `count` events, oldest first.
async fn recent_actions(store: &dyn MetadataStore, count: usize) -> Vec<String> {
    let mut actions: Vec<String> = store
        .audit_events(None, count)
        .await
        .unwrap()
        .into_iter()
        .map(|record| record.event.action)
        .collect();
    actions.reverse();
    actions
}

pub(crate) async fn every_change_records_its_event_and_a_refusal_none(
    store: Arc<dyn MetadataStore>,
) {
    let alice = registered(&*store, "alice").await;
    let bob = registered(&*store, "bob").await;
    let code = [5; 32];
    let invitation = Invitation {
        code_hash: code,
        created_by: alice.id,
        expires_at: Utc::now() + TimeDelta::hours(1),
    };
    store
        .create_invitation(invitation, audit("invitation.create", "i"))
        .await
        .unwrap();
    store
        .create_user(invited_user(code, "carol", "h", token()))
        .await
        .unwrap();
    let extra = ApiToken::generate();
    add_token(&*store, alice.id, extra.to_new_token("ci", Utc::now())).await;
    store
        .revoke_token(alice.id, extra.id(), audit("token.revoke", "t"))
        .await
        .unwrap();
    store
        .change_password(password_change(alice.id, "h", "h2", token()))
        .await
        .unwrap();
    store
        .set_user_disabled("carol", true, audit("user.disable", "carol"))
        .await
        .unwrap();
    published(&*store, "kept", "1.0.0", alice.id).await;
    store
        .set_yanked(yank("kept", "1.0.0", true, alice.id, None))
        .await
        .unwrap();
    let mut change = owner_change("kept", OwnerAction::Add, OwnerActor::Admin, &["bob"]);
    change.audit.detail = Some("(as administrator)".into());
    store.change_owners(change).await.unwrap();
    assert_eq!(
        recent_actions(&*store, 11).await,
        [
            "user.create",
            "user.create",
            "invitation.create",
            "user.create",
            "token.create",
            "token.revoke",
            "user.password_change",
            "user.disable",
            "crate.publish",
            "crate.yank",
            "crate.owner_add",
        ]
    );
    // An owner change names the users it changed ahead of the caller's note.
    let newest = store.audit_events(None, 1).await.unwrap().remove(0).event;
    assert_eq!(newest.detail.as_deref(), Some("`bob` (as administrator)"));

    // Refused, or changing nothing: no event.
    let before = store.audit_events(None, 1).await.unwrap();
    assert!(
        store
            .create_user(new_user("ALICE", "h", token()))
            .await
            .is_err()
    );
    assert!(
        store
            .revoke_token(bob.id, extra.id(), audit("token.revoke", "t"))
            .await
            .is_err()
    );
    assert!(
        store
            .change_password(password_change(alice.id, "stale", "h3", token()))
            .await
            .is_err()
    );
    assert!(
        store
            .add_token(bob.id + 100, token(), audit("token.create", "t"))
            .await
            .is_err()
    );
    let unknown = owner_change("kept", OwnerAction::Add, OwnerActor::Admin, &["nobody"]);
    assert!(store.change_owners(unknown).await.is_err());
    let again = owner_change("kept", OwnerAction::Add, OwnerActor::Admin, &["bob"]);
    assert!(store.change_owners(again).await.unwrap().is_empty());
    let last = owner_change(
        "kept",
        OwnerAction::Remove,
        OwnerActor::Admin,
        &["alice", "bob", "bob"],
    );
    assert!(matches!(
        store.change_owners(last).await,
        Err(StoreError::LastOwner(_))
    ));
    assert!(
        store
            .set_yanked(yank("kept", "1.0.0", true, alice.id, None))
            .await
            .is_ok_and(|(_, changed)| !changed)
    );
    assert_eq!(store.audit_events(None, 1).await.unwrap(), before);
}
