//! `language`: language identification with an embedded model (whatlang's trigram profiles,
//! compiled into the binary: nothing is downloaded at run time).

use std::sync::Arc;

use arrow::array::{Array, Float64Builder, StringBuilder};
use curate_core::{
    BuildEnv, Counters, DocBatch, Problems, Processor, Step, StepError, StepSpec, TaskContext,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Identifies each document's language, writes it to the `language` column (ISO 639-1 codes
/// where one exists, as fastText's lid.176 uses: `en`, `de`, `zh`...) and its confidence to
/// `language_score`, and keeps documents in `languages` whose score is above
/// `language_threshold`.
///
/// Why: most pre-training recipes are per language; FineWeb keeps English with score > 0.65.
///
/// The model is whatlang 0.18 (70 languages, trigram profiles embedded in the binary).
/// datatrove uses fastText's lid.176, which cannot be downloaded in our build environment; the
/// two models' scores are not the same quantity, so thresholds do not transfer exactly. Measured
/// agreement with the corpus's own (fastText) `language` column is in `docs/FILTERS.md`.
/// Only the first `max_bytes` bytes of a text are read (newlines count as spaces).
///
/// Example:
///
/// ```toml
/// [[steps]]
/// type = "language"
/// languages = ["en"]
/// language_threshold = 0.65
/// ```
///
/// Reason: `language` (datatrove gives its drops no reason name).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LanguageConfig {
    /// Languages to keep (ISO 639-1 codes as above); absent keeps any language whose score is
    /// above the threshold.
    #[serde(default)]
    pub languages: Option<Vec<String>>,
    /// Minimum score (exclusive) to keep a document. Also accepted as `min_score`.
    #[serde(default = "d_threshold", alias = "min_score")]
    pub language_threshold: f64,
    /// Only label: write the columns, drop nothing.
    #[serde(default)]
    pub label_only: bool,
    /// Model backend; only `whatlang` is available.
    #[serde(default = "d_backend")]
    pub backend: String,
    /// Bytes of each text the model reads (cut at a character boundary).
    #[serde(default = "d_max_bytes")]
    pub max_bytes: u64,
}

fn d_threshold() -> f64 {
    0.65
}
fn d_backend() -> String {
    "whatlang".into()
}
fn d_max_bytes() -> u64 {
    4096
}

impl Default for LanguageConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults")
    }
}

/// Reason names, in reason-number order.
pub const REASONS: &[&str] = &["language"];

/// ISO 639-3 (whatlang) → the code fastText's lid.176 uses.
const CODES: &[(&str, &str)] = &[
    ("epo", "eo"),
    ("eng", "en"),
    ("rus", "ru"),
    ("cmn", "zh"),
    ("spa", "es"),
    ("por", "pt"),
    ("ita", "it"),
    ("ben", "bn"),
    ("fra", "fr"),
    ("deu", "de"),
    ("ukr", "uk"),
    ("kat", "ka"),
    ("ara", "ar"),
    ("hin", "hi"),
    ("jpn", "ja"),
    ("heb", "he"),
    ("yid", "yi"),
    ("pol", "pl"),
    ("amh", "am"),
    ("jav", "jv"),
    ("kor", "ko"),
    ("nob", "no"),
    ("dan", "da"),
    ("swe", "sv"),
    ("fin", "fi"),
    ("tur", "tr"),
    ("nld", "nl"),
    ("hun", "hu"),
    ("ces", "cs"),
    ("ell", "el"),
    ("bul", "bg"),
    ("bel", "be"),
    ("mar", "mr"),
    ("kan", "kn"),
    ("ron", "ro"),
    ("slv", "sl"),
    ("hrv", "hr"),
    ("srp", "sr"),
    ("mkd", "mk"),
    ("lit", "lt"),
    ("lav", "lv"),
    ("est", "et"),
    ("tam", "ta"),
    ("vie", "vi"),
    ("urd", "ur"),
    ("tha", "th"),
    ("guj", "gu"),
    ("uzb", "uz"),
    ("pan", "pa"),
    ("aze", "az"),
    ("ind", "id"),
    ("tel", "te"),
    ("pes", "fa"),
    ("mal", "ml"),
    ("ori", "or"),
    ("mya", "my"),
    ("nep", "ne"),
    ("sin", "si"),
    ("khm", "km"),
    ("tuk", "tk"),
    ("aka", "ak"),
    ("zul", "zu"),
    ("sna", "sn"),
    ("afr", "af"),
    ("lat", "la"),
    ("slk", "sk"),
    ("cat", "ca"),
    ("tgl", "tl"),
    ("hye", "hy"),
    ("cym", "cy"),
];

/// The language codes this step can output.
pub fn supported() -> impl Iterator<Item = &'static str> {
    CODES.iter().map(|(_, c)| *c)
}

fn short_code(lang: whatlang::Lang) -> &'static str {
    let c = lang.code();
    CODES.iter().find(|(l, _)| *l == c).map_or(c, |(_, s)| s)
}

impl StepSpec for LanguageConfig {
    const TYPE: &'static str = "language";

