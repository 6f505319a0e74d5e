//! `sample`: a deterministic, stratified sample of documents plus a held-out split.
//!
//! Every document flows on; `sample` only adds a `split` column: `"train"`, `"holdout"` or null
//! (not sampled). Selection is keyed on a seeded hash of each document's id (its text when the
//! input has no id column), so the same config picks the same documents whatever the task count,
//! and mostly the same ones after an upstream filter changes (which keeps the label store warm).
//!
//! How: each task keeps, per stratum, the `size` documents with the smallest hashes (bounded
//! memory: at most `size` candidates per stratum and task) and counts the stratum. One global
//! task merges them, gives each stratum its quota (`proportional` to its count by largest
//! remainder, or `equal` shares with the leftover of small strata handed on), takes the smallest
//! hashes of each stratum, and marks a `holdout` fraction of the sample by a second seeded hash.

use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, AsArray, StringBuilder};
use arrow::datatypes::DataType;
use curate_core::hash::{derive_seed, h64, mix64};
use curate_core::{
    Barrier, BuildEnv, Counters, DocBatch, Observer, Problems, Processor, StageContext, StageSpec,
    Step, StepError, StepSpec, TaskContext,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::util::write_atomic;

/// Draws a deterministic, stratified sample of documents and marks a held-out split.
///
/// Adds a nullable `split` column (`"train"`, `"holdout"`, or null for documents not sampled);
/// never drops a document. The `label` step labels the sampled rows; `train` learns from the
/// `train` split and is evaluated on `holdout`. The same config selects the same documents
/// whatever the number of tasks or threads.
///
/// Example:
///
/// ```toml
/// [[steps]]
/// type = "sample"
/// size = 2000
/// strata = ["language", "url_domain"]
/// holdout = 0.2
/// ```
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SampleConfig {
    /// Number of documents to sample (all documents when the input has fewer).
    pub size: usize,
    /// Strata: any input column name (its value is the stratum, e.g. `language`), or one of the
    /// derived strata `url_domain` (host of the `url` column, lowercased, without `www.`) and
    /// `length_bucket` (text length in bytes, bucketed by `length_buckets`). Empty: one stratum.
    #[serde(default)]
    pub strata: Vec<String>,
    /// How the sample is shared between strata: `proportional` (to each stratum's size) or
    /// `equal` (the same number from each, the leftover of small strata going to the others).
    #[serde(default = "default_allocation")]
    pub allocation: String,
    /// Fraction of the sample marked `holdout` (for evaluation); the rest is `train`.
    #[serde(default = "default_holdout")]
    pub holdout: f64,
    /// Seed of the selection; default: derived from the run seed.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Upper bounds (bytes of text) of the `length_bucket` strata; one more bucket holds longer
    /// texts.
    #[serde(default = "default_buckets")]
    pub length_buckets: Vec<usize>,
    /// Name of the column the split is written to (rename it when the input already has a
    /// `split` column you want to keep, e.g. when curating a curate snapshot again; `label`
    /// reads it through its `split_column`).
    #[serde(default = "default_split_column")]
    pub column: String,
    /// How documents are picked: `random` (a seeded hash within strata, the first round of
    /// labeling) or `uncertainty` (a later round of active labeling: the `size` not yet sampled
    /// documents whose score under the model of the nearest preceding `train` step is closest
    /// to its keep threshold, shared between strata and spread over near-duplicate buckets).
    /// `uncertainty` needs a `sample` and a `train` step before it, keeps every earlier
    /// round's rows and split (the holdout stays the first round's) and adds only `train` rows;
    /// it rewrites the split column and writes `selection_column`, so set `overwrite = true`
    /// on the step. See docs/LABELING.md.
    #[serde(default = "default_strategy")]
    pub strategy: String,
    /// `strategy = "uncertainty"`: the column saying how each sampled row was chosen (`random`
    /// for rows of a random round, `uncertainty-round-N` for rows this round N picked).
    #[serde(default = "default_selection_column")]
    pub selection_column: String,
    /// `strategy = "uncertainty"`: at most this many picks per near-duplicate bucket (a
    /// MinHash of word 3-shingles), so near copies of one uncertain document are not all bought.
    #[serde(default = "default_per_bucket")]
    pub per_bucket: usize,
}

fn default_strategy() -> String {
    "random".into()
}
fn default_selection_column() -> String {
    "selection".into()
}
fn default_per_bucket() -> usize {
    1
}

fn default_split_column() -> String {
    "split".into()
}

fn default_allocation() -> String {
    "proportional".into()
}
fn default_holdout() -> f64 {
    0.2
}
fn default_buckets() -> Vec<usize> {
    vec![500, 2000, 8000, 32000]
}

impl StepSpec for SampleConfig {
    const TYPE: &'static str = "sample";

    fn validate(&self, p: &mut Problems) {
        if self.size == 0 {
            p.push("size", "0 is out of range; allowed: 1 or more documents");
        }
        p.one_of("allocation", &self.allocation, &["proportional", "equal"]);
        p.range("holdout", self.holdout, 0.0, 0.9);
        if self.length_buckets.windows(2).any(|w| w[0] >= w[1]) {
            p.push(
                "length_buckets",
                format!("{:?} must be strictly increasing", self.length_buckets),
            );
        }
        if self.column.trim().is_empty() {
            p.push("column", "is empty; name the split column");
        }
        p.one_of("strategy", &self.strategy, &["random", "uncertainty"]);
        if self.strategy == "uncertainty" {
            if self.per_bucket == 0 {
                p.push("per_bucket", "0 is out of range; allowed: 1 or more");
            }
            if self.selection_column.trim().is_empty() {
                p.push("selection_column", "is empty; name the selection column");
            }
            if self.selection_column == self.column {
                p.push(
                    "selection_column",
                    format!(
                        "\"{}\" is also the split column; use another name",
                        self.column
                    ),
                );
            }
        }
        let mut seen = std::collections::HashSet::new();
        for s in &self.strata {
            if s.is_empty() {
                p.push("strata", "an empty stratum name is not allowed");
            } else if !seen.insert(s) {
                p.push("strata", format!("\"{s}\" is listed twice"));
            }
        }
    }

    fn build(&self, env: &BuildEnv) -> Result<Box<dyn Step>, StepError> {
        let seed = self.seed.unwrap_or_else(|| derive_seed(env.seed, "sample"));
        let active = if self.strategy == "uncertainty" {
            let rounds = env.previous.iter().filter(|t| *t == "sample").count();
            let train = curate_quality::train::nearest_train_step(&env.previous);
            let (Some(train), true) = (train, rounds > 0) else {
                return Err(StepError::Other(format!(
                    "steps[{}] (sample): strategy = \"uncertainty\" needs a `sample` step (the first, random round with the holdout) and a `train` step (the model that judges uncertainty) before it",
                    env.index
                )));
            };
            Some(crate::active::Active::new(train, rounds + 1))
        } else {
            None
        };
        Ok(Box::new(SampleStep {
            cfg: self.clone(),
            seed,
            active,
        }))
    }
}

/// The runtime `sample` step.
#[derive(Debug)]
pub struct SampleStep {
    cfg: SampleConfig,
    seed: u64,
    active: Option<crate::active::Active>,
}

const SELECTION: &str = "selection.bin";
const STATS: &str = "sample-stats.json";
const SPLIT_TRAIN: u8 = 1;
const SPLIT_HOLDOUT: u8 = 2;

impl Step for SampleStep {
    fn kind(&self) -> &'static str {
        "sample"
    }

    fn columns(&self, c: &mut curate_core::columns::Columns<'_>) {
        use curate_core::columns::Want;
        for s in &self.cfg.strata {
            match s.as_str() {
                "url_domain" => {
                    c.need("strata", "url", Want::String);
                }
                "length_bucket" => {}
                name => {
                    c.need("strata", name, Want::Key);
                }
            }
        }
        c.add(Some("column"), &self.cfg.column, DataType::Utf8);
        if self.active.is_some() {
            c.add(
                Some("selection_column"),
                &self.cfg.selection_column,
                DataType::Utf8,
            );
        }
    }

    fn processor(&self, cx: &TaskContext<'_>) -> Result<Box<dyn Processor>, StepError> {
        if let Some(a) = &self.active {
            return a.processor(&self.cfg, cx.dir);
        }
        let path = cx.dir.join(SELECTION);
        let bytes = std::fs::read(&path).map_err(|e| StepError::io(&path, e))?;
        if bytes.len() % 9 != 0 {
            return Err(StepError::Data(format!(
                "{}: truncated selection file",
                path.display()
            )));
        }
        let sel: HashMap<u64, u8> = bytes
            .chunks_exact(9)
            .map(|c| {
                (
                    u64::from_le_bytes(c[..8].try_into().expect("8 bytes")),
                    c[8],
                )
            })
            .collect();
        Ok(Box::new(SampleProcessor {
            sel,
            column: self.cfg.column.clone(),
        }))
    }

    fn barrier(&self) -> Option<&dyn Barrier> {
        Some(self)
    }

    fn publish(&self, dir: &Path) -> Result<curate_core::step::Published, StepError> {
        let p = dir.join(STATS);
        let stats = match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b).ok(),
            Err(_) => None,
        };
        Ok(curate_core::step::Published {
            files: vec![],
            stats,
        })
    }
}

