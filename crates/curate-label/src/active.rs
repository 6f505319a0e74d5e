//! `sample` with `strategy = "uncertainty"`: one round of active selection.
//!
//! Labeling in rounds is a chain of ordinary steps: `sample` (random, stratified) → `label` →
//! `train` → `sample` (`strategy = "uncertainty"`) → `label` → `train` → ... Each uncertainty
//! round scores every not-yet-sampled document with the model of the nearest preceding `train`
//! step and adds `size` of them to the `train` split: those whose calibrated score lies closest
//! to the model's keep threshold (the documents the student is least sure about), shared between
//! strata like a random sample, at most `per_bucket` per near-duplicate bucket (a one-permutation
//! MinHash of word 3-shingles: two texts share a bucket with probability equal to their
//! shingle Jaccard similarity), ties broken by the seeded selection hash.
//!
//! Rows sampled by an earlier round keep their split (so the holdout stays the first round's
//! random stratified holdout and the metrics stay unbiased) and their `selection` value
//! (`random` when the earlier round was a plain `sample`); new rows get `train` and
//! `uncertainty-round-N` (N counts the `sample` steps up to this one).
//!
//! How: each task keeps, per stratum, its `4 × size` candidates with the smallest
//! (margin, hash) (bounded memory) and counts the unlabelled documents of the stratum; one global
//! task merges them, gives each stratum its quota ([`crate::sample::allocate`]) and picks. Every
//! ordering is on (margin bits, hash, key), never on arrival order, so the selection is the same
//! for any task or thread count.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arrow::array::{Array, AsArray, StringArray, StringBuilder};
use curate_core::hash::{h64, mix64};
use curate_core::{Counters, DocBatch, Observer, Processor, StageContext, StepError};
use curate_quality::model::{Model, Scratch};
use serde::{Deserialize, Serialize};

use crate::sample::{
    SampleConfig, StrataKeeper, StratumCandidates, allocate, selection_hash, write_stratum,
};
use crate::util::write_atomic;

/// The file with the keys this round selected (sorted little-endian u64s).
const PICKED: &str = "active-selection.bin";
const STATS: &str = "sample-stats.json";
/// Candidates kept per stratum and task, as a multiple of `size` (room for near-duplicate skips).
const CANDIDATE_FACTOR: usize = 4;

/// The round's label in the selection column.
pub(crate) fn round_label(round: usize) -> String {
    format!("uncertainty-round-{round}")
}

/// What a `sample` step with `strategy = "uncertainty"` needs at run time.
#[derive(Debug)]
pub(crate) struct Active {
    /// Index of the nearest preceding `train` step.
    pub train: usize,
    /// This round's number (1 + the `sample` steps before this one).
    pub round: usize,
    model: Mutex<Option<Arc<Model>>>,
}

impl Active {
    pub(crate) fn new(train: usize, round: usize) -> Active {
        Active {
            train,
            round,
            model: Mutex::new(None),
        }
    }

    fn model(&self, step_dirs: &[PathBuf]) -> Result<Arc<Model>, StepError> {
        let mut g = self
            .model
            .lock()
            .map_err(|_| StepError::Other("sample: model cache poisoned".into()))?;
        if let Some(m) = g.as_ref() {
            return Ok(m.clone());
        }
        let dir = step_dirs.get(self.train).ok_or_else(|| {
            StepError::Other(format!("sample: no work directory for step {}", self.train))
        })?;
        let path = curate_quality::train::model_path(dir);
        let m = Arc::new(Model::load(&path).map_err(|e| {
            StepError::Other(format!(
                "sample (strategy = \"uncertainty\"): the model of steps[{}] (train): {e}",
                self.train
            ))
        })?);
        *g = Some(m.clone());
        Ok(m)
    }

    pub(crate) fn observer(
        &self,
        cfg: &SampleConfig,
        seed: u64,
        dir: &Path,
        task: usize,
        step_dirs: &[PathBuf],
    ) -> Result<Box<dyn Observer>, StepError> {
        let model = self.model(step_dirs)?;
        Ok(Box::new(ActiveObserver {
            scratch: model.scratch(),
            model,
            cfg: cfg.clone(),
            seed,
            bucket_seed: curate_core::hash::derive_seed(seed, "near-duplicate buckets"),
            path: dir.join(format!("active-candidates-{task:05}.json")),
            kept: StrataKeeper::new(),
            buf: String::new(),
            labelled: 0,
        }))
    }

