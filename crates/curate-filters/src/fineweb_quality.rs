//! `fineweb_quality`: FineWeb's own line-level heuristics, as datatrove 0.10.1's
//! `FineWebQualityFilter` applies them.

use curate_core::{BuildEnv, Problems, Step, StepError, StepSpec};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::filter::{Doc, FilterStep, TextFilter, Verdict};
use crate::gopher_quality::{d_language, validate_language};
use crate::text::{KeySet, TERMINAL_PUNCTUATION, char_len, find_duplicates, py_strip, split_byte};
use crate::words::shared_words;

/// Drops documents whose lines look like lists, menus or repeated boilerplate: few lines ending
/// in terminal punctuation, mostly short lines, characters in duplicated lines, or many newlines
/// per word.
///
/// Why: these are the rules FineWeb added on top of Gopher and C4 (Penedo et al. 2024); they
/// remove navigation-heavy and list-like pages the older rules let through.
///
/// Lines are the text split on `\n`, blank ones (after `strip`) removed. Words are spaCy's
/// blank-English tokens. Rules run in datatrove's order; a text without non-blank lines is
/// dropped with reason `empty`.
///
/// A document longer than 1 MiB is decided on its first 1 MiB, cut back to the last line break
/// in it ([`crate::filter::PREFIX_BYTES`]: its line table and word list would grow with the
/// document), and counted in the step's `decided_on_prefix` counter; it is kept or dropped
/// whole.
///
/// Example:
///
/// ```toml
/// [[steps]]
/// type = "fineweb_quality"
/// line_punct_thr = 0.12
/// char_duplicates_ratio = 0.01
/// ```
///
/// Reasons: `empty`, `line_punct_ratio`, `short_line_ratio`, `char_dup_ratio`, `list_ratio`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FineWebQualityConfig {
    /// Minimum share of lines ending in one of `stop_chars` (reason `line_punct_ratio`).
    #[serde(default = "d_line_punct_thr")]
    pub line_punct_thr: f64,
    /// Do not apply `line_punct_thr` when no line at all ends in punctuation.
    #[serde(default)]
    pub line_punct_exclude_zero: bool,
    /// Characters that count as terminal punctuation (default: datatrove's
    /// `TERMINAL_PUNCTUATION`, about 160 characters across scripts).
    #[serde(default)]
    pub stop_chars: Option<Vec<String>>,
    /// Maximum share of lines of at most `short_line_length` characters (reason
    /// `short_line_ratio`).
    #[serde(default = "d_short_line_thr")]
    pub short_line_thr: f64,
    /// Length (characters) up to which a line is short.
    #[serde(default = "d_short_line_length")]
    pub short_line_length: u64,
    /// Maximum share of characters (newlines excluded) in lines that repeat an earlier line
    /// (reason `char_dup_ratio`).
    #[serde(default = "d_char_duplicates_ratio")]
    pub char_duplicates_ratio: f64,
    /// Maximum number of newlines per word (reason `list_ratio`).
    #[serde(default = "d_new_line_ratio")]
    pub new_line_ratio: f64,
    /// Language of the word splitter; only `en` (spaCy's blank English tokenizer) is supported.
    #[serde(default = "d_language")]
    pub language: String,
}

fn d_line_punct_thr() -> f64 {
    0.12
}
fn d_short_line_thr() -> f64 {
    0.67
}
fn d_short_line_length() -> u64 {
    30
}
fn d_char_duplicates_ratio() -> f64 {
    0.01
}
fn d_new_line_ratio() -> f64 {
    0.3
}

impl Default for FineWebQualityConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults")
    }
}

crate::reasons! {
    EMPTY = "empty",
    LINE_PUNCT_RATIO = "line_punct_ratio",
    SHORT_LINE_RATIO = "short_line_ratio",
    CHAR_DUP_RATIO = "char_dup_ratio",
    LIST_RATIO = "list_ratio",
}

impl StepSpec for FineWebQualityConfig {
    const TYPE: &'static str = "fineweb_quality";

    fn validate(&self, problems: &mut Problems) {
        problems.ratio("line_punct_thr", self.line_punct_thr);
        problems.ratio("short_line_thr", self.short_line_thr);
        problems.ratio("char_duplicates_ratio", self.char_duplicates_ratio);
        if !(self.new_line_ratio >= 0.0 && self.new_line_ratio.is_finite()) {
            problems.push(
                "new_line_ratio",
                format!(
                    "{} is not allowed; allowed: a finite number >= 0",
                    self.new_line_ratio
                ),
            );
        }
        if let Some(sc) = &self.stop_chars
            && let Some(bad) = sc.iter().find(|s| s.chars().count() != 1)
        {
            problems.push("stop_chars", format!("\"{bad}\" is not a single character"));
        }
        validate_language(&self.language, problems);
    }

    fn build(&self, _env: &BuildEnv) -> Result<Box<dyn Step>, StepError> {
        Ok(FilterStep::boxed(FineWebQuality::new(self.clone())))
    }
}

/// The runtime filter.
#[derive(Debug)]
pub struct FineWebQuality {
    cfg: FineWebQualityConfig,
    stop_chars: Option<Vec<char>>,
    /// Documents longer than this are decided on their prefix.
    prefix_bytes: usize,
}

