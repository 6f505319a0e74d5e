//! Composes curate's steps into a run.
//!
//! [`config`] validates a TOML pipeline and reports every problem at once; [`registry`] is the
//! single list of step types; [`plan`] cuts the steps into passes and global stages over tasks of
//! input row groups; [`exec`] runs any one task (the same code for the local executor and for
//! cluster array elements); [`manifest`] writes and verifies the snapshot.
//!
//! Invariants (tested): outputs are byte-identical for any thread count and task size; a task
//! commits its outputs atomically before its completion record, so a killed run resumes to the
//! same bytes; `input rows = kept + Σ dropped`, checked before the manifest is written.

mod check;
pub mod config;
pub mod error;
pub mod exec;
pub mod lock;
pub mod manifest;
pub mod plan;
pub mod progress;
pub mod record;
pub mod registry;
pub mod remote;
pub mod schema;
pub mod slurm;
pub mod state;

/// Where everything lives in a snapshot directory (owned by `curate-snapshot`).
pub use curate_snapshot::layout;

use std::path::{Path, PathBuf};

use rayon::prelude::*;

pub use config::Config;
pub use error::PipelineError;
pub use exec::Run;

use crate::layout::Layout;
use crate::plan::{Plan, StageKind};
use crate::progress::{Progress, Unit};
use crate::state::State;

/// Options of `curate run` / `curate task` that are not in the config.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Overrides `[output] dir`.
    pub output: Option<PathBuf>,
    /// Overrides `[run] threads`.
    pub threads: Option<usize>,
    /// Hide progress bars.
    pub quiet: bool,
    /// Discard an existing run in the output directory and start over.
    pub fresh: bool,
    /// What the command does to the run directory (how it locks it).
    pub access: Access,
}

/// How a command uses the run directory, and so how it locks it ([`lock`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Access {
    /// `curate run`, `curate plan`, a Slurm submission: starts or resumes the run, alone.
    #[default]
    Run,
    /// `curate task --stage S --index I`: one task of a started run, beside other tasks.
    Task {
        /// The stage.
        stage: String,
        /// The task index.
        index: usize,
    },
}

impl Access {
    fn command(&self) -> String {
        match self {
            Access::Run => "run".into(),
            Access::Task { stage, index } => format!("task {stage} {index}"),
        }
    }
}

/// The lock a prepared run holds on its directory, released when the run is dropped.
#[derive(Debug)]
pub enum HeldLock {
    /// A local directory's file lock.
    Local(lock::RunLock),
    /// An `s3://` run's lock object.
    Remote(lock::RemoteLock),
    /// None: a cluster task of an `s3://` run (guarded by the run id instead).
    None,
}

