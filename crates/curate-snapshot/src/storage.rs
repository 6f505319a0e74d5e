//! Where a snapshot's files live: a local directory, or an `s3://` prefix worked on through a
//! local mirror.
//!
//! Every step and every stage of a run reads and writes ordinary files under one local
//! directory, [`Storage::root`]. The storage keeps that directory and the place the snapshot
//! lives in step, at the few points of a task's life where that matters (see the pipeline's
//! `exec::Run::run_task`): it *fetches* what a task reads from earlier stages before the task
//! runs, *pushes* what the task wrote, and *commits* the task's completion record last,
//! create-only. For a local directory the two places are one and these are no-ops, so the task
//! lifecycle is written once, without a branch on where the output lives.
//!
//! [`LocalDir`] is the local directory itself. [`Mirror`] is an object-storage prefix and a
//! scratch directory laid out exactly like a local snapshot:
//!
//! 1. before a task, the files it reads from earlier stages are fetched (its completion record
//!    first: if it exists the task is done and skipped);
//! 2. the task runs locally;
//! 3. every file that is new or changed in the scratch directory is uploaded whole (one PUT, or
//!    a multipart upload completed at the end), and objects of files the task deleted are
//!    deleted; `manifest.json` goes last;
//! 4. the completion record is PUT create-only: a record, once committed, is never replaced
//!    (a second worker that finished the same task finds it and keeps the first).
//!
//! So tasks of one stage can run on different machines (Slurm nodes, pods) that share nothing
//! but the bucket, and a killed run resumes from the records in the bucket. Temp files (curate's
//! one temp name, [`curate_io::atomic::temp_name`]) and other dot files (the lock's holder
//! notes) are never uploaded: objects appear only complete.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use curate_io::IoError;
use curate_io::store::{self, ObjectUrl, Put};

use crate::error::SnapshotError;
use crate::layout::{self, Layout};

/// Where a snapshot's files live, as the run's tasks see it (module docs).
///
/// Paths named `rel` are relative to the snapshot root, `/`-separated
/// ([`Layout::rel`]).
pub trait Storage: Debug + Send + Sync {
    /// The local directory every task reads and writes: the snapshot itself, or its mirror.
    fn root(&self) -> &Path;

    /// Where the snapshot lives, for messages and summaries: the directory, or the `s3://` URL
    /// as a path.
    fn location(&self) -> PathBuf;

    /// The object-storage URL of the snapshot, if it lives there.
    fn url(&self) -> Option<&ObjectUrl>;

    /// Makes the file `rel` present under [`root`](Self::root) if the snapshot has it; whether
    /// it does.
    fn fetch(&self, rel: &str) -> Result<bool, SnapshotError>;

