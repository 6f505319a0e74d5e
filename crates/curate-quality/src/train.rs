//! The `train` step: fit, calibrate and evaluate the student on the teacher's labels.

use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray};
use arrow::datatypes::DataType;
use curate_core::hash::{derive_seed, mix64, unit};
use curate_snapshot::artifact;

pub use crate::student::{Evaluation, Example, Trained, evaluate, train_student};
use curate_core::step::{PassThrough, Published};
use curate_core::{
    Barrier, BuildEnv, Counters, DocBatch, Observer, Problems, Processor, StageContext, StageSpec,
    Step, StepError, StepSpec, TaskContext,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::model::Model;
use crate::store::{self, ObsWriter, obs_path};
use crate::student::{FitState, Seeds, calibrate_student, fit_student};
use crate::tokens::Tokenizer;

/// Train the local quality model (the *student*) on the teacher's labels, calibrate it and
/// evaluate it on the held-out labels.
///
/// The student reads two things: a *bag* of hashed word features (unigrams, optionally bigrams,
/// and 4-byte word prefixes; each distinct one counted once, weighted 1/√(distinct features)),
/// and 20 *document properties* the filters also look at (length, prose vs. list lines, line
/// and sentence length, vocabulary richness, digit/symbol/punctuation shares, …), each through a
/// learnt non-linear shape function (16 quantile bins), optionally with pairwise crosses. A
/// linear score feeds a head mapped to the teacher's scale — logistic for a 0/1 teacher (such as
/// `reference`), cumulative-logit ordinal or linear regression (chosen on validation) for a 0–5
/// rubric (such as the Claude teacher).
///
/// Model selection: the n-gram order (1 or 2), the document properties and their crosses (off
/// or on) and, for a graded teacher, the head (ordinal or linear) are chosen on a validation
/// split carved from the `train` rows, by the mean of validation AUC and Spearman ρ (set
/// `ngrams` / `doc_features` / `crosses` / `head` to fix them). Each candidate is trained with AdaGrad in a seeded
/// order on one thread and stops early on the validation loss, so the same labels and seed give
/// the same model bytes whatever the thread or task count. The held-out rows then fit a strictly
/// increasing isotonic calibration (linear score → teacher scale) and give the metrics: AUC,
/// Spearman ρ, accuracy and F1 at the keep threshold, expected calibration error before and after
/// calibration (the "after" figure is cross-fitted over 5 folds, so calibration is never judged on
/// the rows it was fitted on), a reliability table and a threshold → kept documents / tokens
/// curve.
///
/// Rows are labelled when `label_column` is not null; `split_column` ("train" / "holdout")
/// assigns them, and rows without a split value are assigned by a seeded hash of the document
/// (`holdout_fraction`). Documents pass through unchanged. The snapshot gets `model/model.bin`
/// (format-versioned and self-describing: feature scheme, document-feature bins, head,
/// calibration, selection record, held-out metrics and the strongest features are in its header;
/// its hash goes into the manifest), `model/model.json` (the header) and `quality/metrics.json`.
///
/// ```toml
/// [[steps]]
/// type = "train"
///
/// [[steps]]
/// type = "score"
/// keep = { threshold = 3.0 }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Column with the teacher's label (Float32; null = unlabelled).
    #[serde(default = "default_label_column")]
    pub label_column: String,
    /// Column with the split, "train" or "holdout" (null or absent: assigned by hash).
    #[serde(default = "default_split_column")]
    pub split_column: String,
    /// Head: "auto" (logistic for 0/1 labels; otherwise ordinal and linear compete on the
    /// validation split), "logistic", "linear" (squared-error regression) or "ordinal".
    #[serde(default)]
    pub head: HeadChoice,
    /// Top of the teacher's scale (bottom is 0). Default: 1 when every label is 0 or 1, 5 when
    /// labels are at most 5, else the largest label rounded up.
    #[serde(default)]
    pub scale_max: Option<f64>,
    /// Keep threshold the metrics use (a teacher positive is a label ≥ it; a predicted positive
    /// a calibrated score ≥ it). Default: 0.5 on a 0/1 scale, 60 % of the scale otherwise (3.0
    /// on 0–5).
    #[serde(default)]
    pub threshold: Option<f64>,
    /// log2 of the number of feature hash buckets (the model holds 4 · 2^bits bytes of weights).
    #[serde(default = "default_hash_bits")]
    pub hash_bits: u32,
    /// Longest word n-gram of the bag: 1 (unigrams), 2 (+ bigrams) or 3 (+ trigrams). Absent:
    /// chosen on the validation split between 1 and 2.
    #[serde(default)]
    pub ngrams: Option<u8>,
    /// Words longer than this many bytes also count by their first `prefix` bytes (`learning`,
    /// `learned` → `lear*`); 0 turns prefix features off.
    #[serde(default = "default_prefix")]
    pub prefix: u8,
    /// Read the document properties (length, line structure, punctuation, vocabulary richness …)
    /// through learnt shape functions, beside the bag of words. Absent: chosen on the
    /// validation fold.
    #[serde(default)]
    pub doc_features: Option<bool>,
    /// Pairwise crosses of the document properties (4 × 4 bins per pair). Absent: chosen on the
    /// validation fold.
    #[serde(default)]
    pub crosses: Option<bool>,
    /// AdaGrad learning rate.
    #[serde(default = "default_learning_rate")]
    pub learning_rate: f64,
    /// Most training epochs.
    #[serde(default = "default_max_epochs")]
    pub max_epochs: u32,
    /// Stop after this many epochs without a better validation loss (the best epoch's weights
    /// are kept).
    #[serde(default = "default_patience")]
    pub patience: u32,
    /// L2 penalty on the weights.
    #[serde(default)]
    pub l2: f64,
    /// The `train` rows are split into this many folds (by seeded hash): model selection and
    /// early stopping validate on the first; with `bagging`, on each in turn.
    #[serde(default = "default_folds")]
    pub folds: u32,
    /// Fit the chosen candidate once per fold and average the fold models (cross-validation
    /// bagging: every `train` row is learnt from, and the average is steadier than one fit).
    #[serde(default = "default_true")]
    pub bagging: bool,
    /// Share of labelled rows without a split value that go to the held-out set.
    #[serde(default = "default_holdout_fraction")]
    pub holdout_fraction: f64,
    /// Most labelled rows to learn from; beyond it a seeded hash of the document picks which
    /// (bounds the fitting stage's memory: it holds these rows' text and features).
    #[serde(default = "default_max_examples")]
    pub max_examples: u64,
    /// Calibration: "auto" (strictly increasing isotonic when it lowers the cross-fitted held-out
    /// ECE), "isotonic" or "none".
    #[serde(default)]
    pub calibration: CalibrationChoice,
    /// Tokenizer for the token counts of the threshold curve: "cl100k_base", "o200k_base" or
    /// "none".
    #[serde(default)]
    pub tokenizer: Tokenizer,
    /// Also learn from labelled documents outside the input that the nearest preceding `label`
    /// step stored — the `reference` teacher's positive reference documents: the rows of its
    /// `labels.parquet` whose `key` is null (with their `split`, `score` and `text`).
    #[serde(default = "default_true")]
    pub external_labels: bool,
}

