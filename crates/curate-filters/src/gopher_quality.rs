//! `gopher_quality`: Gopher's quality heuristics (Rae et al. 2021, table A1), as datatrove 0.10.1's
//! `GopherQualityFilter` applies them.

use curate_core::{BuildEnv, Problems, Step, StepError, StepSpec};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::filter::{Doc, FilterStep, TextFilter, Verdict};
use crate::text::{PUNCTUATION_SET, char_len, count_str, py_lstrip, py_rstrip, splitlines};
use crate::words::{Span, py_isalpha, shared_words};

/// Drops documents that fail Gopher's quality rules: too few or too many words, odd mean word
/// length, too many `#` or ellipses, mostly bullet lines, many lines ending in an ellipsis, too few
/// words with letters, too few English stop words.
///
/// Why: these cheap rules remove most machine-generated, boilerplate and non-prose pages; they
/// are part of the Gopher, FineWeb and many later recipes.
///
/// Semantics are datatrove 0.10.1's, rule for rule, in its order (the first failing rule gives
/// the reason). Words are spaCy's blank-English tokens (see `docs/FILTERS.md`); "non-symbol words"
/// are words with at least one character outside datatrove's punctuation set. A numeric option
/// set to 0 disables its rule (as `None`/0 does in datatrove).
///
/// A document longer than 1 MiB is decided on its first 1 MiB, cut back to the last line break
/// in it ([`crate::filter::PREFIX_BYTES`]: its word list would grow with the document), and
/// counted in the step's `decided_on_prefix` counter; it is kept or dropped whole.
///
/// Example:
///
/// ```toml
/// [[steps]]
/// type = "gopher_quality"
/// min_doc_words = 50
/// max_non_alpha_words_ratio = 0.8
/// ```
///
/// Reasons: `gopher_short_doc`, `gopher_long_doc`, `gopher_below_avg_threshold`,
/// `gopher_above_avg_threshold`, `gopher_too_many_hashes`, `gopher_too_many_ellipsis`,
/// `gopher_too_many_bullets`, `gopher_too_many_end_ellipsis`, `gopher_below_alpha_threshold`,
/// `gopher_enough_stop_words`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GopherQualityConfig {
    /// Minimum number of non-symbol words (reason `gopher_short_doc`).
    #[serde(default = "d_min_doc_words")]
    pub min_doc_words: u64,
    /// Maximum number of non-symbol words (reason `gopher_long_doc`).
    #[serde(default = "d_max_doc_words")]
    pub max_doc_words: u64,
    /// Minimum mean length of non-symbol words, in characters (reason
    /// `gopher_below_avg_threshold`).
    #[serde(default = "d_min_avg_word_length")]
    pub min_avg_word_length: f64,
    /// Maximum mean length of non-symbol words, in characters (reason
    /// `gopher_above_avg_threshold`).
    #[serde(default = "d_max_avg_word_length")]
    pub max_avg_word_length: f64,
    /// Maximum ratio of `#` characters, and separately of ellipses (`...` or `…`), to words
    /// (reasons `gopher_too_many_hashes`, `gopher_too_many_ellipsis`).
    #[serde(default = "d_max_symbol_word_ratio")]
    pub max_symbol_word_ratio: f64,
    /// Maximum share of lines starting with `•` or `-` (reason `gopher_too_many_bullets`).
    #[serde(default = "d_max_bullet_lines_ratio")]
    pub max_bullet_lines_ratio: f64,
    /// Maximum share of lines ending with `...` or `…` (reason `gopher_too_many_end_ellipsis`).
    #[serde(default = "d_max_ellipsis_lines_ratio")]
    pub max_ellipsis_lines_ratio: f64,
    /// Minimum share of words containing an alphabetic character (reason
    /// `gopher_below_alpha_threshold`). datatrove's name for it, although it is a minimum.
    #[serde(default = "d_max_non_alpha_words_ratio")]
    pub max_non_alpha_words_ratio: f64,
    /// Minimum number of distinct stop words present (case-sensitive; reason
    /// `gopher_enough_stop_words`).
    #[serde(default = "d_min_stop_words")]
    pub min_stop_words: u64,
    /// The stop words (default: the, be, to, of, and, that, have, with).
    #[serde(default)]
    pub stop_words: Option<Vec<String>>,
    /// Language of the word splitter; only `en` (spaCy's blank English tokenizer) is supported.
    #[serde(default = "d_language")]
    pub language: String,
}

