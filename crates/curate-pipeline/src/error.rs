//! Pipeline errors: each names the stage, task, step and file it concerns.

use curate_core::StepError;
use curate_io::IoError;

/// Errors of planning and running a pipeline.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The config has problems (all of them are listed).
    #[error("the config has {} problem(s)", .0.len())]
    Config(Vec<curate_core::Problem>),
    /// Inputs could not be resolved or inspected (all problems listed).
    #[error("{}", .0.join("\n"))]
    Inputs(Vec<String>),
    /// Reading or writing data failed.
    #[error("{context}: {source}")]
    Io {
        /// Stage/task context.
        context: String,
        /// The located I/O error.
        source: IoError,
    },
    /// A step failed.
    #[error("{step}, {context}: {source}")]
    Step {
        /// `steps[i] (type)`.
        step: String,
        /// Stage/task context.
        context: String,
        /// The step's error.
        source: StepError,
    },
    /// Several steps could not be built (each error names its step; one alone is a `Step`).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Steps(Vec<PipelineError>),
    /// The output directory holds a run of a different config or input.
    #[error("{0}")]
    Refused(String),
    /// One or more tasks failed (each message is complete).
    #[error("{} task(s) failed:\n{}", .0.len(), .0.join("\n"))]
    Tasks(Vec<String>),
    /// A snapshot could not be read or checked (names the file).
    #[error(transparent)]
    Snapshot(#[from] curate_snapshot::SnapshotError),
    /// How curate was called names something that does not exist or cannot be done here (an
    /// unknown stage, a task index out of range, `--fresh` for one task, an object-store output
    /// with the Slurm executor); nothing was touched. The CLI exits with 2, as for config
    /// problems.
    #[error("{0}")]
    Usage(String),
    /// The cluster scheduler's commands (`sbatch`, `squeue`, `sacct`, `scontrol`) are missing,
    /// failed, refused a submission, or report tasks that failed.
    #[error("{0}")]
    Scheduler(String),
    /// Anything else.
    #[error("{0}")]
    Other(String),
    /// An error with advice on what to do about it (the CLI prints it as `hint:`, after the
    /// error's causes).
    #[error("{error}\nhint: {hint}")]
    Hinted {
        /// The error.
        error: Box<PipelineError>,
        /// What to do about it.
        hint: String,
    },
}

impl PipelineError {
    /// This error with advice on what to do about it.
    pub fn with_hint(self, hint: impl Into<String>) -> Self {
        PipelineError::Hinted {
            error: Box::new(self),
            hint: hint.into(),
        }
    }

    /// The error without its hint, and the hint.
    pub fn split_hint(&self) -> (&PipelineError, Option<&str>) {
        match self {
            PipelineError::Hinted { error, hint } => (error, Some(hint)),
            e => (e, None),
        }
    }

    /// Wraps an I/O error with context.
    pub fn io(context: impl Into<String>, source: IoError) -> Self {
        PipelineError::Io {
            context: context.into(),
            source,
        }
    }
}
