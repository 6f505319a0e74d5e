//! Paths of the artefacts steps publish into a snapshot, relative to its root.
//!
//! The step that writes an artefact and every reader (the report, a later run's `score` or
//! `dedup` step reading an earlier snapshot) name it by these constants, never by a literal.

/// The labels the `label` step collected (one row per labelled document).
pub const LABELS: &str = "labels/labels.parquet";
/// The `label` step's statistics.
pub const LABEL_STATS: &str = "labels/stats.json";
/// The quality student the `train` step fitted (its bytes; `score` reads it).
pub const MODEL: &str = "model/model.bin";
/// The student's header (format, features, calibration) as JSON.
pub const MODEL_HEADER: &str = "model/model.json";
/// The student's held-out metrics.
pub const QUALITY_METRICS: &str = "quality/metrics.json";
/// The directory of the MinHash dedup index (`against` reads it).
pub const MINHASH_DIR: &str = "dedup/minhash";
/// The MinHash dedup index's description.
pub const MINHASH_INDEX: &str = "dedup/minhash/index.json";
/// The MinHash index's survivor names: keys.
pub const MINHASH_NAMES_KEYS: &str = "dedup/minhash/names.keys";
/// The MinHash index's survivor names: bytes.
pub const MINHASH_NAMES_BIN: &str = "dedup/minhash/names.bin";
/// The report page.
pub const REPORT: &str = "report.html";
/// The dataset card.
pub const CARD: &str = "README.md";
/// Totals and per-step counts (also in the manifest).
pub const STATS: &str = "stats.json";

/// `dedup/minhash/<name>`: a file of the MinHash index.
pub fn minhash_file(name: &str) -> String {
    format!("{MINHASH_DIR}/{name}")
}
