//! The `score` step: a calibrated quality score for every document, and the keep rule.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arrow::array::Float32Array;
use curate_core::step::Published;
use curate_core::{
    Barrier, BuildEnv, Counters, DocBatch, Observer, Problems, Processor, StageContext, StageSpec,
    Step, StepError, StepSpec, TaskContext,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::keep::{
    Buckets, Cut, Keep, ScoreWriter, bucket_bounds, exact_cut, score_of_rank_key, scores_path,
};
use crate::model::{Model, Scratch};
use crate::tokens::Tokenizer;
use crate::train::{model_path, nearest_train_step};

/// Score every document with the student the nearest preceding `train` step fitted, and keep
/// by threshold or top fraction.
///
/// Adds a nullable Float32 column (default `quality_score`) holding the *calibrated* score, on
/// the teacher's scale (0–5 for the Claude rubric, probability of a positive for the 0/1
/// `reference` teacher). The calibration is strictly increasing, so the stored score orders
/// documents exactly as the model does (no flat steps). Scoring reads each document once (its
/// words and its document properties) and allocates nothing per document. Scores are stored, so
/// the keep rule can be changed later without the model (the `quality_threshold` step, or
/// `curate rethreshold`).
///
/// `keep = { threshold = 3.0 }` drops documents whose score is below 3.0;
/// `keep = { top_fraction = 0.1 }` keeps exactly ⌈0.1 · n⌉ documents, the best by the stored
/// score, ties broken by document key — the very rule `quality_threshold` applies to the stored
/// column, so re-cutting the snapshot's scores reproduces the kept set. A top fraction needs a
/// global view: the step then becomes a barrier whose one-task stage finds the cut. Without
/// `keep` every document is kept and only scored. Dropped documents are recorded as
/// `below_quality_threshold`. The manifest's stats name the column the cut was made on and the
/// lowest kept score.
///
/// Counters: `scored`, `scored_bytes`, `score_sum`, `below_quality_threshold`, and the histogram
/// of every scored document's calibrated score before the cut, `score_hist_00` … `score_hist_09`
/// ([`SCORE_HIST_BINS`] equal bins over `[0, scale]`, [`score_hist_bin`]); the report draws it
/// beside the kept documents' scores, since the dropped documents' scores are not stored.
///
/// ```toml
/// [[steps]]
/// type = "score"
/// keep = { top_fraction = 0.1 }
/// ```
///
/// **Buckets for mixing.** `buckets = 5` adds an Int32 column (`bucket_column`, default
/// `quality_bucket`) numbering equal-count buckets of the score over the whole corpus, 0 for the
/// lowest scores to 4 for the highest (exact: the best j buckets hold ⌈j · n / 5⌉ documents, ties
/// broken by document key; a barrier, like `top_fraction`); `bucket_edges = [1.5, 2.5, 3.5]`
/// numbers fixed score ranges instead (bucket = how many edges the score reaches; no barrier).
/// `keep = { buckets = [3, 4] }` keeps the documents of those buckets. Counters
/// `bucket_docs_NN` and `bucket_tokens_NN` (tokens of `tokenizer`, default `cl100k_base`;
/// `"none"` skips counting) give every bucket's share of documents and tokens before the keep
/// rule, for mixing by token share; the report draws them.
///
/// **Scoring with a frozen model.** `model = "runs/labelled-2026-11"` scores with the model an
/// earlier run trained (a curate snapshot directory: its `model/model.bin`, whose hash must be
/// the one that snapshot's manifest lists) or `model = "quality.bin"` (a model file); no `train`
/// step is then needed. Train once on a few thousand teacher labels, then score every crawl with
/// the same bytes: the model is copied into this snapshot (`model/model.bin`, with its header in
/// `model/model.json`) and its hash and source are in the manifest's stats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScoreConfig {
    /// Which documents to keep: `{ threshold = X }` or `{ top_fraction = F }`. Absent: keep
    /// every document.
    #[serde(default)]
    pub keep: Option<Keep>,
    /// Name of the score column to add.
    #[serde(default = "default_column")]
    pub column: String,
    /// A frozen model to score with instead of the one a `train` step of this run fits: a curate
    /// snapshot directory or a `model.bin` file, local or `s3://` (relative paths from the
    /// working directory).
    #[serde(default)]
    pub model: Option<String>,
    /// Number of equal-count quality buckets over the whole corpus (2–100); absent: none.
    #[serde(default)]
    pub buckets: Option<u32>,
    /// Fixed bucket edges on the score scale, strictly increasing (bucket = how many edges the
    /// score reaches); instead of `buckets`.
    #[serde(default)]
    pub bucket_edges: Option<Vec<f64>>,
    /// Name of the bucket column (Int32) added with `buckets` or `bucket_edges`.
    #[serde(default = "default_bucket_column")]
    pub bucket_column: String,
    /// Tokenizer counting each bucket's tokens (`cl100k_base`, `o200k_base`, or `none`); only
    /// used with buckets.
    #[serde(default)]
    pub tokenizer: Tokenizer,
}

