//! The parts of a snapshot manifest this crate reads, as typed views.
//!
//! The manifest type itself belongs to `curate-pipeline` (which calls this crate at finalize);
//! this crate reads the JSON it serializes, so it depends on field names, not on that crate.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A file the manifest lists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileView {
    /// Path relative to the snapshot root.
    pub path: String,
    /// Rows (data and exclusion files).
    #[serde(default)]
    pub rows: Option<u64>,
    /// Size in bytes.
    pub bytes: u64,
    /// xxh3-128 of the content.
    pub xxh3_128: String,
}

/// One input the manifest lists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputView {
    /// Path as configured.
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Content hash.
    pub xxh3_128: String,
}

/// One step's counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepView {
    /// Position.
    pub index: usize,
    /// Step type.
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
    pub counters: BTreeMap<String, f64>,
    /// The step's published stats.
    #[serde(default)]
    pub stats: Option<serde_json::Value>,
}

/// Run totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct TotalsView {
    /// Documents read.
    pub input_rows: u64,
    /// Documents in `data/`.
    pub kept_rows: u64,
    /// Documents dropped by steps.
    pub dropped_rows: u64,
    /// Documents in skipped shards.
    pub skipped_rows: u64,
}

/// The manifest, as far as reports and diffs need it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManifestView {
    /// curate's version.
    pub curate_version: String,
    /// Resolved config.
    pub config: serde_json::Value,
    /// Its fingerprint.
    pub config_fingerprint: String,
    /// Run seed.
    pub seed: u64,
    /// Inputs.
    pub inputs: Vec<InputView>,
    /// Skipped shards.
    #[serde(default)]
    pub skipped: Vec<serde_json::Value>,
    /// Totals.
    pub totals: TotalsView,
    /// Per-step counts.
    pub steps: Vec<StepView>,
    /// Data files.
    pub outputs: Vec<FileView>,
    /// Exclusion files.
    #[serde(default)]
    pub excluded: Vec<FileView>,
    /// Published artefacts.
    #[serde(default)]
    pub artifacts: Vec<FileView>,
}

impl ManifestView {
    /// Reads the view from the manifest's JSON.
    pub fn from_json(v: &serde_json::Value) -> Result<ManifestView, serde_json::Error> {
        ManifestView::deserialize(v)
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

    /// Whether dropped documents were written to `excluded/`.
    pub fn exclusion(&self) -> bool {
        self.config
            .pointer("/output/exclusion")
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
    }

    /// The first step of type `kind`.
    pub fn step(&self, kind: &str) -> Option<&StepView> {
        self.steps.iter().find(|s| s.kind == kind)
    }

    /// The step's config (`config.steps[i]`).
    pub fn step_config(&self, index: usize) -> Option<&serde_json::Value> {
        self.config.pointer(&format!("/steps/{index}"))
    }
}
