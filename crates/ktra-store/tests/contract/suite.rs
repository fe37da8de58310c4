//! Behaviour every metadata store must show. Each function takes a fresh, empty store.

use std::sync::Arc;

use chrono::TimeDelta;
use chrono::Utc;
use ktra_core::index::IndexLine;
use ktra_core::name::canonical_crate_name;
use ktra_store::model::{
    ApiToken, AuditEvent, EndpointScope, IndexFile, Invitation, NewToken, NewVersion, OwnerActor,
    PendingSummary, TokenDetails, TokenScope, UserId,
};
use ktra_store::{MetadataStore, StoreError};

/// A fresh token record.
pub(crate) fn token() -> NewToken {
    ApiToken::generate().to_new_token("login", Utc::now())
}

fn new_version(name: &str, version: &str, publisher: UserId) -> NewVersion {
    let parsed = semver::Version::parse(version).unwrap();
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
        line,
        version: parsed,
        blob_key: format!("crates/{name}/{version}"),
        description: Some(format!("about {name}")),
        publisher,
        published_at: Utc::now(),
        audit: None,
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

fn lines(file: &IndexFile) -> Vec<IndexLine> {
    std::str::from_utf8(&file.content)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

pub(crate) async fn users_and_tokens(store: Arc<dyn MetadataStore>) {
    store.ping().await.unwrap();
    let first = ApiToken::generate();
    let alice = store
        .create_user("Alice", "hash-1", first.to_new_token("login", Utc::now()))
        .await
        .unwrap();
    assert_eq!(alice.name, "Alice");
    assert!(matches!(
        store.create_user("alice", "x", token()).await,
        Err(StoreError::UserExists(_))
    ));
    let bob = store.create_user("bob", "hash-b", token()).await.unwrap();
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
    store
        .add_token(alice.id, second.to_new_token("login", Utc::now()))
        .await
        .unwrap();
    assert!(store.token(first.id()).await.unwrap().is_some());
    assert!(store.token(second.id()).await.unwrap().is_some());

    // A stale old hash loses the race and changes nothing.
    let third = ApiToken::generate();
    assert!(matches!(
        store
            .change_password(
                alice.id,
                "stale",
                "hash-2",
                third.to_new_token("login", Utc::now())
            )
            .await,
        Err(StoreError::PasswordChanged)
    ));
    assert!(store.token(first.id()).await.unwrap().is_some());
    store
        .change_password(
            alice.id,
            "hash-1",
            "hash-2",
            third.to_new_token("login", Utc::now()),
        )
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
    let alice = store
        .create_user(
            "alice",
            "old-params",
            first.to_new_token("login", Utc::now()),
        )
        .await
        .unwrap();
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

pub(crate) async fn publish_appends_and_refuses(store: Arc<dyn MetadataStore>) {
    let alice = store.create_user("alice", "h", token()).await.unwrap();
    let bob = store.create_user("bob", "h", token()).await.unwrap();
    let first = publish_one(&*store, "Foo-Bar", "1.0.0", alice.id)
        .await
        .unwrap();
    assert_eq!(first.name, "Foo-Bar");
    assert_eq!(first.revision, 1);
    assert_eq!(lines(&first).len(), 1);
    let second = publish_one(&*store, "Foo-Bar", "1.1.0-rc.1+build", alice.id)
        .await
        .unwrap();
    assert_eq!(second.revision, 2);
    assert_ne!(second.etag(), first.etag());
    assert!(second.last_modified >= first.last_modified);
    assert!(second.content.starts_with(&first.content));
    let versions: Vec<String> = lines(&second).into_iter().map(|line| line.vers).collect();
    assert_eq!(versions, ["1.0.0", "1.1.0-rc.1+build"]);

    let refusals = [
        (
            publish_one(&*store, "Foo-Bar", "1.0.0+other", alice.id).await,
            "duplicate",
        ),
        (
            publish_one(&*store, "Foo-Bar", "1.1.0-rc.1", alice.id).await,
            "duplicate",
        ),
        (
            publish_one(&*store, "foo_bar", "2.0.0", alice.id).await,
            "taken",
        ),
        (
            publish_one(&*store, "FOO-BAR", "2.0.0", alice.id).await,
            "taken",
        ),
        (
            publish_one(&*store, "Foo-Bar", "2.0.0", bob.id).await,
            "owner",
        ),
    ];
    for (result, kind) in refusals {
        let error = result.unwrap_err();
        let matched = match kind {
            "duplicate" => {
                matches!(error, StoreError::DuplicateVersion { ref version, .. } if version.starts_with("1."))
            }
            "taken" => {
                matches!(error, StoreError::NameTaken { ref existing, .. } if existing == "Foo-Bar")
            }
            _ => matches!(error, StoreError::NotOwner(_)),
        };
        assert!(matched, "{kind}: {error:?}");
    }
    let file = store.index_file("foo_bar").await.unwrap().unwrap();
    assert_eq!(file, second, "refusals changed the file");

    let summary = store.crate_summary("foo_bar").await.unwrap().unwrap();
    assert_eq!(summary.owners, vec![alice.id]);
    assert_eq!(summary.versions.len(), 2);
    let found = store
        .crate_file("foo_bar", &semver::Version::parse("1.1.0-rc.1").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.version, "1.1.0-rc.1+build");
    assert_eq!(found.blob_key, "crates/Foo-Bar/1.1.0-rc.1+build");
    assert!(
        store
            .crate_file("foo_bar", &semver::Version::parse("3.0.0").unwrap())
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.index_file("nothing").await.unwrap().is_none());
}

pub(crate) async fn yank_flips_one_line(store: Arc<dyn MetadataStore>) {
    let alice = store.create_user("alice", "h", token()).await.unwrap();
    let bob = store.create_user("bob", "h", token()).await.unwrap();
    for version in ["0.1.0", "0.2.0", "0.3.0"] {
        publish_one(&*store, "yanky", version, alice.id)
            .await
            .unwrap();
    }
    let before = store.index_file("yanky").await.unwrap().unwrap();
    let v2 = semver::Version::parse("0.2.0").unwrap();
    let (yanked, changed) = store
        .set_yanked(
            "yanky",
            &v2,
            true,
            alice.id,
            Some(audit("crate.yank", "yanky@0.2.0")),
        )
        .await
        .unwrap();
    assert!(changed);
    assert_eq!(yanked.revision, before.revision + 1);
    let flags: Vec<bool> = lines(&yanked).iter().map(|line| line.yanked).collect();
    assert_eq!(flags, [false, true, false]);
    let mut expected = lines(&before);
    expected[1].yanked = true;
    assert_eq!(lines(&yanked), expected, "only the flag changed");

    // Yanking again changes nothing, and records nothing.
    let again = store
        .set_yanked(
            "yanky",
            &v2,
            true,
            alice.id,
            Some(audit("crate.yank", "again")),
        )
        .await
        .unwrap();
    assert_eq!(again, (yanked.clone(), false));
    // The validators answer revalidations without the content, and agree with the file.
    let validators = store.index_validators("yanky").await.unwrap().unwrap();
    assert!(validators.content.is_empty());
    assert_eq!(
        (
            validators.etag(),
            validators.last_modified,
            validators.revision
        ),
        (yanked.etag(), yanked.last_modified, yanked.revision)
    );
    assert!(store.index_validators("absent").await.unwrap().is_none());
    let recorded = store.audit_events(None, 10).await.unwrap();
    let targets: Vec<&str> = recorded.iter().map(|r| r.event.target.as_str()).collect();
    assert_eq!(targets, ["yanky@0.2.0"]);
    let (undone, _) = store
        .set_yanked("yanky", &v2, false, alice.id, None)
        .await
        .unwrap();
    assert_eq!(undone.content, before.content);
    assert_eq!(undone.revision, before.revision + 2);

    assert!(matches!(
        store.set_yanked("yanky", &v2, true, bob.id, None).await,
        Err(StoreError::NotOwner(_))
    ));
    assert!(matches!(
        store
            .set_yanked(
                "yanky",
                &semver::Version::parse("9.0.0").unwrap(),
                true,
                alice.id,
                None
            )
            .await,
        Err(StoreError::VersionNotFound { .. })
    ));
    assert!(matches!(
        store.set_yanked("nothing", &v2, true, alice.id, None).await,
        Err(StoreError::CrateNotFound(_))
    ));
}

pub(crate) async fn owners_never_run_out(store: Arc<dyn MetadataStore>) {
    let alice = store.create_user("alice", "h", token()).await.unwrap();
    let bob = store.create_user("bob", "h", token()).await.unwrap();
    publish_one(&*store, "owned", "1.0.0", alice.id)
        .await
        .unwrap();
    assert!(matches!(
        store
            .add_owners("owned", OwnerActor::Owner(bob.id), &["bob".into()])
            .await,
        Err(StoreError::NotOwner(_))
    ));
    assert!(matches!(
        store
            .add_owners("owned", OwnerActor::Owner(alice.id), &["bob".into(), "nobody".into()])
            .await,
        Err(StoreError::UserNotFound(name)) if name == "nobody"
    ));
    assert_eq!(
        store.owners("owned").await.unwrap().unwrap(),
        vec![alice.clone()]
    );
    let added = store
        .add_owners(
            "owned",
            OwnerActor::Owner(alice.id),
            &["BOB".into(), "alice".into()],
        )
        .await
        .unwrap();
    assert_eq!(added, vec![bob.clone()]);
    assert_eq!(
        store.owners("owned").await.unwrap().unwrap(),
        vec![alice.clone(), bob.clone()]
    );
    publish_one(&*store, "owned", "1.1.0", bob.id)
        .await
        .unwrap();
    assert!(matches!(
        store
            .remove_owners(
                "owned",
                OwnerActor::Owner(bob.id),
                &["alice".into(), "bob".into()]
            )
            .await,
        Err(StoreError::LastOwner(_))
    ));
    let removed = store
        .remove_owners("owned", OwnerActor::Owner(bob.id), &["alice".into()])
        .await
        .unwrap();
    assert_eq!(removed, vec![alice.clone()]);
    assert_eq!(store.owners("owned").await.unwrap().unwrap(), vec![bob]);
    assert!(store.owners("nothing").await.unwrap().is_none());
}

pub(crate) async fn pending_changes_and_acknowledgements(store: Arc<dyn MetadataStore>) {
    let alice = store.create_user("alice", "h", token()).await.unwrap();
    assert!(store.pending_changes(10).await.unwrap().is_empty());
    assert_eq!(
        store.pending_summary().await.unwrap(),
        PendingSummary::default()
    );
    let before = Utc::now() - TimeDelta::seconds(1);
    publish_one(&*store, "one", "1.0.0", alice.id)
        .await
        .unwrap();
    publish_one(&*store, "two", "1.0.0", alice.id)
        .await
        .unwrap();
    let second = publish_one(&*store, "two", "1.1.0", alice.id)
        .await
        .unwrap();
    let mut pending = store.pending_changes(10).await.unwrap();
    pending.sort_by(|a, b| a.canonical.cmp(&b.canonical));
    let summary: Vec<(String, u64)> = pending
        .into_iter()
        .map(|change| (change.canonical, change.revision))
        .collect();
    assert_eq!(summary, [("one".into(), 1), ("two".into(), 2)]);
    assert_eq!(store.pending_changes(1).await.unwrap().len(), 1);
    let lag = store.pending_summary().await.unwrap();
    assert_eq!(lag.crates, 2);
    let oldest = lag.oldest.expect("the first publish's mark has a time");
    assert!(oldest >= before && oldest <= Utc::now(), "{oldest}");

    // An acknowledgement of an older revision leaves the mark.
    assert!(!store.acknowledge("two", second.revision - 1).await.unwrap());
    assert!(store.acknowledge("two", second.revision).await.unwrap());
    // The second publish of `two` kept the time its crate was first marked.
    assert_eq!(store.pending_summary().await.unwrap().oldest, Some(oldest));
    assert!(store.acknowledge("one", 1).await.unwrap());
    assert!(!store.acknowledge("one", 1).await.unwrap());
    assert!(store.pending_changes(10).await.unwrap().is_empty());
    assert_eq!(
        store.pending_summary().await.unwrap(),
        PendingSummary::default()
    );

    // A yank marks the crate again.
    store
        .set_yanked(
            "one",
            &semver::Version::parse("1.0.0").unwrap(),
            true,
            alice.id,
            None,
        )
        .await
        .unwrap();
    let pending = store.pending_changes(10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(
        (pending[0].canonical.as_str(), pending[0].revision),
        ("one", 2)
    );
}

pub(crate) async fn search_and_listing(store: Arc<dyn MetadataStore>) {
    let alice = store.create_user("alice", "h", token()).await.unwrap();
    for (name, version) in [
        ("tokio", "1.0.0"),
        ("tokio-util", "0.7.0"),
        ("my_tokio_ext", "0.1.0"),
        ("serde", "1.0.0"),
        ("tokio", "1.1.0"),
    ] {
        publish_one(&*store, name, version, alice.id).await.unwrap();
    }
    store
        .set_yanked(
            "tokio",
            &semver::Version::parse("1.1.0").unwrap(),
            true,
            alice.id,
            None,
        )
        .await
        .unwrap();
    let page = store.search("TOKIO", 0, 10).await.unwrap();
    assert_eq!(page.total, 3);
    let names: Vec<&str> = page.hits.iter().map(|hit| hit.name.as_str()).collect();
    assert_eq!(names, ["tokio", "tokio-util", "my_tokio_ext"]);
    assert_eq!(page.hits[0].max_version, "1.0.0");
    assert_eq!(page.hits[0].description.as_deref(), Some("about tokio"));
    let second_page = store.search("tokio", 2, 2).await.unwrap();
    assert_eq!(second_page.total, 3);
    assert_eq!(second_page.hits.len(), 1);
    assert_eq!(store.search("about serde", 0, 10).await.unwrap().total, 1);
    assert_eq!(store.search("nothing", 0, 10).await.unwrap().total, 0);

    let first = store.crate_names(None, 2).await.unwrap();
    assert_eq!(first, ["my_tokio_ext", "serde"]);
    let rest = store.crate_names(Some("serde"), 10).await.unwrap();
    assert_eq!(rest, ["tokio", "tokio_util"]);
    assert_eq!(canonical_crate_name("tokio-util"), "tokio_util");
}

pub(crate) async fn concurrent_publishes_of_one_version_admit_one(store: Arc<dyn MetadataStore>) {
    let alice = store.create_user("alice", "h", token()).await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for attempt in 0..16 {
        let store = Arc::clone(&store);
        let version = if attempt % 2 == 0 { "1.0.0" } else { "1.0.0+x" };
        tasks.spawn(async move { publish_one(&*store, "contested", version, alice.id).await });
    }
    for patch in 1..=16 {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            publish_one(&*store, "contested", &format!("1.0.{patch}"), alice.id).await
        });
    }
    let mut accepted = 0;
    let mut duplicates = 0;
    while let Some(result) = tasks.join_next().await {
        match result.unwrap() {
            Ok(_) => accepted += 1,
            Err(StoreError::DuplicateVersion { .. }) => duplicates += 1,
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!((accepted, duplicates), (17, 15));
    let file = store.index_file("contested").await.unwrap().unwrap();
    assert_eq!(lines(&file).len(), 17);
    assert_eq!(file.revision, 17);
}

pub(crate) async fn rate_windows_count_and_end(store: Arc<dyn MetadataStore>) {
    let window = std::time::Duration::from_millis(400);
    for expected in 1..=3 {
        let (hits, left) = store.count_hit("login:ip:10.0.0.1", window).await.unwrap();
        assert_eq!(hits, expected);
        assert!(left <= window && !left.is_zero(), "{left:?}");
    }
    // Buckets are apart.
    let (hits, _) = store.count_hit("login:ip:10.0.0.2", window).await.unwrap();
    assert_eq!(hits, 1);
    // Concurrent hits are each counted once.
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let store = Arc::clone(&store);
        tasks.spawn(async move { store.count_hit("burst", window).await.unwrap().0 });
    }
    let mut seen: Vec<u64> = tasks.join_all().await;
    seen.sort_unstable();
    assert_eq!(seen, (1..=20).collect::<Vec<_>>());
    // A new window starts once the old one ended.
    tokio::time::sleep(window + std::time::Duration::from_millis(50)).await;
    let (hits, _) = store.count_hit("login:ip:10.0.0.1", window).await.unwrap();
    assert_eq!(hits, 1);
}

fn audit(action: &str, target: &str) -> AuditEvent {
    AuditEvent {
        at: Utc::now(),
        actor: Some("alice".into()),
        action: action.into(),
        target: target.into(),
        client: Some("192.0.2.1".into()),
        detail: None,
    }
}

pub(crate) async fn scoped_tokens_list_and_revoke(store: Arc<dyn MetadataStore>) {
    let alice = store.create_user("alice", "h", token()).await.unwrap();
    let bob = store.create_user("bob", "h", token()).await.unwrap();
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
    store
        .add_token(alice.id, scoped.to_new_token_with(details.clone()))
        .await
        .unwrap();
    let stored = store.token(scoped.id()).await.unwrap().unwrap();
    assert_eq!(stored.id, scoped.id());
    // An expired token stays listed for a while, so its holder is told it expired.
    let expired = ApiToken::generate();
    let mut old = details.clone();
    old.name = "old".into();
    old.expires_at = Some(Utc::now() - TimeDelta::days(1));
    store
        .add_token(alice.id, expired.to_new_token_with(old))
        .await
        .unwrap();
    assert!(store.token(expired.id()).await.unwrap().is_some());
    store.revoke_token(alice.id, expired.id()).await.unwrap();
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
        store.revoke_token(bob.id, scoped.id()).await,
        Err(StoreError::TokenNotFound(_))
    ));
    store.revoke_token(alice.id, scoped.id()).await.unwrap();
    assert!(store.token(scoped.id()).await.unwrap().is_none());
    assert_eq!(store.list_tokens(alice.id).await.unwrap().len(), 1);
    assert!(matches!(
        store.revoke_token(alice.id, scoped.id()).await,
        Err(StoreError::TokenNotFound(_))
    ));
}

pub(crate) async fn disabled_users_lose_their_tokens(store: Arc<dyn MetadataStore>) {
    let first = ApiToken::generate();
    let alice = store
        .create_user("alice", "h", first.to_new_token("login", Utc::now()))
        .await
        .unwrap();
    let bob_token = ApiToken::generate();
    let bob = store
        .create_user("bob", "h", bob_token.to_new_token("login", Utc::now()))
        .await
        .unwrap();
    assert_eq!(store.set_user_disabled("ALICE", true).await.unwrap(), alice);
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
        store.add_token(alice.id, token()).await,
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
    store.set_user_disabled("alice", false).await.unwrap();
    assert!(
        !store
            .user_credentials("alice")
            .await
            .unwrap()
            .unwrap()
            .disabled
    );
    store.add_token(alice.id, token()).await.unwrap();
    assert!(matches!(
        store.set_user_disabled("nobody", true).await,
        Err(StoreError::UserNotFound(_))
    ));
    let _ = bob;
}

pub(crate) async fn invitations_are_single_use(store: Arc<dyn MetadataStore>) {
    let admin = store.create_user("admin", "h", token()).await.unwrap();
    store.create_user("taken", "h", token()).await.unwrap();
    let code = [7_u8; 32];
    store
        .create_invitation(Invitation {
            code_hash: code,
            created_by: admin.id,
            expires_at: Utc::now() + TimeDelta::hours(1),
        })
        .await
        .unwrap();
    assert!(matches!(
        store
            .create_invited_user([8; 32], "carol", "h", token())
            .await,
        Err(StoreError::InvitationInvalid)
    ));
    // A taken name keeps the invitation for another try.
    assert!(matches!(
        store.create_invited_user(code, "Taken", "h", token()).await,
        Err(StoreError::UserExists(_))
    ));
    let carol = store
        .create_invited_user(code, "carol", "h", token())
        .await
        .unwrap();
    assert_eq!(carol.name, "carol");
    assert!(matches!(
        store.create_invited_user(code, "dave", "h", token()).await,
        Err(StoreError::InvitationInvalid)
    ));
    assert!(store.user_credentials("dave").await.unwrap().is_none());
    // An expired invitation is refused.
    let stale = [9_u8; 32];
    store
        .create_invitation(Invitation {
            code_hash: stale,
            created_by: admin.id,
            expires_at: Utc::now() + TimeDelta::milliseconds(50),
        })
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(120)).await;
    assert!(matches!(
        store.create_invited_user(stale, "erin", "h", token()).await,
        Err(StoreError::InvitationInvalid)
    ));
    assert!(store.user_credentials("erin").await.unwrap().is_none());
    // Disabling an administrator drops the invitations they issued.
    let pending = [10_u8; 32];
    store
        .create_invitation(Invitation {
            code_hash: pending,
            created_by: admin.id,
            expires_at: Utc::now() + TimeDelta::hours(1),
        })
        .await
        .unwrap();
    store.set_user_disabled("admin", true).await.unwrap();
    assert!(matches!(
        store
            .create_invited_user(pending, "frank", "h", token())
            .await,
        Err(StoreError::InvitationInvalid)
    ));
    // An unknown invitation is refused whether or not the name is taken.
    assert!(matches!(
        store
            .create_invited_user([11; 32], "carol", "h", token())
            .await,
        Err(StoreError::InvitationInvalid)
    ));
}

