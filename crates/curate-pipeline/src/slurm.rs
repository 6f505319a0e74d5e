//! The Slurm executor: each stage becomes one `sbatch --array` job whose elements run
//! `curate task --stage S --index $SLURM_ARRAY_TASK_ID`, chained with
//! `--dependency=afterok:<previous>` and `--kill-on-invalid-dep=yes`.
//!
//! Nothing here needs Slurm accounting: progress and failures are read from curate's own
//! completion records and per-task logs (`.curate/logs/<stage>/<index>.out`), and `squeue`
//! only tells whether jobs of a submission are still queued or running. Re-submitting the same
//! run skips stages that are complete and restricts each array to the tasks without a record,
//! so a failed or killed run resumes where it stopped.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use curate_core::config::Problems;
use serde::{Deserialize, Serialize};

use crate::error::PipelineError;
use crate::exec::Run;
use crate::layout::Layout;

pub use crate::config::SlurmConfig;

/// `sbatch` options curate sets itself; `extra_args` may not set them.
const OWN_OPTIONS: &[&str] = &[
    "--array",
    "-a",
    "--dependency",
    "-d",
    "--kill-on-invalid-dep",
    "--output",
    "-o",
    "--error",
    "-e",
    "--open-mode",
    "--chdir",
    "-D",
    "--parsable",
    "--wrap",
];

impl SlurmConfig {
    /// Reports every problem of the `[slurm]` table (scope already set).
    pub fn validate(&self, p: &mut Problems) {
        for (field, v) in [("partition", &self.partition), ("account", &self.account)] {
            if let Some(v) = v
                && (v.is_empty() || v.chars().any(|c| c.is_whitespace() || c == ','))
            {
                p.push(
                    field,
                    format!("\"{v}\" is not a Slurm {field} name (non-empty, no spaces)"),
                );
            }
        }
        if let Some(t) = &self.time
            && !valid_time(t)
        {
            p.push(
                "time",
                format!(
                    "\"{t}\" is not a Slurm time; allowed: \"MIN\", \"MM:SS\", \"HH:MM:SS\", \"D-HH\", \"D-HH:MM\", \"D-HH:MM:SS\""
                ),
            );
        }
        if let Some(m) = &self.mem
            && !valid_mem(m)
        {
            p.push(
                "mem",
                format!(
                    "\"{m}\" is not a Slurm memory size; allowed: a number with an optional K, M, G or T suffix, such as \"4G\""
                ),
            );
        }
        if self.cpus_per_task == Some(0) {
            p.push("cpus_per_task", "0 is out of range; allowed: 1 or more");
        }
        if self.max_parallel == Some(0) {
            p.push("max_parallel", "0 is out of range; allowed: 1 or more");
        }
        if self.job_name.is_empty() || self.job_name.chars().any(char::is_whitespace) {
            p.push(
                "job_name",
                format!("\"{}\" is not usable: non-empty, no spaces", self.job_name),
            );
        }
        if let Some(b) = &self.binary
            && !Path::new(b).is_absolute()
        {
            p.push(
                "binary",
                format!("\"{b}\" must be an absolute path (compute nodes run it as given)"),
            );
        }
        for (i, a) in self.extra_args.iter().enumerate() {
            let field = format!("extra_args[{i}]");
            let name = a.split('=').next().unwrap_or("");
            if !a.starts_with('-') {
                p.push(
                    &field,
                    format!(
                        "\"{a}\" is not an sbatch option; give each as \"--name=value\" (one list entry per option)"
                    ),
                );
            } else if OWN_OPTIONS.contains(&name) {
                p.push(
                    &field,
                    format!(
                        "\"{name}\" is set by curate itself (arrays, dependencies, logs, working directory) and cannot be overridden"
                    ),
                );
            } else if name == "--partition"
                || name == "-p"
                || name == "--account"
                || name == "-A"
                || name == "--time"
                || name == "-t"
                || name == "--cpus-per-task"
                || name == "-c"
                || name == "--mem"
            {
                p.push_hint(
                    &field,
                    format!("\"{name}\" has its own key in [slurm]"),
                    "use partition, account, time, cpus_per_task or mem instead",
                );
            }
        }
    }
}

