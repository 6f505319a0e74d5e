//! Streaming I/O for curate: every byte of corpus data enters and leaves through this crate.
//!
//! - [`input`]: resolves paths and globs into a sorted list of input files;
//! - [`inspect`]: reads their footers (row-group counts) or first JSONL lines, never their data;
//! - [`read`]: streams one task's share of an input (a range of parquet row groups, or a whole
//!   JSONL file) as Arrow batches with a Utf8 text column, naming file and row group (or line)
//!   in every error;
//! - [`part`]: intermediate Arrow IPC part files between passes;
//! - [`write`]: zstd parquet output with explicit writer properties;
//! - [`store`]: `s3://bucket/key` locations (S3-compatible object storage): listing, ranged
//!   parquet reads, streamed downloads, whole-object uploads and create-only PUTs;
//! - [`atomic`]: temp file in the same directory → fsync → rename (one temp-name scheme);
//! - [`hash`]: content hashes (xxh3-128) of files, objects and bytes.

pub mod atomic;
pub mod error;
pub mod hash;
pub mod input;
pub mod inspect;
pub mod part;
pub mod read;
pub mod store;
pub mod write;

pub use error::IoError;
