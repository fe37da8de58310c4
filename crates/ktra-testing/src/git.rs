//! Reading and writing the remote repositories directly, as another git user would.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// Returns every file of `branch` in a bare repository, with its content; empty when the
/// branch does not exist yet.
pub fn branch_files(repo_dir: &Path, branch: &str) -> BTreeMap<String, String> {
    let Ok(repo) = git2::Repository::open_bare(repo_dir) else {
        return BTreeMap::new();
    };
    let Ok(reference) = repo.find_reference(&format!("refs/heads/{branch}")) else {
        return BTreeMap::new();
    };
    let tree = reference
        .peel_to_tree()
        .expect("the branch points at a commit");
    let mut files = BTreeMap::new();
    tree.walk(git2::TreeWalkMode::PreOrder, |root, entry| {
        if entry.kind() == Some(git2::ObjectType::Blob) {
            let blob = repo.find_blob(entry.id()).expect("blobs are readable");
            files.insert(
                format!("{root}{}", entry.name().unwrap_or_default()),
                String::from_utf8_lossy(blob.content()).into_owned(),
            );
        }
        git2::TreeWalkResult::Ok
    })
    .expect("the tree walks");
    files
}

/// Counts the commits on `branch`.
pub fn commit_count(repo_dir: &Path, branch: &str) -> usize {
    let repo = git2::Repository::open_bare(repo_dir).expect("the remote opens");
    let mut walk = repo.revwalk().expect("a revwalk");
    walk.push_ref(&format!("refs/heads/{branch}"))
        .expect("the branch exists");
    walk.count()
}

/// Runs git with `args`, asserting success; returns stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Someone Else")
        .env("GIT_AUTHOR_EMAIL", "else@example.com")
        .env("GIT_COMMITTER_NAME", "Someone Else")
        .env("GIT_COMMITTER_EMAIL", "else@example.com")
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Creates an empty bare repository whose default branch is `main`.
pub fn init_bare(dir: &Path) {
    std::fs::create_dir_all(dir).expect("the directory is created");
    git(
        dir,
        &["init", "--quiet", "--bare", "--initial-branch=main", "."],
    );
}

/// Pushes a commit made by someone else: it appends a bogus line to `path`, deletes
/// `delete` if given, and adds a README (not an index file).
pub fn push_foreign_commit(remote_dir: &Path, work: &Path, path: &str, delete: Option<&str>) {
    let url = format!("file://{}", remote_dir.display());
    git(
        work,
        &["clone", "--quiet", "--branch", "main", &url, "clone"],
    );
    let clone = work.join("clone");
    let target = clone.join(path);
    let mut content = std::fs::read_to_string(&target).unwrap_or_default();
    content.push_str("{\"name\":\"bogus\"}\n");
    std::fs::create_dir_all(target.parent().expect("index paths have a parent"))
        .expect("the directory is created");
    std::fs::write(&target, content).expect("the file is written");
    if let Some(delete) = delete {
        std::fs::remove_file(clone.join(delete)).expect("the file is deleted");
    }
    std::fs::write(clone.join("README.md"), "an index\n").expect("the readme is written");
    git(&clone, &["add", "--all"]);
    git(&clone, &["commit", "--quiet", "-m", "a foreign commit"]);
    git(&clone, &["push", "--quiet", "origin", "HEAD:main"]);
}
