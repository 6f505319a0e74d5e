//! The student's training algorithm, in memory: model selection on a validation split, the fit,
//! calibration and held-out evaluation. The `train` step runs it over its observation files;
//! [`train_student`] runs it over examples in memory (benchmarks, tests).
//!
//! Model selection: the `train` rows are split into `folds` folds by a seeded hash of their key.
//! Every candidate (word n-gram order × document features off / on / on with crosses, unless the
//! config fixes them) is fitted on all folds but the first and scored on the first by the mean of
//! its AUC (label ≥ keep threshold) and Spearman ρ; the best one (earlier candidate on a tie) is
//! kept. With `bagging`, the chosen candidate is then fitted once per fold (on the other folds,
//! early-stopped on its own) and the final model averages the fold models' parameters — the
//! average of their linear scores. All fits use the same rows, seeds and order, so the result is
//! deterministic.

use std::collections::HashMap;

use curate_core::hash::{derive_seed, mix64, unit};
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::calibrate::Calibration;
use crate::doc::{DocStats, N_DOC};
use crate::features::{FEATURE_SCHEME, Features, Kind, bag_weight};
use crate::fit::{Dataset, FitParams, FitReport, Fitted, HeadKind, fit};
use crate::metrics::{self, Confusion};
use crate::model::{DocSpec, Head, Layout, Model, ModelHeader, NamedWeight};
use crate::store::Labelled;
use crate::train::{CalibrationChoice, HeadChoice, TrainConfig};

/// Bins of each document feature's shape function.
pub const DOC_BINS: usize = 16;
/// Bins of each document feature in the pairwise crosses.
pub const CROSS_BINS: usize = 4;
/// Strongest positive (and negative) bag features a model names in its header.
pub const TOP_FEATURES: usize = 25;

/// Seeds the student derives from the run seed.
#[derive(Debug, Clone, Copy)]
pub struct Seeds {
    /// Feature hash.
    pub features: u64,
    /// Visiting order.
    pub order: u64,
    /// Held-out split of rows without one.
    pub holdout: u64,
    /// Validation split.
    pub validation: u64,
    /// Calibration folds.
    pub folds: u64,
    /// Row selection under `max_examples`.
    pub select: u64,
}

impl Seeds {
    /// The seeds of a run.
    pub fn of(run_seed: u64) -> Seeds {
        Seeds {
            features: derive_seed(run_seed, "quality.features"),
            order: derive_seed(run_seed, "quality.order"),
            holdout: derive_seed(run_seed, "quality.holdout"),
            validation: derive_seed(run_seed, "quality.validation"),
            folds: derive_seed(run_seed, "quality.folds"),
            select: derive_seed(run_seed, "quality.select"),
        }
    }
}

/// One model-selection candidate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// Longest word n-gram.
    pub ngrams: u8,
    /// Document-feature shape functions on.
    pub doc: bool,
    /// Pairwise document-feature crosses on.
    pub crosses: bool,
    /// Learning rate.
    pub learning_rate: f32,
    /// Head (ordinal and linear compete for a 0–5 teacher; older models recorded no head here:
    /// they had the run's one head).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<HeadKind>,
}

/// A candidate's result on the validation split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tried {
    /// The candidate.
    pub candidate: Candidate,
    /// Validation AUC (label ≥ keep threshold).
    pub auc: Option<f64>,
    /// Validation Spearman ρ.
    pub spearman: Option<f64>,
    /// The selection score: mean of the defined ones of AUC and ρ; −∞ when neither is defined
    /// (a validation split with one label), which JSON holds as `null`.
    #[serde(deserialize_with = "null_as_neg_infinity")]
    pub score: f64,
    /// Best epoch.
    pub best_epoch: u32,
}