impl Barrier for SampleStep {
    fn observer(&self, cx: &TaskContext<'_>) -> Result<Box<dyn Observer>, StepError> {
        if let Some(a) = &self.active {
            return a.observer(&self.cfg, self.seed, cx.dir, cx.task, cx.step_dirs);
        }
        Ok(Box::new(SampleObserver {
            cfg: self.cfg.clone(),
            seed: self.seed,
            path: cx.dir.join(format!("candidates-{:05}.json", cx.task)),
            kept: StrataKeeper::new(),
            buf: String::new(),
        }))
    }

    fn stages(&self, _observed_tasks: usize) -> Vec<StageSpec> {
        vec![StageSpec {
            name: "select".into(),
            tasks: 1,
        }]
    }

    fn run_stage_task(&self, cx: &StageContext<'_>) -> Result<(), StepError> {
        if let Some(a) = &self.active {
            return a.run_stage(&self.cfg, cx);
        }
        // Merge every task's candidates by stratum name.
        let mut merged: BTreeMap<String, (u64, Vec<(u64, u64)>)> = BTreeMap::new();
        for t in 0..cx.observed_tasks {
            let p = cx.dir.join(format!("candidates-{t:05}.json"));
            let bytes = std::fs::read(&p).map_err(|e| StepError::io(&p, e))?;
            let file: CandidateFile = serde_json::from_slice(&bytes).map_err(|e| {
                StepError::Data(format!("{}: bad candidate file: {e}", p.display()))
            })?;
            for s in file.strata {
                let e = merged.entry(s.name).or_default();
                e.0 += s.count;
                e.1.extend(s.candidates);
            }
        }
        let counts: Vec<(String, u64)> = merged.iter().map(|(k, v)| (k.clone(), v.0)).collect();
        let quotas = allocate(&counts, self.cfg.size as u64, &self.cfg.allocation);
        let mut chosen: Vec<(u64, u64)> = Vec::new();
        let mut per_stratum: Vec<(u64, String, u64)> = Vec::new();
        let n_strata = merged.len();
        for ((name, (count, mut cands)), q) in merged.into_iter().zip(&quotas) {
            cands.sort_unstable();
            cands.dedup();
            chosen.extend(cands.iter().take(*q as usize));
            per_stratum.push((count, name.replace('\u{1f}', " | "), *q));
        }
        // The published table: the 200 largest strata (a url_domain stratification has many).
        per_stratum.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let per_stratum: serde_json::Map<String, serde_json::Value> = per_stratum
            .into_iter()
            .take(200)
            .map(|(c, n, q)| (n, serde_json::json!({"documents": c, "sampled": q})))
            .collect();
        // Holdout: the `holdout` fraction of the sample with the smallest split hashes.
        let split_seed = derive_seed(self.seed, "holdout");
        let n_hold = (self.cfg.holdout * chosen.len() as f64).round() as usize;
        let mut by_split: Vec<(u64, u64)> = chosen
            .iter()
            .map(|&(h, k)| (mix64(h, split_seed), k))
            .collect();
        by_split.sort_unstable();
        let mut sel: Vec<(u64, u8)> = by_split
            .iter()
            .enumerate()
            .map(|(i, &(_, k))| {
                (
                    k,
                    if i < n_hold {
                        SPLIT_HOLDOUT
                    } else {
                        SPLIT_TRAIN
                    },
                )
            })
            .collect();
        sel.sort_unstable();
        let mut bytes = Vec::with_capacity(sel.len() * 9);
        for (k, s) in &sel {
            bytes.extend_from_slice(&k.to_le_bytes());
            bytes.push(*s);
        }
        write_atomic(&cx.dir.join(SELECTION), &bytes).map_err(StepError::from)?;
        let stats = serde_json::json!({
            "sampled": sel.len(),
            "train": sel.len() - n_hold,
            "holdout": n_hold,
            "documents": counts.iter().map(|c| c.1).sum::<u64>(),
            "strata_count": n_strata,
            "strata": per_stratum,
        });
        write_atomic(
            &cx.dir.join(STATS),
            &serde_json::to_vec_pretty(&stats).expect("JSON"),
        )
        .map_err(StepError::from)?;
        // Counts go to the stats; the processor's per-batch `train`/`holdout` counters count rows.
        Ok(())
    }
}