pub(crate) async fn admins_change_any_owners_but_never_the_last(store: Arc<dyn MetadataStore>) {
    let alice = store.create_user("alice", "h", token()).await.unwrap();
    let bob = store.create_user("bob", "h", token()).await.unwrap();
    publish_one(&*store, "owned", "1.0.0", alice.id)
        .await
        .unwrap();
    // A transfer: add the new owner, then remove the old one.
    let added = store
        .add_owners("owned", OwnerActor::Admin, &["bob".into()])
        .await
        .unwrap();
    assert_eq!(added, std::slice::from_ref(&bob));
    store
        .remove_owners("owned", OwnerActor::Admin, &["alice".into()])
        .await
        .unwrap();
    assert_eq!(store.owners("owned").await.unwrap().unwrap(), [bob]);
    assert!(matches!(
        store
            .remove_owners("owned", OwnerActor::Admin, &["bob".into()])
            .await,
        Err(StoreError::LastOwner(_))
    ));
    assert!(matches!(
        store
            .add_owners("nothing", OwnerActor::Admin, &["bob".into()])
            .await,
        Err(StoreError::CrateNotFound(_))
    ));
}

pub(crate) async fn audit_log_pages_newest_first(store: Arc<dyn MetadataStore>) {
    assert!(store.audit_events(None, 10).await.unwrap().is_empty());
    let alice = store.create_user("alice", "h", token()).await.unwrap();
    for n in 0..5 {
        store
            .record_audit(audit("login.failure", &format!("user{n}")))
            .await
            .unwrap();
    }
    // A publish records its event in the same step as the version.
    let mut version = new_version("audited", "1.0.0", alice.id);
    version.audit = Some(audit("crate.publish", "audited@1.0.0"));
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
    assert_eq!(targets, ["user1", "user0"]);
    assert!(matches!(
        store.audit_events(Some("not a cursor"), 10).await,
        Err(StoreError::InvalidCursor(_))
    ));
}

