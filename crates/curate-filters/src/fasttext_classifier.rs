//! `fasttext_classifier`: any fastText classifier (a DCLM-style quality model, a topic model...)
//! as a step: the probability of one label becomes a column, and documents below a threshold
//! are dropped (datatrove's `FastTextClassifierFilter`).

use std::sync::Arc;

use arrow::array::{Array, Float32Builder};
use curate_core::{
    BuildEnv, Counters, DocBatch, Problems, Processor, Step, StepError, StepSpec, TaskContext,
};
use curate_fasttext::{Model, Newline, Predict, Prediction, Scratch};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::fasttext_model::{self, py_strip};

/// Scores each document with a fastText classifier, writes the probability of `label` to
/// `column` (Float32), and keeps documents whose probability is at least `threshold`.
///
/// Why: model-based quality filtering (DCLM's fastText classifier, FineWeb-Edu-style
/// classifiers distilled into fastText) runs over every document at fastText speed; the score
/// column can feed later steps or be kept for analysis.
///
/// It is datatrove 0.10.1's `FastTextClassifierFilter(model, keep_labels=(label, threshold))`
/// on whole documents: the text is stripped of surrounding whitespace, newlines are replaced by
/// `newline_replacement`, fastText predicts every label, and the document is kept when `label`
/// is among them with probability ≥ `threshold` and the text is not blank. `model` is a `.bin`
/// or quantized `.ftz` supervised model, local or `s3://`; problems with it (unreadable, not
/// fastText, truncated, no such label) are reported before any data is read.
///
/// Example:
///
/// ```toml
/// [[steps]]
/// type = "fasttext_classifier"
/// model = "models/dclm_openhermes.bin"
/// label = "hq"
/// threshold = 0.018
/// column = "dclm_score"
/// ```
///
/// Reasons: `fasttext_classifier` (the label's score is below `threshold`), `empty` (blank
/// text).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FastTextClassifierConfig {
    /// The model file (`.bin` or `.ftz`): a local path (relative paths from the working
    /// directory) or an object in your object storage, `s3://bucket/key` (read once when the
    /// step is built, credentials and endpoint as for `s3://` inputs).
    pub model: String,
    /// The label to score, with or without fastText's `__label__` prefix (`hq`,
    /// `__label__hq`).
    pub label: String,
    /// Minimum probability (inclusive) to keep a document; required unless `label_only`.
    #[serde(default)]
    pub threshold: Option<f64>,
    /// The score column (Float32; 0 when fastText does not return the label, which only
    /// hierarchical-softmax models do, below probability ~1e-5).
    #[serde(default = "d_column")]
    pub column: String,
    /// Only score: write the column, drop nothing.
    #[serde(default)]
    pub label_only: bool,
    /// What each newline becomes before predicting (datatrove's `newline_replacement`; its
    /// default joins lines without a space).
    #[serde(default)]
    pub newline_replacement: String,
}

fn d_column() -> String {
    "fasttext_score".into()
}

crate::reasons! {
    BELOW_THRESHOLD = "fasttext_classifier",
    EMPTY = "empty",
}

impl StepSpec for FastTextClassifierConfig {
    const TYPE: &'static str = "fasttext_classifier";

    fn validate(&self, problems: &mut Problems) {
        fasttext_model::check_path(problems, "model", &self.model);
        if self.label.is_empty() {
            problems.push("label", "is empty; give one of the model's labels");
        }
        match self.threshold {
            Some(t) if !t.is_finite() => problems.push("threshold", format!("{t} is not a number")),
            None if !self.label_only => problems.push(
                "threshold",
                "is missing; give the minimum probability to keep, or set label_only = true",
            ),
            _ => {}
        }
        if self.column.is_empty() {
            problems.push("column", "is empty");
        }
        if self.newline_replacement.contains('\n') {
            problems.push(
                "newline_replacement",
                "contains a newline; fastText predicts one line at a time",
            );
        }
    }

