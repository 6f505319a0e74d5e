//! `curate run`, `validate`, `plan` and `task`: running a pipeline, checking its config, and
//! the stage/task interface a cluster engine drives.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use curate_pipeline::{PipelineError, RunOptions, config};

use crate::cluster;

/// The config at `path`, or every problem it has: those of its own sections and, read from the
/// inputs' footers, those of the input columns it names.
fn load_config(path: &Path) -> Result<config::Config, PipelineError> {
    config::load(path).map_err(|mut problems| {
        problems.extend(curate_pipeline::input_column_problems(path));
        PipelineError::Config(problems)
    })
}

/// `curate run`: locally, or as Slurm job arrays.
pub fn run(
    config: PathBuf,
    output: Option<PathBuf>,
    threads: Option<usize>,
    quiet: bool,
    fresh: bool,
    executor: Option<String>,
    wait: bool,
) -> Result<ExitCode, PipelineError> {
    let cfg = load_config(&config)?;
    let threads = threads.unwrap_or(cfg.run.threads);
    let opts = RunOptions {
        output,
        threads: Some(threads),
        quiet,
        fresh,
        ..Default::default()
    };
    let slurm = match executor.as_deref() {
        Some(e) => e == "slurm",
        None => cfg.run.executor == config::Executor::Slurm,
    };
    if slurm {
        return cluster::run_slurm(cfg, &config, &opts, wait);
    }
    let run = curate_pipeline::prepare(cfg, &opts)?;
    let s = curate_pipeline::run_local(&run, threads)?;
    let t = &s.manifest.totals;
    eprintln!(
        "curate: {} documents read, {} kept, {} dropped{} → {} ({} data file(s); manifest {})",
        t.input_rows,
        t.kept_rows,
        t.dropped_rows,
        if t.skipped_rows > 0 {
            format!(", {} in skipped shards", t.skipped_rows)
        } else {
            String::new()
        },
        s.root.display(),
        s.manifest.outputs.len(),
        &s.digest[..16],
    );
    if s.resumed_tasks > 0 {
        eprintln!(
            "curate: resumed past {} finished task(s), ran {}",
            s.resumed_tasks, s.ran_tasks
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `curate validate`: every config problem at once, reading the inputs' footers only.
pub fn validate(config: PathBuf) -> Result<ExitCode, PipelineError> {
    let cfg = load_config(&config)?;
    let steps = cfg.steps.len();
    let fingerprint = cfg.fingerprint();
    // the inputs' footers (never their data): the columns every step needs and adds
    match curate_pipeline::check_inputs(cfg) {
        Ok(c) => {
            eprintln!(
                "{}: valid ({steps} step(s), {} input file(s), {} task(s) per pass, fingerprint {})",
                config.display(),
                c.files,
                c.tasks,
                &c.config.fingerprint()[..16]
            );
            if c.id_column_found {
                eprintln!(
                    "  id column: `id` (found in the input; set [input] id_column to use another)"
                );
            }
            eprintln!("  data columns: {}", c.data_columns.join(", "));
        }
        // column problems are config problems; unreachable inputs are the run's to report
        Err(e @ PipelineError::Config(_)) => return Err(e),
        Err(e) => {
            eprintln!(
                "{}: valid ({steps} step(s), fingerprint {})",
                config.display(),
                &fingerprint[..16]
            );
            let (e, _) = e.split_hint();
            if matches!(e, PipelineError::Step { .. } | PipelineError::Steps(_)) {
                eprintln!(
                    "  note: step(s) that cannot be built yet (their columns were not checked \
                     against the inputs):"
                );
            } else {
                eprintln!("  note: the inputs were not checked (columns, id column):");
            }
            for line in e.to_string().lines() {
                eprintln!("    {line}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `curate plan`: stages and task counts as JSON.
pub fn plan(config: PathBuf, output: Option<PathBuf>) -> Result<ExitCode, PipelineError> {
    let cfg = load_config(&config)?;
    let run = curate_pipeline::prepare(
        cfg,
        &RunOptions {
            output,
            quiet: true,
            ..Default::default()
        },
    )?;
    let scratch = run.plan.scratch_estimate(&run.config);
    let plan = serde_json::json!({
        "output": run.storage.location(),
        "config_fingerprint": run.config.fingerprint(),
        "scratch_bytes_estimate": scratch,
        "stages": run.plan.stages,
    });
    eprintln!(
        "curate: peak disk use of the run estimated at {} (intermediate parts, step work files and the snapshot; docs/ARCHITECTURE.md, \"Scratch space\")",
        human_bytes(scratch)
    );
    outln!("{}", serde_json::to_string_pretty(&plan).expect("json"));
    Ok(ExitCode::SUCCESS)
}

/// `curate task`: one task of one stage.
pub fn task(
    config: PathBuf,
    output: Option<PathBuf>,
    stage: String,
    index: Option<usize>,
) -> Result<ExitCode, PipelineError> {
    let index = index
        .or_else(|| env_index("SLURM_ARRAY_TASK_ID"))
        .or_else(|| env_index("JOB_COMPLETION_INDEX"))
        .ok_or_else(|| {
            PipelineError::Usage(
                "no task index: pass --index or set SLURM_ARRAY_TASK_ID / JOB_COMPLETION_INDEX"
                    .into(),
            )
        })?;
    let cfg = load_config(&config)?;
    let run = curate_pipeline::prepare(
        cfg,
        &RunOptions {
            output,
            quiet: true,
            access: curate_pipeline::Access::Task {
                stage: stage.clone(),
                index,
            },
            ..Default::default()
        },
    )?;
    let st = run.plan.stage(&stage).cloned().ok_or_else(|| {
        let names: Vec<&str> = run.plan.stages.iter().map(|s| s.name.as_str()).collect();
        PipelineError::Usage(format!("no stage `{stage}`; stages: {}", names.join(", ")))
    })?;
    let r = run.run_task(&st, index)?;
    outln!("{}", serde_json::to_string(&r).expect("json"));
    Ok(ExitCode::SUCCESS)
}

/// `1.2 GB`-style rendering of a byte count (decimal units).
fn human_bytes(n: u64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB", "PB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < units.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

fn env_index(var: &str) -> Option<usize> {
    std::env::var(var).ok()?.parse().ok()
}
