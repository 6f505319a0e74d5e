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
//! <out>/.curate/holders/…            readers and writers holding the lock
//! ```
//!
//! Paths relative to the root are constants here ([`DATA_DIR`], [`MANIFEST`], …); the
//! artefacts steps publish are in [`crate::artifact`].

use std::path::{Path, PathBuf};

/// `data/`: the kept documents.
pub const DATA_DIR: &str = "data";
/// `excluded/`: the dropped documents (with `[output] exclusion`).
pub const EXCLUDED_DIR: &str = "excluded";
/// `manifest.json`, written last.
pub const MANIFEST: &str = "manifest.json";
/// `run.json`: timings and machine facts, not hashed.
pub const RUN: &str = "run.json";
/// `stats.json`: the manifest's totals and per-step counts.
pub const STATS: &str = crate::artifact::STATS;
/// `.curate/`: the run's own state, not part of the snapshot.
pub const META_DIR: &str = ".curate";
/// `.curate/state.json`.
pub const STATE: &str = ".curate/state.json";
/// `.curate/lock`.
pub const LOCK: &str = ".curate/lock";
/// `.curate/clearing`: present while `--fresh` clears the directory (written first, removed
/// last), so a run after an interrupted `--fresh` knows the directory is half cleared.
pub const CLEARING: &str = ".curate/clearing";
/// `.curate/work`: every run's work directories.
pub const WORK_DIR: &str = ".curate/work";
/// `.curate/done`: every run's completion records.
pub const DONE_DIR: &str = ".curate/done";

/// Whether `rel` (relative to the root, `/`-separated) lies under the directory `dir`
/// (relative too, e.g. [`WORK_DIR`]).
pub fn is_under(rel: &str, dir: &str) -> bool {
    rel.strip_prefix(dir).is_some_and(|r| r.starts_with('/'))
}

/// Whether a top-level entry of a snapshot is one the manifest does not list: the manifest
/// itself, `run.json` and `.curate/`.
pub fn is_unlisted(rel: &str) -> bool {
    rel == MANIFEST || rel == RUN || rel == META_DIR
}

/// Paths a curate run writes into its snapshot root whatever its steps: data, exclusions, the
/// manifest, the run's state, the report, card and stats, and the published artefacts (labels,
/// model, quality metrics, dedup index; `tokens/` is `curate_tokens::TOKENS_DIR`, a crate this
/// one does not depend on).
const OWNED: &[&str] = &[
    DATA_DIR,
    EXCLUDED_DIR,
    MANIFEST,
    RUN,
    META_DIR,
    crate::artifact::REPORT,
    crate::artifact::CARD,
    crate::artifact::STATS,
    crate::artifact::LABELS,
    crate::artifact::MODEL,
    crate::artifact::QUALITY_METRICS,
    crate::artifact::MINHASH_DIR,
    "tokens",
];

/// Whether the top-level entry `name` of a snapshot root is one a curate run writes: the first
/// component of one of the layout's paths, or of a path the snapshot's manifest (`manifest`, its
/// bytes if any) lists. Anything else was put there by someone else, and `--fresh` must not
/// delete it.
pub fn is_owned_top_level(name: &str, manifest: Option<&crate::Manifest>) -> bool {
    let listed = manifest.into_iter().flat_map(|m| {
        m.outputs
            .iter()
            .chain(&m.excluded)
            .chain(&m.artifacts)
            .map(|f| f.path.as_str())
    });
    OWNED
        .iter()
        .copied()
        .chain(listed)
        .any(|p| p.split('/').next() == Some(name))
}

/// Whether `rel` (relative to the root, `/`-separated) is a data file (`data/…`).
pub fn is_data(rel: &str) -> bool {
    is_under(rel, DATA_DIR)
}

/// Whether `rel` lies under `.curate/`.
pub fn is_meta(rel: &str) -> bool {
    is_under(rel, META_DIR)
}

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
        self.root.join(META_DIR)
    }
    /// `.curate/lock`: the run directory's lock file.
    pub fn lock(&self) -> PathBuf {
        self.root.join(LOCK)
    }
    /// `.curate/holders/`: who holds the lock.
    pub fn holders(&self) -> PathBuf {
        self.meta().join("holders")
    }
    /// `.curate/logs/`: Slurm task logs.
    pub fn logs(&self) -> PathBuf {
        self.meta().join("logs")
    }
    /// `.curate/state.json`.
    pub fn state(&self) -> PathBuf {
        self.root.join(STATE)
    }
    /// `run.json`.
    pub fn run_json(&self) -> PathBuf {
        self.root.join(RUN)
    }
    /// `stats.json`.
    pub fn stats(&self) -> PathBuf {
        self.root.join(STATS)
    }
    /// `.curate/work/`: every run's work directories.
    pub fn work_root(&self) -> PathBuf {
        self.root.join(WORK_DIR)
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
            self.root.join(DONE_DIR)
        } else {
            self.root.join(DONE_DIR).join(&self.run_id)
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
        self.root
            .join(DATA_DIR)
            .join(format!("part-{k:05}.parquet"))
    }
    /// An exclusion file.
    pub fn excluded_file(&self, k: usize) -> PathBuf {
        self.root
            .join(EXCLUDED_DIR)
            .join(format!("part-{k:05}.parquet"))
    }
    /// `manifest.json`.
    pub fn manifest(&self) -> PathBuf {
        self.root.join(MANIFEST)
    }
    /// `p` relative to the root, with `/` separators (the form [`Storage`] and the manifest
    /// use); a path outside the root is returned whole.
    ///
    /// [`Storage`]: crate::storage::Storage
    pub fn rel(&self, p: &Path) -> String {
        p.strip_prefix(&self.root)
            .unwrap_or(p)
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/")
    }
}
