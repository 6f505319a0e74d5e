//! `curate run --executor slurm` and the cluster part of `curate status`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use curate_pipeline::slurm::{self, SubmitContext};
use curate_pipeline::{PipelineError, RunOptions, config::Config};

/// Prepares the run as the local executor does, submits one array job per unfinished stage
/// and, with `wait`, blocks until the manifest is written or a task fails.
pub fn run_slurm(
    cfg: Config,
    config_path: &Path,
    opts: &RunOptions,
    wait: bool,
) -> Result<ExitCode, PipelineError> {
    let root = cfg.output_dir(opts.output.as_deref());
    if let Some(root) = &root
        && curate_io::store::ObjectUrl::from_path(root).is_some()
    {
        return Err(PipelineError::Usage(format!(
            "{}: --executor slurm needs the output on a file system every node mounts (its task logs and completion records live there); an object-store output runs with the local executor, or with `curate task` on any engine (docs/CLUSTER.md)",
            root.display()
        )));
    }
    slurm::client_available()?;
    if let Some(root) = root {
        // `--wait` on a run whose jobs are still queued or running follows them
        if wait && !opts.fresh && !slurm::active_jobs(&root)?.is_empty() {
            return attach(cfg, opts, &root);
        }
        // before `--fresh` may delete anything: never pull the directory from under live jobs
        slurm::ensure_no_active_jobs(&root)?;
    }
    let slurm_cfg = cfg.slurm.clone();
    let mut run = curate_pipeline::prepare(
        cfg,
        &RunOptions {
            quiet: true,
            ..opts.clone()
        },
    )?;
    let abs = |p: &Path, what: &str| -> Result<PathBuf, PipelineError> {
        std::fs::canonicalize(p).map_err(|e| {
            PipelineError::Other(format!("{}: cannot resolve the {what}: {e}", p.display()))
        })
    };
    run.layout.root = abs(&run.layout.root, "output directory")?;
    let binary = match &slurm_cfg.binary {
        Some(b) => PathBuf::from(b),
        None => std::env::current_exe()
            .and_then(std::fs::canonicalize)
            .map_err(|e| PipelineError::Other(format!("cannot locate the curate binary: {e}")))?,
    };
    let ctx = SubmitContext {
        binary,
        config: abs(config_path, "config file")?,
        workdir: std::env::current_dir()
            .map_err(|e| PipelineError::Other(format!("no working directory: {e}")))?,
    };
    let root = run.layout.root.clone();
    let sub = slurm::submit(&run, &slurm_cfg, &ctx)?;
    // the submission is recorded: release the run to its tasks (they share it; this process
    // only watches from here)
    drop(run);
    if sub.jobs.is_empty() {
        eprintln!(
            "curate: nothing to submit: every task of {} has finished",
            root.display()
        );
        return print_summary(&root);
    }
    let stages: Vec<String> = sub
        .jobs
        .iter()
        .map(|j| {
            format!(
                "{} (job {}, {} task(s))",
                j.stage,
                j.job_id,
                j.indices.len()
            )
        })
        .collect();
    eprintln!(
        "curate: submitted {} stage(s) to Slurm: {}\ncurate: task logs in {}/.curate/logs/<stage>/<index>.out; progress: curate status {}",
        sub.jobs.len(),
        stages.join(" → "),
        root.display(),
        root.display()
    );
    if !wait {
        return Ok(ExitCode::SUCCESS);
    }
    let quiet = opts.quiet;
    slurm::wait(&root, &sub, |stage, done, total| {
        if !quiet {
            eprintln!("curate: {stage}: {done}/{total} task(s) done");
        }
    })?;
    print_summary(&root)
}

/// Waits for the jobs of the last submission to `root` (after checking that it is a run of
/// this config and input).
fn attach(cfg: Config, opts: &RunOptions, root: &Path) -> Result<ExitCode, PipelineError> {
    curate_pipeline::prepare(
        cfg,
        &RunOptions {
            quiet: true,
            ..opts.clone()
        },
    )?;
    let sub = slurm::load_submission(root).unwrap_or_default();
    let jobs: Vec<&str> = sub.jobs.iter().map(|j| j.job_id.as_str()).collect();
    eprintln!(
        "curate: the last submission to {} is still queued or running (jobs {}); waiting for it",
        root.display(),
        jobs.join(", ")
    );
    let quiet = opts.quiet;
    slurm::wait(root, &sub, |stage, done, total| {
        if !quiet {
            eprintln!("curate: {stage}: {done}/{total} task(s) done");
        }
    })?;
    print_summary(root)
}

fn print_summary(root: &Path) -> Result<ExitCode, PipelineError> {
    let m = curate_pipeline::manifest::load(root)?;
    let digest = curate_pipeline::manifest::digest(root)?;
    let t = &m.totals;
    eprintln!(
        "curate: {} documents read, {} kept, {} dropped → {} ({} data file(s); manifest {})",
        t.input_rows,
        t.kept_rows,
        t.dropped_rows,
        root.display(),
        m.outputs.len(),
        &digest[..16],
    );
    Ok(ExitCode::SUCCESS)
}

/// A task that started (it has a log) but left no completion record: running or failed.
#[derive(Debug)]
pub struct StartedTask {
    pub stage: String,
    pub index: usize,
    pub log: PathBuf,
    pub last_line: Option<String>,
}

impl StartedTask {
    /// As JSON for `curate status --json`.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({ "stage": self.stage, "index": self.index, "log": self.log, "last_line": self.last_line })
    }
}

/// Pending tasks of `stages` that have a log, for `curate status`.
pub fn started_tasks(
    dir: &Path,
    stages: &[curate_pipeline::state::StageProgress],
) -> Vec<StartedTask> {
    let mut out = Vec::new();
    for s in stages {
        for &i in &s.pending {
            let log = slurm::task_log(dir, &s.stage, i);
            if log.exists() {
                let last_line = std::fs::read_to_string(&log).ok().and_then(|t| {
                    t.lines()
                        .rev()
                        .find(|l| !l.trim().is_empty())
                        .map(|l| l.trim().to_string())
                });
                out.push(StartedTask {
                    stage: s.stage.clone(),
                    index: i,
                    log,
                    last_line,
                });
            }
        }
    }
    out
}