fn d_min_doc_words() -> u64 {
    50
}
fn d_max_doc_words() -> u64 {
    100_000
}
fn d_min_avg_word_length() -> f64 {
    3.0
}
fn d_max_avg_word_length() -> f64 {
    10.0
}
fn d_max_symbol_word_ratio() -> f64 {
    0.1
}
fn d_max_bullet_lines_ratio() -> f64 {
    0.9
}
fn d_max_ellipsis_lines_ratio() -> f64 {
    0.3
}
fn d_max_non_alpha_words_ratio() -> f64 {
    0.8
}
fn d_min_stop_words() -> u64 {
    2
}
pub(crate) fn d_language() -> String {
    "en".into()
}

impl Default for GopherQualityConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults")
    }
}

/// For each ASCII byte: bit 0 when it is not in datatrove's punctuation set, bit 1 when it is a
/// letter (Python's `isalpha`).
static ASCII_CLASSES: std::sync::LazyLock<[u8; 256]> = std::sync::LazyLock::new(|| {
    let mut t = [NON_ASCII; 256];
    for (b, v) in t.iter_mut().enumerate().take(128) {
        let c = b as u8 as char;
        *v = u8::from(!PUNCTUATION_SET.has(c)) | (u8::from(py_isalpha(c)) << 1);
    }
    t
});

/// [`ASCII_CLASSES`] bit of the bytes above 0x7F.
const NON_ASCII: u8 = 4;

/// datatrove's default stop words.
pub const STOP_WORDS: &[&str] = &["the", "be", "to", "of", "and", "that", "have", "with"];

crate::reasons! {
    SHORT_DOC = "gopher_short_doc",
    LONG_DOC = "gopher_long_doc",
    BELOW_AVG_THRESHOLD = "gopher_below_avg_threshold",
    ABOVE_AVG_THRESHOLD = "gopher_above_avg_threshold",
    TOO_MANY_HASHES = "gopher_too_many_hashes",
    TOO_MANY_ELLIPSIS = "gopher_too_many_ellipsis",
    TOO_MANY_BULLETS = "gopher_too_many_bullets",
    TOO_MANY_END_ELLIPSIS = "gopher_too_many_end_ellipsis",
    BELOW_ALPHA_THRESHOLD = "gopher_below_alpha_threshold",
    ENOUGH_STOP_WORDS = "gopher_enough_stop_words",
}

pub(crate) fn validate_language(language: &str, problems: &mut Problems) {
    if language != "en" {
        problems.push_hint(
            "language",
            format!("\"{language}\" is not supported; allowed: en"),
            "only spaCy's blank English word splitter is implemented",
        );
    }
}

impl StepSpec for GopherQualityConfig {
    const TYPE: &'static str = "gopher_quality";

    fn validate(&self, problems: &mut Problems) {
        if self.min_doc_words > 0
            && self.max_doc_words > 0
            && self.min_doc_words > self.max_doc_words
        {
            problems.push(
                "min_doc_words",
                format!(
                    "{} is greater than max_doc_words ({})",
                    self.min_doc_words, self.max_doc_words
                ),
            );
        }
        for (f, v) in [
            ("min_avg_word_length", self.min_avg_word_length),
            ("max_avg_word_length", self.max_avg_word_length),
            ("max_symbol_word_ratio", self.max_symbol_word_ratio),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                problems.push(
                    f,
                    format!("{v} is not allowed; allowed: a finite number >= 0"),
                );
            }
        }
        problems.ratio("max_bullet_lines_ratio", self.max_bullet_lines_ratio);
        problems.ratio("max_ellipsis_lines_ratio", self.max_ellipsis_lines_ratio);
        problems.ratio("max_non_alpha_words_ratio", self.max_non_alpha_words_ratio);
        if let Some(sw) = &self.stop_words
            && sw.iter().any(|w| w.is_empty())
        {
            problems.push("stop_words", "contains an empty string");
        }
        validate_language(&self.language, problems);
    }

    fn build(&self, _env: &BuildEnv) -> Result<Box<dyn Step>, StepError> {
        Ok(FilterStep::boxed(GopherQuality::new(self.clone())))
    }
}

/// The runtime filter.
#[derive(Debug)]
pub struct GopherQuality {
    cfg: GopherQualityConfig,
    stop_words: Vec<String>,
    /// Byte lengths (bit `len`, lengths up to 63) and first bytes of the stop words: most words
    /// are told apart from every stop word by these before any string comparison.
    stop_lens: u64,
    stop_first: [bool; 256],
    /// Documents longer than this are decided on their prefix.
    prefix_bytes: usize,
}

