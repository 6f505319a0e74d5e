//! `gopher_repetition`: Gopher's repetition heuristics (Rae et al. 2021, table A1), as datatrove
//! 0.10.1's `GopherRepetitionFilter` applies them.

use curate_core::{BuildEnv, Problems, Step, StepError, StepSpec};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::filter::{Doc, FilterStep, TextFilter, Verdict};
use crate::gopher_quality::{d_language, validate_language};
use crate::text::{HashMap64, HashSet64, char_len, find_duplicates, py_strip};
use crate::words::{Span, WordSplitter};

/// Drops documents with too much repeated content: duplicated paragraphs and lines (by count and
/// by characters), a too frequent top 2-, 3- or 4-gram, or too many characters in duplicated 5- to
/// 10-grams.
///
/// Why: repetitive pages (spam, templates, scraped lists) are the main thing Gopher's recipe
/// removes after the quality rules; language models trained on them degrade.
///
/// Paragraphs are `text.strip()` split on two or more newlines, lines are the text split on one
/// or more newlines; character fractions are over the whole text's characters. Words are spaCy's
/// blank-English tokens. Rules run in datatrove's order; the first failing one names the reason.
/// A fraction set to 0 disables its rule. An empty text is dropped with reason `empty`.
///
/// Example:
///
/// ```toml
/// [[steps]]
/// type = "gopher_repetition"
/// dup_line_frac = 0.3
/// top_n_grams = [[2, 0.2], [3, 0.18], [4, 0.16]]
/// ```
///
/// Reasons: `empty`, `dup_para_frac`, `dup_para_char_frac`, `dup_line_frac`,
/// `dup_line_char_frac`, `top_{n}_gram`, `duplicated_{n}_n_grams`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GopherRepetitionConfig {
    /// Maximum share of lines that repeat an earlier line (reason `dup_line_frac`).
    #[serde(default = "d_dup_line_frac")]
    pub dup_line_frac: f64,
    /// Maximum share of paragraphs that repeat an earlier paragraph (reason `dup_para_frac`).
    #[serde(default = "d_dup_para_frac")]
    pub dup_para_frac: f64,
    /// Maximum share of characters in repeated lines (reason `dup_line_char_frac`).
    #[serde(default = "d_dup_line_char_frac")]
    pub dup_line_char_frac: f64,
    /// Maximum share of characters in repeated paragraphs (reason `dup_para_char_frac`).
    #[serde(default = "d_dup_para_char_frac")]
    pub dup_para_char_frac: f64,
    /// `[n, max_fraction]` pairs: the most frequent n-gram's characters (n-gram length with
    /// spaces × count) over the text's characters (reason `top_{n}_gram`).
    #[serde(default = "d_top_n_grams")]
    pub top_n_grams: Vec<(u32, f64)>,
    /// `[n, max_fraction]` pairs: characters in non-overlapping repeated n-grams over the text's
    /// characters (reason `duplicated_{n}_n_grams`).
    #[serde(default = "d_dup_n_grams")]
    pub dup_n_grams: Vec<(u32, f64)>,
    /// Language of the word splitter; only `en` (spaCy's blank English tokenizer) is supported.
    #[serde(default = "d_language")]
    pub language: String,
}

fn d_dup_line_frac() -> f64 {
    0.3
}
fn d_dup_para_frac() -> f64 {
    0.3
}
fn d_dup_line_char_frac() -> f64 {
    0.2
}
fn d_dup_para_char_frac() -> f64 {
    0.2
}
fn d_top_n_grams() -> Vec<(u32, f64)> {
    vec![(2, 0.2), (3, 0.18), (4, 0.16)]
}
fn d_dup_n_grams() -> Vec<(u32, f64)> {
    vec![
        (5, 0.15),
        (6, 0.14),
        (7, 0.13),
        (8, 0.12),
        (9, 0.11),
        (10, 0.10),
    ]
}

impl Default for GopherRepetitionConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults")
    }
}

impl StepSpec for GopherRepetitionConfig {
    const TYPE: &'static str = "gopher_repetition";

    fn validate(&self, problems: &mut Problems) {
        problems.ratio("dup_line_frac", self.dup_line_frac);
        problems.ratio("dup_para_frac", self.dup_para_frac);
        problems.ratio("dup_line_char_frac", self.dup_line_char_frac);
        problems.ratio("dup_para_char_frac", self.dup_para_char_frac);
        for (field, list) in [
            ("top_n_grams", &self.top_n_grams),
            ("dup_n_grams", &self.dup_n_grams),
        ] {
            for &(n, f) in list {
                if !(1..=64).contains(&n) {
                    problems.push(field, format!("n = {n} is out of range; allowed: 1 to 64"));
                }
                if !(0.0..=1.0).contains(&f) {
                    problems.push(
                        field,
                        format!("fraction {f} for n = {n} is out of range; allowed: 0 to 1"),
                    );
                }
            }
        }
        validate_language(&self.language, problems);
    }

