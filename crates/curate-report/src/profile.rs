//! Distributions the manifest does not hold, measured from the snapshot's own files: document
//! lengths and languages before and after the pipeline, words removed per step and reason, and
//! the kept documents' quality scores.
//!
//! "After" is `data/`; "before" is `data/` plus `excluded/` (every input document is in exactly
//! one of them), so it exists only when the run wrote exclusions. Only integer histograms are
//! kept ([`Counts`]), so memory does not grow with the snapshot and the result does not depend on
//! how the run was split into tasks.
//!
//! The pipeline gathers the [`Counts`] where its pass tasks write each document (kept in the last
//! pass, or excluded by a step in any pass) and stores them in the tasks' completion records, so
//! finalize draws the report without reading the files again. [`profile`] measures the same
//! counts from the files themselves (snapshots whose records do not carry them).

use std::collections::BTreeMap;
use std::path::Path;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float32Type, Float64Type};
use serde::{Deserialize, Serialize};

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

/// Most distinct `language` values counted. Past that many (in the documents a [`Dist`]
/// covers) the counts are dropped and the distribution says only that there were more
/// ([`Dist::languages_overflow`]): whether that happens depends on the number of distinct values
/// alone, never on how the documents were split into tasks or row groups, so the report is the
/// same for any split. Language models have a few hundred (lid.176: 176) to a few thousand
/// (GlotLID: ≈ 2,100) labels; more values than this means a column that is not a language code.
pub const MAX_LANGUAGES: usize = 65_536;

/// Bins of the kept-score histogram.
pub const SCORE_BINS: usize = 10;