/// Quotas per stratum (same order as `counts`), summing to `min(size, total)`.
pub fn allocate(counts: &[(String, u64)], size: u64, how: &str) -> Vec<u64> {
    let total: u64 = counts.iter().map(|c| c.1).sum();
    if size >= total {
        return counts.iter().map(|c| c.1).collect();
    }
    let mut q = vec![0u64; counts.len()];
    if how == "equal" {
        // Water-filling: equal shares, capped by stratum size, leftovers passed on.
        let mut left = size;
        loop {
            let open: Vec<usize> = (0..counts.len()).filter(|&i| q[i] < counts[i].1).collect();
            if left == 0 || open.is_empty() {
                break;
            }
            let share = (left / open.len() as u64).max(1);
            for &i in &open {
                if left == 0 {
                    break;
                }
                let add = share.min(counts[i].1 - q[i]).min(left);
                q[i] += add;
                left -= add;
            }
        }
        return q;
    }
    // Proportional by largest remainder; ties broken by stratum order (names sorted).
    let mut rems: Vec<(u128, usize)> = Vec::with_capacity(counts.len());
    let mut given = 0u64;
    for (i, (_, c)) in counts.iter().enumerate() {
        let exact = *c as u128 * size as u128;
        q[i] = (exact / total as u128) as u64;
        given += q[i];
        rems.push((exact % total as u128, i));
    }
    rems.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, i) in rems.into_iter().take((size - given) as usize) {
        q[i] += 1;
    }
    q
}