/// Slurm's time formats: "MIN", "MIN:SS", "H:MM:SS", "D-H", "D-H:MM", "D-H:MM:SS".
fn valid_time(t: &str) -> bool {
    let num = |s: &str| !s.is_empty() && s.len() <= 6 && s.bytes().all(|b| b.is_ascii_digit());
    let (days, rest) = match t.split_once('-') {
        Some((d, r)) => (Some(d), r),
        None => (None, t),
    };
    if days.is_some_and(|d| !num(d)) {
        return false;
    }
    let parts: Vec<&str> = rest.split(':').collect();
    parts.iter().all(|p| num(p)) && parts.len() <= 3
}

fn valid_mem(m: &str) -> bool {
    let digits = m.trim_end_matches(['K', 'M', 'G', 'T', 'k', 'm', 'g', 't']);
    !digits.is_empty() && digits.len() + 1 >= m.len() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// One submitted array job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmittedJob {
    /// The stage it runs.
    pub stage: String,
    /// Slurm's job id of the array.
    pub job_id: String,
    /// The task indices it runs (the stage's tasks without a completion record).
    pub indices: Vec<usize>,
}

/// What one `curate run --executor slurm` submitted, kept in `.curate/slurm/submission.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submission {
    /// Jobs in stage order; each depends on the one before.
    pub jobs: Vec<SubmittedJob>,
}

/// Paths of the Slurm executor's files within a snapshot directory.
fn slurm_dir(root: &Path) -> PathBuf {
    Layout::new(root).meta().join("slurm")
}

/// The log of one task (what its array element printed; appended on each attempt).
pub fn task_log(root: &Path, stage: &str, index: usize) -> PathBuf {
    Layout::new(root)
        .logs()
        .join(stage)
        .join(format!("{index}.out"))
}

/// The last submission in `root`, if any.
pub fn load_submission(root: &Path) -> Option<Submission> {
    let bytes = std::fs::read(slurm_dir(root).join("submission.json")).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Where and with what the array elements run.
#[derive(Debug, Clone)]
pub struct SubmitContext {
    /// The `curate` binary (absolute).
    pub binary: PathBuf,
    /// The config file (absolute).
    pub config: PathBuf,
    /// The working directory of the tasks (relative config paths resolve from it).
    pub workdir: PathBuf,
}

/// Runs a Slurm command, returning its stdout or an error naming it.
fn slurm_cmd(program: &str, args: &[String]) -> Result<String, PipelineError> {
    let out = Command::new(program).args(args).output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            PipelineError::Scheduler(format!(
"`{program}` not found on PATH: --executor slurm needs the Slurm client commands (sbatch, squeue, scontrol)")).with_hint("run on a Slurm login node, or use --executor local")
        } else {
            PipelineError::Scheduler(format!("cannot run `{program}`: {e}"))
        }
    })?;
    if !out.status.success() {
        return Err(PipelineError::Scheduler(format!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// State of one array element (or of a whole pending array) as `squeue` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobState {
    /// Array job id.
    pub job_id: String,
    /// Array index, or `None` for elements not yet split off (a pending range).
    pub index: Option<usize>,
    /// Slurm state name (PENDING, RUNNING, FAILED, ...).
    pub state: String,
    /// Slurm's reason (e.g. DependencyNeverSatisfied).
    pub reason: String,
}

impl JobState {
    /// Still queued or running (a pending job whose dependency can never be met is not).
    pub fn active(&self) -> bool {
        const ENDED: &[&str] = &[
            "COMPLETED",
            "FAILED",
            "CANCELLED",
            "TIMEOUT",
            "OUT_OF_MEMORY",
            "NODE_FAIL",
            "BOOT_FAIL",
            "DEADLINE",
            "PREEMPTED",
            "SPECIAL_EXIT",
            "REVOKED",
        ];
        !ENDED.contains(&self.state.as_str()) && self.reason != "DependencyNeverSatisfied"
    }
}

/// The states of the given array jobs that the controller still knows (finished jobs are
/// forgotten after its `MinJobAge`).
pub fn job_states(job_ids: &BTreeSet<String>) -> Result<Vec<JobState>, PipelineError> {
    if job_ids.is_empty() {
        return Ok(Vec::new());
    }
    // all of this user's jobs, then filtered: `squeue -j` fails outright on a forgotten id
    let out = slurm_cmd(
        "squeue",
        &[
            "--me".into(),
            "--noheader".into(),
            "--states=all".into(),
            "--format=%F|%K|%T|%r".into(),
        ],
    )?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.trim().split('|').collect();
            if f.len() != 4 || !job_ids.contains(f[0]) {
                return None;
            }
            Some(JobState {
                job_id: f[0].to_string(),
                index: f[1].parse().ok(),
                state: f[2].to_string(),
                reason: f[3].to_string(),
            })
        })
        .collect())
}

