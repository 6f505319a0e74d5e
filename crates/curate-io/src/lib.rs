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
//!
//! # Example
//!
//! Write a parquet file, inspect it (footer only) and stream it back by row group:
//!
//! ```
//! use std::sync::Arc;
//! use arrow::array::{RecordBatch, StringArray};
//! use arrow::datatypes::{DataType, Field, Schema};
//! use curate_io::{inspect, read, write};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("docs.parquet");
//! let schema = Arc::new(Schema::new(vec![Field::new("text", DataType::Utf8, false)]));
//! let texts = StringArray::from(vec!["one document", "another", "a third"]);
//! let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(texts)])?;
//!
//! // zstd parquet, two rows per row group, written to a temp file and renamed into place
//! let props = write::OutputProps {
//!     zstd_level: 3,
//!     row_group_rows: 2,
//!     data_page_bytes: 1 << 20,
//!     created_by: "doc example".into(),
//! };
//! let mut sink = write::ParquetSink::create(&path, schema, &props)?;
//! sink.write(batch)?;
//! sink.finish()?;
//!
//! let file = inspect::inspect(&path, "text")?; // reads the footer, not the data
//! assert_eq!((file.rows(), file.row_groups.len()), (3, 2));
//!
//! let spec = read::ReadSpec {
//!     text_column: "text".into(),
//!     batch_rows: 1024,
//!     columns: None,
//!     flatten: Vec::new(),
//! };
//! let mut seen = Vec::new();
//! // row group 1 only: a task's share of the file
//! read::read_share(&file, 1..2, &spec, |batch, first_row| {
//!     seen.push((first_row, batch.num_rows()));
//!     Ok::<(), String>(())
//! })
//! .map_err(|e| e.to_string())?;
//! assert_eq!(seen, [(2, 1)]); // the third document, row 2 of the file
//!
//! // what the manifest records of a file: its size and the xxh3-128 of its bytes
//! let (size, hash) = curate_io::hash::hash_file(&path)?;
//! let bytes = std::fs::read(&path)?;
//! assert_eq!((size, hash), (bytes.len() as u64, curate_io::hash::hash_bytes(&bytes)));
//! # Ok(())
//! # }
//! ```

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
