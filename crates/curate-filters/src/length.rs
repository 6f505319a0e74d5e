//! `length`: bounds on a document's length in characters and in words.

use curate_core::{BuildEnv, Problems, Step, StepError, StepSpec};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::filter::{Doc, FilterStep, TextFilter, Verdict};

/// Drops documents that are too short or too long, counted in characters or in words.
///
/// Why: very short pages are mostly navigation and boilerplate, very long ones are mostly dumps
/// and lists; bounding length is the cheapest first cut and keeps later steps' cost predictable.
///
/// Characters are Unicode scalar values (Python's `len(text)`). Words are runs of non-whitespace
/// characters (Python's `len(text.split())`). Every bound is optional; the first failing bound,
/// in the order of the options below, gives the reason.
///
/// Example:
///
/// ```toml
/// [[steps]]
/// type = "length"
/// min_words = 50
/// max_chars = 1000000
/// ```
///
/// Reasons: `too_short_chars`, `too_long_chars`, `too_few_words`, `too_many_words`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LengthConfig {
    /// Drop documents with fewer characters than this (reason `too_short_chars`).
    #[serde(default)]
    pub min_chars: Option<u64>,
    /// Drop documents with more characters than this (reason `too_long_chars`).
    #[serde(default)]
    pub max_chars: Option<u64>,
    /// Drop documents with fewer whitespace-separated words than this (reason `too_few_words`).
    #[serde(default)]
    pub min_words: Option<u64>,
    /// Drop documents with more whitespace-separated words than this (reason `too_many_words`).
    #[serde(default)]
    pub max_words: Option<u64>,
}

crate::reasons! {
    TOO_SHORT_CHARS = "too_short_chars",
    TOO_LONG_CHARS = "too_long_chars",
    TOO_FEW_WORDS = "too_few_words",
    TOO_MANY_WORDS = "too_many_words",
}

impl StepSpec for LengthConfig {
    const TYPE: &'static str = "length";

    fn validate(&self, problems: &mut Problems) {
        if let (Some(lo), Some(hi)) = (self.min_chars, self.max_chars)
            && lo > hi
        {
            problems.push(
                "min_chars",
                format!("min_chars ({lo}) is greater than max_chars ({hi})"),
            );
        }
        if let (Some(lo), Some(hi)) = (self.min_words, self.max_words)
            && lo > hi
        {
            problems.push(
                "min_words",
                format!("min_words ({lo}) is greater than max_words ({hi})"),
            );
        }
    }

    fn build(&self, _env: &BuildEnv) -> Result<Box<dyn Step>, StepError> {
        Ok(FilterStep::boxed(LengthFilter(self.clone())))
    }
}

/// The runtime filter.
#[derive(Debug)]
pub struct LengthFilter(pub LengthConfig);

impl TextFilter for LengthFilter {
    type Scratch = ();

    fn kind(&self) -> &'static str {
        LengthConfig::TYPE
    }

    fn reasons(&self) -> &[&'static str] {
        REASONS
    }

    fn check(&self, doc: Doc<'_>, _: &mut (), _: &mut String) -> Verdict {
        let c = &self.0;
        if c.min_chars.is_some() || c.max_chars.is_some() {
            // Short-circuit: byte length bounds the char count from above, and len/4 from below.
            let bytes = doc.text.len() as u64;
            let chars = || doc.text.chars().count() as u64;
            if let Some(lo) = c.min_chars
                && bytes < lo.saturating_mul(4)
                && chars() < lo
            {
                return Verdict::Drop(TOO_SHORT_CHARS);
            }
            if let Some(hi) = c.max_chars
                && bytes > hi
                && chars() > hi
            {
                return Verdict::Drop(TOO_LONG_CHARS);
            }
        }
        if c.min_words.is_some() || c.max_words.is_some() {
            let limit = c
                .max_words
                .map_or(c.min_words.unwrap_or(0), |m| m.saturating_add(1));
            let mut n = 0u64;
            for _ in doc.text.split_whitespace() {
                n += 1;
                if n >= limit && c.max_words.is_some() {
                    break;
                }
            }
            if let Some(lo) = c.min_words
                && n < lo
            {
                return Verdict::Drop(TOO_FEW_WORDS);
            }
            if let Some(hi) = c.max_words
                && n > hi
            {
                return Verdict::Drop(TOO_MANY_WORDS);
            }
        }
        Verdict::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::testing::{batch, run};

    #[test]
    fn bounds_and_reasons() {
        let cfg = LengthConfig {
            min_chars: Some(5),
            max_chars: Some(30),
            min_words: Some(2),
            max_words: Some(4),
        };
        let mut b = batch(&[
            "abc",
            "one two three",
            "x".repeat(40).as_str(),
            "single",
            "a b c d e",
            "日本語の テキスト",
        ]);
        let got = run(&cfg, &mut b, 0);
        assert_eq!(
            got,
            vec![
                Some("too_short_chars".into()),
                None,
                Some("too_long_chars".into()),
                Some("too_few_words".into()),
                Some("too_many_words".into()),
                None
            ]
        );
    }

    #[test]
    fn chars_are_scalar_values() {
        // 5 chars, 15 bytes: not too short for min_chars = 5, too long for max_chars = 4.
        let cfg = LengthConfig {
            min_chars: Some(5),
            ..Default::default()
        };
        assert_eq!(run(&cfg, &mut batch(&["日本語です"]), 0), vec![None]);
        let cfg = LengthConfig {
            max_chars: Some(4),
            ..Default::default()
        };
        assert_eq!(
            run(&cfg, &mut batch(&["日本語です"]), 0),
            vec![Some("too_long_chars".into())]
        );
    }

    #[test]
    fn validate_collects_every_problem() {
        let cfg = LengthConfig {
            min_chars: Some(10),
            max_chars: Some(5),
            min_words: Some(9),
            max_words: Some(1),
        };
        let mut p = Problems::new();
        cfg.validate(&mut p);
        assert_eq!(p.items().len(), 2);
    }

    #[test]
    fn config_rejects_unknown_fields() {
        assert!(toml::from_str::<LengthConfig>("min_word = 3").is_err());
        let c: LengthConfig = toml::from_str("min_words = 3").unwrap();
        assert_eq!(c.min_words, Some(3));
    }
}
