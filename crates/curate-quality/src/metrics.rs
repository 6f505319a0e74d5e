//! Held-out evaluation: AUC, Spearman ρ, accuracy / precision / recall / F1 at the keep
//! threshold, expected calibration error, a reliability table and a threshold curve.
//!
//! All functions are plain and deterministic; undefined values (AUC with a single class,
//! Spearman of a constant) are `None` and serialise as `null`.

use serde::{Deserialize, Serialize};

/// Mid-ranks (1-based, ties averaged) of `v`.
pub fn ranks(v: &[f32]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i + 1;
        while j < order.len() && v[order[j]] == v[order[i]] {
            j += 1;
        }
        let mid = (i + j + 1) as f64 / 2.0; // mean of ranks i+1 ..= j
        for &k in &order[i..j] {
            r[k] = mid;
        }
        i = j;
    }
    r
}

/// Area under the ROC curve of `scores` for the binary truth `positive` (Mann–Whitney U with
/// mid-ranks, so ties count one half). `None` when one class is empty.
pub fn auc(scores: &[f32], positive: &[bool]) -> Option<f64> {
    let r = ranks(scores);
    let np = positive.iter().filter(|p| **p).count() as f64;
    let nn = positive.len() as f64 - np;
    if np == 0.0 || nn == 0.0 {
        return None;
    }
    let sum_pos: f64 = r
        .iter()
        .zip(positive)
        .filter(|(_, p)| **p)
        .map(|(r, _)| r)
        .sum();
    Some((sum_pos - np * (np + 1.0) / 2.0) / (np * nn))
}

/// Pearson correlation of two equal-length series. `None` when either is constant.
pub fn pearson(a: &[f64], b: &[f64]) -> Option<f64> {
    let n = a.len() as f64;
    if a.len() < 2 {
        return None;
    }
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    if saa == 0.0 || sbb == 0.0 {
        return None;
    }
    Some(sab / (saa * sbb).sqrt())
}

/// Spearman's rank correlation (Pearson of mid-ranks).
pub fn spearman(a: &[f32], b: &[f32]) -> Option<f64> {
    pearson(&ranks(a), &ranks(b))
}

/// Binary classification counts at a threshold: predicted positive = `pred >= threshold`, true
/// positive = `label >= threshold`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Confusion {
    /// True positives.
    pub tp: u64,
    /// False positives.
    pub fp: u64,
    /// True negatives.
    pub tn: u64,
    /// False negatives.
    pub fn_: u64,
}

impl Confusion {
    /// Counts predictions against labels at `threshold`.
    pub fn at(pred: &[f32], labels: &[f32], threshold: f32) -> Confusion {
        let mut c = Confusion {
            tp: 0,
            fp: 0,
            tn: 0,
            fn_: 0,
        };
        for (p, l) in pred.iter().zip(labels) {
            match (*p >= threshold, *l >= threshold) {
                (true, true) => c.tp += 1,
                (true, false) => c.fp += 1,
                (false, false) => c.tn += 1,
                (false, true) => c.fn_ += 1,
            }
        }
        c
    }

    /// Fraction of correct predictions.
    pub fn accuracy(&self) -> Option<f64> {
        let n = self.tp + self.fp + self.tn + self.fn_;
        (n > 0).then(|| (self.tp + self.tn) as f64 / n as f64)
    }

    /// tp / (tp + fp).
    pub fn precision(&self) -> Option<f64> {
        let d = self.tp + self.fp;
        (d > 0).then(|| self.tp as f64 / d as f64)
    }

    /// tp / (tp + fn).
    pub fn recall(&self) -> Option<f64> {
        let d = self.tp + self.fn_;
        (d > 0).then(|| self.tp as f64 / d as f64)
    }

    /// Harmonic mean of precision and recall (2tp / (2tp + fp + fn)).
    pub fn f1(&self) -> Option<f64> {
        let d = 2 * self.tp + self.fp + self.fn_;
        (d > 0).then(|| 2.0 * self.tp as f64 / d as f64)
    }
}

