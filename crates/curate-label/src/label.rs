//! `label`: scores the documents `sample` selected with a teacher and adds `teacher_score`.
//!
//! The step is a barrier. Before it, its observer copies the sampled rows (key, id, split, text)
//! to `observed-NNNNN.parquet` in the step's work dir. Its one global stage runs the annotator
//! and writes `labels.parquet` (every label, with text: the file the `train` step reads; for
//! the `reference` annotator it also holds the positive reference documents, with a null
//! `key`), `labels-snapshot.parquet` (the same without text, published under `labels/`) and
//! `stats.json`. After it, its processor adds the nullable Float32 `teacher_score` column.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Float32Array, Float32Builder, RecordBatch, StringArray, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Float32Type, Schema, UInt64Type};
use curate_core::hash::{derive_seed, h64, h128, hex128, unit};
use curate_core::step::Published;
use curate_core::{
    Barrier, BuildEnv, Counters, DocBatch, Observer, Problems, Processor, StageContext, StageSpec,
    Step, StepError, StepSpec, TaskContext,
};
use curate_snapshot::artifact;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::LabelError;
use crate::claude::{self, ClaudeSettings, Ledger};
use crate::client::{ApiKey, ClientConfig};
use crate::cost::{Budget, Prices};
use crate::rubric::Rubric;
use crate::store::{self, Store};
use crate::util::{
    f64_value, read_jsonl, read_parquet, resolve, str_value, write_atomic, write_parquet,
};

/// Labels the documents a `sample` step selected with a teacher, adding `teacher_score`.
///
/// Every document flows on: rows that `sample` did not select, and rows the teacher could not
/// label (refusal, budget reached), get a null `teacher_score`. The labels the snapshot used are
/// published under `labels/` (`labels.parquet` with `id, split, score, reason, model,
/// input_tokens, output_tokens, cost_usd`, and `stats.json`).
///
/// Annotators: `claude` (Anthropic API; needs `ANTHROPIC_API_KEY`), `file` (import labels from
/// parquet/JSONL) and `reference` (DCLM-style: positives from a reference corpus, negatives the
/// sample; offline).
///
/// Example:
///
/// ```toml
/// [[steps]]
/// type = "label"
/// annotator = "claude"
/// model = "claude-haiku-5-5"
/// mode = "batch"
/// max_usd = 5.0
/// ```
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LabelConfig {
    /// The teacher: `claude`, `file` or `reference`.
    pub annotator: String,
    /// Name of the column the teacher's score is written to (rename it when the input already
    /// has a `teacher_score` column you want to keep; `train` reads it through its
    /// `label_column`).
    #[serde(default = "d_column")]
    pub column: String,
    /// The column that marks the sampled documents (the `sample` step's `column`).
    #[serde(default = "d_split_column")]
    pub split_column: String,

    /// [claude] Model id.
    #[serde(default = "d_model")]
    pub model: String,
    /// [claude] `batch` (Message Batches API, half price, results within 24 h) or `online`
    /// (Messages API, bounded concurrency).
    #[serde(default = "d_mode")]
    pub mode: String,
    /// [claude] API base URL.
    #[serde(default = "d_base_url")]
    pub base_url: String,
    /// [claude] `anthropic-version` header.
    #[serde(default = "d_api_version")]
    pub api_version: String,
    /// [claude] `max_tokens` of each answer (bills up front against the output rate limit;
    /// keep it tight).
    #[serde(default = "d_max_tokens")]
    pub max_tokens: u32,
    /// [claude] `output_config.effort` (`low`, `medium`, `high`, `xhigh`, `max`), or `none` to
    /// leave it out.
    #[serde(default = "d_effort")]
    pub effort: String,
    /// [claude] Rubric prompt file (default: the built-in 0–5 educational-value rubric,
    /// `configs/rubrics/edu-0-5.md`).
    #[serde(default)]
    pub rubric: Option<String>,
    /// [claude] JSON schema file of the answer (default: `{score: 0..5, reason}`). Must be an
    /// object with `additionalProperties: false`, a numeric `score` and a string `reason`.
    #[serde(default)]
    pub schema: Option<String>,
    /// [claude] Documents are truncated to about this many tokens.
    #[serde(default = "d_max_doc_tokens")]
    pub max_doc_tokens: usize,
    /// [claude] Bytes per token used for truncation and estimates (calibrate with
    /// `count_tokens`; Haiku 5.5's tokenizer gives about 3 on English web text).
    #[serde(default = "d_bytes_per_token")]
    pub bytes_per_token: f64,
    /// [claude] Prompt-cache TTL of the rubric: `5m` or `1h` (default: `1h` in batch mode,
    /// `5m` online).
    #[serde(default)]
    pub cache_ttl: Option<String>,
    /// [claude] Hard budget in USD for this run, never exceeded (checked against a worst case
    /// before each request or batch).
    #[serde(default)]
    pub max_usd: Option<f64>,
    /// [claude] Hard budget in total input tokens (uncached + cache writes + cache reads).
    #[serde(default)]
    pub max_input_tokens: Option<u64>,
    /// [claude] Prices in USD per million tokens (default: the built-in table for known
    /// models).
    #[serde(default)]
    pub prices: Option<Prices>,
    /// Label store directory, shared across runs and snapshots (default:
    /// `$XDG_CACHE_HOME/curate/labels` or `~/.cache/curate/labels`).
    #[serde(default)]
    pub store: Option<String>,
    /// [claude] Requests in flight at once (online mode).
    #[serde(default = "d_concurrency")]
    pub concurrency: usize,
    /// [claude] Retries of a failed call (408, 409, 429, 5xx, 529, connection errors).
    #[serde(default = "d_max_retries")]
    pub max_retries: u32,
    /// [claude] First retry delay in seconds (doubles per retry, with jitter), unless the
    /// server sends `retry-after`.
    #[serde(default = "d_initial_retry")]
    pub initial_retry_delay_s: f64,
    /// [claude] Retry delay cap in seconds.
    #[serde(default = "d_max_retry")]
    pub max_retry_delay_s: f64,
    /// [claude] Timeout of one HTTP call in seconds.
    #[serde(default = "d_timeout")]
    pub timeout_s: f64,
    /// [claude] First batch poll interval in seconds (grows by half each poll).
    #[serde(default = "d_poll")]
    pub poll_interval_s: f64,
    /// [claude] Batch poll interval cap in seconds.
    #[serde(default = "d_poll_max")]
    pub poll_max_interval_s: f64,
    /// [claude] Stop waiting for batches after this many seconds (the batch stays pending in
    /// the store; re-running resumes it). Default 25 hours.
    #[serde(default = "d_batch_wait")]
    pub max_batch_wait_s: f64,
    /// [claude] Requests per batch (the API allows 100,000 or 256 MB).
    #[serde(default = "d_batch_requests")]
    pub max_batch_requests: usize,
    /// [claude] Times errored/expired batch entries are re-submitted.
    #[serde(default = "d_batch_rounds")]
    pub max_batch_rounds: u32,

    /// [file] Parquet or JSONL file of labels. An id (or text) may occur more than once only
    /// with the same score and reason; two different labels for one document are an error that
    /// names both rows.
    #[serde(default)]
    pub path: Option<String>,
    /// [file] Match labels to documents by `id` or by `text`.
    #[serde(default = "d_match_on")]
    pub match_on: String,
    /// [file] Column (or JSON field) holding the score.
    #[serde(default = "d_score_column")]
    pub score_column: String,

    /// [reference] Parquet or JSONL file of positive (reference-quality) documents.
    #[serde(default)]
    pub reference: Option<String>,
    /// [reference] Text column (or JSON field) of the reference file.
    #[serde(default = "d_text_column")]
    pub reference_text_column: String,
    /// [reference] Fraction of the reference documents marked `holdout`.
    #[serde(default = "d_ref_holdout")]
    pub reference_holdout: f64,
    /// [reference] Use at most this many reference documents (default: all).
    #[serde(default)]
    pub max_reference_docs: Option<usize>,
}