    fn build(&self, env: &BuildEnv) -> Result<Box<dyn Step>, StepError> {
        let model = fasttext_model::load(Self::TYPE, "model", &self.model, &env.config_dir)?;
        let label = model.label_index(&self.label).ok_or_else(|| {
            StepError::Other(format!(
                "fasttext_classifier: label = \"{}\" is not a label of model \"{}\"; its labels: \
                 {}",
                self.label,
                self.model,
                fasttext_model::label_list(&model)
            ))
        })?;
        Ok(Box::new(ClassifierStep(Arc::new(Classifier {
            model,
            label,
            threshold: self.threshold.unwrap_or(f64::NEG_INFINITY),
            cfg: self.clone(),
        }))))
    }
}

/// A loaded classifier and its decision rule.
pub struct Classifier {
    model: Arc<Model>,
    label: usize,
    threshold: f64,
    cfg: FastTextClassifierConfig,
}

/// Per-thread buffers.
#[derive(Default)]
pub struct ClassifierScratch {
    text: String,
    scratch: Scratch,
    preds: Vec<Prediction>,
}

impl Classifier {
    /// The label's probability (`None` when fastText does not return it) and the verdict
    /// (`None` keep, `Some(reason)` drop) for one text, as datatrove decides.
    pub fn check(&self, text: &str, s: &mut ClassifierScratch) -> (Option<f32>, Option<usize>) {
        let unit = py_strip(text);
        s.text.clear();
        for (i, piece) in unit.split('\n').enumerate() {
            if i > 0 {
                s.text.push_str(&self.cfg.newline_replacement);
            }
            s.text.push_str(piece);
        }
        let opts = Predict {
            k: usize::MAX,
            threshold: 0.0,
            newline: Newline::Space,
        };
        self.model
            .predict(&s.text, &opts, &mut s.scratch, &mut s.preds);
        let score = s
            .preds
            .iter()
            .find(|p| p.label == self.label)
            .map(|p| p.prob);
        let verdict = if self.cfg.label_only {
            None
        } else if !score.is_some_and(|p| p as f64 >= self.threshold) {
            Some(BELOW_THRESHOLD)
        } else if unit.is_empty() {
            // datatrove keeps the (only) span, then drops a document whose text is blank
            Some(EMPTY)
        } else {
            None
        };
        (score, verdict)
    }
}

struct ClassifierStep(Arc<Classifier>);

impl Step for ClassifierStep {
    fn columns(&self, c: &mut curate_core::columns::Columns<'_>) {
        c.add(
            Some("column"),
            &self.0.cfg.column,
            arrow::datatypes::DataType::Float32,
        );
    }

    fn kind(&self) -> &'static str {
        FastTextClassifierConfig::TYPE
    }

    fn reasons(&self) -> Vec<String> {
        REASONS.iter().map(|s| s.to_string()).collect()
    }

    fn processor(&self, _cx: &TaskContext<'_>) -> Result<Box<dyn Processor>, StepError> {
        Ok(Box::new(ClassifierProcessor {
            c: self.0.clone(),
            s: ClassifierScratch::default(),
        }))
    }
}

struct ClassifierProcessor {
    c: Arc<Classifier>,
    s: ClassifierScratch,
}

