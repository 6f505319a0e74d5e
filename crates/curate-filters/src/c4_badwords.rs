//! `c4_badwords`: C4's bad-words filter over the LDNOOBW lists, as datatrove 0.10.1's
//! `C4BadWordsFilter` applies it.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use arrow::array::{Array, AsArray};
use curate_core::hash::{derive_seed, mix64, unit};
use curate_core::{
    BuildEnv, Counters, DocBatch, Problems, Processor, Step, StepError, StepSpec, TaskContext,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::text::py_lower_into;

/// Drops documents containing a word from the "List of Dirty, Naughty, Obscene and Otherwise Bad
/// Words" (LDNOOBW) of the document's language.
///
/// Why: C4 removed every page with such a word; FineWeb-style recipes often keep it as an
/// option. The lists ship in the binary (the revisions datatrove 0.10.1 pins: `en` at LDNOOBW
/// commit 25e679f, the 27 others at 5faf2ba; CC-BY-4.0), so nothing is downloaded.
///
/// The language is read from the `language` column (e.g. written by the `language` step), else
/// `default_language`. Matching is datatrove's: on the lowercased text, for `ja`, `th` and `zh`
/// any occurrence counts; for other languages a word must be flanked by non-word characters or
/// the text's ends. datatrove's allow-list ("sm", "グロ", "女の子", "性") is removed from every
/// list. With `keep_fraction`, a document with bad words is still kept when a seeded hash of
/// its key falls below the fraction (datatrove draws from a random generator instead, so its
/// choice depends on worker order; ours does not).
///
/// Example:
///
/// ```toml
/// [[steps]]
/// type = "c4_badwords"
/// default_language = "en"
/// fail_on_missing_language = false
/// ```
///
/// Reason: `document_removed_with_badwords`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct C4BadWordsConfig {
    /// Share of documents with bad words to keep anyway (0 keeps none).
    #[serde(default)]
    pub keep_fraction: f64,
    /// Fail the run when a document's language has no list (false: keep such documents and
    /// count them as `missing_badwords_lang`).
    #[serde(default = "yes")]
    pub fail_on_missing_language: bool,
    /// Seed mixed into the run seed for `keep_fraction` (optional).
    #[serde(default)]
    pub seed: Option<u64>,
    /// Language assumed for documents without a `language` value.
    #[serde(default = "d_default_language")]
    pub default_language: String,
}

fn yes() -> bool {
    true
}
fn d_default_language() -> String {
    "en".into()
}

impl Default for C4BadWordsConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults")
    }
}

crate::reasons! {
    BADWORDS = "document_removed_with_badwords",
}

/// The shipped lists: (language, file content).
pub static LISTS: &[(&str, &str)] = &[
    ("ar", include_str!("../data/badwords/ar")),
    ("cs", include_str!("../data/badwords/cs")),
    ("da", include_str!("../data/badwords/da")),
    ("de", include_str!("../data/badwords/de")),
    ("en", include_str!("../data/badwords/en")),
    ("eo", include_str!("../data/badwords/eo")),
    ("es", include_str!("../data/badwords/es")),
    ("fa", include_str!("../data/badwords/fa")),
    ("fi", include_str!("../data/badwords/fi")),
    ("fil", include_str!("../data/badwords/fil")),
    ("fr", include_str!("../data/badwords/fr")),
    (
        "fr-CA-u-sd-caqc",
        include_str!("../data/badwords/fr-CA-u-sd-caqc"),
    ),
    ("hi", include_str!("../data/badwords/hi")),
    ("hu", include_str!("../data/badwords/hu")),
    ("it", include_str!("../data/badwords/it")),
    ("ja", include_str!("../data/badwords/ja")),
    ("kab", include_str!("../data/badwords/kab")),
    ("ko", include_str!("../data/badwords/ko")),
    ("nl", include_str!("../data/badwords/nl")),
    ("no", include_str!("../data/badwords/no")),
    ("pl", include_str!("../data/badwords/pl")),
    ("pt", include_str!("../data/badwords/pt")),
    ("ru", include_str!("../data/badwords/ru")),
    ("sv", include_str!("../data/badwords/sv")),
    ("th", include_str!("../data/badwords/th")),
    ("tlh", include_str!("../data/badwords/tlh")),
    ("tr", include_str!("../data/badwords/tr")),
    ("zh", include_str!("../data/badwords/zh")),
];