/// One bin of a reliability table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReliabilityBin {
    /// Lower edge of the bin (on the teacher's scale).
    pub lo: f64,
    /// Upper edge.
    pub hi: f64,
    /// Documents whose prediction falls in the bin.
    pub n: u64,
    /// Mean prediction in the bin.
    pub mean_pred: Option<f64>,
    /// Mean teacher label in the bin.
    pub mean_label: Option<f64>,
}

/// A reliability table: `bins` equal-width bins of the prediction over `[lo, hi]` (the last bin
/// is closed; predictions outside are clamped into the end bins).
pub fn reliability(
    pred: &[f32],
    labels: &[f32],
    lo: f64,
    hi: f64,
    bins: usize,
) -> Vec<ReliabilityBin> {
    let width = (hi - lo) / bins as f64;
    let mut acc = vec![(0u64, 0.0f64, 0.0f64); bins];
    for (p, l) in pred.iter().zip(labels) {
        let b = (((*p as f64 - lo) / width).floor().max(0.0) as usize).min(bins - 1);
        acc[b].0 += 1;
        acc[b].1 += *p as f64;
        acc[b].2 += *l as f64;
    }
    acc.iter()
        .enumerate()
        .map(|(i, &(n, sp, sl))| ReliabilityBin {
            lo: lo + width * i as f64,
            hi: lo + width * (i + 1) as f64,
            n,
            mean_pred: (n > 0).then(|| sp / n as f64),
            mean_label: (n > 0).then(|| sl / n as f64),
        })
        .collect()
}

/// Expected calibration error of a reliability table, divided by the scale width `hi - lo` so
/// it lies in [0, 1] for any teacher scale: Σ_bins (n_b / n) · |mean label − mean prediction|.
pub fn ece(table: &[ReliabilityBin], lo: f64, hi: f64) -> Option<f64> {
    let n: u64 = table.iter().map(|b| b.n).sum();
    if n == 0 {
        return None;
    }
    let s: f64 = table
        .iter()
        .filter(|b| b.n > 0)
        .map(|b| b.n as f64 * (b.mean_label.unwrap() - b.mean_pred.unwrap()).abs())
        .sum();
    Some(s / n as f64 / (hi - lo))
}

/// One point of the threshold curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    /// Keep documents whose calibrated score is `>=` this.
    pub threshold: f64,
    /// Held-out documents kept.
    pub kept_docs: u64,
    /// Their share of all held-out documents.
    pub kept_docs_fraction: f64,
    /// Tokens of the kept held-out documents.
    pub kept_tokens: u64,
    /// Their share of all held-out tokens.
    pub kept_tokens_fraction: f64,
    /// Share of the kept documents the teacher puts at or above the keep threshold.
    pub precision_at_keep: Option<f64>,
}