/// Checks the output location (before anything is written), takes the run directory's lock,
/// plans the run and checks (or creates) its state.
pub fn prepare(mut config: Config, opts: &RunOptions) -> Result<Run, PipelineError> {
    let root = config.output_dir(opts.output.as_deref()).ok_or_else(|| {
        PipelineError::Usage("no output directory: set [output] dir or pass --output DIR".into())
    })?;
    if root.as_os_str().to_string_lossy().trim().is_empty() {
        return Err(PipelineError::Refused(
            "the output directory is empty (\"\"); name a directory with [output] dir or --output"
                .into(),
        ));
    }
    let inputs = curate_io::input::resolve(
        &config.input.paths,
        &std::env::current_dir().unwrap_or_default(),
    )
    .map_err(PipelineError::Inputs)?;
    // where the snapshot lives: the directory itself, or an `s3://` prefix worked on through a
    // local mirror (`curate_snapshot::storage`); checking and locking the location is the only
    // place a run tells the two apart
    let storage = curate_snapshot::storage::open(&root)?;
    let task = matches!(opts.access, Access::Task { .. });
    let existed = root.exists();
    let held = match storage.url() {
        Some(url) => {
            check_remote_output(&root, &config, &inputs)?;
            if task {
                HeldLock::None
            } else {
                HeldLock::Remote(lock::RemoteLock::acquire(url, &opts.access.command())?)
            }
        }
        None => {
            check_local_output(&root, &config, &inputs)?;
            let mode = if task {
                lock::Mode::Shared
            } else {
                lock::Mode::Exclusive
            };
            // a cluster task may start while its submitter still holds the run alone (submitting
            // the later stages): it waits for it, up to a minute
            let wait = if task {
                std::time::Duration::from_secs(60)
            } else {
                std::time::Duration::ZERO
            };
            let held = lock::acquire_within(&root, mode, &opts.access.command(), wait)?;
            refuse_symlinks(&root)?;
            HeldLock::Local(held)
        }
    };
    // A directory this command created only to lock it is removed again if the run is refused
    // before it starts (a config or input problem found while planning): a refused run leaves
    // nothing behind. Declared after the lock, so it is dropped while the lock is still held.
    let mut created = (!existed && !task && storage.url().is_none()).then(|| CreatedDir {
        root: root.clone(),
        keep: false,
    });
    if opts.fresh {
        if task {
            return Err(PipelineError::Usage(
                "--fresh restarts a whole run; a task cannot".into(),
            ));
        }
        let foreign = storage.foreign_entries()?;
        if !foreign.is_empty() {
            return Err(PipelineError::Refused(format!(
                "--fresh would delete what curate did not write in {}: {}; move them elsewhere first",
                root.display(),
                foreign.join(", "),
            )));
        }
        storage.clear()?;
    } else if storage.fetch(layout::CLEARING)? {
        return Err(PipelineError::Refused(format!(
            "{}: a `curate run --fresh` was interrupted while it cleared this directory, which now holds part of the old run; run with --fresh again to start over",
            root.display()
        )));
    }
    storage.fetch(layout::STATE)?;
    let previous = State::load(&Layout::new(storage.root()))?;
    if previous.is_none() && storage.holds_foreign_files()? {
        return Err(PipelineError::Refused(format!(
            "{} holds objects but no curate run; refusing to write into it (choose another --output)",
            root.display()
        )));
    }
    if previous.is_none() && task {
        return Err(PipelineError::Refused(format!(
"{}: no run was started here", root.display())).with_hint(format!(
"start it with `curate plan --config … --output {}` (it records the run every task checks) before running tasks", root.display())));
    }
    // a run started by a curate without run ids keeps its work directory layout (id "")
    let run_id = match &previous {
        Some(p) => p.run_id.clone(),
        None => new_run_id(),
    };
    let layout = Layout::for_run(storage.root(), &run_id);
    if !task {
        // alone in the directory: nothing another writer left half-done can be in use
        remove_leftovers(&layout)?;
    }
    let plan = Plan::new(&mut config, &layout.work())?;
    for d in &plan.step_dirs {
        std::fs::create_dir_all(d).map_err(|e| {
            PipelineError::io("creating step directories", curate_io::IoError::os(d, e))
        })?;
    }
    // every input is hashed, those left out as unreadable too (fixing one makes another run)
    let mut paths: Vec<&Path> = plan.inputs.iter().map(|f| f.path.as_path()).collect();
    paths.extend(plan.unreadable.iter().map(|u| Path::new(u.path.as_str())));
    paths.sort();
    let (inputs, mtimes) = State::inputs(&paths, previous.as_ref())?;
    let resource_mtimes = plan
        .resources
        .iter()
        .map(|r| State::stamp(Path::new(&r.path)).map(|(m, _)| m))
        .collect::<Result<Vec<_>, _>>()?;
    let state = State {
        run_id,
        config_fingerprint: config.fingerprint(),
        config: config.content_json(),
        inputs,
        mtimes,
        stages: plan
            .stages
            .iter()
            .map(|s| (s.name.clone(), s.tasks))
            .collect(),
        resources: Some(plan.resources.clone()),
        resource_mtimes,
    };
    match &previous {
        Some(prev) => {
            let diff = prev.differences(&state);
            if !diff.is_empty() {
                return Err(PipelineError::Refused(format!(
                    "{} holds a run of a different pipeline: {}.",
                    root.display(),
                    diff.join("; ")
                ))
                .with_hint(
                    "pass --fresh to discard it and start over, or choose another --output",
                ));
            }
            // a task never writes the run's state (the run's starter owns it)
            if !task
                && (prev.mtimes != state.mtimes
                    || prev.config.is_null()
                    || prev.resources.is_none()
                    || prev.resource_mtimes != state.resource_mtimes)
            {
                state.commit(&layout)?;
            }
        }
        None => state.commit(&layout)?,
    }
    // the run has started: its directory stays, whatever happens next
    if let Some(c) = created.as_mut() {
        c.keep = true;
    }
    if !task {
        storage.push(false)?;
    }
    let read_spec = curate_io::read::ReadSpec {
        text_column: config.input.text_column.clone(),
        batch_rows: config.input.batch_rows,
        columns: config.input.columns.clone(),
        flatten: config.input.flatten.clone(),
    };
    let props = curate_io::write::OutputProps {
        zstd_level: config.output.zstd_level,
        row_group_rows: config.output.row_group_size,
        data_page_bytes: 1024 * 1024,
        created_by: format!("curate {}", env!("CARGO_PKG_VERSION")),
    };
    let reasons = plan.steps.iter().map(|s| s.reasons()).collect();
    Ok(Run {
        config,
        plan,
        layout,
        props,
        read_spec,
        reasons,
        progress: Progress::new(!opts.quiet),
        storage,
        lock: held,
    })
}