const ALLOWLIST: &[&str] = &["sm", "グロ", "女の子", "性"];

/// The languages with a list.
pub fn languages() -> impl Iterator<Item = &'static str> {
    LISTS.iter().map(|(l, _)| *l)
}

/// The compiled pattern for `lang`'s list.
fn pattern(content: &str, lang: &str) -> regex::Regex {
    let mut words: Vec<&str> = content
        .lines()
        .map(crate::text::py_strip)
        .filter(|w| !ALLOWLIST.contains(w))
        .collect();
    words.sort_unstable();
    words.dedup();
    let alt = words
        .iter()
        .map(|w| regex::escape(w))
        .collect::<Vec<_>>()
        .join("|");
    let re = if matches!(lang, "ja" | "th" | "zh") {
        alt
    } else {
        format!(r"(?:\W|^)(?:{alt})(?:\W|$)")
    };
    regex::RegexBuilder::new(&re)
        .size_limit(64 << 20)
        .build()
        .expect("bad-words pattern compiles")
}

impl StepSpec for C4BadWordsConfig {
    const TYPE: &'static str = "c4_badwords";

    fn validate(&self, problems: &mut Problems) {
        problems.ratio("keep_fraction", self.keep_fraction);
        let langs: Vec<&str> = languages().collect();
        problems.one_of("default_language", &self.default_language, &langs);
    }

    fn build(&self, env: &BuildEnv) -> Result<Box<dyn Step>, StepError> {
        Ok(Box::new(BadWordsStep(Arc::new(standalone(self, env.seed)))))
    }
}

/// The filter outside a pipeline (tests, benchmarks), for run seed `run_seed`.
pub fn standalone(cfg: &C4BadWordsConfig, run_seed: u64) -> BadWords {
    BadWords {
        cfg: cfg.clone(),
        seed: derive_seed(run_seed ^ cfg.seed.unwrap_or(0), "c4_badwords"),
        compiled: LISTS.iter().map(|_| OnceLock::new()).collect(),
        index: LISTS
            .iter()
            .enumerate()
            .map(|(i, (l, _))| (*l, i))
            .collect(),
    }
}

/// The runtime filter (shared by all tasks; each list is compiled on first use).
#[derive(Debug)]
pub struct BadWords {
    cfg: C4BadWordsConfig,
    seed: u64,
    compiled: Vec<OnceLock<regex::Regex>>,
    index: HashMap<&'static str, usize>,
}

/// What the filter decided about one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadWordsVerdict {
    /// No bad word, or kept by `keep_fraction`.
    Keep,
    /// Contains a bad word.
    Drop,
    /// No list for the language (kept).
    MissingLanguage,
}

impl BadWords {
    /// Checks one document; `lower` is scratch for the lowercased text.
    pub fn check(&self, text: &str, lang: &str, key: u64, lower: &mut String) -> BadWordsVerdict {
        let Some(&i) = self.index.get(lang) else {
            return BadWordsVerdict::MissingLanguage;
        };
        let re = self.compiled[i].get_or_init(|| pattern(LISTS[i].1, LISTS[i].0));
        py_lower_into(text, lower);
        if !re.is_match(lower) {
            return BadWordsVerdict::Keep;
        }
        if self.cfg.keep_fraction > 0.0 && unit(mix64(key, self.seed)) < self.cfg.keep_fraction {
            return BadWordsVerdict::Keep;
        }
        BadWordsVerdict::Drop
    }
}

struct BadWordsStep(Arc<BadWords>);

impl Step for BadWordsStep {
    fn kind(&self) -> &'static str {
        C4BadWordsConfig::TYPE
    }

    fn reasons(&self) -> Vec<String> {
        REASONS.iter().map(|s| s.to_string()).collect()
    }

    fn processor(&self, _cx: &TaskContext<'_>) -> Result<Box<dyn Processor>, StepError> {
        Ok(Box::new(BadWordsProcessor {
            f: self.0.clone(),
            lower: String::new(),
        }))
    }
}

struct BadWordsProcessor {
    f: Arc<BadWords>,
    lower: String,
}

