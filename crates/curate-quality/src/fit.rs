//! Fitting the student: AdaGrad over sparse features, single-threaded in a seeded order, with
//! early stopping on a validation split.
//!
//! Determinism: examples are ordered by document key, each epoch visits them in the order of a
//! seeded hash of the key, and all arithmetic is sequential f32/f64 — so the same labels and
//! seed give the same weights bit for bit, whatever the thread or task count of the run.

use serde::{Deserialize, Serialize};

use crate::model::sigmoid;

/// Labelled examples as flat arrays of sparse (parameter index, value) features (no
/// per-example allocation).
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    /// Document keys.
    pub keys: Vec<u64>,
    /// Teacher labels.
    pub labels: Vec<f32>,
    /// `offsets[i]..offsets[i + 1]` indexes example i's features.
    pub offsets: Vec<usize>,
    /// Feature (parameter index, value) pairs of all examples.
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
    pub fn push(&mut self, key: u64, label: f32, feats: impl IntoIterator<Item = (u32, f32)>) {
        self.keys.push(key);
        self.labels.push(label);
        self.feats.extend(feats);
        self.offsets.push(self.feats.len());
    }

    /// Example i's features.
    #[inline]
    pub fn features(&self, i: usize) -> &[(u32, f32)] {
        &self.feats[self.offsets[i]..self.offsets[i + 1]]
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
    /// Number of parameters (feature indices are below it).
    pub n_params: usize,
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

/// A fitted linear score and head.
#[derive(Debug, Clone, PartialEq)]
pub struct Fitted {
    /// Weights, one per parameter.
    pub weights: Vec<f32>,
    /// Bias of the linear score.
    pub bias: f32,
    /// Ordinal thresholds (empty for the other heads).
    pub thresholds: Vec<f32>,
    /// The training record.
    pub report: FitReport,
}

impl Fitted {
    /// The linear score of sparse features.
    #[inline]
    pub fn linear(&self, f: &[(u32, f32)]) -> f32 {
        self.bias
            + f.iter()
                .map(|(b, v)| self.weights[*b as usize] * v)
                .sum::<f32>()
    }
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

struct Params {
    w: Vec<f32>,
    g2: Vec<f32>,
    bias: f32,
    bias_g2: f32,
    theta: Vec<f32>,
    theta_g2: Vec<f32>,
}

impl Params {
    #[inline]
    fn linear(&self, f: &[(u32, f32)]) -> f32 {
        self.bias + f.iter().map(|(b, v)| self.w[*b as usize] * v).sum::<f32>()
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
        let s = p.linear(data.features(i));
        total += loss_grad(head, s, data.labels[i], &p.theta, scratch).0;
    }
    total / idx.len() as f64
}

/// Fits on `train` examples, early-stopping on `valid` (both index into `data`).
pub fn fit(data: &Dataset, train: &[usize], valid: &[usize], prm: &FitParams) -> Fitted {
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
        w: vec![0.0; prm.n_params],
        g2: vec![0.0; prm.n_params],
        bias,
        bias_g2: 0.0,
        theta_g2: vec![0.0; theta.len()],
        theta,
    };
    let lr = prm.learning_rate;
    let eps = 1e-8f32;
    let mut dtheta = vec![0.0f32; p.theta.len()];
    // (validation loss, epoch, weights, bias, thresholds) of the best epoch so far.
    type Best = (f64, u32, Vec<f32>, f32, Vec<f32>);
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
            let s = p.linear(f);
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
        if best.as_ref().is_none_or(|b| loss < b.0) {
            best = Some((loss, epoch + 1, p.w.clone(), p.bias, p.theta.clone()));
            since_best = 0;
        } else {
            since_best += 1;
            if !valid.is_empty() && since_best >= prm.patience {
                break;
            }
        }
    }
    let (best_epoch, weights, bias, thresholds) = match best {
        Some((_, e, w, b, t)) => (e, w, b, t),
        None => (0, p.w, p.bias, p.theta),
    };
    Fitted {
        weights,
        bias,
        thresholds,
        report: FitReport {
            n_train: train.len(),
            n_valid: valid.len(),
            epochs_run,
            best_epoch,
            valid_loss: losses,
        },
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Synthetic documents: label = number of "good" words among a few, with filler.
    pub(crate) fn synthetic_texts(n: usize, seed: u64) -> Vec<(u64, String, f32)> {
        let good = ["theorem", "proof", "lecture", "chapter", "experiment"];
        let bad = ["click", "buy", "casino", "sale", "viagra"];
        (0..n as u64)
            .map(|i| {
                let h = curate_core::hash::mix64(i, seed);
                let label = (h % 6) as f32;
                let mut text = String::new();
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
                (i, text, label)
            })
            .collect()
    }

    fn dataset(n: usize, seed: u64) -> Dataset {
        let f = crate::features::Features {
            bits: 12,
            ngrams: 2,
            prefix: 0,
            seed: 1,
        };
        let mut d = Dataset::new();
        let mut bag = Vec::new();
        for (k, text, label) in synthetic_texts(n, seed) {
            f.bag(text.as_bytes(), &mut bag);
            let w = crate::features::bag_weight(bag.len());
            d.push(k, label, bag.iter().map(|b| (*b, w)));
        }
        d
    }

    fn params(head: HeadKind) -> FitParams {
        FitParams {
            n_params: 1 << 12,
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
        let d = dataset(600, 3);
        let hold: Vec<usize> = (0..d.len()).filter(|i| i % 5 == 0).collect();
        let train: Vec<usize> = (0..d.len()).filter(|i| i % 5 != 0 && i % 10 != 1).collect();
        let valid: Vec<usize> = (0..d.len()).filter(|i| i % 10 == 1).collect();
        let a = fit(&d, &train, &valid, &prm);
        let b = fit(&d, &train, &valid, &prm);
        assert_eq!(a, b);
        assert!(
            a.report.valid_loss.last().unwrap() < &a.report.valid_loss[0]
                || a.report.best_epoch > 1
        );
        let raw: Vec<f32> = hold.iter().map(|&i| a.linear(d.features(i))).collect();
        let lab: Vec<f32> = hold.iter().map(|&i| d.labels[i]).collect();
        let rho = crate::metrics::spearman(&raw, &lab).unwrap();
        assert!(rho > 0.7, "spearman {rho}");
    }

    #[test]
    fn every_head_learns() {
        for head in [HeadKind::Linear, HeadKind::Logistic] {
            let mut prm = params(head);
            let mut d = dataset(500, 4);
            if head == HeadKind::Logistic {
                prm.scale_max = 1.0;
                for l in &mut d.labels {
                    *l = (*l >= 3.0) as u8 as f32;
                }
            }
            let train: Vec<usize> = (0..d.len()).filter(|i| i % 5 != 0).collect();
            let hold: Vec<usize> = (0..d.len()).filter(|i| i % 5 == 0).collect();
            let m = fit(&d, &train, &[], &prm);
            let raw: Vec<f32> = hold.iter().map(|&i| m.linear(d.features(i))).collect();
            let pos: Vec<bool> = hold
                .iter()
                .map(|&i| d.labels[i] >= prm.scale_max.min(3.0))
                .collect();
            let auc = crate::metrics::auc(&raw, &pos).unwrap();
            assert!(auc > 0.85, "{head:?}: auc {auc}");
        }
    }
}
