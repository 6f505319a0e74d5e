//! I/O errors that always say which file (and row group or line) they concern.

use std::path::PathBuf;

/// Where in an input an error happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// The file as a whole (open, footer, metadata).
    File,
    /// A parquet row group.
    RowGroup(usize),
    /// A 1-based line of a JSONL file.
    Line(u64),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::File => Ok(()),
            Location::RowGroup(rg) => write!(f, ", row group {rg}"),
            Location::Line(l) => write!(f, ", line {l}"),
        }
    }
}

/// An I/O or format error, located.
#[derive(Debug, thiserror::Error)]
pub enum IoError {
    /// The operating system refused (missing file, permissions, disk full...).
    #[error("{path}{at}: {source}")]
    Os {
        /// The file.
        path: PathBuf,
        /// Where in it.
        at: Location,
        /// The OS error.
        source: std::io::Error,
    },
    /// The bytes are not what the format requires (corrupt parquet, bad JSON, non-UTF-8...).
    #[error("{path}{at}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// Where in it.
        at: Location,
        /// What is wrong.
        message: String,
    },
    /// Object storage failed or refused (missing bucket or object, credentials, network).
    #[error("{path}{at}: {message}")]
    Remote {
        /// The object (`s3://bucket/key`).
        path: PathBuf,
        /// Where in it.
        at: Location,
        /// What the server or client said.
        message: String,
    },
    /// A required column is missing or has the wrong type.
    #[error("{path}: column `{column}`: {message}")]
    Column {
        /// The file.
        path: PathBuf,
        /// The column.
        column: String,
        /// What is wrong.
        message: String,
    },
}

impl IoError {
    /// An OS error on a whole file.
    pub fn os(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        IoError::Os {
            path: path.into(),
            at: Location::File,
            source,
        }
    }

    /// A format error.
    pub fn format(path: impl Into<PathBuf>, at: Location, message: impl std::fmt::Display) -> Self {
        IoError::Format {
            path: path.into(),
            at,
            message: message.to_string(),
        }
    }

    /// Whether this is a failure to reach or read object storage (network, credentials, a
    /// vanished object) rather than a problem with the data: such errors are never a reason to
    /// skip a shard under `on_error = "skip"`.
    pub fn is_transport(&self) -> bool {
        match self {
            IoError::Remote { .. } => true,
            IoError::Os { source, .. } => source
                .get_ref()
                .and_then(|e| e.downcast_ref::<IoError>())
                .is_some_and(IoError::is_transport),
            _ => false,
        }
    }

    /// The error as a path and an OS error, for crates whose own errors carry those: an OS
    /// error on a whole file as it is, anything else as an error of kind `Other` carrying this
    /// error's message.
    pub fn into_os(self) -> (PathBuf, std::io::Error) {
        match self {
            IoError::Os {
                path,
                at: Location::File,
                source,
            } => (path, source),
            e => (e.path().to_path_buf(), std::io::Error::other(e.to_string())),
        }
    }

    /// The file the error concerns.
    pub fn path(&self) -> &std::path::Path {
        match self {
            IoError::Os { path, .. }
            | IoError::Format { path, .. }
            | IoError::Column { path, .. }
            | IoError::Remote { path, .. } => path,
        }
    }
}

/// A step's error from a located I/O error: an OS error on a whole file keeps its path and
/// kind ([`StepError::Io`]); a format or column error is the data's ([`StepError::Data`]); the
/// rest (object storage, an OS error inside a row group or line) keep their whole message.
impl From<IoError> for curate_core::StepError {
    fn from(e: IoError) -> Self {
        use curate_core::StepError;
        match e {
            IoError::Os {
                path,
                at: Location::File,
                source,
            } => StepError::Io { path, source },
            e @ (IoError::Format { .. } | IoError::Column { .. }) => StepError::Data(e.to_string()),
            e => StepError::Other(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_errors_are_told_from_data_errors() {
        let remote = || IoError::Remote {
            path: "s3://b/k.jsonl".into(),
            at: Location::File,
            message: "connection reset".into(),
        };
        assert!(remote().is_transport());
        // what a streamed object read surfaces through `std::io::Read` (and the decoders)
        let wrapped = IoError::Os {
            path: "s3://b/k.jsonl".into(),
            at: Location::Line(7),
            source: std::io::Error::other(remote()),
        };
        assert!(wrapped.is_transport());
        let corrupt = IoError::Os {
            path: "s3://b/k.jsonl.gz".into(),
            at: Location::Line(7),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, "corrupt deflate stream"),
        };
        assert!(!corrupt.is_transport());
        assert!(!IoError::format("x.parquet", Location::RowGroup(1), "bad page").is_transport());
    }
}
