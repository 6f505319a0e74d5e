//! The dry run: what labeling would cost, before anything is spent.
//!
//! Tokens are estimated from bytes (`bytes_per_token`; there is no offline Claude tokenizer);
//! documents already in the label store are free. Two figures come out: an expected cost
//! (rubric written to the cache once, then read; `EXPECTED_OUTPUT_TOKENS` per answer) and the
//! worst case the hard budget reserves against (every token at the highest rate, `max_tokens` of
//! output per answer).

use std::collections::HashSet;
use std::path::Path;

use serde::Serialize;

use crate::LabelError;
use crate::cost::{Usage, cost};
use crate::label::LabelConfig;
use crate::store::Store;
use crate::util::truncate_utf8;

/// Output tokens a `{score, reason}` answer typically takes (a short sentence plus low-effort
/// thinking); the worst case uses `max_tokens`.
pub const EXPECTED_OUTPUT_TOKENS: u64 = 80;

/// A cost estimate.
#[derive(Debug, Clone, Serialize)]
pub struct Estimate {
    /// Model.
    pub model: String,
    /// `batch` or `online`.
    pub mode: String,
    /// Documents given.
    pub documents: usize,
    /// Distinct texts among them.
    pub unique_texts: usize,
    /// Distinct texts already labeled in the store (free).
    pub in_store: usize,
    /// Distinct texts that would be sent.
    pub to_label: usize,
    /// Estimated document input tokens (after truncation).
    pub document_tokens: u64,
    /// Estimated rubric tokens per request.
    pub rubric_tokens: u64,
    /// Estimated output tokens.
    pub output_tokens: u64,
    /// Expected USD.
    pub expected_usd: f64,
    /// Worst case USD (what the budget reserves).
    pub worst_case_usd: f64,
    /// The configured cap, if any.
    pub max_usd: Option<f64>,
    /// Documents the budget would let through in the worst case (all, when no cap).
    pub fits_worst_case: usize,
    /// Where the label store is.
    pub store: String,
}

/// Estimates the cost of labeling `texts` with the claude annotator of `cfg` (files resolved
/// from `config_dir`). Needs no API key and sends nothing.
pub fn estimate(
    cfg: &LabelConfig,
    config_dir: &Path,
    texts: &[&str],
) -> Result<Estimate, LabelError> {
    estimate_with_ratio(cfg, config_dir, texts, cfg.bytes_per_token)
}

/// [`estimate`] with tokens estimated at `bytes_per_token` (e.g. measured by [`calibrate`])
/// instead of the config's value; truncation still follows the config.
pub fn estimate_with_ratio(
    cfg: &LabelConfig,
    config_dir: &Path,
    texts: &[&str],
    bytes_per_token: f64,
) -> Result<Estimate, LabelError> {
    if cfg.annotator != "claude" {
        return Err(LabelError::Config(format!(
            "the dry run estimates the claude annotator's cost; annotator \"{}\" costs nothing",
            cfg.annotator
        )));
    }
    let s = cfg.claude_settings()?;
    let rubric = cfg.load_rubric(config_dir)?;
    let store_dir = cfg.store_dir(config_dir);
    let store = Store::open(&store_dir, &s.model, &s.prompt_hash(&rubric))?;
    let bpt = bytes_per_token;
    let rubric_tokens = (rubric.prompt.len() as f64 / bpt).ceil() as u64;
    let mut seen = HashSet::new();
    let (mut in_store, mut to_label, mut doc_tokens) = (0usize, 0usize, 0u64);
    let (mut expected, mut worst, mut fits) = (0.0f64, 0.0f64, 0usize);
    for t in texts {
        let th = curate_core::hash::hex128(curate_core::hash::h128(t.as_bytes(), 0));
        if !seen.insert(th.clone()) {
            continue;
        }
        if store.get(&th).is_some() {
            in_store += 1;
            continue;
        }
        let doc = (truncate_utf8(t, s.max_doc_bytes).len() as f64 / bpt).ceil() as u64 + 8;
        let first = to_label == 0;
        to_label += 1;
        doc_tokens += doc;
        let mut u = Usage {
            input_tokens: doc,
            output_tokens: EXPECTED_OUTPUT_TOKENS.min(s.max_tokens as u64),
            ..Default::default()
        };
        if first {
            u.cache_creation_input_tokens = rubric_tokens;
            if s.cache_ttl_1h {
                u.cache_write_1h = rubric_tokens
            } else {
                u.cache_write_5m = rubric_tokens
            }
        } else {
            u.cache_read_input_tokens = rubric_tokens;
        }
        expected += cost(&s.prices, &u, s.batch);
        let (_, w) = s.worst_case(&rubric, t);
        worst += w;
        if cfg.max_usd.is_none_or(|m| worst <= m) {
            fits += 1;
        }
    }
    Ok(Estimate {
        model: s.model.clone(),
        mode: cfg.mode.clone(),
        documents: texts.len(),
        unique_texts: seen.len(),
        in_store,
        to_label,
        document_tokens: doc_tokens,
        rubric_tokens,
        output_tokens: to_label as u64 * EXPECTED_OUTPUT_TOKENS.min(s.max_tokens as u64),
        expected_usd: expected,
        worst_case_usd: worst,
        max_usd: cfg.max_usd,
        fits_worst_case: fits,
        store: store_dir.display().to_string(),
    })
}

