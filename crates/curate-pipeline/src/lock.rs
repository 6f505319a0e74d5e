//! One writer per snapshot: the lock on a run directory.
//!
//! Every command that writes to a run directory takes its lock first:
//!
//! - `curate run` (local executor), `--fresh`, and the submission step of `--executor slurm`
//!   take it **exclusively**;
//! - `curate task` (one array element of a cluster run) takes it **shared**, so the tasks of a
//!   stage run side by side but never beside a `curate run` or a `--fresh`.
//!
//! For a local directory the lock is an OS file lock (`flock`) on `<out>/.curate/lock`: the
//! kernel releases it when its holder exits, however it exits (SIGKILL included), so a lock is
//! never stale; a busy lock names its holder (host, pid, start time, command), read from the
//! lock file (exclusive holder) or from `.curate/holders/` (shared holders).
//!
//! For an `s3://` directory there is no shared lock primitive: `curate run` creates the object
//! `.curate/lock` create-only (`If-None-Match: *`) and deletes it when it ends. A run killed with
//! SIGKILL leaves it behind: on the same host a lock whose process is gone is broken
//! automatically; otherwise `curate unlock DIR` removes it (docs/ARCHITECTURE.md). Cluster
//! tasks (`curate task`) of an `s3://` run take no lock; what guards them is the run id (see
//! [`crate::state::State::run_id`]): every completion record carries it, a task re-reads the
//! state before committing its record, finalize accepts only records of its own run and only
//! files whose content hash a task of that run recorded, and work files live in a directory of
//! their own per run.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::PipelineError;
use crate::layout::Layout;

/// How a command holds the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Alone (`run`, `--fresh`, Slurm submission).
    Exclusive,
    /// Beside other shared holders (`task`).
    Shared,
}

/// Who holds a lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// Host name.
    pub host: String,
    /// Process id.
    pub pid: u32,
    /// When it took the lock (RFC 3339, UTC).
    pub started: String,
    /// The command (`run`, `task pass-0 3`, ...).
    pub command: String,
}

impl Holder {
    /// This process.
    pub fn me(command: &str) -> Holder {
        Holder {
            host: host_name(),
            pid: std::process::id(),
            started: now_rfc3339(),
            command: command.to_string(),
        }
    }

    /// Whether the holder is a process of this host that no longer runs.
    pub fn is_gone(&self) -> bool {
        self.host == host_name() && !Path::new(&format!("/proc/{}", self.pid)).exists()
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`curate {}` (pid {} on {}, since {})",
            self.command, self.pid, self.host, self.started
        )
    }
}

/// A held lock on a local run directory; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct RunLock {
    _file: File,
    holder_file: Option<PathBuf>,
}

