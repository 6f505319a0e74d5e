//! Isotonic calibration: a monotone map from the student's raw score to the teacher's scale.
//!
//! Fitted by pool-adjacent-violators on held-out (raw score, teacher label) pairs; the result is
//! a non-decreasing piecewise-linear function through the pooled blocks (flat inside a block,
//! linear between neighbouring blocks, constant beyond the ends), like scikit-learn's
//! `IsotonicRegression(out_of_bounds="clip")`.

use serde::{Deserialize, Serialize};

/// A fitted isotonic map: knots `x` (strictly increasing) and values `y` (non-decreasing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Isotonic {
    /// Raw-score knots, strictly increasing.
    pub x: Vec<f32>,
    /// Calibrated values at the knots, non-decreasing.
    pub y: Vec<f32>,
}

impl Isotonic {
    /// Fits the map to `(raw, label)` pairs. Returns `None` when there are no pairs.
    pub fn fit(raw: &[f32], labels: &[f32]) -> Option<Isotonic> {
        assert_eq!(raw.len(), labels.len());
        if raw.is_empty() {
            return None;
        }
        let mut order: Vec<usize> = (0..raw.len()).collect();
        order.sort_by(|&a, &b| raw[a].total_cmp(&raw[b]).then(a.cmp(&b)));
        // Blocks: (x_lo, x_hi, sum_y, count). Equal raw values start pooled together.
        let mut blocks: Vec<(f32, f32, f64, f64)> = Vec::new();
        for &i in &order {
            let (x, y) = (raw[i], labels[i] as f64);
            match blocks.last_mut() {
                Some(b) if b.1 == x => {
                    b.2 += y;
                    b.3 += 1.0;
                }
                _ => blocks.push((x, x, y, 1.0)),
            }
            // Pool while the last block's mean is below the previous block's.
            while blocks.len() >= 2 {
                let n = blocks.len();
                let (p, l) = (blocks[n - 2], blocks[n - 1]);
                if p.2 / p.3 > l.2 / l.3 {
                    blocks[n - 2] = (p.0, l.1, p.2 + l.2, p.3 + l.3);
                    blocks.pop();
                } else {
                    break;
                }
            }
        }
        let mut x = Vec::with_capacity(blocks.len() * 2);
        let mut y = Vec::with_capacity(blocks.len() * 2);
        for (lo, hi, s, c) in blocks {
            let v = (s / c) as f32;
            x.push(lo);
            y.push(v);
            if hi > lo {
                x.push(hi);
                y.push(v);
            }
        }
        Some(Isotonic { x, y })
    }

    /// The calibrated value of a raw score.
    #[inline]
    pub fn apply(&self, r: f32) -> f32 {
        let x = &self.x;
        let n = x.len();
        if r.is_nan() || r <= x[0] {
            return self.y[0];
        }
        if r >= x[n - 1] {
            return self.y[n - 1];
        }
        // First knot > r; 1 <= i < n.
        let i = x.partition_point(|&k| k <= r);
        let (x0, x1, y0, y1) = (x[i - 1], x[i], self.y[i - 1], self.y[i]);
        y0 + (y1 - y0) * ((r - x0) / (x1 - x0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pav_pools_violators() {
        // Labels 0,1,0,1 at raw 1,2,3,4: the middle pair violates and pools to 0.5.
        let iso = Isotonic::fit(&[1.0, 2.0, 3.0, 4.0], &[0.0, 1.0, 0.0, 1.0]).unwrap();
        assert_eq!(iso.x, vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(iso.y, vec![0.0, 0.5, 0.5, 1.0]);
        assert_eq!(iso.apply(0.0), 0.0);
        assert_eq!(iso.apply(2.5), 0.5);
        assert_eq!(iso.apply(1.5), 0.25);
        assert_eq!(iso.apply(9.0), 1.0);
    }

    #[test]
    fn ties_in_raw_are_pooled() {
        let iso = Isotonic::fit(&[1.0, 1.0, 2.0], &[0.0, 1.0, 1.0]).unwrap();
        assert_eq!(iso.x, vec![1.0, 2.0]);
        assert_eq!(iso.y, vec![0.5, 1.0]);
    }

    #[test]
    fn output_is_monotone() {
        let raw: Vec<f32> = (0..200).map(|i| ((i * 37) % 101) as f32 / 10.0).collect();
        let lab: Vec<f32> = (0..200).map(|i| ((i * 13) % 6) as f32).collect();
        let iso = Isotonic::fit(&raw, &lab).unwrap();
        let mut last = f32::MIN;
        for i in 0..1000 {
            let v = iso.apply(i as f32 / 90.0);
            assert!(v >= last);
            last = v;
        }
        assert!(Isotonic::fit(&[], &[]).is_none());
    }
}