fn default_label_column() -> String {
    "teacher_score".into()
}
fn default_split_column() -> String {
    "split".into()
}
fn default_hash_bits() -> u32 {
    20
}
fn default_prefix() -> u8 {
    4
}
fn default_true() -> bool {
    true
}
fn default_learning_rate() -> f64 {
    0.1
}
fn default_max_epochs() -> u32 {
    50
}
fn default_patience() -> u32 {
    2
}
fn default_folds() -> u32 {
    5
}
fn default_holdout_fraction() -> f64 {
    0.2
}
fn default_max_examples() -> u64 {
    200_000
}

impl Default for TrainConfig {
    fn default() -> Self {
        toml_default()
    }
}

fn toml_default() -> TrainConfig {
    serde_json::from_value(serde_json::json!({})).expect("all fields have defaults")
}

/// The head option.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HeadChoice {
    /// Logistic for 0/1 labels; otherwise ordinal and linear compete on validation.
    #[default]
    Auto,
    /// Binary logistic regression.
    Logistic,
    /// Squared-error regression on the scale.
    Linear,
    /// Cumulative-logit ordinal regression.
    Ordinal,
}

/// The calibration option.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CalibrationChoice {
    /// Strictly increasing isotonic when it lowers the cross-fitted held-out ECE, else none
    /// (small held-out sets can make an isotonic map noisier than an already calibrated head).
    #[default]
    Auto,
    /// Strictly increasing isotonic regression on the held-out labels, always.
    Isotonic,
    /// No calibration: scores are the head's raw output.
    None,
}

impl StepSpec for TrainConfig {
    const TYPE: &'static str = "train";

