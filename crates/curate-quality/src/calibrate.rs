//! Calibration: a strictly increasing map from the student's linear score to the teacher's scale.
//!
//! Fitted by pool-adjacent-violators (isotonic regression) on held-out (linear score, teacher
//! label) pairs, pooling equal means too, so the pooled blocks' mean labels strictly increase.
//! The map passes through each block's (mean score, mean label) and is linear between them; below
//! the first block and above the last it follows a logistic tail that meets the block value and
//! tends to 0 (resp. the top of the scale). Block values are kept a thousandth of the scale away
//! from both ends.
//!
//! Unlike a step-function isotonic map, it never sends a range of scores to one value: the
//! calibrated score orders documents exactly like the model (up to f32 rounding), so a cut made on
//! the stored calibrated score is the model's cut, and re-cutting the stored column later
//! (`quality_threshold`, `curate rethreshold`) reproduces it. A document whose score lies below
//! every held-out block still gets a small, distinct value instead of 0.

use serde::{Deserialize, Serialize};

/// How far block values stay from the ends of the scale, as a share of the scale.
const END_MARGIN: f32 = 1e-3;
/// How far the tails may move beyond the end blocks' values, as a share of the room left.
const TAIL: f32 = 0.1;

/// A fitted calibration: knots `x` (linear scores) and `y` (values), both strictly increasing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Linear-score knots (the pooled blocks' mean scores), strictly increasing.
    pub x: Vec<f32>,
    /// Calibrated values at the knots, strictly increasing, inside `(0, scale)`.
    pub y: Vec<f32>,
    /// Held-out rows in each block (for the record; `model inspect` prints them).
    pub n: Vec<u32>,
    /// Length of the tails in linear-score units (the mean spacing of the knots, 1 with one
    /// knot).
    pub tail: f32,
}

