//! Errors of reading a snapshot.

use std::path::PathBuf;

/// Errors of opening, reading or checking a snapshot.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// `manifest.json` could not be read: the directory is not a finished snapshot.
    #[error("{}: {source} (is this a finished curate snapshot?)", .path.display())]
    NotASnapshot {
        /// The manifest's path.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// `manifest.json` is not a manifest.
    #[error("{}: not a valid manifest: {source}", .path.display())]
    InvalidManifest {
        /// The manifest's path.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
    /// A file of the snapshot could not be read or hashed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The located I/O error.
        source: curate_io::IoError,
    },
    /// A snapshot location that cannot be used (a malformed `s3://` URL).
    #[error("{location}: {why}")]
    Location {
        /// The location as given.
        location: String,
        /// What is wrong with it.
        why: String,
    },
    /// A file a task reads from an earlier stage is not there.
    #[error("{location}: missing; {why}")]
    Missing {
        /// The file or object.
        location: String,
        /// What should have produced it.
        why: String,
    },
}