    fn build(&self, _env: &BuildEnv) -> Result<Box<dyn Step>, StepError> {
        Ok(FilterStep::boxed(GopherRepetition::new(self.clone())))
    }
}

/// The runtime filter.
#[derive(Debug)]
pub struct GopherRepetition {
    cfg: GopherRepetitionConfig,
    reasons: Vec<&'static str>,
}

impl GopherRepetition {
    /// Builds the filter from its config.
    pub fn new(cfg: GopherRepetitionConfig) -> Self {
        let mut reasons: Vec<&'static str> = vec![
            "empty",
            "dup_para_frac",
            "dup_para_char_frac",
            "dup_line_frac",
            "dup_line_char_frac",
        ];
        for &(n, _) in &cfg.top_n_grams {
            reasons.push(leak(format!("top_{n}_gram")));
        }
        for &(n, _) in &cfg.dup_n_grams {
            reasons.push(leak(format!("duplicated_{n}_n_grams")));
        }
        Self { cfg, reasons }
    }
}

/// Reason names are built once per step from its config; the handful of strings lives for the
/// program (a step is built once per run).
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// Reusable working memory.
#[derive(Debug, Default)]
pub struct Scratch {
    splitter: WordSplitter,
    words: Vec<Span>,
    /// Per word: (sequence hash, polynomial hash of its bytes, BASE^bytes, chars).
    wh: Vec<(u64, u64, u64, u32)>,
    seen: HashSet64,
    counts: HashMap64<(u32, u32)>,
}

const P: u64 = (1 << 61) - 1;
const BASE: u64 = 0x1F3D_5B79_A2C4_E6F1 % P;

#[inline]
fn mulmod(a: u64, b: u64) -> u64 {
    let r = (a as u128) * (b as u128);
    let lo = (r as u64) & P;
    let hi = (r >> 61) as u64;
    let s = lo + hi;
    if s >= P { s - P } else { s }
}

#[inline]
fn addmod(a: u64, b: u64) -> u64 {
    let s = a + b;
    if s >= P { s - P } else { s }
}

impl TextFilter for GopherRepetition {
    type Scratch = Scratch;

    fn kind(&self) -> &'static str {
        GopherRepetitionConfig::TYPE
    }

    fn reasons(&self) -> &[&'static str] {
        &self.reasons
    }

    fn check(&self, doc: Doc<'_>, sc: &mut Scratch, _: &mut String) -> Verdict {
        let c = &self.cfg;
        let text = doc.text;
        if text.is_empty() {
            return Verdict::Drop(0);
        }
        let total = char_len(text) as f64;
        let stripped = py_strip(text);
        let mut n_paras = 0usize;
        let paras = split_newline_runs(stripped, 2).inspect(|_| n_paras += 1);
        let (dups, dup_chars) = find_duplicates(paras, &mut sc.seen);
        if c.dup_para_frac > 0.0 && dups as f64 / n_paras as f64 > c.dup_para_frac {
            return Verdict::Drop(1);
        }
        if c.dup_para_char_frac > 0.0 && dup_chars as f64 / total > c.dup_para_char_frac {
            return Verdict::Drop(2);
        }
        let mut n_lines = 0usize;
        let lines = split_newline_runs(text, 1).inspect(|_| n_lines += 1);
        let (dups, dup_chars) = find_duplicates(lines, &mut sc.seen);
        if c.dup_line_frac > 0.0 && dups as f64 / n_lines as f64 > c.dup_line_frac {
            return Verdict::Drop(3);
        }
        if c.dup_line_char_frac > 0.0 && dup_chars as f64 / total > c.dup_line_char_frac {
            return Verdict::Drop(4);
        }
        if c.top_n_grams.is_empty() && c.dup_n_grams.is_empty() {
            return Verdict::Keep;
        }
        sc.splitter.split(text, &mut sc.words);
        sc.wh.clear();
        for &(a, b) in &sc.words {
            let w = &text[a as usize..b as usize];
            let (mut ph, mut pw) = (0u64, 1u64);
            for &byte in w.as_bytes() {
                ph = addmod(mulmod(ph, BASE), byte as u64 + 1);
                pw = mulmod(pw, BASE);
            }
            sc.wh.push((
                xxhash_rust::xxh3::xxh3_64(w.as_bytes()),
                ph,
                pw,
                char_len(w) as u32,
            ));
        }
        let nw = sc.wh.len();
        for (k, &(n, frac)) in c.top_n_grams.iter().enumerate() {
            let n = n as usize;
            if n == 0 || nw < n {
                continue;
            }
            // Counter.most_common(1): the highest count, ties to the first seen.
            sc.counts.clear();
            let mut best = (0u32, u32::MAX, 0usize); // (count, first index, chars)
            for i in 0..=nw - n {
                let mut hh = 0u64;
                for w in &sc.wh[i..i + n] {
                    hh = hh.rotate_left(23) ^ w.0.wrapping_mul(0x9E37_79B9_7F4A_7C15);
                }
                let e = sc.counts.entry(hh).or_insert((0, i as u32));
                e.0 += 1;
                let (cnt, first) = *e;
                if cnt > best.0 || (cnt == best.0 && first < best.1) {
                    let chars: usize = sc.wh[first as usize..first as usize + n]
                        .iter()
                        .map(|w| w.3 as usize)
                        .sum();
                    best = (cnt, first, chars + n - 1);
                }
            }
            if (best.2 * best.0 as usize) as f64 / total > frac {
                return Verdict::Drop(5 + k);
            }
        }
        for (k, &(n, frac)) in c.dup_n_grams.iter().enumerate() {
            let n = n as usize;
            sc.seen.clear();
            let mut repeated = 0usize;
            let mut idx = 0usize;
            while n > 0 && idx + n <= nw {
                // Hash of the n words concatenated without separator (datatrove joins with "").
                let mut hh = 0u64;
                let mut chars = 0usize;
                for w in &sc.wh[idx..idx + n] {
                    hh = addmod(mulmod(hh, w.2), w.1);
                    chars += w.3 as usize;
                }
                let key = hh ^ ((chars as u64) << 61);
                if !sc.seen.insert(key) {
                    repeated += chars;
                    idx += n;
                } else {
                    idx += 1;
                }
            }
            if repeated as f64 / total > frac {
                return Verdict::Drop(5 + c.top_n_grams.len() + k);
            }
        }
        Verdict::Keep
    }
}