impl FineWebQuality {
    /// Builds the filter from its config.
    pub fn new(cfg: FineWebQualityConfig) -> Self {
        let stop_chars = cfg
            .stop_chars
            .as_ref()
            .map(|v| v.iter().filter_map(|s| s.chars().next()).collect());
        Self {
            cfg,
            stop_chars,
            prefix_bytes: crate::filter::PREFIX_BYTES,
        }
    }

    /// The filter deciding documents longer than `limit` bytes on their prefix (tests use small
    /// limits; the step uses [`crate::filter::PREFIX_BYTES`]).
    pub fn with_prefix_bytes(mut self, limit: usize) -> Self {
        self.prefix_bytes = limit;
        self
    }

    fn is_stop(&self, c: char) -> bool {
        match &self.stop_chars {
            Some(v) => v.contains(&c),
            None => TERMINAL_PUNCTUATION.has(c),
        }
    }
}

/// Reusable working memory.
#[derive(Debug, Default)]
pub struct Scratch {
    seen: KeySet,
}

impl TextFilter for FineWebQuality {
    type Scratch = Scratch;

    fn kind(&self) -> &'static str {
        FineWebQualityConfig::TYPE
    }

    fn reasons(&self) -> &[&'static str] {
        REASONS
    }

    fn prefix_bytes(&self) -> Option<usize> {
        Some(self.prefix_bytes)
    }

    fn check(&self, doc: Doc<'_>, sc: &mut Scratch, _: &mut String) -> Verdict {
        let c = &self.cfg;
        let text = doc.text;
        let lines = || split_byte(text, b'\n').filter(|l| !py_strip(l).is_empty());
        let (mut n, mut punct, mut short) = (0usize, 0usize, 0usize);
        for l in lines() {
            n += 1;
            punct += l.chars().next_back().is_some_and(|ch| self.is_stop(ch)) as usize;
            short += (char_len(l) as u64 <= c.short_line_length) as usize;
        }
        if n == 0 {
            return Verdict::Drop(EMPTY);
        }
        let ratio = punct as f64 / n as f64;
        if ratio < c.line_punct_thr && !(ratio == 0.0 && c.line_punct_exclude_zero) {
            return Verdict::Drop(LINE_PUNCT_RATIO);
        }
        if short as f64 / n as f64 > c.short_line_thr {
            return Verdict::Drop(SHORT_LINE_RATIO);
        }
        let newlines = memchr::memchr_iter(b'\n', text.as_bytes()).count();
        let (_, dup_chars) = find_duplicates(lines(), newlines + 1, &mut sc.seen);
        let denom = (char_len(text) - newlines) as f64;
        if dup_chars as f64 / denom > c.char_duplicates_ratio {
            return Verdict::Drop(CHAR_DUP_RATIO);
        }
        let n_words = shared_words(text, |words| words.len());
        if n_words == 0 || newlines as f64 / n_words as f64 > c.new_line_ratio {
            return Verdict::Drop(LIST_RATIO);
        }
        Verdict::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::testing::{batch, run};

    #[test]
    fn long_documents_are_decided_on_their_prefix() {
        use crate::filter::testing::run_filter;
        // proper lines, then a tail of menu lines: dropped whole, kept on its prose prefix
        let line = "This is a complete sentence number N that ends properly, as prose does.\n";
        let head: String = (0..30).map(|i| line.replace('N', &i.to_string())).collect();
        let long = format!("{head}{}", "Home\nAbout\nContact\n".repeat(200));
        let texts = [long.as_str()];
        let (whole, n) = run_filter(FineWebQuality::new(Default::default()), &texts);
        assert_eq!((whole[0], n), (Some("line_punct_ratio"), 0.0));
        let f = FineWebQuality::new(Default::default()).with_prefix_bytes(head.len() + 20);
        let (prefix, n) = run_filter(f, &texts);
        assert_eq!((prefix[0], n), (None, 1.0));
    }

    #[test]
    fn reasons() {
        let cfg = FineWebQualityConfig::default();
        let good = "This is a complete sentence that ends properly and is long enough.\n"
            .to_string()
            + "Another distinct line that also ends with a full stop, as prose does.\n";
        let nopunct = "Home\nAbout us\nContact\nProducts and services overview page\n";
        let short = "A line.\nB line.\nC line.\nThis one is long enough to count as a real line.\n";
        let dup = "This is a long repeated line of text that ends well.\n".repeat(3);
        let list = "word.\n\n\n\n\n\n\n\n\n\n\nAnother sentence here that is quite long indeed.";
        let texts = ["  \n \n", good.as_str(), nopunct, short, dup.as_str(), list];
        let got = run(&cfg, &mut batch(&texts), 0);
        let got: Vec<Option<&str>> = got.iter().map(|x| x.as_deref()).collect();
        assert_eq!(
            got,
            [
                Some("empty"),
                None,
                Some("line_punct_ratio"),
                Some("short_line_ratio"),
                Some("char_dup_ratio"),
                Some("list_ratio")
            ]
        );
    }
}
