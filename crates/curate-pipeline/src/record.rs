//! Completion records: what a finished task leaves behind, written atomically after its
//! outputs. A task with a record is done; a task without one is (re-)run from scratch.

use std::collections::BTreeMap;

use curate_core::Counters;
use serde::{Deserialize, Serialize};

use crate::layout::Layout;

/// Counts of one step within one task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepCounts {
    /// Documents the step saw.
    pub docs_in: u64,
    /// Documents it kept.
    pub docs_out: u64,
    /// Documents it dropped, by reason.
    pub dropped: BTreeMap<String, u64>,
    /// The step's own counters.
    pub counters: Counters,
}

impl StepCounts {
    /// Adds another task's counts.
    pub fn merge(&mut self, o: &StepCounts) {
        self.docs_in += o.docs_in;
        self.docs_out += o.docs_out;
        for (k, v) in &o.dropped {
            *self.dropped.entry(k.clone()).or_default() += v;
        }
        self.counters.merge(&o.counters);
    }
}

/// An input shard skipped under `on_error = "skip"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    /// The file.
    pub path: String,
    /// Its row groups (parquet) covered by the task.
    pub row_groups: [usize; 2],
    /// Rows lost (from the footer; 0 when unknown).
    pub rows: u64,
    /// The error, with its location.
    pub error: String,
}

/// A written output file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileRecord {
    /// Path relative to the snapshot root.
    pub path: String,
    /// Rows.
    pub rows: u64,
}

/// What a finished task leaves behind.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// Stage name.
    pub stage: String,
    /// Task index.
    pub task: usize,
    /// Documents read.
    pub rows_in: u64,
    /// Documents kept (pass) or written (assemble).
    pub rows_out: u64,
    /// Logical bytes kept.
    pub bytes_out: u64,
    /// Documents written to the exclusion part.
    pub excluded_rows: u64,
    /// Logical bytes of those.
    pub excluded_bytes: u64,
    /// Per-step counts, by step index.
    pub steps: BTreeMap<usize, StepCounts>,
    /// Skipped input shard, if any.
    pub skipped: Option<Skipped>,
    /// Files written (assemble).
    pub files: Vec<FileRecord>,
}

impl TaskRecord {
    /// Reads a task's record, if it finished.
    pub fn load(layout: &Layout, stage: &str, task: usize) -> Option<TaskRecord> {
        let bytes = std::fs::read(layout.done(stage, task)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Commits the record (atomically).
    pub fn commit(&self, layout: &Layout) -> Result<(), curate_io::IoError> {
        let json = serde_json::to_vec_pretty(self).expect("serializable");
        curate_io::atomic::write_atomic(&layout.done(&self.stage, self.task), &json)
    }
}