    /// Makes every file under the directory `prefix` that `keep` accepts present under
    /// [`root`](Self::root). Within one `scope` (a stage) nothing read from earlier stages
    /// changes, so a storage may list each prefix once per scope.
    fn fetch_prefix(
        &self,
        scope: &str,
        prefix: &str,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<(), SnapshotError>;

    /// Publishes every file written, changed or removed under [`root`](Self::root) since the
    /// last push, except completion records ([`commit_record`](Self::commit_record)), with
    /// `manifest.json` last. With `keep_work_removals`, files removed under `.curate/work/`
    /// stay published until [`drop_work`](Self::drop_work) (a finalize killed before its
    /// record can run again). Returns whether anything was published.
    fn push(&self, keep_work_removals: bool) -> Result<bool, SnapshotError>;

    /// Publishes the completion record `rel` (already written locally) create-only. Returns
    /// false if one was already there: an earlier or concurrent attempt committed it, and it is
    /// kept.
    fn commit_record(&self, rel: &str) -> Result<bool, SnapshotError>;

    /// Removes the published work directory once the local one is gone (after finalize's
    /// record).
    fn drop_work(&self) -> Result<(), SnapshotError>;

    /// Removes everything of the snapshot but the run's lock (`--fresh`). Callers first make
    /// sure [`Self::foreign_entries`] is empty.
    fn clear(&self) -> Result<(), SnapshotError>;

    /// The top-level entries of the location that no curate run writes
    /// ([`layout::is_owned_top_level`]), sorted: what [`Self::clear`] would delete without
    /// curate having written it.
    fn foreign_entries(&self) -> Result<Vec<String>, SnapshotError>;

    /// Whether the location holds files that are not a curate run's, asked when it holds no
    /// run state: a run never writes into them. A local directory marks its ownership with
    /// `.curate/` (created with the lock, before anything else), which the output check reads
    /// before locking, so this is false for it; an object-storage prefix has no such marker
    /// and holds foreign files when any object but the lock is there.
    fn holds_foreign_files(&self) -> Result<bool, SnapshotError>;
}

fn io(context: &str, source: IoError) -> SnapshotError {
    SnapshotError::Io {
        context: context.to_string(),
        source,
    }
}

/// Opens the storage of `root`: an `s3://` URL gets a [`Mirror`] in a fresh scratch directory,
/// anything else is a [`LocalDir`].
pub fn open(root: &Path) -> Result<Box<dyn Storage>, SnapshotError> {
    match ObjectUrl::from_path(root) {
        Some(url) => {
            let url = url.map_err(|why| SnapshotError::Location {
                location: root.display().to_string(),
                why,
            })?;
            Ok(Box::new(Mirror::open(url)?))
        }
        None => Ok(Box::new(LocalDir::new(root))),
    }
}

/// A snapshot in a local (or shared) directory: tasks work in it directly.
#[derive(Debug, Clone)]
pub struct LocalDir {
    root: PathBuf,
}

impl LocalDir {
    /// The directory `root`.
    pub fn new(root: &Path) -> LocalDir {
        LocalDir {
            root: root.to_path_buf(),
        }
    }
}

impl Storage for LocalDir {
    fn root(&self) -> &Path {
        &self.root
    }

    fn location(&self) -> PathBuf {
        self.root.clone()
    }

    fn url(&self) -> Option<&ObjectUrl> {
        None
    }

    fn fetch(&self, rel: &str) -> Result<bool, SnapshotError> {
        Ok(self.root.join(rel).exists())
    }

    fn fetch_prefix(
        &self,
        _scope: &str,
        _prefix: &str,
        _keep: &dyn Fn(&str) -> bool,
    ) -> Result<(), SnapshotError> {
        Ok(())
    }

    fn push(&self, _keep_work_removals: bool) -> Result<bool, SnapshotError> {
        Ok(false)
    }

    fn commit_record(&self, _rel: &str) -> Result<bool, SnapshotError> {
        Ok(true)
    }

    fn drop_work(&self) -> Result<(), SnapshotError> {
        Ok(())
    }

    fn holds_foreign_files(&self) -> Result<bool, SnapshotError> {
        Ok(false)
    }

    fn foreign_entries(&self) -> Result<Vec<String>, SnapshotError> {
        let rd = match std::fs::read_dir(&self.root) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io("listing the output", IoError::os(&self.root, e))),
        };
        let manifest = crate::manifest::load(&self.root).ok();
        let mut foreign: Vec<String> = rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !layout::is_owned_top_level(n, manifest.as_ref()))
            .collect();
        foreign.sort();
        Ok(foreign)
    }

    /// Removes every entry of the directory but `.curate/lock` (the lock this run holds),
    /// between writing and removing the [`layout::CLEARING`] marker.
    fn clear(&self) -> Result<(), SnapshotError> {
        let err = |p: &Path, e| io("starting over", IoError::os(p, e));
        let rd = match std::fs::read_dir(&self.root) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(err(&self.root, e)),
        };
        let marker = self.root.join(layout::CLEARING);
        curate_io::atomic::write_atomic(&marker, b"--fresh is clearing this directory\n")
            .map_err(|e| io("starting over", e))?;
        let lock = Layout::new(&self.root).lock();
        for e in rd.flatten() {
            let p = e.path();
            let ft = e.file_type().map_err(|x| err(&p, x))?;
            if e.file_name() == layout::META_DIR && ft.is_dir() {
                for m in std::fs::read_dir(&p).map_err(|x| err(&p, x))?.flatten() {
                    // the lock this run holds, and the marker (last)
                    if m.path() == lock || m.path() == marker {
                        continue;
                    }
                    remove_any(&m.path()).map_err(|x| err(&m.path(), x))?;
                }
            } else {
                remove_any(&p).map_err(|x| err(&p, x))?;
            }
        }
        std::fs::remove_file(&marker).map_err(|x| err(&marker, x))
    }
}