impl GopherQuality {
    /// Builds the filter from its config.
    pub fn new(cfg: GopherQualityConfig) -> Self {
        let mut stop_words: Vec<String> = cfg
            .stop_words
            .clone()
            .unwrap_or_else(|| STOP_WORDS.iter().map(|s| s.to_string()).collect());
        stop_words.sort();
        stop_words.dedup();
        let mut stop_lens = 0u64;
        let mut stop_first = [false; 256];
        for w in &stop_words {
            // A stop word of 64 bytes or more sets the top bit: longer words are compared too.
            stop_lens |= 1 << w.len().min(63);
            stop_first[w.as_bytes().first().copied().unwrap_or(0) as usize] = true;
        }
        Self {
            cfg,
            stop_words,
            stop_lens,
            stop_first,
            prefix_bytes: crate::filter::PREFIX_BYTES,
        }
    }

    /// The filter deciding documents longer than `limit` bytes on their prefix (tests use small
    /// limits; the step uses [`crate::filter::PREFIX_BYTES`]).
    pub fn with_prefix_bytes(mut self, limit: usize) -> Self {
        self.prefix_bytes = limit;
        self
    }

    /// Whether `w` can be a stop word (false: it is none).
    #[inline]
    fn may_be_stop_word(&self, w: &[u8]) -> bool {
        self.stop_lens >> w.len().min(63) & 1 == 1 && self.stop_first[w[0] as usize]
    }
}

/// Reusable working memory.
#[derive(Debug, Default)]
pub struct Scratch {
    stop_seen: Vec<bool>,
}

impl TextFilter for GopherQuality {
    type Scratch = Scratch;

    fn kind(&self) -> &'static str {
        GopherQualityConfig::TYPE
    }

    fn reasons(&self) -> &[&'static str] {
        REASONS
    }

    fn prefix_bytes(&self) -> Option<usize> {
        Some(self.prefix_bytes)
    }

    fn check(&self, doc: Doc<'_>, sc: &mut Scratch, _: &mut String) -> Verdict {
        shared_words(doc.text, |words| self.rules(doc.text, words, sc))
    }
}

