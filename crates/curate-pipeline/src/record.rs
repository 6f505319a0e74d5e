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

pub use curate_snapshot::Skipped;

/// A written output file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileRecord {
    /// Path relative to the snapshot root.
    pub path: String,
    /// Rows.
    pub rows: u64,
    /// Size in bytes, as the task wrote it.
    #[serde(default)]
    pub bytes: u64,
    /// xxh3-128 of the content as the task wrote it: finalize accepts the file only if it
    /// still has this content (no other writer replaced it).
    #[serde(default)]
    pub xxh3_128: String,
}

/// What a finished task leaves behind.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// The run the task belongs to ([`State::run_id`](crate::state::State::run_id)).
    #[serde(default)]
    pub run_id: String,
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
    /// The whole input shard, when it was skipped whole (`on_error = "skip"` and an error the
    /// reader could not confine to a row group or lines).
    pub skipped: Option<Skipped>,
    /// The units of the shard left out (`on_error = "skip"`): parquet row groups, JSONL lines or
    /// the rest of a JSONL file that could not be read; every other row was read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped_units: Vec<Skipped>,
    /// Files written (assemble).
    pub files: Vec<FileRecord>,
    /// The report's counters of the documents this pass task wrote: kept (last pass) and
    /// excluded. Records of older versions have none; finalize then measures the files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<curate_report::profile::Counts>,
}

impl TaskRecord {
    /// Reads a task's record, if it finished in this layout's run. A record another run left
    /// (a straggler of a run restarted with `--fresh`) is not this run's: `None`.
    pub fn load(layout: &Layout, stage: &str, task: usize) -> Option<TaskRecord> {
        let bytes = std::fs::read(layout.done(stage, task)).ok()?;
        let r: TaskRecord = serde_json::from_slice(&bytes).ok()?;
        (r.run_id == layout.run_id).then_some(r)
    }

    /// Commits the record (atomically).
    pub fn commit(&self, layout: &Layout) -> Result<(), curate_io::IoError> {
        let json = serde_json::to_vec_pretty(self).expect("serializable");
        curate_io::atomic::write_atomic(&layout.done(&self.stage, self.task), &json)
    }
}