/// What the fit hands calibration: the teacher's scale and the fitted (uncalibrated) model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FitState {
    /// Top of the teacher's scale.
    pub scale_max: f32,
    /// Keep threshold of the metrics.
    pub threshold: f32,
    /// Head fitted.
    pub head: HeadKind,
    /// Labelled rows seen (before `max_examples`).
    pub n_labelled: u64,
    /// Hash cutoff of `max_examples` (None: every row used).
    pub select_cutoff: Option<u64>,
    /// The selected candidate's training record.
    pub report: FitReport,
    /// Every candidate tried.
    pub selection: Vec<Tried>,
    /// With bagging: each fold model's training record (the first is the selection fit).
    pub folds: Vec<FitReport>,
}

/// The teacher's scale, keep threshold and the heads model selection may choose from (in
/// preference order) for the labels of the train rows.
fn scale_threshold_heads(
    cfg: &TrainConfig,
    labels: &[f32],
) -> Result<(f32, f32, Vec<HeadKind>), String> {
    let max_label = labels.iter().fold(0.0f32, |m, l| m.max(*l));
    let binary = labels.iter().all(|l| *l == 0.0 || *l == 1.0);
    let scale_max = match cfg.scale_max {
        Some(s) => s as f32,
        None if binary => 1.0,
        None if max_label <= 5.0 => 5.0,
        None => max_label.ceil(),
    };
    let threshold = match cfg.threshold {
        Some(t) => t as f32,
        None if scale_max == 1.0 => 0.5,
        None => 0.6 * scale_max,
    };
    // On a graded scale neither head wins everywhere: the cumulative-logit ordinal head fits a
    // rubric whose grades are thresholds of one latent quality, squared error fits a teacher
    // whose grade adds up evidence (the fake Claude teacher counts distinct cue words: validation
    // AUC 0.93 ordinal vs 0.98 linear, docs/BENCHMARKS.md). Both compete on validation.
    let heads = match cfg.head {
        HeadChoice::Auto if scale_max == 1.0 => vec![HeadKind::Logistic],
        HeadChoice::Auto => vec![HeadKind::Ordinal, HeadKind::Linear],
        HeadChoice::Ordinal => vec![HeadKind::Ordinal],
        HeadChoice::Logistic => vec![HeadKind::Logistic],
        HeadChoice::Linear => vec![HeadKind::Linear],
    };
    if heads == [HeadKind::Logistic] && !binary {
        return Err(format!(
            "train: head \"logistic\" needs 0/1 labels, but labels reach {max_label}; use \"ordinal\" or \"linear\""
        ));
    }
    Ok((scale_max, threshold, heads))
}

/// The candidates the config leaves open, in preference order (simpler first).
pub fn candidates(cfg: &TrainConfig, heads: &[HeadKind]) -> Vec<Candidate> {
    let ngrams: Vec<u8> = match cfg.ngrams {
        Some(n) => vec![n],
        None => vec![1, 2],
    };
    // (document features, crosses)
    let doc: Vec<(bool, bool)> = match (cfg.doc_features, cfg.crosses) {
        (Some(false), _) => vec![(false, false)],
        (Some(true), Some(c)) => vec![(true, c)],
        (Some(true), None) => vec![(true, false), (true, true)],
        (None, Some(c)) => vec![(false, false), (true, c)],
        (None, None) => vec![(false, false), (true, false), (true, true)],
    };
    let mut out = Vec::new();
    for &(d, c) in &doc {
        for &n in &ngrams {
            for &h in heads {
                out.push(Candidate {
                    ngrams: n,
                    doc: d,
                    crosses: c,
                    learning_rate: cfg.learning_rate as f32,
                    head: Some(h),
                });
            }
        }
    }
    out
}

fn features_of(cfg: &TrainConfig, seeds: &Seeds, ngrams: u8) -> Features {
    Features {
        bits: cfg.hash_bits,
        ngrams,
        prefix: cfg.prefix,
        seed: seeds.features,
    }
}