impl Processor for BadWordsProcessor {
    fn process(&mut self, batch: &mut DocBatch, counters: &mut Counters) -> Result<(), StepError> {
        let n = batch.len();
        let mut drops = Vec::new();
        let (mut missing, mut found) = (0usize, 0usize);
        {
            let langs = batch
                .column("language")
                .and_then(|c| c.as_string_opt::<i32>());
            let texts = batch.texts();
            let keys = batch.keys();
            for i in 0..n {
                let text = if texts.is_null(i) { "" } else { texts.value(i) };
                let lang = match langs {
                    Some(l) if !l.is_null(i) => l.value(i),
                    _ => self.f.cfg.default_language.as_str(),
                };
                match self.f.check(text, lang, keys.value(i), &mut self.lower) {
                    BadWordsVerdict::Keep => {}
                    BadWordsVerdict::Drop => {
                        found += 1;
                        drops.push(i);
                    }
                    BadWordsVerdict::MissingLanguage => {
                        if self.f.cfg.fail_on_missing_language {
                            return Err(StepError::Data(format!(
                                "c4_badwords: no bad-words list for language \"{lang}\" (document {}); \
                                 lists exist for: {}; set fail_on_missing_language = false to keep such documents",
                                batch.id_string(i),
                                languages().collect::<Vec<_>>().join(", ")
                            )));
                        }
                        missing += 1;
                    }
                }
            }
        }
        for i in drops {
            batch.drop_row(i, BADWORDS);
        }
        if missing > 0 {
            counters.add("missing_badwords_lang", missing as f64);
        }
        if found > 0 {
            counters.add("documents_with_badwords", found as f64);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::testing::{batch, run};

    #[test]
    fn flanked_match_for_spaced_languages() {
        let cfg = C4BadWordsConfig::default();
        let got = run(
            &cfg,
            &mut batch(&[
                "A clean sentence.",
                "What the FUCK.",
                "Scunthorpe is a town.",
                "fuck",
            ]),
            0,
        );
        assert_eq!(
            got,
            vec![None, Some(REASONS[0].into()), None, Some(REASONS[0].into())]
        );
    }

    #[test]
    fn every_list_compiles_and_is_nonempty() {
        for (lang, content) in LISTS {
            assert!(content.lines().count() > 0, "{lang}");
            let _ = pattern(content, lang);
        }
        assert_eq!(LISTS.len(), 28);
    }

    #[test]
    fn keep_fraction_is_seeded() {
        let cfg = C4BadWordsConfig {
            keep_fraction: 0.5,
            ..Default::default()
        };
        let texts: Vec<String> = (0..400).map(|i| format!("doc {i} says shit")).collect();
        let refs: Vec<&str> = texts.iter().map(|s| s.as_str()).collect();
        let a = run(&cfg, &mut batch(&refs), 1);
        let kept = a.iter().filter(|r| r.is_none()).count();
        assert!((150..250).contains(&kept), "{kept}");
        assert_eq!(a, run(&cfg, &mut batch(&refs), 1));
    }

    #[test]
    fn missing_language_fails_or_passes() {
        use std::sync::Arc as A;
        let mut b = batch(&["x"]);
        b.set_column(
            "language",
            A::new(arrow::array::StringArray::from(vec!["xx"])),
        );
        let cfg = C4BadWordsConfig::default();
        let step = cfg.build(&crate::filter::testing::env(0)).unwrap();
        let dir = std::env::temp_dir();
        let cx = TaskContext {
            task: 0,
            tasks: 1,
            dir: &dir,
            step_dirs: &[],
            seed: 0,
        };
        let err = step
            .processor(&cx)
            .unwrap()
            .process(&mut b, &mut Counters::default())
            .unwrap_err();
        assert!(err.to_string().contains("\"xx\""), "{err}");
        let cfg = C4BadWordsConfig {
            fail_on_missing_language: false,
            ..Default::default()
        };
        let step = cfg.build(&crate::filter::testing::env(0)).unwrap();
        let mut c = Counters::default();
        step.processor(&cx)
            .unwrap()
            .process(&mut b, &mut c)
            .unwrap();
        assert_eq!(c.get("missing_badwords_lang"), 1.0);
    }
}
