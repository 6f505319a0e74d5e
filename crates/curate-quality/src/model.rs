//! The student model: hashed features, a linear score, a head that maps it to the teacher's
//! scale, an optional isotonic calibration, and its versioned binary file format.
//!
//! File layout (all integers little-endian):
//!
//! ```text
//! b"CURATEQM"            magic
//! u32                    format version (FORMAT_VERSION)
//! u32                    header length H
//! H bytes                JSON header (ModelHeader)
//! u64                    number of weights W (= 2^bits)
//! W × f32                weights
//! ```
//!
//! The same model always serialises to the same bytes, so the file's hash identifies it.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::calibrate::Isotonic;
use crate::features::{FEATURE_SCHEME, Features};

/// Version of the model file format.
pub const FORMAT_VERSION: u32 = 1;
const MAGIC: &[u8; 8] = b"CURATEQM";

/// How the linear score `s` becomes a raw score on the teacher's scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Head {
    /// Binary teacher (0/1): raw = σ(s), the probability of a positive.
    Logistic,
    /// Regression on the teacher's scale: raw = s.
    Linear,
    /// Cumulative-logit ordinal head over classes `0..=thresholds.len()`:
    /// raw = Σ_k σ(s − θ_k), the expected class.
    Ordinal {
        /// Cut points θ_k between class k and k + 1.
        thresholds: Vec<f32>,
    },
}

impl Head {
    /// The head's name as written in configs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Head::Logistic => "logistic",
            Head::Linear => "linear",
            Head::Ordinal { .. } => "ordinal",
        }
    }

    /// Maps a linear score to the raw score (monotone non-decreasing in `s`).
    #[inline]
    pub fn raw(&self, s: f32) -> f32 {
        match self {
            Head::Logistic => sigmoid(s),
            Head::Linear => s,
            Head::Ordinal { thresholds } => thresholds.iter().map(|t| sigmoid(s - t)).sum(),
        }
    }
}

/// The logistic function.
#[inline]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// What was learnt and how, kept in the model header (everything but the weights).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelHeader {
    /// Always `"curate-quality-model"`.
    pub format: String,
    /// The feature scheme the weights were trained under ([`FEATURE_SCHEME`]).
    pub feature_scheme: String,
    /// Feature settings.
    pub features: Features,
    /// The head.
    pub head: Head,
    /// Bias added to the linear score.
    pub bias: f32,
    /// The teacher's scale, `[0, scale_max]`.
    pub scale_max: f32,
    /// The keep threshold the held-out metrics were computed at.
    pub keep_threshold: f32,
    /// Isotonic calibration raw → teacher scale, if fitted.
    pub calibration: Option<Isotonic>,
    /// Training facts (counts, epochs, losses) for the record.
    pub training: serde_json::Value,
}

/// A trained student.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// Everything but the weights.
    pub header: ModelHeader,
    /// One weight per hash bucket.
    pub weights: Vec<f32>,
}

impl Model {
    /// The linear score of a text: bias + (sum of its features' weights) / √(number of features).
    /// Allocates nothing.
    #[inline]
    pub fn linear(&self, text: &[u8]) -> f32 {
        let w = &self.weights[..];
        let mut sum = 0.0f32;
        let n = self
            .header
            .features
            .for_each(text, |b| sum += w[b as usize]);
        if n == 0 {
            self.header.bias
        } else {
            self.header.bias + sum / (n as f32).sqrt()
        }
    }

    /// The linear score from normalised (bucket, weight) features (training and evaluation).
    #[inline]
    pub fn linear_sparse(&self, feats: &[(u32, f32)]) -> f32 {
        let w = &self.weights[..];
        self.header.bias + feats.iter().map(|(b, v)| w[*b as usize] * v).sum::<f32>()
    }

    /// The uncalibrated score of a text on the teacher's scale.
    #[inline]
    pub fn raw(&self, text: &[u8]) -> f32 {
        self.header.head.raw(self.linear(text))
    }

    /// Calibrates a raw score (identity without calibration).
    #[inline]
    pub fn calibrate(&self, raw: f32) -> f32 {
        match &self.header.calibration {
            Some(c) => c.apply(raw),
            None => raw,
        }
    }

    /// The calibrated score of a text: what the `score` step writes.
    #[inline]
    pub fn score(&self, text: &[u8]) -> f32 {
        self.calibrate(self.raw(text))
    }