/// Builds the sparse design of `rows` for a feature scheme and document spec.
fn design(
    data: &Labelled,
    rows: &[usize],
    bags: &[Vec<u32>],
    docs: &[[f32; N_DOC]],
    layout: &Layout,
    spec: Option<&DocSpec>,
) -> Dataset {
    let mut d = Dataset::new();
    let mut feats: Vec<(u32, f32)> = Vec::new();
    for (k, &i) in rows.iter().enumerate() {
        feats.clear();
        let w = bag_weight(bags[k].len());
        feats.extend(bags[k].iter().map(|b| (*b, w)));
        if let Some(spec) = spec {
            spec.for_each(&docs[k], |j, v| feats.push(((layout.bag + j) as u32, v)));
        }
        d.push(data.keys[i], data.labels[i], feats.iter().copied());
    }
    d
}

/// Validation AUC (label ≥ `threshold`) and Spearman ρ of a fit's linear scores.
fn validation_metrics(
    f: &Fitted,
    d: &Dataset,
    va: &[usize],
    threshold: f32,
) -> (Option<f64>, Option<f64>) {
    if va.is_empty() {
        return (None, None);
    }
    let s: Vec<f32> = va.iter().map(|&k| f.linear(d.features(k))).collect();
    let y: Vec<f32> = va.iter().map(|&k| d.labels[k]).collect();
    let pos: Vec<bool> = y.iter().map(|l| *l >= threshold).collect();
    (metrics::auc(&s, &pos), metrics::spearman(&s, &y))
}

/// The parameter average of fits of one design (summed in fold order, so deterministic): its
/// linear score is the mean of theirs. The training record is the first fit's, with its epochs.
fn average(models: Vec<Fitted>) -> Fitted {
    let k = models.len() as f32;
    let mut it = models.into_iter();
    let mut acc = it.next().expect("one model");
    for m in it {
        for (a, w) in acc.weights.iter_mut().zip(&m.weights) {
            *a += w;
        }
        acc.bias += m.bias;
        for (a, t) in acc.thresholds.iter_mut().zip(&m.thresholds) {
            *a += t;
        }
    }
    acc.weights.iter_mut().for_each(|w| *w /= k);
    acc.bias /= k;
    acc.thresholds.iter_mut().for_each(|t| *t /= k);
    acc
}

/// An `f64` that JSON may hold as `null` (how `serde_json` writes a non-finite number): −∞.
fn null_as_neg_infinity<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(<Option<f64> as serde::Deserialize>::deserialize(d)?.unwrap_or(f64::NEG_INFINITY))
}

fn selection_score(auc: Option<f64>, rho: Option<f64>) -> f64 {
    match (auc, rho) {
        (Some(a), Some(r)) => (a + r) / 2.0,
        (Some(a), None) => a,
        (None, Some(r)) => r,
        (None, None) => f64::NEG_INFINITY,
    }
}

