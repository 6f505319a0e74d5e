//! A snapshot's human side: `report.html` (one self-contained page of inline SVG charts),
//! `README.md` (a dataset card with Hugging Face front matter), and [`diff`] of two snapshots.
//!
//! The pipeline calls [`write`] at finalize, after every data file and artefact is in place
//! and before the manifest hashes them, so both files are listed and verified like any other.
//! Everything here is drawn from the typed manifest ([`curate_snapshot::Manifest`]), the
//! counters the run gathered as it wrote the documents ([`profile::Counts`]; without them, the
//! snapshot's own files), with fixed number formats and sorted maps: the same snapshot gives
//! byte-identical pages.
//!
//! ```no_run
//! let dir = std::path::Path::new("out/quickstart");
//! let manifest = curate_snapshot::manifest::load(dir)?;
//! let written = curate_report::write(dir, &manifest)?;
//! assert_eq!(written, ["README.md", "report.html"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod card;
pub mod charts;
pub mod diff;
pub mod labels;
pub mod profile;
pub mod report;
pub mod training;

use std::path::Path;

pub use curate_snapshot::Manifest;
use curate_snapshot::artifact;

/// The report's file name in the snapshot.
pub const REPORT_FILE: &str = artifact::REPORT;
/// The dataset card's file name in the snapshot.
pub const CARD_FILE: &str = artifact::CARD;
/// Where the student's metrics are published.
pub const METRICS_FILE: &str = artifact::QUALITY_METRICS;

/// Errors while reading a snapshot for a report or a diff.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A snapshot file could not be read (names the file and row group).
    #[error(transparent)]
    Io(#[from] curate_io::IoError),
    /// The manifest does not have the shape this version expects.
    #[error("{path}: not a manifest this version of curate can read: {message}")]
    Manifest {
        /// The manifest.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A JSON artefact could not be read.
    #[error("{path}: {message}")]
    Artifact {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// The dataset's display name: `[output.card] name`, else "curate snapshot" (never the
/// directory's name, which would make the same run's report differ between directories).
pub fn display_name(m: &Manifest) -> String {
    card::CardFields::from_manifest(m)
        .name
        .unwrap_or_else(|| "curate snapshot".into())
}

fn read_metrics(root: &Path, m: &Manifest) -> Result<Option<serde_json::Value>, ReportError> {
    if !m.artifacts.iter().any(|a| a.path == METRICS_FILE) {
        return Ok(None);
    }
    let p = root.join(METRICS_FILE);
    let bytes = std::fs::read(&p).map_err(|e| ReportError::Io(curate_io::IoError::os(&p, e)))?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| ReportError::Artifact {
            path: p.display().to_string(),
            message: e.to_string(),
        })
}

/// Reads everything a report needs from the snapshot at `root`, whose manifest (possibly not
/// yet written) is `manifest`.
pub fn gather(root: &Path, manifest: &Manifest) -> Result<report::Inputs, ReportError> {
    gather_counted(root, manifest, None)
}

/// [`gather`], with the profile's counters as the run gathered them ([`profile::Counts`]): the
/// data and exclusion files are then not read. Without counters, or when their kept scores were
/// binned over another scale than the quality metrics give, the files are measured instead.
pub fn gather_counted(
    root: &Path,
    manifest: &Manifest,
    counts: Option<profile::Counts>,
) -> Result<report::Inputs, ReportError> {
    let m = manifest.clone();
    let metrics = read_metrics(root, &m)?;
    let scale = report::score_scale(metrics.as_ref());
    let profile = match counts {
        Some(c) if c.score_scale().is_none_or(|s| s == scale) => c.into_profile(m.exclusion()),
        _ => profile::profile(
            root,
            &m.text_column(),
            &m.outputs,
            &m.excluded,
            m.exclusion(),
            scale,
        )?,
    };
    let labels = if m.artifacts.iter().any(|a| a.path == labels::LABELS_FILE) {
        labels::read(root)?
    } else {
        None
    };
    let name = display_name(&m);
    Ok(report::Inputs {
        manifest: m,
        profile,
        labels,
        metrics,
        name,
    })
}

/// The data files' columns (from the first data file's footer).
fn columns(root: &Path, i: &report::Inputs) -> Result<Vec<String>, ReportError> {
    let Some(f) = i.manifest.outputs.first() else {
        return Ok(Vec::new());
    };
    let file = curate_io::inspect::inspect(&root.join(&f.path), &i.manifest.text_column())?;
    Ok(file
        .schema
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect())
}

/// Renders `report.html` and `README.md` for the snapshot at `root`.
pub fn render(root: &Path, manifest: &Manifest) -> Result<(String, String), ReportError> {
    render_counted(root, manifest, None)
}

/// [`render`] from the run's counters ([`gather_counted`]).
pub fn render_counted(
    root: &Path,
    manifest: &Manifest,
    counts: Option<profile::Counts>,
) -> Result<(String, String), ReportError> {
    let i = gather_counted(root, manifest, counts)?;
    let html = report::render(&i);
    let cols = columns(root, &i)?;
    let card = card::render(&i.manifest, &i.profile, &i.name, &cols);
    Ok((html, card))
}

/// Writes `README.md` and `report.html` into the snapshot (atomically) and returns their paths
/// relative to `root`, sorted.
pub fn write(root: &Path, manifest: &Manifest) -> Result<Vec<String>, ReportError> {
    write_counted(root, manifest, None)
}

/// [`write`] from the run's counters ([`gather_counted`]): what finalize calls.
pub fn write_counted(
    root: &Path,
    manifest: &Manifest,
    counts: Option<profile::Counts>,
) -> Result<Vec<String>, ReportError> {
    let (html, card) = render_counted(root, manifest, counts)?;
    curate_io::atomic::write_atomic(&root.join(CARD_FILE), card.as_bytes())?;
    curate_io::atomic::write_atomic(&root.join(REPORT_FILE), html.as_bytes())?;
    Ok(vec![CARD_FILE.to_string(), REPORT_FILE.to_string()])
}
