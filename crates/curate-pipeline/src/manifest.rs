//! The snapshot manifest, as the pipeline sees it: its types, content hash, `verify` and the
//! digest belong to `curate-snapshot` (re-exported here, with errors as [`PipelineError`]);
//! the finalize task that writes it runs beside assemble, in `exec`.

use std::path::Path;

use crate::error::PipelineError;

pub use curate_snapshot::manifest::{
    FORMAT, FileEntry, HASH, Manifest, StepSummary, Totals, stats_json,
};

/// Reads a snapshot's manifest.
pub fn load(dir: &Path) -> Result<Manifest, PipelineError> {
    Ok(curate_snapshot::manifest::load(dir)?)
}

/// Checks a snapshot against its manifest ([`curate_snapshot::verify`]); returns every problem
/// (empty = verified).
pub fn verify(dir: &Path) -> Result<(Manifest, Vec<String>), PipelineError> {
    Ok(curate_snapshot::verify(dir)?)
}

/// xxh3-128 of the manifest file, hex: one digest for the whole snapshot.
pub fn digest(dir: &Path) -> Result<String, PipelineError> {
    Ok(curate_snapshot::digest(dir)?)
}
