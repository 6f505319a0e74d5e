//! `c4_quality`: C4's line and document rules (Raffel et al. 2020), as datatrove 0.10.1's
//! `C4QualityFilter` applies them, including its rewrite of the kept text.

use std::sync::LazyLock;

use curate_core::{BuildEnv, Problems, Step, StepError, StepSpec};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::filter::{Doc, FilterStep, TextFilter, Verdict};
use crate::gopher_quality::{d_language, validate_language};
use crate::text::{char_len, py_lower_into, py_strip, splitlines};
use crate::words::{
    Span, WordSplitter, count_sentences_in_words, py_isspace, share_words, shared_words,
};

/// Removes lines that are not prose and drops documents that are not prose: lines without
/// terminal punctuation, with fewer than 3 words, with a word over 1,000 characters, mentioning
/// "javascript" or a cookie / terms-of-use phrase are removed; Wikipedia citation markers are
/// cut; documents containing "lorem ipsum" or `{`, or with fewer than 5 sentences left, are
/// dropped. The kept lines, joined by `\n` and stripped, become the document's text.
///
/// Why: this is C4's cleaning recipe; FineWeb applies it with `filter_no_terminal_punct = false`.
///
/// Semantics are datatrove 0.10.1's: lines are `str.splitlines()` of the text, each stripped;
/// words of a line are its whitespace-separated pieces; sentences are counted per kept line with
/// spaCy's sentencizer over blank-English tokens. Only `split_paragraph = true` (datatrove's
/// default) is supported.
///
/// Every document is decided whole. A document longer than 1 MiB
/// ([`crate::filter::PREFIX_BYTES`]) has its sentences counted line by line instead of from a
/// word list of the whole text (same counts, memory bounded by the longest line).
///
/// Example:
///
/// ```toml
/// [[steps]]
/// type = "c4_quality"
/// filter_no_terminal_punct = false
/// ```
///
/// Reasons: `lorem_ipsum`, `curly_bracket`, `too_few_sentences`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct C4QualityConfig {
    /// Split the text into lines (true, as C4 does); false would split into sentences, which is
    /// not supported.
    #[serde(default = "yes")]
    pub split_paragraph: bool,
    /// Remove Wikipedia-style citation markers: `[1]`, `[]`, `[edit]`, `[citation needed]`.
    #[serde(default = "yes")]
    pub remove_citations: bool,
    /// Remove lines that do not end in `.`, `?`, `!`, `"` or `'`, or that end in `...`.
    #[serde(default = "yes")]
    pub filter_no_terminal_punct: bool,
    /// Drop documents with fewer sentences than this in their kept lines (reason
    /// `too_few_sentences`); -1 disables.
    #[serde(default = "d_min_num_sentences")]
    pub min_num_sentences: i64,
    /// Remove lines with fewer whitespace-separated words than this; -1 disables.
    #[serde(default = "d_min_words_per_line")]
    pub min_words_per_line: i64,
    /// Remove lines with a word longer than this many characters; -1 disables.
    #[serde(default = "d_max_word_length")]
    pub max_word_length: i64,
    /// Drop documents containing "lorem ipsum" (any case) in a kept line (reason `lorem_ipsum`).
    #[serde(default = "yes")]
    pub filter_lorem_ipsum: bool,
    /// Remove lines containing "javascript" (any case).
    #[serde(default = "yes")]
    pub filter_javascript: bool,
    /// Drop documents with `{` in a kept line (reason `curly_bracket`).
    #[serde(default = "yes")]
    pub filter_curly_bracket: bool,
    /// Remove lines containing "terms of use", "privacy policy", "cookie policy", "uses
    /// cookies", "use of cookies" or "use cookies" (any case).
    #[serde(default = "yes")]
    pub filter_policy: bool,
    /// Language of the sentence splitter; only `en` is supported.
    #[serde(default = "d_language")]
    pub language: String,
}

fn yes() -> bool {
    true
}
fn d_min_num_sentences() -> i64 {
    5
}
fn d_min_words_per_line() -> i64 {
    3
}
fn d_max_word_length() -> i64 {
    1000
}

impl Default for C4QualityConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults")
    }
}

crate::reasons! {
    LOREM_IPSUM = "lorem_ipsum",
    CURLY_BRACKET = "curly_bracket",
    TOO_FEW_SENTENCES = "too_few_sentences",
}

const POLICY: &[&str] = &[
    "terms of use",
    "privacy policy",
    "cookie policy",
    "uses cookies",
    "use of cookies",
    "use cookies",
];

