//! The step traits: what a pipeline step is to the executor.
//!
//! A step is built once per run from its config ([`StepSpec::build`](crate::StepSpec::build))
//! and shared by all tasks. Each task asks it for a [`Processor`], which sees that task's
//! batches in input order and may keep state (reused buffers) between them.
//!
//! A step that needs a global view of the corpus (dedup, sample, label, train) also returns a
//! [`Barrier`]. The executor then splits the run there:
//!
//! 1. the pass *before* the barrier feeds every surviving batch to the barrier's per-task
//!    [`Observer`] (e.g. MinHash signatures → band-key runs on disk);
//! 2. the barrier's global [stages](Barrier::stages) run as tasks of their own (merge runs,
//!    cluster, call the teacher, fit a model), each leaving its results in the step's directory;
//! 3. the pass *after* the barrier runs the step's [`Processor`], which reads those results
//!    (e.g. drops duplicates, adds a label column).
//!
//! Every task's outputs are files in directories the executor hands out, written atomically;
//! the executor writes the completion record last, so a killed task is simply re-run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::batch::DocBatch;

/// An error raised by a step. The executor adds the task, file and row group around it.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// A file the step reads or writes failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Input data does not have the shape the step needs (missing column, wrong type...).
    #[error("{0}")]
    Data(String),
    /// Anything else, with a message that says what and where.
    #[error("{0}")]
    Other(String),
}

impl StepError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StepError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Named counters a step accumulates; merged across tasks by summing, recorded in the manifest.
/// Add per batch, never per document.
///
/// Two kinds: counts of the data ([`Self::add`]: documents, groups, duplicates), which are the
/// same for any thread count, task split and memory limit and go into the manifest; and counts
/// of how the run went ([`Self::add_run`]: spilled runs, passes, rounds), which depend on the
/// split and the memory limit and so go to `run.json`, never into the manifest (the snapshot's
/// bytes must not depend on them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters(pub BTreeMap<String, f64>);

/// The name prefix of the counters [`Counters::add_run`] adds.
pub const RUN_COUNTER: &str = "run.";

impl Counters {
    /// Adds `v` to the run counter `name` (a count of how the run went, not of the data; kept
    /// as `run.{name}`, out of the manifest).
    pub fn add_run(&mut self, name: &str, v: f64) {
        self.add(&format!("{RUN_COUNTER}{name}"), v);
    }

    /// A run counter's value (0 when absent).
    pub fn get_run(&self, name: &str) -> f64 {
        self.get(&format!("{RUN_COUNTER}{name}"))
    }

    /// Splits off the run counters (names without their prefix), leaving the data counters.
    pub fn take_run(&mut self) -> Counters {
        let (run, data): (BTreeMap<_, _>, BTreeMap<_, _>) = std::mem::take(&mut self.0)
            .into_iter()
            .partition(|(k, _)| k.starts_with(RUN_COUNTER));
        self.0 = data;
        Counters(
            run.into_iter()
                .map(|(k, v)| (k[RUN_COUNTER.len()..].to_string(), v))
                .collect(),
        )
    }

    /// Adds `v` to counter `name`.
    pub fn add(&mut self, name: &str, v: f64) {
        if let Some(c) = self.0.get_mut(name) {
            *c += v;
        } else {
            self.0.insert(name.to_string(), v);
        }
    }

    /// Adds every counter of `other`.
    pub fn merge(&mut self, other: &Counters) {
        for (k, v) in &other.0 {
            self.add(k, *v);
        }
    }

    /// A counter's value (0 when absent).
    pub fn get(&self, name: &str) -> f64 {
        self.0.get(name).copied().unwrap_or(0.0)
    }
}

/// What a step knows when it is built: run-wide settings it may depend on.
#[derive(Debug, Clone)]
pub struct BuildEnv {
    /// The run seed (`[run] seed`).
    pub seed: u64,
    /// Position of this step in the pipeline (0-based).
    pub index: usize,
    /// Name of the text column.
    pub text_column: String,
    /// Name of the id column, if configured.
    pub id_column: Option<String>,
    /// Types of the steps before this one, in order (to find, e.g., the label step a `train`
    /// step learns from).
    pub previous: Vec<String>,
    /// Directory relative paths in step configs resolve from: the working directory, as for
    /// `[input] paths` and `[output] dir` (one rule for every path in a config).
    pub config_dir: PathBuf,
}