fn d_column() -> String {
    "teacher_score".into()
}
fn d_split_column() -> String {
    "split".into()
}
fn d_model() -> String {
    "claude-haiku-5-5".into()
}
fn d_mode() -> String {
    "batch".into()
}
fn d_base_url() -> String {
    "https://api.anthropic.com".into()
}
fn d_api_version() -> String {
    "2026-10-21".into()
}
fn d_max_tokens() -> u32 {
    256
}
fn d_effort() -> String {
    "low".into()
}
fn d_max_doc_tokens() -> usize {
    2048
}
fn d_bytes_per_token() -> f64 {
    3.0
}
fn d_concurrency() -> usize {
    8
}
fn d_max_retries() -> u32 {
    8
}
fn d_initial_retry() -> f64 {
    0.5
}
fn d_max_retry() -> f64 {
    60.0
}
fn d_timeout() -> f64 {
    600.0
}
fn d_poll() -> f64 {
    30.0
}
fn d_poll_max() -> f64 {
    60.0
}
fn d_batch_wait() -> f64 {
    25.0 * 3600.0
}
fn d_batch_requests() -> usize {
    10_000
}
fn d_batch_rounds() -> u32 {
    5
}
fn d_match_on() -> String {
    "id".into()
}
fn d_score_column() -> String {
    "score".into()
}
fn d_text_column() -> String {
    "text".into()
}
fn d_ref_holdout() -> f64 {
    0.2
}

impl LabelConfig {
    /// A config with every default and the given annotator.
    pub fn new(annotator: &str) -> LabelConfig {
        serde_json::from_value(serde_json::json!({ "annotator": annotator })).expect("defaults")
    }

    /// The resolved claude settings (prices from the table when not given).
    pub fn claude_settings(&self) -> Result<ClaudeSettings, LabelError> {
        let prices = match (&self.prices, Prices::default_for(&self.model)) {
            (Some(p), _) => p.clone(),
            (None, Some(p)) => p,
            (None, None) => {
                return Err(LabelError::Config(format!(
                    "no built-in prices for model \"{}\"; give `prices = {{ input = …, output = …, cache_write_5m = …, cache_write_1h = …, cache_read = … }}`",
                    self.model
                )));
            }
        };
        let batch = self.mode == "batch";
        Ok(ClaudeSettings {
            model: self.model.clone(),
            batch,
            cache_ttl_1h: self
                .cache_ttl
                .as_deref()
                .map(|t| t == "1h")
                .unwrap_or(batch),
            max_tokens: self.max_tokens,
            effort: (self.effort != "none").then(|| self.effort.clone()),
            max_doc_bytes: (self.max_doc_tokens as f64 * self.bytes_per_token) as usize,
            prices,
            client: ClientConfig {
                base_url: self.base_url.clone(),
                api_version: self.api_version.clone(),
                timeout: secs(self.timeout_s),
                max_retries: self.max_retries,
                initial_retry_delay: secs(self.initial_retry_delay_s),
                max_retry_delay: secs(self.max_retry_delay_s),
                concurrency: self.concurrency,
            },
            poll_interval: secs(self.poll_interval_s),
            poll_max_interval: secs(self.poll_max_interval_s),
            max_batch_wait: secs(self.max_batch_wait_s),
            max_batch_requests: self.max_batch_requests,
            max_batch_rounds: self.max_batch_rounds,
        })
    }