/// Substring finders for the phrase rules (over the lowercased line).
struct Finders {
    lorem: memchr::memmem::Finder<'static>,
    javascript: memchr::memmem::Finder<'static>,
    policy: Vec<memchr::memmem::Finder<'static>>,
}

static FINDERS: LazyLock<Finders> = LazyLock::new(|| Finders {
    lorem: memchr::memmem::Finder::new("lorem ipsum"),
    javascript: memchr::memmem::Finder::new("javascript"),
    policy: POLICY.iter().map(memchr::memmem::Finder::new).collect(),
});

static CITATION: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"\[\d*\]|\[edit\]|\[citation needed\]").expect("citation regex")
});

impl StepSpec for C4QualityConfig {
    const TYPE: &'static str = "c4_quality";

    fn validate(&self, problems: &mut Problems) {
        if !self.split_paragraph {
            problems.push_hint(
                "split_paragraph",
                "false is not supported; allowed: true",
                "datatrove's sentence mode (split_paragraph = false) is not implemented",
            );
        }
        for (f, v) in [
            ("min_num_sentences", self.min_num_sentences),
            ("min_words_per_line", self.min_words_per_line),
            ("max_word_length", self.max_word_length),
        ] {
            if v < -1 {
                problems.push(
                    f,
                    format!("{v} is out of range; allowed: -1 (off) or a count >= 0"),
                );
            }
        }
        validate_language(&self.language, problems);
    }

    fn build(&self, _env: &BuildEnv) -> Result<Box<dyn Step>, StepError> {
        Ok(FilterStep::boxed(C4Quality::new(self.clone())))
    }
}

/// The runtime filter.
#[derive(Debug)]
pub struct C4Quality {
    cfg: C4QualityConfig,
    /// Documents longer than this count sentences line by line (no whole-text word list).
    whole_split_bytes: usize,
}

impl C4Quality {
    /// Builds the filter from its config.
    pub fn new(cfg: C4QualityConfig) -> Self {
        Self {
            cfg,
            whole_split_bytes: crate::filter::PREFIX_BYTES,
        }
    }

    /// The filter counting sentences line by line in documents longer than `limit` bytes
    /// (tests use small limits; the step uses [`crate::filter::PREFIX_BYTES`]).
    pub fn with_whole_split_bytes(mut self, limit: usize) -> Self {
        self.whole_split_bytes = limit;
        self
    }
}

/// Reusable working memory.
#[derive(Debug, Default)]
pub struct Scratch {
    splitter: WordSplitter,
    tokens: Vec<Span>,
    line: String,
    lower: String,
    /// The words of the rewritten text, when all its lines' words are known.
    out_words: Vec<Span>,
    out_words_known: bool,
}

impl TextFilter for C4Quality {
    type Scratch = Scratch;

    fn kind(&self) -> &'static str {
        C4QualityConfig::TYPE
    }

    fn reasons(&self) -> &[&'static str] {
        REASONS
    }

    fn check(&self, doc: Doc<'_>, sc: &mut Scratch, out: &mut String) -> Verdict {
        if self.cfg.min_num_sentences != -1 && doc.text.len() <= self.whole_split_bytes {
            // Sentences are counted from the text's words (shared with the other word-based
            // steps of the chain): a line's words are the text's words inside it.
            let v = shared_words(doc.text, |words| self.lines(doc.text, Some(words), sc, out));
            if v == Verdict::Rewrite && sc.out_words_known {
                // The next word-based step (`fineweb_quality`) reuses them.
                share_words(out, &sc.out_words);
            }
            v
        } else {
            // no sentences to count, or a document too long for a word list of the whole text:
            // sentences are counted line by line
            self.lines(doc.text, None, sc, out)
        }
    }
}

