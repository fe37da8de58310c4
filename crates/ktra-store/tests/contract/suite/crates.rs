//! Publishing, yanking, owners and search.

use std::sync::Arc;

use ktra_core::version::VersionId;
use ktra_store::model::OwnerAction::{Add, Remove};
use ktra_store::model::OwnerActor::{Admin, Owner};
use ktra_store::{MetadataStore, StoreError};

use super::fixtures::*;

pub(crate) async fn publish_appends_and_refuses(store: Arc<dyn MetadataStore>) {
    let alice = registered(&*store, "alice").await;
    let bob = registered(&*store, "bob").await;
    let first = published(&*store, "Foo-Bar", "1.0.0", alice.id).await;
    assert_eq!(first.krate.name(), "Foo-Bar");
    assert_eq!(first.revision, 1);
    assert_eq!(lines(&first).len(), 1);
    let second = published(&*store, "Foo-Bar", "1.1.0-rc.1+build", alice.id).await;
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
    let file = store.index_file(&id("foo_bar")).await.unwrap().unwrap();
    assert_eq!(file, second, "refusals changed the file");

    let summary = store.crate_summary(&id("foo_bar")).await.unwrap().unwrap();
    assert_eq!(summary.owners, vec![alice.id]);
    assert_eq!(summary.versions.len(), 2);
    let found = store
        .crate_file(&id("foo_bar"), &VersionId::parse("1.1.0-rc.1").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.version, "1.1.0-rc.1+build");
    assert_eq!(found.blob_key, "crates/Foo-Bar/1.1.0-rc.1+build");
    assert!(
        store
            .crate_file(&id("foo_bar"), &VersionId::parse("3.0.0").unwrap())
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.index_file(&id("nothing")).await.unwrap().is_none());
}

pub(crate) async fn yank_flips_one_line(store: Arc<dyn MetadataStore>) {
    let alice = registered(&*store, "alice").await;
    let bob = registered(&*store, "bob").await;
    for version in ["0.1.0", "0.2.0", "0.3.0"] {
        published(&*store, "yanky", version, alice.id).await;
    }
    let before = store.index_file(&id("yanky")).await.unwrap().unwrap();
    // Alice yanks 0.2.0, the event's target saying which call it was.
    let yank_v2 = |target| {
        yank(
            "yanky",
            "0.2.0",
            true,
            alice.id,
            Some(audit("crate.yank", target)),
        )
    };
    let (yanked, changed) = store.set_yanked(yank_v2("yanky@0.2.0")).await.unwrap();
    assert!(changed);
    assert_eq!(yanked.revision, before.revision + 1);
    let flags: Vec<bool> = lines(&yanked).iter().map(|line| line.yanked).collect();
    assert_eq!(flags, [false, true, false]);
    let mut expected = lines(&before);
    expected[1].yanked = true;
    assert_eq!(lines(&yanked), expected, "only the flag changed");

    // Yanking again changes nothing, and records nothing.
    let again = store.set_yanked(yank_v2("again")).await.unwrap();
    assert_eq!(again, (yanked.clone(), false));
    // The validators answer revalidations without the content, and agree with the file.
    let validators = store.index_validators(&id("yanky")).await.unwrap().unwrap();
    assert!(validators.content.is_empty());
    assert_eq!(
        (
            validators.etag(),
            validators.last_modified,
            validators.revision
        ),
        (yanked.etag(), yanked.last_modified, yanked.revision)
    );
    assert!(
        store
            .index_validators(&id("absent"))
            .await
            .unwrap()
            .is_none()
    );
    // The yank's event follows the last publish's: yanking again recorded nothing.
    let recorded = store.audit_events(None, 2).await.unwrap();
    let targets: Vec<&str> = recorded.iter().map(|r| r.event.target.as_str()).collect();
    assert_eq!(targets, ["yanky@0.2.0", "yanky@0.3.0"]);
    assert_eq!(recorded[0].event.action, "crate.yank");
    let (undone, _) = store
        .set_yanked(yank("yanky", "0.2.0", false, alice.id, None))
        .await
        .unwrap();
    assert_eq!(undone.content, before.content);
    assert_eq!(undone.revision, before.revision + 2);

    assert!(matches!(
        store
            .set_yanked(yank("yanky", "0.2.0", true, bob.id, None))
            .await,
        Err(StoreError::NotOwner(_))
    ));
    assert!(matches!(
        store
            .set_yanked(yank("yanky", "9.0.0", true, alice.id, None))
            .await,
        Err(StoreError::VersionNotFound { .. })
    ));
    assert!(matches!(
        store
            .set_yanked(yank("nothing", "0.2.0", true, alice.id, None))
            .await,
        Err(StoreError::CrateNotFound(_))
    ));
}

