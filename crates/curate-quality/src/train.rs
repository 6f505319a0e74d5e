//! The `train` step: fit, calibrate and evaluate the student on the teacher's labels.

use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray};
use arrow::datatypes::DataType;
use curate_core::hash::{derive_seed, mix64, unit};
use curate_core::step::{PassThrough, Published};
use curate_core::{
    Barrier, BuildEnv, Counters, DocBatch, Observer, Problems, Processor, StageContext, StageSpec,
    Step, StepError, StepSpec, TaskContext,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::calibrate::Isotonic;
use crate::features::Features;
use crate::fit::{Dataset, FitParams, FitReport, HeadKind, fit};
use crate::metrics::{self, Confusion};
use crate::model::Model;
use crate::store::{self, ObsWriter, obs_path};
use crate::tokens::Tokenizer;

/// Train the local quality model (the *student*) on the teacher's labels, calibrate it and
/// evaluate it on the held-out labels.
///
/// The student is fastText-class: hashed word unigram + bigram features, summed and divided
/// by the square root of their number, with a linear score and a head mapped to the teacher's
/// scale — logistic for a 0/1 teacher (such as
/// `reference`), cumulative-logit ordinal for a 0–5 rubric (such as the Claude teacher). It is
/// trained with AdaGrad in a seeded order on one thread, so the same labels and seed give the
/// same model bytes whatever the thread or task count, and stops early on a validation split
/// carved from the `train` rows. The held-out rows then fit an isotonic calibration (raw score
/// → teacher scale) and give the metrics: AUC, Spearman ρ, accuracy and F1 at the keep
/// threshold, expected calibration error before and after calibration (the "after" figure is
/// cross-fitted over 5 folds, so calibration is never judged on the rows it was fitted on), a
/// reliability table and a threshold → kept documents / tokens curve.
///
/// Rows are labelled when `label_column` is not null; `split_column` ("train" / "holdout")
/// assigns them, and rows without a split value are assigned by a seeded hash of the document
/// (`holdout_fraction`). Documents pass through unchanged. The snapshot gets `model/model.bin`
/// (format-versioned; its hash goes into the manifest), `model/model.json` (the header) and
/// `quality/metrics.json`.
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
    /// Head: "auto" (logistic for 0/1 labels, ordinal otherwise), "logistic", "linear"
    /// (squared-error regression) or "ordinal".
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
    /// Use word bigrams as well as unigrams.
    #[serde(default = "default_true")]
    pub bigrams: bool,
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
    /// Share of the `train` rows held back (by seeded hash) for early stopping.
    #[serde(default = "default_validation_fraction")]
    pub validation_fraction: f64,
    /// Share of labelled rows without a split value that go to the held-out set.
    #[serde(default = "default_holdout_fraction")]
    pub holdout_fraction: f64,
    /// Most labelled rows to learn from; beyond it a seeded hash of the document picks which
    /// (bounds the fitting stage's memory).
    #[serde(default = "default_max_examples")]
    pub max_examples: u64,
    /// Calibration: "auto" (isotonic when it lowers the cross-fitted held-out ECE), "isotonic"
    /// or "none".
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
fn default_validation_fraction() -> f64 {
    0.1
}
fn default_holdout_fraction() -> f64 {
    0.2
}
fn default_max_examples() -> u64 {
    1_000_000
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
    /// Logistic for 0/1 labels, ordinal otherwise.
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
    /// Isotonic when it lowers the cross-fitted held-out ECE, else none (small held-out sets
    /// can make an isotonic map noisier than an already calibrated head).
    #[default]
    Auto,
    /// Isotonic regression on the held-out labels, always.
    Isotonic,
    /// No calibration: scores are the head's raw output.
    None,
}

impl StepSpec for TrainConfig {
    const TYPE: &'static str = "train";

    fn validate(&self, p: &mut Problems) {
        p.range("hash_bits", self.hash_bits, 10, 28);
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
        p.range("validation_fraction", self.validation_fraction, 0.0, 0.9);
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
    features: Features,
    order_seed: u64,
    split_seed: u64,
    valid_seed: u64,
    fold_seed: u64,
    select_seed: u64,
    label_step: Option<usize>,
}

/// File names in the step directory.
pub const MODEL_FILE: &str = "model.bin";
const RAW_MODEL_FILE: &str = "model-raw.bin";
const HEADER_FILE: &str = "model.json";
const METRICS_FILE: &str = "metrics.json";
const FIT_FILE: &str = "fit.json";

/// What the fit stage hands the calibrate stage.
#[derive(Debug, Serialize, Deserialize)]
struct FitState {
    scale_max: f32,
    threshold: f32,
    head: HeadKind,
    select_cutoff: Option<u64>,
    n_labelled: u64,
    report: FitReport,
}

impl Train {
    /// Builds the step from its config and the run seed.
    pub fn new(cfg: TrainConfig, run_seed: u64) -> Self {
        let features = Features {
            bits: cfg.hash_bits,
            bigrams: cfg.bigrams,
            seed: derive_seed(run_seed, "quality.features"),
        };
        Train {
            features,
            order_seed: derive_seed(run_seed, "quality.order"),
            split_seed: derive_seed(run_seed, "quality.holdout"),
            valid_seed: derive_seed(run_seed, "quality.validation"),
            fold_seed: derive_seed(run_seed, "quality.folds"),
            select_seed: derive_seed(run_seed, "quality.select"),
            label_step: None,
            cfg,
        }
    }

    fn fit_stage(&self, cx: &StageContext<'_>) -> Result<(), Error> {
        let dir = cx.dir;
        let nb = self.features.buckets();
        self.import_external(cx)?;
        // Bound the labelled set: keep the max_examples rows of smallest seeded hash.
        let mut hashes = Vec::new();
        for p in store::obs_files(dir, cx.observed_tasks) {
            store::read_obs(
                &p,
                nb,
                |h| {
                    hashes.push(mix64(h.key, self.select_seed));
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
        let selected = |key: u64| cutoff.is_none_or(|c| mix64(key, self.select_seed) <= c);
        let data = store::load_dataset(dir, cx.observed_tasks, nb, |h| {
            !h.holdout && selected(h.key)
        })?;
        if data.is_empty() {
            return Err(Error::Corrupt {
                path: dir.to_path_buf(),
                message: format!(
                    "train: no labelled `train` rows (column `{}` was null everywhere or every row is held out); \
                     a `label` step (or labelled input) must come before `train`",
                    self.cfg.label_column
                ),
            });
        }
        let max_label = data.labels.iter().fold(0.0f32, |m, l| m.max(*l));
        let binary = data.labels.iter().all(|l| *l == 0.0 || *l == 1.0);
        let scale_max = match self.cfg.scale_max {
            Some(s) => s as f32,
            None if binary => 1.0,
            None if max_label <= 5.0 => 5.0,
            None => max_label.ceil(),
        };
        let threshold = match self.cfg.threshold {
            Some(t) => t as f32,
            None if scale_max == 1.0 => 0.5,
            None => 0.6 * scale_max,
        };
        let head = match self.cfg.head {
            HeadChoice::Auto if scale_max == 1.0 => HeadKind::Logistic,
            HeadChoice::Auto | HeadChoice::Ordinal => HeadKind::Ordinal,
            HeadChoice::Logistic => HeadKind::Logistic,
            HeadChoice::Linear => HeadKind::Linear,
        };
        if head == HeadKind::Logistic && !binary {
            return Err(Error::Corrupt {
                path: dir.to_path_buf(),
                message: format!(
                    "train: head \"logistic\" needs 0/1 labels, but labels reach {max_label}; use \"ordinal\" or \"linear\""
                ),
            });
        }
        let (mut train, mut valid) = (Vec::new(), Vec::new());
        for i in 0..data.len() {
            if unit(mix64(data.keys[i], self.valid_seed)) < self.cfg.validation_fraction {
                valid.push(i);
            } else {
                train.push(i);
            }
        }
        let prm = FitParams {
            features: self.features,
            head,
            scale_max,
            learning_rate: self.cfg.learning_rate as f32,
            max_epochs: self.cfg.max_epochs,
            patience: self.cfg.patience,
            l2: self.cfg.l2 as f32,
            seed: self.order_seed,
        };
        let (mut model, report) = fit(&data, &train, &valid, &prm);
        model.header.keep_threshold = threshold;
        model.save(&dir.join(RAW_MODEL_FILE))?;
        let state = FitState {
            scale_max,
            threshold,
            head,
            select_cutoff: cutoff,
            n_labelled,
            report,
        };
        crate::write_atomic(
            &dir.join(FIT_FILE),
            &serde_json::to_vec_pretty(&state).expect("serialises"),
        )?;
        if let Ok(mut c) = cx.counters.lock() {
            c.add("labelled_rows", n_labelled as f64);
            c.add("fit_rows", state.report.n_train as f64);
            c.add("validation_rows", state.report.n_valid as f64);
            c.add("epochs", state.report.epochs_run as f64);
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
            let (mut scratch, mut feats) = (Vec::new(), Vec::new());
            let key_seed = derive_seed(self.select_seed, "external");
            store::read_external_labels(&src, |label, holdout, text| {
                let key = curate_core::hash::h64(text.as_bytes(), key_seed);
                let tokens = if holdout {
                    self.cfg.tokenizer.count(text)
                } else {
                    0
                };
                self.features
                    .normalized(text.as_bytes(), &mut scratch, &mut feats);
                n += 1;
                out.write(key, label, holdout, tokens, &feats)
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
        let mut model = Model::load(&dir.join(RAW_MODEL_FILE))?;
        let cut = state.select_cutoff;
        let hold = store::load_dataset(dir, cx.observed_tasks, self.features.buckets(), |h| {
            h.holdout && cut.is_none_or(|c| mix64(h.key, self.select_seed) <= c)
        })?;
        if hold.is_empty() {
            return Err(Error::Corrupt {
                path: dir.to_path_buf(),
                message: "train: no held-out labelled rows to calibrate and evaluate on; give the sample step a \
                          holdout share (or raise `holdout_fraction`)"
                    .into(),
            });
        }
        let raw: Vec<f32> = (0..hold.len())
            .map(|i| model.header.head.raw(model.linear_sparse(hold.features(i))))
            .collect();
        let ev = evaluate(
            &hold,
            &raw,
            state.scale_max,
            state.threshold,
            self.cfg.calibration,
            self.fold_seed,
        );
        model.header.calibration = ev.calibration.clone();
        let mut training = serde_json::to_value(&state.report).expect("serialises");
        training["n_labelled"] = state.n_labelled.into();
        training["n_holdout"] = hold.len().into();
        model.header.training = training;
        let model_hash = model.save(&dir.join(MODEL_FILE))?;
        crate::write_atomic(
            &dir.join(HEADER_FILE),
            &serde_json::to_vec_pretty(&model.header).expect("serialises"),
        )?;
        let metrics = ev.to_json(&state, &model, &model_hash, self.cfg.tokenizer);
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

/// Held-out evaluation of raw scores: calibration and metrics.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// The calibration fitted on all held-out rows (None when disabled).
    pub calibration: Option<Isotonic>,
    /// The metrics document (without model facts).
    pub metrics: serde_json::Value,
    /// ECE of the raw scores.
    pub ece_raw: Option<f64>,
    /// ECE of the cross-fitted calibrated scores.
    pub ece_calibrated: Option<f64>,
}

/// Calibrates `raw` held-out scores against `hold`'s labels and computes every metric.
pub fn evaluate(
    hold: &Dataset,
    raw: &[f32],
    scale_max: f32,
    threshold: f32,
    cal: CalibrationChoice,
    fold_seed: u64,
) -> Evaluation {
    let labels = &hold.labels;
    let n = raw.len();
    let (lo, hi) = (0.0, scale_max as f64);
    // Cross-fitted calibrated predictions: each fold calibrated by the other four.
    let folds: Vec<u64> = hold.keys.iter().map(|k| mix64(*k, fold_seed) % 5).collect();
    let mut cross = raw.to_vec();
    let mut calibration = match cal {
        CalibrationChoice::None => None,
        CalibrationChoice::Isotonic | CalibrationChoice::Auto => {
            for f in 0..5 {
                let (mut r, mut l) = (Vec::new(), Vec::new());
                for i in 0..n {
                    if folds[i] != f {
                        r.push(raw[i]);
                        l.push(labels[i]);
                    }
                }
                if let Some(iso) = Isotonic::fit(&r, &l) {
                    for i in 0..n {
                        if folds[i] == f {
                            cross[i] = iso.apply(raw[i]);
                        }
                    }
                }
            }
            Isotonic::fit(raw, labels)
        }
    };
    let ece_of = |p: &[f32]| metrics::ece(&metrics::reliability(p, labels, lo, hi, 10), lo, hi);
    let mut rejected = false;
    if cal == CalibrationChoice::Auto && ece_of(&cross) >= ece_of(raw) {
        // Isotonic did not beat the raw scores on rows it was not fitted on: keep them raw.
        calibration = None;
        cross.copy_from_slice(raw);
        rejected = true;
    }
    let fin: Vec<f32> = match &calibration {
        Some(c) => raw.iter().map(|r| c.apply(*r)).collect(),
        None => raw.to_vec(),
    };
    let positive: Vec<bool> = labels.iter().map(|l| *l >= threshold).collect();
    let conf = Confusion::at(&cross, labels, threshold);
    let rel_raw = metrics::reliability(raw, labels, lo, hi, 10);
    let rel_cal = metrics::reliability(&cross, labels, lo, hi, 10);
    let rel_fin = metrics::reliability(&fin, labels, lo, hi, 10);
    let ece_raw = metrics::ece(&rel_raw, lo, hi);
    debug_assert_eq!(ece_raw, ece_of(raw));
    let ece_calibrated = metrics::ece(&rel_cal, lo, hi);
    let curve = metrics::threshold_curve(&fin, labels, &hold.tokens, (lo, hi), 20, threshold);
    let metrics = serde_json::json!({
        "n_holdout": n,
        "n_positive": positive.iter().filter(|p| **p).count(),
        "threshold": threshold,
        "scale": [0.0, scale_max],
        "auc": metrics::auc(raw, &positive),
        "auc_calibrated": metrics::auc(&fin, &positive),
        "spearman": metrics::spearman(raw, labels),
        "accuracy": conf.accuracy(),
        "precision": conf.precision(),
        "recall": conf.recall(),
        "f1": conf.f1(),
        "confusion": conf,
        "ece": ece_calibrated,
        "ece_raw": ece_raw,
        "ece_in_sample": metrics::ece(&rel_fin, lo, hi),
        "calibration_rejected": rejected,
        "reliability": { "raw": rel_raw, "calibrated": rel_cal },
        "threshold_curve": curve,
    });
    Evaluation {
        calibration,
        metrics,
        ece_raw,
        ece_calibrated,
    }
}

impl Evaluation {
    fn to_json(
        &self,
        state: &FitState,
        model: &Model,
        model_hash: &str,
        tok: Tokenizer,
    ) -> serde_json::Value {
        let mut m = self.metrics.clone();
        let o = m.as_object_mut().expect("object");
        o.insert("format".into(), 1.into());
        o.insert("head".into(), model.header.head.name().into());
        o.insert(
            "calibration".into(),
            if model.header.calibration.is_some() {
                "isotonic"
            } else {
                "none"
            }
            .into(),
        );
        o.insert("ece_note".into(), "ece: calibrated scores, cross-fitted over 5 folds of the held-out rows; ece_raw: before calibration; both divided by the scale width".into());
        o.insert("tokenizer".into(), tok.name().into());
        o.insert("n_labelled".into(), state.n_labelled.into());
        o.insert("n_train".into(), state.report.n_train.into());
        o.insert("n_validation".into(), state.report.n_valid.into());
        o.insert(
            "training".into(),
            serde_json::to_value(&state.report).expect("serialises"),
        );
        o.insert("model_hash".into(), model_hash.into());
        o.insert(
            "model_format_version".into(),
            crate::model::FORMAT_VERSION.into(),
        );
        m
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
                ("model/model.bin".into(), dir.join(MODEL_FILE)),
                ("model/model.json".into(), dir.join(HEADER_FILE)),
                ("quality/metrics.json".into(), metrics_path),
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
            scratch: Vec::new(),
            feats: Vec::new(),
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
    scratch: Vec<u32>,
    feats: Vec<(u32, f32)>,
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
                    unit(mix64(key, self.step.split_seed)) < cfg.holdout_fraction
                }
            };
            let text = batch.text(i);
            let tokens = if holdout {
                cfg.tokenizer.count(text)
            } else {
                0
            };
            self.step
                .features
                .normalized(text.as_bytes(), &mut self.scratch, &mut self.feats);
            self.out
                .write(key, labels.value(i), holdout, tokens, &self.feats)?;
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
        bad.validation_fraction = 2.0;
        let mut p = Problems::new();
        bad.validate(&mut p);
        let fields: Vec<&str> = p.items().iter().map(|x| x.field.as_str()).collect();
        assert_eq!(
            fields,
            vec!["hash_bits", "learning_rate", "validation_fraction"]
        );
    }
}