/// Fits the student on the non-held-out rows of `data` (sorted by key): model selection on the
/// validation split, then the selected candidate's model, uncalibrated.
pub fn fit_student(
    data: &Labelled,
    cfg: &TrainConfig,
    seeds: &Seeds,
) -> Result<(Model, FitState), String> {
    let rows: Vec<usize> = (0..data.len()).filter(|&i| !data.holdout[i]).collect();
    if rows.is_empty() {
        return Err(format!(
            "train: no labelled `train` rows (column `{}` was null everywhere or every row is held out); \
             a `label` step (or labelled input) must come before `train`",
            cfg.label_column
        ));
    }
    let labels: Vec<f32> = rows.iter().map(|&i| data.labels[i]).collect();
    let (scale_max, threshold, heads) = scale_threshold_heads(cfg, &labels)?;
    // Fold of each row (positions into `rows`).
    let folds = cfg.folds.max(2) as usize;
    let fold: Vec<usize> = rows
        .iter()
        .map(|&i| {
            ((unit(mix64(data.keys[i], seeds.validation)) * folds as f64) as usize).min(folds - 1)
        })
        .collect();
    let split =
        |f: usize| -> (Vec<usize>, Vec<usize>) { (0..rows.len()).partition(|&k| fold[k] != f) };
    let docs: Vec<[f32; N_DOC]> = rows
        .iter()
        .map(|&i| DocStats::of(data.text(i)).features())
        .collect();
    let cands = candidates(cfg, &heads);
    let mut bags_by_n: Vec<(u8, Vec<Vec<u32>>)> = Vec::new();
    let mut tried = Vec::new();
    let mut best: Option<f64> = None;
    // The best candidate so far with its design; consecutive candidates differing only in the
    // head share one design (`current`), and a design no candidate still needs is dropped, so
    // selection holds at most two designs at a time.
    type Design = (Option<DocSpec>, Layout, Features, std::rc::Rc<Dataset>);
    let mut current: Option<((u8, bool, bool), Design)> = None;
    let mut chosen: Option<(Fitted, Design, FitParams)> = None;
    let (tr, va) = split(0);
    for c in &cands {
        let features = features_of(cfg, seeds, c.ngrams);
        if !bags_by_n.iter().any(|(n, _)| *n == c.ngrams) {
            let bags = rows
                .iter()
                .map(|&i| {
                    let mut b = Vec::new();
                    features.bag(data.text(i), &mut b);
                    b
                })
                .collect();
            bags_by_n.push((c.ngrams, bags));
        }
        let shape = (c.ngrams, c.doc, c.crosses);
        if current.as_ref().is_none_or(|(k, _)| *k != shape) {
            drop(current.take()); // free the previous design before building the next
            let bags = &bags_by_n.iter().find(|(n, _)| *n == c.ngrams).unwrap().1;
            let spec = c
                .doc
                .then(|| DocSpec::from_quantiles(&docs, DOC_BINS, c.crosses.then_some(CROSS_BINS)));
            let layout = Layout::of(&features, spec.as_ref());
            let d = design(data, &rows, bags, &docs, &layout, spec.as_ref());
            current = Some((shape, (spec, layout, features, std::rc::Rc::new(d))));
        }
        let (_, cur) = current.as_ref().expect("set above");
        let prm = FitParams {
            n_params: cur.1.total(),
            head: c.head.expect("candidates name their head"),
            scale_max,
            learning_rate: c.learning_rate,
            max_epochs: cfg.max_epochs,
            patience: cfg.patience,
            l2: cfg.l2 as f32,
            seed: seeds.order,
        };
        let f = fit(&cur.3, &tr, &va, &prm);
        let (auc, rho) = validation_metrics(&f, &cur.3, &va, threshold);
        let score = selection_score(auc, rho);
        tried.push(Tried {
            candidate: *c,
            auc,
            spearman: rho,
            score,
            best_epoch: f.report.best_epoch,
        });
        if best.is_none_or(|b| score > b) {
            best = Some(score);
            chosen = Some((f, cur.clone(), prm));
        }
    }
    drop(current);
    let (mut f, (spec, layout, features, d), prm) = chosen.expect("at least one candidate");
    let head = prm.head;
    let mut fold_reports = Vec::new();
    if cfg.bagging {
        // One model per fold, each early-stopped on its own fold; average the parameters.
        let mut models = vec![f];
        for k in 1..folds {
            let (tr, va) = split(k);
            models.push(fit(&d, &tr, &va, &prm));
        }
        fold_reports = models.iter().map(|m| m.report.clone()).collect();
        f = average(models);
    }
    let mut model = Model {
        header: ModelHeader {
            format: "curate-quality-model".into(),
            feature_scheme: FEATURE_SCHEME.into(),
            features,
            doc: spec,
            layout,
            head: match head {
                HeadKind::Logistic => Head::Logistic,
                HeadKind::Linear => Head::Linear,
                HeadKind::Ordinal => Head::Ordinal {
                    thresholds: f.thresholds.clone(),
                },
            },
            bias: f.bias,
            scale_max,
            keep_threshold: threshold,
            calibration: None,
            training: serde_json::Value::Null,
            metrics: serde_json::Value::Null,
            top_features: Vec::new(),
        },
        weights: f.weights,
    };
    model.header.top_features = name_top_features(&model, data, &rows);
    let state = FitState {
        scale_max,
        threshold,
        head,
        n_labelled: data.len() as u64,
        select_cutoff: None,
        report: f.report,
        selection: tried,
        folds: fold_reports,
    };
    model.header.training = training_record(&state, None);
    Ok((model, state))
}