impl Estimate {
    /// A few lines for a terminal.
    pub fn render(&self) -> String {
        let cap = self
            .max_usd
            .map(|m| format!("${m:.2}"))
            .unwrap_or_else(|| "none".into());
        format!(
            "model {} ({} mode)\n\
             documents: {} ({} distinct texts; {} already in the label store, {} to label)\n\
             tokens (estimated): {} document + {} rubric per request, ~{} output\n\
             cost: ~${:.4} expected, ${:.4} worst case; budget {cap}{}\n\
             label store: {}\n",
            self.model,
            self.mode,
            self.documents,
            self.unique_texts,
            self.in_store,
            self.to_label,
            self.document_tokens,
            self.rubric_tokens,
            self.output_tokens,
            self.expected_usd,
            self.worst_case_usd,
            if self.fits_worst_case < self.to_label {
                format!(
                    " (lets through at least {} of {} documents)",
                    self.fits_worst_case, self.to_label
                )
            } else {
                String::new()
            },
            self.store
        )
    }
}

/// Measures bytes per token of the config's model on `texts` with the free `count_tokens`
/// endpoint (one call per text plus one for the rubric alone), for a calibrated estimate. Sends
/// no Messages request and buys nothing.
pub fn calibrate(
    cfg: &LabelConfig,
    config_dir: &Path,
    texts: &[&str],
    key: crate::client::ApiKey,
) -> Result<f64, LabelError> {
    let s = cfg.claude_settings()?;
    let rubric = cfg.load_rubric(config_dir)?;
    let mut all: Vec<&str> = vec![""];
    all.extend(texts.iter().filter(|t| !t.is_empty()));
    let counts = crate::claude::count_tokens(&s, &rubric, key, &all)?;
    let base = counts[0];
    let (mut bytes, mut tokens) = (0u64, 0u64);
    for (t, n) in all[1..].iter().zip(&counts[1..]) {
        bytes += truncate_utf8(t, s.max_doc_bytes).len() as u64;
        tokens += n.saturating_sub(base);
    }
    if tokens == 0 {
        return Err(LabelError::Other(
            "count_tokens reported no document tokens; cannot calibrate".into(),
        ));
    }
    Ok(bytes as f64 / tokens as f64)
}

/// What a dry run reads: the input files and the pipeline's `sample` step, if any.
#[derive(Debug, Clone)]
pub struct DryRunInput<'a> {
    /// Input files (parquet, or JSONL with one object per line), in the pipeline's order.
    pub paths: &'a [std::path::PathBuf],
    /// Text column.
    pub text_column: &'a str,
    /// Id column, if any.
    pub id_column: Option<&'a str>,
    /// The pipeline's `sample` step (every document is priced when `None`).
    pub sample: Option<&'a crate::SampleConfig>,
    /// The run seed (`[run] seed`).
    pub run_seed: u64,
}

