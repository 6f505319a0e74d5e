//! The snapshot format, owned in one place.
//!
//! A snapshot is a directory (see [`layout`]): `data/` and `excluded/` parquet files, the
//! artefacts steps publish ([`artifact`]), `report.html`, `README.md`, `stats.json`, and
//! `manifest.json`, written last, whose presence means the snapshot is complete. The run's own
//! bookkeeping lives under `.curate/` and is not part of the snapshot.
//!
//! This crate defines:
//!
//! - [`layout::Layout`]: every path of a snapshot directory and of a run's work under `.curate/`;
//! - [`artifact`]: the paths of published artefacts (`model/model.bin`, `labels/labels.parquet`,
//!   …), as constants the writer and every reader share;
//! - [`manifest::Manifest`]: the manifest's types (one set, read by the pipeline, the report
//!   and `curate snapshot`), its content hash and its arithmetic check;
//! - [`verify::verify`] and [`verify::digest`]: checking a directory against its manifest;
//! - [`storage::Storage`]: where a snapshot's files live (a local directory, or an `s3://`
//!   prefix worked on through a local mirror), and the fetch / push / commit points of a task;
//! - [`Snapshot`]: a finished snapshot opened for reading another run's artefact (a frozen
//!   model, a dedup index), checked against the hash its manifest lists.
//!
//! It sits above `curate-io` and below the steps' crates that read other snapshots, the
//! pipeline (which writes snapshots) and the report (which reads them).

pub mod artifact;
pub mod error;
pub mod layout;
pub mod manifest;
pub mod open;
pub mod storage;
pub mod verify;

pub use error::SnapshotError;
pub use layout::Layout;
pub use manifest::{FileEntry, InputEntry, Manifest, ResourceEntry, Skipped, StepSummary, Totals};
pub use open::Snapshot;
pub use storage::Storage;
pub use verify::{digest, verify};