/// The model header's training record.
pub(crate) fn training_record(state: &FitState, n_holdout: Option<usize>) -> serde_json::Value {
    let mut t = serde_json::to_value(&state.report).expect("serialises");
    t["n_labelled"] = state.n_labelled.into();
    if let Some(n) = n_holdout {
        t["n_holdout"] = n.into();
    }
    t["selection"] = serde_json::to_value(&state.selection).expect("serialises");
    if !state.folds.is_empty() {
        t["bagged_folds"] = state
            .folds
            .iter()
            .map(|r| serde_json::json!({"best_epoch": r.best_epoch, "n_train": r.n_train, "n_valid": r.n_valid}))
            .collect::<Vec<_>>()
            .into();
    }
    t
}

/// Names the [`TOP_FEATURES`] strongest positive and negative bag buckets by the text that most
/// often produced them in the training rows.
fn name_top_features(model: &Model, data: &Labelled, rows: &[usize]) -> Vec<NamedWeight> {
    let bag = &model.weights[..model.header.layout.bag];
    let mut order: Vec<u32> = (0..bag.len() as u32)
        .filter(|b| bag[*b as usize] != 0.0)
        .collect();
    order.sort_by(|a, b| bag[*b as usize].total_cmp(&bag[*a as usize]).then(a.cmp(b)));
    let mut chosen: Vec<u32> = order.iter().take(TOP_FEATURES).copied().collect();
    chosen.extend(
        order
            .iter()
            .rev()
            .take(TOP_FEATURES)
            .filter(|b| bag[**b as usize] < 0.0),
    );
    chosen.sort_unstable();
    chosen.dedup();
    // bucket → (text → occurrences), rows containing it.
    let mut names: HashMap<u32, (HashMap<String, u32>, u32)> =
        chosen.iter().map(|b| (*b, (HashMap::new(), 0))).collect();
    let mut in_row: Vec<u32> = Vec::new();
    for &i in rows {
        let text = data.text(i);
        in_row.clear();
        model
            .header
            .features
            .for_each_span(text, |b, kind, (s, e)| {
                if let Some((m, _)) = names.get_mut(&b) {
                    // a byte prefix may end inside a character: name it by the whole character
                    let mut e = e;
                    while e < text.len() && text[e] & 0xC0 == 0x80 {
                        e += 1;
                    }
                    let mut t = String::from_utf8_lossy(&text[s..e]).to_lowercase();
                    t = t
                        .split(|c: char| c.is_ascii() && !c.is_ascii_alphanumeric())
                        .filter(|w| !w.is_empty())
                        .collect::<Vec<_>>()
                        .join(" ");
                    if kind == Kind::Prefix {
                        t.push('*');
                    }
                    *m.entry(t).or_default() += 1;
                    in_row.push(b);
                }
            });
        in_row.sort_unstable();
        in_row.dedup();
        for b in &in_row {
            names.get_mut(b).expect("chosen").1 += 1;
        }
    }
    let mut out: Vec<NamedWeight> = chosen
        .iter()
        .map(|b| {
            let (m, rows) = &names[b];
            let feature = m
                .iter()
                .max_by(|x, y| x.1.cmp(y.1).then(y.0.cmp(x.0)))
                .map(|(t, _)| t.clone())
                .unwrap_or_default();
            NamedWeight {
                feature,
                bucket: *b,
                weight: bag[*b as usize],
                rows: *rows,
            }
        })
        .collect();
    out.sort_by(|a, b| b.weight.total_cmp(&a.weight).then(a.bucket.cmp(&b.bucket)));
    out
}