impl Calibration {
    /// Fits the map to `(score, label)` pairs on the scale `[0, scale]`. `None` without pairs.
    pub fn fit(scores: &[f32], labels: &[f32], scale: f32) -> Option<Calibration> {
        assert_eq!(scores.len(), labels.len());
        if scores.is_empty() {
            return None;
        }
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(a.cmp(&b)));
        // Blocks: (last score, sum of scores, sum of labels, count). Equal scores start pooled.
        let mut blocks: Vec<(f32, f64, f64, f64)> = Vec::new();
        for &i in &order {
            let (x, y) = (scores[i], labels[i] as f64);
            match blocks.last_mut() {
                Some(b) if b.0 == x => {
                    b.1 += x as f64;
                    b.2 += y;
                    b.3 += 1.0;
                }
                _ => blocks.push((x, x as f64, y, 1.0)),
            }
            // Pool while the last block's mean is not above the previous block's.
            while blocks.len() >= 2 {
                let n = blocks.len();
                let (p, l) = (blocks[n - 2], blocks[n - 1]);
                if p.2 / p.3 >= l.2 / l.3 {
                    blocks[n - 2] = (l.0, p.1 + l.1, p.2 + l.2, p.3 + l.3);
                    blocks.pop();
                } else {
                    break;
                }
            }
        }
        let (lo, hi) = (scale * END_MARGIN, scale * (1.0 - END_MARGIN));
        let mut c = Calibration {
            x: Vec::with_capacity(blocks.len()),
            y: Vec::with_capacity(blocks.len()),
            n: Vec::with_capacity(blocks.len()),
            tail: 1.0,
        };
        // (sum of scores, count) of the knot being built, to merge knots that collide in f32
        // or after the end margins.
        let mut acc: Option<(f64, f64, f32)> = None;
        let push = |c: &mut Calibration, (sx, n, y): (f64, f64, f32)| {
            c.x.push((sx / n) as f32);
            c.y.push(y);
            c.n.push(n as u32);
        };
        for (_, sx, sy, n) in blocks {
            let y = ((sy / n) as f32).clamp(lo, hi);
            acc = match acc {
                Some((ax, an, ay)) if ay >= y || (ax / an) as f32 >= (sx / n) as f32 => {
                    Some((ax + sx, an + n, ay.max(y)))
                }
                Some(prev) => {
                    push(&mut c, prev);
                    Some((sx, n, y))
                }
                None => Some((sx, n, y)),
            };
        }
        if let Some(a) = acc {
            push(&mut c, a);
        }
        // Merging can leave a knot's score at or below its predecessor's; keep the x strictly
        // increasing by dropping such knots (their rows count towards the previous one).
        let mut i = 1;
        while i < c.x.len() {
            if c.x[i] <= c.x[i - 1] || c.y[i] <= c.y[i - 1] {
                c.n[i - 1] += c.n[i];
                c.x.remove(i);
                c.y.remove(i);
                c.n.remove(i);
            } else {
                i += 1;
            }
        }
        let k = c.x.len();
        if k > 1 {
            c.tail = (c.x[k - 1] - c.x[0]) / (k - 1) as f32;
        }
        Some(c)
    }

    /// The calibrated value of linear score `s` on the scale `[0, scale]`.
    #[inline]
    pub fn apply(&self, s: f32, scale: f32) -> f32 {
        let (x, y) = (&self.x, &self.y);
        let n = x.len();
        if s.is_nan() {
            return f32::NAN;
        }
        if s <= x[0] {
            return y[0] * (1.0 - TAIL + TAIL * ((s - x[0]) / self.tail).exp());
        }
        if s >= x[n - 1] {
            let room = scale - y[n - 1];
            return y[n - 1] + room * TAIL * (1.0 - (-(s - x[n - 1]) / self.tail).exp());
        }
        // First knot > s; 1 <= i < n.
        let i = x.partition_point(|&k| k <= s);
        let (x0, x1, y0, y1) = (x[i - 1], x[i], y[i - 1], y[i]);
        y0 + (y1 - y0) * ((s - x0) / (x1 - x0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pav_pools_violators_and_interpolates_between_centroids() {
        // Labels 0,1,0,1 at scores 1,2,3,4: the middle pair violates and pools to 0.5 at 2.5.
        let c = Calibration::fit(&[1.0, 2.0, 3.0, 4.0], &[0.0, 1.0, 0.0, 1.0], 1.0).unwrap();
        assert_eq!(c.x, vec![1.0, 2.5, 4.0]);
        assert_eq!(c.y, vec![0.001, 0.5, 0.999]);
        assert_eq!(c.n, vec![1, 2, 1]);
        assert!((c.apply(1.75, 1.0) - (0.001 + 0.499 * 0.5)).abs() < 1e-6);
        assert_eq!(c.apply(2.5, 1.0), 0.5);
        // Tails: below the first knot towards 90 % of its value, above the last a tenth of the
        // way to the top; never flat.
        assert_eq!(c.tail, 1.5);
        assert_eq!(c.apply(1.0, 1.0), 0.001);
        assert!(c.apply(0.0, 1.0) < 0.001 && c.apply(0.0, 1.0) > c.apply(-1.0, 1.0));
        assert!(c.apply(-50.0, 1.0) >= 0.0009);
        assert!(c.apply(9.0, 1.0) > 0.999 && c.apply(9.0, 1.0) < 0.9991);
    }

    #[test]
    fn ties_and_equal_means_are_pooled() {
        let c = Calibration::fit(&[1.0, 1.0, 2.0], &[0.0, 1.0, 1.0], 1.0).unwrap();
        assert_eq!(c.x, vec![1.0, 2.0]);
        assert_eq!(c.y, vec![0.5, 0.999]);
        // Equal means pool: strictly increasing values.
        let c = Calibration::fit(&[1.0, 2.0, 3.0], &[1.0, 1.0, 2.0], 5.0).unwrap();
        assert_eq!(c.x, vec![1.5, 3.0]);
        assert_eq!(c.y, vec![1.0, 2.0]);
    }

    #[test]
    fn output_is_strictly_increasing() {
        let s: Vec<f32> = (0..300)
            .map(|i| ((i * 37) % 101) as f32 / 10.0 - 5.0)
            .collect();
        let lab: Vec<f32> = (0..300).map(|i| ((i * 13) % 6) as f32).collect();
        let c = Calibration::fit(&s, &lab, 5.0).unwrap();
        assert!(c.x.windows(2).all(|w| w[0] < w[1]));
        assert!(c.y.windows(2).all(|w| w[0] < w[1]));
        let mut last = f32::MIN;
        for i in 0..4000 {
            let v = c.apply(i as f32 / 400.0 - 5.0, 5.0);
            assert!(v > last, "{i}: {v} after {last}");
            assert!((0.0..=5.0).contains(&v));
            last = v;
        }
        assert!(Calibration::fit(&[], &[], 1.0).is_none());
        // All one label: one knot, still strictly increasing through it.
        let c = Calibration::fit(&[0.0, 1.0], &[0.0, 0.0], 1.0).unwrap();
        assert_eq!(c.x.len(), 1);
        assert!(c.apply(1.0, 1.0) > c.apply(0.0, 1.0));
    }
}
