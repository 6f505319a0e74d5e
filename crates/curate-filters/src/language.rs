//! `language`: language identification with fastText's lid.176 compiled in (datatrove's
//! `LanguageFilter`, exactly), any other fastText language model from a file, or whatlang.

use std::sync::Arc;

use arrow::array::{Array, Float64Builder, StringBuilder};
use curate_core::{
    BuildEnv, Counters, DocBatch, Problems, Processor, Step, StepError, StepSpec, TaskContext,
};
use curate_fasttext::{Model, Newline, Predict, Prediction, Scratch};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::fasttext_model;

/// Identifies each document's language, writes it to the `language` column and its probability
/// to `language_score`, and keeps documents in `languages` whose score is above
/// `language_threshold`.
///
/// Why: most pre-training recipes are per language; FineWeb keeps English with score > 0.65.
///
/// The default backend, `fasttext`, is datatrove 0.10.1's `LanguageFilter` exactly: fastText's
/// lid.176 (176 languages; the quantized `lid.176.ftz`, compiled into the binary, or any
/// fastText language model given as `model`: lid.176.bin, GlotLID, OpenLID...) predicts every
/// label of the whole text with newlines read as spaces; `language` is the best label without
/// its `__label__` prefix (`en`, `de`, `zh`...; for GlotLID `eng_Latn`), `language_score` its
/// probability; with `languages` a document is kept when *any* of them scores above the
/// threshold, without it when the best label does. The `whatlang` backend (70 languages,
/// trigram profiles, first `max_bytes` bytes) is faster but its scores are a different
/// quantity: FineWeb's threshold does not transfer to it (agreement figures in
/// `docs/FILTERS.md`).
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
    /// Languages to keep, as the model names them (lid.176: ISO 639-1 codes where one exists,
    /// `en`, `de`, `zh`...); absent keeps any language whose score is above the threshold.
    #[serde(default)]
    pub languages: Option<Vec<String>>,
    /// Minimum score (exclusive) to keep a document. Also accepted as `min_score`.
    #[serde(default = "d_threshold", alias = "min_score")]
    pub language_threshold: f64,
    /// Only label: write the columns, drop nothing.
    #[serde(default)]
    pub label_only: bool,
    /// Model backend: `fasttext` (lid.176, or `model`) or `whatlang`.
    #[serde(default = "d_backend")]
    pub backend: String,
    /// [fasttext] A fastText language-identification model file (`.bin` or `.ftz`) instead of
    /// the built-in lid.176.ftz: a local path (relative paths from the working directory) or
    /// `s3://bucket/key` in your object storage; its labels must look like `__label__xx`.
    #[serde(default)]
    pub model: Option<String>,
    /// Read only the first this many bytes of each text (cut at a character boundary).
    /// Default: the whole text with `fasttext` (as datatrove), 4096 with `whatlang`.
    #[serde(default)]
    pub max_bytes: Option<u64>,
}

fn d_threshold() -> f64 {
    0.65
}
fn d_backend() -> String {
    "fasttext".into()
}

/// Bytes whatlang reads when `max_bytes` is not set.
const WHATLANG_MAX_BYTES: u64 = 4096;

impl Default for LanguageConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults")
    }
}

crate::reasons! {
    LANGUAGE = "language",
}

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

/// The language codes the `whatlang` backend can output.
pub fn supported() -> impl Iterator<Item = &'static str> {
    CODES.iter().map(|(_, c)| *c)
}

fn short_code(lang: whatlang::Lang) -> &'static str {
    let c = lang.code();
    CODES.iter().find(|(l, _)| *l == c).map_or(c, |(_, s)| s)
}

/// The language name datatrove takes from a fastText label: `label.split("__")[2]`
/// (`__label__en` → `en`); `None` for a label without two `__`.
pub fn language_name(label: &str) -> Option<&str> {
    label.split("__").nth(2)
}

/// The language names of a fastText language model, in label order.
fn language_names(model: &Model) -> Result<Vec<String>, String> {
    model
        .labels()
        .iter()
        .map(|l| {
            language_name(l)
                .map(str::to_string)
                .ok_or_else(|| format!("label \"{l}\" is not of the form __label__<language>"))
        })
        .collect()
}

impl StepSpec for LanguageConfig {
    const TYPE: &'static str = "language";