/// Jobs of the last submission in `root` that are still queued or running.
pub fn active_jobs(root: &Path) -> Result<Vec<String>, PipelineError> {
    let Some(sub) = load_submission(root) else {
        return Ok(Vec::new());
    };
    let ids: BTreeSet<String> = sub.jobs.iter().map(|j| j.job_id.clone()).collect();
    let mut active: Vec<String> = job_states(&ids)?
        .into_iter()
        .filter(JobState::active)
        .map(|s| s.job_id)
        .collect();
    active.sort();
    active.dedup();
    Ok(active)
}

/// Refuses while jobs of the last submission to `root` are queued or running: two copies of
/// one task must never run at once, and `--fresh` must not delete files under live jobs.
pub fn ensure_no_active_jobs(root: &Path) -> Result<(), PipelineError> {
    let active = active_jobs(root)?;
    if active.is_empty() {
        return Ok(());
    }
    Err(PipelineError::Refused(format!(
        "{}: jobs of an earlier submission are still queued or running ({}).",
        root.display(),
        active.join(", ")
    ))
    .with_hint(format!(
        "wait for them (`curate status {}`), or cancel them with `scancel {}`, then submit again",
        root.display(),
        active.join(" ")
    )))
}

/// Checks that the Slurm client commands can be run.
pub fn client_available() -> Result<(), PipelineError> {
    slurm_cmd("sbatch", &["--version".into()]).map(|_| ())
}

/// `0-3,5,7-9` for the given sorted indices.
pub fn array_ranges(indices: &[usize]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < indices.len() {
        let start = indices[i];
        let mut end = start;
        while i + 1 < indices.len() && indices[i + 1] == end + 1 {
            i += 1;
            end = indices[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    parts.join(",")
}

/// Quotes a string for a POSIX shell.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The batch script of one stage: every array element runs one task of it.
pub fn batch_script(ctx: &SubmitContext, root: &Path, stage: &str) -> String {
    let q = |p: &Path| sh_quote(&p.to_string_lossy());
    format!(
        "#!/bin/sh\n\
         # Written by curate: stage {stage} of {root}. Each array element runs one task.\n\
         echo \"== curate task: stage {stage} index ${{SLURM_ARRAY_TASK_ID}} (job ${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}}) on $(hostname) at $(date -u +%Y-%m-%dT%H:%M:%SZ)\"\n\
         export RAYON_NUM_THREADS=\"${{RAYON_NUM_THREADS:-${{SLURM_CPUS_PER_TASK:-1}}}}\"\n\
         exec {bin} task --config {cfg} --output {out} --stage {st} --index \"${{SLURM_ARRAY_TASK_ID}}\"\n",
        root = root.display(),
        bin = q(&ctx.binary),
        cfg = q(&ctx.config),
        out = q(root),
        st = sh_quote(stage),
    )
}

/// The `sbatch` arguments of one stage's array job (script path last).
pub fn sbatch_args(
    cfg: &SlurmConfig,
    ctx: &SubmitContext,
    root: &Path,
    stage: &str,
    indices: &[usize],
    after: &[String],
    script: &Path,
) -> Vec<String> {
    let logs = task_log(root, stage, 0)
        .parent()
        .expect("log dir")
        .join("%a.out");
    let mut array = array_ranges(indices);
    if let Some(n) = cfg.max_parallel {
        array.push_str(&format!("%{n}"));
    }
    let mut a = vec![
        "--parsable".to_string(),
        format!("--job-name={}-{stage}", cfg.job_name),
        format!("--array={array}"),
        format!("--output={}", logs.display()),
        "--open-mode=append".into(),
        format!("--chdir={}", ctx.workdir.display()),
    ];
    if !after.is_empty() {
        a.push(format!("--dependency=afterok:{}", after.join(":")));
        a.push("--kill-on-invalid-dep=yes".into());
    }
    if let Some(v) = &cfg.partition {
        a.push(format!("--partition={v}"));
    }
    if let Some(v) = &cfg.account {
        a.push(format!("--account={v}"));
    }
    if let Some(v) = &cfg.time {
        a.push(format!("--time={v}"));
    }
    if let Some(v) = cfg.cpus_per_task {
        a.push(format!("--cpus-per-task={v}"));
    }
    if let Some(v) = &cfg.mem {
        a.push(format!("--mem={v}"));
    }
    a.extend(cfg.extra_args.iter().cloned());
    a.push(script.display().to_string());
    a
}

/// The cluster's `MaxArraySize` (array indices must be below it), if `scontrol` reports one.
fn max_array_size() -> Option<usize> {
    let out = slurm_cmd("scontrol", &["show".into(), "config".into()]).ok()?;
    out.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == "MaxArraySize")
            .then(|| v.trim().parse().ok())
            .flatten()
    })
}

