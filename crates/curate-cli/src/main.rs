//! `curate`: curate LLM pre-training data at web scale.
//!
//! A thin binary: parse arguments, call `curate-pipeline`, print results (data on stdout, logs
//! and progress on stderr) and errors as `error:` / `caused by:` / `hint:`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// `println!` for data on stdout that ends the process quietly when the reader has gone away
/// (`curate stats DIR | head`), instead of panicking on a broken pipe.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
            panic!("failed printing to stdout: {e}");
        }
    }};
}

mod cluster;
mod diff;
mod label;
mod model;
mod rethreshold;
use curate_pipeline::{PipelineError, RunOptions, config};

/// Curate LLM pre-training data: filters, dedup, an LLM-teacher → local-student quality loop,
/// and reproducible snapshots.
#[derive(Debug, Parser)]
#[command(name = "curate", version, about, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a pipeline described by a TOML config (resumes an interrupted run).
    Run {
        /// The pipeline config.
        #[arg(long, short)]
        config: PathBuf,
        /// Snapshot directory (overrides `[output] dir`).
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Worker threads (0 = all cores; overrides `[run] threads`).
        #[arg(long, short = 'j')]
        threads: Option<usize>,
        /// No progress bars.
        #[arg(long, short)]
        quiet: bool,
        /// Discard a run of a different config or input in the output directory and start over.
        #[arg(long)]
        fresh: bool,
        /// Where tasks run: this machine, or one Slurm job array per stage (overrides
        /// `[run] executor`; options in `[slurm]`).
        #[arg(long, value_parser = ["local", "slurm"])]
        executor: Option<String>,
        /// With `--executor slurm`: wait until the run finishes, reporting failed tasks with
        /// their logs.
        #[arg(long)]
        wait: bool,
    },
    /// Check a config and report every problem, without reading any data.
    Validate {
        /// The pipeline config.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// List every step type with a one-line summary.
    ListSteps,
    /// Show a step's documentation and options, or a preset's expansion.
    Explain {
        /// A step type (see `list-steps`) or a preset name.
        name: String,
    },
    /// Print the stages of a run and their task counts as JSON (for any indexed-array engine).
    Plan {
        /// The pipeline config.
        #[arg(long, short)]
        config: PathBuf,
        /// Snapshot directory (overrides `[output] dir`).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Run one task of one stage (what a cluster array element runs).
    Task {
        /// The pipeline config.
        #[arg(long, short)]
        config: PathBuf,
        /// Snapshot directory (overrides `[output] dir`).
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Stage name (from `curate plan`).
        #[arg(long)]
        stage: String,
        /// Task index within the stage (default: $SLURM_ARRAY_TASK_ID, then $JOB_COMPLETION_INDEX).
        #[arg(long)]
        index: Option<usize>,
    },
    /// Estimate what the config's `label` step would cost (tokens, USD) without sending anything.
    Label {
        /// The pipeline config.
        #[arg(long, short)]
        config: PathBuf,
        /// Estimate only (required: labeling itself runs inside `curate run`).
        #[arg(long, required = true)]
        dry_run: bool,
        /// Print the estimate as JSON on stdout.
        #[arg(long)]
        json: bool,
        /// Measure bytes per token with the free count_tokens endpoint on this many documents
        /// first (needs ANTHROPIC_API_KEY; buys nothing).
        #[arg(long, value_name = "N")]
        calibrate: Option<usize>,
    },
    /// Report what a new quality cut (threshold or top fraction) would keep, reading only the
    /// stored `quality_score` column of a snapshot.
    Rethreshold(rethreshold::RethresholdArgs),
    /// Show per-stage progress of a run from its completion records.
    Status {
        /// The snapshot (output) directory.
        dir: PathBuf,
        /// Print JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Show a finished snapshot's totals and per-step counters.
    Stats {
        /// The snapshot directory.
        dir: PathBuf,
        /// Print JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Remove the lock of an `s3://` run whose holder is gone (killed on another machine). A
    /// local directory's lock is the kernel's and is released with its process; for one, this
    /// only reports whether it is held.
    Unlock {
        /// The run directory (a path or an `s3://` URL).
        dir: PathBuf,
    },
    /// Work with finished snapshots.
    Snapshot {
        #[command(subcommand)]
        command: SnapshotCommand,
    },
    /// Work with quality models.
    Model {
        #[command(subcommand)]
        command: ModelCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ModelCommand {
    /// Print a quality model's header, held-out metrics, calibration and its strongest positive
    /// and negative features (the model of a snapshot, its `model/` directory, or a model.bin).
    Inspect(model::InspectArgs),
}

#[derive(Debug, Subcommand)]
enum SnapshotCommand {
    /// Re-hash every file the manifest lists; fail on any mismatch or missing file.
    Verify {
        /// The snapshot directory.
        dir: PathBuf,
    },
    /// Compare two snapshots: config, inputs, per-step counts, documents added and removed, and
    /// the kept documents' score distribution.
    Diff(diff::DiffArgs),
}

fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(e) => {
            report(&e);
            match e {
                PipelineError::Config(_) => ExitCode::from(2),
                _ => ExitCode::from(1),
            }
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CURATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let ansi = std::env::var_os("NO_COLOR").is_none()
        && std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .init();
}

fn load_config(path: &std::path::Path) -> Result<config::Config, PipelineError> {
    config::load(path).map_err(PipelineError::Config)
}

fn dispatch(cmd: Command) -> Result<ExitCode, PipelineError> {
    match cmd {
        Command::Rethreshold(a) => rethreshold::run(a),
        Command::Run {
            config,
            output,
            threads,
            quiet,
            fresh,
            executor,
            wait,
        } => {
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
        Command::Validate { config } => {
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
                    eprintln!(
                        "  note: the inputs were not checked (columns, id column): {}",
                        e.to_string().lines().next().unwrap_or_default()
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::ListSteps => {
            let docs = config::step_docs();
            let w = docs.iter().map(|d| d.name.len()).max().unwrap_or(0);
            for d in docs {
                outln!("{:w$}  {}", d.name, d.summary());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Explain { name } => {
            if let Some(d) = config::step_docs().into_iter().find(|d| d.name == name) {
                print!("{}", d.render());
                return Ok(ExitCode::SUCCESS);
            }
            if let Some(tables) = curate_pipeline::registry::preset(&name) {
                outln!("preset \"{name}\" expands to these steps, in order:\n");
                for t in tables {
                    outln!("[[steps]]\n{}", toml_string(&t));
                }
                return Ok(ExitCode::SUCCESS);
            }
            let docs = config::step_docs();
            let names: Vec<&str> = docs
                .iter()
                .map(|d| d.name.as_str())
                .chain(curate_pipeline::registry::PRESETS)
                .collect();
            let hint = curate_core::config::did_you_mean(&name, names.iter().copied())
                .map(|s| format!("\nhint: did you mean `{s}`?"))
                .unwrap_or_default();
            Err(PipelineError::Other(format!(
                "no step or preset named `{name}` (see `curate list-steps`){hint}"
            )))
        }
        Command::Plan { config, output } => {
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
                "output": run.remote.as_ref().map_or_else(|| run.layout.root.clone(), |r| r.url.to_path()),
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
        Command::Task {
            config,
            output,
            stage,
            index,
        } => {
            let index = index
                .or_else(|| env_index("SLURM_ARRAY_TASK_ID"))
                .or_else(|| env_index("JOB_COMPLETION_INDEX"))
                .ok_or_else(|| PipelineError::Other("no task index: pass --index or set SLURM_ARRAY_TASK_ID / JOB_COMPLETION_INDEX".into()))?;
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
                PipelineError::Other(format!("no stage `{stage}`; stages: {}", names.join(", ")))
            })?;
            let r = run.run_task(&st, index)?;
            outln!("{}", serde_json::to_string(&r).expect("json"));
            Ok(ExitCode::SUCCESS)
        }
        Command::Label {
            config,
            dry_run: _,
            json,
            calibrate,
        } => label::dry_run(&config, json, calibrate),
        Command::Status { dir, json } => {
            let local = curate_pipeline::remote::Readable::open(&dir, Need::Status)?;
            let stages = curate_pipeline::state::progress(local.path())?;
            let complete = local.path().join("manifest.json").exists();
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
        Command::Stats { dir, json } => {
            let local = curate_pipeline::remote::Readable::open(&dir, Need::Manifest)?;
            let m = curate_pipeline::manifest::load(local.path())?;
            let bad = m.consistency();
            if !bad.is_empty() {
                return Err(PipelineError::Other(format!(
                    "{}: the manifest's counts do not add up: {}\nhint: `curate snapshot verify {}` checks the whole snapshot",
                    dir.display(),
                    bad.join("; "),
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
        Command::Snapshot {
            command: SnapshotCommand::Diff(a),
        } => diff::run(&a),
        Command::Model {
            command: ModelCommand::Inspect(a),
        } => model::inspect(&a),
        Command::Unlock { dir } => {
            eprintln!("{}", curate_pipeline::lock::unlock(&dir)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Snapshot {
            command: SnapshotCommand::Verify { dir },
        } => {
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
    }
}

use curate_pipeline::remote::Need;

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

fn toml_string(t: &curate_pipeline::registry::TomlTable) -> String {
    t.to_string()
}

fn report(e: &PipelineError) {
    match e {
        PipelineError::Config(problems) => {
            eprintln!("error: the config has {} problem(s):", problems.len());
            for p in problems {
                for (i, line) in p.to_string().lines().enumerate() {
                    if i == 0 {
                        eprintln!("  - {line}")
                    } else {
                        eprintln!("    {}", line.trim_start())
                    }
                }
            }
        }
        other => {
            let mut lines = other.to_string();
            let hint = lines.find("\nhint: ").map(|i| lines.split_off(i));
            let mut it = lines.lines();
            eprintln!("error: {}", it.next().unwrap_or(""));
            for l in it {
                eprintln!("{l}");
            }
            // Causes already spelled out in a message are not repeated.
            let mut shown = other.to_string();
            let mut src = std::error::Error::source(other);
            while let Some(s) = src {
                let text = s.to_string();
                if !shown.contains(&text) {
                    eprintln!("caused by: {text}");
                    shown = text;
                }
                src = s.source();
            }
            if let Some(h) = hint {
                eprintln!("{}", h.trim_start());
            }
        }
    }
}