    fn validate(&self, problems: &mut Problems) {
        problems.one_of("backend", &self.backend, &["fasttext", "whatlang"]);
        if let Some(langs) = &self.languages {
            if langs.is_empty() {
                problems.push("languages", "is empty; omit it to keep every language");
            }
            // languages of a model file are checked when it is loaded (build)
            let known: Option<Vec<String>> = match (self.backend.as_str(), &self.model) {
                ("whatlang", _) => Some(supported().map(str::to_string).collect()),
                ("fasttext", None) => language_names(&curate_fasttext::lid176()).ok(),
                _ => None,
            };
            if let Some(known) = known {
                let known: Vec<&str> = known.iter().map(String::as_str).collect();
                for l in langs {
                    problems.one_of("languages", l, &known);
                }
            }
        }
        problems.ratio("language_threshold", self.language_threshold);
        if let Some(m) = &self.model {
            if self.backend == "fasttext" {
                fasttext_model::check_path(problems, "model", m);
            } else {
                problems.push("model", "only applies to backend = \"fasttext\"");
            }
        }
        if self.max_bytes == Some(0) {
            problems.push("max_bytes", "0 is out of range; allowed: 1 or more");
        }
    }

    fn build(&self, env: &BuildEnv) -> Result<Box<dyn Step>, StepError> {
        let backend = if self.backend == "whatlang" {
            Backend::Whatlang
        } else {
            let model = match &self.model {
                None => curate_fasttext::lid176(),
                Some(p) => fasttext_model::load(Self::TYPE, "model", p, &env.config_dir)?,
            };
            let names = language_names(&model).map_err(|e| {
                StepError::Other(format!(
                    "language: model = \"{}\" is not a language model: {e}",
                    self.model.as_deref().unwrap_or_default()
                ))
            })?;
            let mut wanted = vec![false; names.len()];
            for l in self.languages.iter().flatten() {
                let mut found = false;
                for (w, n) in wanted.iter_mut().zip(&names) {
                    if n == l {
                        *w = true;
                        found = true;
                    }
                }
                if !found {
                    return Err(StepError::Other(format!(
                        "language: languages: \"{l}\" is not a label of model \"{}\"; its \
                         labels: {}",
                        self.model.as_deref().unwrap_or("lid.176.ftz"),
                        fasttext_model::label_list(&model)
                    )));
                }
            }
            // the keep rule needs only the best label when no other label can pass the
            // threshold beside it (lid.176 and FineWeb's 0.65)
            let best_only =
                self.languages.is_none() || model.exclusive_above(self.language_threshold);
            Backend::FastText {
                model,
                names,
                wanted,
                best_only,
            }
        };
        Ok(Box::new(LanguageStep(Arc::new(Runtime {
            cfg: self.clone(),
            backend,
        }))))
    }
}

/// Detects the language of `text` (its first `max_bytes` bytes) with whatlang: (code, score).
pub fn detect(text: &str, max_bytes: usize, buf: &mut String) -> Option<(&'static str, f64)> {
    let text = prefix(text, max_bytes);
    // datatrove's fastText call sees newlines as spaces.
    buf.clear();
    for piece in text.split('\n') {
        if !buf.is_empty() || piece.as_ptr() != text.as_ptr() {
            buf.push(' ');
        }
        buf.push_str(piece);
    }
    let info = whatlang::detect(buf)?;
    Some((short_code(info.lang()), info.confidence()))
}

/// The first `max_bytes` bytes of `text`, cut back to a character boundary.
fn prefix(text: &str, max_bytes: usize) -> &str {
    let mut end = text.len().min(max_bytes);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

enum Backend {
    FastText {
        model: Arc<Model>,
        /// Language name of each label.
        names: Vec<String>,
        /// Whether each label is one of `languages`.
        wanted: Vec<bool>,
        /// Whether the best label alone decides ([`Model::exclusive_above`]).
        best_only: bool,
    },
    Whatlang,
}

struct Runtime {
    cfg: LanguageConfig,
    backend: Backend,
}

struct LanguageStep(Arc<Runtime>);

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
            rt: self.0.clone(),
            buf: String::new(),
            scratch: Scratch::default(),
            preds: Vec::new(),
        }))
    }
}

struct LanguageProcessor {
    rt: Arc<Runtime>,
    buf: String,
    scratch: Scratch,
    preds: Vec<Prediction>,
}

