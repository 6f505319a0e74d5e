//! What changed between two snapshots: config, inputs, per-step counts, which documents were
//! added or removed, and how the kept documents' quality scores moved.
//!
//! Documents are matched by the configured id column when both snapshots have the same one, else
//! by a hash of their text. Counts are of documents, not of distinct keys: when a key occurs
//! `a` times in A and `b` times in B, `min(a, b)` of its documents are in both and the rest are
//! added or removed (the first occurrences in file order are the matched ones). Documents
//! without a key (a null id or text) cannot be matched and are counted apart. Memory: 8 bytes
//! per document of each snapshot (a sorted key hash) plus 4 bytes per scored document; examples
//! are found in a second pass.

use std::collections::BTreeMap;
use std::path::Path;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float32Type, Float64Type};
use serde::Serialize;

use crate::ReportError;
use curate_snapshot::{InputEntry, Manifest, Totals};

/// A count in A and in B.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Delta {
    /// In A.
    pub a: u64,
    /// In B.
    pub b: u64,
    /// `b - a`.
    pub delta: i64,
}

impl Delta {
    fn new(a: u64, b: u64) -> Delta {
        Delta {
            a,
            b,
            delta: b as i64 - a as i64,
        }
    }
}

/// A config value that differs (`None`: absent on that side).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfigChange {
    /// JSON path, e.g. `steps[11].keep.top_fraction`.
    pub path: String,
    /// Value in A.
    pub a: Option<serde_json::Value>,
    /// Value in B.
    pub b: Option<serde_json::Value>,
}

/// Inputs that differ.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct InputsDiff {
    /// Only in B.
    pub added: Vec<InputEntry>,
    /// Only in A.
    pub removed: Vec<InputEntry>,
    /// Same path, different content: `[A, B]`.
    pub changed: Vec<[InputEntry; 2]>,
}

/// Totals in A and B.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TotalsDiff {
    /// Documents read.
    pub input_rows: Delta,
    /// Documents kept.
    pub kept_rows: Delta,
    /// Documents dropped.
    pub dropped_rows: Delta,
    /// Documents in skipped shards.
    pub skipped_rows: Delta,
}

/// One step position in A and B.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepDiff {
    /// Position.
    pub index: usize,
    /// Step type in A (`None`: A has fewer steps).
    pub type_a: Option<String>,
    /// Step type in B.
    pub type_b: Option<String>,
    /// Documents in.
    pub docs_in: Delta,
    /// Documents kept.
    pub docs_out: Delta,
    /// Dropped, per reason (reasons of either side).
    pub dropped: BTreeMap<String, Delta>,
}

impl StepDiff {
    /// Whether any count differs.
    pub fn changed(&self) -> bool {
        self.type_a != self.type_b
            || self.docs_in.delta != 0
            || self.docs_out.delta != 0
            || self.dropped.values().any(|d| d.delta != 0)
    }
}

/// Kept documents matched across the snapshots. Every count is of documents: `in_a = common +
/// removed + unkeyed_a` and `in_b = common + added + unkeyed_b`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DocsDiff {
    /// What identifies a document: `id column "…"` or `text hash`.
    pub key: String,
    /// Documents in A.
    pub in_a: u64,
    /// Documents in B.
    pub in_b: u64,
    /// Distinct keys in A (less than `in_a` when keys repeat).
    pub distinct_a: u64,
    /// Distinct keys in B.
    pub distinct_b: u64,
    /// Documents of A without a key (null id or text): never matched.
    pub unkeyed_a: u64,
    /// Documents of B without a key.
    pub unkeyed_b: u64,
    /// Documents in both (per key, the smaller of its counts in A and B).
    pub common: u64,
    /// Documents in B only.
    pub added: u64,
    /// Documents in A only.
    pub removed: u64,
    /// Some added documents (id, or the start of the text), in B's order.
    pub added_examples: Vec<String>,
    /// Some removed documents, in A's order.
    pub removed_examples: Vec<String>,
}

/// Summary of one side's kept scores.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoreSummary {
    /// Scored documents.
    pub n: u64,
    /// Mean.
    pub mean: f64,
    /// Minimum.
    pub min: f64,
    /// 10th percentile.
    pub p10: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// Maximum.
    pub max: f64,
}

