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
