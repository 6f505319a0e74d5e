//! Runs whose output (snapshot, work directory, completion records) lives in object storage.
//!
//! With `[output] dir = "s3://bucket/snap"` every task runs in a local scratch directory laid
//! out exactly like a local snapshot (so every step reads and writes ordinary files), and the
//! bucket is the only state tasks share:
//!
//! 1. before a task, the files it reads from earlier stages are fetched: its completion record
//!    (if it exists the task is done and skipped), the step work directories, the part file of
//!    the previous pass (by exact key), every part and record (assemble), or the data files
//!    (finalize);
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
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use curate_io::IoError;
use curate_io::store::{self, ObjectUrl, Put};

use crate::error::PipelineError;
use crate::layout::{self, Layout};
use crate::plan::{Stage, StageKind};

/// A run's snapshot in object storage and its local scratch mirror.
#[derive(Debug)]
pub struct Remote {
    /// The snapshot location.
    pub url: ObjectUrl,
    /// The local scratch directory the run works in.
    pub scratch: PathBuf,
    /// Files (relative paths) known to be identical locally and remotely, with the local size
    /// and modification time they had then.
    synced: Mutex<BTreeMap<String, (u64, SystemTime)>>,
    /// Prefixes already fetched for a stage (stage name, prefix): within a stage nothing read
    /// from earlier stages changes, so one listing per stage and process is enough.
    fetched: Mutex<HashSet<(String, String)>>,
    /// Serialises uploads (tasks of one process finish concurrently).
    push: Mutex<()>,
    keep_scratch: bool,
}