/// Checks the fields an audit event keeps, returning it when they are as recorded.
fn audit_like(event: &AuditEvent, action: &str) -> AuditEvent {
    assert_eq!(event.action, action);
    assert_eq!(event.actor.as_deref(), Some("alice"));
    assert_eq!(event.client.as_deref(), Some("192.0.2.1"));
    event.clone()
}

pub(crate) async fn publishes_can_require_the_crate_to_exist_or_not(store: Arc<dyn MetadataStore>) {
    let alice = store.create_user("alice", "h", token()).await.unwrap();
    publish_one(&*store, "existing", "1.0.0", alice.id)
        .await
        .unwrap();
    let mut update = new_version("fresh", "1.0.0", alice.id);
    update.crate_exists = Some(true);
    assert!(matches!(
        store.publish(update).await,
        Err(StoreError::CrateChanged(_))
    ));
    assert!(store.crate_summary("fresh").await.unwrap().is_none());
    let mut first = new_version("existing", "2.0.0", alice.id);
    first.crate_exists = Some(false);
    assert!(matches!(
        store.publish(first.clone()).await,
        Err(StoreError::CrateChanged(_))
    ));
    first.crate_exists = Some(true);
    assert_eq!(store.publish(first).await.unwrap().revision, 2);
    let mut new = new_version("fresh", "1.0.0", alice.id);
    new.crate_exists = Some(false);
    store.publish(new).await.unwrap();
}