/// A distribution of documents.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Dist {
    /// Documents.
    pub docs: u64,
    /// Characters.
    pub chars: u64,
    /// Whitespace-separated words.
    pub words: u64,
    /// Documents per length bin ([`LENGTH_EDGES`]).
    pub length: Vec<u64>,
    /// Documents per value of the `language` column (`(none)` for nulls); empty when
    /// [`Self::languages_overflow`].
    pub languages: BTreeMap<String, u64>,
    /// The documents hold more than [`MAX_LANGUAGES`] distinct `language` values (then
    /// `languages` is empty).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub languages_overflow: bool,
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
        if self.length.len() < o.length.len() {
            self.length.resize(o.length.len(), 0);
        }
        for (a, b) in self.length.iter_mut().zip(&o.length) {
            *a += b;
        }
        if o.languages_overflow {
            self.overflow_languages();
        }
        for (k, v) in &o.languages {
            self.add_language(k, *v);
        }
    }

    /// Counts `n` documents with `language` value `lang`.
    fn add_language(&mut self, lang: &str, n: u64) {
        if self.languages_overflow {
            return;
        }
        if let Some(c) = self.languages.get_mut(lang) {
            *c += n;
        } else if self.languages.len() < MAX_LANGUAGES {
            self.languages.insert(lang.to_string(), n);
        } else {
            self.overflow_languages();
        }
    }

    fn overflow_languages(&mut self) {
        self.languages_overflow = true;
        self.languages = BTreeMap::new();
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreHist {
    /// Lower end of the scale.
    pub lo: f64,
    /// Upper end of the scale.
    pub hi: f64,
    /// Documents per bin ([`SCORE_BINS`] equal bins over `[lo, hi]`; values outside are clamped).
    pub counts: Vec<u64>,
    /// Documents without a score (null or NaN).
    pub missing: u64,
    /// Lowest finite score kept (infinite scores are counted in the end bins).
    pub min: Option<f64>,
    /// Highest finite score kept.
    pub max: Option<f64>,
}

impl ScoreHist {
    fn new((lo, hi): (f64, f64)) -> ScoreHist {
        ScoreHist {
            lo,
            hi,
            counts: vec![0; SCORE_BINS],
            missing: 0,
            min: None,
            max: None,
        }
    }

    fn merge(&mut self, h: &ScoreHist) {
        for (a, b) in self.counts.iter_mut().zip(&h.counts) {
            *a += b;
        }
        self.missing += h.missing;
        self.min = match (self.min, h.min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.max = match (self.max, h.max) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
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
            flatten: Vec::new(),
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

/// `(s.chars().count(), s.split_whitespace().count())` in one pass over the bytes, without
/// allocating: eight bytes at a time while they are ASCII (a whitespace bit mask, word starts
/// by popcount), byte by byte otherwise, decoding only the lead bytes that can start a non-ASCII
/// whitespace character (U+0085, U+00A0, U+1680, U+2000–U+200A, U+2028, U+2029, U+202F,
/// U+205F, U+3000).
pub fn chars_words(s: &str) -> (u64, u64) {
    let mut c = CharsWords::default();
    let b = s.as_bytes();
    let mut chunks = b.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let x = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        if x & HIGH_BITS == 0 {
            let ws = ascii_whitespace(x);
            let starts = !ws & ((ws << 1) | u64::from(!c.in_word)) & 0xff;
            c.words += u64::from(starts.count_ones());
            c.chars += 8;
            c.in_word = ws >> 7 == 0;
        } else {
            c.bytes(s, at, at + 8);
        }
        at += 8;
    }
    c.bytes(s, at, b.len());
    (c.chars, c.words)
}

const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// Bit `i` set where byte `i` of `x` (eight ASCII bytes, little-endian) is whitespace: space
/// or U+0009–U+000D.
fn ascii_whitespace(x: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let sp = x ^ (0x20 * ONES);
    // the high bit of each byte that is zero (exact for bytes below 0x80)
    let is_space = !((sp & !HIGH_BITS).wrapping_add(0x7f * ONES) | sp) & HIGH_BITS;
    let ge9 = x.wrapping_add((0x80 - 9) * ONES) & HIGH_BITS;
    let ge14 = x.wrapping_add((0x80 - 14) * ONES) & HIGH_BITS;
    let m = is_space | (ge9 & !ge14);
    // gather the eight high bits into the low byte
    ((m >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56
}

/// The state of [`chars_words`].
#[derive(Default)]
struct CharsWords {
    chars: u64,
    words: u64,
    in_word: bool,
}

impl CharsWords {
    /// Bytes `from..to` of `s`, one at a time.
    fn bytes(&mut self, s: &str, from: usize, to: usize) {
        let b = s.as_bytes();
        for i in from..to {
            let ws = match b[i] {
                b'\t'..=b'\r' | b' ' => true,
                0x00..=0x7f => false,
                // a continuation byte: part of the character its lead byte counted
                0x80..=0xbf => continue,
                0xc2 | 0xe1 | 0xe2 | 0xe3 => s[i..].chars().next().is_some_and(char::is_whitespace),
                _ => false,
            };
            self.chars += 1;
            self.words += u64::from(!ws && !self.in_word);
            self.in_word = !ws;
        }
    }
}

/// A string column of any of arrow's string types (the reader gives `Utf8` texts; exclusion
/// rows keep the input's type).
enum Texts<'a> {
    Utf8(&'a arrow::array::StringArray),
    Large(&'a arrow::array::LargeStringArray),
    View(&'a arrow::array::StringViewArray),
}

impl<'a> Texts<'a> {
    fn of(col: &'a dyn Array) -> Option<Texts<'a>> {
        Some(match col.data_type() {
            DataType::Utf8 => Texts::Utf8(col.as_string::<i32>()),
            DataType::LargeUtf8 => Texts::Large(col.as_string::<i64>()),
            DataType::Utf8View => Texts::View(col.as_string_view()),
            _ => return None,
        })
    }

    /// The value of row `i` (`""` when null).
    fn get(&self, i: usize) -> &'a str {
        match self {
            Texts::Utf8(a) if a.is_valid(i) => a.value(i),
            Texts::Large(a) if a.is_valid(i) => a.value(i),
            Texts::View(a) if a.is_valid(i) => a.value(i),
            _ => "",
        }
    }
}

/// Documents and words per step type, then reason.
pub type RemovedMap = BTreeMap<String, BTreeMap<String, [u64; 2]>>;

fn add_removed(m: &mut RemovedMap, step: &str, reason: &str, docs: u64, words: u64) {
    let r = match m.get_mut(step) {
        Some(r) => r,
        None => m.entry(step.to_string()).or_default(),
    };
    match r.get_mut(reason) {
        Some(e) => {
            e[0] += docs;
            e[1] += words;
        }
        None => {
            r.insert(reason.to_string(), [docs, words]);
        }
    }
}

/// Words, lengths and languages of a batch into `d`; with `removed`, also documents and words
/// per (`step`, `reason`) column values.
fn dist_of(batch: &RecordBatch, text_column: &str, d: &mut Dist, removed: Option<&mut RemovedMap>) {
    let Some(text) = batch
        .column_by_name(text_column)
        .and_then(|c| Texts::of(c.as_ref()))
    else {
        return;
    };
    let string_col = |name: &str| {
        batch
            .column_by_name(name)
            .filter(|c| c.data_type() == &DataType::Utf8)
            .map(|c| c.as_string::<i32>())
    };
    let lang = string_col("language");
    let mut why = removed.and_then(|m| Some((m, string_col("step")?, string_col("reason")?)));
    let mut langs: BTreeMap<&str, u64> = BTreeMap::new();
    for i in 0..batch.num_rows() {
        let (chars, w) = chars_words(text.get(i));
        d.docs += 1;
        d.chars += chars;
        d.words += w;
        d.length[length_bin(chars)] += 1;
        if let Some(l) = lang {
            let v = if l.is_null(i) { "(none)" } else { l.value(i) };
            *langs.entry(v).or_default() += 1;
        }
        if let Some((m, step, reason)) = why.as_mut() {
            add_removed(m, step.value(i), reason.value(i), 1, w);
        }
    }
    for (k, v) in langs {
        d.add_language(k, v);
    }
}

fn scores_of(batch: &RecordBatch, h: &mut ScoreHist) {
    let Some(col) = batch.column_by_name("quality_score") else {
        return;
    };
    // The same bins as the score step's `score_hist_*` counters
    // (`curate_quality::score::score_hist_bin`), which the report draws beside these.
    let width = (h.hi - h.lo) / SCORE_BINS as f64;
    let mut add = |v: Option<f64>| match v {
        Some(x) if !x.is_nan() => {
            let b = if width > 0.0 {
                (((x - h.lo) / width).floor().max(0.0) as usize).min(SCORE_BINS - 1)
            } else {
                0
            };
            h.counts[b] += 1;
            // Finite ones only: a task record (JSON) cannot hold an infinity, and the counted
            // profile must say what the file scan says.
            if x.is_finite() {
                h.min = Some(h.min.map_or(x, |m| m.min(x)));
                h.max = Some(h.max.map_or(x, |m| m.max(x)));
            }
        }
        _ => h.missing += 1,
    };
    match col.data_type() {
        DataType::Float32 => col
            .as_primitive::<Float32Type>()
            .iter()
            .for_each(|v| add(v.map(f64::from))),
        DataType::Float64 => col.as_primitive::<Float64Type>().iter().for_each(add),
        _ => {}
    }
}

/// The profile's integer counters: what the documents written to `data/` (kept) and to
/// `excluded/` (dropped) add up to. Sums of counts, so the counters of any split of the
/// documents merge to the same totals; the pipeline keeps one per pass task in its completion
/// record and merges them in pass, then task order (the order of the files they end up in).
///
/// Past [`MAX_LANGUAGES`] distinct `language` values only that is kept
/// ([`Dist::languages_overflow`]), whatever the split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    /// Whether a written batch had a `language` column.
    pub language_column: bool,
    /// The kept documents.
    pub kept: Dist,
    /// The excluded documents.
    pub dropped: Dist,
    /// Excluded documents and words, by `step` then `reason`.
    pub removed: RemovedMap,
    /// The kept documents' `quality_score`, when they have one.
    pub kept_scores: Option<ScoreHist>,
}

impl Default for Counts {
    fn default() -> Counts {
        Counts {
            language_column: false,
            kept: Dist::new(),
            dropped: Dist::new(),
            removed: RemovedMap::new(),
            kept_scores: None,
        }
    }
}

impl Counts {
    /// Counts a batch of kept documents (as the data files hold them). `scale` is the quality
    /// score's range the kept-score histogram is binned over ([`crate::report::score_scale`] of
    /// the quality metrics).
    pub fn add_kept(&mut self, batch: &RecordBatch, text_column: &str, scale: (f64, f64)) {
        self.language_column |= batch.column_by_name("language").is_some();
        if batch.column_by_name("quality_score").is_some() {
            scores_of(
                batch,
                self.kept_scores
                    .get_or_insert_with(|| ScoreHist::new(scale)),
            );
        }
        dist_of(batch, text_column, &mut self.kept, None);
    }

    /// Counts a batch of excluded documents (as the exclusion files hold them: with `step` and
    /// `reason` columns).
    pub fn add_excluded(&mut self, batch: &RecordBatch, text_column: &str) {
        self.language_column |= batch.column_by_name("language").is_some();
        dist_of(
            batch,
            text_column,
            &mut self.dropped,
            Some(&mut self.removed),
        );
    }

    /// Adds counts gathered after these.
    pub fn merge(&mut self, o: &Counts) {
        self.language_column |= o.language_column;
        self.kept.merge(&o.kept);
        self.dropped.merge(&o.dropped);
        for (step, reasons) in &o.removed {
            for (reason, [docs, words]) in reasons {
                add_removed(&mut self.removed, step, reason, *docs, *words);
            }
        }
        if let Some(h) = &o.kept_scores {
            match &mut self.kept_scores {
                Some(k) => k.merge(h),
                None => self.kept_scores = Some(h.clone()),
            }
        }
    }

    /// The scale the kept-score histogram was binned over, if there is one.
    pub fn score_scale(&self) -> Option<(f64, f64)> {
        self.kept_scores.as_ref().map(|h| (h.lo, h.hi))
    }

    /// The profile these counts give; "before" only with `exclusion` (the run wrote every
    /// dropped document).
    pub fn into_profile(self, exclusion: bool) -> Profile {
        let before = exclusion.then(|| {
            let mut b = self.kept.clone();
            b.merge(&self.dropped);
            b
        });
        Profile {
            language_column: self.language_column,
            after: self.kept,
            before,
            removed: self
                .removed
                .into_iter()
                .flat_map(|(step, reasons)| {
                    reasons
                        .into_iter()
                        .map(move |(reason, [docs, words])| Removed {
                            step: step.clone(),
                            reason,
                            docs,
                            words,
                        })
                })
                .collect(),
            kept_scores: self.kept_scores,
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
    let parts: Vec<Counts> = jobs
        .par_iter()
        .map(|(s, rg, kept)| {
            let mut p = Counts::default();
            s.read(*rg..*rg + 1, |b| {
                if *kept {
                    p.add_kept(b, text_column, scale);
                } else {
                    p.add_excluded(b, text_column);
                }
                Ok(())
            })?;
            Ok(p)
        })
        .collect::<Result<_, ReportError>>()?;
    let mut all = Counts::default();
    for p in &parts {
        all.merge(p);
    }
    Ok(all.into_profile(exclusion))
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

    /// Language counts merged from any split of the documents, in any order, are the same: the
    /// exact counts up to the cap, and past it only that there were more values.
    #[test]
    fn language_counts_do_not_depend_on_the_split() {
        let values = |n: usize| -> Vec<String> {
            // every value twice, the second pass in reverse
            let mut v: Vec<String> = (0..n).map(|i| format!("l{i:06}")).collect();
            v.extend((0..n).rev().map(|i| format!("l{i:06}")));
            v
        };
        for n in [3, MAX_LANGUAGES, MAX_LANGUAGES + 1, MAX_LANGUAGES + 7] {
            let docs = values(n);
            let mut whole = Dist::new();
            for d in &docs {
                whole.add_language(d, 1);
            }
            for parts in [2, 3, 64] {
                let size = docs.len().div_ceil(parts);
                let mut pieces: Vec<Dist> = docs
                    .chunks(size)
                    .map(|c| {
                        let mut d = Dist::new();
                        for v in c {
                            d.add_language(v, 1);
                        }
                        d
                    })
                    .collect();
                pieces.reverse();
                let mut merged = Dist::new();
                for p in &pieces {
                    merged.merge(p);
                }
                assert_eq!(merged, whole, "{n} values in {parts} parts");
            }
            assert_eq!(whole.languages_overflow, n > MAX_LANGUAGES, "{n} values");
            if n <= MAX_LANGUAGES {
                assert_eq!(whole.languages.len(), n);
                assert!(whole.languages.values().all(|&c| c == 2));
            } else {
                assert!(whole.languages.is_empty());
            }
        }
        // The flag round-trips through a task record and is left out when false.
        let mut d = Dist::new();
        d.add_language("en", 1);
        let json = serde_json::to_string(&d).unwrap();
        assert!(!json.contains("overflow"), "{json}");
        d.overflow_languages();
        let back: Dist = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
        assert_eq!(back, d);
    }

    #[test]
    fn chars_and_words_are_those_of_std() {
        let pieces = [
            "a",
            "bc",
            " ",
            "\t",
            "\n",
            "\r",
            "\x0b",
            "\x0c",
            "\u{85}",
            "\u{a0}",
            "\u{1680}",
            "\u{2000}",
            "\u{200a}",
            "\u{200b}",
            "\u{2028}",
            "\u{2029}",
            "\u{202f}",
            "\u{205f}",
            "\u{3000}",
            "é",
            "\u{e1}",
            "\u{2030}",
            "\u{3001}",
            "日本",
            "😀",
            "\u{1c}",
            "\u{0}",
            "\u{7f}",
            "\x08",
            "\x0e",
            "\x1f",
            "!",
            "words and more words",
        ];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..6_000 {
            let mut s = String::new();
            let n = next() % if round % 3 == 0 { 12 } else { 120 };
            for _ in 0..n {
                let r = next();
                if round % 2 == 0 {
                    // ASCII only: every byte value below 0x80, spaces and letters more often
                    let c = match r % 4 {
                        0 => b' ',
                        1 => b'a' + (r >> 8) as u8 % 26,
                        _ => (r >> 16) as u8 & 0x7f,
                    };
                    s.push(char::from(c));
                } else {
                    s.push_str(pieces[(r % pieces.len() as u64) as usize]);
                }
            }
            let want = (
                s.chars().count() as u64,
                s.split_whitespace().count() as u64,
            );
            assert_eq!(chars_words(&s), want, "{s:?}");
        }
    }

    /// Rows `at..` of a test set: `texts` and `langs`, with steps, reasons and scores by row.
    fn batch(
        at: usize,
        texts: &[Option<&str>],
        langs: &[Option<&str>],
        excluded: bool,
    ) -> RecordBatch {
        use arrow::array::{ArrayRef, Float64Array, StringArray};
        use std::sync::Arc;
        let n = texts.len();
        let mut cols: Vec<(&str, ArrayRef)> = vec![
            ("text", Arc::new(StringArray::from(texts.to_vec()))),
            ("language", Arc::new(StringArray::from(langs.to_vec()))),
        ];
        if excluded {
            let steps: Vec<&str> = (at..at + n).map(|i| ["length", "gopher"][i % 2]).collect();
            let reasons: Vec<&str> = (at..at + n)
                .map(|i| ["short", "long", "x"][i % 3])
                .collect();
            cols.push(("step", Arc::new(StringArray::from(steps))));
            cols.push(("reason", Arc::new(StringArray::from(reasons))));
        } else {
            let s: Vec<Option<f64>> = (at..at + n)
                .map(|i| match i {
                    5 => Some(f64::NEG_INFINITY),
                    38 => Some(f64::INFINITY),
                    _ => (i % 4 != 3).then_some(i as f64 * 0.37 - 0.2),
                })
                .collect();
            cols.push(("quality_score", Arc::new(Float64Array::from(s))));
        }
        RecordBatch::try_from_iter(cols).unwrap()
    }

    #[test]
    fn counts_do_not_depend_on_how_the_documents_are_split() {
        let texts: Vec<Option<&str>> = (0..40)
            .map(|i| match i % 5 {
                0 => None,
                1 => Some("one two  three"),
                2 => Some("é\u{a0}x"),
                3 => Some(""),
                _ => Some("a b c d e f g h i j k l m n o p q r s t u v w x y z"),
            })
            .collect();
        let langs: Vec<Option<&str>> = (0..40)
            .map(|i| [None, Some("en"), Some("fr")][i % 3])
            .collect();
        let whole = |cut: usize| {
            let mut all = Counts::default();
            for (lo, hi) in [(0, cut), (cut, 40)] {
                let mut c = Counts::default();
                let (t, l) = (&texts[lo..hi], &langs[lo..hi]);
                c.add_kept(&batch(lo, t, l, false), "text", (0.0, 5.0));
                c.add_excluded(&batch(lo, t, l, true), "text");
                // through JSON, as a task's completion record keeps them
                let c: Counts = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
                all.merge(&c);
            }
            all
        };
        let a = whole(0);
        for cut in [1, 7, 20, 39] {
            assert_eq!(whole(cut).into_profile(true), a.clone().into_profile(true));
        }
        let p = a.into_profile(true);
        assert_eq!(p.after.docs, 40);
        assert_eq!(p.after.languages["(none)"], 14);
        assert_eq!(p.before.as_ref().unwrap().docs, 80);
        let h = p.kept_scores.unwrap();
        assert_eq!(h.missing, 10);
        assert_eq!(h.counts.iter().sum::<u64>(), 30);
        assert_eq!(h.min, Some(-0.2), "finite scores only");
        assert_eq!(h.max, Some(37.0 * 0.37 - 0.2));
        // −∞ (row 5, else 1.65 in bin 3) in the first bin, +∞ (row 38) in the last
        assert_eq!(
            (h.counts[0], h.counts[3], h.counts[SCORE_BINS - 1]),
            (3, 0, 20),
            "{:?}",
            h.counts
        );
        assert_eq!(
            p.removed.iter().map(|r| r.docs).sum::<u64>(),
            40,
            "{:?}",
            p.removed
        );
        assert_eq!(p.removed[0].step, "gopher");
    }
}