impl GopherQuality {
    /// The rules, in datatrove's order, over the document's words.
    fn rules(&self, text: &str, words: &[Span], sc: &mut Scratch) -> Verdict {
        let c = &self.cfg;
        let n_words = words.len();
        let (mut n_ns, mut ns_chars, mut n_alpha) = (0usize, 0usize, 0usize);
        let punct = &*PUNCTUATION_SET;
        let lut = &*ASCII_CLASSES;
        for &(a, b) in words {
            let w = &text.as_bytes()[a as usize..b as usize];
            let mut non_symbol = false;
            let mut alpha = false;
            let mut len = 0usize;
            // Per ASCII byte: bit 0 = not in datatrove's punctuation set, bit 1 = letter; bytes
            // above 0x7F set NON_ASCII.
            let bits = w.iter().fold(0u8, |bits, &byte| bits | lut[byte as usize]);
            if bits & NON_ASCII == 0 {
                len = w.len();
                non_symbol = bits & 1 != 0;
                alpha = bits & 2 != 0;
            } else {
                for ch in text[a as usize..b as usize].chars() {
                    len += 1;
                    non_symbol |= !punct.has(ch);
                    alpha |= py_isalpha(ch);
                }
            }
            if non_symbol {
                n_ns += 1;
                ns_chars += len;
            }
            n_alpha += alpha as usize;
        }
        if c.min_doc_words > 0 && (n_ns as u64) < c.min_doc_words {
            return Verdict::Drop(SHORT_DOC);
        }
        if c.max_doc_words > 0 && (n_ns as u64) > c.max_doc_words {
            return Verdict::Drop(LONG_DOC);
        }
        // numpy's mean of an empty list is NaN, which fails no comparison.
        let avg = if n_ns == 0 {
            f64::NAN
        } else {
            ns_chars as f64 / n_ns as f64
        };
        if c.min_avg_word_length > 0.0 && avg < c.min_avg_word_length {
            return Verdict::Drop(BELOW_AVG_THRESHOLD);
        }
        if c.max_avg_word_length > 0.0 && avg > c.max_avg_word_length {
            return Verdict::Drop(ABOVE_AVG_THRESHOLD);
        }
        // datatrove divides by the word count here; with no words it raises, we keep going.
        let nw = n_words as f64;
        if c.max_symbol_word_ratio > 0.0 && n_words > 0 {
            let hashes = memchr::memchr_iter(b'#', text.as_bytes()).count() as f64;
            if hashes / nw > c.max_symbol_word_ratio {
                return Verdict::Drop(TOO_MANY_HASHES);
            }
            let ell = (count_str(text, "...") + count_str(text, "…")) as f64;
            if ell / nw > c.max_symbol_word_ratio {
                return Verdict::Drop(TOO_MANY_ELLIPSIS);
            }
        }
        if c.max_bullet_lines_ratio > 0.0 || c.max_ellipsis_lines_ratio > 0.0 {
            let (mut lines, mut bullets, mut ellipses) = (0usize, 0usize, 0usize);
            for line in splitlines(text) {
                lines += 1;
                let l = py_lstrip(line);
                bullets += (l.starts_with('•') || l.starts_with('-')) as usize;
                let r = py_rstrip(line);
                ellipses += (r.ends_with("...") || r.ends_with('…')) as usize;
            }
            if lines > 0 {
                if c.max_bullet_lines_ratio > 0.0
                    && bullets as f64 / lines as f64 > c.max_bullet_lines_ratio
                {
                    return Verdict::Drop(TOO_MANY_BULLETS);
                }
                if c.max_ellipsis_lines_ratio > 0.0
                    && ellipses as f64 / lines as f64 > c.max_ellipsis_lines_ratio
                {
                    return Verdict::Drop(TOO_MANY_END_ELLIPSIS);
                }
            }
        }
        if c.max_non_alpha_words_ratio > 0.0
            && n_words > 0
            && (n_alpha as f64 / nw) < c.max_non_alpha_words_ratio
        {
            return Verdict::Drop(BELOW_ALPHA_THRESHOLD);
        }
        if c.min_stop_words > 0 {
            sc.stop_seen.clear();
            sc.stop_seen.resize(self.stop_words.len(), false);
            let mut found = 0u64;
            for &(a, b) in words {
                let w = &text.as_bytes()[a as usize..b as usize];
                if !self.may_be_stop_word(w) {
                    continue;
                }
                if let Ok(k) = self.stop_words.binary_search_by(|s| s.as_bytes().cmp(w))
                    && !sc.stop_seen[k]
                {
                    sc.stop_seen[k] = true;
                    found += 1;
                    if found >= c.min_stop_words {
                        break;
                    }
                }
            }
            if found < c.min_stop_words {
                return Verdict::Drop(ENOUGH_STOP_WORDS);
            }
        }
        let _ = char_len;
        Verdict::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::testing::{batch, run};

    fn prose(n: usize) -> String {
        "The cat sat on the mat and looked at the birds with interest. ".repeat(n)
    }

    #[test]
    fn reasons_in_datatrove_order() {
        let cfg = GopherQualityConfig::default();
        let good = prose(10);
        let short = "The cat sat with the dog.".to_string();
        let hashes = format!("{} {}", prose(10), "#".repeat(40));
        let bullets = "- the item and that one\n".repeat(60);
        let no_stop = "Cats sit on mats looking at birds intently. ".repeat(20);
        let texts = [
            good.as_str(),
            short.as_str(),
            hashes.as_str(),
            bullets.as_str(),
            no_stop.as_str(),
        ];
        let got = run(&cfg, &mut batch(&texts), 0);
        assert_eq!(
            got,
            vec![
                None,
                Some("gopher_short_doc".into()),
                Some("gopher_too_many_hashes".into()),
                Some("gopher_too_many_bullets".into()),
                Some("gopher_enough_stop_words".into())
            ]
        );
    }

    #[test]
    fn long_documents_are_decided_on_their_prefix() {
        use crate::filter::testing::run_filter;
        // good prose, then a tail of hashes: dropped whole, kept on its prose prefix
        let head = prose(20).replace(". ", ".\n");
        let long = format!("{head}{}", "#".repeat(2000));
        let short = prose(2);
        let texts = [long.as_str(), short.as_str()];
        let (whole, n) = run_filter(GopherQuality::new(Default::default()), &texts);
        assert_eq!(
            whole,
            [Some("gopher_too_many_hashes"), Some("gopher_short_doc")]
        );
        assert_eq!(n, 0.0);
        let f = GopherQuality::new(Default::default()).with_prefix_bytes(head.len() + 100);
        let (prefix, n) = run_filter(f, &texts);
        assert_eq!(prefix, [None, Some("gopher_short_doc")]);
        assert_eq!(n, 1.0);
    }

    #[test]
    fn zero_disables_a_rule() {
        let cfg: GopherQualityConfig =
            toml::from_str("min_doc_words = 0\nmin_stop_words = 0").unwrap();
        assert_eq!(run(&cfg, &mut batch(&["Cats sit"]), 0), vec![None]);
        assert_eq!(run(&cfg, &mut batch(&[""]), 0), vec![None]);
    }

    #[test]
    fn validate_reports_all() {
        let cfg: GopherQualityConfig =
            toml::from_str("min_doc_words = 10\nmax_doc_words = 5\nmax_bullet_lines_ratio = 2.0\nlanguage = \"fr\"").unwrap();
        let mut p = Problems::new();
        cfg.validate(&mut p);
        let fields: Vec<&str> = p.items().iter().map(|x| x.field.as_str()).collect();
        assert_eq!(
            fields,
            ["min_doc_words", "max_bullet_lines_ratio", "language"]
        );
    }
}