/// Removes a file, a symlink (never what it points to) or a directory tree; a missing path is
/// not an error.
pub fn remove_any(p: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p),
        Ok(_) => std::fs::remove_file(p),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// A snapshot in object storage and its local scratch mirror (module docs).
#[derive(Debug)]
pub struct Mirror {
    /// The snapshot location.
    pub url: ObjectUrl,
    /// The local scratch directory the run works in.
    pub scratch: PathBuf,
    /// Files (relative paths) known to be identical locally and remotely, with the local size
    /// and modification time they had then.
    synced: Mutex<BTreeMap<String, (u64, SystemTime)>>,
    /// Prefixes already fetched in a scope (scope, prefix).
    fetched: Mutex<HashSet<(String, String)>>,
    /// Serialises uploads (tasks of one process finish concurrently).
    push: Mutex<()>,
    keep_scratch: bool,
}

/// Whether a local file name is a temp file (never uploaded): an atomic commit's temp file, or
/// a dot file (the lock, shared-holder notes).
fn is_temp(name: &str) -> bool {
    curate_io::atomic::is_temp_name(name) || name.starts_with('.')
}

fn stat(p: &Path) -> Option<(u64, SystemTime)> {
    let m = std::fs::metadata(p).ok()?;
    Some((m.len(), m.modified().ok()?))
}

impl Mirror {
    /// The remote snapshot `url`, worked on in a fresh scratch directory: `$CURATE_SCRATCH` or
    /// the system temp directory, then `curate-<hash of url>-<pid>` (one per process, so
    /// several workers on one machine never share one). Removed when dropped, unless
    /// `CURATE_KEEP_SCRATCH=1`.
    pub fn open(url: ObjectUrl) -> Result<Mirror, SnapshotError> {
        let base = std::env::var_os("CURATE_SCRATCH")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let tag = xxhash_rust::xxh3::xxh3_64(url.to_string().as_bytes());
        let scratch = base.join(format!("curate-{tag:016x}-{}", std::process::id()));
        if scratch.exists() {
            std::fs::remove_dir_all(&scratch)
                .map_err(|e| io("clearing the scratch directory", IoError::os(&scratch, e)))?;
        }
        std::fs::create_dir_all(&scratch)
            .map_err(|e| io("creating the scratch directory", IoError::os(&scratch, e)))?;
        Ok(Mirror {
            url,
            scratch,
            synced: Mutex::default(),
            fetched: Mutex::default(),
            push: Mutex::default(),
            keep_scratch: std::env::var_os("CURATE_KEEP_SCRATCH").is_some_and(|v| v == "1"),
        })
    }

    fn rel_of(&self, key: &str) -> Option<String> {
        if self.url.key.is_empty() {
            return Some(key.to_string());
        }
        key.strip_prefix(&self.url.key)?
            .strip_prefix('/')
            .map(str::to_string)
    }
}

impl Storage for Mirror {
    fn root(&self) -> &Path {
        &self.scratch
    }

    fn location(&self) -> PathBuf {
        self.url.to_path()
    }

    fn url(&self) -> Option<&ObjectUrl> {
        Some(&self.url)
    }

    fn fetch(&self, rel: &str) -> Result<bool, SnapshotError> {
        let dest = self.scratch.join(rel);
        match store::download(&self.url.join(rel), &dest).map_err(|e| io("fetching", e))? {
            None => Ok(false),
            Some(_) => {
                if let Some(s) = stat(&dest) {
                    self.synced.lock().expect("lock").insert(rel.to_string(), s);
                }
                Ok(true)
            }
        }
    }