fn default_bucket_column() -> String {
    "quality_bucket".into()
}

/// Most buckets `buckets` or `bucket_edges` may define.
pub const MAX_BUCKETS: u32 = 100;

impl ScoreConfig {
    /// Number of buckets the config defines (0: no buckets).
    fn bucket_count(&self) -> u32 {
        match (&self.buckets, &self.bucket_edges) {
            (Some(n), _) => *n,
            (None, Some(e)) => e.len() as u32 + 1,
            (None, None) => 0,
        }
    }
}

pub(crate) fn default_column() -> String {
    "quality_score".into()
}

impl StepSpec for ScoreConfig {
    const TYPE: &'static str = "score";

    fn requires(&self) -> &'static [&'static str] {
        if self.model.is_some() {
            &[]
        } else {
            &["train"]
        }
    }

    fn validate(&self, p: &mut Problems) {
        match self.model.as_deref() {
            Some("") => p.push(
                "model",
                "is empty; give a curate snapshot directory or a model.bin file",
            ),
            Some(m) => curate_core::resource::check_scheme(p, "model", m),
            None => {}
        }
        if let Some(k) = &self.keep {
            k.validate(p);
        }
        match (&self.buckets, &self.bucket_edges) {
            (Some(_), Some(_)) => p.push(
                "bucket_edges",
                "is set together with `buckets`; give equal-count `buckets` or fixed `bucket_edges`, not both",
            ),
            (Some(n), None) => p.range("buckets", *n as f64, 2.0, MAX_BUCKETS as f64),
            (None, Some(e)) => {
                if e.is_empty() || e.len() >= MAX_BUCKETS as usize {
                    p.push(
                        "bucket_edges",
                        format!("needs 1 to {} edges, has {}", MAX_BUCKETS - 1, e.len()),
                    );
                }
                if e.iter().any(|x| !x.is_finite()) || e.windows(2).any(|w| w[0] >= w[1]) {
                    p.push(
                        "bucket_edges",
                        format!("{e:?} must be finite and strictly increasing"),
                    );
                }
            }
            (None, None) => {}
        }
        if self.bucket_count() > 0 && self.bucket_column.is_empty() {
            p.push("bucket_column", "must not be empty");
        }
        if let Some(Keep::Buckets(set)) = &self.keep {
            let n = self.bucket_count();
            if n == 0 {
                p.push_hint(
                    "keep.buckets",
                    "selects buckets, but the step defines none",
                    "add `buckets = N` or `bucket_edges = [...]` to the step",
                );
            } else if set.max().is_some_and(|m| m >= n) {
                p.push(
                    "keep.buckets",
                    format!(
                        "names bucket {}, but there are only buckets 0–{}",
                        set.max().unwrap_or(0),
                        n - 1
                    ),
                );
            }
        }
        if self.column.is_empty() {
            p.push("column", "must not be empty");
        }
    }

    fn build(&self, env: &BuildEnv) -> Result<Box<dyn Step>, StepError> {
        if let Some(m) = &self.model {
            if let Some(t) = nearest_train_step(&env.previous) {
                return Err(StepError::Other(format!(
                    "steps[{}] (score): `model` and the `train` step steps[{t}] would both be the snapshot's model/model.bin; remove `model` to score with the model this run trains, or the `train` step to score with the frozen one",
                    env.index
                )));
            }
            let frozen = Frozen::open(m, &env.config_dir)?;
            return Ok(Box::new(Score {
                cfg: self.clone(),
                train: usize::MAX,
                cache: Mutex::new(Some((frozen.path.clone(), frozen.model.clone()))),
                frozen: Some(frozen),
            }));
        }
        let train = nearest_train_step(&env.previous).ok_or_else(|| {
            StepError::Other(format!(
                "steps[{}] (score): no `train` step before it; add `[[steps]] type = \"train\"` earlier in the pipeline",
                env.index
            ))
        })?;
        Ok(Box::new(Score {
            cfg: self.clone(),
            train,
            cache: Mutex::new(None),
            frozen: None,
        }))
    }
}

