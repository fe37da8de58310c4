//! The clone's push, refusal and rebase logic against real bare repositories, in-process: a
//! `file://` remote (the branch moved in place) and a plain path (libgit2's push protocol).

use std::path::Path;

use bytes::Bytes;

use super::clone_lock::CloneLock;
use super::push::PushError;
use super::repo::{FileChange, IndexRepo};
use crate::config::GitConfig;

fn config(local: &Path, remote_url: &str) -> GitConfig {
    serde_json::from_value(serde_json::json!({
        "remote_url": remote_url,
        "local_path": local,
    }))
    .unwrap()
}

fn open_clone(config: GitConfig) -> IndexRepo {
    let lock = CloneLock::take(&config.local_path).unwrap();
    IndexRepo::open(config, &lock).unwrap()
}

fn change(path: &str, content: &str) -> FileChange {
    FileChange {
        path: path.to_owned(),
        content: Some(Bytes::from(content.to_owned())),
    }
}

/// The remote's branch: its files and whether every commit on it has at most one parent.
fn remote_branch(remote: &Path) -> (Vec<(String, String)>, bool) {
    let repo = git2::Repository::open_bare(remote).unwrap();
    let tip = repo.refname_to_id("refs/heads/main").unwrap();
    let mut files = Vec::new();
    repo.find_commit(tip)
        .unwrap()
        .tree()
        .unwrap()
        .walk(git2::TreeWalkMode::PreOrder, |root, entry| {
            if entry.kind() == Some(git2::ObjectType::Blob) {
                let blob = repo.find_blob(entry.id()).unwrap();
                files.push((
                    format!("{root}{}", entry.name().unwrap()),
                    String::from_utf8_lossy(blob.content()).into_owned(),
                ));
            }
            git2::TreeWalkResult::Ok
        })
        .unwrap();
    files.sort();
    let mut walk = repo.revwalk().unwrap();
    walk.push(tip).unwrap();
    let linear = walk.all(|oid| repo.find_commit(oid.unwrap()).unwrap().parent_count() <= 1);
    (files, linear)
}

/// Both transports: a `file://` remote and a plain path.
fn remotes(dir: &Path) -> [(String, std::path::PathBuf); 2] {
    let by_directory = dir.join("file-remote.git");
    let by_protocol = dir.join("path-remote.git");
    git2::Repository::init_bare(&by_protocol)
        .unwrap()
        .set_head("refs/heads/main")
        .unwrap();
    [
        (format!("file://{}", by_directory.display()), by_directory),
        (by_protocol.display().to_string(), by_protocol),
    ]
}

#[test]
fn a_push_lands_and_a_repeated_open_keeps_the_branch() {
    let dir = tempfile::tempdir().unwrap();
    for (number, (url, remote)) in remotes(dir.path()).into_iter().enumerate() {
        let local = dir.path().join(format!("clone-{number}"));
        let mut repo = open_clone(config(&local, &url));
        assert!(!repo.has_unpushed(), "{url}");
        repo.commit(&[change("al/ph/alpha", "a1\n")], "alpha")
            .unwrap()
            .unwrap();
        assert!(repo.has_unpushed(), "{url}");
        repo.push().unwrap();
        assert!(!repo.has_unpushed(), "{url}");
        assert_eq!(repo.remote_tip(), repo.tip());
        // An unchanged tree makes no commit.
        assert!(
            repo.commit(&[change("al/ph/alpha", "a1\n")], "same")
                .unwrap()
                .is_none()
        );
        let tip = repo.tip();
        drop(repo);
        let reopened = open_clone(config(&local, &url));
        assert_eq!(reopened.tip(), tip, "{url}");
        assert_eq!(
            remote_branch(&remote).0,
            [("al/ph/alpha".to_owned(), "a1\n".to_owned())],
            "{url}"
        );
    }
}

#[test]
fn a_moved_remote_refuses_and_the_rebase_restores_our_state_without_a_merge() {
    let dir = tempfile::tempdir().unwrap();
    for (tag, (url, remote)) in remotes(dir.path()).into_iter().enumerate() {
        let mut ours = open_clone(config(&dir.path().join(format!("ours-{tag}")), &url));
        ours.commit(&[change("al/ph/alpha", "a1\n")], "alpha")
            .unwrap();
        ours.push().unwrap();

        // Someone else pushes: they change our file, add a crate file we never wrote and a
        // README.
        let mut theirs = open_clone(config(&dir.path().join(format!("theirs-{tag}")), &url));
        theirs
            .commit(
                &[
                    change("al/ph/alpha", "tampered\n"),
                    change("be/ta/beta", "b1\n"),
                    change("README.md", "hello\n"),
                ],
                "foreign",
            )
            .unwrap();
        theirs.push().unwrap();

        // Our next push is refused, not taken for a failure of the transport.
        ours.commit(&[change("ga/mm/gamma", "g1\n")], "gamma")
            .unwrap();
        match ours.push() {
            Err(PushError::Refused(_)) => {}
            other => panic!("{url}: expected a refusal, got {other:?}"),
        }
        assert!(ours.has_unpushed());

        // Fetch and rebase: every index path gets our content back, the README stays.
        let tip = ours.fetch().unwrap();
        let mut restored = ours.rebase_onto_remote(tip).unwrap();
        restored.sort();
        assert_eq!(
            restored,
            ["al/ph/alpha", "be/ta/beta", "ga/mm/gamma"],
            "{url}"
        );
        ours.push().unwrap();
        let (files, linear) = remote_branch(&remote);
        assert_eq!(
            files,
            [
                ("README.md".to_owned(), "hello\n".to_owned()),
                ("al/ph/alpha".to_owned(), "a1\n".to_owned()),
                ("ga/mm/gamma".to_owned(), "g1\n".to_owned()),
            ],
            "{url}"
        );
        assert!(linear, "{url}: never a merge commit");
    }
}

#[test]
fn a_rebase_onto_what_we_already_hold_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _) = remotes(dir.path()).into_iter().next().unwrap();
    let mut repo = open_clone(config(&dir.path().join("clone"), &url));
    repo.commit(&[change("al/ph/alpha", "a1\n")], "alpha")
        .unwrap();
    repo.push().unwrap();
    let tip = repo.tip();
    assert_eq!(repo.fetch().unwrap(), tip);
    assert!(repo.rebase_onto_remote(tip).unwrap().is_empty());
    assert_eq!(repo.tip(), tip);
}