/// How the kept documents' `quality_score` moved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoreShift {
    /// A's scores (`None`: no scores).
    pub a: Option<ScoreSummary>,
    /// B's scores.
    pub b: Option<ScoreSummary>,
    /// Two-sample Kolmogorov–Smirnov statistic (largest gap between the two CDFs), when both
    /// sides have scores.
    pub ks: Option<f64>,
    /// Bin edges of the histograms.
    pub edges: Vec<f64>,
    /// A's documents per bin.
    pub hist_a: Vec<u64>,
    /// B's documents per bin.
    pub hist_b: Vec<u64>,
}

/// Everything that differs between snapshots A and B.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diff {
    /// No difference in config, inputs, counts, data files or artefacts.
    pub identical: bool,
    /// Every data file has the same name and content hash.
    pub same_data: bool,
    /// Config values that differ.
    pub config: Vec<ConfigChange>,
    /// Inputs that differ.
    pub inputs: InputsDiff,
    /// Totals.
    pub totals: TotalsDiff,
    /// Per step position (all of them; see [`StepDiff::changed`]).
    pub steps: Vec<StepDiff>,
    /// Kept documents.
    pub documents: DocsDiff,
    /// Kept scores.
    pub scores: Option<ScoreShift>,
    /// Student metrics (AUC, F1, ECE, ...) that differ: `[A, B]`.
    pub student: BTreeMap<String, [Option<f64>; 2]>,
}

fn flatten(prefix: &str, v: &serde_json::Value, out: &mut BTreeMap<String, serde_json::Value>) {
    match v {
        serde_json::Value::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&p, x, out);
            }
        }
        serde_json::Value::Array(a) if !a.is_empty() => {
            for (i, x) in a.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), x, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.clone());
        }
    }
}

/// Config values that differ, by JSON path. A step whose type differs (or that one side does
/// not have) is one change, `steps[i]`, holding both whole steps.
pub fn config_changes(a: &serde_json::Value, b: &serde_json::Value) -> Vec<ConfigChange> {
    let (mut fa, mut fb) = (BTreeMap::new(), BTreeMap::new());
    flatten("", a, &mut fa);
    flatten("", b, &mut fb);
    let steps = |v: &serde_json::Value| v.get("steps").and_then(|s| s.as_array()).cloned();
    let (sa, sb) = (steps(a).unwrap_or_default(), steps(b).unwrap_or_default());
    let mut whole = Vec::new();
    for i in 0..sa.len().max(sb.len()) {
        let (x, y) = (sa.get(i), sb.get(i));
        let kind = |s: Option<&serde_json::Value>| s.and_then(|s| s.get("type")).cloned();
        if kind(x) != kind(y) {
            let p = format!("steps[{i}]");
            let inside = |k: &String| k == &p || k.starts_with(&format!("{p}."));
            fa.retain(|k, _| !inside(k));
            fb.retain(|k, _| !inside(k));
            whole.push(ConfigChange {
                path: p,
                a: x.cloned(),
                b: y.cloned(),
            });
        }
    }
    let keys: std::collections::BTreeSet<&String> = fa.keys().chain(fb.keys()).collect();
    let mut out: Vec<ConfigChange> = keys
        .into_iter()
        .filter(|k| fa.get(*k) != fb.get(*k))
        .map(|k| ConfigChange {
            path: k.clone(),
            a: fa.get(k).cloned(),
            b: fb.get(k).cloned(),
        })
        .collect();
    out.extend(whole);
    out.sort_by_cached_key(|c| path_order(&c.path));
    out
}

/// Sort key of a JSON path with array indices compared as numbers (`steps[2]` < `steps[10]`).
fn path_order(p: &str) -> String {
    let mut o = String::with_capacity(p.len() + 16);
    let mut num = String::new();
    let mut in_index = false;
    for ch in p.chars() {
        match ch {
            '[' => {
                in_index = true;
                o.push(ch);
            }
            ']' if in_index => {
                o.push_str(&format!("{num:0>12}"));
                num.clear();
                in_index = false;
                o.push(ch);
            }
            c if in_index => num.push(c),
            c => o.push(c),
        }
    }
    o
}