    /// The label store directory.
    pub fn store_dir(&self, config_dir: &Path) -> PathBuf {
        self.store
            .as_deref()
            .map(|s| resolve(config_dir, s))
            .unwrap_or_else(store::default_dir)
    }

    /// Loads the rubric (files resolved from `config_dir`).
    pub fn load_rubric(&self, config_dir: &Path) -> Result<Rubric, LabelError> {
        let r = self.rubric.as_deref().map(|p| resolve(config_dir, p));
        let s = self.schema.as_deref().map(|p| resolve(config_dir, p));
        Rubric::load(r.as_deref(), s.as_deref())
    }
}

fn secs(s: f64) -> std::time::Duration {
    std::time::Duration::from_secs_f64(s.max(0.0))
}

impl StepSpec for LabelConfig {
    /// Where and how patiently the teacher is asked, never what it answers: the label store's
    /// location, the API endpoint (a proxy, a test server), concurrency, retries, timeouts and
    /// polling.
    const RUN_ONLY: &'static [&'static str] = &[
        "store",
        "base_url",
        "concurrency",
        "max_retries",
        "initial_retry_delay_s",
        "max_retry_delay_s",
        "timeout_s",
        "poll_interval_s",
        "poll_max_interval_s",
        "max_batch_wait_s",
    ];
    const TYPE: &'static str = "label";

    fn requires(&self) -> &'static [&'static str] {
        &["sample"]
    }

    fn validate(&self, p: &mut Problems) {
        p.one_of(
            "annotator",
            &self.annotator,
            &["claude", "file", "reference"],
        );
        let claude = self.annotator == "claude";
        if claude {
            p.one_of("mode", &self.mode, &["batch", "online"]);
            if self.model.trim().is_empty() {
                p.push("model", "the model id is empty");
            } else if self.prices.is_none() && Prices::default_for(&self.model).is_none() {
                p.push_hint(
                    "prices",
                    format!("no built-in prices for model \"{}\"", self.model),
                    "give `prices = { input = …, output = …, cache_write_5m = …, cache_write_1h = …, cache_read = … }` (USD per million tokens)",
                );
            }
            if !(self.base_url.starts_with("http://") || self.base_url.starts_with("https://")) {
                p.push(
                    "base_url",
                    format!("\"{}\" is not an http(s) URL", self.base_url),
                );
            }
            if self.api_version.trim().is_empty() {
                p.push("api_version", "is empty");
            }
            p.range("max_tokens", self.max_tokens, 1, 128_000);
            p.one_of(
                "effort",
                &self.effort,
                &["low", "medium", "high", "xhigh", "max", "none"],
            );
            p.range("max_doc_tokens", self.max_doc_tokens, 16, 1_000_000);
            p.range("bytes_per_token", self.bytes_per_token, 0.5, 16.0);
            if let Some(t) = &self.cache_ttl {
                p.one_of("cache_ttl", t, &["5m", "1h"]);
            }
            if let Some(m) = self.max_usd
                && !(m > 0.0 && m.is_finite())
            {
                p.push("max_usd", format!("{m} must be a positive amount of USD"));
            }
            if self.max_input_tokens == Some(0) {
                p.push(
                    "max_input_tokens",
                    "0 allows no request at all; allowed: 1 or more",
                );
            }
            if let Some(pr) = &self.prices {
                for (k, v) in [
                    ("input", pr.input),
                    ("output", pr.output),
                    ("cache_read", pr.cache_read),
                ] {
                    if !(v >= 0.0 && v.is_finite()) {
                        p.push("prices", format!("`{k}` = {v} must be a price ≥ 0"));
                    }
                }
                p.range("prices", pr.batch_discount, 0.0, 1.0);
            }
            p.range("concurrency", self.concurrency, 1, 256);
            p.range("max_retries", self.max_retries, 0, 100);
            p.range(
                "initial_retry_delay_s",
                self.initial_retry_delay_s,
                0.0,
                600.0,
            );
            p.range("max_retry_delay_s", self.max_retry_delay_s, 0.0, 3600.0);
            p.range("timeout_s", self.timeout_s, 0.001, 3600.0);
            p.range("poll_interval_s", self.poll_interval_s, 0.0, 3600.0);
            p.range("poll_max_interval_s", self.poll_max_interval_s, 0.0, 3600.0);
            p.range("max_batch_requests", self.max_batch_requests, 1, 100_000);
        } else {
            for (k, set) in [
                ("rubric", self.rubric.is_some()),
                ("schema", self.schema.is_some()),
                ("max_usd", self.max_usd.is_some()),
                ("max_input_tokens", self.max_input_tokens.is_some()),
                ("prices", self.prices.is_some()),
                ("cache_ttl", self.cache_ttl.is_some()),
            ] {
                if set {
                    p.push(
                        k,
                        format!(
                            "only applies to annotator = \"claude\", not \"{}\"",
                            self.annotator
                        ),
                    );
                }
            }
        }
        if self.annotator == "file" {
            if self.path.is_none() {
                p.push(
                    "path",
                    "annotator = \"file\" needs `path`, the parquet or JSONL file of labels",
                );
            }
            p.one_of("match_on", &self.match_on, &["id", "text"]);
        } else if self.path.is_some() {
            p.push("path", "only applies to annotator = \"file\"");
        }
        if self.annotator == "reference" {
            if self.reference.is_none() {
                p.push("reference", "annotator = \"reference\" needs `reference`, a parquet or JSONL file of positive documents");
            }
            p.range("reference_holdout", self.reference_holdout, 0.0, 0.9);
        } else if self.reference.is_some() {
            p.push("reference", "only applies to annotator = \"reference\"");
        }
    }

    fn build(&self, env: &BuildEnv) -> Result<Box<dyn Step>, StepError> {
        self.build_with_key(env, ApiKey::from_env())
    }
}