/// An output directory `prepare` created for its lock; removed on drop unless kept, and only
/// if it holds nothing but that lock.
struct CreatedDir {
    root: PathBuf,
    keep: bool,
}

impl Drop for CreatedDir {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        let only_the_lock = |root: &Path| -> std::io::Result<bool> {
            let top: Vec<_> = std::fs::read_dir(root)?.collect::<Result<_, _>>()?;
            if top.len() != 1 || top[0].file_name() != ".curate" {
                return Ok(false);
            }
            let lock_dir = top[0].path();
            for e in std::fs::read_dir(&lock_dir)? {
                let e = e?;
                let ok = match e.file_name().to_str() {
                    Some("lock") => e.file_type()?.is_file(),
                    Some("holders") => {
                        e.file_type()?.is_dir() && std::fs::read_dir(e.path())?.next().is_none()
                    }
                    _ => false,
                };
                if !ok {
                    return Ok(false);
                }
            }
            Ok(true)
        };
        if only_the_lock(&self.root).unwrap_or(false) {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

/// What `curate validate` learns from the input footers (nothing is written).
#[derive(Debug)]
pub struct InputCheck {
    /// The config as a run would resolve it (e.g. the id column found in the input).
    pub config: Config,
    /// Input files.
    pub files: usize,
    /// Tasks of each pass.
    pub tasks: usize,
    /// The id column was not configured and was found in the input.
    pub id_column_found: bool,
    /// Columns of the data files the run would write.
    pub data_columns: Vec<String>,
}

/// Resolves the inputs and reads their footers (never their data), then checks every step's
/// columns against them, as a run would before reading any data.
pub fn check_inputs(mut config: Config) -> Result<InputCheck, PipelineError> {
    let configured = config.input.id_column.is_some();
    let work = std::env::temp_dir().join("curate-validate-work");
    let plan = Plan::new(&mut config, &work)?;
    Ok(InputCheck {
        files: plan.inputs.len(),
        tasks: plan.shares.len(),
        id_column_found: !configured && config.input.id_column.is_some(),
        data_columns: plan
            .schemas
            .data
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect(),
        config,
    })
}

/// The problems of the input columns the config file at `path` names (the text column missing
/// or not strings, a listed or id column missing), read from the inputs' footers, never their
/// data: for a config whose other sections have problems, so that `curate validate` and a
/// refused run report every problem at once. Empty when `[input]` itself does not parse (its
/// problems are the config's) or the inputs cannot be read (a run reports that).
pub fn input_column_problems(path: &Path) -> Vec<curate_core::Problem> {
    let Some(input) = config::input_section(path) else {
        return Vec::new();
    };
    match plan::inspect_inputs(&input) {
        Ok(i) => i.columns.into_items(),
        Err(_) => Vec::new(),
    }
}

/// A new run id: unique across hosts, processes and time (not part of any output).
fn new_run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let seed = format!("{}/{}/{nanos}", lock::host_name(), std::process::id());
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(seed.as_bytes()))
}

