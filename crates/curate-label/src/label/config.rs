//! The `label` step's configuration: documented options, validation and `build`.

use std::path::{Path, PathBuf};

use curate_core::hash::derive_seed;
use curate_core::{BuildEnv, Problems, Step, StepError, StepSpec};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::annotators::Annotator;
use super::step::LabelStep;
use crate::LabelError;
use crate::claude::ClaudeSettings;
use crate::client::{ApiKey, ClientConfig};
use crate::cost::Prices;
use crate::rubric::Rubric;
use crate::store;
use crate::util::resolve;

/// Labels the documents a `sample` step selected with a teacher, adding `teacher_score`.
///
/// Every document flows on: rows that `sample` did not select, and rows the teacher could not
/// label (refusal, budget reached), get a null `teacher_score`. The labels the snapshot used are
/// published under `labels/` (`labels.parquet` with `id, split, selection, score, reason,
/// model, input_tokens, output_tokens, cost_usd`, and `stats.json`); `selection` says how each
/// label was chosen (`random`, `uncertainty-round-N`) when the input has the `sample` step's
/// selection column.
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
    /// The column that says how each sampled document was chosen (the `sample` step's
    /// `selection_column`: `random` or `uncertainty-round-N`). Its values are copied into the
    /// `selection` column of `labels.parquet`; when the documents have no such column, that
    /// column is null.
    #[serde(default = "d_selection_column")]
    pub selection_column: String,

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

pub(super) fn d_column() -> String {
    "teacher_score".into()
}
pub(super) fn d_split_column() -> String {
    "split".into()
}
pub(super) fn d_selection_column() -> String {
    "selection".into()
}
pub(super) fn d_model() -> String {
    "claude-haiku-5-5".into()
}
pub(super) fn d_mode() -> String {
    "batch".into()
}
pub(super) fn d_base_url() -> String {
    "https://api.anthropic.com".into()
}
pub(super) fn d_api_version() -> String {
    "2026-10-21".into()
}
pub(super) fn d_max_tokens() -> u32 {
    256
}
pub(super) fn d_effort() -> String {
    "low".into()
}
pub(super) fn d_max_doc_tokens() -> usize {
    2048
}
pub(super) fn d_bytes_per_token() -> f64 {
    3.0
}
pub(super) fn d_concurrency() -> usize {
    8
}
pub(super) fn d_max_retries() -> u32 {
    8
}
pub(super) fn d_initial_retry() -> f64 {
    0.5
}
pub(super) fn d_max_retry() -> f64 {
    60.0
}
pub(super) fn d_timeout() -> f64 {
    600.0
}
pub(super) fn d_poll() -> f64 {
    30.0
}
pub(super) fn d_poll_max() -> f64 {
    60.0
}
pub(super) fn d_batch_wait() -> f64 {
    25.0 * 3600.0
}
pub(super) fn d_batch_requests() -> usize {
    10_000
}
pub(super) fn d_batch_rounds() -> u32 {
    5
}
pub(super) fn d_match_on() -> String {
    "id".into()
}
pub(super) fn d_score_column() -> String {
    "score".into()
}
pub(super) fn d_text_column() -> String {
    "text".into()
}
pub(super) fn d_ref_holdout() -> f64 {
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

    /// Loads the rubric (files resolved from `config_dir`), recording the files it read
    /// ([`curate_core::resource::recording`]).
    pub fn load_rubric(&self, config_dir: &Path) -> Result<Rubric, LabelError> {
        let r = self.rubric.as_deref().map(|p| resolve(config_dir, p));
        let s = self.schema.as_deref().map(|p| resolve(config_dir, p));
        let rubric = Rubric::load(r.as_deref(), s.as_deref())?;
        for p in r.iter().chain(&s) {
            record(p)?;
        }
        Ok(rubric)
    }
}

/// Hashes a file the step reads later and records it, so a resumed run refuses when it changed
/// ([`curate_core::resource::recording`]).
fn record(path: &Path) -> Result<(), LabelError> {
    curate_core::resource::record_file(path)
        .map(drop)
        .map_err(LabelError::Config)
}

pub(super) fn secs(s: f64) -> std::time::Duration {
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
                record(&path)?;
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
                record(&path)?;
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
            earlier: env
                .previous
                .iter()
                .enumerate()
                .filter(|(_, t)| *t == "label")
                .map(|(i, _)| i)
                .collect(),
        }))
    }
}
