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

pub mod config;
pub mod error;
pub mod exec;
pub mod layout;
pub mod manifest;
pub mod plan;
pub mod progress;
pub mod record;
pub mod registry;
pub mod remote;
pub mod slurm;
pub mod state;

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
}

/// Plans a run and checks (or creates) its state in the output directory.
pub fn prepare(config: Config, opts: &RunOptions) -> Result<Run, PipelineError> {
    let root = config.output_dir(opts.output.as_deref()).ok_or_else(|| {
        PipelineError::Other("no output directory: set [output] dir or pass --output DIR".into())
    })?;
    // an `s3://` output: the run works in a local scratch mirror (see `remote`)
    let remote = match curate_io::store::ObjectUrl::from_path(&root) {
        Some(url) => Some(remote::Remote::open(url.map_err(PipelineError::Other)?)?),
        None => None,
    };
    let layout = Layout::new(remote.as_ref().map_or(&root, |r| &r.scratch));
    if let Some(r) = &remote {
        if opts.fresh {
            r.clear()?;
        }
        r.fetch(".curate/state.json")?;
    }
    let previous = State::load(&layout)?;
    if previous.is_none()
        && let Some(r) = &remote
        && !r.is_empty()?
    {
        return Err(PipelineError::Refused(format!(
            "{} holds objects but no curate run; refusing to write into it (choose another --output)",
            root.display()
        )));
    }
    if previous.is_none()
        && root.exists()
        && std::fs::read_dir(&root)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false)
    {
        return Err(PipelineError::Refused(format!(
            "{} exists, is not empty and holds no curate run; refusing to write into it (choose another --output)",
            root.display()
        )));
    }
    if opts.fresh && previous.is_some() && remote.is_none() {
        std::fs::remove_dir_all(&root)
            .map_err(|e| PipelineError::io("starting over", curate_io::IoError::os(&root, e)))?;
        return prepare(
            config,
            &RunOptions {
                fresh: false,
                ..opts.clone()
            },
        );
    }
    let plan = Plan::new(&config, &layout.work())?;
    for d in &plan.step_dirs {
        std::fs::create_dir_all(d).map_err(|e| {
            PipelineError::io("creating step directories", curate_io::IoError::os(d, e))
        })?;
    }
    let paths: Vec<&Path> = plan.inputs.iter().map(|f| f.path.as_path()).collect();
    let (inputs, mtimes) = State::inputs(&paths, previous.as_ref())?;
    let state = State {
        config_fingerprint: config.fingerprint(),
        inputs,
        mtimes,
        stages: plan
            .stages
            .iter()
            .map(|s| (s.name.clone(), s.tasks))
            .collect(),
    };
    match &previous {
        Some(prev) => {
            let diff = prev.differences(&state);
            if !diff.is_empty() {
                return Err(PipelineError::Refused(format!(
                    "{} holds a run of a different pipeline: {}.\nhint: pass --fresh to discard it and start over, or choose another --output",
                    root.display(),
                    diff.join("; ")
                )));
            }
            if prev.mtimes != state.mtimes {
                state.commit(&layout)?;
            }
        }
        None => state.commit(&layout)?,
    }
    if let Some(r) = &remote {
        r.push(false)?;
    }
    let input_schema = common_schema(&plan, &config)?;
    let read_spec = curate_io::read::ReadSpec {
        text_column: config.input.text_column.clone(),
        batch_rows: config.input.batch_rows,
        columns: config.input.columns.clone(),
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
        input_schema,
        reasons,
        progress: Progress::new(!opts.quiet),
        remote,
    })
}

/// The schema every input yields (they must agree).
fn common_schema(
    plan: &Plan,
    config: &Config,
) -> Result<arrow::datatypes::SchemaRef, PipelineError> {
    let spec = curate_io::read::ReadSpec {
        text_column: config.input.text_column.clone(),
        batch_rows: 1,
        columns: config.input.columns.clone(),
    };
    let Some(first) = plan.inputs.first() else {
        return Err(PipelineError::Inputs(vec!["no input files".into()]));
    };
    let schema = curate_io::read::output_schema(first, &spec);
    let mut errors = Vec::new();
    for f in &plan.inputs[1..] {
        let s = curate_io::read::output_schema(f, &spec);
        let names = |s: &arrow::datatypes::Schema| {
            s.fields()
                .iter()
                .map(|f| format!("{}: {}", f.name(), f.data_type()))
                .collect::<Vec<_>>()
        };
        if names(&s) != names(&schema) {
            errors.push(format!(
                "{}: its columns ({}) differ from {}'s ({}); all inputs of a run must share one schema (or select common ones with [input] columns)",
                f.path.display(),
                names(&s).join(", "),
                first.path.display(),
                names(&schema).join(", ")
            ));
        }
    }
    if errors.is_empty() {
        Ok(schema)
    } else {
        Err(PipelineError::Inputs(errors))
    }
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

/// Runs every stage on this machine, `threads` tasks at a time (0 = all cores).
pub fn run_local(run: &Run, threads: usize) -> Result<RunSummary, PipelineError> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| PipelineError::Other(format!("cannot start worker threads: {e}")))?;
    let started = std::time::Instant::now();
    let mut resumed = 0;
    let mut ran = 0;
    let mut timings = Vec::new();
    for stage in &run.plan.stages {
        if let Some(r) = &run.remote {
            r.fetch_records(&stage.name)?;
        }
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
        let errors: Vec<String> = pool.install(|| {
            pending
                .par_iter()
                .filter_map(|t| {
                    run.run_task(stage, *t)
                        .err()
                        .map(|e| format!("  stage {} task {t}: {e}", stage.name))
                })
                .collect()
        });
        run.progress.finish(&stage.name);
        ran += pending.len() - errors.len();
        if !errors.is_empty() {
            return Err(PipelineError::Tasks(errors));
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
    });
    // run.json is informational (not in the manifest): timings vary run to run.
    let _ = curate_io::atomic::write_atomic(
        &run.layout.root.join("run.json"),
        &serde_json::to_vec_pretty(&run_info).expect("json"),
    );
    if let Some(r) = &run.remote {
        r.push(false)?;
        // a resumed finished run skipped finalize: the manifest is only in the bucket
        if !run.layout.manifest().exists() {
            r.fetch("manifest.json")?;
        }
    }
    let manifest = manifest::load(&run.layout.root)?;
    let digest = manifest::digest(&run.layout.root)?;
    Ok(RunSummary {
        root: run
            .remote
            .as_ref()
            .map_or_else(|| run.layout.root.clone(), |r| r.url.to_path()),
        manifest,
        digest,
        resumed_tasks: resumed,
        ran_tasks: ran,
    })
}