/// `p` made absolute against the working directory, with `.` and `..` resolved lexically and
/// then, as far as the path exists, through symlinks.
fn absolute(p: &Path) -> PathBuf {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    // resolve symlinks of the longest existing prefix
    let mut existing = out.clone();
    let mut rest = Vec::new();
    while !existing.exists() {
        match existing.file_name() {
            Some(n) => {
                rest.push(n.to_os_string());
                existing.pop();
            }
            None => break,
        }
    }
    let mut resolved = std::fs::canonicalize(&existing).unwrap_or(existing);
    for n in rest.into_iter().rev() {
        resolved.push(n);
    }
    resolved
}

/// One error for the failed tasks of a stage: a line per task (its context said once), and the
/// tasks' hints.
fn tasks_failed(stage: &str, errors: Vec<(usize, PipelineError)>) -> PipelineError {
    let mut hints: Vec<&str> = Vec::new();
    let lines = errors
        .iter()
        .map(|(t, e)| {
            let (e, hint) = e.split_hint();
            if let Some(h) = hint
                && !hints.contains(&h)
            {
                hints.push(h);
            }
            let msg = e.to_string();
            let at = format!("stage {stage} task {t}");
            if msg.contains(&format!("{at}:")) {
                format!("  {msg}")
            } else {
                format!("  {at}: {msg}")
            }
        })
        .collect();
    let err = PipelineError::Tasks(lines);
    if hints.is_empty() {
        err
    } else {
        let hint = hints.join("\n");
        err.with_hint(hint)
    }
}

/// The checks on a local output location that need no lock and write nothing: it is a
/// directory (or absent), it is not an input and lies outside every input pattern, and a
/// non-empty directory holds a curate run.
fn check_local_output(
    root: &Path,
    config: &Config,
    inputs: &[PathBuf],
) -> Result<(), PipelineError> {
    if let Ok(m) = std::fs::metadata(root)
        && !m.is_dir()
    {
        return Err(PipelineError::Refused(format!(
            "{} is a file, not a directory; the snapshot needs a directory of its own (choose another --output)",
            root.display()
        )));
    }
    check_inputs_outside(root, &absolute(root), config, inputs)?;
    // `.curate/` is created (with the lock file in it) before anything else a run writes and is
    // never removed, so it is looked for *after* the listing: a run starting beside this one
    // creates the root, then `.curate/`, and a check in the other order could see the root
    // without `.curate/` and then `.curate/` in it, and refuse a directory that is ours
    let non_empty = std::fs::read_dir(root)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false);
    if non_empty && !Layout::new(root).meta().is_dir() {
        return Err(PipelineError::Refused(format!(
            "{} ({}) exists, is not empty and holds no curate run; refusing to write into it (choose another --output)",
            root.display(),
            absolute(root).display()
        )));
    }
    Ok(())
}

fn check_remote_output(
    root: &Path,
    config: &Config,
    inputs: &[PathBuf],
) -> Result<(), PipelineError> {
    check_inputs_outside(root, root, config, inputs)
}

/// Refuses an output directory that is an input's directory or that the input patterns would
/// match files of (the run would read its own output on resume).
fn check_inputs_outside(
    root: &Path,
    abs_root: &Path,
    config: &Config,
    inputs: &[PathBuf],
) -> Result<(), PipelineError> {
    let remote = curate_io::store::is_remote(root);
    let norm = |p: &Path| if remote { p.to_path_buf() } else { absolute(p) };
    for i in inputs {
        if norm(i).starts_with(abs_root) {
            return Err(PipelineError::Refused(format!(
                "input {} lies inside the output directory {}; a run would read its own output",
                i.display(),
                root.display()
            ))
            .with_hint("choose an --output outside the inputs"));
        }
    }
    // a file the run will write, under each of its directories
    let probes = [
        "data/part-00000.parquet",
        "excluded/part-00000.parquet",
        curate_snapshot::artifact::LABELS,
        "part-00000.parquet",
        "x.jsonl",
        "data/x.jsonl",
    ];
    for pat in &config.input.paths {
        let abs_pat = if remote {
            pat.clone()
        } else {
            absolute(Path::new(pat)).to_string_lossy().into_owned()
        };
        let Ok(g) = glob::Pattern::new(&abs_pat) else {
            continue;
        };
        let opts = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: false,
        };
        for probe in probes {
            let file = abs_root.join(probe);
            if g.matches_path_with(&file, opts) {
                return Err(PipelineError::Refused(format!(
"the input pattern \"{pat}\" matches files the run writes under {} (such as {}); a resumed run would read its own output", root.display(), file.display())).with_hint("choose an --output outside the inputs, or narrow the pattern"));
            }
        }
    }
    Ok(())
}