    fn validate(&self, p: &mut Problems) {
        p.range("hash_bits", self.hash_bits, 10, 28);
        if let Some(n) = self.ngrams {
            p.range("ngrams", n, 1, 3);
        }
        p.range("prefix", self.prefix, 0, 16);
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            p.push(
                "learning_rate",
                format!("{} must be a positive number", self.learning_rate),
            );
        }
        p.range("max_epochs", self.max_epochs, 1, 1000);
        p.range("patience", self.patience, 1, 1000);
        if !(self.l2 >= 0.0 && self.l2.is_finite()) {
            p.push("l2", format!("{} must be zero or positive", self.l2));
        }
        p.range("folds", self.folds, 2, 20);
        p.ratio("holdout_fraction", self.holdout_fraction);
        if self.max_examples == 0 {
            p.push("max_examples", "0 is out of range; allowed: at least 1");
        }
        if let Some(s) = self.scale_max
            && !(1.0..=100.0).contains(&s)
        {
            p.push(
                "scale_max",
                format!("{s} is out of range; allowed: 1 to 100"),
            );
        }
        if let Some(t) = self.threshold
            && !t.is_finite()
        {
            p.push("threshold", format!("{t} is not a finite number"));
        }
        if self.label_column.is_empty() {
            p.push("label_column", "must not be empty");
        }
    }

    fn build(&self, env: &BuildEnv) -> Result<Box<dyn Step>, StepError> {
        let mut t = Train::new(self.clone(), env.seed);
        t.label_step = env.previous.iter().rposition(|s| s == "label");
        Ok(Box::new(t))
    }
}

/// The built `train` step.
#[derive(Debug, Clone)]
pub struct Train {
    cfg: TrainConfig,
    seeds: Seeds,
    label_step: Option<usize>,
}

/// File names in the step directory.
pub const MODEL_FILE: &str = "model.bin";
const RAW_MODEL_FILE: &str = "model-raw.bin";
const HEADER_FILE: &str = "model.json";
const METRICS_FILE: &str = "metrics.json";
const FIT_FILE: &str = "fit.json";

impl Train {
    /// Builds the step from its config and the run seed.
    pub fn new(cfg: TrainConfig, run_seed: u64) -> Self {
        Train {
            seeds: Seeds::of(run_seed),
            label_step: None,
            cfg,
        }
    }

    fn fit_stage(&self, cx: &StageContext<'_>) -> Result<(), Error> {
        let dir = cx.dir;
        self.import_external(cx)?;
        // Bound the labelled set: keep the max_examples rows of smallest seeded hash.
        let mut hashes = Vec::new();
        for p in store::obs_files(dir, cx.observed_tasks) {
            store::read_obs(
                &p,
                |h| {
                    hashes.push(mix64(h.key, self.seeds.select));
                    false
                },
                |_, _| {},
            )?;
        }
        let n_labelled = hashes.len() as u64;
        let cutoff = if n_labelled > self.cfg.max_examples {
            hashes.sort_unstable();
            Some(hashes[self.cfg.max_examples as usize - 1])
        } else {
            None
        };
        drop(hashes);
        let select = self.seeds.select;
        let data = store::load_labelled(dir, cx.observed_tasks, |h| {
            !h.holdout && cutoff.is_none_or(|c| mix64(h.key, select) <= c)
        })?;
        let corrupt = |message: String| Error::Corrupt {
            path: dir.to_path_buf(),
            message,
        };
        let (mut model, mut state) = fit_student(&data, &self.cfg, &self.seeds).map_err(corrupt)?;
        state.n_labelled = n_labelled;
        state.select_cutoff = cutoff;
        model.header.training = crate::student::training_record(&state, None);
        model.save(&dir.join(RAW_MODEL_FILE))?;
        crate::write_atomic(
            &dir.join(FIT_FILE),
            &serde_json::to_vec_pretty(&state).expect("serialises"),
        )?;
        if let Ok(mut c) = cx.counters.lock() {
            c.add("labelled_rows", n_labelled as f64);
            c.add("fit_rows", state.report.n_train as f64);
            c.add("validation_rows", state.report.n_valid as f64);
            c.add("epochs", state.report.epochs_run as f64);
            c.add("candidates", state.selection.len() as f64);
        }
        Ok(())
    }

