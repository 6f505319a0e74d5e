//! The student model: a bag of hashed word features plus learnt shape functions of document
//! properties, a linear score, a head that maps it to the teacher's scale, an optional strictly
//! increasing calibration, and its versioned, self-describing binary file format.
//!
//! Linear score of a document:
//!
//! ```text
//! s = bias + (Σ over its distinct bag buckets b of w[b]) / √(number of distinct buckets)
//!          + Σ over document features j of w[j, bin_j]                (shape functions)
//!          + CROSS_VALUE · Σ over feature pairs j < k of w[j, k, coarse bin_j, coarse bin_k]
//! ```
//!
//! File layout (all integers little-endian):
//!
//! ```text
//! b"CURATEQM"            magic
//! u32                    format version (FORMAT_VERSION)
//! u32                    header length H
//! H bytes                JSON header (ModelHeader: feature scheme, document-feature bins,
//!                        head, calibration, training and selection record, held-out metrics,
//!                        strongest features, parameter layout)
//! u64                    number of parameters W
//! W × f32                parameters: the bag (2^bits), then the document-feature bins, then
//!                        the crosses (ModelHeader::layout gives each block's length)
//! ```
//!
//! The same model always serialises to the same bytes, so the file's hash identifies it.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::calibrate::Calibration;
use crate::doc::{DOC_FEATURE_NAMES, DocStats, N_DOC};
use crate::features::{FEATURE_SCHEME, Features, bag_weight};

/// Version of the model file format.
pub const FORMAT_VERSION: u32 = 2;
const MAGIC: &[u8; 8] = b"CURATEQM";
/// The value of a cross feature (a shape function's is 1).
pub const CROSS_VALUE: f32 = 0.25;

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

/// The document-feature part of a model: each feature's bin edges (its shape function has one
/// weight per bin) and, when crosses are on, coarse edges for the pairwise crosses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocSpec {
    /// Feature names ([`DOC_FEATURE_NAMES`]).
    pub names: Vec<String>,
    /// Per feature: strictly increasing bin edges (a value v falls in bin #{edges ≤ v}).
    pub edges: Vec<Vec<f32>>,
    /// Per feature: coarse edges for the crosses; empty when crosses are off.
    pub cross_edges: Vec<Vec<f32>>,
}

impl DocSpec {
    /// Bin edges at the `bins`-quantiles (and `cross_bins`-quantiles when crosses are on) of the
    /// training rows' feature values.
    pub fn from_quantiles(rows: &[[f32; N_DOC]], bins: usize, cross_bins: Option<usize>) -> Self {
        let mut vals = Vec::with_capacity(rows.len());
        let mut edges_at = |j: usize, bins: usize| -> Vec<f32> {
            vals.clear();
            vals.extend(rows.iter().map(|r| r[j]));
            vals.sort_by(|a, b| a.total_cmp(b));
            let mut e: Vec<f32> = if vals.is_empty() {
                Vec::new()
            } else {
                (1..bins).map(|k| vals[k * vals.len() / bins]).collect()
            };
            e.dedup();
            e
        };
        let edges = (0..N_DOC).map(|j| edges_at(j, bins)).collect();
        let cross_edges = match cross_bins {
            Some(c) => (0..N_DOC).map(|j| edges_at(j, c)).collect(),
            None => Vec::new(),
        };
        DocSpec {
            names: DOC_FEATURE_NAMES.iter().map(|s| s.to_string()).collect(),
            edges,
            cross_edges,
        }
    }

    /// Number of shape-function parameters.
    pub fn n_bins(&self) -> usize {
        self.edges.iter().map(|e| e.len() + 1).sum()
    }

    /// Number of cross parameters.
    pub fn n_cross(&self) -> usize {
        let c = &self.cross_edges;
        let mut n = 0;
        for a in 0..c.len() {
            for b in a + 1..c.len() {
                n += (c[a].len() + 1) * (c[b].len() + 1);
            }
        }
        n
    }

