//! curate's cheap local quality model: learn a fastText-class student from teacher labels,
//! calibrate and evaluate it on held-out labels, and score every document.
//!
//! Steps (one file each):
//! - [`train`]: a barrier; its observer collects labelled rows (`teacher_score`, `split`) as
//!   hashed features, its global stages fit the student ([`fit`]), calibrate it ([`calibrate`])
//!   and evaluate it ([`metrics`]); it publishes `model/` and `quality/metrics.json`.
//! - [`score`]: adds a calibrated Float32 `quality_score` to every document using the model of
//!   the nearest preceding `train` step; keeps by threshold or by exact top fraction.
//! - [`combine`]: several score or bucket columns into one (max bucket, mean, weighted mean).
//! - [`threshold`]: re-applies a keep rule to an existing `quality_score` column without the
//!   model (the rethreshold step; [`threshold::rethreshold`] is the library function behind the
//!   command).
//!
//! The model ([`model::Model`]) reads a bag of hashed word features ([`features`]) and learnt
//! shape functions of document properties ([`doc`]), with a linear, logistic or ordinal head, a
//! strictly increasing calibration ([`calibrate`]) and a versioned, self-describing,
//! deterministic file format. [`student`] holds the training algorithm (model selection, fit,
//! calibration, evaluation).

use std::path::{Path, PathBuf};

use curate_core::StepError;

pub mod calibrate;
pub mod combine;
pub mod doc;
pub mod features;
pub mod fit;
pub mod keep;
pub mod metrics;
pub mod model;
pub mod score;
pub mod store;
pub mod student;
pub mod threshold;
pub mod tokens;
pub mod train;

pub use keep::Keep;
pub use model::Model;
pub use score::ScoreConfig;
pub use threshold::QualityThresholdConfig;
pub use train::TrainConfig;

/// Errors of the quality crate; each names the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A model file is malformed or of another version.
    #[error("{path}: {message}")]
    Model {
        /// The model file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A work file (observations, cut) is malformed.
    #[error("{path}: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

impl From<Error> for StepError {
    fn from(e: Error) -> Self {
        match e {
            Error::Io { path, source } => StepError::Io { path, source },
            other => StepError::Data(other.to_string()),
        }
    }
}

/// Writes `bytes` to `path` atomically (curate-io's one atomic writer).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    curate_io::atomic::write_atomic(path, bytes).map_err(Error::from)
}

impl From<curate_io::IoError> for Error {
    fn from(e: curate_io::IoError) -> Self {
        let (path, source) = e.into_os();
        Error::Io { path, source }
    }
}