/// Context of one task of a pass (a range of input row groups).
#[derive(Debug, Clone)]
pub struct TaskContext<'a> {
    /// Task index within the pass.
    pub task: usize,
    /// Number of tasks in the pass.
    pub tasks: usize,
    /// The step's own work directory (shared by all its tasks and stages; create files with
    /// task-specific names).
    pub dir: &'a Path,
    /// Work directories of every step of the pipeline, by step index.
    pub step_dirs: &'a [PathBuf],
    /// The run seed.
    pub seed: u64,
}

/// Context of one task of a barrier's global stage.
#[derive(Debug, Clone)]
pub struct StageContext<'a> {
    /// Which of the barrier's stages (index into [`Barrier::stages`]).
    pub stage: usize,
    /// Task index within the stage.
    pub task: usize,
    /// The step's own work directory.
    pub dir: &'a Path,
    /// Work directories of every step, by step index.
    pub step_dirs: &'a [PathBuf],
    /// Number of tasks of the pass before the barrier (how many observer outputs exist).
    pub observed_tasks: usize,
    /// The run seed.
    pub seed: u64,
    /// Counters this stage task contributes to the step's stats.
    pub counters: &'a std::sync::Mutex<Counters>,
}

/// A global stage of a barrier: a name and how many independent tasks it has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageSpec {
    /// Stage name, e.g. `"buckets"`; unique within the step.
    pub name: String,
    /// Number of tasks; must be known before any data is read (cluster executors size arrays
    /// from it).
    pub tasks: usize,
}

/// A pipeline step, built from its config, shared by all tasks.
pub trait Step: Send + Sync {
    /// The step's type name as written in configs (`"gopher_quality"`).
    fn kind(&self) -> &'static str;

    /// The reasons this step drops documents for, in reason-number order.
    fn reasons(&self) -> Vec<String> {
        Vec::new()
    }

    /// A per-task processor for the pass that contains this step.
    fn processor(&self, cx: &TaskContext<'_>) -> Result<Box<dyn Processor>, StepError>;

    /// The step's global part, if it needs a view of the whole corpus.
    fn barrier(&self) -> Option<&dyn Barrier> {
        None
    }

    /// Declares the columns the step reads and adds (see [`crate::columns`]); the pipeline
    /// checks them against the input schema before any data is read. Steps that neither read
    /// nor add columns besides the text keep the default.
    fn columns(&self, _columns: &mut crate::columns::Columns<'_>) {}

    /// Files the step contributes to the snapshot (relative path in the snapshot → source
    /// file), copied and hashed into the manifest when the run finishes. Also a JSON summary
    /// for the manifest's per-step stats.
    fn publish(&self, _dir: &Path) -> Result<Published, StepError> {
        Ok(Published::default())
    }
}

/// What a step contributes to the finished snapshot.
#[derive(Debug, Clone, Default)]
pub struct Published {
    /// Files to copy into the snapshot: (path relative to the snapshot root, source path).
    pub files: Vec<(String, PathBuf)>,
    /// Extra stats for the manifest (cluster histograms, label costs, metrics...).
    pub stats: Option<serde_json::Value>,
}

/// Per-task document processing.
pub trait Processor: Send {
    /// Processes one batch: drop rows, rewrite text or add columns.
    fn process(&mut self, batch: &mut DocBatch, counters: &mut Counters) -> Result<(), StepError>;

    /// Called once after the task's last batch.
    fn finish(&mut self, _counters: &mut Counters) -> Result<(), StepError> {
        Ok(())
    }
}

/// A processor that keeps every document unchanged.
#[derive(Debug, Default)]
pub struct PassThrough;

impl Processor for PassThrough {
    fn process(&mut self, _b: &mut DocBatch, _c: &mut Counters) -> Result<(), StepError> {
        Ok(())
    }
}

/// The global part of a step.
pub trait Barrier: Send + Sync {
    /// A per-task observer for the pass before the barrier.
    fn observer(&self, cx: &TaskContext<'_>) -> Result<Box<dyn Observer>, StepError>;

    /// The global stages, in order. `observed_tasks` is the task count of the pass before.
    fn stages(&self, observed_tasks: usize) -> Vec<StageSpec>;

    /// Runs one task of one global stage.
    fn run_stage_task(&self, cx: &StageContext<'_>) -> Result<(), StepError>;
}

/// Sees every surviving document of one task in the pass before a barrier.
pub trait Observer: Send {
    /// Observes one batch (all rows are alive).
    fn observe(&mut self, batch: &DocBatch, counters: &mut Counters) -> Result<(), StepError>;

    /// Flushes the task's observations to disk (atomically).
    fn finish(self: Box<Self>, counters: &mut Counters) -> Result<(), StepError>;
}