impl LabelConfig {
    /// [`StepSpec::build`] with the API key given instead of read from `ANTHROPIC_API_KEY`
    /// (for tests and embedding).
    pub fn build_with_key(
        &self,
        env: &BuildEnv,
        key: Option<ApiKey>,
    ) -> Result<Box<dyn Step>, StepError> {
        if !env.previous.iter().any(|s| s == "sample") {
            return Err(StepError::Other(
                "label: needs a `sample` step before it (it labels the rows `sample` selects); add a \
                 [[steps]] table with type = \"sample\" earlier in the pipeline"
                    .into(),
            ));
        }
        let annotator = match self.annotator.as_str() {
            "claude" => {
                let settings = self.claude_settings()?;
                let rubric = self.load_rubric(&env.config_dir)?;
                let key = key.ok_or_else(|| {
                    LabelError::Config(
                        "label: ANTHROPIC_API_KEY is not set; the claude annotator reads the API key from this \
                         environment variable only (run `curate label --dry-run` to estimate the cost without a key)"
                            .into(),
                    )
                })?;
                Annotator::Claude {
                    settings: Box::new(settings),
                    rubric,
                    key,
                    store: self.store_dir(&env.config_dir),
                }
            }
            "file" => {
                let path = resolve(&env.config_dir, self.path.as_deref().unwrap_or_default());
                if !path.exists() {
                    return Err(StepError::Other(format!(
                        "label: labels file {} does not exist",
                        path.display()
                    )));
                }
                Annotator::File {
                    path,
                    by_text: self.match_on == "text",
                    score_column: self.score_column.clone(),
                }
            }
            "reference" => {
                let path = resolve(
                    &env.config_dir,
                    self.reference.as_deref().unwrap_or_default(),
                );
                if !path.exists() {
                    return Err(StepError::Other(format!(
                        "label: reference file {} does not exist",
                        path.display()
                    )));
                }
                Annotator::Reference {
                    path,
                    text_column: self.reference_text_column.clone(),
                    holdout: self.reference_holdout,
                    max_docs: self.max_reference_docs,
                    seed: derive_seed(env.seed, "reference-split"),
                }
            }
            other => {
                return Err(StepError::Other(format!(
                    "label: unknown annotator \"{other}\""
                )));
            }
        };
        Ok(Box::new(LabelStep {
            cfg: self.clone(),
            annotator,
        }))
    }
}

enum Annotator {
    Claude {
        settings: Box<ClaudeSettings>,
        rubric: Rubric,
        key: ApiKey,
        store: PathBuf,
    },
    File {
        path: PathBuf,
        by_text: bool,
        score_column: String,
    },
    Reference {
        path: PathBuf,
        text_column: String,
        holdout: f64,
        max_docs: Option<usize>,
        seed: u64,
    },
}

/// The runtime `label` step.
pub struct LabelStep {
    cfg: LabelConfig,
    annotator: Annotator,
}

impl std::fmt::Debug for LabelStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LabelStep")
            .field("annotator", &self.cfg.annotator)
            .finish_non_exhaustive()
    }
}

/// The work-dir file with every label (and text); read by the `train` step.
pub const LABELS_FILE: &str = "labels.parquet";
const SNAPSHOT_FILE: &str = "labels-snapshot.parquet";
const STATS_FILE: &str = "stats.json";
/// What the last run of the label stage spent and did (work dir only; not deterministic).
pub const RUN_FILE: &str = "run.json";

