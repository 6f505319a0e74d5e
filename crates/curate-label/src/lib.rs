//! curate's teacher: the `sample` step (a deterministic, stratified sample with a held-out
//! split) and the `label` step, which scores the sampled documents with a teacher and adds a
//! `teacher_score` column.
//!
//! Teachers ("annotators"):
//! - `claude`: Anthropic's Messages API (`mode = "online"`) or Message Batches API
//!   (`mode = "batch"`, half price) through a thin client of our own ([`client`]), with the
//!   rubric cached in `system`, structured JSON output, retries per the API's rules, a limiter
//!   fed by the rate-limit headers, cost accounting from `usage` and a hard budget checked before
//!   every request or batch ([`cost`]);
//! - `file`: labels imported from a parquet or JSONL file, matched by id or by text;
//! - `reference`: DCLM-style binary labels, positives from a reference corpus file, negatives the
//!   sampled documents; fully offline.
//!
//! Every label bought is kept in a [label store](store) outside the snapshot, keyed by (model,
//! prompt hash, text hash), so nothing is ever paid for twice; a batch interrupted mid-way is
//! resumed from its persisted id. [`estimate`] prices a run before anything is spent.

pub mod active;
pub mod claude;
pub mod client;
pub mod cost;
pub mod estimate;
pub mod label;
pub mod rubric;
pub mod sample;
pub mod store;
mod util;

#[cfg(test)]
mod tests_teacher;
#[cfg(test)]
mod testutil;

use std::path::{Path, PathBuf};

pub use estimate::{
    DryRunInput, Estimate, calibrate, draw_documents, estimate, estimate_with_ratio,
};
pub use label::{LabelConfig, LabelStep};
pub use sample::{SampleConfig, SampleStep};

/// An error of the sample or label step. Every variant names the file, batch or endpoint
/// concerned; none ever contains the API key.
#[derive(Debug, thiserror::Error)]
pub enum LabelError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A parquet file could not be read or written, or lacks a column.
    #[error("{path}: {message}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// An input file (labels to import, reference corpus) is malformed.
    #[error("{path}: {message}")]
    Input {
        /// The file.
        path: PathBuf,
        /// What went wrong, with the line or column.
        message: String,
    },
    /// The rubric prompt file is unusable.
    #[error("rubric {path}: {message}")]
    Rubric {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The answer schema file is unusable.
    #[error("schema {path}: {message}")]
    Schema {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The API refused or kept failing.
    #[error("anthropic API: {0}")]
    Api(#[from] client::ApiError),
    /// Waiting for a batch took longer than `max_batch_wait_s`.
    #[error(
        "batch {batch_id} is still in progress after {waited_s:.0} s; its id is saved in the label store, \
         so running the same command again resumes it without paying twice"
    )]
    BatchWait {
        /// The batch.
        batch_id: String,
        /// Seconds waited.
        waited_s: f64,
    },
    /// A configuration problem found at build time (missing key, no sample step...).
    #[error("{0}")]
    Config(String),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

impl LabelError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        LabelError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

impl From<LabelError> for curate_core::StepError {
    fn from(e: LabelError) -> Self {
        match e {
            LabelError::Io { path, source } => curate_core::StepError::Io { path, source },
            other => curate_core::StepError::Other(other.to_string()),
        }
    }
}