    /// Copies the out-of-input labelled rows of the preceding `label` step's `labels.parquet`
    /// into an observation file of their own (empty when there are none).
    fn import_external(&self, cx: &StageContext<'_>) -> Result<(), Error> {
        let out_path = store::external_path(cx.dir);
        let mut out = ObsWriter::create(out_path)?;
        let src = match (self.cfg.external_labels, self.label_step) {
            (true, Some(i)) => cx
                .step_dirs
                .get(i)
                .map(|d| d.join("labels.parquet"))
                .filter(|p| p.exists()),
            _ => None,
        };
        let mut n = 0u64;
        if let Some(src) = src {
            let key_seed = derive_seed(self.seeds.select, "external");
            store::read_external_labels(&src, |label, holdout, text| {
                let key = curate_core::hash::h64(text.as_bytes(), key_seed);
                let tokens = if holdout {
                    self.cfg.tokenizer.count(text)
                } else {
                    0
                };
                n += 1;
                out.write(key, label, holdout, tokens, text.as_bytes())
            })?;
        }
        out.finish()?;
        if let Ok(mut c) = cx.counters.lock() {
            c.add("external_labelled_rows", n as f64);
        }
        Ok(())
    }

    fn calibrate_stage(&self, cx: &StageContext<'_>) -> Result<(), Error> {
        let dir = cx.dir;
        let fit_path = dir.join(FIT_FILE);
        let state: FitState =
            serde_json::from_slice(&std::fs::read(&fit_path).map_err(|e| Error::io(&fit_path, e))?)
                .map_err(|e| Error::Corrupt {
                    path: fit_path.clone(),
                    message: e.to_string(),
                })?;
        let model = Model::load(&dir.join(RAW_MODEL_FILE))?;
        let (cut, select) = (state.select_cutoff, self.seeds.select);
        let hold = store::load_labelled(dir, cx.observed_tasks, |h| {
            h.holdout && cut.is_none_or(|c| mix64(h.key, select) <= c)
        })?;
        let (model, mut metrics) = calibrate_student(model, &state, &hold, &self.cfg, &self.seeds)
            .map_err(|message| Error::Corrupt {
                path: dir.to_path_buf(),
                message,
            })?;
        let model_hash = model.save(&dir.join(MODEL_FILE))?;
        crate::write_atomic(
            &dir.join(HEADER_FILE),
            &serde_json::to_vec_pretty(&model.header).expect("serialises"),
        )?;
        metrics["model_hash"] = model_hash.into();
        crate::write_atomic(
            &dir.join(METRICS_FILE),
            &serde_json::to_vec_pretty(&metrics).expect("serialises"),
        )?;
        if let Ok(mut c) = cx.counters.lock() {
            c.add("holdout_rows", hold.len() as f64);
        }
        Ok(())
    }
}

/// The scale key under which `train` records its model's score range for later steps.
pub const MODEL_SCALE: &str = "model:quality";

impl Step for Train {
    fn kind(&self) -> &'static str {
        "train"
    }

    fn columns(&self, c: &mut curate_core::columns::Columns<'_>) {
        use curate_core::columns::Want;
        c.need("label_column", &self.cfg.label_column, Want::Numeric);
        // the split is optional (a seeded hash stands in), but must be strings when present
        if c.get(&self.cfg.split_column).is_some() {
            c.need("split_column", &self.cfg.split_column, Want::String);
        }
        // the model's scale, as `fit` will choose it from the labels
        let hi = match (self.cfg.scale_max, c.scale(&self.cfg.label_column)) {
            (Some(s), _) => Some(s),
            (None, Some((_, hi))) if hi <= 1.0 => Some(1.0),
            (None, Some((_, hi))) if hi <= 5.0 => Some(5.0),
            (None, Some((_, hi))) => Some(hi.ceil()),
            (None, None) => None,
        };
        if let Some(hi) = hi {
            c.set_scale(MODEL_SCALE, 0.0, hi);
        }
    }

    fn processor(&self, _cx: &TaskContext<'_>) -> Result<Box<dyn Processor>, StepError> {
        Ok(Box::new(PassThrough))
    }

    fn barrier(&self) -> Option<&dyn Barrier> {
        Some(self)
    }

    fn publish(&self, dir: &Path) -> Result<Published, StepError> {
        let metrics_path = dir.join(METRICS_FILE);
        let metrics: serde_json::Value = serde_json::from_slice(
            &std::fs::read(&metrics_path).map_err(|e| StepError::io(&metrics_path, e))?,
        )
        .map_err(|e| StepError::Data(format!("{}: {e}", metrics_path.display())))?;
        let mut stats = serde_json::Map::new();
        for k in [
            "model_hash",
            "model_format_version",
            "head",
            "n_holdout",
            "n_train",
            "auc",
            "spearman",
            "accuracy",
            "f1",
            "ece",
            "ece_raw",
        ] {
            if let Some(v) = metrics.get(k) {
                stats.insert(k.into(), v.clone());
            }
        }
        Ok(Published {
            files: vec![
                (artifact::MODEL.into(), dir.join(MODEL_FILE)),
                (artifact::MODEL_HEADER.into(), dir.join(HEADER_FILE)),
                (artifact::QUALITY_METRICS.into(), metrics_path),
            ],
            stats: Some(stats.into()),
        })
    }
}