/// The built `score` step.
pub struct Score {
    cfg: ScoreConfig,
    train: usize,
    cache: Mutex<Option<(PathBuf, Arc<Model>)>>,
    frozen: Option<Frozen>,
}

/// A model trained by an earlier run, loaded once when the step is built.
pub struct Frozen {
    /// The model file read.
    pub path: PathBuf,
    /// `model` as the config gives it.
    pub source: String,
    /// The model.
    pub model: Arc<Model>,
    /// xxh3-128 of the model file.
    pub hash: String,
    /// The model's bytes when it was read from object storage (published from a local copy).
    bytes: Option<Vec<u8>>,
}

impl Frozen {
    /// Loads `model`: a snapshot (a local directory, or an object-store prefix not ending in
    /// `.bin`) or a model file (relative paths from `base`). A snapshot's model must hash to
    /// what its manifest lists: a model swapped after the run is refused.
    pub fn open(model: &str, base: &Path) -> Result<Frozen, StepError> {
        use curate_core::resource;
        let err = |m: String| StepError::Other(format!("score: model = \"{model}\": {m}"));
        let is_snapshot = if resource::is_remote(model) {
            !model.ends_with(".bin")
        } else {
            resource::local_path(model, base).is_dir()
        };
        // the snapshot's `model/` directory stands for the snapshot
        let trimmed = model.trim_end_matches('/');
        let root = match trimmed.strip_suffix("model") {
            Some("") => ".",
            Some(parent) if parent.ends_with('/') => parent.trim_end_matches('/'),
            _ => trimmed,
        };
        let (file, listed) = if is_snapshot {
            let model = root;
            let manifest = resource::join(model, "manifest.json");
            let bytes = resource::read(&manifest, base)
                .map_err(err)?
                .ok_or_else(|| {
                    err(format!(
                        "{manifest} does not exist: not a finished curate snapshot"
                    ))
                })?;
            let m: serde_json::Value =
                serde_json::from_slice(&bytes).map_err(|e| err(format!("{manifest}: {e}")))?;
            let listed = m["artifacts"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|a| a["path"] == MODEL_ARTEFACT)
                .and_then(|a| a["xxh3_128"].as_str().map(str::to_owned))
                .ok_or_else(|| {
                    err(format!(
                        "the snapshot has no {MODEL_ARTEFACT} (it ran no `train` step)"
                    ))
                })?;
            (resource::join(root, MODEL_ARTEFACT), Some(listed))
        } else {
            (model.to_string(), None)
        };
        let bytes = resource::read(&file, base)
            .map_err(err)?
            .ok_or_else(|| err(format!("{file} does not exist")))?;
        let hash = crate::model::content_hash(&bytes);
        if let Some(listed) = listed
            && listed != hash
        {
            return Err(err(format!(
                "{file} hashes to {hash} but its snapshot's manifest lists {listed}: the model changed after that run"
            )));
        }
        let path = if resource::is_remote(&file) {
            PathBuf::from(&file)
        } else {
            resource::local_path(&file, base)
        };
        let model_ = Model::from_bytes(&path, &bytes)?;
        // a remote model is published from a local copy in the step's work directory
        Ok(Frozen {
            path,
            source: model.to_string(),
            model: Arc::new(model_),
            hash,
            bytes: resource::is_remote(&file).then_some(bytes),
        })
    }
}

/// Where a snapshot holds the model its `train` step fitted.
const MODEL_ARTEFACT: &str = curate_snapshot::artifact::MODEL;

const CUT_FILE: &str = "cut.json";

impl Score {
    fn model(&self, step_dirs: &[PathBuf]) -> Result<Arc<Model>, StepError> {
        if let Some(f) = &self.frozen {
            return Ok(f.model.clone());
        }
        let dir = step_dirs.get(self.train).ok_or_else(|| {
            StepError::Other(format!("score: no work directory for step {}", self.train))
        })?;
        let path = model_path(dir);
        let mut cache = self
            .cache
            .lock()
            .map_err(|_| StepError::Other("score: model cache poisoned".into()))?;
        if let Some((p, m)) = cache.as_ref()
            && *p == path
        {
            return Ok(m.clone());
        }
        let m = Arc::new(Model::load(&path)?);
        *cache = Some((path, m.clone()));
        Ok(m)
    }
}

