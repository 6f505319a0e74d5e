//! Where everything lives in a snapshot directory.
//!
//! ```text
//! <out>/data/part-00000.parquet      kept documents
//! <out>/excluded/part-00000.parquet  dropped documents with `step` and `reason` (exclusion = true)
//! <out>/manifest.json                written last; its presence means the snapshot is complete
//! <out>/stats.json                   per-step counters (also inside the manifest)
//! <out>/run.json                     timings and machine facts (not hashed: they vary by run)
//! <out>/<published>/…                labels/, model/, quality/, dedup/… from steps
//! <out>/.curate/state.json           fingerprints of config, inputs and task layout (resume)
//! <out>/.curate/done/<stage>/<task>.json   completion records
//! <out>/.curate/work/…               intermediate parts (deleted after success)
//! <out>/.curate/steps/NN-type/…      step work directories
//! ```

use std::path::{Path, PathBuf};

/// Paths of one snapshot directory.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The snapshot root.
    pub root: PathBuf,
}

impl Layout {
    /// Layout rooted at `root`.
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
        }
    }
    /// `.curate/`.
    pub fn meta(&self) -> PathBuf {
        self.root.join(".curate")
    }
    /// `.curate/state.json`.
    pub fn state(&self) -> PathBuf {
        self.meta().join("state.json")
    }
    /// `.curate/work/`.
    pub fn work(&self) -> PathBuf {
        self.meta().join("work")
    }
    /// Completion record of a task.
    pub fn done(&self, stage: &str, task: usize) -> PathBuf {
        self.meta()
            .join("done")
            .join(stage)
            .join(format!("{task:06}.json"))
    }
    /// Kept-documents part of a pass task.
    pub fn part(&self, pass: usize, task: usize) -> PathBuf {
        self.work()
            .join(format!("pass-{pass}"))
            .join(format!("part-{task:06}.arrow"))
    }
    /// Excluded-documents part of a pass task.
    pub fn excluded_part(&self, pass: usize, task: usize) -> PathBuf {
        self.work()
            .join("excluded")
            .join(format!("pass-{pass}-{task:06}.arrow"))
    }
    /// A data file.
    pub fn data_file(&self, k: usize) -> PathBuf {
        self.root.join("data").join(format!("part-{k:05}.parquet"))
    }
    /// An exclusion file.
    pub fn excluded_file(&self, k: usize) -> PathBuf {
        self.root
            .join("excluded")
            .join(format!("part-{k:05}.parquet"))
    }
    /// `manifest.json`.
    pub fn manifest(&self) -> PathBuf {
        self.root.join("manifest.json")
    }
}