fn io(context: &str, e: IoError) -> PipelineError {
    PipelineError::io(context.to_string(), e)
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

impl Remote {
    /// The remote snapshot `url`, worked on in a fresh scratch directory: `$CURATE_SCRATCH` or
    /// the system temp directory, then `curate-<hash of url>-<pid>` (one per process, so
    /// several workers on one machine never share one). Removed when the run is dropped,
    /// unless `CURATE_KEEP_SCRATCH=1`.
    pub fn open(url: ObjectUrl) -> Result<Remote, PipelineError> {
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
        Ok(Remote {
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

    /// Whether any object but the run's lock exists under the snapshot prefix.
    pub fn has_objects_besides_lock(&self) -> Result<bool, PipelineError> {
        Ok(store::list(&self.url)
            .map_err(|e| io("listing the output", e))?
            .iter()
            .any(|o| self.rel_of(&o.url.key).as_deref() != Some(layout::LOCK)))
    }

    /// Deletes every object of the snapshot but the run's lock (`--fresh`), and the local
    /// scratch content.
    pub fn clear(&self) -> Result<(), PipelineError> {
        for o in store::list(&self.url).map_err(|e| io("starting over", e))? {
            if self.rel_of(&o.url.key).as_deref() != Some(layout::LOCK) {
                store::delete(&o.url).map_err(|e| io("starting over", e))?;
            }
        }
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

    /// Fetches one file by its path relative to the snapshot root; false if there is no such
    /// object.
    pub fn fetch(&self, rel: &str) -> Result<bool, PipelineError> {
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

    /// Fetches every object under `prefix` (relative) that is not already here, once per
    /// stage and process.
    pub fn fetch_prefix(
        &self,
        stage: &str,
        prefix: &str,
        keep: impl Fn(&str) -> bool,
    ) -> Result<(), PipelineError> {
        let k = (stage.to_string(), prefix.to_string());
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

    /// Fetches the completion records of `stage` (so a resumed run skips finished tasks).
    pub fn fetch_records(&self, layout: &Layout, stage: &str) -> Result<(), PipelineError> {
        self.fetch_prefix(stage, &rel(layout, &layout.done_root().join(stage)), |_| {
            true
        })
    }

    /// Fetches what task `task` of `stage` reads from earlier stages. Returns false if its
    /// completion record exists (the task is done).
    pub fn fetch_for_task(
        &self,
        layout: &Layout,
        stage: &Stage,
        task: usize,
        passes: usize,
    ) -> Result<bool, PipelineError> {
        let record = rel(layout, &layout.done(&stage.name, task));
        if self.scratch.join(&record).exists() || self.fetch(&record)? {
            return Ok(false);
        }
        let name = stage.name.as_str();
        let steps = rel(layout, &layout.work().join("steps"));
        match stage.kind {
            StageKind::Pass { pass } => {
                self.fetch_prefix(name, &steps, |_| true)?;
                if pass > 0 {
                    let part = rel(layout, &layout.part(pass - 1, task));
                    if !self.scratch.join(&part).exists() && !self.fetch(&part)? {
                        return Err(PipelineError::Other(format!(
                            "{}: missing; stage pass-{} must finish before {name}",
                            self.url.join(&part),
                            pass - 1
                        )));
                    }
                }
            }
            StageKind::Barrier { .. } => {
                self.fetch_prefix(name, &steps, |_| true)?;
            }
            StageKind::Assemble => {
                let done = rel(layout, &layout.done_root());
                let last = format!("{}/", rel(layout, &layout.pass_dir(passes - 1)));
                let excluded = format!("{}/", rel(layout, &layout.excluded_parts()));
                self.fetch_prefix(name, &done, |r| r.contains("/pass-"))?;
                self.fetch_prefix(name, &rel(layout, &layout.work()), |r| {
                    r.starts_with(&last) || r.starts_with(&excluded)
                })?;
            }
            StageKind::Finalize => {
                self.fetch_prefix(name, &rel(layout, &layout.done_root()), |_| true)?;
                self.fetch_prefix(name, &steps, |_| true)?;
                self.fetch_prefix(name, "data", |_| true)?;
                self.fetch_prefix(name, "excluded", |_| true)?;
            }
        }
        Ok(true)
    }

    /// Uploads every new or changed file of the scratch directory (except completion records,
    /// see [`commit_record`](Self::commit_record)) and deletes the objects of files that were
    /// removed — except under `.curate/work/` when `keep_work_objects` (finalize: they go with
    /// [`drop_work`](Self::drop_work) once its record is committed, so a finalize killed before
    /// its record can run again); `manifest.json` last.
    pub fn push(&self, keep_work_objects: bool) -> Result<(), PipelineError> {
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
            .filter(|r| !(keep_work_objects && layout::is_under(r, layout::WORK_DIR)))
            .cloned()
            .collect();
        for r in gone {
            store::delete(&self.url.join(&r)).map_err(|e| io("deleting", e))?;
            synced.remove(&r);
        }
        *self.synced.lock().expect("lock") = synced;
        Ok(())
    }

    /// Deletes the remote work directory once the local one is gone (after finalize's record).
    pub fn drop_work(&self, layout: &Layout) -> Result<(), PipelineError> {
        if !layout.work().exists() {
            store::delete_prefix(&self.url.join(layout::WORK_DIR))
                .map_err(|e| io("removing intermediate parts", e))?;
        }
        Ok(())
    }

    /// Puts a task's completion record create-only. Returns false if one was already there (an
    /// earlier or concurrent attempt committed it; it is kept).
    pub fn commit_record(
        &self,
        layout: &Layout,
        stage: &str,
        task: usize,
    ) -> Result<bool, PipelineError> {
        let local = layout.done(stage, task);
        let r = rel(layout, &local);
        let bytes = std::fs::read(&local)
            .map_err(|e| io("committing the record", IoError::os(&local, e)))?;
        let put = store::put_bytes(&self.url.join(&r), bytes, true)
            .map_err(|e| io("committing the record", e))?;
        if let Some(s) = stat(&local) {
            self.synced.lock().expect("lock").insert(r, s);
        }
        Ok(put == Put::Written)
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        if !self.keep_scratch {
            let _ = std::fs::remove_dir_all(&self.scratch);
        }
    }
}

/// `p` relative to the layout root, with `/` separators.
fn rel(layout: &Layout, p: &Path) -> String {
    p.strip_prefix(&layout.root)
        .unwrap_or(p)
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
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
            out.push((rel(&Layout::new(root), &p), s));
        }
    }
}

/// A local directory to read a snapshot or run from: the directory itself, or for `s3://` a
/// temp directory with the objects `what` needs fetched into it.
#[derive(Debug)]
pub struct Readable {
    path: PathBuf,
    _remote: Option<Remote>,
}

/// What a read-only command needs of a remote snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Run state and completion records (`curate status`).
    Status,
    /// The manifest and stats (`curate stats`).
    Manifest,
    /// The manifest and every file it lists (`curate snapshot verify`).
    Snapshot,
}

impl Readable {
    /// Opens `dir` (a path or an `s3://` URL) for reading.
    pub fn open(dir: &Path, need: Need) -> Result<Readable, PipelineError> {
        let Some(url) = ObjectUrl::from_path(dir) else {
            return Ok(Readable {
                path: dir.to_path_buf(),
                _remote: None,
            });
        };
        let remote = Remote::open(url.map_err(PipelineError::Other)?)?;
        let missing = |rel: &str, what: &str| {
            PipelineError::Other(format!("{}: no such object ({what})", remote.url.join(rel)))
        };
        match need {
            Need::Status => {
                if !remote.fetch(layout::STATE)? {
                    return Err(missing(layout::STATE, "no curate run was started here"));
                }
                // the records of the run the state names
                let state = crate::state::State::load(&Layout::new(&remote.scratch))?;
                let layout = Layout::for_run(
                    &remote.scratch,
                    &state.map(|s| s.run_id).unwrap_or_default(),
                );
                remote.fetch_prefix("", &rel(&layout, &layout.done_root()), |_| true)?;
                remote.fetch(layout::MANIFEST)?;
            }
            Need::Manifest => {
                if !remote.fetch(layout::MANIFEST)? {
                    return Err(missing(
                        layout::MANIFEST,
                        "is this a finished curate snapshot?",
                    ));
                }
                remote.fetch(layout::STATS)?;
            }
            Need::Snapshot => {
                if !remote.fetch(layout::MANIFEST)? {
                    return Err(missing(
                        layout::MANIFEST,
                        "is this a finished curate snapshot?",
                    ));
                }
                remote.fetch_prefix("", "", |r| !layout::is_meta(r))?;
            }
        }
        Ok(Readable {
            path: remote.scratch.clone(),
            _remote: Some(remote),
        })
    }

    /// The local directory.
    pub fn path(&self) -> &Path {
        &self.path
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
            rel(&layout, &layout.done("pass-0", 3)),
            ".curate/done/pass-0/000003.json"
        );
    }
}