/// Held-out evaluation of linear scores: calibration and metrics.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// The calibration fitted on all held-out rows (None when disabled or rejected).
    pub calibration: Option<Calibration>,
    /// The metrics document (without model facts).
    pub metrics: serde_json::Value,
}

/// Calibrates held-out linear scores `s` against `labels` and computes every metric; `keys`
/// assign the cross-fitting folds, `tokens` feed the threshold curve.
#[allow(clippy::too_many_arguments)]
pub fn evaluate(
    s: &[f32],
    labels: &[f32],
    keys: &[u64],
    tokens: &[u32],
    head: &Head,
    scale_max: f32,
    threshold: f32,
    cal: CalibrationChoice,
    fold_seed: u64,
) -> Evaluation {
    let n = s.len();
    let (lo, hi) = (0.0, scale_max as f64);
    let raw: Vec<f32> = s.iter().map(|x| head.raw(*x)).collect();
    // Cross-fitted calibrated predictions: each fold calibrated by the other four.
    let folds: Vec<u64> = keys.iter().map(|k| mix64(*k, fold_seed) % 5).collect();
    let mut cross = raw.clone();
    let mut calibration = match cal {
        CalibrationChoice::None => None,
        CalibrationChoice::Isotonic | CalibrationChoice::Auto => {
            for f in 0..5 {
                let (mut r, mut l) = (Vec::new(), Vec::new());
                for i in 0..n {
                    if folds[i] != f {
                        r.push(s[i]);
                        l.push(labels[i]);
                    }
                }
                if let Some(c) = Calibration::fit(&r, &l, scale_max) {
                    for i in 0..n {
                        if folds[i] == f {
                            cross[i] = c.apply(s[i], scale_max);
                        }
                    }
                }
            }
            Calibration::fit(s, labels, scale_max)
        }
    };
    let ece_of = |p: &[f32]| metrics::ece(&metrics::reliability(p, labels, lo, hi, 10), lo, hi);
    let mut rejected = false;
    if cal == CalibrationChoice::Auto && ece_of(&cross) >= ece_of(&raw) {
        // Calibration did not beat the raw scores on rows it was not fitted on: keep them raw.
        calibration = None;
        cross.copy_from_slice(&raw);
        rejected = true;
    }
    let fin: Vec<f32> = match &calibration {
        Some(c) => s.iter().map(|x| c.apply(*x, scale_max)).collect(),
        None => raw.clone(),
    };
    let positive: Vec<bool> = labels.iter().map(|l| *l >= threshold).collect();
    let conf = Confusion::at(&cross, labels, threshold);
    // The classifier view: P(label ≥ threshold), calibrated on the 0/1 indicator (cross-fitted
    // like the rest), predicted positive at ≥ 0.5 — how a softmax classifier such as fastText
    // is usually read.
    let indicator: Vec<f32> = positive.iter().map(|p| *p as u8 as f32).collect();
    let mut p_pos = vec![0.0f32; n];
    for f in 0..5 {
        let (mut r, mut l) = (Vec::new(), Vec::new());
        for i in 0..n {
            if folds[i] != f {
                r.push(s[i]);
                l.push(indicator[i]);
            }
        }
        if let Some(c) = Calibration::fit(&r, &l, 1.0) {
            for i in 0..n {
                if folds[i] == f {
                    p_pos[i] = c.apply(s[i], 1.0);
                }
            }
        }
    }
    let conf_p = Confusion::at(&p_pos, &indicator, 0.5);
    let rel_raw = metrics::reliability(&raw, labels, lo, hi, 10);
    let rel_cal = metrics::reliability(&cross, labels, lo, hi, 10);
    let rel_fin = metrics::reliability(&fin, labels, lo, hi, 10);
    let curve = metrics::threshold_curve(&fin, labels, tokens, (lo, hi), 20, threshold);
    let metrics = serde_json::json!({
        "n_holdout": n,
        "n_positive": positive.iter().filter(|p| **p).count(),
        "threshold": threshold,
        "scale": [0.0, scale_max],
        "auc": metrics::auc(s, &positive),
        "auc_calibrated": metrics::auc(&fin, &positive),
        "spearman": metrics::spearman(s, labels),
        "accuracy": conf.accuracy(),
        "precision": conf.precision(),
        "recall": conf.recall(),
        "f1": conf.f1(),
        "confusion": conf,
        "f1_probability": conf_p.f1(),
        "ece": metrics::ece(&rel_cal, lo, hi),
        "ece_raw": metrics::ece(&rel_raw, lo, hi),
        "ece_in_sample": metrics::ece(&rel_fin, lo, hi),
        "calibration_rejected": rejected,
        "reliability": { "raw": rel_raw, "calibrated": rel_cal },
        "threshold_curve": curve,
    });
    Evaluation {
        calibration,
        metrics,
    }
}

