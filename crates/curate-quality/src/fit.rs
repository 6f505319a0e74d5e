//! Fitting the student: AdaGrad over hashed features, single-threaded in a seeded order, with
//! early stopping on a validation split.
//!
//! Determinism: examples are ordered by document key, each epoch visits them in the order of a
//! seeded hash of the key, and all arithmetic is sequential f32/f64 — so the same labels and
//! seed give the same weights bit for bit, whatever the thread or task count of the run.

use serde::{Deserialize, Serialize};

use crate::features::{FEATURE_SCHEME, Features};
use crate::model::{Head, Model, ModelHeader, sigmoid};

/// Labelled examples as flat arrays (no per-example allocation).
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    /// Document keys.
    pub keys: Vec<u64>,
    /// Teacher labels.
    pub labels: Vec<f32>,
    /// Whether each example belongs to the held-out split.
    pub holdout: Vec<bool>,
    /// Token counts (held-out examples only; 0 otherwise).
    pub tokens: Vec<u32>,
    /// `offsets[i]..offsets[i + 1]` indexes example i's features.
    pub offsets: Vec<usize>,
    /// Feature (bucket, weight) pairs of all examples.
    pub feats: Vec<(u32, f32)>,
}

impl Dataset {
    /// An empty dataset.
    pub fn new() -> Self {
        Dataset {
            offsets: vec![0],
            ..Default::default()
        }
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Adds one example.
    pub fn push(&mut self, key: u64, label: f32, holdout: bool, tokens: u32, feats: &[(u32, f32)]) {
        self.keys.push(key);
        self.labels.push(label);
        self.holdout.push(holdout);
        self.tokens.push(tokens);
        self.feats.extend_from_slice(feats);
        self.offsets.push(self.feats.len());
    }

    /// Example i's features.
    #[inline]
    pub fn features(&self, i: usize) -> &[(u32, f32)] {
        &self.feats[self.offsets[i]..self.offsets[i + 1]]
    }

    /// Reorders examples by key (so the result does not depend on how tasks split the input).
    pub fn sorted_by_key(self) -> Dataset {
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.sort_by_key(|&i| self.keys[i]);
        let mut out = Dataset::new();
        out.feats.reserve(self.feats.len());
        for i in order {
            out.push(
                self.keys[i],
                self.labels[i],
                self.holdout[i],
                self.tokens[i],
                self.features(i),
            );
        }
        out
    }
}

/// The head to fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeadKind {
    /// Binary labels (0/1).
    Logistic,
    /// Squared-error regression on the scale.
    Linear,
    /// Cumulative-logit ordinal regression over integer classes `0..=scale_max`.
    Ordinal,
}

/// Training settings.
#[derive(Debug, Clone)]
pub struct FitParams {
    /// Feature settings.
    pub features: Features,
    /// Head.
    pub head: HeadKind,
    /// Top of the teacher's scale (1 for binary).
    pub scale_max: f32,
    /// AdaGrad learning rate.
    pub learning_rate: f32,
    /// Most epochs.
    pub max_epochs: u32,
    /// Stop after this many epochs without a better validation loss.
    pub patience: u32,
    /// L2 penalty applied to the weights an example touches (lazily, per update).
    pub l2: f32,
    /// Seed of the visiting order.
    pub seed: u64,
}

/// What happened during training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitReport {
    /// Examples trained on.
    pub n_train: usize,
    /// Validation examples.
    pub n_valid: usize,
    /// Epochs run.
    pub epochs_run: u32,
    /// Epoch (1-based) whose weights were kept.
    pub best_epoch: u32,
    /// Mean validation loss after each epoch (training loss when there is no validation split).
    pub valid_loss: Vec<f64>,
}

struct Params {
    w: Vec<f32>,
    g2: Vec<f32>,
    bias: f32,
    bias_g2: f32,
    theta: Vec<f32>,
    theta_g2: Vec<f32>,
}

/// Per-example loss and its derivative with respect to the linear score (and thresholds).
fn loss_grad(head: HeadKind, s: f32, y: f32, theta: &[f32], dtheta: &mut [f32]) -> (f64, f32) {
    match head {
        HeadKind::Logistic => {
            let p = sigmoid(s);
            let l = -(y as f64 * (p as f64).max(1e-7).ln()
                + (1.0 - y as f64) * (1.0 - p as f64).max(1e-7).ln());
            (l, p - y)
        }
        HeadKind::Linear => {
            let d = s - y;
            (0.5 * (d as f64) * (d as f64), d)
        }
        HeadKind::Ordinal => {
            let (mut l, mut g) = (0.0f64, 0.0f32);
            for (k, t) in theta.iter().enumerate() {
                // Soft target: 1 when y ≥ k + 1, 0 when y ≤ k (exact for integer labels).
                let target = (y - k as f32).clamp(0.0, 1.0);
                let p = sigmoid(s - t);
                l -= target as f64 * (p as f64).max(1e-7).ln()
                    + (1.0 - target as f64) * (1.0 - p as f64).max(1e-7).ln();
                g += p - target;
                dtheta[k] = target - p;
            }
            (l, g)
        }
    }
}

