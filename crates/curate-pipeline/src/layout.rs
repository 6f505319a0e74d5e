//! Where everything lives in a snapshot directory.
//!
//! ```text
//! <out>/data/part-00000.parquet      kept documents
//! <out>/excluded/part-00000.parquet  dropped documents with `step` and `reason` (exclusion = true)
//! <out>/manifest.json                written last; its presence means the snapshot is complete
//! <out>/stats.json                   per-step counters (also inside the manifest)
//! <out>/run.json                     timings and machine facts (not hashed: they vary by run)
//! <out>/<published>/…                labels/, model/, quality/, dedup/… from steps
//! <out>/.curate/lock                 the run directory's lock (see `lock`)
//! <out>/.curate/state.json           run id, fingerprints of config, inputs and task layout
//! <out>/.curate/done/<run id>/<stage>/<task>.json   completion records
//! <out>/.curate/work/<run id>/pass-N/…     intermediate parts (deleted after success)
//! <out>/.curate/work/<run id>/excluded/…   exclusion parts
//! <out>/.curate/work/<run id>/steps/NN-type/…   step work directories
//! <out>/.curate/logs/<stage>/<task>.out    Slurm task logs
//! ```

use std::path::{Path, PathBuf};

/// Paths of one snapshot directory.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The snapshot root.
    pub root: PathBuf,
    /// The run whose work directory [`work`](Self::work) names (empty: none known yet).
    pub run_id: String,
}

impl Layout {
    /// Layout rooted at `root`, before the run is known.
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
            run_id: String::new(),
        }
    }
    /// Layout of run `run_id` rooted at `root`.
    pub fn for_run(root: &Path, run_id: &str) -> Self {
        Self {
            root: root.to_path_buf(),
            run_id: run_id.to_string(),
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
    /// `.curate/work/`: every run's work directories.
    pub fn work_root(&self) -> PathBuf {
        self.meta().join("work")
    }
    /// `.curate/work/<run id>/`: this run's intermediate files.
    pub fn work(&self) -> PathBuf {
        if self.run_id.is_empty() {
            self.work_root()
        } else {
            self.work_root().join(&self.run_id)
        }
    }
    /// `.curate/done/<run id>/`: this run's completion records (a record of another run is
    /// never taken for one of this run's).
    pub fn done_root(&self) -> PathBuf {
        if self.run_id.is_empty() {
            self.meta().join("done")
        } else {
            self.meta().join("done").join(&self.run_id)
        }
    }
    /// Completion record of a task.
    pub fn done(&self, stage: &str, task: usize) -> PathBuf {
        self.done_root().join(stage).join(format!("{task:06}.json"))
    }
    /// Directory of the kept-documents parts of a pass.
    pub fn pass_dir(&self, pass: usize) -> PathBuf {
        self.work().join(format!("pass-{pass}"))
    }
    /// Kept-documents part of a pass task.
    pub fn part(&self, pass: usize, task: usize) -> PathBuf {
        self.pass_dir(pass).join(format!("part-{task:06}.arrow"))
    }
    /// Directory of the excluded-documents parts.
    pub fn excluded_parts(&self) -> PathBuf {
        self.work().join("excluded")
    }
    /// Excluded-documents part of a pass task.
    pub fn excluded_part(&self, pass: usize, task: usize) -> PathBuf {
        self.excluded_parts()
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