/// The threshold → kept documents and tokens curve over `steps + 1` evenly spaced thresholds in
/// `[lo, hi]`. `keep_threshold` defines a teacher positive for the precision column.
pub fn threshold_curve(
    pred: &[f32],
    labels: &[f32],
    tokens: &[u32],
    (lo, hi): (f64, f64),
    steps: usize,
    keep_threshold: f32,
) -> Vec<CurvePoint> {
    let total_docs = pred.len() as f64;
    let total_tokens: u64 = tokens.iter().map(|t| *t as u64).sum();
    (0..=steps)
        .map(|i| {
            let t = lo + (hi - lo) * i as f64 / steps as f64;
            let (mut d, mut tok, mut good) = (0u64, 0u64, 0u64);
            for ((p, l), k) in pred.iter().zip(labels).zip(tokens) {
                if *p as f64 >= t {
                    d += 1;
                    tok += *k as u64;
                    good += (*l >= keep_threshold) as u64;
                }
            }
            CurvePoint {
                threshold: t,
                kept_docs: d,
                kept_docs_fraction: if total_docs > 0.0 {
                    d as f64 / total_docs
                } else {
                    0.0
                },
                kept_tokens: tok,
                kept_tokens_fraction: if total_tokens > 0 {
                    tok as f64 / total_tokens as f64
                } else {
                    0.0
                },
                precision_at_keep: (d > 0).then(|| good as f64 / d as f64),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_hand_checked() {
        // Positives 0.8, 0.4; negatives 0.5, 0.1: pairs (0.8>0.5, 0.8>0.1, 0.4<0.5, 0.4>0.1)
        // → 3 of 4.
        let a = auc(&[0.8, 0.4, 0.5, 0.1], &[true, true, false, false]).unwrap();
        assert!((a - 0.75).abs() < 1e-12);
        // A tie between a positive and a negative counts one half.
        let a = auc(&[0.5, 0.5], &[true, false]).unwrap();
        assert!((a - 0.5).abs() < 1e-12);
        assert_eq!(auc(&[0.1, 0.2], &[true, true]), None);
    }

    #[test]
    fn spearman_hand_checked() {
        // Ranks x = 1,2,3,4; y = 1,3,2,4: ρ = 1 − 6·Σd²/(n(n²−1)) = 1 − 6·2/60 = 0.8.
        let r = spearman(&[1.0, 2.0, 3.0, 4.0], &[10.0, 30.0, 20.0, 40.0]).unwrap();
        assert!((r - 0.8).abs() < 1e-12);
        let r = spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]).unwrap();
        assert!((r + 1.0).abs() < 1e-12);
        assert_eq!(spearman(&[1.0, 1.0], &[1.0, 2.0]), None);
        assert_eq!(ranks(&[3.0, 1.0, 3.0, 2.0]), vec![3.5, 1.0, 3.5, 2.0]);
    }

    #[test]
    fn confusion_hand_checked() {
        let pred = [3.5, 2.0, 3.0, 1.0, 4.0];
        let lab = [4.0, 3.0, 1.0, 0.0, 5.0];
        let c = Confusion::at(&pred, &lab, 3.0);
        assert_eq!(
            c,
            Confusion {
                tp: 2,
                fp: 1,
                tn: 1,
                fn_: 1
            }
        );
        assert!((c.accuracy().unwrap() - 0.6).abs() < 1e-12);
        assert!((c.precision().unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert!((c.recall().unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert!((c.f1().unwrap() - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn ece_hand_checked() {
        // Two bins over [0,1]: bin 0 has preds 0.2, 0.2 with labels 0, 1 (|0.5 − 0.2| = 0.3),
        // bin 1 has pred 0.9 with label 1 (|1 − 0.9| = 0.1): ECE = (2·0.3 + 1·0.1) / 3.
        let t = reliability(&[0.2, 0.2, 0.9], &[0.0, 1.0, 1.0], 0.0, 1.0, 2);
        assert_eq!(t[0].n, 2);
        assert_eq!(t[1].n, 1);
        let e = ece(&t, 0.0, 1.0).unwrap();
        assert!((e - 0.7 / 3.0).abs() < 1e-6, "{e}");
        // On a 0–5 scale the error is divided by 5.
        let t = reliability(&[1.0, 4.0], &[2.0, 4.0], 0.0, 5.0, 5);
        assert!((ece(&t, 0.0, 5.0).unwrap() - 0.1).abs() < 1e-9);
    }

    #[test]
    fn curve_hand_checked() {
        let c = threshold_curve(
            &[0.1, 0.6, 0.9],
            &[0.0, 1.0, 0.0],
            &[10, 20, 70],
            (0.0, 1.0),
            2,
            0.5,
        );
        assert_eq!(c.len(), 3);
        assert_eq!((c[0].kept_docs, c[0].kept_tokens), (3, 100));
        assert_eq!((c[1].kept_docs, c[1].kept_tokens), (2, 90));
        assert!((c[1].kept_tokens_fraction - 0.9).abs() < 1e-12);
        assert_eq!(c[1].precision_at_keep, Some(0.5));
        assert_eq!((c[2].kept_docs, c[2].kept_tokens), (0, 0));
    }
}