#[derive(Serialize, Deserialize)]
struct CandidateFile {
    /// Candidates are (selection hash, doc key), at most `size` smallest.
    strata: Vec<StratumCandidates<(u64, u64)>>,
}

/// What a task kept of one stratum (the uniform and the active sample's work files).
#[derive(Serialize, Deserialize)]
pub(crate) struct StratumCandidates<T> {
    pub(crate) name: String,
    /// Documents of the stratum the task saw.
    pub(crate) count: u64,
    /// The kept candidates, ascending.
    pub(crate) candidates: Vec<T>,
}

/// What one task of a sampling barrier keeps of every stratum: how many documents it saw and the
/// `cap` smallest candidates (a bounded max-heap), for uniform (hash) and active (margin) picks.
pub(crate) struct StrataKeeper<T: Ord> {
    index: HashMap<String, usize>,
    strata: Vec<(u64, BinaryHeap<T>)>,
}

impl<T: Ord + Clone> StrataKeeper<T> {
    pub(crate) fn new() -> Self {
        StrataKeeper {
            index: HashMap::new(),
            strata: Vec::new(),
        }
    }

    /// Counts a document of stratum `name` and keeps `cand` if it is among the `cap` smallest.
    pub(crate) fn offer(&mut self, name: &str, cap: usize, cand: T) {
        let idx = match self.index.get(name) {
            Some(&x) => x,
            None => {
                self.index.insert(name.to_string(), self.strata.len());
                self.strata.push((0, BinaryHeap::new()));
                self.strata.len() - 1
            }
        };
        let (count, heap) = &mut self.strata[idx];
        *count += 1;
        if heap.len() < cap {
            heap.push(cand);
        } else if heap.peek().is_some_and(|top| cand < *top) {
            heap.pop();
            heap.push(cand);
        }
    }