pub(crate) async fn owners_never_run_out(store: Arc<dyn MetadataStore>) {
    let alice = registered(&*store, "alice").await;
    let bob = registered(&*store, "bob").await;
    published(&*store, "owned", "1.0.0", alice.id).await;
    assert!(matches!(
        change_owners(&*store, "owned", Add, Owner(bob.id), &["bob"]).await,
        Err(StoreError::NotOwner(_))
    ));
    assert!(matches!(
        change_owners(&*store, "owned", Add, Owner(alice.id), &["bob", "nobody"])
            .await,
        Err(StoreError::UserNotFound(name)) if name == "nobody"
    ));
    assert_eq!(
        store.owners(&id("owned")).await.unwrap().unwrap(),
        vec![alice.clone()]
    );
    let added = change_owners(&*store, "owned", Add, Owner(alice.id), &["BOB", "alice"])
        .await
        .unwrap();
    assert_eq!(added, vec![bob.clone()]);
    assert_eq!(
        store.owners(&id("owned")).await.unwrap().unwrap(),
        vec![alice.clone(), bob.clone()]
    );
    published(&*store, "owned", "1.1.0", bob.id).await;
    assert!(matches!(
        change_owners(&*store, "owned", Remove, Owner(bob.id), &["alice", "bob"]).await,
        Err(StoreError::LastOwner(_))
    ));
    let removed = change_owners(&*store, "owned", Remove, Owner(bob.id), &["alice"])
        .await
        .unwrap();
    assert_eq!(removed, vec![alice.clone()]);
    assert_eq!(
        store.owners(&id("owned")).await.unwrap().unwrap(),
        vec![bob]
    );
    assert!(store.owners(&id("nothing")).await.unwrap().is_none());
}