impl Drop for RunLock {
    fn drop(&mut self) {
        if let Some(p) = &self.holder_file {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The lock file of a run directory.
pub fn lock_path(root: &Path) -> PathBuf {
    Layout::new(root).lock()
}

fn holders_dir(root: &Path) -> PathBuf {
    Layout::new(root).holders()
}

/// Takes the lock on the local run directory `root` (creating `root/.curate/`), or says who
/// holds it.
pub fn acquire(root: &Path, mode: Mode, command: &str) -> Result<RunLock, PipelineError> {
    acquire_within(root, mode, command, std::time::Duration::ZERO)
}

/// [`acquire`], retrying for up to `wait` while another process holds the lock (a cluster task
/// started while its submitter is still submitting the later stages).
pub fn acquire_within(
    root: &Path,
    mode: Mode,
    command: &str,
    wait: std::time::Duration,
) -> Result<RunLock, PipelineError> {
    let t0 = std::time::Instant::now();
    let path = lock_path(root);
    let io = |p: &Path, e: std::io::Error| {
        PipelineError::io("locking the run directory", curate_io::IoError::os(p, e))
    };
    let dir = path.parent().expect("lock has a parent");
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| io(&path, e))?;
    let got = loop {
        let got = match mode {
            Mode::Exclusive => file.try_lock(),
            Mode::Shared => file.try_lock_shared(),
        };
        match got {
            Err(std::fs::TryLockError::WouldBlock) if t0.elapsed() < wait => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            other => break other,
        }
    };
    match got {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(busy(root, &mut file, mode));
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(PipelineError::Refused(format!(
"{}: cannot lock the run directory: {e}", path.display())).with_hint("curate needs a file system with file locks (flock) for its output; on one without, run each stage with `curate task` from a scheduler that runs one writer at a time"));
        }
    }
    let me = Holder::me(command);
    let json = serde_json::to_vec(&me).expect("json");
    let holder_file = match mode {
        Mode::Exclusive => {
            // the content is informative only: the kernel's lock is the lock
            file.set_len(0).map_err(|e| io(&path, e))?;
            file.rewind().map_err(|e| io(&path, e))?;
            file.write_all(&json).map_err(|e| io(&path, e))?;
            let _ = file.flush();
            None
        }
        Mode::Shared => {
            let d = holders_dir(root);
            std::fs::create_dir_all(&d).map_err(|e| io(&d, e))?;
            // one file per lock held (a process may hold more than one)
            static HELD: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = HELD.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let p = d.join(format!("{}-{}-{n}.json", me.host, me.pid));
            std::fs::write(&p, &json).map_err(|e| io(&p, e))?;
            Some(p)
        }
    };
    Ok(RunLock {
        _file: file,
        holder_file,
    })
}

fn busy(root: &Path, file: &mut File, wanted: Mode) -> PipelineError {
    // If a shared lock can be had, the holders are shared (cluster tasks); otherwise one process
    // holds it alone and wrote itself into the lock file.
    let holders: Vec<Holder> = if wanted == Mode::Exclusive && file.try_lock_shared().is_ok() {
        let _ = file.unlock();
        let mut v: Vec<Holder> = std::fs::read_dir(holders_dir(root))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read(e.path()).ok())
            .filter_map(|b| serde_json::from_slice::<Holder>(&b).ok())
            .filter(|h| !h.is_gone())
            .collect();
        v.sort_by(|a, b| (&a.host, a.pid).cmp(&(&b.host, b.pid)));
        v
    } else {
        read_exclusive_holder(file).into_iter().collect()
    };
    let who = match holders.as_slice() {
        [] => "another curate process".to_string(),
        [one] => one.to_string(),
        many => {
            let list: Vec<String> = many.iter().take(5).map(|h| h.to_string()).collect();
            format!(
                "{} curate processes: {}{}",
                many.len(),
                list.join(", "),
                if many.len() > 5 { ", …" } else { "" }
            )
        }
    };
    PipelineError::Refused(format!(
"{} is in use by {who}; one writer at a time", root.display())).with_hint(format!(
"wait for it to finish (the lock is released when that process ends, however it ends), or stop it; `curate status {}` shows progress", root.display()))
}

/// The holder an exclusive lock's file names. A holder writes itself just after taking the
/// lock, so a process refused in that instant finds the file empty or half written: it reads
/// again for up to half a second before naming no one.
fn read_exclusive_holder(file: &mut File) -> Option<Holder> {
    let mut b = Vec::new();
    for _ in 0..20 {
        b.clear();
        if file.rewind().is_ok()
            && file.read_to_end(&mut b).is_ok()
            && let Ok(h) = serde_json::from_slice::<Holder>(&b)
        {
            return Some(h);
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    None
}

/// The host name (from the kernel), or `localhost`.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// Now as RFC 3339 UTC, to the second.
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_excludes_everyone_and_shared_share() {
        let d = tempfile::tempdir().unwrap();
        let a = acquire(d.path(), Mode::Exclusive, "run").unwrap();
        let e = acquire(d.path(), Mode::Exclusive, "run")
            .unwrap_err()
            .to_string();
        assert!(e.contains("in use by `curate run`"), "{e}");
        assert!(e.contains(&format!("pid {}", std::process::id())), "{e}");
        assert!(acquire(d.path(), Mode::Shared, "task").is_err());
        drop(a);
        let s1 = acquire(d.path(), Mode::Shared, "task pass-0 0").unwrap();
        let _s2 = acquire(d.path(), Mode::Shared, "task pass-0 1").unwrap();
        let e = acquire(d.path(), Mode::Exclusive, "run")
            .unwrap_err()
            .to_string();
        assert!(e.contains("2 curate processes"), "{e}");
        assert!(e.contains("task pass-0 1"), "{e}");
        drop(s1);
        drop(_s2);
        assert!(acquire(d.path(), Mode::Exclusive, "run").is_ok());
    }

    #[test]
    fn a_holder_refused_while_it_writes_itself_is_still_named() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join(".curate")).unwrap();
        // a holder that has the kernel's lock but has not written itself yet
        let f = File::create(lock_path(d.path())).unwrap();
        f.lock().unwrap();
        let path = lock_path(d.path());
        let writer = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            let json = serde_json::to_vec(&Holder::me("run")).unwrap();
            std::fs::write(path, json).unwrap();
        });
        let e = acquire(d.path(), Mode::Exclusive, "run")
            .unwrap_err()
            .to_string();
        writer.join().unwrap();
        assert!(e.contains("in use by `curate run`"), "{e}");
        drop(f);
    }

    #[test]
    fn dates_are_civil() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_793), (2026, 12, 6));
    }
}