    /// Every stratum by name, its kept candidates in ascending order.
    pub(crate) fn into_sorted(self) -> Vec<StratumCandidates<T>> {
        let mut names: Vec<(String, usize)> = self.index.into_iter().collect();
        names.sort();
        let mut strata: Vec<Option<(u64, BinaryHeap<T>)>> =
            self.strata.into_iter().map(Some).collect();
        names
            .into_iter()
            .map(|(name, i)| {
                let (count, heap) = strata[i].take().expect("each stratum once");
                let mut candidates = heap.into_vec();
                candidates.sort_unstable();
                StratumCandidates {
                    name,
                    count,
                    candidates,
                }
            })
            .collect()
    }
}

struct SampleObserver {
    cfg: SampleConfig,
    seed: u64,
    path: std::path::PathBuf,
    kept: StrataKeeper<(u64, u64)>,
    buf: String,
}

/// The host of a URL, lowercased, without `www.` (empty when there is none).
pub fn url_domain(url: &str) -> &str {
    let rest = url.split_once("://").map(|x| x.1).unwrap_or(url);
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit_once('@').map(|x| x.1).unwrap_or(host);
    let host = host.split(':').next().unwrap_or("");
    host.strip_prefix("www.")
        .or_else(|| host.strip_prefix("WWW."))
        .unwrap_or(host)
}

