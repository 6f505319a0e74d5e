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
    /// The output directory holds a run of a different config or input.
    #[error("{0}")]
    Refused(String),
    /// One or more tasks failed (each message is complete).
    #[error("{} task(s) failed:\n{}", .0.len(), .0.join("\n"))]
    Tasks(Vec<String>),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

impl PipelineError {
    /// Wraps an I/O error with context.
    pub fn io(context: impl Into<String>, source: IoError) -> Self {
        PipelineError::Io {
            context: context.into(),
            source,
        }
    }
}
