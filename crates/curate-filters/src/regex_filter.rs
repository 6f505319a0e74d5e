//! `regex`: drops documents, or removes lines, that match regular expressions.

use curate_core::{BuildEnv, Problems, Step, StepError, StepSpec};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::filter::{Doc, FilterStep, TextFilter, Verdict};

/// Drops every document in which one of `patterns` matches (`mode = "drop_document"`, like
/// datatrove's `RegexFilter`), or removes the lines in which one matches and keeps the rest
/// (`mode = "remove_lines"`; a document left without lines is dropped).
///
/// Why: corpus-specific junk (boilerplate footers, spam phrases, markup remnants) is easiest to
/// describe with a pattern.
///
/// Patterns use Rust's `regex` syntax (like Python's `re`, without look-around or
/// backreferences; as in Python, `^` and `$` match at the text's ends unless `(?m)` is given);
/// they are validated before any data is read. A pattern that matches every text (one that can
/// match the empty string anywhere, such as `""`, `a*` or `^`) is refused: it would drop every
/// document (or remove every line). Lines are split on `\n`.
///
/// Example:
///
/// ```toml
/// [[steps]]
/// type = "regex"
/// patterns = ["(?i)all rights reserved", "^Share this:"]
/// mode = "remove_lines"
/// ```
///
/// Reasons: `regex_match` (mode `drop_document`), `regex_empty` (mode `remove_lines`, nothing
/// left).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegexConfig {
    /// The patterns; a document or line matches when any of them matches.
    pub patterns: Vec<String>,
    /// `drop_document` (default) or `remove_lines`.
    #[serde(default = "d_mode")]
    pub mode: String,
    /// Match case-insensitively.
    #[serde(default)]
    pub case_insensitive: bool,
}

fn d_mode() -> String {
    "drop_document".into()
}

const MODES: &[&str] = &["drop_document", "remove_lines"];

crate::reasons! {
    REGEX_MATCH = "regex_match",
    REGEX_EMPTY = "regex_empty",
}

impl StepSpec for RegexConfig {
    const TYPE: &'static str = "regex";

    fn validate(&self, problems: &mut Problems) {
        if self.patterns.is_empty() {
            problems.push("patterns", "is empty; give at least one pattern");
        }
        let remove_lines = self.mode == "remove_lines";
        for (i, p) in self.patterns.iter().enumerate() {
            if let Err(e) = regex::Regex::new(p) {
                problems.push(
                    &format!("patterns[{i}]"),
                    format!("invalid pattern \"{p}\": {e}"),
                );
            } else if matches_everything(p) {
                let (what, all) = if remove_lines {
                    (
                        "line",
                        "every line would be removed and every document dropped",
                    )
                } else {
                    ("document", "every document would be dropped")
                };
                problems.push(
                    &format!("patterns[{i}]"),
                    format!(
                        "pattern \"{p}\" matches every {what} (it can match the empty string \
                         anywhere), so {all}; give a pattern that needs at least one character"
                    ),
                );
            }
        }
        problems.one_of("mode", &self.mode, MODES);
    }

    fn build(&self, _env: &BuildEnv) -> Result<Box<dyn Step>, StepError> {
        let set = regex::RegexSetBuilder::new(&self.patterns)
            .case_insensitive(self.case_insensitive)
            .build()
            .map_err(|e| StepError::Other(format!("regex: invalid pattern: {e}")))?;
        Ok(FilterStep::boxed(RegexFilter {
            set,
            remove_lines: self.mode == "remove_lines",
        }))
    }
}

/// Whether `pattern` (valid) matches every text: it can match the empty string at the text's
/// start or at its end, whatever the text (an empty alternative or repetition, `^`, `$`, `(?m)^`).
/// Sound but not complete: patterns that only match every text through word-boundary tricks
/// (`\b|\B`) are not caught.
fn matches_everything(pattern: &str) -> bool {
    use regex_syntax::hir::{Hir, HirKind, Look};
    /// Whether `h` matches the empty string where only the looks `ok` are known to hold.
    fn empty(h: &Hir, ok: &[Look]) -> bool {
        match h.kind() {
            HirKind::Empty => true,
            HirKind::Literal(_) | HirKind::Class(_) => false,
            HirKind::Look(l) => ok.contains(l),
            HirKind::Repetition(r) => r.min == 0 || empty(&r.sub, ok),
            HirKind::Capture(c) => empty(&c.sub, ok),
            HirKind::Concat(v) => v.iter().all(|x| empty(x, ok)),
            HirKind::Alternation(v) => v.iter().any(|x| empty(x, ok)),
        }
    }
    let Ok(hir) = regex_syntax::parse(pattern) else {
        return false;
    };
    // what holds at offset 0 of every text, and at its end
    let start = [Look::Start, Look::StartLF, Look::StartCRLF];
    let end = [Look::End, Look::EndLF, Look::EndCRLF];
    empty(&hir, &start) || empty(&hir, &end)
}