/// Writes the stratum of row `i` (its strata values joined by U+001F) to `buf`.
pub(crate) fn write_stratum(
    cfg: &SampleConfig,
    batch: &DocBatch,
    i: usize,
    buf: &mut String,
) -> Result<(), StepError> {
    buf.clear();
    for (n, name) in cfg.strata.iter().enumerate() {
        if n > 0 {
            buf.push('\u{1f}');
        }
        match name.as_str() {
            "url_domain" => {
                let col = batch.column("url").ok_or_else(|| {
                    StepError::Data(
                        "sample: stratum `url_domain` needs a `url` column, which the input lacks"
                            .into(),
                    )
                })?;
                if let Some(s) = col.as_string_opt::<i32>() {
                    if !s.is_null(i) {
                        for ch in url_domain(s.value(i)).chars() {
                            buf.extend(ch.to_lowercase());
                        }
                    }
                } else if let Some(v) = crate::util::str_value(col.as_ref(), i) {
                    buf.push_str(&url_domain(&v).to_lowercase());
                }
            }
            "length_bucket" => {
                let len = batch.text(i).len();
                let b = cfg
                    .length_buckets
                    .iter()
                    .position(|&u| len < u)
                    .unwrap_or(cfg.length_buckets.len());
                match cfg.length_buckets.get(b) {
                    Some(u) => buf.push_str(&format!("<{u}")),
                    None => buf.push_str(&format!(
                        ">={}",
                        cfg.length_buckets.last().copied().unwrap_or(0)
                    )),
                }
            }
            col_name => {
                let col = batch.column(col_name).ok_or_else(|| {
                        StepError::Data(format!(
                            "sample: stratum `{col_name}` is neither a column of the input nor `url_domain` / `length_bucket`"
                        ))
                    })?;
                if let Some(s) = col.as_string_opt::<i32>() {
                    if !s.is_null(i) {
                        buf.push_str(s.value(i));
                    }
                } else if let Some(v) = crate::util::str_value(col.as_ref(), i) {
                    buf.push_str(&v);
                }
            }
        }
    }
    Ok(())
}

/// The selection hash of row `i`: its id (or text) under `seed`.
pub(crate) fn selection_hash(batch: &DocBatch, i: usize, seed: u64) -> u64 {
    if let Some(ids) = batch.ids() {
        if ids.is_null(i) {
            return h64(batch.text(i).as_bytes(), seed);
        }
        return match ids.data_type() {
            DataType::Utf8 => h64(ids.as_string::<i32>().value(i).as_bytes(), seed),
            DataType::LargeUtf8 => h64(ids.as_string::<i64>().value(i).as_bytes(), seed),
            _ => h64(batch.id_string(i).as_bytes(), seed),
        };
    }
    h64(batch.text(i).as_bytes(), seed)
}

impl Observer for SampleObserver {
    fn observe(&mut self, batch: &DocBatch, _counters: &mut Counters) -> Result<(), StepError> {
        let k = self.cfg.size;
        for i in 0..batch.len() {
            write_stratum(&self.cfg, batch, i, &mut self.buf)?;
            let cand = (selection_hash(batch, i, self.seed), batch.keys().value(i));
            self.kept.offer(&self.buf, k, cand);
        }
        Ok(())
    }

    fn finish(self: Box<Self>, _counters: &mut Counters) -> Result<(), StepError> {
        let strata = self.kept.into_sorted();
        let bytes = serde_json::to_vec(&CandidateFile { strata }).expect("JSON");
        write_atomic(&self.path, &bytes).map_err(StepError::from)
    }
}

struct SampleProcessor {
    sel: HashMap<u64, u8>,
    column: String,
}

