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