pub(crate) fn read_cut(dir: &Path) -> Result<Cut, StepError> {
    let p = dir.join(CUT_FILE);
    let b = std::fs::read(&p).map_err(|e| StepError::io(&p, e))?;
    serde_json::from_slice(&b).map_err(|e| StepError::Data(format!("{}: {e}", p.display())))
}

pub(crate) fn write_cut(dir: &Path, tasks: usize, fraction: f64) -> Result<Cut, StepError> {
    let paths: Vec<PathBuf> = (0..tasks).map(|t| scores_path(dir, t)).collect();
    let cut = exact_cut(&paths, fraction)?;
    crate::write_atomic(
        &dir.join(CUT_FILE),
        &serde_json::to_vec(&cut).expect("serialises"),
    )?;
    Ok(cut)
}

/// The decision a processor applies.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Rule {
    All,
    Threshold(f32),
    Cut(Cut),
    Buckets(crate::keep::BucketSet),
}

/// How a processor numbers buckets.
#[derive(Debug, Clone)]
enum Bucketing {
    None,
    Edges(Vec<f64>),
    Ranks(Buckets),
}

impl Bucketing {
    #[inline]
    fn of(&self, score: f32, key: u64) -> Option<u32> {
        match self {
            Bucketing::None => None,
            Bucketing::Edges(e) => {
                Some(e.iter().filter(|x| f64::from(score) >= **x).count() as u32)
            }
            Bucketing::Ranks(b) => Some(b.of(score, key)),
        }
    }
}

const BUCKETS_FILE: &str = "buckets.json";

fn read_buckets(dir: &Path) -> Result<Buckets, StepError> {
    let p = dir.join(BUCKETS_FILE);
    let b = std::fs::read(&p).map_err(|e| StepError::io(&p, e))?;
    serde_json::from_slice(&b).map_err(|e| StepError::Data(format!("{}: {e}", p.display())))
}

/// The name of the `bucket_docs_*` / `bucket_tokens_*` counter of bucket `b`.
pub fn bucket_counter(what: &str, b: u32) -> String {
    format!("bucket_{what}_{b:02}")
}