/// What datatrove's LanguageFilter decides with a fastText model: (language, score, keep).
fn decide_fasttext<'a>(
    cfg: &LanguageConfig,
    names: &'a [String],
    wanted: &[bool],
    preds: &[Prediction],
) -> Option<(&'a str, f64, bool)> {
    // Predictions come best first: datatrove's max() over them returns the first.
    let best = preds.first()?;
    let score = best.prob as f64;
    let keep = match &cfg.languages {
        // any wanted language above the threshold (absent labels score 0)
        Some(_) => preds
            .iter()
            .any(|p| wanted[p.label] && p.prob as f64 > cfg.language_threshold),
        None => score > cfg.language_threshold,
    };
    Some((&names[best.label], score, keep))
}

impl LanguageProcessor {
    /// (language, score, keep) of one text.
    fn one(&mut self, text: &str) -> Option<(&str, f64, bool)> {
        let rt = &*self.rt;
        let cfg = &rt.cfg;
        match &rt.backend {
            Backend::FastText {
                model,
                names,
                wanted,
                best_only,
            } => {
                let text = match cfg.max_bytes {
                    Some(m) => prefix(text, m as usize),
                    None => text,
                };
                if *best_only {
                    // the first of the full ranking, exactly; any label above the threshold
                    // is this one
                    let best = model.predict_best(text, Newline::Space, &mut self.scratch)?;
                    let score = best.prob as f64;
                    let keep = score > cfg.language_threshold
                        && (cfg.languages.is_none() || wanted[best.label]);
                    return Some((&names[best.label], score, keep));
                }
                let opts = Predict {
                    k: usize::MAX,
                    threshold: 0.0,
                    newline: Newline::Space,
                };
                model.predict(text, &opts, &mut self.scratch, &mut self.preds);
                decide_fasttext(cfg, names, wanted, &self.preds)
            }
            Backend::Whatlang => {
                let max = cfg.max_bytes.unwrap_or(WHATLANG_MAX_BYTES) as usize;
                let (lang, score) = detect(text, max, &mut self.buf)?;
                let wanted = match &cfg.languages {
                    Some(ls) => ls.iter().any(|x| x == lang),
                    None => true,
                };
                Some((lang, score, wanted && score > cfg.language_threshold))
            }
        }
    }
}