/// The runtime filter.
#[derive(Debug)]
pub struct RegexFilter {
    set: regex::RegexSet,
    remove_lines: bool,
}

impl TextFilter for RegexFilter {
    type Scratch = ();

    fn kind(&self) -> &'static str {
        RegexConfig::TYPE
    }

    fn reasons(&self) -> &[&'static str] {
        REASONS
    }

    fn check(&self, doc: Doc<'_>, _: &mut (), out: &mut String) -> Verdict {
        if !self.remove_lines {
            return if self.set.is_match(doc.text) {
                Verdict::Drop(REGEX_MATCH)
            } else {
                Verdict::Keep
            };
        }
        let mut kept = 0usize;
        for line in doc.text.split('\n') {
            if self.set.is_match(line) {
                continue;
            }
            if kept > 0 {
                out.push('\n');
            }
            out.push_str(line);
            kept += 1;
        }
        if kept == 0 {
            Verdict::Drop(REGEX_EMPTY)
        } else if out.len() == doc.text.len() {
            Verdict::Keep
        } else {
            Verdict::Rewrite
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::testing::{batch, run};

    #[test]
    fn drops_documents() {
        let cfg: RegexConfig =
            toml::from_str("patterns = ['(?m)^Share this', 'lorem']\ncase_insensitive = true")
                .unwrap();
        let got = run(
            &cfg,
            &mut batch(&["Hello\nshare this page", "clean text", "LOREM"]),
            0,
        );
        assert_eq!(
            got,
            vec![Some("regex_match".into()), None, Some("regex_match".into())]
        );
    }

    #[test]
    fn removes_lines() {
        let cfg: RegexConfig =
            toml::from_str("patterns = ['^Share this']\nmode = 'remove_lines'").unwrap();
        let mut b = batch(&[
            "Keep me\nShare this page\nAnd me",
            "Share this",
            "untouched",
        ]);
        let got = run(&cfg, &mut b, 0);
        assert_eq!(got, vec![None, Some("regex_empty".into()), None]);
        assert_eq!(b.text(0), "Keep me\nAnd me");
        assert_eq!(b.text(2), "untouched");
    }

    #[test]
    fn patterns_that_match_every_text_are_refused() {
        for (p, everything) in [
            ("", true),
            ("a*", true),
            ("(?:x|)", true),
            ("^", true),
            ("$", true),
            ("(?m)^", true),
            ("\\s*", true),
            ("(?i)(lorem)?", true),
            ("^$", false),
            ("(?m)^$", false),
            ("\\b", false),
            ("a+", false),
            ("^Share this", false),
            ("x*y", false),
        ] {
            assert_eq!(matches_everything(p), everything, "{p:?}");
            if everything {
                // the check is sound: the pattern does match every text
                let re = regex::Regex::new(p).unwrap();
                for t in ["", "x", "\n", "two words\nand lines"] {
                    assert!(re.is_match(t), "{p:?} on {t:?}");
                }
            }
        }
        for mode in ["drop_document", "remove_lines"] {
            let cfg: RegexConfig =
                toml::from_str(&format!("patterns = ['ok', '']\nmode = '{mode}'")).unwrap();
            let mut p = Problems::new();
            cfg.validate(&mut p);
            assert_eq!(p.items().len(), 1, "{mode}");
            assert_eq!(p.items()[0].field, "patterns[1]");
            assert!(
                p.items()[0].message.contains("matches every"),
                "{:?}",
                p.items()
            );
        }
    }

    #[test]
    fn validation_collects_bad_patterns_and_mode() {
        let cfg: RegexConfig =
            toml::from_str("patterns = ['(', 'ok', '[']\nmode = 'remove_line'").unwrap();
        let mut p = Problems::new();
        cfg.validate(&mut p);
        let fields: Vec<&str> = p.items().iter().map(|x| x.field.as_str()).collect();
        assert_eq!(fields, ["patterns[0]", "patterns[2]", "mode"]);
        assert!(
            p.items()[2]
                .hint
                .as_deref()
                .unwrap_or("")
                .contains("remove_lines")
        );
    }
}