pub(crate) async fn index_files_are_replaced_only_at_their_revision(store: Arc<dyn MetadataStore>) {
    let alice = store.create_user("alice", "h", token()).await.unwrap();
    let published = publish_one(&*store, "kept", "1.0.0", alice.id)
        .await
        .unwrap();
    assert!(store.acknowledge("kept", published.revision).await.unwrap());
    let rewritten = bytes::Bytes::from(format!("{}\n", lines(&published)[0].to_json()));

    // A replacement at an old revision writes nothing.
    assert!(
        store
            .replace_index_file("kept", published.revision - 1, rewritten.clone())
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.index_file("kept").await.unwrap().unwrap(), published);

    let replaced = store
        .replace_index_file("kept", published.revision, rewritten.clone())
        .await
        .unwrap()
        .expect("the revision is current");
    assert_eq!(replaced.content, rewritten);
    assert_eq!(replaced.revision, published.revision + 1);
    assert_eq!(replaced.name, "kept");
    assert_eq!(store.index_file("kept").await.unwrap().unwrap(), replaced);
    let pending = store.pending_changes(10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].revision, replaced.revision);

    assert!(matches!(
        store
            .replace_index_file("missing", 1, rewritten)
            .await
            .unwrap_err(),
        StoreError::CrateNotFound(_)
    ));
}