    fn fetch_prefix(
        &self,
        scope: &str,
        prefix: &str,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<(), SnapshotError> {
        let k = (scope.to_string(), prefix.to_string());
        if self.fetched.lock().expect("lock").contains(&k) {
            return Ok(());
        }
        let objects = store::list(&self.url.join(prefix)).map_err(|e| io("listing", e))?;
        for o in objects {
            let Some(rel) = self.rel_of(&o.url.key) else {
                continue;
            };
            if !keep(&rel) {
                continue;
            }
            let local = self.scratch.join(&rel);
            let known = self.synced.lock().expect("lock").get(&rel).copied();
            let here = stat(&local);
            if here.is_some()
                && (known.is_none() || known == here)
                && here.map(|h| h.0) == Some(o.size)
            {
                continue;
            }
            store::download(&o.url, &local).map_err(|e| io("fetching", e))?;
            if let Some(s) = stat(&local) {
                self.synced.lock().expect("lock").insert(rel, s);
            }
        }
        self.fetched.lock().expect("lock").insert(k);
        Ok(())
    }

    fn push(&self, keep_work_removals: bool) -> Result<bool, SnapshotError> {
        let _guard = self.push.lock().expect("lock");
        let mut files = Vec::new();
        walk(&self.scratch, &self.scratch, &mut files);
        let mut synced = self.synced.lock().expect("lock").clone();
        let mut changed: Vec<(String, (u64, SystemTime))> = files
            .into_iter()
            .filter(|(r, _)| !layout::is_under(r, layout::DONE_DIR))
            .filter(|(r, s)| synced.get(r) != Some(s))
            .collect();
        // the manifest says the snapshot is complete: it appears after everything else
        changed.sort_by_key(|(r, _)| (r == layout::MANIFEST, r.clone()));
        for (r, s) in &changed {
            store::upload(&self.scratch.join(r), &self.url.join(r))
                .map_err(|e| io("uploading", e))?;
            synced.insert(r.clone(), *s);
        }
        let gone: Vec<String> = synced
            .keys()
            .filter(|r| !layout::is_under(r, layout::DONE_DIR) && !self.scratch.join(r).exists())
            .filter(|r| !(keep_work_removals && layout::is_under(r, layout::WORK_DIR)))
            .cloned()
            .collect();
        let published = !changed.is_empty() || !gone.is_empty();
        for r in gone {
            store::delete(&self.url.join(&r)).map_err(|e| io("deleting", e))?;
            synced.remove(&r);
        }
        *self.synced.lock().expect("lock") = synced;
        Ok(published)
    }

    fn commit_record(&self, rel: &str) -> Result<bool, SnapshotError> {
        let local = self.scratch.join(rel);
        let bytes = std::fs::read(&local)
            .map_err(|e| io("committing the record", IoError::os(&local, e)))?;
        let put = store::put_bytes(&self.url.join(rel), bytes, true)
            .map_err(|e| io("committing the record", e))?;
        if let Some(s) = stat(&local) {
            self.synced.lock().expect("lock").insert(rel.to_string(), s);
        }
        Ok(put == Put::Written)
    }

    fn drop_work(&self) -> Result<(), SnapshotError> {
        if !self.scratch.join(layout::WORK_DIR).exists() {
            store::delete_prefix(&self.url.join(layout::WORK_DIR))
                .map_err(|e| io("removing intermediate parts", e))?;
        }
        Ok(())
    }

    fn holds_foreign_files(&self) -> Result<bool, SnapshotError> {
        Ok(store::list(&self.url)
            .map_err(|e| io("listing the output", e))?
            .iter()
            .any(|o| self.rel_of(&o.url.key).as_deref() != Some(layout::LOCK)))
    }

    fn foreign_entries(&self) -> Result<Vec<String>, SnapshotError> {
        let objects = store::list(&self.url).map_err(|e| io("listing the output", e))?;
        let rels: Vec<String> = objects
            .iter()
            .filter_map(|o| self.rel_of(&o.url.key))
            .collect();
        let manifest = if rels.iter().any(|r| r == layout::MANIFEST) {
            store::get_bytes(&self.url.join(layout::MANIFEST))
                .ok()
                .flatten()
                .and_then(|b| serde_json::from_slice::<crate::Manifest>(&b).ok())
        } else {
            None
        };
        let mut foreign: Vec<String> = rels
            .iter()
            .filter_map(|r| r.split('/').next())
            .filter(|n| !layout::is_owned_top_level(n, manifest.as_ref()))
            .map(str::to_string)
            .collect();
        foreign.sort();
        foreign.dedup();
        Ok(foreign)
    }

    fn clear(&self) -> Result<(), SnapshotError> {
        let marker = self.url.join(layout::CLEARING);
        store::put_bytes(
            &marker,
            b"--fresh is clearing this prefix\n".to_vec(),
            false,
        )
        .map_err(|e| io("starting over", e))?;
        for o in store::list(&self.url).map_err(|e| io("starting over", e))? {
            let rel = self.rel_of(&o.url.key);
            if rel.as_deref() != Some(layout::LOCK) && rel.as_deref() != Some(layout::CLEARING) {
                store::delete(&o.url).map_err(|e| io("starting over", e))?;
            }
        }
        store::delete(&marker).map_err(|e| io("starting over", e))?;
        self.synced.lock().expect("lock").clear();
        self.fetched.lock().expect("lock").clear();
        let _ = std::fs::remove_dir_all(&self.scratch);
        std::fs::create_dir_all(&self.scratch).map_err(|e| {
            io(
                "creating the scratch directory",
                IoError::os(&self.scratch, e),
            )
        })
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        if !self.keep_scratch {
            let _ = std::fs::remove_dir_all(&self.scratch);
        }
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, (u64, SystemTime))>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let p = e.path();
        // follows symlinks: a linked file is uploaded as its content
        let Ok(ft) = std::fs::metadata(&p).map(|m| m.file_type()) else {
            continue;
        };
        if ft.is_dir() {
            if name != "." && name != ".." {
                walk(root, &p, out);
            }
        } else if ft.is_file()
            && !is_temp(&name)
            && let Some(s) = stat(&p)
        {
            out.push((Layout::new(root).rel(&p), s));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_files_are_never_uploaded() {
        let own = curate_io::atomic::temp_name("x");
        for t in [
            own.as_str(),
            ".part-00000.parquet.123-0.tmp",
            ".model.bin.9-12.tmp",
            ".holder-7",
        ] {
            assert!(is_temp(t), "{t}");
        }
        for f in [
            "part-000001.arrow",
            "manifest.json",
            "000003.json",
            "tmpdir.bin",
            "model.bin.tmp",
        ] {
            assert!(!is_temp(f), "{f}");
        }
    }

    #[test]
    fn walk_lists_finished_files_relative_to_the_root() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join(".curate/work/pass-0")).unwrap();
        std::fs::write(root.join(".curate/work/pass-0/part-000000.arrow"), b"p").unwrap();
        std::fs::write(
            root.join(".curate/work/pass-0/.part-000001.arrow.7-0.tmp"),
            b"t",
        )
        .unwrap();
        std::fs::write(root.join("manifest.json"), b"{}").unwrap();
        let mut out = Vec::new();
        walk(root, root, &mut out);
        let mut names: Vec<String> = out.into_iter().map(|(r, _)| r).collect();
        names.sort();
        assert_eq!(
            names,
            [".curate/work/pass-0/part-000000.arrow", "manifest.json"]
        );
        let layout = Layout::new(root);
        assert_eq!(
            layout.rel(&layout.done("pass-0", 3)),
            ".curate/done/pass-0/000003.json"
        );
    }

    #[test]
    fn a_local_directory_is_cleared_but_for_its_lock() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join(".curate/work/r1")).unwrap();
        std::fs::create_dir_all(root.join("data")).unwrap();
        std::fs::write(root.join(".curate/lock"), b"").unwrap();
        std::fs::write(root.join(".curate/state.json"), b"{}").unwrap();
        std::fs::write(root.join("data/part-00000.parquet"), b"x").unwrap();
        std::fs::write(root.join("manifest.json"), b"{}").unwrap();
        let s = LocalDir::new(root);
        s.clear().unwrap();
        let mut left = Vec::new();
        walk(root, root, &mut left);
        let left: Vec<String> = left.into_iter().map(|(r, _)| r).collect();
        assert_eq!(left, [".curate/lock"]);
        // what a local task does is already where the snapshot lives
        assert!(!s.fetch("manifest.json").unwrap());
        assert!(s.fetch(".curate/lock").unwrap());
        assert!(s.commit_record(".curate/done/x/000000.json").unwrap());
    }
}