impl Step for LabelStep {
    fn kind(&self) -> &'static str {
        "label"
    }

    fn columns(&self, c: &mut curate_core::columns::Columns<'_>) {
        use curate_core::columns::Want;
        c.need("split_column", &self.cfg.split_column, Want::String);
        c.add(Some("column"), &self.cfg.column, DataType::Float32);
        let scale = match &self.annotator {
            Annotator::Reference { .. } => Some((0.0, 1.0)),
            Annotator::Claude { rubric, .. } => Some((
                rubric.score_min.unwrap_or(0.0),
                rubric.score_max.unwrap_or(5.0),
            )),
            Annotator::File { .. } => None,
        };
        if let Some((lo, hi)) = scale {
            c.set_scale(&self.cfg.column, lo, hi);
        }
    }

    fn processor(&self, cx: &TaskContext<'_>) -> Result<Box<dyn Processor>, StepError> {
        let path = cx.dir.join(LABELS_FILE);
        let mut scores = HashMap::new();
        for rb in read_parquet(&path, Some(&["key", "score"]))? {
            let k = rb.column(0).as_primitive::<UInt64Type>();
            let s = rb.column(1).as_primitive::<Float32Type>();
            for i in 0..rb.num_rows() {
                if !k.is_null(i) && !s.is_null(i) {
                    scores.insert(k.value(i), s.value(i));
                }
            }
        }
        Ok(Box::new(LabelProcessor {
            scores,
            column: self.cfg.column.clone(),
        }))
    }

    fn barrier(&self) -> Option<&dyn Barrier> {
        Some(self)
    }

    fn publish(&self, dir: &Path) -> Result<Published, StepError> {
        let stats = std::fs::read(dir.join(STATS_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        Ok(Published {
            files: vec![
                (artifact::LABELS.into(), dir.join(SNAPSHOT_FILE)),
                (artifact::LABEL_STATS.into(), dir.join(STATS_FILE)),
            ],
            stats,
        })
    }
}

impl Barrier for LabelStep {
    fn observer(&self, cx: &TaskContext<'_>) -> Result<Box<dyn Observer>, StepError> {
        Ok(Box::new(LabelObserver {
            path: cx.dir.join(format!("observed-{:05}.parquet", cx.task)),
            batches: Vec::new(),
            split_column: self.cfg.split_column.clone(),
        }))
    }

    fn stages(&self, _observed_tasks: usize) -> Vec<StageSpec> {
        vec![StageSpec {
            name: "label".into(),
            tasks: 1,
        }]
    }

    fn run_stage_task(&self, cx: &StageContext<'_>) -> Result<(), StepError> {
        let mut items = Vec::new();
        for t in 0..cx.observed_tasks {
            let p = cx.dir.join(format!("observed-{t:05}.parquet"));
            for rb in read_parquet(&p, None)? {
                let k = rb.column(0).as_primitive::<UInt64Type>();
                let (id, split, text) = (
                    rb.column(1).as_string::<i32>(),
                    rb.column(2).as_string::<i32>(),
                    rb.column(3).as_string::<i32>(),
                );
                for i in 0..rb.num_rows() {
                    items.push(Item {
                        key: k.value(i),
                        id: id.value(i).to_string(),
                        split: split.value(i).to_string(),
                        text: text.value(i).to_string(),
                    });
                }
            }
        }
        items.sort_by_key(|x| x.key);
        let (rows, stats) = match &self.annotator {
            Annotator::Claude {
                settings,
                rubric,
                key,
                store,
            } => label_claude(
                settings,
                rubric,
                key.clone(),
                store,
                &self.cfg,
                cx.dir,
                &items,
            )?,
            Annotator::File {
                path,
                by_text,
                score_column,
            } => label_file(path, *by_text, score_column, &items)?,
            Annotator::Reference {
                path,
                text_column,
                holdout,
                max_docs,
                seed,
            } => label_reference(path, text_column, *holdout, *max_docs, *seed, &items)?,
        };
        write_labels(&cx.dir.join(LABELS_FILE), &rows, true)?;
        write_labels(&cx.dir.join(SNAPSHOT_FILE), &rows, false)?;
        let mut stats = stats;
        let labeled = rows
            .iter()
            .filter(|r| r.key.is_some() && r.score.is_some())
            .count();
        let unlabeled = rows
            .iter()
            .filter(|r| r.key.is_some() && r.score.is_none())
            .count();
        stats.insert("annotator".into(), self.cfg.annotator.clone().into());
        stats.insert("sampled".into(), items.len().into());
        stats.insert("labeled".into(), labeled.into());
        stats.insert("unlabeled".into(), unlabeled.into());
        stats.insert("labels_hash".into(), labels_hash(&rows).into());
        write_atomic(
            &cx.dir.join(STATS_FILE),
            &serde_json::to_vec_pretty(&stats).expect("JSON"),
        )?;
        let mut c = cx.counters.lock().expect("counters");
        c.add("labeled", labeled as f64);
        c.add("unlabeled", unlabeled as f64);
        Ok(())
    }
}

struct Item {
    key: u64,
    id: String,
    split: String,
    text: String,
}

/// One row of the labels table.
#[derive(Debug, Clone, Default)]
struct Row {
    key: Option<u64>,
    id: String,
    split: String,
    score: Option<f32>,
    reason: String,
    status: String,
    model: String,
    input_tokens: u64,
    output_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
    cost_usd: f64,
    text_hash: String,
    text: String,
}

fn text_hash(t: &str) -> String {
    hex128(h128(t.as_bytes(), 0))
}

fn labels_hash(rows: &[Row]) -> String {
    let mut s = String::new();
    for r in rows {
        s.push_str(&format!(
            "{:?}\0{}\0{}\0{:?}\0{}\n",
            r.key,
            r.id,
            r.split,
            r.score.map(f32::to_bits),
            r.text_hash
        ));
    }
    hex128(h128(s.as_bytes(), 0))
}

type Stats = serde_json::Map<String, serde_json::Value>;

fn label_claude(
    s: &ClaudeSettings,
    rubric: &Rubric,
    key: ApiKey,
    store_dir: &Path,
    cfg: &LabelConfig,
    work: &Path,
    items: &[Item],
) -> Result<(Vec<Row>, Stats), LabelError> {
    let prompt_hash = s.prompt_hash(rubric);
    let store = Store::open(store_dir, &s.model, &prompt_hash)?;
    let hashes: Vec<String> = items.iter().map(|it| text_hash(&it.text)).collect();
    let mut seen = HashSet::new();
    let mut missing = Vec::new();
    for (it, th) in items.iter().zip(&hashes) {
        if store.get(th).is_none() && seen.insert(th.clone()) {
            missing.push((th.clone(), it.text.clone()));
        }
    }
    let from_store = seen.len();
    let _ = from_store;
    let ledger = Ledger::new(work);
    let (spent_in, spent_usd) = ledger.load()?;
    let mut budget = Budget::new(cfg.max_usd, cfg.max_input_tokens);
    budget.settle(0, 0.0, spent_in, spent_usd);
    let need_api = !missing.is_empty() || !store.pending()?.is_empty();
    let n_missing = missing.len();
    let (mut store, outcome) = if need_api {
        tracing::info!(
            documents = n_missing,
            mode = if s.batch { "batch" } else { "online" },
            "labeling with claude"
        );
        claude::run(s, rubric, key, store, missing, budget, ledger)
    } else {
        (store, Ok(claude::Outcome::default()))
    };
    // Whatever happened, fold this run's labels into a segment (they are in the journal anyway).
    store.compact()?;
    let outcome = outcome?;
    let mut rows = Vec::with_capacity(items.len());
    let mut unique_cost = 0.0;
    let mut counted = HashSet::new();
    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    for (it, th) in items.iter().zip(hashes) {
        let mut r = Row {
            key: Some(it.key),
            id: it.id.clone(),
            split: it.split.clone(),
            model: s.model.clone(),
            ..Default::default()
        };
        match store.get(&th) {
            Some(rec) => {
                r.score = rec.score.map(|x| x as f32);
                r.reason = rec.reason.clone();
                r.status = rec.status.clone();
                r.input_tokens = rec.input_tokens;
                r.output_tokens = rec.output_tokens;
                r.cache_creation_input_tokens = rec.cache_creation_input_tokens;
                r.cache_read_input_tokens = rec.cache_read_input_tokens;
                r.cost_usd = rec.cost_usd;
                if counted.insert(th.clone()) {
                    unique_cost += rec.cost_usd;
                }
            }
            None => {
                r.status = if outcome.budget_skipped > 0 {
                    "budget"
                } else {
                    "failed"
                }
                .into();
                r.reason = "not labeled in this run".into();
            }
        }
        *by_status.entry(r.status.clone()).or_default() += 1;
        r.text_hash = th;
        r.text = it.text.clone();
        rows.push(r);
    }
    let mut st = Stats::new();
    st.insert("model".into(), s.model.clone().into());
    st.insert(
        "mode".into(),
        if s.batch { "batch" } else { "online" }.into(),
    );
    st.insert("prompt_hash".into(), prompt_hash.into());
    st.insert("rubric".into(), rubric.source.clone().into());
    // (Where the store lives is a fact of this machine, not of the data: it goes to the log.)
    st.insert(
        "status".into(),
        serde_json::to_value(&by_status).expect("JSON"),
    );
    st.insert("cost_usd_of_labels".into(), unique_cost.into());
    st.insert("distinct_texts".into(), counted.len().into());
    // What this particular run spent, retried and waited varies between a first run and a
    // re-run served from the store; it goes to the work dir and the log, not into the snapshot
    // (whose stats must be the same for the same inputs and config).
    let run = serde_json::to_value(&outcome).expect("JSON");
    write_atomic(
        &work.join(RUN_FILE),
        &serde_json::to_vec_pretty(&run).expect("JSON"),
    )?;
    tracing::info!(
        bought = outcome.bought,
        spent_usd = outcome.spent_usd,
        budget_skipped = outcome.budget_skipped,
        retries = outcome.retries,
        batches = outcome.batches,
        batches_resumed = outcome.batches_resumed,
        store = %store.dir().display(),
        "label run finished"
    );
    Ok((rows, st))
}

fn label_file(
    path: &Path,
    by_text: bool,
    score_column: &str,
    items: &[Item],
) -> Result<(Vec<Row>, Stats), LabelError> {
    let key_col = if by_text { "text" } else { "id" };
    // key → (score, reason, where it was read)
    let mut map: HashMap<String, (Option<f64>, String, String)> = HashMap::new();
    let mut rows_in = 0usize;
    let mut add =
        |k: Option<String>, s: Option<f64>, r: String, where_: String| -> Result<(), LabelError> {
            let k = k.ok_or_else(|| LabelError::Input {
                path: path.to_path_buf(),
                message: format!("{where_}: no `{key_col}`"),
            })?;
            rows_in += 1;
            let (k, text) = if by_text {
                (text_hash(&k), Some(k))
            } else {
                (k, None)
            };
            match map.entry(k) {
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert((s, r, where_));
                }
                // the same label twice is harmless; two different ones are a choice curate
                // will not make for the user
                std::collections::hash_map::Entry::Occupied(o) => {
                    let (s0, r0, w0) = o.get();
                    if *s0 != s || *r0 != r {
                        let who = match &text {
                            Some(t) => format!("text \"{}\"", snippet(t)),
                            None => format!("id \"{}\"", o.key()),
                        };
                        let show = |s: &Option<f64>, r: &str| {
                            let s = s.map_or("null".to_string(), |x| x.to_string());
                            if r.is_empty() {
                                format!("score {s}")
                            } else {
                                format!("score {s}, reason \"{}\"", snippet(r))
                            }
                        };
                        return Err(LabelError::Input {
                            path: path.to_path_buf(),
                            message: format!(
                                "conflicting labels for {who}: {w0} has {}, {where_} has {}; \
                                 keep one label per {key_col} (identical repeats are accepted)",
                                show(s0, r0),
                                show(&s, &r)
                            ),
                        });
                    }
                }
            }
            Ok(())
        };
    if is_parquet(path) {
        let mut row = 0usize;
        for rb in read_parquet(path, None)?.iter() {
            let kc = crate::util::column(rb, key_col, path)?;
            let sc = crate::util::column(rb, score_column, path)?;
            let rc = rb.column_by_name("reason");
            for i in 0..rb.num_rows() {
                let reason = rc
                    .and_then(|c| str_value(c.as_ref(), i))
                    .unwrap_or_default();
                add(
                    str_value(kc.as_ref(), i),
                    f64_value(sc.as_ref(), i),
                    reason,
                    format!("row {row}"),
                )?;
                row += 1;
            }
        }
    } else {
        read_jsonl(path, |n, m| {
            let k = m.get(key_col).map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            });
            let s = match m.get(score_column) {
                None | Some(serde_json::Value::Null) => None,
                Some(v) => Some(v.as_f64().ok_or_else(|| LabelError::Input {
                    path: path.to_path_buf(),
                    message: format!("line {n}: `{score_column}` is not a number"),
                })?),
            };
            let r = m
                .get("reason")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string();
            add(k, s, r, format!("line {n}"))
        })?;
    }
    let model = format!(
        "file:{}",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    let mut matched = 0usize;
    let rows = items
        .iter()
        .map(|it| {
            let th = text_hash(&it.text);
            let k = if by_text { th.clone() } else { it.id.clone() };
            let hit = map.get(&k);
            if hit.is_some() {
                matched += 1;
            }
            Row {
                key: Some(it.key),
                id: it.id.clone(),
                split: it.split.clone(),
                score: hit.and_then(|h| h.0).map(|x| x as f32),
                reason: hit.map(|h| h.1.clone()).unwrap_or_default(),
                status: if hit.is_some_and(|h| h.0.is_some()) {
                    "ok"
                } else {
                    "missing"
                }
                .into(),
                model: model.clone(),
                text_hash: th,
                text: it.text.clone(),
                ..Default::default()
            }
        })
        .collect();
    let mut st = Stats::new();
    st.insert("file".into(), file_name(path).into());
    st.insert("file_rows".into(), rows_in.into());
    st.insert("matched".into(), matched.into());
    st.insert("match_on".into(), key_col.into());
    Ok((rows, st))
}