fn mean_loss(
    p: &Params,
    head: HeadKind,
    data: &Dataset,
    idx: &[usize],
    scratch: &mut [f32],
) -> f64 {
    if idx.is_empty() {
        return f64::NAN;
    }
    let mut total = 0.0;
    for &i in idx {
        let s = p.bias
            + data
                .features(i)
                .iter()
                .map(|(b, v)| p.w[*b as usize] * v)
                .sum::<f32>();
        total += loss_grad(head, s, data.labels[i], &p.theta, scratch).0;
    }
    total / idx.len() as f64
}

type Best = (f64, u32, Vec<f32>, f32, Vec<f32>);

/// Fits a model on `train` examples, early-stopping on `valid` (both index into `data`).
pub fn fit(
    data: &Dataset,
    train: &[usize],
    valid: &[usize],
    prm: &FitParams,
) -> (Model, FitReport) {
    let nb = prm.features.buckets();
    let classes = prm.scale_max.round().max(1.0) as usize;
    let mean_y = if train.is_empty() {
        0.5
    } else {
        train.iter().map(|&i| data.labels[i] as f64).sum::<f64>() / train.len() as f64
    };
    let logit = |p: f64| (p.clamp(0.01, 0.99) / (1.0 - p.clamp(0.01, 0.99))).ln() as f32;
    let (bias, theta) = match prm.head {
        HeadKind::Logistic => (logit(mean_y), Vec::new()),
        HeadKind::Linear => (mean_y as f32, Vec::new()),
        HeadKind::Ordinal => {
            // θ_k so that σ(−θ_k) is the share of labels above k.
            let theta = (0..classes)
                .map(|k| {
                    let above = train
                        .iter()
                        .filter(|&&i| data.labels[i] > k as f32 + 0.5)
                        .count() as f64;
                    -logit(above / train.len().max(1) as f64)
                })
                .collect();
            (0.0, theta)
        }
    };
    let mut p = Params {
        w: vec![0.0; nb],
        g2: vec![0.0; nb],
        bias,
        bias_g2: 0.0,
        theta_g2: vec![0.0; theta.len()],
        theta,
    };
    let lr = prm.learning_rate;
    let eps = 1e-8f32;
    let mut dtheta = vec![0.0f32; p.theta.len()];
    // (validation loss, epoch, weights, bias, thresholds) of the best epoch so far.
    let mut best: Option<Best> = None;
    let mut losses = Vec::new();
    let mut since_best = 0;
    let mut epochs_run = 0;
    let mut order: Vec<(u64, usize)> = Vec::with_capacity(train.len());
    for epoch in 0..prm.max_epochs {
        epochs_run = epoch + 1;
        order.clear();
        let eseed = curate_core::hash::mix64(epoch as u64, prm.seed);
        order.extend(
            train
                .iter()
                .map(|&i| (curate_core::hash::mix64(data.keys[i], eseed), i)),
        );
        order.sort_unstable();
        for &(_, i) in &order {
            let f = data.features(i);
            let s = p.bias + f.iter().map(|(b, v)| p.w[*b as usize] * v).sum::<f32>();
            let (_, g) = loss_grad(prm.head, s, data.labels[i], &p.theta, &mut dtheta);
            for &(b, v) in f {
                let b = b as usize;
                let gj = g * v + prm.l2 * p.w[b];
                p.g2[b] += gj * gj;
                p.w[b] -= lr * gj / (p.g2[b].sqrt() + eps);
            }
            if prm.head == HeadKind::Ordinal {
                for (k, d) in dtheta.iter().enumerate() {
                    p.theta_g2[k] += d * d;
                    p.theta[k] -= lr * d / (p.theta_g2[k].sqrt() + eps);
                }
            } else {
                p.bias_g2 += g * g;
                p.bias -= lr * g / (p.bias_g2.sqrt() + eps);
            }
        }
        let eval = if valid.is_empty() { train } else { valid };
        let loss = mean_loss(&p, prm.head, data, eval, &mut dtheta);
        losses.push(loss);
        let better = best.as_ref().is_none_or(|b| loss < b.0);
        if better {
            best = Some((loss, epoch + 1, p.w.clone(), p.bias, p.theta.clone()));
            since_best = 0;
        } else {
            since_best += 1;
            if !valid.is_empty() && since_best >= prm.patience {
                break;
            }
        }
    }
    let (best_epoch, w, bias, theta) = match best {
        Some((_, e, w, b, t)) => (e, w, b, t),
        None => (0, p.w, p.bias, p.theta),
    };
    let head = match prm.head {
        HeadKind::Logistic => Head::Logistic,
        HeadKind::Linear => Head::Linear,
        HeadKind::Ordinal => Head::Ordinal { thresholds: theta },
    };
    let report = FitReport {
        n_train: train.len(),
        n_valid: valid.len(),
        epochs_run,
        best_epoch,
        valid_loss: losses,
    };
    let model = Model {
        header: ModelHeader {
            format: "curate-quality-model".into(),
            feature_scheme: FEATURE_SCHEME.into(),
            features: prm.features,
            head,
            bias,
            scale_max: prm.scale_max,
            keep_threshold: f32::NAN,
            calibration: None,
            training: serde_json::to_value(&report).expect("report serialises"),
        },
        weights: w,
    };
    (model, report)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Synthetic documents: label = number of "good" words among a few, with filler.
    pub(crate) fn synthetic(n: usize, seed: u64, f: &Features) -> Dataset {
        let good = ["theorem", "proof", "lecture", "chapter", "experiment"];
        let bad = ["click", "buy", "casino", "sale", "viagra"];
        let mut d = Dataset::new();
        let (mut s, mut out) = (Vec::new(), Vec::new());
        let mut text = String::new();
        for i in 0..n as u64 {
            let h = curate_core::hash::mix64(i, seed);
            let label = (h % 6) as f32;
            text.clear();
            for w in 0..30u64 {
                let r = curate_core::hash::mix64(w, h);
                let word = if (r % 5) < label as u64 {
                    good[(r >> 8) as usize % 5]
                } else {
                    bad[(r >> 8) as usize % 5]
                };
                text.push_str(word);
                text.push(' ');
                text.push_str(["the", "a", "of", "and"][(r >> 16) as usize % 4]);
                text.push(' ');
            }
            f.normalized(text.as_bytes(), &mut s, &mut out);
            d.push(i, label, h.is_multiple_of(5), 60, &out);
        }
        d
    }

    fn params(head: HeadKind) -> FitParams {
        FitParams {
            features: Features {
                bits: 12,
                bigrams: true,
                seed: 1,
            },
            head,
            scale_max: 5.0,
            learning_rate: 0.5,
            max_epochs: 8,
            patience: 2,
            l2: 0.0,
            seed: 5,
        }
    }

    #[test]
    fn fit_is_deterministic_and_learns() {
        let prm = params(HeadKind::Ordinal);
        let d = synthetic(600, 3, &prm.features);
        let train: Vec<usize> = (0..d.len())
            .filter(|&i| !d.holdout[i] && i % 10 != 0)
            .collect();
        let valid: Vec<usize> = (0..d.len())
            .filter(|&i| !d.holdout[i] && i % 10 == 0)
            .collect();
        let (m1, r1) = fit(&d, &train, &valid, &prm);
        let (m2, _) = fit(&d, &train, &valid, &prm);
        assert_eq!(m1.to_bytes(), m2.to_bytes());
        assert!(r1.valid_loss.last().unwrap() < &r1.valid_loss[0] || r1.best_epoch > 1);
        let hold: Vec<usize> = (0..d.len()).filter(|&i| d.holdout[i]).collect();
        let raw: Vec<f32> = hold
            .iter()
            .map(|&i| m1.header.head.raw(m1.linear_sparse(d.features(i))))
            .collect();
        let lab: Vec<f32> = hold.iter().map(|&i| d.labels[i]).collect();
        let rho = crate::metrics::spearman(&raw, &lab).unwrap();
        assert!(rho > 0.7, "spearman {rho}");
    }

    #[test]
    fn every_head_learns() {
        for head in [HeadKind::Linear, HeadKind::Logistic] {
            let mut prm = params(head);
            let mut d = synthetic(500, 4, &prm.features);
            if head == HeadKind::Logistic {
                prm.scale_max = 1.0;
                for l in &mut d.labels {
                    *l = (*l >= 3.0) as u8 as f32;
                }
            }
            let train: Vec<usize> = (0..d.len()).filter(|&i| !d.holdout[i]).collect();
            let hold: Vec<usize> = (0..d.len()).filter(|&i| d.holdout[i]).collect();
            let (m, _) = fit(&d, &train, &[], &prm);
            let raw: Vec<f32> = hold
                .iter()
                .map(|&i| m.header.head.raw(m.linear_sparse(d.features(i))))
                .collect();
            let pos: Vec<bool> = hold
                .iter()
                .map(|&i| d.labels[i] >= prm.scale_max.min(3.0))
                .collect();
            let auc = crate::metrics::auc(&raw, &pos).unwrap();
            assert!(auc > 0.85, "{head:?}: auc {auc}");
        }
    }
}
