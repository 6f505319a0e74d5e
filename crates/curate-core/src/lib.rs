//! The data model every curate step shares.
//!
//! A document is a row of an Arrow [`RecordBatch`](arrow::record_batch::RecordBatch): a text
//! column, an optional id column, any other columns (carried through untouched) and a stable
//! 64-bit [`DocKey`](batch::DocKey). Steps see documents a [`DocBatch`] at a time and record
//! their decisions in it (drop with a reason, rewrite the text, add a column); the pipeline crate
//! turns those decisions into output, exclusion rows and counters.
//!
//! This crate holds only the shared vocabulary: the batch type, the [`Step`] traits, seeded stable
//! hashes, counters and the config-problem list. Capability crates (filters, dedup, label,
//! quality) depend on it and on nothing of each other.
//!
//! # Example
//!
//! What the pipeline hands a step and what it does with the step's decisions:
//!
//! ```
//! use std::sync::Arc;
//! use arrow::array::{RecordBatch, StringArray, UInt64Array};
//! use arrow::datatypes::{DataType, Field, Schema};
//! use curate_core::batch::{doc_key, split_key};
//! use curate_core::{DocBatch, hash};
//!
//! let schema = Arc::new(Schema::new(vec![Field::new("text", DataType::Utf8, false)]));
//! let texts = StringArray::from(vec!["keep me", "spam spam spam", "keep me too"]);
//! let record = RecordBatch::try_new(schema, vec![Arc::new(texts)]).unwrap();
//! // documents are rows 10, 11 and 12 of the run's input file number 3
//! let keys = UInt64Array::from_iter_values((10..13).map(|row| doc_key(3, row)));
//! assert_eq!(split_key(keys.value(0)), (3, 10));
//! let mut batch = DocBatch::new(record, 0, None, keys);
//!
//! // a step drops what it rejects, with the index of one of its declared reasons
//! for i in 0..batch.len() {
//!     if batch.text(i).starts_with("spam") {
//!         batch.drop_row(i, 0);
//!     }
//! }
//! let (kept, reasons, dropped) = batch.split(true);
//! assert_eq!(kept.len(), 2);
//! assert_eq!(reasons, [0]);
//! assert_eq!(dropped.unwrap().text(0), "spam spam spam");
//!
//! // persisted and membership hashes: seeded xxh3, the same on every platform and release
//! let seed = hash::derive_seed(42, "sample");
//! assert_eq!(hash::h64(b"keep me", seed), hash::h64(b"keep me", seed));
//! assert!((0.0..1.0).contains(&hash::unit(hash::h64(b"keep me", seed))));
//! ```

pub mod batch;
pub mod columns;
pub mod config;
pub mod hash;
pub mod resource;
pub mod step;

pub use batch::{DocBatch, DocKey};
pub use config::{Problem, Problems, StepSpec};
pub use step::{
    Barrier, BuildEnv, Counters, Observer, Processor, StageContext, StageSpec, Step, StepError,
    TaskContext,
};