impl Processor for LanguageProcessor {
    fn process(&mut self, batch: &mut DocBatch, counters: &mut Counters) -> Result<(), StepError> {
        let n = batch.len();
        let mut langs = StringBuilder::with_capacity(n, n * 2);
        let mut scores = Float64Builder::with_capacity(n);
        let mut drops = Vec::new();
        let mut undetected = 0usize;
        let label_only = self.rt.cfg.label_only;
        {
            let texts = batch.texts();
            for i in 0..n {
                let text = if texts.is_null(i) { "" } else { texts.value(i) };
                let keep = match self.one(text) {
                    Some((lang, score, keep)) => {
                        langs.append_value(lang);
                        scores.append_value(score);
                        keep
                    }
                    None => {
                        langs.append_null();
                        scores.append_value(0.0);
                        undetected += 1;
                        false
                    }
                };
                if !(label_only || keep) {
                    drops.push(i);
                }
            }
        }
        for i in drops {
            batch.drop_row(i, LANGUAGE);
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
    use crate::filter::testing::{batch, env, run};
    use arrow::array::AsArray;

    const EN: &str =
        "The quick brown fox jumps over the lazy dog, and then it runs far away into the forest.";
    const DE: &str = "Der schnelle braune Fuchs springt über den faulen Hund und läuft dann weit weg in den Wald.";
    const FR: &str = "Le renard brun rapide saute par-dessus le chien paresseux, puis il s'enfuit dans la forêt.";

    fn check(cfg: &str, texts: &[&str], want: &[Option<&str>], langs: &[Option<&str>]) {
        let cfg: LanguageConfig = toml::from_str(cfg).unwrap();
        let mut b = batch(texts);
        let got = run(&cfg, &mut b, 0);
        let want: Vec<Option<String>> = want.iter().map(|w| w.map(str::to_string)).collect();
        assert_eq!(got, want);
        let col = b.column("language").unwrap().as_string::<i32>();
        let scores = b
            .column("language_score")
            .unwrap()
            .as_primitive::<arrow::datatypes::Float64Type>();
        for (i, l) in langs.iter().enumerate() {
            assert_eq!(col.is_null(i), l.is_none(), "row {i}");
            if let Some(l) = l {
                assert_eq!(col.value(i), *l, "row {i}");
                assert!(scores.value(i) > 0.0 && scores.value(i) <= 1.0);
            }
        }
    }

    #[test]
    fn fasttext_labels_and_filters() {
        let drop = Some("language");
        check(
            "languages = ['en', 'de']\nmin_score = 0.5",
            &[EN, DE, FR, ""],
            &[None, None, drop, drop],
            &[Some("en"), Some("de"), Some("fr"), Some("en")],
        );
        // without `languages`, any confident language is kept
        check("", &[EN, FR], &[None, None], &[Some("en"), Some("fr")]);
    }

    #[test]
    fn whatlang_labels_and_filters() {
        let drop = Some("language");
        check(
            "backend = 'whatlang'\nlanguages = ['en', 'de']\nmin_score = 0.5",
            &[EN, DE, FR, ""],
            &[None, None, drop, drop],
            &[Some("en"), Some("de"), Some("fr"), None],
        );
    }

    #[test]
    fn keeps_when_any_wanted_language_passes() {
        // datatrove's rule: a wanted language above the threshold keeps the document even when
        // another language scores higher
        let names: Vec<String> = ["en", "de", "fr"].map(String::from).to_vec();
        let cfg: LanguageConfig =
            toml::from_str("languages = ['de']\nlanguage_threshold = 0.3").unwrap();
        let preds = [
            Prediction {
                label: 0,
                prob: 0.6,
            },
            Prediction {
                label: 1,
                prob: 0.35,
            },
        ];
        let got = decide_fasttext(&cfg, &names, &[false, true, false], &preds);
        assert_eq!(got, Some(("en", 0.6f32 as f64, true)));
        let got = decide_fasttext(&cfg, &names, &[false, false, true], &preds);
        assert_eq!(got, Some(("en", 0.6f32 as f64, false)));
    }

    #[test]
    fn label_only_drops_nothing() {
        let cfg: LanguageConfig = toml::from_str("label_only = true").unwrap();
        assert_eq!(run(&cfg, &mut batch(&["", "x"]), 0), vec![None, None]);
    }

    #[test]
    fn language_names_follow_datatrove() {
        assert_eq!(language_name("__label__en"), Some("en"));
        assert_eq!(language_name("__label__eng_Latn"), Some("eng_Latn"));
        assert_eq!(language_name("en"), None);
    }

    #[test]
    fn validation() {
        let cfg: LanguageConfig =
            toml::from_str("languages = ['english']\nbackend = 'ft176'").unwrap();
        let mut p = Problems::new();
        cfg.validate(&mut p);
        let fields: Vec<&str> = p.items().iter().map(|x| x.field.as_str()).collect();
        assert_eq!(fields, ["backend"]);
        // lid.176's languages are checked without a model file
        let cfg: LanguageConfig = toml::from_str("languages = ['english', 'en']").unwrap();
        let mut p = Problems::new();
        cfg.validate(&mut p);
        assert_eq!(p.items().len(), 1, "{:?}", p.items());
        assert_eq!(p.items()[0].field, "languages");
        let cfg: LanguageConfig =
            toml::from_str("backend = 'whatlang'\nmodel = 'x.bin'\nmax_bytes = 0").unwrap();
        let mut p = Problems::new();
        cfg.validate(&mut p);
        let fields: Vec<&str> = p.items().iter().map(|x| x.field.as_str()).collect();
        assert_eq!(fields, ["model", "max_bytes"]);
    }

    #[test]
    fn model_file_errors_at_build() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.bin");
        std::fs::write(&bad, b"not a model at all").unwrap();
        let cfg: LanguageConfig = toml::from_str(&format!("model = '{}'", bad.display())).unwrap();
        let err = cfg
            .build(&env(0))
            .err()
            .expect("bad model fails")
            .to_string();
        assert!(err.contains("not a fastText model"), "{err}");
        assert!(err.contains("bad.bin"), "{err}");
        let missing = dir.path().join("missing.ftz");
        let cfg: LanguageConfig =
            toml::from_str(&format!("model = '{}'", missing.display())).unwrap();
        let err = cfg
            .build(&env(0))
            .err()
            .expect("missing model fails")
            .to_string();
        assert!(err.contains("missing.ftz"), "{err}");
        // a model without the wanted language
        let ftz = dir.path().join("lid.ftz");
        std::fs::write(&ftz, curate_fasttext::LID176_FTZ).unwrap();
        let cfg: LanguageConfig = toml::from_str(&format!(
            "model = '{}'\nlanguages = ['klingon']",
            ftz.display()
        ))
        .unwrap();
        let err = cfg
            .build(&env(0))
            .err()
            .expect("unknown language")
            .to_string();
        assert!(err.contains("\"klingon\" is not a label"), "{err}");
        assert!(err.contains("__label__en"), "{err}");
    }
}