/// The start of a text for a message: one line, at most 60 characters.
fn snippet(s: &str) -> String {
    let one: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match one.char_indices().nth(60) {
        Some((i, _)) => format!("{}…", &one[..i]),
        None => one,
    }
}

fn is_parquet(p: &Path) -> bool {
    p.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
}

/// Reads the texts (and ids, when present) of a parquet or JSONL corpus file.
pub fn read_texts(
    path: &Path,
    text_column: &str,
) -> Result<Vec<(Option<String>, String)>, LabelError> {
    let mut out = Vec::new();
    if is_parquet(path) {
        for rb in read_parquet(path, None)? {
            let t = crate::util::column(&rb, text_column, path)?;
            let id = rb.column_by_name("id");
            for i in 0..rb.num_rows() {
                if let Some(text) = str_value(t.as_ref(), i) {
                    out.push((id.and_then(|c| str_value(c.as_ref(), i)), text));
                }
            }
        }
    } else {
        read_jsonl(path, |n, m| {
            let text =
                m.get(text_column)
                    .and_then(|v| v.as_str())
                    .ok_or_else(|| LabelError::Input {
                        path: path.to_path_buf(),
                        message: format!("line {n}: no string field `{text_column}`"),
                    })?;
            let id = m.get("id").map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            });
            out.push((id, text.to_string()));
            Ok(())
        })?;
    }
    Ok(out)
}

