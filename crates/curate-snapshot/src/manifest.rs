//! The snapshot manifest: written last, it records everything needed to audit and rebuild the
//! snapshot, and [`verify`](crate::verify::verify) checks a directory against it.
//!
//! The manifest holds no timestamps, host names or thread counts, so the same config and input
//! give the same manifest bytes; run-specific facts go to `run.json`, which is not hashed.
//!
//! These are the only manifest types: the pipeline writes them, the report, `curate snapshot`
//! and steps reading an earlier snapshot read them.

use std::collections::BTreeMap;
use std::path::Path;

use curate_core::Counters;
use curate_io::write::OutputProps;
use serde::{Deserialize, Serialize};

use crate::error::SnapshotError;
use crate::layout::Layout;

/// Manifest format version (2: `content_hash`, `stats.json` listed, every file checked).
pub const FORMAT: u32 = 2;

/// How content hashes of files are computed (the manifest's `hash`).
pub const HASH: &str = "xxh3-128";

/// A file of the snapshot with its content hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Path relative to the snapshot root.
    pub path: String,
    /// Rows (data and exclusion files).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rows: Option<u64>,
    /// Size in bytes.
    pub bytes: u64,
    /// xxh3-128 of the content, hex.
    pub xxh3_128: String,
}

/// An input file as recorded in the run state and the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputEntry {
    /// Path as resolved.
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// xxh3-128 of the content, hex.
    pub xxh3_128: String,
}

/// A file a step read when it was built (a fastText or frozen quality model, a tokenizer, a
/// benchmark, a label or reference file, an earlier snapshot's MinHash index), as recorded in
/// the run state and the manifest: a resumed run refuses when one changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceEntry {
    /// The step's position in the expanded pipeline (as `steps[i]` in messages).
    pub step: usize,
    /// The step's type.
    #[serde(rename = "type")]
    pub kind: String,
    /// The local path (relative to the run's working directory when below it, else absolute),
    /// or the object URL.
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// xxh3-128 of the content, hex.
    pub xxh3_128: String,
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

/// Counts of one step over the whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepSummary {
    /// Position.
    pub index: usize,
    /// Type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Documents in.
    pub docs_in: u64,
    /// Documents kept.
    pub docs_out: u64,
    /// Dropped, by reason.
    #[serde(default)]
    pub dropped: BTreeMap<String, u64>,
    /// The step's counters.
    #[serde(default)]
    pub counters: Counters,
    /// The step's published stats.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub stats: Option<serde_json::Value>,
}

/// Run-wide totals. Invariant: `input_rows = kept_rows + dropped_rows`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Documents read.
    pub input_rows: u64,
    /// Documents in `data/`.
    pub kept_rows: u64,
    /// Documents dropped by steps.
    pub dropped_rows: u64,
    /// Documents in skipped shards (never read).
    pub skipped_rows: u64,
}

/// The snapshot manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version.
    pub format: u32,
    /// curate's version.
    pub curate_version: String,
    /// How content hashes are computed.
    pub hash: String,
    /// Hash scheme of membership decisions (dedup, sampling).
    pub decision_hash_scheme: String,
    /// The resolved config (everything that can change the output).
    pub config: serde_json::Value,
    /// Its fingerprint.
    pub config_fingerprint: String,
    /// The run seed.
    pub seed: u64,
    /// Every input.
    pub inputs: Vec<InputEntry>,
    /// Every file a step read when it was built, by step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<ResourceEntry>,
    /// Input shards skipped under `on_error = "skip"`.
    #[serde(default)]
    pub skipped: Vec<Skipped>,
    /// Parquet writer settings.
    pub writer: OutputProps,
    /// Totals.
    pub totals: Totals,
    /// Per-step counts.
    pub steps: Vec<StepSummary>,
    /// Data files.
    pub outputs: Vec<FileEntry>,
    /// Exclusion files.
    #[serde(default)]
    pub excluded: Vec<FileEntry>,
    /// Files steps published (labels, model, indexes, metrics), the report, the dataset card
    /// and `stats.json`.
    #[serde(default)]
    pub artifacts: Vec<FileEntry>,
    /// xxh3-128 of this manifest serialized with this field empty: a manifest edited by hand
    /// no longer matches it ([`verify`](crate::verify::verify) checks).
    #[serde(default)]
    pub content_hash: String,
}