/// The lock object of an `s3://` run (`.curate/lock`, created create-only); deleted when
/// dropped.
#[derive(Debug)]
pub struct RemoteLock {
    url: curate_io::store::ObjectUrl,
    released: bool,
}

impl RemoteLock {
    /// Creates the lock object of the run at `root`, or says who holds it. A lock left by a
    /// process of this host that is gone (killed) is broken, with a warning.
    pub fn acquire(
        root: &curate_io::store::ObjectUrl,
        command: &str,
    ) -> Result<RemoteLock, PipelineError> {
        use curate_io::store::{self, Put};
        let url = root.join(crate::layout::LOCK);
        let io = |e| PipelineError::io("locking the run", e);
        for attempt in 0..2 {
            let me = serde_json::to_vec(&Holder::me(command)).expect("json");
            if store::put_bytes(&url, me, true).map_err(io)? == Put::Written {
                return Ok(RemoteLock {
                    url,
                    released: false,
                });
            }
            let holder = store::get_bytes(&url)
                .map_err(io)?
                .and_then(|b| serde_json::from_slice::<Holder>(&b).ok());
            match holder {
                Some(h) if h.is_gone() && attempt == 0 => {
                    tracing::warn!(holder = %h, "breaking the lock of a curate process that is gone");
                    store::delete(&url).map_err(io)?;
                }
                // deleted between our PUT and GET: try once more
                None if attempt == 0 => {}
                h => {
                    let who = h.map_or("another curate process".to_string(), |h| h.to_string());
                    return Err(PipelineError::Refused(format!(
"{root} is in use by {who}; one writer at a time")).with_hint(format!(
"wait for it to finish; if that process is gone (killed on another machine), remove its lock with `curate unlock {root}`")));
                }
            }
        }
        unreachable!("the loop returns")
    }

    /// Deletes the lock object now.
    pub fn release(mut self) -> Result<(), PipelineError> {
        self.released = true;
        curate_io::store::delete(&self.url).map_err(|e| PipelineError::io("unlocking the run", e))
    }
}

impl Drop for RemoteLock {
    fn drop(&mut self) {
        if !self.released {
            let _ = curate_io::store::delete(&self.url);
        }
    }
}

/// `curate unlock DIR`: removes the lock object of an `s3://` run whose holder is gone. A local
/// directory's lock needs no unlocking (the kernel releases it with its process); for one, this
/// reports who holds it, if anyone.
pub fn unlock(dir: &Path) -> Result<String, PipelineError> {
    if let Some(url) = curate_io::store::ObjectUrl::from_path(dir) {
        let url = url.map_err(PipelineError::Other)?.join(crate::layout::LOCK);
        let io = |e| PipelineError::io("unlocking the run", e);
        let Some(b) = curate_io::store::get_bytes(&url).map_err(io)? else {
            return Ok(format!("{}: not locked", dir.display()));
        };
        let who = serde_json::from_slice::<Holder>(&b)
            .map(|h| h.to_string())
            .unwrap_or_else(|_| "an unknown holder".into());
        curate_io::store::delete(&url).map_err(io)?;
        return Ok(format!("{}: removed the lock of {who}", dir.display()));
    }
    if !lock_path(dir).exists() {
        return Ok(format!(
            "{}: not locked (no curate run here)",
            dir.display()
        ));
    }
    match acquire(dir, Mode::Exclusive, "unlock") {
        Ok(_) => Ok(format!("{}: not locked", dir.display())),
        Err(e) => Err(PipelineError::Refused(format!(
            "{e}\nnote: a local run directory's lock is the kernel's; it cannot be stale and is released when its holder ends"
        ))),
    }
}