/// Submits every stage of `run` that has tasks without a completion record, one array job
/// per stage, each depending on the previous one; records the submission.
///
/// Refuses while jobs of an earlier submission to the same directory are still queued or
/// running (two copies of one task must never run at once).
pub fn submit(
    run: &Run,
    cfg: &SlurmConfig,
    ctx: &SubmitContext,
) -> Result<Submission, PipelineError> {
    if let Some(url) = run.storage.url() {
        return Err(PipelineError::Usage(format!(
"{url}: --executor slurm needs the output on a shared file system (task logs and the submission record live there); object-storage output is not supported with it yet.")).with_hint(format!(
"submit `curate task --config F --output {url} --stage S --index I` from your own job script (see docs/CLUSTER.md, \"Object storage\"), or use a shared directory")));
    }
    let root = &run.layout.root;
    ensure_no_active_jobs(root)?;
    let todo: Vec<(&crate::plan::Stage, Vec<usize>)> = run
        .plan
        .stages
        .iter()
        .map(|s| {
            let pending: Vec<usize> = (0..s.tasks)
                .filter(|t| !run.layout.done(&s.name, *t).exists())
                .collect();
            (s, pending)
        })
        .filter(|(_, p)| !p.is_empty())
        .collect();
    let mut submission = Submission::default();
    if todo.is_empty() {
        return Ok(submission);
    }
    if let Some(max) = max_array_size()
        && let Some((s, p)) = todo
            .iter()
            .find(|(_, p)| p.last().is_some_and(|i| *i >= max))
    {
        return Err(PipelineError::Scheduler(format!(
"stage {} needs array index {} but this cluster's MaxArraySize is {max}", s.name, p.last().expect("non-empty"))).with_hint("raise [run] task_size (fewer, larger tasks) or ask the administrators for a larger MaxArraySize"));
    }
    let dir = slurm_dir(root);
    let io = |p: &Path, e| {
        PipelineError::io(
            "preparing the Slurm submission",
            curate_io::IoError::os(p, e),
        )
    };
    std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
    let mut after: Vec<String> = Vec::new();
    for (stage, pending) in &todo {
        let logs = task_log(root, &stage.name, 0);
        let log_dir = logs.parent().expect("log dir");
        std::fs::create_dir_all(log_dir).map_err(|e| io(log_dir, e))?;
        let script = dir.join(format!("{}.sh", stage.name));
        curate_io::atomic::write_atomic(&script, batch_script(ctx, root, &stage.name).as_bytes())
            .map_err(|e| PipelineError::io("writing a batch script", e))?;
        let args = sbatch_args(cfg, ctx, root, &stage.name, pending, &after, &script);
        let out = match slurm_cmd("sbatch", &args) {
            Ok(o) => o,
            Err(e) => {
                // nothing half-submitted is left to run: cancel this submission's jobs
                cancel(&submission);
                return Err(PipelineError::Scheduler(format!(
                    "submitting stage {}: {e}",
                    stage.name
                )));
            }
        };
        let job_id = out.trim().split(';').next().unwrap_or_default().to_string();
        if job_id.is_empty() || !job_id.bytes().all(|b| b.is_ascii_digit()) {
            cancel(&submission);
            return Err(PipelineError::Scheduler(format!(
                "sbatch printed no job id for stage {} (got {:?})",
                stage.name,
                out.trim()
            )));
        }
        tracing::info!(stage = %stage.name, job = %job_id, tasks = pending.len(), "submitted");
        after = vec![job_id.clone()];
        submission.jobs.push(SubmittedJob {
            stage: stage.name.clone(),
            job_id,
            indices: pending.clone(),
        });
        // recorded job by job: an interrupted submission still knows what it left queued
        let json = serde_json::to_vec_pretty(&submission).expect("json");
        if let Err(e) = curate_io::atomic::write_atomic(&dir.join("submission.json"), &json) {
            cancel(&submission);
            return Err(PipelineError::io("recording the Slurm submission", e));
        }
    }
    Ok(submission)
}