fn inputs_diff(a: &[InputEntry], b: &[InputEntry]) -> InputsDiff {
    let ma: BTreeMap<&str, &InputEntry> = a.iter().map(|i| (i.path.as_str(), i)).collect();
    let mb: BTreeMap<&str, &InputEntry> = b.iter().map(|i| (i.path.as_str(), i)).collect();
    let mut d = InputsDiff::default();
    for (p, ia) in &ma {
        match mb.get(p) {
            None => d.removed.push((*ia).clone()),
            Some(ib) if ib.xxh3_128 != ia.xxh3_128 || ib.bytes != ia.bytes => {
                d.changed.push([(*ia).clone(), (*ib).clone()])
            }
            Some(_) => {}
        }
    }
    for (p, ib) in &mb {
        if !ma.contains_key(p) {
            d.added.push((*ib).clone());
        }
    }
    d
}

fn totals_diff(a: &Totals, b: &Totals) -> TotalsDiff {
    TotalsDiff {
        input_rows: Delta::new(a.input_rows, b.input_rows),
        kept_rows: Delta::new(a.kept_rows, b.kept_rows),
        dropped_rows: Delta::new(a.dropped_rows, b.dropped_rows),
        skipped_rows: Delta::new(a.skipped_rows, b.skipped_rows),
    }
}

fn steps_diff(a: &Manifest, b: &Manifest) -> Vec<StepDiff> {
    let n = a.steps.len().max(b.steps.len());
    (0..n)
        .map(|i| {
            let (sa, sb) = (a.steps.get(i), b.steps.get(i));
            let reasons: std::collections::BTreeSet<&String> = sa
                .iter()
                .flat_map(|s| s.dropped.keys())
                .chain(sb.iter().flat_map(|s| s.dropped.keys()))
                .collect();
            let dropped = reasons
                .into_iter()
                .map(|r| {
                    let g = |s: Option<&curate_snapshot::StepSummary>| {
                        s.and_then(|s| s.dropped.get(r)).copied().unwrap_or(0)
                    };
                    (r.clone(), Delta::new(g(sa), g(sb)))
                })
                .collect();
            StepDiff {
                index: i,
                type_a: sa.map(|s| s.kind.clone()),
                type_b: sb.map(|s| s.kind.clone()),
                docs_in: Delta::new(sa.map_or(0, |s| s.docs_in), sb.map_or(0, |s| s.docs_in)),
                docs_out: Delta::new(sa.map_or(0, |s| s.docs_out), sb.map_or(0, |s| s.docs_out)),
                dropped,
            }
        })
        .collect()
}

impl DocsDiff {
    /// Whether some key is shared by several documents of one side.
    pub fn keys_repeat(&self) -> bool {
        self.distinct_a + self.unkeyed_a < self.in_a || self.distinct_b + self.unkeyed_b < self.in_b
    }
}

/// What one snapshot's kept documents look like to the diff.
struct Side {
    /// The key hash of every keyed document, sorted (repeats kept).
    keys: Vec<u64>,
    /// Documents without a key.
    unkeyed: u64,
    scores: Vec<f32>,
    has_scores: bool,
}

impl Side {
    fn distinct(&self) -> u64 {
        self.keys.chunk_by(|a, b| a == b).count() as u64
    }
}

/// The column documents are matched by: the id column, or `None` for the text.
fn key_column(a: &Manifest, b: &Manifest) -> Option<String> {
    match (a.id_column(), b.id_column()) {
        (Some(x), Some(y)) if x == y => Some(x),
        _ => None,
    }
}

const KEY_SEED: u64 = 0x6375_7261_7465_6466; // "curatedf"

fn row_key(batch: &RecordBatch, col: &str, i: usize) -> Option<(u64, String)> {
    let c = batch.column_by_name(col)?;
    let s = match c.data_type() {
        DataType::Utf8 => {
            let a = c.as_string::<i32>();
            (!a.is_null(i)).then(|| a.value(i).to_string())?
        }
        DataType::LargeUtf8 => {
            let a = c.as_string::<i64>();
            (!a.is_null(i)).then(|| a.value(i).to_string())?
        }
        _ => arrow::util::display::array_value_to_string(c, i).ok()?,
    };
    Some((
        xxhash_rust::xxh3::xxh3_64_with_seed(s.as_bytes(), KEY_SEED),
        s,
    ))
}