/// The held-out metrics kept in a model header (the headline figures of `quality/metrics.json`).
pub(crate) fn metrics_summary(m: &serde_json::Value) -> serde_json::Value {
    let mut o = serde_json::Map::new();
    for k in [
        "n_holdout",
        "n_positive",
        "threshold",
        "auc",
        "spearman",
        "accuracy",
        "f1",
        "ece",
        "ece_raw",
        "calibration_rejected",
    ] {
        if let Some(v) = m.get(k) {
            o.insert(k.into(), v.clone());
        }
    }
    o.into()
}

/// The linear scores of the held-out rows, computed from their text exactly as `score` does.
pub(crate) fn holdout_scores(model: &Model, data: &Labelled, rows: &[usize]) -> Vec<f32> {
    let mut sc = model.scratch();
    rows.iter()
        .map(|&i| model.linear(data.text(i), &mut sc))
        .collect()
}

/// Calibrates `model` on the held-out rows of `data` and evaluates it: returns the final model
/// (calibration and metric summary in its header) and the full metrics document.
pub fn calibrate_student(
    mut model: Model,
    state: &FitState,
    data: &Labelled,
    cfg: &TrainConfig,
    seeds: &Seeds,
) -> Result<(Model, serde_json::Value), String> {
    let rows: Vec<usize> = (0..data.len()).filter(|&i| data.holdout[i]).collect();
    if rows.is_empty() {
        return Err("train: no held-out labelled rows to calibrate and evaluate on; give the sample step a \
                    holdout share (or raise `holdout_fraction`)"
            .into());
    }
    let s = holdout_scores(&model, data, &rows);
    let pick = |v: &dyn Fn(usize) -> f32| rows.iter().map(|&i| v(i)).collect::<Vec<f32>>();
    let labels = pick(&|i| data.labels[i]);
    let keys: Vec<u64> = rows.iter().map(|&i| data.keys[i]).collect();
    let tokens: Vec<u32> = rows.iter().map(|&i| data.tokens[i]).collect();
    let ev = evaluate(
        &s,
        &labels,
        &keys,
        &tokens,
        &model.header.head,
        state.scale_max,
        state.threshold,
        cfg.calibration,
        seeds.folds,
    );
    model.header.calibration = ev.calibration.clone();
    model.header.training = training_record(state, Some(rows.len()));
    model.header.metrics = metrics_summary(&ev.metrics);
    let mut m = ev.metrics;
    let o = m.as_object_mut().expect("object");
    o.insert("format".into(), 2.into());
    o.insert("head".into(), model.header.head.name().into());
    o.insert(
        "calibration".into(),
        if model.header.calibration.is_some() {
            "isotonic_strict"
        } else {
            "none"
        }
        .into(),
    );
    o.insert("ece_note".into(), "ece: calibrated scores, cross-fitted over 5 folds of the held-out rows; ece_raw: before calibration; both divided by the scale width".into());
    o.insert("tokenizer".into(), cfg.tokenizer.name().into());
    o.insert("n_labelled".into(), state.n_labelled.into());
    o.insert("n_train".into(), state.report.n_train.into());
    o.insert("n_validation".into(), state.report.n_valid.into());
    o.insert(
        "training".into(),
        serde_json::to_value(&state.report).expect("serialises"),
    );
    o.insert(
        "selection".into(),
        serde_json::to_value(&state.selection).expect("serialises"),
    );
    o.insert(
        "model_format_version".into(),
        crate::model::FORMAT_VERSION.into(),
    );
    Ok((model, m))
}