/// Cancels a submission's jobs (best effort).
fn cancel(sub: &Submission) {
    let ids: Vec<String> = sub.jobs.iter().map(|j| j.job_id.clone()).collect();
    if !ids.is_empty() {
        let _ = slurm_cmd("scancel", &ids);
    }
}

/// A task that ended without a completion record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedTask {
    /// Stage.
    pub stage: String,
    /// Task index.
    pub index: usize,
    /// Slurm's final state, when the controller still knows it.
    pub state: Option<String>,
    /// Its log.
    pub log: PathBuf,
    /// The log's last non-empty line (usually the error).
    pub last_line: Option<String>,
}

/// Waits until the submission has finished: returns `Ok` when the manifest is written, or the
/// tasks that failed (with their logs) and the stages that never ran once no job of the
/// submission is queued or running. `report` is called with each stage's progress as it
/// changes.
pub fn wait(
    root: &Path,
    sub: &Submission,
    mut report: impl FnMut(&str, usize, usize),
) -> Result<(), PipelineError> {
    let layout = crate::state::run_layout(root);
    let ids: BTreeSet<String> = sub.jobs.iter().map(|j| j.job_id.clone()).collect();
    let mut shown: BTreeMap<String, usize> = BTreeMap::new();
    let mut poll = Duration::from_millis(200);
    let mut squeue_errors = 0;
    let started = Instant::now();
    loop {
        for j in &sub.jobs {
            let done = j
                .indices
                .iter()
                .filter(|i| layout.done(&j.stage, **i).exists())
                .count();
            if shown.get(&j.stage) != Some(&done) {
                shown.insert(j.stage.clone(), done);
                report(&j.stage, done, j.indices.len());
            }
        }
        if layout.manifest().exists()
            && sub
                .jobs
                .last()
                .is_none_or(|j| layout.done(&j.stage, j.indices[0]).exists())
        {
            return Ok(());
        }
        let states = match job_states(&ids) {
            Ok(s) => {
                squeue_errors = 0;
                s
            }
            Err(e) => {
                // the controller may be briefly unreachable; give up only if it stays so
                squeue_errors += 1;
                if squeue_errors > 30 {
                    return Err(e);
                }
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        if !states.iter().any(JobState::active) {
            // a record committed between our two looks counts
            if layout.manifest().exists() {
                continue;
            }
            return Err(failure_report(root, sub, &states));
        }
        std::thread::sleep(poll);
        if started.elapsed() > Duration::from_secs(10) {
            poll = Duration::from_secs(1);
        }
    }
}

/// Tasks of a submission that have no completion record, with what Slurm and their logs say.
pub fn failed_tasks(root: &Path, sub: &Submission, states: &[JobState]) -> Vec<FailedTask> {
    let layout = crate::state::run_layout(root);
    let mut out = Vec::new();
    for j in &sub.jobs {
        for &i in &j.indices {
            if layout.done(&j.stage, i).exists() {
                continue;
            }
            let log = task_log(root, &j.stage, i);
            if !log.exists() {
                continue; // never started
            }
            let state = states
                .iter()
                .find(|s| s.job_id == j.job_id && s.index == Some(i))
                .map(|s| s.state.clone());
            out.push(FailedTask {
                stage: j.stage.clone(),
                index: i,
                state,
                last_line: last_line(&log),
                log,
            });
        }
    }
    out
}

fn last_line(p: &Path) -> Option<String> {
    let text = std::fs::read_to_string(p).ok()?;
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_string())
}

fn failure_report(root: &Path, sub: &Submission, states: &[JobState]) -> PipelineError {
    let failed = failed_tasks(root, sub, states);
    let layout = crate::state::run_layout(root);
    let mut msg = format!(
        "the Slurm run in {} stopped before finishing: {} task(s) failed",
        root.display(),
        failed.len()
    );
    for f in failed.iter().take(20) {
        msg.push_str(&format!(
            "\n  stage {} task {}{}: log {}",
            f.stage,
            f.index,
            f.state
                .as_ref()
                .map(|s| format!(" ({s})"))
                .unwrap_or_default(),
            f.log.display()
        ));
        if let Some(l) = &f.last_line {
            msg.push_str(&format!("\n      {l}"));
        }
    }
    if failed.len() > 20 {
        msg.push_str(&format!("\n  … and {} more", failed.len() - 20));
    }
    for j in &sub.jobs {
        let never: usize = j
            .indices
            .iter()
            .filter(|i| {
                !layout.done(&j.stage, **i).exists() && !task_log(root, &j.stage, **i).exists()
            })
            .count();
        if never > 0 {
            msg.push_str(&format!(
                "\n  stage {}: {never} task(s) never started (job {} ended or was cancelled: a dependency failed)",
                j.stage, j.job_id
            ));
        }
    }
    PipelineError::Scheduler(msg).with_hint(
        "fix the cause and submit the same command again: finished tasks are kept, only the rest are submitted",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_ranges_compress_runs() {
        assert_eq!(array_ranges(&[0, 1, 2, 3]), "0-3");
        assert_eq!(array_ranges(&[0, 2, 3, 4, 7, 9, 10]), "0,2-4,7,9-10");
        assert_eq!(array_ranges(&[5]), "5");
    }

    #[test]
    fn time_and_memory_formats() {
        for t in ["30", "10:00", "1:30:00", "2-0", "2-12:00", "1-00:00:00"] {
            assert!(valid_time(t), "{t}");
        }
        for t in ["", "1h", "1:2:3:4", "-5", "a-10", "10:"] {
            assert!(!valid_time(t), "{t}");
        }
        for m in ["4G", "500M", "1024", "2t"] {
            assert!(valid_mem(m), "{m}");
        }
        for m in ["", "4GB", "G", "four"] {
            assert!(!valid_mem(m), "{m}");
        }
    }

    #[test]
    fn validation_collects_every_problem() {
        let cfg = SlurmConfig {
            partition: Some("a b".into()),
            time: Some("1h".into()),
            mem: Some("4GB".into()),
            cpus_per_task: Some(0),
            max_parallel: Some(0),
            job_name: "curate".into(),
            binary: Some("curate".into()),
            extra_args: vec!["--array=0-3".into(), "qos".into(), "--mem=1G".into()],
            ..Default::default()
        };
        let mut p = Problems::new();
        p.set_scope("slurm");
        cfg.validate(&mut p);
        let fields: Vec<&str> = p.items().iter().map(|x| x.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "partition",
                "time",
                "mem",
                "cpus_per_task",
                "max_parallel",
                "binary",
                "extra_args[0]",
                "extra_args[1]",
                "extra_args[2]"
            ]
        );
    }

    #[test]
    fn sbatch_arguments_chain_stages_and_name_logs() {
        let cfg = SlurmConfig {
            partition: Some("cpu".into()),
            time: Some("01:00:00".into()),
            cpus_per_task: Some(2),
            mem: Some("4G".into()),
            max_parallel: Some(8),
            job_name: "curate".into(),
            extra_args: vec!["--qos=low".into()],
            ..Default::default()
        };
        let ctx = SubmitContext {
            binary: "/opt/curate/bin/curate".into(),
            config: "/home/u/run.toml".into(),
            workdir: "/home/u".into(),
        };
        let root = Path::new("/scratch/out");
        let a = sbatch_args(
            &cfg,
            &ctx,
            root,
            "pass-0",
            &[0, 1, 2, 5],
            &["41".into()],
            Path::new("/scratch/out/.curate/slurm/pass-0.sh"),
        );
        assert_eq!(
            a,
            [
                "--parsable",
                "--job-name=curate-pass-0",
                "--array=0-2,5%8",
                "--output=/scratch/out/.curate/logs/pass-0/%a.out",
                "--open-mode=append",
                "--chdir=/home/u",
                "--dependency=afterok:41",
                "--kill-on-invalid-dep=yes",
                "--partition=cpu",
                "--time=01:00:00",
                "--cpus-per-task=2",
                "--mem=4G",
                "--qos=low",
                "/scratch/out/.curate/slurm/pass-0.sh",
            ]
        );
        let s = batch_script(&ctx, Path::new("/scratch/it's"), "pass-0");
        assert!(
            s.contains(
                "exec '/opt/curate/bin/curate' task --config '/home/u/run.toml' --output '/scratch/it'\\''s' --stage 'pass-0' --index \"${SLURM_ARRAY_TASK_ID}\""
            ),
            "{s}"
        );
    }

    #[test]
    fn dependency_never_satisfied_is_not_active() {
        let s = |state: &str, reason: &str| JobState {
            job_id: "1".into(),
            index: None,
            state: state.into(),
            reason: reason.into(),
        };
        assert!(s("PENDING", "Dependency").active());
        assert!(s("RUNNING", "None").active());
        assert!(!s("PENDING", "DependencyNeverSatisfied").active());
        assert!(!s("FAILED", "NonZeroExitCode").active());
        assert!(!s("CANCELLED", "DependencyNeverSatisfied").active());
    }
}
