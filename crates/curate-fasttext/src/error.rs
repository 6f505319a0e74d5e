//! Why a model could not be loaded.

use std::path::PathBuf;

/// A model file that cannot be used, and why. Offsets are byte positions in the file.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The model file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A problem with the contents of a named file.
    #[error("{path}: {source}")]
    File {
        /// The model file.
        path: PathBuf,
        /// What is wrong with it.
        source: Box<LoadError>,
    },
    /// The file does not start with fastText's magic number.
    #[error(
        "not a fastText model: it starts with {found:#010x}, not fastText's magic number \
         {MAGIC:#010x} ({MAGIC})"
    )]
    Magic {
        /// The first four bytes, little-endian.
        found: u32,
    },
    /// A format version this reader does not know.
    #[error(
        "fastText model format version {0} is not supported (this reader knows versions 11 and 12)"
    )]
    Version(i32),
    /// The file ends before the model does.
    #[error(
        "truncated model: the file ends at byte {len}, but reading {what} needs {need} byte(s) \
         from byte {offset}"
    )]
    Truncated {
        /// The part being read.
        what: &'static str,
        /// Where it starts.
        offset: usize,
        /// How many bytes it needs.
        need: usize,
        /// The file's length.
        len: usize,
    },
    /// A value that no fastText model can have.
    #[error("invalid model: {what}: {detail}")]
    Invalid {
        /// The field.
        what: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// Bytes left over after the output matrix.
    #[error("invalid model: {0} byte(s) after the end of the output matrix")]
    Trailing(usize),
    /// A word-vector model (cbow / skipgram), which has no labels to predict.
    #[error(
        "not a classifier: the model was trained as `{0}` (word vectors); only supervised models \
         predict labels"
    )]
    NotSupervised(&'static str),
}

/// fastText's file magic number (`FASTTEXT_FILEFORMAT_MAGIC_INT32`).
pub const MAGIC: u32 = 793_712_314;

impl LoadError {
    pub(crate) fn invalid(what: &'static str, detail: impl Into<String>) -> Self {
        LoadError::Invalid {
            what,
            detail: detail.into(),
        }
    }

    /// Attaches the file name.
    pub(crate) fn in_file(self, path: impl Into<PathBuf>) -> Self {
        LoadError::File {
            path: path.into(),
            source: Box::new(self),
        }
    }
}
