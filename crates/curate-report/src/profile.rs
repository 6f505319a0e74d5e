//! Distributions the manifest does not hold, measured from the snapshot's own files: document
//! lengths and languages before and after the pipeline, words removed per step and reason, and
//! the kept documents' quality scores.
//!
//! "After" is `data/`; "before" is `data/` plus `excluded/` (every input document is in exactly
//! one of them), so it exists only when the run wrote exclusions. Files are streamed one row
//! group at a time and only integer histograms are kept, so memory does not grow with the
//! snapshot and the result does not depend on how the run was split into tasks.

use std::collections::BTreeMap;
use std::path::Path;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float32Type, Float64Type};
use serde::Serialize;

use crate::ReportError;
use curate_snapshot::FileEntry;

/// Upper bounds (exclusive) of the length bins, in characters; the last bin is open.
pub const LENGTH_EDGES: [u64; 10] = [
    100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000,
];

/// Labels of the length bins.
pub fn length_labels() -> Vec<String> {
    let k = |n: u64| {
        if n >= 1000 {
            format!("{}k", n / 1000)
        } else {
            n.to_string()
        }
    };
    let mut out = vec![format!("<{}", k(LENGTH_EDGES[0]))];
    for w in LENGTH_EDGES.windows(2) {
        out.push(format!("{}–{}", k(w[0]), k(w[1])));
    }
    out.push(format!("≥{}", k(LENGTH_EDGES[LENGTH_EDGES.len() - 1])));
    out
}

fn length_bin(chars: u64) -> usize {
    LENGTH_EDGES.partition_point(|&e| e <= chars)
}

/// Most distinct language values tracked; the rest count as `(other)`.
const MAX_LANGUAGES: usize = 1000;

/// Bins of the kept-score histogram.
pub const SCORE_BINS: usize = 10;

/// A distribution of documents.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Dist {
    /// Documents.
    pub docs: u64,
    /// Characters.
    pub chars: u64,
    /// Whitespace-separated words.
    pub words: u64,
    /// Documents per length bin ([`LENGTH_EDGES`]).
    pub length: Vec<u64>,
    /// Documents per value of the `language` column (`(none)` for nulls).
    pub languages: BTreeMap<String, u64>,
}

impl Dist {
    fn new() -> Dist {
        Dist {
            length: vec![0; LENGTH_EDGES.len() + 1],
            ..Default::default()
        }
    }

    fn merge(&mut self, o: &Dist) {
        self.docs += o.docs;
        self.chars += o.chars;
        self.words += o.words;
        for (a, b) in self.length.iter_mut().zip(&o.length) {
            *a += b;
        }
        for (k, v) in &o.languages {
            add_language(&mut self.languages, k, *v);
        }
    }
}

fn add_language(m: &mut BTreeMap<String, u64>, lang: &str, n: u64) {
    if let Some(c) = m.get_mut(lang) {
        *c += n;
    } else if m.len() < MAX_LANGUAGES {
        m.insert(lang.to_string(), n);
    } else {
        *m.entry("(other)".into()).or_default() += n;
    }
}

/// Documents and words one step removed for one reason (from `excluded/`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Removed {
    /// Step type, as the `step` column holds it.
    pub step: String,
    /// Reason.
    pub reason: String,
    /// Documents.
    pub docs: u64,
    /// Words.
    pub words: u64,
}

/// A histogram of the kept documents' `quality_score`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoreHist {
    /// Lower end of the scale.
    pub lo: f64,
    /// Upper end of the scale.
    pub hi: f64,
    /// Documents per bin ([`SCORE_BINS`] equal bins over `[lo, hi]`; values outside are clamped).
    pub counts: Vec<u64>,
    /// Documents without a score (null or NaN).
    pub missing: u64,
    /// Lowest score kept.
    pub min: Option<f64>,
    /// Highest score kept.
    pub max: Option<f64>,
}

/// What the snapshot's files say.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Profile {
    /// Whether the files have a `language` column.
    pub language_column: bool,
    /// The kept documents.
    pub after: Dist,
    /// Every input document (kept + excluded); `None` without exclusions.
    pub before: Option<Dist>,
    /// Per step and reason (sorted by step type, then reason), from `excluded/`.
    pub removed: Vec<Removed>,
    /// The kept documents' `quality_score`, when the column exists.
    pub kept_scores: Option<ScoreHist>,
}

/// A snapshot file opened for reading some of its columns.
pub(crate) struct Scan {
    file: curate_io::input::InputFile,
    spec: curate_io::read::ReadSpec,
}