    /// Calls `f(parameter index relative to the document block, value)` for every active
    /// document parameter of a row of feature values.
    #[inline]
    pub fn for_each(&self, v: &[f32; N_DOC], mut f: impl FnMut(usize, f32)) {
        let bin = |edges: &[f32], x: f32| edges.partition_point(|e| *e <= x);
        let mut off = 0;
        for (j, e) in self.edges.iter().enumerate() {
            f(off + bin(e, v[j]), 1.0);
            off += e.len() + 1;
        }
        let c = &self.cross_edges;
        for a in 0..c.len() {
            let ba = bin(&c[a], v[a]);
            for b in a + 1..c.len() {
                let w = c[b].len() + 1;
                f(off + ba * w + bin(&c[b], v[b]), CROSS_VALUE);
                off += (c[a].len() + 1) * w;
            }
        }
    }
}

/// Lengths of the parameter blocks, in file order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    /// Bag weights (`2^bits`).
    pub bag: usize,
    /// Shape-function weights.
    pub doc: usize,
    /// Cross weights.
    pub cross: usize,
}

impl Layout {
    /// The layout of a feature scheme and document spec.
    pub fn of(features: &Features, doc: Option<&DocSpec>) -> Layout {
        Layout {
            bag: features.buckets(),
            doc: doc.map_or(0, DocSpec::n_bins),
            cross: doc.map_or(0, DocSpec::n_cross),
        }
    }

    /// Total parameters.
    pub fn total(&self) -> usize {
        self.bag + self.doc + self.cross
    }
}

/// A bag feature named by the text that most often produced its bucket in the training rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedWeight {
    /// The text (lowercased n-gram, or a prefix followed by `*`).
    pub feature: String,
    /// Its bucket.
    pub bucket: u32,
    /// Its weight.
    pub weight: f32,
    /// Training rows that contain it.
    pub rows: u32,
}

/// What was learnt and how, kept in the model header (everything but the parameters).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelHeader {
    /// Always `"curate-quality-model"`.
    pub format: String,
    /// The feature scheme the weights were trained under ([`FEATURE_SCHEME`]).
    pub feature_scheme: String,
    /// Bag feature settings.
    pub features: Features,
    /// Document features (None: the model reads only the bag).
    pub doc: Option<DocSpec>,
    /// Parameter blocks.
    pub layout: Layout,
    /// The head.
    pub head: Head,
    /// Bias added to the linear score.
    pub bias: f32,
    /// The teacher's scale, `[0, scale_max]`.
    pub scale_max: f32,
    /// The keep threshold the held-out metrics were computed at.
    pub keep_threshold: f32,
    /// Calibration linear score → teacher scale, if fitted.
    pub calibration: Option<Calibration>,
    /// Training facts: rows, model selection (candidates and their validation metrics), epochs,
    /// losses.
    pub training: serde_json::Value,
    /// Held-out metrics of the final model (`null` until calibrated).
    pub metrics: serde_json::Value,
    /// The strongest positive and negative bag features, named.
    pub top_features: Vec<NamedWeight>,
}

/// A trained student.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// Everything but the parameters.
    pub header: ModelHeader,
    /// All parameters ([`Layout`] order).
    pub weights: Vec<f32>,
}

/// Reusable per-thread scratch for scoring: the set of buckets seen in the current document.
#[derive(Debug, Clone)]
pub struct Scratch {
    seen: Vec<u64>,
    touched: Vec<u32>,
}

/// A model with its scratch: scores texts one after another.
#[derive(Debug)]
pub struct Scorer<'m> {
    model: &'m Model,
    scratch: Scratch,
}

impl Scorer<'_> {
    /// The calibrated score of a text.
    pub fn score(&mut self, text: &[u8]) -> f32 {
        self.model.score(text, &mut self.scratch)
    }

    /// The linear score of a text.
    pub fn linear(&mut self, text: &[u8]) -> f32 {
        self.model.linear(text, &mut self.scratch)
    }
}

impl Model {
    /// Scratch for [`Model::linear`] (one per thread).
    pub fn scratch(&self) -> Scratch {
        Scratch {
            seen: vec![0; self.header.features.buckets().div_ceil(64)],
            touched: Vec::new(),
        }
    }