fn scores_of(batch: &RecordBatch) -> Option<Vec<f32>> {
    let c = batch.column_by_name("quality_score")?;
    let v = match c.data_type() {
        DataType::Float32 => c.as_primitive::<Float32Type>().iter().flatten().collect(),
        DataType::Float64 => c
            .as_primitive::<Float64Type>()
            .iter()
            .flatten()
            .map(|v| v as f32)
            .collect(),
        _ => return None,
    };
    Some(v)
}

fn read_side(root: &Path, m: &Manifest, key: &str) -> Result<Side, ReportError> {
    let text = m.text_column();
    let mut side = Side {
        keys: Vec::with_capacity(m.totals.kept_rows as usize),
        unkeyed: 0,
        scores: Vec::new(),
        has_scores: false,
    };
    for f in &m.outputs {
        crate::profile::scan(&root.join(&f.path), &text, &[key, "quality_score"], |b| {
            for i in 0..b.num_rows() {
                match row_key(b, key, i) {
                    Some((h, _)) => side.keys.push(h),
                    None => side.unkeyed += 1,
                }
            }
            if let Some(s) = scores_of(b) {
                side.has_scores = true;
                side.scores.extend(s.into_iter().filter(|v| !v.is_nan()));
            }
            Ok(())
        })?;
    }
    side.keys.sort_unstable();
    side.scores.sort_by(f32::total_cmp);
    Ok(side)
}

/// The first `n` unmatched documents of `m` (in file order): `wanted` holds, sorted by key hash,
/// each key with unmatched documents and how many of its first occurrences are matched.
fn examples(
    root: &Path,
    m: &Manifest,
    key: &str,
    wanted: &[(u64, u64)],
    n: usize,
) -> Result<Vec<String>, ReportError> {
    let mut out = Vec::new();
    if wanted.is_empty() || n == 0 {
        return Ok(out);
    }
    // occurrences seen so far of each wanted key
    let mut seen = vec![0u64; wanted.len()];
    let text = m.text_column();
    for f in &m.outputs {
        if out.len() >= n {
            break;
        }
        crate::profile::scan(&root.join(&f.path), &text, &[key], |b| {
            for i in 0..b.num_rows() {
                if out.len() >= n {
                    break;
                }
                if let Some((h, s)) = row_key(b, key, i)
                    && let Ok(w) = wanted.binary_search_by_key(&h, |x| x.0)
                {
                    seen[w] += 1;
                    if seen[w] > wanted[w].1 {
                        out.push(if key == text { snippet(&s) } else { s });
                    }
                }
            }
            Ok(())
        })?;
    }
    Ok(out)
}

/// Two sorted multisets of key hashes, matched.
#[derive(Debug, Default, PartialEq)]
struct Matched {
    /// Documents in both.
    common: u64,
    /// Per key with documents only in B: (key, its documents matched in A, its documents only
    /// in B), sorted by key.
    added: Vec<(u64, u64, u64)>,
    /// The same for A.
    removed: Vec<(u64, u64, u64)>,
}

impl Matched {
    /// (key, matched occurrences to pass over) for [`examples`].
    fn wanted(&self, side: &[(u64, u64, u64)]) -> Vec<(u64, u64)> {
        side.iter().map(|&(k, skip, _)| (k, skip)).collect()
    }
}

/// Matches the documents of `a` and `b` (sorted key hashes, repeats kept): per key, the smaller
/// count is common and the rest added or removed.
fn match_keys(a: &[u64], b: &[u64]) -> Matched {
    let mut m = Matched::default();
    let (mut ga, mut gb) = (
        a.chunk_by(|x, y| x == y).peekable(),
        b.chunk_by(|x, y| x == y).peekable(),
    );
    loop {
        let (x, y) = (ga.peek().map(|g| g[0]), gb.peek().map(|g| g[0]));
        let (na, nb) = match (x, y) {
            (None, None) => break,
            (Some(x), Some(y)) if x == y => (
                ga.next().expect("peeked").len(),
                gb.next().expect("peeked").len(),
            ),
            (Some(x), Some(y)) if x < y => (ga.next().expect("peeked").len(), 0),
            (Some(_), None) => (ga.next().expect("peeked").len(), 0),
            _ => (0, gb.next().expect("peeked").len()),
        };
        let key = match (x, y) {
            (Some(x), Some(y)) => x.min(y),
            (Some(x), None) => x,
            (None, Some(y)) => y,
            (None, None) => unreachable!(),
        };
        let (na, nb) = (na as u64, nb as u64);
        let both = na.min(nb);
        m.common += both;
        if na > both {
            m.removed.push((key, both, na - both));
        }
        if nb > both {
            m.added.push((key, both, nb - both));
        }
    }
    m
}