impl C4Quality {
    /// The line rules and the rewrite; `words` are the words of `text`, if known (sentences are
    /// then counted from them, else line by line).
    fn lines(
        &self,
        text: &str,
        words: Option<&[Span]>,
        sc: &mut Scratch,
        out: &mut String,
    ) -> Verdict {
        let c = &self.cfg;
        let mut sentences = 0i64;
        let mut first = true;
        // Index of the first word not before the current line.
        let mut next_word = 0usize;
        sc.out_words.clear();
        sc.out_words_known = c.min_num_sentences != -1 && words.is_some();
        for raw in splitlines(text) {
            let stripped = py_strip(raw);
            let mut n_words = 0i64;
            let mut long_word = false;
            for w in stripped.split(py_isspace).filter(|w| !w.is_empty()) {
                n_words += 1;
                if c.max_word_length != -1 && char_len(w) as i64 > c.max_word_length {
                    long_word = true;
                    break;
                }
            }
            if long_word {
                continue;
            }
            let cited = c.remove_citations && stripped.contains('[');
            let line: &str = if cited {
                sc.line.clear();
                let mut last = 0;
                for m in CITATION.find_iter(stripped) {
                    sc.line.push_str(&stripped[last..m.start()]);
                    last = m.end();
                }
                sc.line.push_str(&stripped[last..]);
                &sc.line
            } else {
                stripped
            };
            if c.filter_no_terminal_punct
                && (!line.ends_with(['.', '?', '!', '"', '\'']) || line.ends_with("..."))
            {
                continue;
            }
            if n_words < c.min_words_per_line {
                continue;
            }
            // One lowercase copy of the line for the phrase rules (Python's `line.lower()`).
            let lower: &[u8] = if c.filter_lorem_ipsum || c.filter_javascript || c.filter_policy {
                py_lower_into(line, &mut sc.lower);
                sc.lower.as_bytes()
            } else {
                b""
            };
            let has = |needle: &memchr::memmem::Finder<'_>| needle.find(lower).is_some();
            if c.filter_lorem_ipsum && has(&FINDERS.lorem) {
                return Verdict::Drop(LOREM_IPSUM);
            }
            if c.filter_javascript && has(&FINDERS.javascript) {
                continue;
            }
            if c.filter_curly_bracket && line.contains('{') {
                return Verdict::Drop(CURLY_BRACKET);
            }
            if c.filter_policy && FINDERS.policy.iter().any(has) {
                continue;
            }
            // The line's words in `words` and the line's start in `text`.
            let mut line_words = None;
            if c.min_num_sentences != -1 {
                sentences += if let (false, Some(words)) = (cited, words) {
                    let start = stripped.as_ptr() as usize - text.as_ptr() as usize;
                    let end = (start + stripped.len()) as u32;
                    let start = start as u32;
                    while next_word < words.len() && words[next_word].0 < start {
                        next_word += 1;
                    }
                    let first_word = next_word;
                    while next_word < words.len() && words[next_word].1 <= end {
                        next_word += 1;
                    }
                    line_words = Some((first_word..next_word, start));
                    count_sentences_in_words(text, &words[first_word..next_word])
                } else {
                    // Citation markers cut out (not a stretch of the text), or no word list.
                    sc.splitter.count_sentences(line, &mut sc.tokens)
                } as i64;
            }
            if !first {
                out.push('\n');
            }
            match (line_words, words) {
                (Some((range, start)), Some(words)) if sc.out_words_known => {
                    let at = out.len() as u32;
                    sc.out_words.extend(
                        words[range]
                            .iter()
                            .map(|&(a, b)| (a - start + at, b - start + at)),
                    );
                }
                _ => sc.out_words_known = false,
            }
            out.push_str(line);
            first = false;
        }
        if sentences < c.min_num_sentences {
            return Verdict::Drop(TOO_FEW_SENTENCES);
        }
        // datatrove strips the joined text; trim in place.
        let end = py_strip_range(out);
        if end != (0, out.len()) {
            sc.out_words_known = false;
            let kept = out[end.0..end.1].to_string();
            out.clear();
            out.push_str(&kept);
        }
        Verdict::Rewrite
    }
}