/// Never write through a link: refuses a run directory with a symbolic link inside it (the
/// root itself may be reached through links).
fn refuse_symlinks(root: &Path) -> Result<(), PipelineError> {
    fn walk(dir: &Path, depth: usize) -> Option<PathBuf> {
        let rd = std::fs::read_dir(dir).ok()?;
        for e in rd.flatten() {
            let ft = e.file_type().ok()?;
            if ft.is_symlink() {
                return Some(e.path());
            }
            if ft.is_dir()
                && depth < 8
                && let Some(p) = walk(&e.path(), depth + 1)
            {
                return Some(p);
            }
        }
        None
    }
    match walk(root, 0) {
        Some(link) => Err(PipelineError::Refused(format!(
            "{} is a symbolic link inside the run directory; curate never writes through links",
            link.display()
        ))
        .with_hint("replace it with a real directory (or file), or choose another --output")),
        None => Ok(()),
    }
}

/// What writers killed mid-commit leave behind, removed when the directory has one writer
/// (this one): temp files of atomic commits ([`curate_io::atomic::is_temp_name`]) anywhere,
/// and the work directories of other (discarded) runs.
fn remove_leftovers(layout: &Layout) -> Result<(), PipelineError> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            let name = e.file_name().to_string_lossy().into_owned();
            if ft.is_dir() {
                walk(&e.path(), out);
            } else if curate_io::atomic::is_temp_name(&name) {
                out.push(e.path());
            }
        }
    }
    let mut temps = Vec::new();
    walk(&layout.root, &mut temps);
    for t in temps {
        std::fs::remove_file(&t)
            .map_err(|e| PipelineError::io("removing temp files", curate_io::IoError::os(&t, e)))?;
        tracing::info!(file = %t.display(), "removed a temp file a killed writer left");
    }
    if let Ok(rd) = std::fs::read_dir(layout.work_root()) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let is_run_dir = name.len() == 16 && name.bytes().all(|b| b.is_ascii_hexdigit());
            if is_run_dir && name != layout.run_id {
                let _ = curate_snapshot::storage::remove_any(&e.path());
            }
        }
    }
    Ok(())
}

/// What a finished local run reports.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// The snapshot directory.
    pub root: PathBuf,
    /// The manifest.
    pub manifest: manifest::Manifest,
    /// Digest of the manifest file.
    pub digest: String,
    /// Tasks that were already complete (resumed past).
    pub resumed_tasks: usize,
    /// Tasks run now.
    pub ran_tasks: usize,
}

/// Most worker threads per core a run uses: tasks are CPU-bound, and each holds a row group
/// in memory, so many more threads than cores only cost memory (and, by the thousand, hang).
pub const MAX_THREADS_PER_CORE: usize = 4;

/// The worker threads a run uses for `requested` (0 = one per core), at most
/// [`MAX_THREADS_PER_CORE`] per core; with a note when the request was lowered.
pub fn effective_threads(requested: usize) -> (usize, Option<String>) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cap = cores * MAX_THREADS_PER_CORE;
    match requested {
        0 => (cores, None),
        n if n > cap => (
            cap,
            Some(format!(
                "threads = {n} lowered to {cap} ({MAX_THREADS_PER_CORE} per core on this machine's {cores} cores)"
            )),
        ),
        n => (n, None),
    }
}