impl Manifest {
    /// The bytes of `manifest.json` for this manifest (pretty JSON).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("json")
    }

    /// The hash [`content_hash`](Self::content_hash) must hold.
    pub fn compute_content_hash(&self) -> String {
        let mut m = self.clone();
        m.content_hash = String::new();
        curate_core::hash::hex128(xxhash_rust::xxh3::xxh3_128(&m.to_bytes()))
    }

    /// The artefact listed at `rel` (a path of [`artifact`](crate::artifact)), if any.
    pub fn artifact(&self, rel: &str) -> Option<&FileEntry> {
        self.artifacts.iter().find(|a| a.path == rel)
    }

    /// `config.input.text_column` (default `text`).
    pub fn text_column(&self) -> String {
        self.config
            .pointer("/input/text_column")
            .and_then(|v| v.as_str())
            .unwrap_or("text")
            .to_string()
    }

    /// `config.input.id_column`, if set.
    pub fn id_column(&self) -> Option<String> {
        self.config
            .pointer("/input/id_column")
            .and_then(|v| v.as_str())
            .map(String::from)
    }

    /// Whether dropped documents were written to `excluded/` (`config.output.exclusion`).
    pub fn exclusion(&self) -> bool {
        self.config
            .pointer("/output/exclusion")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false)
    }

    /// The first step of type `kind`.
    pub fn step(&self, kind: &str) -> Option<&StepSummary> {
        self.steps.iter().find(|s| s.kind == kind)
    }

    /// The step's config (`config.steps[i]`).
    pub fn step_config(&self, index: usize) -> Option<&serde_json::Value> {
        self.config.pointer(&format!("/steps/{index}"))
    }

    /// Checks the manifest's arithmetic: totals against steps and files, and each step's
    /// counts against its neighbours. Returns every inconsistency (empty = consistent).
    pub fn consistency(&self) -> Vec<String> {
        let mut p = Vec::new();
        let t = &self.totals;
        if t.input_rows != t.kept_rows + t.dropped_rows {
            p.push(format!(
                "totals: {} read != {} kept + {} dropped",
                t.input_rows, t.kept_rows, t.dropped_rows
            ));
        }
        let dropped: u64 = self.steps.iter().flat_map(|s| s.dropped.values()).sum();
        if dropped != t.dropped_rows {
            p.push(format!(
                "totals: {} dropped, but the steps dropped {dropped}",
                t.dropped_rows
            ));
        }
        let written: u64 = self.outputs.iter().filter_map(|f| f.rows).sum();
        if written != t.kept_rows {
            p.push(format!(
                "totals: {} kept, but the data files hold {written} rows",
                t.kept_rows
            ));
        }
        let excluded: u64 = self.excluded.iter().filter_map(|f| f.rows).sum();
        if self.exclusion() && excluded != t.dropped_rows {
            p.push(format!(
                "totals: {} dropped, but the exclusion files hold {excluded} rows",
                t.dropped_rows
            ));
        }
        let skipped: u64 = self.skipped.iter().map(|s| s.rows).sum();
        if skipped != t.skipped_rows {
            p.push(format!(
                "totals: {} rows in skipped shards, but the skipped shards list {skipped}",
                t.skipped_rows
            ));
        }
        let mut expect_in = t.input_rows;
        for s in &self.steps {
            let d: u64 = s.dropped.values().sum();
            if s.docs_in != s.docs_out + d {
                p.push(format!(
                    "steps[{}] ({}): {} in != {} out + {d} dropped",
                    s.index, s.kind, s.docs_in, s.docs_out
                ));
            }
            if s.docs_in != expect_in {
                p.push(format!(
                    "steps[{}] ({}): {} in, but {expect_in} reached it",
                    s.index, s.kind, s.docs_in
                ));
            }
            expect_in = s.docs_out;
        }
        if expect_in != t.kept_rows {
            p.push(format!(
                "totals: {} kept, but the last step kept {expect_in}",
                t.kept_rows
            ));
        }
        let n = self
            .config
            .pointer("/steps")
            .and_then(|v| v.as_array())
            .map(Vec::len);
        if let Some(n) = n
            && n != self.steps.len()
        {
            p.push(format!(
                "the config has {n} step(s) but the manifest counts {}",
                self.steps.len()
            ));
        }
        p
    }
}

/// The bytes of `stats.json` for a manifest: its totals and per-step counts, for tools that
/// want only those.
pub fn stats_json(m: &Manifest) -> Vec<u8> {
    let stats = serde_json::json!({ "totals": m.totals, "steps": m.steps });
    serde_json::to_vec_pretty(&stats).expect("json")
}

/// Reads a snapshot's manifest.
pub fn load(dir: &Path) -> Result<Manifest, SnapshotError> {
    let path = Layout::new(dir).manifest();
    let bytes = std::fs::read(&path).map_err(|source| SnapshotError::NotASnapshot {
        path: path.clone(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| SnapshotError::InvalidManifest { path, source })
}

/// The entry of a file of the snapshot at `root`: its size and xxh3-128 (`rows` as given).
pub fn entry(root: &Path, rel: &str, rows: Option<u64>) -> Result<FileEntry, curate_io::IoError> {
    let (bytes, h) = curate_io::hash::hash_file(&root.join(rel))?;
    Ok(FileEntry {
        path: rel.to_string(),
        rows,
        bytes,
        xxh3_128: curate_core::hash::hex128(h),
    })
}