impl Processor for ClassifierProcessor {
    fn process(&mut self, batch: &mut DocBatch, counters: &mut Counters) -> Result<(), StepError> {
        let n = batch.len();
        let mut scores = Float32Builder::with_capacity(n);
        let mut drops = Vec::new();
        let mut absent = 0usize;
        {
            let texts = batch.texts();
            for i in 0..n {
                let text = if texts.is_null(i) { "" } else { texts.value(i) };
                let (score, verdict) = self.c.check(text, &mut self.s);
                absent += score.is_none() as usize;
                scores.append_value(score.unwrap_or(0.0));
                if let Some(r) = verdict {
                    drops.push((i, r));
                }
            }
        }
        for (i, r) in drops {
            batch.drop_row(i, r);
        }
        if absent > 0 {
            counters.add("label_not_predicted", absent as f64);
        }
        batch.set_column(&self.c.cfg.column, Arc::new(scores.finish()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::testing::{batch, env, run};
    use arrow::array::AsArray;

    fn lid_file(dir: &std::path::Path) -> String {
        let p = dir.join("lid.176.ftz");
        std::fs::write(&p, curate_fasttext::LID176_FTZ).unwrap();
        p.display().to_string()
    }

    /// lid.176 as a classifier of "English": scores and keeps like a quality model would.
    #[test]
    fn scores_and_filters() {
        let dir = tempfile::tempdir().unwrap();
        let cfg: FastTextClassifierConfig = toml::from_str(&format!(
            "model = '{}'\nlabel = 'en'\nthreshold = 0.5\ncolumn = 'en_score'",
            lid_file(dir.path())
        ))
        .unwrap();
        let mut b = batch(&[
            "This is an English sentence about the weather today.",
            "Dies ist ein deutscher Satz über das Wetter heute.",
            "  \n ",
        ]);
        let got = run(&cfg, &mut b, 0);
        assert_eq!(got[0], None);
        assert_eq!(got[1].as_deref(), Some("fasttext_classifier"));
        let s = b
            .column("en_score")
            .unwrap()
            .as_primitive::<arrow::datatypes::Float32Type>();
        assert!(s.value(0) > 0.5 && s.value(1) < 0.5, "{s:?}");
        // a blank text is dropped either way (by score, or as empty)
        assert!(got[2].is_some());
    }

    #[test]
    fn label_with_prefix_and_label_only() {
        let dir = tempfile::tempdir().unwrap();
        let cfg: FastTextClassifierConfig = toml::from_str(&format!(
            "model = '{}'\nlabel = '__label__de'\nlabel_only = true",
            lid_file(dir.path())
        ))
        .unwrap();
        let mut b = batch(&["English words here", "", "Deutsche Wörter hier"]);
        assert_eq!(run(&cfg, &mut b, 0), vec![None, None, None]);
        let s = b
            .column("fasttext_score")
            .unwrap()
            .as_primitive::<arrow::datatypes::Float32Type>();
        assert!(s.value(2) > s.value(0));
    }

    #[test]
    fn validation_and_build_errors() {
        let cfg: FastTextClassifierConfig =
            toml::from_str("model = 'https://b/m.bin'\nlabel = ''\nnewline_replacement = \"\\n\"")
                .unwrap();
        let mut p = Problems::new();
        cfg.validate(&mut p);
        let fields: Vec<&str> = p.items().iter().map(|x| x.field.as_str()).collect();
        assert_eq!(
            fields,
            ["model", "label", "threshold", "newline_replacement"]
        );
        // object storage is read when the step is built
        let cfg: FastTextClassifierConfig =
            toml::from_str("model = 's3://b/m.bin'\nlabel = 'hq'\nthreshold = 0.5").unwrap();
        let mut p = Problems::new();
        cfg.validate(&mut p);
        assert!(p.is_empty(), "{:?}", p.items());

        let dir = tempfile::tempdir().unwrap();
        let cfg: FastTextClassifierConfig = toml::from_str(&format!(
            "model = '{}'\nlabel = 'hq'\nthreshold = 0.5",
            lid_file(dir.path())
        ))
        .unwrap();
        let err = cfg.build(&env(0)).err().expect("no such label").to_string();
        assert!(
            err.contains("label = \"hq\" is not a label of model") && err.contains("__label__en"),
            "{err}"
        );
        let trunc = dir.path().join("trunc.ftz");
        std::fs::write(&trunc, &curate_fasttext::LID176_FTZ[..5000]).unwrap();
        let cfg: FastTextClassifierConfig = toml::from_str(&format!(
            "model = '{}'\nlabel = 'en'\nthreshold = 0.5",
            trunc.display()
        ))
        .unwrap();
        let err = cfg.build(&env(0)).err().expect("truncated").to_string();
        assert!(
            err.contains("truncated model") && err.contains("trunc.ftz"),
            "{err}"
        );
    }
}