/// Python's `re.split(r"\n{min,}", s)`: pieces between runs of at least `min` newlines.
fn split_newline_runs(s: &str, min: usize) -> impl Iterator<Item = &str> {
    let b = s.as_bytes();
    let mut pos = 0usize;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let mut i = pos;
        while let Some(off) = memchr::memchr(b'\n', &b[i..]) {
            let at = i + off;
            let run = b[at..].iter().take_while(|&&x| x == b'\n').count();
            if run >= min {
                let piece = &s[pos..at];
                pos = at + run;
                return Some(piece);
            }
            i = at + run;
        }
        done = true;
        Some(&s[pos..])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::testing::{batch, run};

    #[test]
    fn splits_like_python_re() {
        let v: Vec<&str> = split_newline_runs("\na\n\n\nb\nc\n", 1).collect();
        assert_eq!(v, ["", "a", "b", "c", ""]);
        let v: Vec<&str> = split_newline_runs("a\nb\n\nc", 2).collect();
        assert_eq!(v, ["a\nb", "c"]);
        let v: Vec<&str> = split_newline_runs("", 2).collect();
        assert_eq!(v, [""]);
    }

    #[test]
    fn reasons() {
        let cfg = GopherRepetitionConfig::default();
        let distinct: String = (0..80)
            .map(|i| format!("alpha{i} beta{i} gamma{i} delta{i}.\n"))
            .collect();
        let dup_lines = "same line here\nsame line here\nsame line here\nother\n".repeat(3);
        let ngram = "buy cheap pills now buy cheap pills now ".repeat(20) + &distinct;
        let texts = [
            "",
            distinct.as_str(),
            "para one\n\npara one\n\npara one\n\npara two",
            dup_lines.as_str(),
            ngram.as_str(),
        ];
        let got = run(&cfg, &mut batch(&texts), 0);
        assert_eq!(got[0].as_deref(), Some("empty"));
        assert_eq!(got[1], None);
        assert_eq!(got[2].as_deref(), Some("dup_para_frac"));
        assert_eq!(got[3].as_deref(), Some("dup_line_frac"));
        assert!(
            got[4]
                .as_deref()
                .is_some_and(|r| r.starts_with("top_") || r.starts_with("duplicated_")),
            "{:?}",
            got[4]
        );
    }

    #[test]
    fn config_pairs_from_toml() {
        let cfg: GopherRepetitionConfig =
            toml::from_str("top_n_grams = [[2, 0.5]]\ndup_n_grams = []").unwrap();
        let f = GopherRepetition::new(cfg);
        assert_eq!(f.reasons().last(), Some(&"top_2_gram"));
    }
}