impl Step for Score {
    fn kind(&self) -> &'static str {
        "score"
    }

    fn columns(&self, c: &mut curate_core::columns::Columns<'_>) {
        c.add(
            Some("column"),
            &self.cfg.column,
            arrow::datatypes::DataType::Float32,
        );
        let scale = match &self.frozen {
            Some(f) => Some((0.0, f64::from(f.model.header.scale_max))),
            None => c.scale(crate::train::MODEL_SCALE),
        };
        if self.cfg.bucket_count() > 0 {
            c.add(
                Some("bucket_column"),
                &self.cfg.bucket_column,
                arrow::datatypes::DataType::Int32,
            );
        }
        if let Some((lo, hi)) = scale {
            if let Some(Keep::Threshold(t)) = self.cfg.keep
                && !(lo..=hi).contains(&t)
            {
                c.problem(
                    "keep",
                    format!(
                        "threshold {t} is outside the model's score scale {lo}–{hi} (the teacher's), so it would keep {} document",
                        if t > hi { "no" } else { "every" }
                    ),
                );
            }
            c.set_scale(&self.cfg.column, lo, hi);
        }
    }

    fn reasons(&self) -> Vec<String> {
        vec!["below_quality_threshold".into()]
    }

    fn processor(&self, cx: &TaskContext<'_>) -> Result<Box<dyn Processor>, StepError> {
        let rule = match self.cfg.keep {
            None => Rule::All,
            Some(Keep::Threshold(t)) => Rule::Threshold(t as f32),
            Some(Keep::TopFraction(_)) => Rule::Cut(read_cut(cx.dir)?),
            Some(Keep::Buckets(b)) => Rule::Buckets(b),
        };
        let bucketing = match (&self.cfg.buckets, &self.cfg.bucket_edges) {
            (Some(_), _) => Bucketing::Ranks(read_buckets(cx.dir)?),
            (None, Some(e)) => Bucketing::Edges(e.clone()),
            (None, None) => Bucketing::None,
        };
        let model = self.model(cx.step_dirs)?;
        Ok(Box::new(ScoreProcessor {
            scratch: model.scratch(),
            model,
            rule,
            column: self.cfg.column.clone(),
            buf: Vec::new(),
            bucket_column: self.cfg.bucket_column.clone(),
            bucket_tally: vec![(0, 0); self.cfg.bucket_count() as usize],
            bucketing,
            tokenizer: self.cfg.tokenizer,
            bucket_buf: Vec::new(),
        }))
    }

    fn barrier(&self) -> Option<&dyn Barrier> {
        (matches!(self.cfg.keep, Some(Keep::TopFraction(_))) || self.cfg.buckets.is_some())
            .then_some(self as &dyn Barrier)
    }

    fn publish(&self, dir: &Path) -> Result<Published, StepError> {
        let keep = match self.cfg.keep {
            None => serde_json::json!("all"),
            Some(Keep::Threshold(t)) => serde_json::json!({"threshold": t}),
            Some(Keep::Buckets(b)) => serde_json::json!({"buckets": Vec::<u32>::from(b)}),
            Some(Keep::TopFraction(f)) => {
                let cut = read_cut(dir)?;
                serde_json::json!({
                    "top_fraction": f,
                    "documents": cut.n,
                    "kept": cut.k,
                    "min_kept_score": cut.last.map(|(rk, _)| score_of_rank_key(rk)),
                    "ties": "broken by document key",
                })
            }
        };
        let mut stats = serde_json::json!({
            "column": self.cfg.column,
            "cut_column": self.cfg.column,
            "score": "calibrated (strictly increasing in the model's linear score)",
            "keep": keep,
        });
        if self.cfg.bucket_count() > 0 {
            stats["buckets"] = match (&self.cfg.buckets, &self.cfg.bucket_edges) {
                (Some(n), _) => {
                    let b = read_buckets(dir)?;
                    serde_json::json!({
                        "column": self.cfg.bucket_column,
                        "kind": "equal_count",
                        "count": n,
                        "documents": b.n,
                        "lowest_score_of_best": b.lower_scores(),
                        "tokenizer": self.cfg.tokenizer.name(),
                    })
                }
                (None, Some(e)) => serde_json::json!({
                    "column": self.cfg.bucket_column,
                    "kind": "edges",
                    "count": e.len() + 1,
                    "edges": e,
                    "tokenizer": self.cfg.tokenizer.name(),
                }),
                (None, None) => serde_json::Value::Null,
            };
        }
        let mut files = Vec::new();
        if let Some(f) = &self.frozen {
            // the frozen model travels with the snapshot it scored
            let header = dir.join("model.json");
            crate::write_atomic(
                &header,
                &serde_json::to_vec_pretty(&f.model.header).expect("serialises"),
            )?;
            let model_file = match &f.bytes {
                Some(b) => {
                    let p = dir.join("model.bin");
                    crate::write_atomic(&p, b)?;
                    p
                }
                None => f.path.clone(),
            };
            files.push((MODEL_ARTEFACT.to_string(), model_file));
            files.push((curate_snapshot::artifact::MODEL_HEADER.to_string(), header));
            stats["model"] = serde_json::json!({
                "source": f.source,
                "model_hash": f.hash,
                "trained_in_this_run": false,
                "format_version": crate::model::FORMAT_VERSION,
                "metrics": f.model.header.metrics,
            });
        }
        Ok(Published {
            files,
            stats: Some(stats),
        })
    }
}

impl Barrier for Score {
    fn observer(&self, cx: &TaskContext<'_>) -> Result<Box<dyn Observer>, StepError> {
        let model = self.model(cx.step_dirs)?;
        Ok(Box::new(ScoreObserver {
            scratch: model.scratch(),
            model,
            out: ScoreWriter::create(scores_path(cx.dir, cx.task))?,
        }))
    }

    fn stages(&self, _observed_tasks: usize) -> Vec<StageSpec> {
        vec![StageSpec {
            name: "cut".into(),
            tasks: 1,
        }]
    }

    fn run_stage_task(&self, cx: &StageContext<'_>) -> Result<(), StepError> {
        if let Some(Keep::TopFraction(f)) = self.cfg.keep {
            let cut = write_cut(cx.dir, cx.observed_tasks, f)?;
            if let Ok(mut c) = cx.counters.lock() {
                c.add("cut_documents", cut.n as f64);
                c.add("cut_kept", cut.k as f64);
            }
        }
        if let Some(n) = self.cfg.buckets {
            let paths: Vec<PathBuf> = (0..cx.observed_tasks)
                .map(|t| scores_path(cx.dir, t))
                .collect();
            let b = bucket_bounds(&paths, n)?;
            crate::write_atomic(
                &cx.dir.join(BUCKETS_FILE),
                &serde_json::to_vec(&b).expect("serialises"),
            )?;
        }
        Ok(())
    }
}

struct ScoreObserver {
    model: Arc<Model>,
    scratch: Scratch,
    out: ScoreWriter,
}

