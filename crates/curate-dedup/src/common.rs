//! Pieces both dedup steps share: the survivor rule, per-document priorities, the observer
//! manifests and the removed-document files the processors read.

use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Float64Type};
use curate_core::{DocBatch, Problems, StepError};
use serde::{Deserialize, Serialize};

use crate::runs::{KeyCursor, Record, u64_at, write_atomic};

/// Which document of a duplicate group survives.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Keep {
    /// The document with the smallest stable document key (input order): deterministic for any
    /// task or thread count.
    #[default]
    Smallest,
    /// The document with the highest value in `score_column` (compared at f32 precision; nulls
    /// and NaN rank last), ties broken by the smallest document key.
    Highest,
}

/// Checks the keep rule and score column are consistent.
pub(crate) fn validate_keep(keep: Keep, score_column: &Option<String>, problems: &mut Problems) {
    match (keep, score_column) {
        (Keep::Highest, None) => problems.push_hint(
            "score_column",
            "keep = \"highest\" needs a score column",
            "set score_column = \"<numeric column>\" or use keep = \"smallest\"",
        ),
        (Keep::Highest, Some(c)) if c.is_empty() => {
            problems.push("score_column", "must not be empty")
        }
        (Keep::Smallest, Some(_)) => problems.push_hint(
            "score_column",
            "score_column is only used with keep = \"highest\"",
            "remove it or set keep = \"highest\"",
        ),
        _ => {}
    }
}

/// Fills `out` with one priority per row (smaller = better survivor): all 0 for
/// [`Keep::Smallest`] (the document key then decides), the inverted order-preserving bits of the
/// With [`Keep::Highest`], the score column must be numeric where the step runs.
pub fn need_score_column(
    c: &mut curate_core::columns::Columns<'_>,
    keep: Keep,
    score_column: &Option<String>,
) {
    if let (Keep::Highest, Some(name)) = (keep, score_column) {
        c.need("score_column", name, curate_core::columns::Want::Numeric);
    }
}

/// f32 score for [`Keep::Highest`].
pub(crate) fn priorities(
    batch: &DocBatch,
    keep: Keep,
    score_column: Option<&str>,
    out: &mut Vec<u32>,
) -> Result<(), StepError> {
    out.clear();
    let (Keep::Highest, Some(name)) = (keep, score_column) else {
        out.resize(batch.len(), 0);
        return Ok(());
    };
    let col = batch.column(name).ok_or_else(|| {
        StepError::Data(format!(
            "score column `{name}` not found in the input batch"
        ))
    })?;
    let col = if col.data_type() == &DataType::Float64 {
        col.clone()
    } else {
        arrow::compute::cast(col, &DataType::Float64)
            .map_err(|e| StepError::Data(format!("score column `{name}` is not numeric: {e}")))?
    };
    let v = col.as_primitive::<Float64Type>();
    for i in 0..v.len() {
        out.push(if v.is_null(i) {
            u32::MAX
        } else {
            score_priority(v.value(i))
        });
    }
    Ok(())
}

/// Priority of a score: higher scores give smaller priorities; NaN ranks last.
pub fn score_priority(s: f64) -> u32 {
    let f = s as f32;
    if f.is_nan() {
        return u32::MAX;
    }
    let bits = f.to_bits();
    let ord = if bits & 0x8000_0000 != 0 {
        !bits
    } else {
        bits | 0x8000_0000
    };
    !ord
}

/// A document in a duplicate group, as written by the cluster / group stages: sorted by key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct NodeRec {
    /// The document.
    pub key: u64,
    /// The key of its group's survivor (its cluster id).
    pub root: u64,
    /// [`KEPT`], [`REMOVED`] or [`REMOVED_AGAINST`].
    pub status: u8,
}

/// The survivor of a group.
pub const KEPT: u8 = 0;
/// A duplicate of another document of this run.
pub const REMOVED: u8 = 1;
/// A duplicate of a document of an earlier snapshot.
pub const REMOVED_AGAINST: u8 = 2;

impl Record for NodeRec {
    const SIZE: usize = 17;
    fn encode(&self, out: &mut [u8]) {
        out[..8].copy_from_slice(&self.key.to_le_bytes());
        out[8..16].copy_from_slice(&self.root.to_le_bytes());
        out[16] = self.status;
    }
    fn decode(b: &[u8]) -> Self {
        NodeRec {
            key: u64_at(b, 0),
            root: u64_at(b, 8),
            status: b[16],
        }
    }
}

/// Looks up the documents of a task's batches in one or more sorted node files.
pub(crate) struct NodeLookup {
    cursors: Vec<KeyCursor>,
}

impl NodeLookup {
    pub(crate) fn open(paths: &[PathBuf]) -> Result<Self, StepError> {
        let mut cursors = Vec::with_capacity(paths.len());
        for p in paths {
            if !p.exists() {
                return Err(StepError::Other(format!(
                    "{}: missing dedup stage output (did the barrier stages run?)",
                    p.display()
                )));
            }
            cursors.push(KeyCursor::open(p, NodeRec::SIZE)?);
        }
        Ok(Self { cursors })
    }

    /// The node record of `key` and the index of the file holding it, if the document is in a
    /// duplicate group.
    pub(crate) fn get(&mut self, key: u64) -> Result<Option<(usize, NodeRec)>, StepError> {
        for (i, c) in self.cursors.iter_mut().enumerate() {
            if let Some(b) = c.find(key)? {
                return Ok(Some((i, NodeRec::decode(b))));
            }
        }
        Ok(None)
    }
}

/// What an observer task left behind: its run files (relative to the step dir).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct ObserverManifest {
    pub runs: Vec<String>,
    pub documents: u64,
}

pub(crate) fn manifest_path(dir: &Path, task: usize) -> PathBuf {
    dir.join("observe").join(format!("task-{task:05}.json"))
}

pub(crate) fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<(), StepError> {
    let bytes = serde_json::to_vec_pretty(v)
        .map_err(|e| StepError::Other(format!("{}: {e}", path.display())))?;
    write_atomic(path, |w| std::io::Write::write_all(w, &bytes))
}

pub(crate) fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, StepError> {
    let bytes = std::fs::read(path).map_err(|e| StepError::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| StepError::Data(format!("{}: {e}", path.display())))
}

/// Reads every observer manifest of the pass before the barrier.
pub(crate) fn read_manifests(
    dir: &Path,
    observed_tasks: usize,
) -> Result<Vec<ObserverManifest>, StepError> {
    (0..observed_tasks)
        .map(|t| read_json(&manifest_path(dir, t)))
        .collect()
}

/// Removes leftovers of an earlier, interrupted attempt of the same observer task.
pub(crate) fn clear_task_files(dir: &Path, prefix: &str) -> Result<(), StepError> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for e in rd.flatten() {
        if e.file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(prefix))
        {
            std::fs::remove_file(e.path()).map_err(|err| StepError::io(e.path(), err))?;
        }
    }
    Ok(())
}

/// Cluster-size histogram rendered with string keys (sizes) for JSON.
pub(crate) type Histogram = std::collections::BTreeMap<u64, u64>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_priorities_order() {
        let p = |s: f64| score_priority(s);
        assert!(p(2.0) < p(1.0));
        assert!(p(0.5) < p(-0.5));
        assert!(p(-0.5) < p(-3.0));
        assert!(p(-3.0) < p(f64::NAN));
        assert_eq!(p(1.0), p(1.0));
    }
}