fn py_strip_range(s: &str) -> (usize, usize) {
    let t = py_strip(s);
    let start = t.as_ptr() as usize - s.as_ptr() as usize;
    (start, start + t.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::testing::{batch, run};

    fn rewrite(cfg: &C4QualityConfig, text: &str) -> (Verdict, String) {
        let mut p =
            crate::filter::FilterProcessor::new(std::sync::Arc::new(C4Quality::new(cfg.clone())));
        let (v, out) = p.check(text, 0);
        (v, out.to_string())
    }

    /// The words `c4_quality` leaves in the shared split cache for its rewritten text are the
    /// text's own split.
    #[test]
    fn shares_the_words_of_the_rewrite() {
        let cfg = C4QualityConfig {
            filter_no_terminal_punct: false,
            ..C4QualityConfig::default()
        };
        let text = "  The first sentence is here.  And a second  one\tfollows!\n\
                    Menu\nSee e.g. example.com/x?y for it's (details). Third one? Yes.\r\n\
                    Fifth: \u{2028}don't stop... ok. Sixth sentence, really.\n\
                    Seventh:-) sentence\u{a0}here. Eighth one, 3.5 km away!  \n";
        let split = |s: &str| {
            let mut w = Vec::new();
            WordSplitter::new().split(s, &mut w);
            w
        };
        let filter = C4Quality::new(cfg.clone());
        let (mut sc, mut out) = (Scratch::default(), String::new());
        let v = filter.lines(text, Some(&split(text)), &mut sc, &mut out);
        assert_eq!(v, Verdict::Rewrite);
        assert!(sc.out_words_known);
        assert_eq!(sc.out_words, split(&out));

        crate::words::clear_shared_words();
        let (v, out) = rewrite(&cfg, text);
        assert_eq!(v, Verdict::Rewrite);
        assert_eq!(
            crate::words::shared_words(&out, |w| w.to_vec()),
            split(&out)
        );

        // A line with a citation marker cut is not a stretch of the text: nothing is shared.
        let cited = format!("{text}A line with a citation.[1] Ninth sentence here.\n");
        let (mut sc, mut out) = (Scratch::default(), String::new());
        let v = filter.lines(&cited, Some(&split(&cited)), &mut sc, &mut out);
        assert_eq!(v, Verdict::Rewrite);
        assert!(!sc.out_words_known);
    }

    #[test]
    fn long_documents_count_sentences_line_by_line_with_the_same_result() {
        let texts = [
            "  The first sentence is here.  And a second  one\tfollows!\n\
             Menu\nSee e.g. example.com/x?y for it's (details). Third one? Yes.\r\n\
             Fifth: \u{2028}don't stop... ok. Sixth sentence, really.\n\
             Seventh:-) sentence\u{a0}here. Eighth one, 3.5 km away!  \n"
                .to_string(),
            "A line with a citation.[1] Ninth sentence here.\nTwo. Three. Four. Five. Six.\n"
                .repeat(3),
            "Too few. Sentences.\n".to_string(),
            "Mr. Smith went to Washington. He arrived at 3 p.m. sharp! Did he? Yes.\n\
             \"Quoted.\" 'Single.' (Paren.) Last one here."
                .to_string(),
        ];
        for cfg in [
            C4QualityConfig::default(),
            C4QualityConfig {
                filter_no_terminal_punct: false,
                ..C4QualityConfig::default()
            },
        ] {
            for text in &texts {
                let mut words = Vec::new();
                WordSplitter::new().split(text, &mut words);
                let f = C4Quality::new(cfg.clone());
                let (mut sc, mut whole) = (Scratch::default(), String::new());
                let v = f.lines(text, Some(&words), &mut sc, &mut whole);
                let (mut sc, mut by_line) = (Scratch::default(), String::new());
                assert_eq!(f.lines(text, None, &mut sc, &mut by_line), v, "{text:?}");
                assert_eq!(by_line, whole);
                // and through the processor, with a limit below the text's length
                let mut p = crate::filter::FilterProcessor::new(std::sync::Arc::new(
                    C4Quality::new(cfg.clone()).with_whole_split_bytes(10),
                ));
                let (v2, out) = p.check(text, 0);
                assert_eq!(v2, v, "{text:?}");
                if v == Verdict::Rewrite {
                    assert_eq!(out, whole);
                }
            }
        }
    }

    #[test]
    fn rewrites_kept_lines() {
        let cfg = C4QualityConfig::default();
        let text = "Menu\nThe first sentence is here. And a second one follows.[1]\n\
                    Enable JavaScript to see this page properly.\nRead our privacy policy now.\n\
                    Third sentence here! Fourth one? Fifth one too.\nno punctuation at the end";
        let (v, out) = rewrite(&cfg, text);
        assert_eq!(v, Verdict::Rewrite);
        assert_eq!(
            out,
            "The first sentence is here. And a second one follows.\nThird sentence here! Fourth one? Fifth one too."
        );
    }

    #[test]
    fn document_reasons() {
        let cfg = C4QualityConfig::default();
        let five =
            "One sentence here. Two sentence here. Three here now. Four is here. Five is here.";
        let lorem = format!("{five}\nLorem ipsum dolor sit amet.");
        let curly = format!("{five}\nfunction f() {{ return 1; }}.");
        let texts = [
            five,
            lorem.as_str(),
            curly.as_str(),
            "Too few sentences here.",
        ];
        let got = run(&cfg, &mut batch(&texts), 0);
        let got: Vec<Option<&str>> = got.iter().map(|x| x.as_deref()).collect();
        assert_eq!(
            got,
            [
                None,
                Some("lorem_ipsum"),
                Some("curly_bracket"),
                Some("too_few_sentences")
            ]
        );
    }

    #[test]
    fn fineweb_variant_keeps_unpunctuated_lines() {
        let cfg: C4QualityConfig = toml::from_str("filter_no_terminal_punct = false").unwrap();
        let text = "A heading without stop\nOne. Two. Three. Four. Five.";
        let (v, out) = rewrite(&cfg, text);
        assert_eq!(v, Verdict::Rewrite);
        assert_eq!(out, text);
    }
}