    pub(crate) fn run_stage(
        &self,
        cfg: &SampleConfig,
        cx: &StageContext<'_>,
    ) -> Result<(), StepError> {
        let mut merged: BTreeMap<String, (u64, Vec<Cand>)> = BTreeMap::new();
        let mut labelled = 0u64;
        for t in 0..cx.observed_tasks {
            let p = cx.dir.join(format!("active-candidates-{t:05}.json"));
            let bytes = std::fs::read(&p).map_err(|e| StepError::io(&p, e))?;
            let file: ActiveFile = serde_json::from_slice(&bytes).map_err(|e| {
                StepError::Data(format!("{}: bad candidate file: {e}", p.display()))
            })?;
            labelled += file.labelled;
            for s in file.strata {
                let e = merged.entry(s.name).or_default();
                e.0 += s.count;
                e.1.extend(s.candidates);
            }
        }
        let counts: Vec<(String, u64)> = merged.iter().map(|(k, v)| (k.clone(), v.0)).collect();
        let quotas = allocate(&counts, cfg.size as u64, &cfg.allocation);
        let want: u64 = quotas.iter().sum();
        let mut used: HashMap<u64, usize> = HashMap::new();
        let mut picked: Vec<Cand> = Vec::new();
        let mut rest: Vec<Cand> = Vec::new();
        let mut near_dup_skips = 0u64;
        for ((_, (_, mut cands)), q) in merged.into_iter().zip(&quotas) {
            cands.sort_unstable();
            cands.dedup();
            let mut got = 0u64;
            for c in cands {
                if got < *q && take(&mut used, c.3, cfg.per_bucket) {
                    picked.push(c);
                    got += 1;
                } else {
                    if got < *q {
                        near_dup_skips += 1;
                    }
                    rest.push(c);
                }
            }
        }
        // Quotas a stratum could not fill (too few distinct buckets among its candidates) go
        // to the least certain remaining documents of any stratum, still one bucket at a time;
        // a last pass ignores buckets rather than buy fewer labels than asked.
        rest.sort_unstable();
        let mut left = Vec::new();
        for c in rest {
            if (picked.len() as u64) < want && take(&mut used, c.3, cfg.per_bucket) {
                picked.push(c);
            } else {
                left.push(c);
            }
        }
        for c in left {
            if picked.len() as u64 >= want {
                break;
            }
            picked.push(c);
        }
        let mut margins: Vec<f32> = picked.iter().map(|c| f32::from_bits(c.0)).collect();
        margins.sort_unstable_by(f32::total_cmp);
        let mut keys: Vec<u64> = picked.iter().map(|c| c.2).collect();
        keys.sort_unstable();
        let mut bytes = Vec::with_capacity(keys.len() * 8);
        for k in &keys {
            bytes.extend_from_slice(&k.to_le_bytes());
        }
        write_atomic(&cx.dir.join(PICKED), &bytes).map_err(StepError::from)?;
        let q = |f: f64| -> serde_json::Value {
            if margins.is_empty() {
                return serde_json::Value::Null;
            }
            let i = ((margins.len() - 1) as f64 * f).round() as usize;
            serde_json::json!(margins[i])
        };
        let stats = serde_json::json!({
            "strategy": "uncertainty",
            "round": self.round,
            "selection": round_label(self.round),
            "model_step": self.train,
            "sampled": keys.len(),
            "train": keys.len(),
            "holdout": 0,
            "labelled_before": labelled,
            "unlabelled": counts.iter().map(|c| c.1).sum::<u64>(),
            "strata_count": counts.len(),
            "near_duplicate_skips": near_dup_skips,
            "margin": {"min": q(0.0), "median": q(0.5), "max": q(1.0)},
        });
        write_atomic(
            &cx.dir.join(STATS),
            &serde_json::to_vec_pretty(&stats).expect("JSON"),
        )
        .map_err(StepError::from)
    }

    pub(crate) fn processor(
        &self,
        cfg: &SampleConfig,
        dir: &Path,
    ) -> Result<Box<dyn Processor>, StepError> {
        let path = dir.join(PICKED);
        let bytes = std::fs::read(&path).map_err(|e| StepError::io(&path, e))?;
        if bytes.len() % 8 != 0 {
            return Err(StepError::Data(format!(
                "{}: truncated selection file",
                path.display()
            )));
        }
        let new = bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect();
        Ok(Box::new(ActiveProcessor {
            new,
            column: cfg.column.clone(),
            selection_column: cfg.selection_column.clone(),
            label: round_label(self.round),
        }))
    }
}

/// Takes one more place in a near-duplicate bucket if it has room.
fn take(used: &mut HashMap<u64, usize>, bucket: u64, per_bucket: usize) -> bool {
    let n = used.entry(bucket).or_default();
    if *n < per_bucket {
        *n += 1;
        true
    } else {
        false
    }
}

/// (margin as f32 bits — non-negative, so bit order is numeric order —, selection hash, key,
/// near-duplicate bucket).
type Cand = (u32, u64, u64, u64);

#[derive(Serialize, Deserialize)]
struct ActiveFile {
    labelled: u64,
    strata: Vec<StratumCandidates<Cand>>,
}