impl Observer for ScoreObserver {
    fn observe(&mut self, batch: &DocBatch, _c: &mut Counters) -> Result<(), StepError> {
        for i in 0..batch.len() {
            let score = self
                .model
                .score(batch.text(i).as_bytes(), &mut self.scratch);
            self.out.write(score, batch.keys().value(i))?;
        }
        Ok(())
    }

    fn finish(self: Box<Self>, _c: &mut Counters) -> Result<(), StepError> {
        self.out.finish()?;
        Ok(())
    }
}

/// Bins of the `score_hist_*` counters (the report's score histogram uses as many).
pub const SCORE_HIST_BINS: usize = 10;

/// The `score_hist_*` bin of score `x` on the scale `[lo, hi]`: [`SCORE_HIST_BINS`] equal bins,
/// values outside clamped to the first or last (the report bins the kept scores the same way).
pub fn score_hist_bin(x: f64, lo: f64, hi: f64) -> usize {
    let width = (hi - lo) / SCORE_HIST_BINS as f64;
    if width > 0.0 {
        (((x - lo) / width).floor().max(0.0) as usize).min(SCORE_HIST_BINS - 1)
    } else {
        0
    }
}

/// The name of `score_hist_*` counter `k`.
pub fn score_hist_counter(k: usize) -> String {
    format!("score_hist_{k:02}")
}

struct ScoreProcessor {
    model: Arc<Model>,
    scratch: Scratch,
    rule: Rule,
    column: String,
    buf: Vec<f32>,
    bucketing: Bucketing,
    bucket_column: String,
    /// (documents, tokens) per bucket, this task so far.
    bucket_tally: Vec<(u64, u64)>,
    tokenizer: Tokenizer,
    bucket_buf: Vec<i32>,
}

impl Processor for ScoreProcessor {
    fn process(&mut self, batch: &mut DocBatch, counters: &mut Counters) -> Result<(), StepError> {
        let n = batch.len();
        let mut scores = std::mem::take(&mut self.buf);
        scores.clear();
        scores.reserve(n);
        let mut bytes = 0usize;
        let mut dropped = 0usize;
        let mut buckets = std::mem::take(&mut self.bucket_buf);
        buckets.clear();
        for i in 0..n {
            let text = batch.text(i).as_bytes();
            bytes += text.len();
            let cal = self.model.score(text, &mut self.scratch);
            scores.push(cal);
            let key = batch.keys().value(i);
            let bucket = self.bucketing.of(cal, key);
            if let Some(b) = bucket {
                buckets.push(b as i32);
                let t = &mut self.bucket_tally[b as usize];
                t.0 += 1;
                t.1 += u64::from(self.tokenizer.count(batch.text(i)));
            }
            let keep = match self.rule {
                Rule::All => true,
                Rule::Threshold(t) => cal >= t,
                Rule::Cut(c) => c.keeps(cal, key),
                Rule::Buckets(set) => bucket.is_some_and(|b| set.contains(b)),
            };
            if !keep {
                batch.drop_row(i, 0);
                dropped += 1;
            }
        }
        counters.add("scored", n as f64);
        counters.add("scored_bytes", bytes as f64);
        counters.add("score_sum", scores.iter().map(|s| *s as f64).sum());
        counters.add("below_quality_threshold", dropped as f64);
        let scale = f64::from(self.model.header.scale_max);
        let mut hist = [0u64; SCORE_HIST_BINS];
        for &x in scores.iter().filter(|x| !x.is_nan()) {
            hist[score_hist_bin(f64::from(x), 0.0, scale)] += 1;
        }
        for (k, &c) in hist.iter().enumerate() {
            counters.add(&score_hist_counter(k), c as f64);
        }
        batch.set_column(
            &self.column,
            std::sync::Arc::new(Float32Array::from(scores)),
        );
        if !matches!(self.bucketing, Bucketing::None) {
            let col = arrow::array::Int32Array::from_iter_values(buckets.iter().copied());
            batch.set_column(&self.bucket_column, std::sync::Arc::new(col));
        }
        self.bucket_buf = buckets;
        Ok(())
    }

    fn finish(&mut self, counters: &mut Counters) -> Result<(), StepError> {
        for (b, (docs, tokens)) in self.bucket_tally.iter().enumerate() {
            counters.add(&bucket_counter("docs", b as u32), *docs as f64);
            counters.add(&bucket_counter("tokens", b as u32), *tokens as f64);
        }
        Ok(())
    }
}
