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
mod docs;
mod inspect;
mod label;
mod model;
mod rethreshold;
mod run;
use curate_pipeline::PipelineError;

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
            // 2: nothing was touched because the config or the command line is wrong
            match e.split_hint().0 {
                PipelineError::Config(_) | PipelineError::Usage(_) => ExitCode::from(2),
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

fn dispatch(cmd: Command) -> Result<ExitCode, PipelineError> {
    match cmd {
        Command::Run {
            config,
            output,
            threads,
            quiet,
            fresh,
            executor,
            wait,
        } => run::run(config, output, threads, quiet, fresh, executor, wait),
        Command::Validate { config } => run::validate(config),
        Command::ListSteps => docs::list_steps(),
        Command::Explain { name } => docs::explain(name),
        Command::Plan { config, output } => run::plan(config, output),
        Command::Task {
            config,
            output,
            stage,
            index,
        } => run::task(config, output, stage, index),
        Command::Label {
            config,
            dry_run: _,
            json,
            calibrate,
        } => label::dry_run(&config, json, calibrate),
        Command::Rethreshold(a) => rethreshold::run(a),
        Command::Status { dir, json } => inspect::status(dir, json),
        Command::Stats { dir, json } => inspect::stats(dir, json),
        Command::Unlock { dir } => inspect::unlock(dir),
        Command::Snapshot { command } => match command {
            SnapshotCommand::Verify { dir } => inspect::verify(dir),
            SnapshotCommand::Diff(a) => diff::run(&a),
        },
        Command::Model { command } => match command {
            ModelCommand::Inspect(a) => model::inspect(&a),
        },
    }
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
            // the hint, if any, comes last, after the causes
            let (other, hint) = other.split_hint();
            let lines = other.to_string();
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
                eprintln!("hint: {h}");
            }
            if disk_full(other) {
                eprintln!(
                    "hint: a file system is full: free space where the files above live (the output, or the scratch directory of an s3:// output) and run the same command again: finished tasks are kept, failed ones left nothing behind"
                );
            }
        }
    }
}

/// Whether `e` comes from a file system out of space: an OS error of that kind among its
/// sources, or its text (a writer that keeps only the OS error's message, or a stage's failed
/// tasks, each one line).
fn disk_full(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(x) = cur {
        if x.to_string().contains("(os error 28)")
            || x.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::StorageFull)
        {
            return true;
        }
        cur = x.source();
    }
    false
}