/// Runs every stage on this machine, `threads` tasks at a time (0 = all cores; see
/// [`effective_threads`]).
pub fn run_local(run: &Run, threads: usize) -> Result<RunSummary, PipelineError> {
    let (threads, note) = effective_threads(threads);
    if let Some(n) = note {
        tracing::warn!("{n}");
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| PipelineError::Other(format!("cannot start worker threads: {e}")))?;
    let started = std::time::Instant::now();
    let mut resumed = 0;
    let mut ran = 0;
    let mut timings = Vec::new();
    for stage in &run.plan.stages {
        // the records of this stage (a resumed run skips finished tasks)
        let records = run.layout.rel(&run.layout.done_root().join(&stage.name));
        run.storage.fetch_prefix(&stage.name, &records, &|_| true)?;
        let pending: Vec<usize> = (0..stage.tasks)
            .filter(|t| !run.layout.done(&stage.name, *t).exists())
            .collect();
        resumed += stage.tasks - pending.len();
        if pending.is_empty() {
            continue;
        }
        let t0 = std::time::Instant::now();
        match stage.kind {
            StageKind::Pass { pass: 0 } => {
                let rows: u64 = pending.iter().map(|t| run.plan.shares[*t].rows).sum();
                run.progress.start(&stage.name, rows, Unit::Docs)
            }
            StageKind::Pass { .. } => run.progress.start(&stage.name, 0, Unit::Docs),
            _ => run
                .progress
                .start(&stage.name, pending.len() as u64, Unit::Tasks),
        }
        let errors: Vec<(usize, PipelineError)> = pool.install(|| {
            pending
                .par_iter()
                .filter_map(|&t| run.run_task(stage, t).err().map(|e| (t, e)))
                .collect()
        });
        run.progress.finish(&stage.name);
        ran += pending.len() - errors.len();
        if !errors.is_empty() {
            return Err(tasks_failed(&stage.name, errors));
        }
        timings.push(serde_json::json!({ "stage": stage.name, "tasks": pending.len(), "seconds": t0.elapsed().as_secs_f64() }));
    }
    let run_info = serde_json::json!({
        "curate_version": env!("CARGO_PKG_VERSION"),
        "threads": pool.current_num_threads(),
        "seconds": started.elapsed().as_secs_f64(),
        "resumed_tasks": resumed,
        "ran_tasks": ran,
        "stages": timings,
        // counts of how the run went (spills, passes): they depend on the task split and the
        // memory limit, so they are here and not in the manifest
        "step_run_counters": run.run_counters().unwrap_or_default(),
    });
    // run.json is informational (not in the manifest): timings vary run to run.
    let _ = curate_io::atomic::write_atomic(
        &run.layout.root.join("run.json"),
        &serde_json::to_vec_pretty(&run_info).expect("json"),
    );
    run.storage.push(false)?;
    // a resumed finished run skipped finalize: the manifest may be only where the snapshot lives
    if !run.layout.manifest().exists() {
        run.storage.fetch(layout::MANIFEST)?;
    }
    let manifest = manifest::load(&run.layout.root)?;
    if ran == 0 && run.storage.url().is_none() {
        // nothing ran: the snapshot is an earlier run's; a file gone or resized since is not
        // a finished run to report (verify re-hashes every byte; this only stats them)
        let damaged: Vec<&str> = manifest
            .outputs
            .iter()
            .chain(&manifest.excluded)
            .chain(&manifest.artifacts)
            .filter(|f| {
                std::fs::metadata(run.layout.root.join(&f.path))
                    .map(|m| m.len())
                    .ok()
                    != Some(f.bytes)
            })
            .map(|f| f.path.as_str())
            .collect();
        if !damaged.is_empty() {
            return Err(PipelineError::Refused(format!(
                "{}: the run is finished, but its snapshot's {} {} missing or changed size since; `curate snapshot verify` checks every byte, `--fresh` rebuilds it",
                run.layout.root.display(),
                damaged.join(", "),
                if damaged.len() == 1 { "is" } else { "are" }
            )));
        }
    }
    let digest = manifest::digest(&run.layout.root)?;
    Ok(RunSummary {
        root: run.storage.location(),
        manifest,
        digest,
        resumed_tasks: resumed,
        ran_tasks: ran,
    })
}