    fn validate(&self, problems: &mut Problems) {
        let all: Vec<&str> = supported().collect();
        if let Some(langs) = &self.languages {
            if langs.is_empty() {
                problems.push("languages", "is empty; omit it to keep every language");
            }
            for l in langs {
                problems.one_of("languages", l, &all);
            }
        }
        problems.ratio("language_threshold", self.language_threshold);
        problems.one_of("backend", &self.backend, &["whatlang"]);
        if self.max_bytes == 0 {
            problems.push("max_bytes", "0 is out of range; allowed: 1 or more");
        }
    }

    fn build(&self, _env: &BuildEnv) -> Result<Box<dyn Step>, StepError> {
        Ok(Box::new(LanguageStep(Arc::new(self.clone()))))
    }
}

/// Detects the language of `text` (its first `max_bytes` bytes): (code, score).
pub fn detect(text: &str, max_bytes: usize, buf: &mut String) -> Option<(&'static str, f64)> {
    let mut end = text.len().min(max_bytes);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    // datatrove's fastText call sees newlines as spaces.
    buf.clear();
    for piece in text[..end].split('\n') {
        if !buf.is_empty() || piece.as_ptr() != text.as_ptr() {
            buf.push(' ');
        }
        buf.push_str(piece);
    }
    let info = whatlang::detect(buf)?;
    Some((short_code(info.lang()), info.confidence()))
}

struct LanguageStep(Arc<LanguageConfig>);

impl Step for LanguageStep {
    fn columns(&self, c: &mut curate_core::columns::Columns<'_>) {
        c.add(None, "language", arrow::datatypes::DataType::Utf8);
        c.add(None, "language_score", arrow::datatypes::DataType::Float64);
    }

    fn kind(&self) -> &'static str {
        LanguageConfig::TYPE
    }

    fn reasons(&self) -> Vec<String> {
        REASONS.iter().map(|s| s.to_string()).collect()
    }

    fn processor(&self, _cx: &TaskContext<'_>) -> Result<Box<dyn Processor>, StepError> {
        Ok(Box::new(LanguageProcessor {
            cfg: self.0.clone(),
            buf: String::new(),
        }))
    }
}

struct LanguageProcessor {
    cfg: Arc<LanguageConfig>,
    buf: String,
}

impl Processor for LanguageProcessor {
    fn process(&mut self, batch: &mut DocBatch, counters: &mut Counters) -> Result<(), StepError> {
        let n = batch.len();
        let mut langs = StringBuilder::with_capacity(n, n * 2);
        let mut scores = Float64Builder::with_capacity(n);
        let mut drops = Vec::new();
        let mut undetected = 0usize;
        {
            let texts = batch.texts();
            for i in 0..n {
                let text = if texts.is_null(i) { "" } else { texts.value(i) };
                let (lang, score) = match detect(text, self.cfg.max_bytes as usize, &mut self.buf) {
                    Some((l, s)) => {
                        langs.append_value(l);
                        (Some(l), s)
                    }
                    None => {
                        langs.append_null();
                        undetected += 1;
                        (None, 0.0)
                    }
                };
                scores.append_value(score);
                let wanted = match &self.cfg.languages {
                    Some(ls) => lang.is_some_and(|l| ls.iter().any(|x| x == l)),
                    None => true,
                };
                if !(self.cfg.label_only || wanted && score > self.cfg.language_threshold) {
                    drops.push(i);
                }
            }
        }
        for i in drops {
            batch.drop_row(i, 0);
        }
        if undetected > 0 {
            counters.add("undetected", undetected as f64);
        }
        batch.set_column("language", Arc::new(langs.finish()));
        batch.set_column("language_score", Arc::new(scores.finish()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::testing::{batch, run};
    use arrow::array::AsArray;

    #[test]
    fn labels_and_filters() {
        let en = "The quick brown fox jumps over the lazy dog, and then it runs far away into the forest.";
        let de = "Der schnelle braune Fuchs springt über den faulen Hund und läuft dann weit weg in den Wald.";
        let fr = "Le renard brun rapide saute par-dessus le chien paresseux, puis il s'enfuit dans la forêt.";
        let mut b = batch(&[en, de, fr, ""]);
        let cfg: LanguageConfig =
            toml::from_str("languages = ['en', 'de']\nmin_score = 0.5").unwrap();
        let got = run(&cfg, &mut b, 0);
        assert_eq!(
            got,
            vec![None, None, Some("language".into()), Some("language".into())]
        );
        let langs = b.column("language").unwrap().as_string::<i32>();
        assert_eq!(
            (langs.value(0), langs.value(1), langs.value(2)),
            ("en", "de", "fr")
        );
        assert!(langs.is_null(3));
        let scores = b
            .column("language_score")
            .unwrap()
            .as_primitive::<arrow::datatypes::Float64Type>();
        assert!(scores.value(0) > 0.5);
    }

    #[test]
    fn label_only_drops_nothing() {
        let cfg: LanguageConfig = toml::from_str("label_only = true").unwrap();
        assert_eq!(run(&cfg, &mut batch(&["", "x"]), 0), vec![None, None]);
    }

    #[test]
    fn validation() {
        let cfg: LanguageConfig =
            toml::from_str("languages = ['english']\nbackend = 'ft176'").unwrap();
        let mut p = Problems::new();
        cfg.validate(&mut p);
        let fields: Vec<&str> = p.items().iter().map(|x| x.field.as_str()).collect();
        assert_eq!(fields, ["languages", "backend"]);
    }
}
