//! Keeping repositories healthy under thousands of pushes, with libgit2 alone.
//!
//! Every round writes a handful of loose objects (a blob, a few trees, a commit). Left alone,
//! they pile up by the hundred thousand in the clone and in a `file://` remote. Periodically the
//! loose objects are packed into one pack and their loose copies removed (always safe: the
//! objects stay reachable through the pack), and once the packs we made pile up, they are
//! replaced by one pack of everything reachable. Packs we did not make (from fetches, or pushed
//! by someone else) are only ever removed from our own clone, which nobody else writes.
//!
//! Maintenance runs on its own thread with its own repository handles, so packing a large
//! index never delays a push. Readers that looked for an object in a pack or loose file that
//! maintenance just replaced find it again: libgit2 rescans the object directory on a miss.

use std::path::{Path, PathBuf};

use git2::{Oid, Repository};

/// Loose objects tolerated before they are packed.
pub const LOOSE_LIMIT: usize = 2048;

/// Packs of our own tolerated before everything is repacked into one.
pub const PACK_LIMIT: usize = 16;

/// Returns the loose objects of a repository: (id, file).
///
/// # Errors
///
/// Fails when the object directory cannot be read.
pub fn loose_objects(repo: &Repository) -> std::io::Result<Vec<(Oid, PathBuf)>> {
    let objects = repo.path().join("objects");
    let mut found = Vec::new();
    for dir in std::fs::read_dir(&objects)? {
        let dir = dir?;
        let prefix = dir.file_name().to_string_lossy().into_owned();
        if prefix.len() != 2 || !prefix.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            continue;
        }
        for file in std::fs::read_dir(dir.path())? {
            let file = file?;
            let rest = file.file_name().to_string_lossy().into_owned();
            if let Ok(oid) = Oid::from_str(&format!("{prefix}{rest}")) {
                found.push((oid, file.path()));
            }
        }
    }
    Ok(found)
}

/// Returns the names (`pack-<hash>`) of a repository's packs.
///
/// # Errors
///
/// Fails when the pack directory cannot be read.
pub fn pack_names(repo: &Repository) -> std::io::Result<Vec<String>> {
    let dir = repo.path().join("objects").join("pack");
    match std::fs::read_dir(&dir) {
        Ok(entries) => Ok(entries
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                name.strip_suffix(".pack").map(str::to_owned)
            })
            .collect()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(error) => Err(error),
    }
}

fn io_error(error: std::io::Error) -> git2::Error {
    git2::Error::from_str(&error.to_string())
}

fn write_pack(
    repo: &Repository,
    builder: &mut git2::PackBuilder<'_>,
) -> Result<String, git2::Error> {
    let dir = repo.path().join("objects").join("pack");
    std::fs::create_dir_all(&dir).map_err(io_error)?;
    builder.write(&dir, 0)?;
    let name = builder
        .name()?
        .ok_or_else(|| git2::Error::from_str("the pack builder wrote no pack"))?;
    Ok(format!("pack-{name}"))
}

fn remove_pack(repo: &Repository, name: &str) {
    let dir = repo.path().join("objects").join("pack");
    for extension in ["pack", "idx", "rev"] {
        let path = dir.join(format!("{name}.{extension}"));
        if let Err(error) = std::fs::remove_file(&path)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(%error, path = %path.display(), "cannot remove a pack");
        }
    }
}

/// Packs every loose object into one new pack and removes the loose copies. Returns the new
/// pack's name, or `None` when there were at most `limit` loose objects.
///
/// # Errors
///
/// Fails when the pack cannot be written.
pub fn pack_loose(repo: &Repository, limit: usize) -> Result<Option<String>, git2::Error> {
    let loose = loose_objects(repo).map_err(io_error)?;
    if loose.len() <= limit || loose.is_empty() {
        return Ok(None);
    }
    let mut builder = repo.packbuilder()?;
    for (oid, _) in &loose {
        builder.insert_object(*oid, None)?;
    }
    let name = write_pack(repo, &mut builder)?;
    repo.odb()?.refresh()?;
    for (_, path) in &loose {
        // The pack holds every one of these objects now.
        let _ = std::fs::remove_file(path);
    }
    tracing::info!(objects = loose.len(), pack = name, path = %repo.path().display(), "packed loose objects");
    Ok(Some(name))
}

/// Packs the loose objects, writes one pack of everything reachable from every reference,
/// then removes the packs in `replaceable`. Returns the new pack's name.
///
/// # Errors
///
/// Fails when the repository cannot be walked or the pack written.
pub fn repack(repo: &Repository, replaceable: &[String]) -> Result<String, git2::Error> {
    let mut replaceable = replaceable.to_vec();
    replaceable.extend(pack_loose(repo, 0)?);
    let mut builder = repo.packbuilder()?;
    let mut walk = repo.revwalk()?;
    walk.push_glob("refs/*")?;
    builder.insert_walk(&mut walk)?;
    let name = write_pack(repo, &mut builder)?;
    repo.odb()?.refresh()?;
    for pack in replaceable.iter().filter(|pack| **pack != name) {
        remove_pack(repo, pack);
    }
    tracing::info!(objects = builder.object_count(), pack = name, path = %repo.path().display(), "repacked");
    Ok(name)
}