/// One labelled example for [`train_student`].
#[derive(Debug, Clone, Copy)]
pub struct Example<'a> {
    /// A stable key (orders the rows; seeds the splits).
    pub key: u64,
    /// The text.
    pub text: &'a [u8],
    /// The teacher's label.
    pub label: f32,
    /// Held out for calibration and evaluation.
    pub holdout: bool,
}

/// A trained and evaluated student.
#[derive(Debug, Clone)]
pub struct Trained {
    /// The final model.
    pub model: Model,
    /// The metrics document (`quality/metrics.json` without the model hash).
    pub metrics: serde_json::Value,
    /// The held-out rows' linear scores, labels and keys (for other thresholds).
    holdout: (Vec<f32>, Vec<f32>, Vec<u64>),
    calibration: CalibrationChoice,
    fold_seed: u64,
}

impl Trained {
    /// The metrics at another keep threshold (same model and calibration procedure).
    pub fn evaluate_at(&self, threshold: f32) -> serde_json::Value {
        let (s, y, k) = &self.holdout;
        evaluate(
            s,
            y,
            k,
            &vec![0; s.len()],
            &self.model.header.head,
            self.model.header.scale_max,
            threshold,
            self.calibration,
            self.fold_seed,
        )
        .metrics
    }
}

/// Trains, calibrates and evaluates the student on in-memory examples, as the `train` step does
/// (token counts are not computed: the threshold curve's token columns are 0).
pub fn train_student(
    examples: &[Example<'_>],
    cfg: &TrainConfig,
    run_seed: u64,
) -> Result<Trained, Error> {
    let seeds = Seeds::of(run_seed);
    let mut data = Labelled::new();
    for e in examples {
        data.push(e.key, e.label, e.holdout, 0, e.text);
    }
    let data = data.sorted_by_key();
    let err = |m: String| Error::Corrupt {
        path: "<memory>".into(),
        message: m,
    };
    let (model, state) = fit_student(&data, cfg, &seeds).map_err(err)?;
    let (model, metrics) = calibrate_student(model, &state, &data, cfg, &seeds).map_err(err)?;
    let rows: Vec<usize> = (0..data.len()).filter(|&i| data.holdout[i]).collect();
    let s = holdout_scores(&model, &data, &rows);
    let y = rows.iter().map(|&i| data.labels[i]).collect();
    let k = rows.iter().map(|&i| data.keys[i]).collect();
    Ok(Trained {
        model,
        metrics,
        holdout: (s, y, k),
        calibration: cfg.calibration,
        fold_seed: seeds.folds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A candidate with no defined validation metric scores −∞, which JSON writes as `null`:
    /// the fit state must still read back (calibration read it and failed on tiny label sets).
    #[test]
    fn an_undefined_selection_score_round_trips_through_json() {
        let t = Tried {
            candidate: Candidate {
                ngrams: 1,
                doc: false,
                crosses: false,
                learning_rate: 0.1,
                head: None,
            },
            auc: None,
            spearman: None,
            score: selection_score(None, None),
            best_epoch: 1,
        };
        let json = serde_json::to_string(&t).unwrap();
        assert!(json.contains("\"score\":null"), "{json}");
        let back: Tried = serde_json::from_str(&json).unwrap();
        assert_eq!(back.score, f64::NEG_INFINITY);
        assert_eq!(back.candidate, t.candidate);
    }
}