impl Scan {
    /// Reads `path`'s footer; only the `columns` that exist in the file will be read.
    pub(crate) fn open(
        path: &Path,
        text_column: &str,
        columns: &[&str],
    ) -> Result<Scan, ReportError> {
        let file = curate_io::inspect::inspect(path, text_column)?;
        let mut present: Vec<String> = columns
            .iter()
            .filter(|c| file.schema.field_with_name(c).is_ok())
            .map(|c| c.to_string())
            .collect();
        // The reader normalises one string column (the "text"); project the first string column
        // asked for, so a scan of ids alone does not read the documents' text.
        let is_string = |c: &String| {
            file.schema.field_with_name(c).is_ok_and(|f| {
                matches!(
                    f.data_type(),
                    DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
                )
            })
        };
        let anchor = match present.iter().find(|c| is_string(c)) {
            Some(c) => c.clone(),
            None => {
                present.push(text_column.to_string());
                text_column.to_string()
            }
        };
        let spec = curate_io::read::ReadSpec {
            text_column: anchor,
            batch_rows: 4096,
            columns: Some(present),
        };
        Ok(Scan { file, spec })
    }

    /// Row groups (a JSONL file counts as one; an empty parquet file has none).
    pub(crate) fn row_groups(&self) -> usize {
        match self.file.format {
            curate_io::input::Format::Parquet => self.file.row_groups.len(),
            curate_io::input::Format::Jsonl(_) => 1,
        }
    }

    /// Calls `f` with every batch of row groups `rgs`.
    pub(crate) fn read(
        &self,
        rgs: std::ops::Range<usize>,
        mut f: impl FnMut(&RecordBatch) -> Result<(), ReportError>,
    ) -> Result<(), ReportError> {
        curate_io::read::read_share(&self.file, rgs, &self.spec, |b, _| f(&b)).map_err(
            |e| match e {
                curate_io::read::ReadError::Io(e) => ReportError::Io(e),
                curate_io::read::ReadError::Sink(e) => e,
            },
        )
    }
}

/// Calls `f` with every batch of `path`, reading only `columns` that exist in the file.
pub(crate) fn scan(
    path: &Path,
    text_column: &str,
    columns: &[&str],
    f: impl FnMut(&RecordBatch) -> Result<(), ReportError>,
) -> Result<(), ReportError> {
    let s = Scan::open(path, text_column, columns)?;
    s.read(0..s.row_groups(), f)
}

fn words(s: &str) -> u64 {
    s.split_whitespace().count() as u64
}

/// Words, lengths and languages of a batch into `d`; with `removed`, also documents and words
/// per (`step`, `reason`) column values.
fn dist_of(batch: &RecordBatch, text_column: &str, d: &mut Dist, removed: Option<&mut RemovedMap>) {
    let Some(text) = batch.column_by_name(text_column) else {
        return;
    };
    let text = text.as_string::<i32>();
    let string_col = |name: &str| {
        batch
            .column_by_name(name)
            .filter(|c| c.data_type() == &DataType::Utf8)
            .map(|c| c.as_string::<i32>())
    };
    let lang = string_col("language");
    let why = removed.and_then(|m| Some((m, string_col("step")?, string_col("reason")?)));
    let mut why = why;
    let mut langs: BTreeMap<&str, u64> = BTreeMap::new();
    for i in 0..batch.num_rows() {
        let t = if text.is_null(i) { "" } else { text.value(i) };
        let chars = t.chars().count() as u64;
        let w = words(t);
        d.docs += 1;
        d.chars += chars;
        d.words += w;
        d.length[length_bin(chars)] += 1;
        if let Some(l) = lang {
            let v = if l.is_null(i) { "(none)" } else { l.value(i) };
            *langs.entry(v).or_default() += 1;
        }
        if let Some((m, step, reason)) = why.as_mut() {
            let key = (step.value(i).to_string(), reason.value(i).to_string());
            let e = m.entry(key).or_default();
            e.0 += 1;
            e.1 += w;
        }
    }
    for (k, v) in langs {
        add_language(&mut d.languages, k, v);
    }
}

/// Documents and words per (step, reason).
type RemovedMap = BTreeMap<(String, String), (u64, u64)>;

/// What one row group contributes.
struct Part {
    kept: bool,
    dist: Dist,
    removed: RemovedMap,
    scores: Option<ScoreHist>,
    language_column: bool,
}

fn scores_of(batch: &RecordBatch, h: &mut ScoreHist) {
    let Some(col) = batch.column_by_name("quality_score") else {
        return;
    };
    let vals: Vec<Option<f64>> = match col.data_type() {
        DataType::Float32 => col
            .as_primitive::<Float32Type>()
            .iter()
            .map(|v| v.map(f64::from))
            .collect(),
        DataType::Float64 => col.as_primitive::<Float64Type>().iter().collect(),
        _ => return,
    };
    // The same bins as the score step's `score_hist_*` counters
    // (`curate_quality::score::score_hist_bin`), which the report draws beside these.
    let width = (h.hi - h.lo) / SCORE_BINS as f64;
    for v in vals {
        match v {
            Some(x) if !x.is_nan() => {
                let b = if width > 0.0 {
                    (((x - h.lo) / width).floor().max(0.0) as usize).min(SCORE_BINS - 1)
                } else {
                    0
                };
                h.counts[b] += 1;
                h.min = Some(h.min.map_or(x, |m| m.min(x)));
                h.max = Some(h.max.map_or(x, |m| m.max(x)));
            }
            _ => h.missing += 1,
        }
    }
}