/// Runs maintenance passes on a background thread when poked.
#[derive(Debug)]
pub struct Maintainer {
    poke: std::sync::mpsc::SyncSender<()>,
}

impl Maintainer {
    /// Starts the thread for the clone at `clone` and, if any, the `file://` remote at
    /// `remote`; `record` lists the packs we made in the remote.
    pub fn spawn(clone: PathBuf, remote: Option<PathBuf>, record: PathBuf) -> Self {
        // One pending poke is enough: a pass looks at everything.
        let (poke, pokes) = std::sync::mpsc::sync_channel::<()>(1);
        let spawned = std::thread::Builder::new()
            .name("git-maintenance".to_owned())
            .spawn(move || {
                while pokes.recv().is_ok() {
                    maintain(&clone, remote.as_deref(), &record);
                }
            });
        if let Err(error) = spawned {
            tracing::warn!(%error, "cannot start the maintenance thread; objects stay loose");
        }
        Self { poke }
    }

    /// Asks for a pass, unless one is already waiting.
    pub fn poke(&self) {
        let _ = self.poke.try_send(());
    }
}

/// One pass: pack loose objects and bound the number of packs. Failures are logged; nothing
/// depends on maintenance having run.
fn maintain(clone: &Path, remote: Option<&Path>, record: &Path) {
    let local = || -> Result<(), git2::Error> {
        let repo = Repository::open_bare(clone)?;
        pack_loose(&repo, LOOSE_LIMIT)?;
        let packs = pack_names(&repo).map_err(io_error)?;
        if packs.len() > PACK_LIMIT {
            // Nobody else writes our clone, so every pack may be replaced.
            repack(&repo, &packs)?;
        }
        Ok(())
    };
    if let Err(error) = local() {
        tracing::warn!(%error, "maintenance of the clone failed");
    }
    if let Some(remote) = remote
        && let Err(error) = maintain_file_remote(remote, record)
    {
        tracing::warn!(%error, "maintenance of the file:// remote failed");
    }
}

fn maintain_file_remote(directory: &Path, record: &Path) -> Result<(), git2::Error> {
    let remote = Repository::open_bare(directory)?;
    let mut ours: Vec<String> = std::fs::read_to_string(record)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect();
    let mut changed = false;
    if let Some(pack) = pack_loose(&remote, LOOSE_LIMIT)? {
        ours.push(pack);
        changed = true;
    }
    if ours.len() > PACK_LIMIT {
        // Only packs we made are replaced: others may come from someone else's push.
        ours = vec![repack(&remote, &ours)?];
        changed = true;
    }
    if changed {
        std::fs::write(record, ours.join("\n")).map_err(io_error)?;
    }
    Ok(())
}

/// Returns the path of the file listing the packs we made in a `file://` remote.
pub fn remote_packs_file(state_dir: &Path) -> PathBuf {
    state_dir.join("remote-packs")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit_files(repo: &Repository, count: usize, offset: usize) {
        let mut parent = repo.head().ok().and_then(|head| head.peel_to_commit().ok());
        let signature = git2::Signature::now("t", "t@example.com").unwrap();
        for index in offset..offset + count {
            let blob = repo.blob(format!("file {index}").as_bytes()).unwrap();
            let base = parent.as_ref().map(|commit| commit.tree().unwrap());
            let mut builder = repo.treebuilder(base.as_ref()).unwrap();
            builder
                .insert(format!("f{index}"), blob, 0o100_644)
                .unwrap();
            let tree = repo.find_tree(builder.write().unwrap()).unwrap();
            let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
            let commit = repo
                .commit(
                    Some("refs/heads/main"),
                    &signature,
                    &signature,
                    "c",
                    &tree,
                    &parents,
                )
                .unwrap();
            parent = Some(repo.find_commit(commit).unwrap());
        }
    }

    #[test]
    fn packing_keeps_every_object_reachable() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        repo.set_head("refs/heads/main").unwrap();
        commit_files(&repo, 20, 0);
        assert_eq!(pack_loose(&repo, 100).unwrap(), None);
        let first = pack_loose(&repo, 10).unwrap().unwrap();
        assert!(loose_objects(&repo).unwrap().is_empty());
        commit_files(&repo, 20, 20);
        let second = pack_loose(&repo, 10).unwrap().unwrap();
        assert_eq!(pack_names(&repo).unwrap().len(), 2);
        commit_files(&repo, 5, 40);
        let whole = repack(&repo, &[first, second]).unwrap();
        assert!(loose_objects(&repo).unwrap().is_empty());
        assert_eq!(pack_names(&repo).unwrap(), vec![whole]);
        // Everything is still readable from a fresh handle.
        let reopened = Repository::open_bare(dir.path()).unwrap();
        let tree = reopened.head().unwrap().peel_to_tree().unwrap();
        assert_eq!(tree.len(), 45);
        for entry in &tree {
            reopened.find_blob(entry.id()).unwrap();
        }
    }
}