fn label_reference(
    path: &Path,
    text_column: &str,
    holdout: f64,
    max_docs: Option<usize>,
    seed: u64,
    items: &[Item],
) -> Result<(Vec<Row>, Stats), LabelError> {
    let mut refs = read_texts(path, text_column)?;
    if let Some(m) = max_docs {
        refs.truncate(m);
    }
    let model = format!(
        "reference:{}",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    let mut rows: Vec<Row> = items
        .iter()
        .map(|it| Row {
            key: Some(it.key),
            id: it.id.clone(),
            split: it.split.clone(),
            score: Some(0.0),
            reason: "negative: sampled from the input".into(),
            status: "ok".into(),
            model: model.clone(),
            text_hash: text_hash(&it.text),
            text: it.text.clone(),
            ..Default::default()
        })
        .collect();
    let mut pos_hold = 0usize;
    for (n, (id, text)) in refs.into_iter().enumerate() {
        let hold = unit(h64(text.as_bytes(), seed)) < holdout;
        pos_hold += hold as usize;
        rows.push(Row {
            key: None,
            id: id.unwrap_or_else(|| format!("ref-{n}")),
            split: if hold { "holdout" } else { "train" }.into(),
            score: Some(1.0),
            reason: "positive: reference corpus".into(),
            status: "ok".into(),
            model: model.clone(),
            text_hash: text_hash(&text),
            text,
            ..Default::default()
        });
    }
    let mut st = Stats::new();
    // the file's name, not its path: a snapshot must not depend on where the checkout lives
    st.insert("reference".into(), file_name(path).into());
    st.insert("positives".into(), (rows.len() - items.len()).into());
    st.insert("positives_holdout".into(), pos_hold.into());
    st.insert("negatives".into(), items.len().into());
    Ok((rows, st))
}

fn write_labels(path: &Path, rows: &[Row], with_text: bool) -> Result<(), LabelError> {
    let s = |f: fn(&Row) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
    };
    let u = |f: fn(&Row) -> u64| -> ArrayRef {
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(f)))
    };
    let mut fields = vec![
        Field::new("key", DataType::UInt64, true),
        Field::new("id", DataType::Utf8, false),
        Field::new("split", DataType::Utf8, false),
        Field::new("score", DataType::Float32, true),
        Field::new("reason", DataType::Utf8, false),
        Field::new("status", DataType::Utf8, false),
        Field::new("model", DataType::Utf8, false),
        Field::new("input_tokens", DataType::UInt64, false),
        Field::new("output_tokens", DataType::UInt64, false),
        Field::new("cache_creation_input_tokens", DataType::UInt64, false),
        Field::new("cache_read_input_tokens", DataType::UInt64, false),
        Field::new("cost_usd", DataType::Float64, false),
        Field::new("text_hash", DataType::Utf8, false),
    ];
    let mut cols: Vec<ArrayRef> = vec![
        Arc::new(rows.iter().map(|r| r.key).collect::<UInt64Array>()),
        s(|r| &r.id),
        s(|r| &r.split),
        Arc::new(rows.iter().map(|r| r.score).collect::<Float32Array>()),
        s(|r| &r.reason),
        s(|r| &r.status),
        s(|r| &r.model),
        u(|r| r.input_tokens),
        u(|r| r.output_tokens),
        u(|r| r.cache_creation_input_tokens),
        u(|r| r.cache_read_input_tokens),
        Arc::new(arrow::array::Float64Array::from_iter_values(
            rows.iter().map(|r| r.cost_usd),
        )),
        s(|r| &r.text_hash),
    ];
    if with_text {
        fields.push(Field::new("text", DataType::Utf8, false));
        cols.push(s(|r| &r.text));
    }
    let schema = Arc::new(Schema::new(fields));
    let rb =
        RecordBatch::try_new(schema.clone(), cols).map_err(|e| LabelError::Other(e.to_string()))?;
    write_parquet(path, schema, &[rb])
}