/// Measures the snapshot at `root` from the files the manifest lists. `scale` is the quality
/// score's range (from the quality metrics), used for the kept-score histogram.
pub fn profile(
    root: &Path,
    text_column: &str,
    outputs: &[FileEntry],
    excluded: &[FileEntry],
    exclusion: bool,
    scale: (f64, f64),
) -> Result<Profile, ReportError> {
    use rayon::prelude::*;
    let empty_hist = ScoreHist {
        lo: scale.0,
        hi: scale.1,
        counts: vec![0; SCORE_BINS],
        missing: 0,
        min: None,
        max: None,
    };
    // One job per row group of every file, run in parallel; the parts are integer histograms
    // (and exact minima and maxima), merged in file order, so the result is the same for any
    // number of threads.
    let kept_cols = [text_column, "language", "quality_score"];
    let dropped_cols = [text_column, "language", "step", "reason"];
    let mut jobs: Vec<(std::sync::Arc<Scan>, usize, bool)> = Vec::new();
    for (files, kept) in [(outputs, true), (excluded, false)] {
        for f in files {
            let cols: &[&str] = if kept { &kept_cols } else { &dropped_cols };
            let s = std::sync::Arc::new(Scan::open(&root.join(&f.path), text_column, cols)?);
            for rg in 0..s.row_groups() {
                jobs.push((s.clone(), rg, kept));
            }
        }
    }
    let parts: Vec<Part> = jobs
        .par_iter()
        .map(|(s, rg, kept)| {
            let mut p = Part {
                kept: *kept,
                dist: Dist::new(),
                removed: RemovedMap::new(),
                scores: None,
                language_column: false,
            };
            s.read(*rg..*rg + 1, |b| {
                p.language_column |= b.column_by_name("language").is_some();
                if *kept {
                    if b.column_by_name("quality_score").is_some() {
                        scores_of(b, p.scores.get_or_insert_with(|| empty_hist.clone()));
                    }
                    dist_of(b, text_column, &mut p.dist, None);
                } else {
                    dist_of(b, text_column, &mut p.dist, Some(&mut p.removed));
                }
                Ok(())
            })?;
            Ok(p)
        })
        .collect::<Result<_, ReportError>>()?;
    let (mut after, mut dropped) = (Dist::new(), Dist::new());
    let mut removed = RemovedMap::new();
    let mut kept_scores: Option<ScoreHist> = None;
    let mut language_column = false;
    for p in parts {
        language_column |= p.language_column;
        if p.kept {
            after.merge(&p.dist);
        } else {
            dropped.merge(&p.dist);
        }
        for (k, (n, w)) in p.removed {
            let e = removed.entry(k).or_default();
            e.0 += n;
            e.1 += w;
        }
        if let Some(h) = p.scores {
            let k = kept_scores.get_or_insert_with(|| empty_hist.clone());
            for (a, b) in k.counts.iter_mut().zip(&h.counts) {
                *a += b;
            }
            k.missing += h.missing;
            k.min = match (k.min, h.min) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            k.max = match (k.max, h.max) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
        }
    }
    let before = exclusion.then(|| {
        let mut b = after.clone();
        b.merge(&dropped);
        b
    });
    Ok(Profile {
        language_column,
        after,
        before,
        removed: removed
            .into_iter()
            .map(|((step, reason), (docs, words))| Removed {
                step,
                reason,
                docs,
                words,
            })
            .collect(),
        kept_scores,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_bins_cover_every_length() {
        assert_eq!(length_bin(0), 0);
        assert_eq!(length_bin(99), 0);
        assert_eq!(length_bin(100), 1);
        assert_eq!(length_bin(99_999), 9);
        assert_eq!(length_bin(100_000), 10);
        assert_eq!(length_labels().len(), LENGTH_EDGES.len() + 1);
        assert_eq!(length_labels()[1], "100–200");
    }

    #[test]
    fn languages_past_the_cap_count_as_other() {
        let mut m = BTreeMap::new();
        for i in 0..MAX_LANGUAGES + 5 {
            add_language(&mut m, &format!("l{i:05}"), 1);
        }
        assert_eq!(m.len(), MAX_LANGUAGES + 1);
        assert_eq!(m["(other)"], 5);
    }
}