    /// A scorer with its own scratch.
    pub fn scorer(&self) -> Scorer<'_> {
        Scorer {
            model: self,
            scratch: self.scratch(),
        }
    }

    /// The document-feature part of the linear score for a row of document feature values.
    #[inline]
    pub fn doc_part(&self, v: &[f32; N_DOC]) -> f32 {
        let Some(spec) = &self.header.doc else {
            return 0.0;
        };
        let w = &self.weights[self.header.layout.bag..];
        let mut sum = 0.0f32;
        spec.for_each(v, |i, x| sum += w[i] * x);
        sum
    }

    /// The linear score of a text. Allocates nothing once `scratch` has grown.
    #[inline]
    pub fn linear(&self, text: &[u8], scratch: &mut Scratch) -> f32 {
        let w = &self.weights[..self.header.layout.bag];
        let Scratch { seen, touched } = scratch;
        touched.clear();
        self.header.features.for_each(text, |b| {
            let (word, bit) = ((b >> 6) as usize, 1u64 << (b & 63));
            if seen[word] & bit == 0 {
                seen[word] |= bit;
                touched.push(b);
            }
        });
        // The weights are summed after the walk, in first-occurrence order (so the sum is the
        // same, bit for bit): with every address known up front the loads of this table, too
        // big for the caches nearest the core, overlap instead of stalling the walk one by one.
        let mut sum = 0.0f32;
        for &b in touched.iter() {
            sum += w[b as usize];
            seen[(b >> 6) as usize] = 0;
        }
        let mut s = self.header.bias + sum * bag_weight(touched.len());
        if self.header.doc.is_some() {
            s += self.doc_part(&DocStats::of(text).features());
        }
        s
    }

    /// The linear score from a bag of distinct buckets and document feature values (training).
    #[inline]
    pub fn linear_parts(&self, bag: &[u32], doc: &[f32; N_DOC]) -> f32 {
        let w = &self.weights[..self.header.layout.bag];
        let sum: f32 = bag.iter().map(|b| w[*b as usize]).sum();
        self.header.bias + sum * bag_weight(bag.len()) + self.doc_part(doc)
    }

    /// The uncalibrated score of a linear score, on the teacher's scale.
    #[inline]
    pub fn raw_of(&self, s: f32) -> f32 {
        self.header.head.raw(s)
    }

    /// The calibrated score of a linear score (the head's raw score without calibration).
    #[inline]
    pub fn calibrated_of(&self, s: f32) -> f32 {
        match &self.header.calibration {
            Some(c) => c.apply(s, self.header.scale_max),
            None => self.header.head.raw(s),
        }
    }

    /// The calibrated score of a text: what the `score` step writes.
    #[inline]
    pub fn score(&self, text: &[u8], scratch: &mut Scratch) -> f32 {
        self.calibrated_of(self.linear(text, scratch))
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
        let hend = 16usize.saturating_add(hl);
        if b.len() < hend.saturating_add(8) {
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
        if !(1..=28).contains(&header.features.bits) || !(1..=3).contains(&header.features.ngrams) {
            return Err(bad("feature settings out of range".into()));
        }
        if let Some(d) = &header.doc {
            let ok = d.edges.len() == N_DOC
                && (d.cross_edges.is_empty() || d.cross_edges.len() == N_DOC)
                && d.edges
                    .iter()
                    .chain(&d.cross_edges)
                    .all(|e| e.windows(2).all(|w| w[0] < w[1]));
            if !ok {
                return Err(bad(format!(
                    "document features: expected {N_DOC} features with increasing bin edges"
                )));
            }
        }
        if let Some(c) = &header.calibration {
            let ok = !c.x.is_empty()
                && c.x.len() == c.y.len()
                && c.x.windows(2).all(|w| w[0] < w[1])
                && c.tail > 0.0;
            if !ok {
                return Err(bad("calibration knots are malformed".into()));
            }
        }
        let layout = Layout::of(&header.features, header.doc.as_ref());
        let nw = u64::from_le_bytes(b[hend..hend + 8].try_into().unwrap()) as usize;
        if layout != header.layout
            || nw != layout.total()
            || (b.len() - hend - 8) != nw.saturating_mul(4)
        {
            return Err(bad(format!(
                "parameters section does not hold the {} f32 values the header's layout needs",
                layout.total()
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

    /// What the model is, for people: header facts, held-out metrics, calibration, the
    /// strongest positive and negative bag features, and each document feature's shape
    /// function (its weight per bin and the range it spans). `top` bounds each feature list.
    pub fn describe(&self, top: usize) -> serde_json::Value {
        let h = &self.header;
        let mut pos: Vec<&NamedWeight> = h.top_features.iter().filter(|f| f.weight > 0.0).collect();
        let mut neg: Vec<&NamedWeight> = h.top_features.iter().filter(|f| f.weight < 0.0).collect();
        pos.sort_by(|a, b| b.weight.total_cmp(&a.weight));
        neg.sort_by(|a, b| a.weight.total_cmp(&b.weight));
        pos.truncate(top);
        neg.truncate(top);
        let doc = h.doc.as_ref().map(|d| {
            let w = &self.weights[h.layout.bag..h.layout.bag + h.layout.doc];
            let mut off = 0;
            let mut shapes: Vec<serde_json::Value> = d
                .edges
                .iter()
                .zip(&d.names)
                .map(|(e, name)| {
                    let ws = &w[off..off + e.len() + 1];
                    off += e.len() + 1;
                    let (lo, hi) = ws
                        .iter()
                        .fold((f32::MAX, f32::MIN), |(l, h), x| (l.min(*x), h.max(*x)));
                    serde_json::json!({"feature": name, "span": hi - lo, "edges": e, "weights": ws})
                })
                .collect();
            shapes.sort_by(|a, b| {
                b["span"]
                    .as_f64()
                    .unwrap_or(0.0)
                    .total_cmp(&a["span"].as_f64().unwrap_or(0.0))
            });
            serde_json::json!({"crosses": !d.cross_edges.is_empty(), "shape_functions": shapes})
        });
        serde_json::json!({
            "format_version": FORMAT_VERSION,
            "feature_scheme": h.feature_scheme,
            "features": h.features,
            "layout": h.layout,
            "head": h.head,
            "bias": h.bias,
            "scale": [0.0, h.scale_max],
            "keep_threshold": h.keep_threshold,
            "calibration": h.calibration,
            "metrics": h.metrics,
            "training": h.training,
            "strongest_positive": pos,
            "strongest_negative": neg,
            "document_features": doc,
        })
    }
}

/// The hash recorded for a model file: xxh3-128 (seed 0) of its bytes, in hex.
pub fn content_hash(bytes: &[u8]) -> String {
    curate_core::hash::hex128(curate_core::hash::h128(bytes, 0))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn tiny() -> Model {
        let features = Features {
            bits: 6,
            ngrams: 2,
            prefix: 4,
            seed: 9,
        };
        let rows: Vec<[f32; N_DOC]> = ["a b c.\n", "long line of text here.\n\n- x\n", "1 2 3"]
            .iter()
            .map(|t| DocStats::of(t.as_bytes()).features())
            .collect();
        let doc = DocSpec::from_quantiles(&rows, 3, Some(2));
        let layout = Layout::of(&features, Some(&doc));
        Model {
            header: ModelHeader {
                format: "curate-quality-model".into(),
                feature_scheme: FEATURE_SCHEME.into(),
                features,
                doc: Some(doc),
                layout,
                head: Head::Ordinal {
                    thresholds: vec![-1.0, 0.0, 1.5],
                },
                bias: 0.25,
                scale_max: 3.0,
                keep_threshold: 2.0,
                calibration: Some(Calibration {
                    x: vec![-1.0, 3.0],
                    y: vec![0.5, 2.5],
                    n: vec![4, 4],
                    tail: 4.0,
                }),
                training: serde_json::json!({"epochs": 3}),
                metrics: serde_json::Value::Null,
                top_features: Vec::new(),
            },
            weights: (0..layout.total())
                .map(|i| (i % 17) as f32 / 8.0 - 1.0)
                .collect(),
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
        assert!(e.contains("parameters"), "{e}");
    }

    #[test]
    fn text_and_parts_scores_agree() {
        let m = tiny();
        let text = b"The cat sat on the mat, the end. The cat sat.\n- list item\n";
        let mut bag = Vec::new();
        m.header.features.bag(text, &mut bag);
        let doc = DocStats::of(text).features();
        let mut sc = m.scratch();
        let a = m.linear(text, &mut sc);
        assert!((a - m.linear_parts(&bag, &doc)).abs() < 1e-5);
        // The scratch is left clean: the same text scores the same again.
        assert_eq!(m.linear(text, &mut sc), a);
        assert!(sc.seen.iter().all(|w| *w == 0));
        let raw = m.raw_of(a);
        assert!((0.0..=3.0).contains(&raw));
        let s = m.score(text, &mut sc);
        assert!((0.0..=3.0).contains(&s), "{s}");
        let d = m.describe(5);
        assert_eq!(
            d["document_features"]["shape_functions"]
                .as_array()
                .unwrap()
                .len(),
            N_DOC
        );
    }
}