struct LabelObserver {
    path: PathBuf,
    batches: Vec<RecordBatch>,
    split_column: String,
}

impl Observer for LabelObserver {
    fn observe(&mut self, batch: &DocBatch, _counters: &mut Counters) -> Result<(), StepError> {
        let name = &self.split_column;
        let split = batch.column(name).ok_or_else(|| {
            StepError::Data(format!(
                "label: the input has no `{name}` column; put a `sample` step before `label`"
            ))
        })?;
        let split = split.as_string_opt::<i32>().ok_or_else(|| {
            StepError::Data(format!("label: the `{name}` column is not a string column"))
        })?;
        let mask: arrow::array::BooleanArray =
            (0..batch.len()).map(|i| Some(!split.is_null(i))).collect();
        if mask.true_count() == 0 {
            return Ok(());
        }
        let keys: ArrayRef = Arc::new(batch.keys().clone());
        let ids: ArrayRef = Arc::new(StringArray::from_iter_values(
            (0..batch.len()).map(|i| batch.id_string(i)),
        ));
        let texts: ArrayRef = Arc::new(StringArray::from_iter_values(
            (0..batch.len()).map(|i| batch.text(i)),
        ));
        let split_col: ArrayRef = Arc::new(split.clone());
        let schema = Arc::new(Schema::new(vec![
            Field::new("key", DataType::UInt64, false),
            Field::new("id", DataType::Utf8, false),
            Field::new("split", DataType::Utf8, true),
            Field::new("text", DataType::Utf8, false),
        ]));
        let rb = RecordBatch::try_new(schema, vec![keys, ids, split_col, texts])
            .map_err(|e| StepError::Other(e.to_string()))?;
        let rb = arrow::compute::filter_record_batch(&rb, &mask)
            .map_err(|e| StepError::Other(e.to_string()))?;
        self.batches.push(rb);
        Ok(())
    }

    fn finish(self: Box<Self>, counters: &mut Counters) -> Result<(), StepError> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("key", DataType::UInt64, false),
            Field::new("id", DataType::Utf8, false),
            Field::new("split", DataType::Utf8, true),
            Field::new("text", DataType::Utf8, false),
        ]));
        let n: usize = self.batches.iter().map(|b| b.num_rows()).sum();
        counters.add("sampled_seen", n as f64);
        let batches: Vec<RecordBatch> = self
            .batches
            .into_iter()
            .map(|b| {
                RecordBatch::try_new(schema.clone(), b.columns().to_vec()).expect("same columns")
            })
            .collect();
        write_parquet(&self.path, schema, &batches).map_err(StepError::from)
    }
}

struct LabelProcessor {
    scores: HashMap<u64, f32>,
    column: String,
}

impl Processor for LabelProcessor {
    fn process(&mut self, batch: &mut DocBatch, counters: &mut Counters) -> Result<(), StepError> {
        let mut b = Float32Builder::with_capacity(batch.len());
        let mut n = 0u64;
        for &k in batch.keys().values().iter() {
            match self.scores.get(&k) {
                Some(&s) => {
                    n += 1;
                    b.append_value(s)
                }
                None => b.append_null(),
            }
        }
        batch.set_column(&self.column, Arc::new(b.finish()));
        counters.add("teacher_scored", n as f64);
        Ok(())
    }
}

/// A path's last component, for stats that must not depend on where files live.
fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}
