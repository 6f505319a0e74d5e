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
    let bpt = cfg.bytes_per_token;
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

/// The documents a dry run prices: up to `size` documents of the input files drawn by the same
/// seeded hash as the `sample` step (its id, else its text), before any upstream filter and
/// ignoring strata — an approximation of the real sample with the same size and the same
/// length distribution. Reads parquet and JSONL; memory is bounded by `size` texts.
#[derive(Debug, Clone)]
pub struct DryRunInput<'a> {
    /// Input files (parquet, or JSONL with one object per line).
    pub paths: &'a [std::path::PathBuf],
    /// Text column.
    pub text_column: &'a str,
    /// Id column, if any.
    pub id_column: Option<&'a str>,
    /// Sample size (all documents when `None`).
    pub size: Option<usize>,
    /// The selection seed (the sample step's `seed`, else derived from the run seed).
    pub seed: u64,
}

/// Draws the dry run's documents from the inputs.
pub fn draw_documents(input: &DryRunInput<'_>) -> Result<Vec<String>, LabelError> {
    use std::collections::BinaryHeap;
    let k = input.size.unwrap_or(usize::MAX);
    let mut heap: BinaryHeap<(u64, u64, String)> = BinaryHeap::new();
    let mut ord = 0u64;
    let mut offer = |id: Option<&str>, text: &str| {
        let h = curate_core::hash::h64(id.unwrap_or(text).as_bytes(), input.seed);
        ord += 1;
        if heap.len() < k {
            heap.push((h, ord, text.to_string()));
        } else if heap.peek().is_some_and(|t| (h, ord) < (t.0, t.1)) {
            heap.pop();
            heap.push((h, ord, text.to_string()));
        }
    };
    for p in input.paths {
        if p.extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
        {
            let mut cols = vec![input.text_column];
            cols.extend(input.id_column);
            for rb in crate::util::read_parquet(p, Some(&cols))? {
                let t = crate::util::column(&rb, input.text_column, p)?;
                let id = input
                    .id_column
                    .map(|c| crate::util::column(&rb, c, p))
                    .transpose()?;
                for i in 0..rb.num_rows() {
                    let Some(text) = crate::util::str_value(t.as_ref(), i) else {
                        continue;
                    };
                    let idv = id.and_then(|c| crate::util::str_value(c.as_ref(), i));
                    offer(idv.as_deref(), &text);
                }
            }
        } else if p
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("jsonl") || e.eq_ignore_ascii_case("json"))
        {
            crate::util::read_jsonl(p, |n, m| {
                let text = m
                    .get(input.text_column)
                    .and_then(|v| v.as_str())
                    .ok_or_else(|| LabelError::Input {
                        path: p.clone(),
                        message: format!("line {n}: no string field `{}`", input.text_column),
                    })?;
                let id = input.id_column.and_then(|c| m.get(c)).map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string())
                });
                offer(id.as_deref(), text);
                Ok(())
            })?;
        } else {
            return Err(LabelError::Input {
                path: p.clone(),
                message: "the dry run reads parquet and JSONL inputs only (decompress .gz/.zst inputs first)".into(),
            });
        }
    }
    let mut v = heap.into_vec();
    v.sort();
    Ok(v.into_iter().map(|x| x.2).collect())
}