fn snippet(s: &str) -> String {
    let one: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() > 60 {
        format!("{}…", one.chars().take(60).collect::<String>())
    } else {
        one
    }
}

fn summary(s: &[f32]) -> Option<ScoreSummary> {
    if s.is_empty() {
        return None;
    }
    let q = |p: f64| s[((s.len() - 1) as f64 * p).round() as usize] as f64;
    Some(ScoreSummary {
        n: s.len() as u64,
        mean: s.iter().map(|&v| v as f64).sum::<f64>() / s.len() as f64,
        min: s[0] as f64,
        p10: q(0.1),
        p50: q(0.5),
        p90: q(0.9),
        max: s[s.len() - 1] as f64,
    })
}

/// Two-sample KS statistic of two sorted samples.
fn ks(a: &[f32], b: &[f32]) -> f64 {
    let (mut i, mut j, mut d) = (0usize, 0usize, 0f64);
    while i < a.len() && j < b.len() {
        let x = if a[i] <= b[j] { a[i] } else { b[j] };
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / a.len() as f64 - j as f64 / b.len() as f64).abs());
    }
    d
}

fn hist(s: &[f32], lo: f64, hi: f64, bins: usize) -> Vec<u64> {
    let mut h = vec![0; bins];
    let w = (hi - lo) / bins as f64;
    for &v in s {
        let b = (((v as f64 - lo) / w).floor().max(0.0) as usize).min(bins - 1);
        h[b] += 1;
    }
    h
}

fn student(a: &Manifest, b: &Manifest) -> BTreeMap<String, [Option<f64>; 2]> {
    let get = |m: &Manifest, k: &str| {
        m.step("train")
            .and_then(|s| s.stats.as_ref())
            .and_then(|v| v.get(k))
            .and_then(|v| v.as_f64())
    };
    ["auc", "f1", "accuracy", "spearman", "ece", "ece_raw"]
        .iter()
        .filter_map(|k| {
            let (x, y) = (get(a, k), get(b, k));
            (x != y).then(|| (k.to_string(), [x, y]))
        })
        .collect()
}

fn load_manifest(dir: &Path) -> Result<Manifest, ReportError> {
    let p = curate_snapshot::Layout::new(dir).manifest();
    let bytes = std::fs::read(&p).map_err(|e| ReportError::Io(curate_io::IoError::os(&p, e)))?;
    serde_json::from_slice(&bytes).map_err(|e| ReportError::Manifest {
        path: p.display().to_string(),
        message: e.to_string(),
    })
}