impl Processor for SampleProcessor {
    fn process(&mut self, batch: &mut DocBatch, counters: &mut Counters) -> Result<(), StepError> {
        let mut b = StringBuilder::with_capacity(batch.len(), batch.len() * 4);
        let (mut tr, mut ho) = (0u64, 0u64);
        for &k in batch.keys().values().iter() {
            match self.sel.get(&k) {
                Some(&SPLIT_TRAIN) => {
                    tr += 1;
                    b.append_value("train")
                }
                Some(&SPLIT_HOLDOUT) => {
                    ho += 1;
                    b.append_value("holdout")
                }
                _ => b.append_null(),
            }
        }
        batch.set_column(&self.column, Arc::new(b.finish()));
        counters.add("train", tr as f64);
        counters.add("holdout", ho as f64);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{batch_of, run_barrier};

    #[test]
    fn allocation_rules() {
        let c = |v: &[u64]| {
            v.iter()
                .enumerate()
                .map(|(i, &n)| (format!("s{i}"), n))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            allocate(&c(&[50, 30, 20]), 10, "proportional"),
            vec![5, 3, 2]
        );
        assert_eq!(allocate(&c(&[1, 1, 1]), 2, "proportional"), vec![1, 1, 0]);
        assert_eq!(allocate(&c(&[100, 2, 100]), 10, "equal"), vec![4, 2, 4]);
        assert_eq!(allocate(&c(&[3, 4]), 100, "equal"), vec![3, 4]);
        assert_eq!(
            allocate(&c(&[7, 0, 5]), 6, "proportional")
                .iter()
                .sum::<u64>(),
            6
        );
    }

    #[test]
    fn url_domains() {
        assert_eq!(url_domain("https://www.example.com/a?b"), "example.com");
        assert_eq!(url_domain("http://user@host.org:8080/x"), "host.org");
        assert_eq!(url_domain("nope"), "nope");
    }

    fn docs(n: usize) -> Vec<(String, String, String)> {
        (0..n)
            .map(|i| {
                let lang = if i % 4 == 0 { "fr" } else { "en" };
                (
                    format!("doc-{i}"),
                    format!("text number {i} {}", "x".repeat(i % 50)),
                    lang.to_string(),
                )
            })
            .collect()
    }

    fn split_of(cfg: &SampleConfig, tasks: usize, n: usize) -> Vec<Option<String>> {
        let step = cfg.build(&crate::testutil::env(&[])).unwrap();
        let all = docs(n);
        let chunk = n.div_ceil(tasks);
        let batches: Vec<DocBatch> = all
            .chunks(chunk)
            .enumerate()
            .map(|(t, c)| batch_of(c, (t * chunk) as u64))
            .collect();
        let out = run_barrier(step.as_ref(), batches);
        out.iter()
            .flat_map(|b| {
                let s = b.column("split").unwrap().as_string::<i32>().clone();
                (0..s.len()).map(move |i| (!s.is_null(i)).then(|| s.value(i).to_string()))
            })
            .collect()
    }

    #[test]
    fn same_sample_for_any_task_count_and_strata_respected() {
        let cfg = SampleConfig {
            size: 40,
            strata: vec!["language".into()],
            allocation: "proportional".into(),
            holdout: 0.25,
            seed: Some(7),
            length_buckets: default_buckets(),
            column: default_split_column(),
            strategy: "random".into(),
            selection_column: "selection".into(),
            per_bucket: 1,
        };
        let one = split_of(&cfg, 1, 400);
        for tasks in [2, 3, 7] {
            assert_eq!(split_of(&cfg, tasks, 400), one, "tasks = {tasks}");
        }
        let sampled: Vec<usize> = (0..400).filter(|&i| one[i].is_some()).collect();
        assert_eq!(sampled.len(), 40);
        assert_eq!(
            one.iter()
                .filter(|s| s.as_deref() == Some("holdout"))
                .count(),
            10
        );
        // language fr is a quarter of the docs → a quarter of the sample.
        assert_eq!(sampled.iter().filter(|&&i| i % 4 == 0).count(), 10);
        // A different seed picks a different sample.
        let other = split_of(
            &SampleConfig {
                seed: Some(8),
                ..cfg.clone()
            },
            1,
            400,
        );
        assert_ne!(other, one);
    }

    #[test]
    fn validation_collects_every_problem() {
        let cfg = SampleConfig {
            size: 0,
            strata: vec!["a".into(), "a".into()],
            allocation: "equl".into(),
            holdout: 1.5,
            seed: None,
            length_buckets: vec![10, 5],
            column: default_split_column(),
            strategy: "random".into(),
            selection_column: "selection".into(),
            per_bucket: 1,
        };
        let mut p = Problems::new();
        cfg.validate(&mut p);
        let fields: Vec<&str> = p.items().iter().map(|x| x.field.as_str()).collect();
        assert_eq!(
            fields,
            vec!["size", "allocation", "holdout", "length_buckets", "strata"]
        );
        assert!(p.items()[1].hint.as_deref().unwrap().contains("equal"));
    }
}