/// The documents a dry run prices: the ones the `sample` step would select from the input
/// files, found by running that step's own observer and selection over them (same seed, strata
/// and allocation), as if no step before it removed anything. Two streaming passes; memory is
/// bounded like the step's and by the sample's texts.
pub fn draw_documents(input: &DryRunInput<'_>) -> Result<Vec<String>, LabelError> {
    use curate_core::{BuildEnv, Counters, StageContext, StepSpec, TaskContext};
    let Some(sample) = input.sample else {
        let mut all = Vec::new();
        for_each_batch(input, |b| {
            all.extend((0..b.len()).map(|i| b.text(i).to_string()));
            Ok(())
        })?;
        return Ok(all);
    };
    let env = BuildEnv {
        seed: input.run_seed,
        index: 0,
        text_column: input.text_column.to_string(),
        id_column: input.id_column.map(str::to_string),
        previous: vec![],
        config_dir: std::path::PathBuf::new(),
    };
    let step = sample.build(&env)?;
    let barrier = step.barrier().expect("sample is a barrier");
    let dir = std::env::temp_dir().join(format!(
        "curate-dry-run-{}-{}",
        std::process::id(),
        crate::util::now_unix() as u64
    ));
    std::fs::create_dir_all(&dir).map_err(|e| LabelError::io(&dir, e))?;
    let result = (|| {
        let dirs = vec![dir.clone()];
        let tcx = TaskContext {
            task: 0,
            tasks: 1,
            dir: &dir,
            step_dirs: &dirs,
            seed: input.run_seed,
        };
        let mut counters = Counters::default();
        let mut obs = barrier.observer(&tcx)?;
        for_each_batch(input, |b| Ok(obs.observe(b, &mut counters)?))?;
        obs.finish(&mut counters)?;
        let m = std::sync::Mutex::new(Counters::default());
        let scx = StageContext {
            stage: 0,
            task: 0,
            dir: &dir,
            step_dirs: &dirs,
            observed_tasks: 1,
            seed: input.run_seed,
            counters: &m,
        };
        barrier.run_stage_task(&scx)?;
        let mut proc_ = step.processor(&tcx)?;
        let mut out = Vec::new();
        for_each_batch(input, |b| {
            let mut b = b.clone();
            proc_.process(&mut b, &mut counters)?;
            let split = b.column("split").expect("split column").clone();
            for i in 0..b.len() {
                if !arrow::array::Array::is_null(&split, i) {
                    out.push(b.text(i).to_string());
                }
            }
            Ok(())
        })?;
        Ok::<_, LabelError>(out)
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

impl From<curate_core::StepError> for LabelError {
    fn from(e: curate_core::StepError) -> Self {
        LabelError::Other(e.to_string())
    }
}

/// Streams the inputs as document batches with the pipeline's document keys (file ordinal,
/// row), every column as read (JSONL: string fields).
fn for_each_batch(
    input: &DryRunInput<'_>,
    mut f: impl FnMut(&curate_core::DocBatch) -> Result<(), LabelError>,
) -> Result<(), LabelError> {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, RecordBatch, StringArray, UInt64Array};
    use arrow::datatypes::{DataType, Field, Schema};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    let mut emit = |rb: RecordBatch,
                    ordinal: usize,
                    row: &mut u64,
                    p: &std::path::Path|
     -> Result<(), LabelError> {
        let perr = |m: String| LabelError::Parquet {
            path: p.to_path_buf(),
            message: m,
        };
        let t = rb
            .schema()
            .index_of(input.text_column)
            .map_err(|_| perr(format!("missing column `{}`", input.text_column)))?;
        let mut rb = rb;
        if rb.column(t).data_type() != &DataType::Utf8 {
            let c = arrow::compute::cast(rb.column(t), &DataType::Utf8)
                .map_err(|e| perr(e.to_string()))?;
            let mut cols = rb.columns().to_vec();
            cols[t] = c;
            let mut fields: Vec<Field> = rb
                .schema()
                .fields()
                .iter()
                .map(|f| f.as_ref().clone())
                .collect();
            fields[t] = Field::new(input.text_column, DataType::Utf8, true);
            rb = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)
                .map_err(|e| perr(e.to_string()))?;
        }
        let id = input.id_column.and_then(|c| rb.schema().index_of(c).ok());
        let n = rb.num_rows() as u64;
        let keys = UInt64Array::from_iter_values(
            (*row..*row + n).map(|r| curate_core::batch::doc_key(ordinal as u32, r)),
        );
        *row += n;
        f(&curate_core::DocBatch::new(rb, t, id, keys))
    };
    for (ordinal, p) in input.paths.iter().enumerate() {
        let mut row = 0u64;
        let ext = p
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        if ext == "parquet" {
            let file = std::fs::File::open(p).map_err(|e| LabelError::io(p, e))?;
            let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                .and_then(|b| b.with_batch_size(8192).build())
                .map_err(|e| LabelError::Parquet {
                    path: p.clone(),
                    message: e.to_string(),
                })?;
            for rb in reader {
                let rb = rb.map_err(|e| LabelError::Parquet {
                    path: p.clone(),
                    message: e.to_string(),
                })?;
                emit(rb, ordinal, &mut row, p)?;
            }
        } else if ext == "jsonl" || ext == "json" {
            let mut rows: Vec<serde_json::Map<String, serde_json::Value>> = Vec::new();
            let mut flush = |rows: &mut Vec<serde_json::Map<String, serde_json::Value>>,
                             row: &mut u64|
             -> Result<(), LabelError> {
                if rows.is_empty() {
                    return Ok(());
                }
                let mut names: Vec<String> = rows.iter().flat_map(|r| r.keys().cloned()).collect();
                names.sort();
                names.dedup();
                let cols: Vec<ArrayRef> = names
                    .iter()
                    .map(|n| {
                        Arc::new(
                            rows.iter()
                                .map(|r| {
                                    r.get(n).filter(|v| !v.is_null()).map(|v| {
                                        v.as_str()
                                            .map(str::to_string)
                                            .unwrap_or_else(|| v.to_string())
                                    })
                                })
                                .collect::<StringArray>(),
                        ) as ArrayRef
                    })
                    .collect();
                let schema = Arc::new(Schema::new(
                    names
                        .iter()
                        .map(|n| Field::new(n, DataType::Utf8, true))
                        .collect::<Vec<_>>(),
                ));
                let rb = RecordBatch::try_new(schema, cols)
                    .map_err(|e| LabelError::Other(e.to_string()))?;
                rows.clear();
                emit(rb, ordinal, row, p)
            };
            crate::util::read_jsonl(p, |_, m| {
                rows.push(m);
                if rows.len() == 4096 {
                    flush(&mut rows, &mut row)
                } else {
                    Ok(())
                }
            })?;
            flush(&mut rows, &mut row)?;
        } else {
            return Err(LabelError::Input {
                path: p.clone(),
                message: "the dry run reads parquet and JSONL inputs only (decompress .gz/.zst inputs first)".into(),
            });
        }
    }
    Ok(())
}