/// Compares snapshot directories `a` and `b`, listing up to `examples_n` added and removed
/// documents.
pub fn diff(a: &Path, b: &Path, examples_n: usize) -> Result<Diff, ReportError> {
    let (ma, mb) = (load_manifest(a)?, load_manifest(b)?);
    let config = config_changes(&ma.config, &mb.config);
    let inputs = inputs_diff(&ma.inputs, &mb.inputs);
    let totals = totals_diff(&ma.totals, &mb.totals);
    let steps = steps_diff(&ma, &mb);
    let files = |m: &Manifest| -> Vec<(String, String)> {
        m.outputs
            .iter()
            .map(|f| (f.path.clone(), f.xxh3_128.clone()))
            .collect()
    };
    let same_data = files(&ma) == files(&mb);
    let art = |m: &Manifest| -> Vec<(String, String)> {
        m.artifacts
            .iter()
            .chain(&m.excluded)
            .map(|f| (f.path.clone(), f.xxh3_128.clone()))
            .collect()
    };

    let id = key_column(&ma, &mb);
    let (key_a, key_b, key_name) = match &id {
        Some(c) => (c.clone(), c.clone(), format!("id column \"{c}\"")),
        None => (ma.text_column(), mb.text_column(), "text hash".to_string()),
    };
    let sa = read_side(a, &ma, &key_a)?;
    let sb = read_side(b, &mb, &key_b)?;
    let m = match_keys(&sa.keys, &sb.keys);
    let documents = DocsDiff {
        key: key_name,
        in_a: sa.keys.len() as u64 + sa.unkeyed,
        in_b: sb.keys.len() as u64 + sb.unkeyed,
        distinct_a: sa.distinct(),
        distinct_b: sb.distinct(),
        unkeyed_a: sa.unkeyed,
        unkeyed_b: sb.unkeyed,
        common: m.common,
        added: m.added.iter().map(|&(_, _, n)| n).sum(),
        removed: m.removed.iter().map(|&(_, _, n)| n).sum(),
        added_examples: examples(b, &mb, &key_b, &m.wanted(&m.added), examples_n)?,
        removed_examples: examples(a, &ma, &key_a, &m.wanted(&m.removed), examples_n)?,
    };
    let scores = (sa.has_scores || sb.has_scores).then(|| {
        let (lo, hi) = (
            0.0,
            1.0f64
                .max(sa.scores.last().copied().unwrap_or(0.0) as f64)
                .max(sb.scores.last().copied().unwrap_or(0.0) as f64),
        );
        let bins = 10;
        ScoreShift {
            a: summary(&sa.scores),
            b: summary(&sb.scores),
            ks: (!sa.scores.is_empty() && !sb.scores.is_empty())
                .then(|| ks(&sa.scores, &sb.scores)),
            edges: (0..=bins)
                .map(|k| lo + (hi - lo) * k as f64 / bins as f64)
                .collect(),
            hist_a: hist(&sa.scores, lo, hi, bins),
            hist_b: hist(&sb.scores, lo, hi, bins),
        }
    });
    let student = student(&ma, &mb);
    let identical = config.is_empty()
        && inputs == InputsDiff::default()
        && ma.totals == mb.totals
        && steps.iter().all(|s| !s.changed())
        && same_data
        && art(&ma) == art(&mb)
        && student.is_empty();
    Ok(Diff {
        identical,
        same_data,
        config,
        inputs,
        totals,
        steps,
        documents,
        scores,
        student,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn config_changes_name_the_path() {
        let a = json!({"steps": [{"type": "score", "keep": {"top_fraction": 0.3}}], "run": {"seed": 1}});
        let b = json!({"steps": [{"type": "score", "keep": {"top_fraction": 0.5}}, {"type": "length"}], "run": {"seed": 1}});
        let c = config_changes(&a, &b);
        let paths: Vec<&str> = c.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, ["steps[0].keep.top_fraction", "steps[1]"]);
        assert_eq!(c[1].a, None);
        assert_eq!(c[1].b, Some(json!({"type": "length"})));
        assert!(config_changes(&a, &a).is_empty());
        // A different step in the same place is one change, not one per option.
        let d = json!({"steps": [{"type": "length", "min_words": 5}], "run": {"seed": 2}});
        let c = config_changes(&a, &d);
        let paths: Vec<&str> = c.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, ["run.seed", "steps[0]"]);
        let mut ps = vec!["steps[10].a", "steps[2]", "steps[1].b", "input.x"];
        ps.sort_by_key(|p| path_order(p));
        assert_eq!(ps, ["input.x", "steps[1].b", "steps[2]", "steps[10].a"]);
    }

    #[test]
    fn documents_are_counted_with_their_repeats() {
        // 60 documents sharing 6 keys in A, 6 documents in B: 6 in both, 54 removed
        let a: Vec<u64> = (0..60).map(|i| i % 6).collect::<Vec<_>>();
        let mut a = a;
        a.sort_unstable();
        let b: Vec<u64> = (0..6).collect();
        let m = match_keys(&a, &b);
        assert_eq!(m.common, 6);
        assert_eq!(m.removed.iter().map(|r| r.2).sum::<u64>(), 54);
        assert!(m.added.is_empty());
        assert_eq!(m.removed[0], (0, 1, 9));
        // disjoint keys and partial overlaps
        let m = match_keys(&[1, 1, 2, 5], &[1, 3, 5, 5, 5]);
        assert_eq!(m.common, 2);
        assert_eq!(m.removed, vec![(1, 1, 1), (2, 0, 1)]);
        assert_eq!(m.added, vec![(3, 0, 1), (5, 1, 2)]);
        assert_eq!(match_keys(&[], &[]), Matched::default());
    }

    /// A snapshot directory with one data file of `ids` (and texts) and a manifest that names it.
    fn snapshot(dir: &Path, ids: &[Option<&str>]) {
        use arrow::array::StringArray;
        use arrow::datatypes::{Field, Schema};
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let schema = std::sync::Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, true),
            Field::new("text", DataType::Utf8, false),
        ]));
        let texts: Vec<String> = (0..ids.len()).map(|i| format!("doc {i}")).collect();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                std::sync::Arc::new(StringArray::from(ids.to_vec())),
                std::sync::Arc::new(StringArray::from(texts)),
            ],
        )
        .unwrap();
        let props = curate_io::write::OutputProps {
            zstd_level: 3,
            row_group_rows: 1000,
            data_page_bytes: 1 << 20,
            created_by: "test".into(),
        };
        let path = dir.join("data/part-00000.parquet");
        let mut w = curate_io::write::ParquetSink::create(&path, schema, &props).unwrap();
        w.write(batch).unwrap();
        w.finish().unwrap();
        let n = ids.len();
        let m = json!({
            "format": 2, "hash": "xxh3-128", "decision_hash_scheme": "x",
            "writer": {"zstd_level": 3, "row_group_rows": 1, "data_page_bytes": 1, "created_by": "t"},
            "curate_version": "0.1.0",
            "config": {"input": {"text_column": "text", "id_column": "id"}, "steps": []},
            "config_fingerprint": "f",
            "seed": 1,
            "inputs": [],
            "totals": {"input_rows": n, "kept_rows": n, "dropped_rows": 0, "skipped_rows": 0},
            "steps": [],
            "outputs": [{"path": "data/part-00000.parquet", "rows": n, "bytes": 1, "xxh3_128": "00"}]
        });
        std::fs::write(dir.join("manifest.json"), m.to_string()).unwrap();
    }

    #[test]
    fn diff_counts_documents_when_ids_repeat() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        // 60 documents sharing 6 ids, then a null id; B has each id once and a new one
        let ids_a: Vec<String> = (0..60).map(|i| format!("id-{}", i % 6)).collect();
        let mut ia: Vec<Option<&str>> = ids_a.iter().map(|s| Some(s.as_str())).collect();
        ia.push(None);
        snapshot(&a, &ia);
        snapshot(
            &b,
            &["id-0", "id-1", "id-2", "id-3", "id-4", "id-5", "id-new"].map(Some),
        );
        let d = diff(&a, &b, 3).unwrap();
        let docs = &d.documents;
        assert_eq!((docs.in_a, docs.in_b), (61, 7));
        assert_eq!((docs.distinct_a, docs.distinct_b), (6, 7));
        assert_eq!((docs.unkeyed_a, docs.unkeyed_b), (1, 0));
        assert_eq!((docs.common, docs.added, docs.removed), (6, 1, 54));
        assert_eq!(docs.in_a, docs.common + docs.removed + docs.unkeyed_a);
        assert_eq!(docs.in_b, docs.common + docs.added + docs.unkeyed_b);
        assert!(docs.keys_repeat());
        assert_eq!(docs.added_examples, ["id-new"]);
        // the removed ones are the repeats past each id's first occurrence, in file order
        assert_eq!(docs.removed_examples, ["id-0", "id-1", "id-2"]);
        let same = diff(&b, &b, 3).unwrap();
        assert!(!same.documents.keys_repeat());
        assert_eq!(same.documents.common, 7);
    }

    #[test]
    fn ks_is_the_largest_cdf_gap() {
        assert_eq!(ks(&[0.1, 0.2], &[0.1, 0.2]), 0.0);
        assert_eq!(ks(&[0.1, 0.2], &[0.8, 0.9]), 1.0);
        assert!((ks(&[0.1, 0.2, 0.3, 0.4], &[0.3, 0.4]) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn summaries_and_histograms() {
        let s = [0.0f32, 0.25, 0.5, 0.75, 1.0];
        let m = summary(&s).unwrap();
        assert_eq!((m.n, m.min, m.p50, m.max), (5, 0.0, 0.5, 1.0));
        assert_eq!(hist(&s, 0.0, 1.0, 4), vec![1, 1, 1, 2]);
        assert!(summary(&[]).is_none());
    }
}