    /// Serialises the model (deterministic bytes).
    pub fn to_bytes(&self) -> Vec<u8> {
        let header = serde_json::to_vec(&self.header).expect("model header serialises");
        let mut out = Vec::with_capacity(24 + header.len() + self.weights.len() * 4);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(&(self.weights.len() as u64).to_le_bytes());
        for w in &self.weights {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out
    }

    /// Parses a model; `path` names the source in errors.
    pub fn from_bytes(path: &Path, b: &[u8]) -> Result<Model, Error> {
        let bad = |m: String| Error::Model {
            path: path.to_path_buf(),
            message: m,
        };
        if b.len() < 16 || &b[..8] != MAGIC {
            return Err(bad("not a curate quality model (bad magic)".into()));
        }
        let version = u32::from_le_bytes(b[8..12].try_into().unwrap());
        if version != FORMAT_VERSION {
            return Err(bad(format!(
                "model format version {version} is not supported (this build reads version {FORMAT_VERSION}); retrain the model"
            )));
        }
        let hl = u32::from_le_bytes(b[12..16].try_into().unwrap()) as usize;
        let hend = 16 + hl;
        if b.len() < hend + 8 {
            return Err(bad("truncated header".into()));
        }
        let header: ModelHeader =
            serde_json::from_slice(&b[16..hend]).map_err(|e| bad(format!("bad header: {e}")))?;
        if header.feature_scheme != FEATURE_SCHEME {
            return Err(bad(format!(
                "feature scheme `{}` is not this build's `{FEATURE_SCHEME}`; retrain the model",
                header.feature_scheme
            )));
        }
        let nw = u64::from_le_bytes(b[hend..hend + 8].try_into().unwrap()) as usize;
        if nw != header.features.buckets() || b.len() != hend + 8 + nw * 4 {
            return Err(bad(format!(
                "weights section does not hold 2^{} f32 values",
                header.features.bits
            )));
        }
        let weights = b[hend + 8..]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        Ok(Model { header, weights })
    }

    /// Reads a model file.
    pub fn load(path: &Path) -> Result<Model, Error> {
        let b = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Model::from_bytes(path, &b)
    }

    /// Writes the model atomically (temp file, fsync, rename) and returns its content hash.
    pub fn save(&self, path: &Path) -> Result<String, Error> {
        let bytes = self.to_bytes();
        crate::write_atomic(path, &bytes)?;
        Ok(content_hash(&bytes))
    }
}

/// The hash recorded for a model file: xxh3-128 (seed 0) of its bytes, in hex.
pub fn content_hash(bytes: &[u8]) -> String {
    curate_core::hash::hex128(curate_core::hash::h128(bytes, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn tiny() -> Model {
        let features = Features {
            bits: 4,
            bigrams: true,
            seed: 9,
        };
        Model {
            header: ModelHeader {
                format: "curate-quality-model".into(),
                feature_scheme: FEATURE_SCHEME.into(),
                features,
                head: Head::Ordinal {
                    thresholds: vec![-1.0, 0.0, 1.5],
                },
                bias: 0.25,
                scale_max: 3.0,
                keep_threshold: 2.0,
                calibration: Some(Isotonic {
                    x: vec![0.0, 3.0],
                    y: vec![0.5, 2.5],
                }),
                training: serde_json::json!({"epochs": 3}),
            },
            weights: (0..16).map(|i| i as f32 / 8.0 - 1.0).collect(),
        }
    }

    #[test]
    fn roundtrip_and_version_check() {
        let m = tiny();
        let b = m.to_bytes();
        let back = Model::from_bytes(Path::new("m.bin"), &b).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.to_bytes(), b);
        let mut bad = b.clone();
        bad[8] = 9;
        let e = Model::from_bytes(Path::new("m.bin"), &bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("m.bin") && e.contains("version 9"), "{e}");
        let e = Model::from_bytes(Path::new("x"), &b[..b.len() - 1])
            .unwrap_err()
            .to_string();
        assert!(e.contains("weights"), "{e}");
    }

    #[test]
    fn text_and_sparse_scores_agree() {
        let m = tiny();
        let text = b"the cat sat on the mat, the end";
        let (mut s, mut f) = (Vec::new(), Vec::new());
        m.header.features.normalized(text, &mut s, &mut f);
        assert!((m.linear(text) - m.linear_sparse(&f)).abs() < 1e-5);
        assert_eq!(m.linear(b""), 0.25);
        let raw = m.raw(text);
        assert!((0.0..=3.0).contains(&raw));
        assert!((0.5..=2.5).contains(&m.score(text)));
    }
}