/// The near-duplicate bucket of a text: the smallest seeded hash of its word 3-shingles (one
/// MinHash permutation), or of the whole text when it has fewer than three words.
pub fn near_dup_bucket(text: &str, seed: u64) -> u64 {
    let (mut a, mut b) = (0u64, 0u64);
    let mut n = 0usize;
    let mut min = u64::MAX;
    for w in text.split_whitespace() {
        let c = h64(w.as_bytes(), seed);
        if n >= 2 {
            min = min.min(mix64(a ^ b.rotate_left(21) ^ c.rotate_left(42), seed));
        }
        (a, b) = (b, c);
        n += 1;
    }
    if n < 3 {
        return h64(text.as_bytes(), seed);
    }
    min
}

struct ActiveObserver {
    model: Arc<Model>,
    scratch: Scratch,
    cfg: SampleConfig,
    seed: u64,
    bucket_seed: u64,
    path: PathBuf,
    kept: StrataKeeper<Cand>,
    buf: String,
    labelled: u64,
}

impl Observer for ActiveObserver {
    fn observe(&mut self, batch: &DocBatch, _counters: &mut Counters) -> Result<(), StepError> {
        let split = batch.column(&self.cfg.column).cloned();
        let split = split.as_ref().and_then(|c| c.as_string_opt::<i32>());
        let cap = self.cfg.size.saturating_mul(CANDIDATE_FACTOR);
        let threshold = self.model.header.keep_threshold;
        for i in 0..batch.len() {
            if split.is_some_and(|s| s.is_valid(i)) {
                self.labelled += 1;
                continue;
            }
            write_stratum(&self.cfg, batch, i, &mut self.buf)?;
            let text = batch.text(i);
            let s = self.model.score(text.as_bytes(), &mut self.scratch);
            let margin = (s - threshold).abs();
            let margin = if margin.is_finite() { margin } else { f32::MAX };
            let cand = (
                margin.to_bits(),
                selection_hash(batch, i, self.seed),
                batch.keys().value(i),
                near_dup_bucket(text, self.bucket_seed),
            );
            self.kept.offer(&self.buf, cap, cand);
        }
        Ok(())
    }

    fn finish(self: Box<Self>, _counters: &mut Counters) -> Result<(), StepError> {
        let strata = self.kept.into_sorted();
        let file = ActiveFile {
            labelled: self.labelled,
            strata,
        };
        let bytes = serde_json::to_vec(&file).expect("JSON");
        write_atomic(&self.path, &bytes).map_err(StepError::from)
    }
}

struct ActiveProcessor {
    new: HashSet<u64>,
    column: String,
    selection_column: String,
    label: String,
}

impl Processor for ActiveProcessor {
    fn process(&mut self, batch: &mut DocBatch, counters: &mut Counters) -> Result<(), StepError> {
        let split = batch.column(&self.column).cloned();
        let split: Option<&StringArray> = split.as_ref().and_then(|c| c.as_string_opt::<i32>());
        let prev_sel = batch.column(&self.selection_column).cloned();
        let prev_sel: Option<&StringArray> =
            prev_sel.as_ref().and_then(|c| c.as_string_opt::<i32>());
        let n = batch.len();
        let mut sb = StringBuilder::with_capacity(n, n * 4);
        let mut selb = StringBuilder::with_capacity(n, n * 8);
        let (mut new, mut carried) = (0u64, 0u64);
        for i in 0..n {
            if let Some(s) = split.filter(|s| s.is_valid(i)) {
                carried += 1;
                sb.append_value(s.value(i));
                match prev_sel.filter(|p| p.is_valid(i)) {
                    Some(p) => selb.append_value(p.value(i)),
                    None => selb.append_value("random"),
                }
            } else if self.new.contains(&batch.keys().value(i)) {
                new += 1;
                sb.append_value("train");
                selb.append_value(&self.label);
            } else {
                sb.append_null();
                selb.append_null();
            }
        }
        batch.set_column(&self.column, Arc::new(sb.finish()));
        batch.set_column(&self.selection_column, Arc::new(selb.finish()));
        counters.add("train", new as f64);
        counters.add("carried", carried as f64);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_duplicates_usually_share_a_bucket() {
        let base: Vec<String> = (0..200).map(|i| format!("w{}", i * 7 % 101)).collect();
        let a = base.join(" ");
        let mut b = base.clone();
        b[100] = "changed".into();
        let b = b.join(" ");
        let other: Vec<String> = (0..200).map(|i| format!("z{i}")).collect();
        let other = other.join(" ");
        let same = (0..200u64)
            .filter(|&s| near_dup_bucket(&a, s) == near_dup_bucket(&b, s))
            .count();
        assert!(same > 180, "{same}/200 seeds put near duplicates together");
        assert!((0..50u64).all(|s| near_dup_bucket(&a, s) != near_dup_bucket(&other, s)));
        assert_eq!(near_dup_bucket("one two", 1), h64(b"one two", 1));
    }

    #[test]
    fn buckets_cap_picks() {
        let mut used = HashMap::new();
        assert!(take(&mut used, 7, 1));
        assert!(!take(&mut used, 7, 1));
        assert!(take(&mut used, 8, 2) && take(&mut used, 8, 2) && !take(&mut used, 8, 2));
    }
}