impl Barrier for Train {
    fn observer(&self, cx: &TaskContext<'_>) -> Result<Box<dyn Observer>, StepError> {
        Ok(Box::new(TrainObserver {
            step: self.clone(),
            out: ObsWriter::create(obs_path(cx.dir, cx.task))?,
        }))
    }

    fn stages(&self, _observed_tasks: usize) -> Vec<StageSpec> {
        vec![
            StageSpec {
                name: "fit".into(),
                tasks: 1,
            },
            StageSpec {
                name: "calibrate".into(),
                tasks: 1,
            },
        ]
    }

    fn run_stage_task(&self, cx: &StageContext<'_>) -> Result<(), StepError> {
        match cx.stage {
            0 => self.fit_stage(cx)?,
            1 => self.calibrate_stage(cx)?,
            s => return Err(StepError::Other(format!("train: no stage {s}"))),
        }
        Ok(())
    }
}

struct TrainObserver {
    step: Train,
    out: ObsWriter,
}

impl Observer for TrainObserver {
    fn observe(&mut self, batch: &DocBatch, counters: &mut Counters) -> Result<(), StepError> {
        let cfg = &self.step.cfg;
        let Some(col) = batch.column(&cfg.label_column) else {
            return Err(StepError::Data(format!(
                "train: column `{}` is missing; a `label` step (or labelled input) must come before `train`",
                cfg.label_column
            )));
        };
        let labels = arrow::compute::cast(col, &DataType::Float32).map_err(|e| {
            StepError::Data(format!(
                "train: column `{}` is not numeric: {e}",
                cfg.label_column
            ))
        })?;
        let labels = labels.as_primitive::<arrow::datatypes::Float32Type>();
        let split = match batch.column(&cfg.split_column) {
            Some(c) => Some(arrow::compute::cast(c, &DataType::Utf8).map_err(|e| {
                StepError::Data(format!(
                    "train: column `{}` is not a string: {e}",
                    cfg.split_column
                ))
            })?),
            None => None,
        };
        let split = split.as_ref().map(|s| s.as_string::<i32>());
        let (mut n_train, mut n_hold, mut n_hashed) = (0u64, 0u64, 0u64);
        for i in 0..batch.len() {
            if labels.is_null(i) || labels.value(i).is_nan() {
                continue;
            }
            let key = batch.keys().value(i);
            let holdout = match split.filter(|s| !s.is_null(i)).map(|s| s.value(i)) {
                Some("holdout") => true,
                Some("train") => false,
                _ => {
                    n_hashed += 1;
                    unit(mix64(key, self.step.seeds.holdout)) < cfg.holdout_fraction
                }
            };
            let text = batch.text(i);
            let tokens = if holdout {
                cfg.tokenizer.count(text)
            } else {
                0
            };
            self.out
                .write(key, labels.value(i), holdout, tokens, text.as_bytes())?;
            if holdout {
                n_hold += 1;
            } else {
                n_train += 1;
            }
        }
        counters.add("observed_train_rows", n_train as f64);
        counters.add("observed_holdout_rows", n_hold as f64);
        counters.add("split_assigned_by_hash", n_hashed as f64);
        Ok(())
    }

    fn finish(self: Box<Self>, _counters: &mut Counters) -> Result<(), StepError> {
        self.out.finish()?;
        Ok(())
    }
}

/// Where the model of the nearest `train` step before step `index` lives: its index among
/// `previous` (the types of the steps before).
pub fn nearest_train_step(previous: &[String]) -> Option<usize> {
    previous.iter().rposition(|t| t == TrainConfig::TYPE)
}

/// The model file of a `train` step's work directory.
pub fn model_path(train_dir: &Path) -> PathBuf {
    train_dir.join(MODEL_FILE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_validation() {
        let c: TrainConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, TrainConfig::default());
        assert_eq!(c.hash_bits, 20);
        let mut bad = c.clone();
        bad.hash_bits = 40;
        bad.learning_rate = -1.0;
        bad.folds = 1;
        let mut p = Problems::new();
        bad.validate(&mut p);
        let fields: Vec<&str> = p.items().iter().map(|x| x.field.as_str()).collect();
        assert_eq!(fields, vec!["hash_bits", "learning_rate", "folds"]);
    }
}
