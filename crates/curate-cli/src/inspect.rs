//! `curate status`, `stats`, `snapshot verify` and `unlock`: looking at a run or a snapshot.

use std::path::PathBuf;
use std::process::ExitCode;

use curate_pipeline::PipelineError;
use curate_pipeline::remote::Need;

use crate::cluster;

/// `curate status DIR`: per-stage progress from completion records.
pub fn status(dir: PathBuf, json: bool) -> Result<ExitCode, PipelineError> {
    let local = curate_pipeline::remote::Readable::open(&dir, Need::Status)?;
    let stages = curate_pipeline::state::progress(local.path())?;
    let complete = curate_pipeline::layout::Layout::new(local.path())
        .manifest()
        .exists();
    let started = cluster::started_tasks(&dir, &stages);
    let submission = curate_pipeline::slurm::load_submission(&dir);
    if json {
        let v = serde_json::json!({ "complete": complete, "stages": stages, "started_without_record": started.iter().map(cluster::StartedTask::json).collect::<Vec<_>>(), "slurm": submission });
        outln!("{}", serde_json::to_string_pretty(&v).expect("json"));
    } else {
        let w = stages.iter().map(|s| s.stage.len()).max().unwrap_or(5);
        for s in &stages {
            let more = if s.pending.is_empty() {
                String::new()
            } else {
                let list: Vec<String> = s.pending.iter().map(|t| t.to_string()).collect();
                format!(
                    "  pending: {}{}",
                    list.join(","),
                    if s.tasks - s.done > list.len() {
                        ",…"
                    } else {
                        ""
                    }
                )
            };
            outln!("{:w$}  {:>6}/{:<6}{more}", s.stage, s.done, s.tasks);
            for t in started.iter().filter(|t| t.stage == s.stage) {
                outln!(
                    "{:w$}    task {} started, no completion record (running or failed): {}{}",
                    "",
                    t.index,
                    t.log.display(),
                    t.last_line
                        .as_ref()
                        .map(|l| format!("\n{:w$}      {l}", ""))
                        .unwrap_or_default()
                );
            }
        }
        if let Some(sub) = &submission {
            let jobs: Vec<String> = sub
                .jobs
                .iter()
                .map(|j| format!("{}={}", j.stage, j.job_id))
                .collect();
            outln!("last Slurm submission: {}", jobs.join(" "));
        }
        outln!(
            "{}",
            if complete {
                "complete: manifest.json written"
            } else {
                "incomplete: re-run the same command to resume"
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `curate stats DIR`: totals and each step's counters.
pub fn stats(dir: PathBuf, json: bool) -> Result<ExitCode, PipelineError> {
    let local = curate_pipeline::remote::Readable::open(&dir, Need::Manifest)?;
    let m = curate_pipeline::manifest::load(local.path())?;
    let bad = m.consistency();
    if !bad.is_empty() {
        return Err(PipelineError::Other(format!(
            "{}: the manifest's counts do not add up: {}",
            dir.display(),
            bad.join("; ")
        ))
        .with_hint(format!(
            "`curate snapshot verify {}` checks the whole snapshot",
            dir.display()
        )));
    }
    if json {
        let v = serde_json::json!({ "totals": m.totals, "steps": m.steps, "outputs": m.outputs.len(), "skipped": m.skipped });
        outln!("{}", serde_json::to_string_pretty(&v).expect("json"));
    } else {
        let t = &m.totals;
        outln!(
            "{} documents read, {} kept, {} dropped, {} in skipped shards",
            t.input_rows,
            t.kept_rows,
            t.dropped_rows,
            t.skipped_rows
        );
        for s in &m.steps {
            outln!(
                "  [{}] {:<18} {:>9} in {:>9} out",
                s.index,
                s.kind,
                s.docs_in,
                s.docs_out
            );
            for (reason, n) in &s.dropped {
                outln!("        {reason:<30} {n:>9}");
            }
            for (name, v) in &s.counters.0 {
                outln!("        {name} = {}", curate_report::charts::num(*v));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `curate snapshot verify DIR`: re-hash every file against the manifest.
pub fn verify(dir: PathBuf) -> Result<ExitCode, PipelineError> {
    let local = curate_pipeline::remote::Readable::open(&dir, Need::Snapshot)?;
    let (m, problems) = curate_pipeline::manifest::verify(local.path())?;
    let digest = curate_pipeline::manifest::digest(local.path())?;
    if problems.is_empty() {
        let n = m.outputs.len() + m.excluded.len() + m.artifacts.len();
        eprintln!(
            "{}: verified the manifest and {n} file(s), nothing else in the snapshot (manifest {})",
            dir.display(),
            &digest[..16]
        );
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "error: {} does not match its manifest ({} problem(s)):",
            dir.display(),
            problems.len()
        );
        for p in problems {
            eprintln!("  {p}");
        }
        Ok(ExitCode::from(1))
    }
}

/// `curate unlock DIR`.
pub fn unlock(dir: PathBuf) -> Result<ExitCode, PipelineError> {
    eprintln!("{}", curate_pipeline::lock::unlock(&dir)?);
    Ok(ExitCode::SUCCESS)
}