pub(crate) async fn search_and_listing(store: Arc<dyn MetadataStore>) {
    let alice = registered(&*store, "alice").await;
    for (name, version) in [
        ("tokio", "1.0.0"),
        ("tokio-util", "0.7.0"),
        ("my_tokio_ext", "0.1.0"),
        ("serde", "1.0.0"),
        ("tokio", "1.1.0"),
    ] {
        published(&*store, name, version, alice.id).await;
    }
    store
        .set_yanked(yank("tokio", "1.1.0", true, alice.id, None))
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
    // Several words: each must be in the name or the description.
    let hits = |query: &'static str| {
        let store = Arc::clone(&store);
        async move {
            let page = store.search(query, 0, 10).await.unwrap();
            page.hits
                .into_iter()
                .map(|hit| hit.name)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(hits("tokio util").await, ["tokio-util"]);
    assert_eq!(hits("ext my").await, ["my_tokio_ext"]);
    assert_eq!(hits("about tokio ext").await, ["my_tokio_ext"]);
    assert!(hits("tokio serde").await.is_empty());

    let canonical = |names: &[ktra_core::name::CrateId]| -> Vec<String> {
        names
            .iter()
            .map(|name| name.canonical().to_owned())
            .collect()
    };
    let first = store.crate_names(None, 2).await.unwrap();
    assert_eq!(canonical(&first), ["my_tokio_ext", "serde"]);
    let rest = store.crate_names(Some(&first[1]), 10).await.unwrap();
    assert_eq!(canonical(&rest), ["tokio", "tokio_util"]);
    assert_eq!(
        ktra_core::name::canonical_crate_name("tokio-util"),
        "tokio_util"
    );
}

pub(crate) async fn concurrent_publishes_of_one_version_admit_one(store: Arc<dyn MetadataStore>) {
    let alice = registered(&*store, "alice").await;
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
    let file = store.index_file(&id("contested")).await.unwrap().unwrap();
    assert_eq!(lines(&file).len(), 17);
    assert_eq!(file.revision, 17);
}

pub(crate) async fn admins_change_any_owners_but_never_the_last(store: Arc<dyn MetadataStore>) {
    let alice = registered(&*store, "alice").await;
    let bob = registered(&*store, "bob").await;
    published(&*store, "owned", "1.0.0", alice.id).await;
    // A transfer: add the new owner, then remove the old one.
    let added = change_owners(&*store, "owned", Add, Admin, &["bob"])
        .await
        .unwrap();
    assert_eq!(added, std::slice::from_ref(&bob));
    change_owners(&*store, "owned", Remove, Admin, &["alice"])
        .await
        .unwrap();
    assert_eq!(store.owners(&id("owned")).await.unwrap().unwrap(), [bob]);
    assert!(matches!(
        change_owners(&*store, "owned", Remove, Admin, &["bob"]).await,
        Err(StoreError::LastOwner(_))
    ));
    assert!(matches!(
        change_owners(&*store, "nothing", Add, Admin, &["bob"]).await,
        Err(StoreError::CrateNotFound(_))
    ));
}

pub(crate) async fn publishes_can_require_the_crate_to_exist_or_not(store: Arc<dyn MetadataStore>) {
    let alice = registered(&*store, "alice").await;
    published(&*store, "existing", "1.0.0", alice.id).await;
    let mut update = new_version("fresh", "1.0.0", alice.id);
    update.crate_exists = Some(true);
    assert!(matches!(
        store.publish(update).await,
        Err(StoreError::CrateChanged(_))
    ));
    assert!(store.crate_summary(&id("fresh")).await.unwrap().is_none());
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

pub(crate) async fn versions_keep_what_they_say_about_themselves(store: Arc<dyn MetadataStore>) {
    let alice = registered(&*store, "alice").await;
    let bob = registered(&*store, "bob").await;
    let before = chrono::Utc::now() - chrono::TimeDelta::seconds(1);
    published(&*store, "Told", "1.0.0", alice.id).await;
    let mut bare = new_version("Told", "1.1.0", alice.id);
    bare.metadata = Default::default();
    bare.readme = None;
    store.publish(bare).await.unwrap();
    change_owners(&*store, "Told", Add, Owner(alice.id), &["bob"])
        .await
        .unwrap();
    published(&*store, "Told", "2.0.0-rc.1+meta", bob.id).await;

    let details = store.crate_details(&id("told")).await.unwrap().unwrap();
    assert_eq!(details.name, "Told");
    let owners: Vec<&str> = details
        .owners
        .iter()
        .map(|user| user.name.as_str())
        .collect();
    assert_eq!(owners, ["alice", "bob"]);
    let versions: Vec<&str> = details
        .versions
        .iter()
        .map(|v| v.version.as_str())
        .collect();
    assert_eq!(
        versions,
        ["1.0.0", "1.1.0", "2.0.0-rc.1+meta"],
        "in publish order"
    );
    let first = &details.versions[0];
    assert_eq!(first.publisher.as_ref().unwrap().name, "alice");
    assert!(first.published_at.unwrap() >= before);
    assert_eq!(first.cksum, "ab".repeat(32));
    let metadata = first.metadata.as_ref().unwrap();
    assert_eq!(metadata.description.as_deref(), Some("about Told"));
    assert_eq!(metadata.license.as_deref(), Some("MIT"));
    assert_eq!(details.versions[2].publisher.as_ref().unwrap().name, "bob");
    assert_eq!(
        details.versions[1].metadata.as_ref(),
        Some(&Default::default()),
        "an empty record is kept, not confused with none"
    );
    assert!(store.crate_details(&id("missing")).await.unwrap().is_none());

    let readme = |version: &str| {
        let store = Arc::clone(&store);
        let version = VersionId::parse(version).unwrap();
        async move { store.readme(&id("told"), &version).await.unwrap() }
    };
    assert_eq!(readme("1.0.0").await.as_deref(), Some("# Told 1.0.0"));
    assert_eq!(
        readme("2.0.0-rc.1").await.as_deref(),
        Some("# Told 2.0.0-rc.1+meta"),
        "found by the version's key"
    );
    assert_eq!(readme("1.1.0").await, None);
    assert_eq!(readme("9.9.9").await, None);

    // The backfill fills what is missing, and only that.
    let filled = ktra_core::metadata::VersionMetadata {
        homepage: Some("https://example.com".to_owned()),
        ..Default::default()
    };
    let v = |text: &str| VersionId::parse(text).unwrap();
    for (version, expected) in [("1.0.0", false), ("9.9.9", false)] {
        let kept = store
            .keep_version_metadata(&id("told"), &v(version), filled.clone(), None)
            .await
            .unwrap();
        assert_eq!(kept, expected, "{version}");
    }
    let told = id("told");
    let details = store.crate_details(&told).await.unwrap().unwrap();
    assert_eq!(
        details.versions[0]
            .metadata
            .as_ref()
            .unwrap()
            .license
            .as_deref(),
        Some("MIT"),
        "kept metadata is never replaced"
    );
}

/// Checks a store holding `legacy@1.0.0` as an earlier release wrote it (no publish time, no
/// publisher, no metadata): it reads as unknown, and the backfill keeps metadata for it once.
pub(crate) async fn legacy_version_takes_metadata_once(store: &dyn MetadataStore) {
    let legacy = id("legacy");
    let details = store.crate_details(&legacy).await.unwrap().unwrap();
    let version = &details.versions[0];
    assert_eq!(version.version, "1.0.0");
    assert_eq!(
        (&version.published_at, &version.publisher, &version.metadata),
        (&None, &None, &None)
    );
    let metadata = ktra_core::metadata::VersionMetadata {
        repository: Some("https://example.com/legacy.git".to_owned()),
        ..Default::default()
    };
    let one = VersionId::parse("1.0.0").unwrap();
    assert!(
        store
            .keep_version_metadata(&legacy, &one, metadata.clone(), Some("# Legacy".to_owned()))
            .await
            .unwrap()
    );
    assert!(
        !store
            .keep_version_metadata(&legacy, &one, Default::default(), None)
            .await
            .unwrap(),
        "a second backfill changes nothing"
    );
    let details = store.crate_details(&legacy).await.unwrap().unwrap();
    assert_eq!(details.versions[0].metadata, Some(metadata));
    assert_eq!(
        store.readme(&legacy, &one).await.unwrap().as_deref(),
        Some("# Legacy")
    );
}

pub(crate) async fn the_overview_lists_every_crate(store: Arc<dyn MetadataStore>) {
    assert!(store.crates_overview().await.unwrap().is_empty());
    let alice = registered(&*store, "alice").await;
    let before = chrono::Utc::now() - chrono::TimeDelta::seconds(1);
    published(&*store, "Zeta", "1.0.0", alice.id).await;
    published(&*store, "alpha", "0.1.0", alice.id).await;
    published(&*store, "alpha", "0.2.0-beta.1", alice.id).await;
    let overview = store.crates_overview().await.unwrap();
    let names: Vec<&str> = overview.iter().map(|entry| entry.name.as_str()).collect();
    assert_eq!(names, ["alpha", "Zeta"], "in canonical order");
    let alpha = &overview[0];
    assert_eq!(alpha.newest_version.as_deref(), Some("0.2.0-beta.1"));
    assert_eq!(alpha.version_count, 2);
    assert_eq!(alpha.owners, [alice.id]);
    assert_eq!(alpha.description.as_deref(), Some("about alpha"));
    let created = alpha.created_at.unwrap();
    assert!(created >= before && created <= alpha.updated_at);
}
