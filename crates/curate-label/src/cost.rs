//! Prices, usage and the hard budget.
//!
//! Cost is computed from the `usage` object of each response (cache writes and reads
//! included), with the batch discount applied to every category. The budget is checked *before*
//! a request or batch is sent, against a worst-case bound of what it can cost, so it can never be
//! exceeded: see [`Budget::try_reserve`] and [`worst_case`].
//!
//! The bound comes in two strengths. [`worst_case`] needs nothing but the request's bytes (a
//! token is at least one byte); it is what most requests reserve. Near the cap, where that bound
//! no longer fits (with a tight budget, for every request), the API's own count of the request's
//! input tokens (`count_tokens`, free) gives a much smaller one, [`worst_case_counted`]: the
//! count plus [`count_margin`], every input token at the highest input or cache-write price,
//! `max_tokens` of output. An estimate from `bytes_per_token` alone could never promise the cap:
//! text that tokenizes worse than the estimate (code, non-Latin scripts) would overspend it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// USD per million tokens for one model (ANTHROPIC-API.md §8). Cache prices are absolute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Prices {
    /// Base input price (USD per million tokens).
    pub input: f64,
    /// Output price (thinking tokens bill as output).
    pub output: f64,
    /// 5-minute cache write price (1.25× input for current models).
    pub cache_write_5m: f64,
    /// 1-hour cache write price (2× input).
    pub cache_write_1h: f64,
    /// Cache read price (0.1× input).
    pub cache_read: f64,
    /// Multiplier applied to every category in the Message Batches API (0.5).
    #[serde(default = "half")]
    pub batch_discount: f64,
    /// Prompts whose total input exceeds this many tokens bill at the `long_*` prices (cache
    /// prices scale by the same factor as input).
    #[serde(default)]
    pub long_context_threshold: Option<u64>,
    /// Input price above `long_context_threshold`.
    #[serde(default)]
    pub long_input: Option<f64>,
    /// Output price above `long_context_threshold`.
    #[serde(default)]
    pub long_output: Option<f64>,
}

fn half() -> f64 {
    0.5
}

impl Prices {
    /// The built-in price table (standard, per million tokens) for models known at release.
    pub fn default_for(model: &str) -> Option<Prices> {
        let p = |input: f64, output: f64| Prices {
            input,
            output,
            cache_write_5m: input * 1.25,
            cache_write_1h: input * 2.0,
            cache_read: input * 0.1,
            batch_discount: 0.5,
            long_context_threshold: None,
            long_input: None,
            long_output: None,
        };
        Some(match model {
            m if m.starts_with("claude-haiku-5-5") => Prices {
                long_context_threshold: Some(100_000),
                long_input: Some(0.50),
                long_output: Some(2.50),
                ..p(0.10, 0.50)
            },
            m if m.starts_with("claude-haiku-4-5") => p(1.0, 5.0),
            m if m.starts_with("claude-sonnet-5-5") => p(2.0, 10.0),
            m if m.starts_with("claude-sonnet-4-6") => p(3.0, 15.0),
            "claude-sonnet-5" => p(2.0, 10.0),
            m if m.starts_with("claude-opus-5-5") => p(4.0, 20.0),
            m if m.starts_with("claude-fable-5-1") => p(10.0, 50.0),
            _ => return None,
        })
    }

    /// (input, output, cache_write_5m, cache_write_1h, cache_read) for a prompt of
    /// `total_input` tokens.
    fn rates(&self, total_input: u64) -> [f64; 5] {
        let long = self.long_context_threshold.is_some_and(|t| total_input > t);
        let (inp, out) = if long {
            (
                self.long_input.unwrap_or(self.input),
                self.long_output.unwrap_or(self.output),
            )
        } else {
            (self.input, self.output)
        };
        let f = if self.input > 0.0 {
            inp / self.input
        } else {
            1.0
        };
        [
            inp,
            out,
            self.cache_write_5m * f,
            self.cache_write_1h * f,
            self.cache_read * f,
        ]
    }
}

/// Token usage of one response, as reported in `usage`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Uncached input tokens.
    pub input_tokens: u64,
    /// Output tokens (thinking included).
    pub output_tokens: u64,
    /// Tokens written to the cache (all TTLs).
    pub cache_creation_input_tokens: u64,
    /// Tokens read from the cache.
    pub cache_read_input_tokens: u64,
    /// Of the cache writes, those with the 5-minute TTL (when the breakdown is reported).
    pub cache_write_5m: u64,
    /// Of the cache writes, those with the 1-hour TTL.
    pub cache_write_1h: u64,
}

impl Usage {
    /// Reads a `usage` JSON object. When the per-TTL breakdown is absent, all cache writes are
    /// attributed to `default_ttl_1h`'s TTL (the one the request asked for).
    pub fn from_json(v: &serde_json::Value, default_ttl_1h: bool) -> Usage {
        let g = |k: &str| v.get(k).and_then(|x| x.as_u64()).unwrap_or(0);
        let mut u = Usage {
            input_tokens: g("input_tokens"),
            output_tokens: g("output_tokens"),
            cache_creation_input_tokens: g("cache_creation_input_tokens"),
            cache_read_input_tokens: g("cache_read_input_tokens"),
            ..Usage::default()
        };
        match v.get("cache_creation") {
            Some(cc) if cc.is_object() => {
                u.cache_write_5m = cc
                    .get("ephemeral_5m_input_tokens")
                    .and_then(|x| x.as_u64())
                    .unwrap_or(0);
                u.cache_write_1h = cc
                    .get("ephemeral_1h_input_tokens")
                    .and_then(|x| x.as_u64())
                    .unwrap_or(0);
                // Anything the breakdown misses bills at the requested TTL.
                let rest = u
                    .cache_creation_input_tokens
                    .saturating_sub(u.cache_write_5m + u.cache_write_1h);
                if default_ttl_1h {
                    u.cache_write_1h += rest
                } else {
                    u.cache_write_5m += rest
                }
            }
            _ => {
                if default_ttl_1h {
                    u.cache_write_1h = u.cache_creation_input_tokens
                } else {
                    u.cache_write_5m = u.cache_creation_input_tokens
                }
            }
        }
        u
    }

    /// Total input tokens: uncached + cache writes + cache reads.
    pub fn total_input(&self) -> u64 {
        self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens
    }

    /// Adds another usage.
    pub fn add(&mut self, o: &Usage) {
        self.input_tokens += o.input_tokens;
        self.output_tokens += o.output_tokens;
        self.cache_creation_input_tokens += o.cache_creation_input_tokens;
        self.cache_read_input_tokens += o.cache_read_input_tokens;
        self.cache_write_5m += o.cache_write_5m;
        self.cache_write_1h += o.cache_write_1h;
    }
}

/// Cost in USD of one response.
pub fn cost(p: &Prices, u: &Usage, batch: bool) -> f64 {
    let [inp, out, w5, w1, rd] = p.rates(u.total_input());
    let usd = (u.input_tokens as f64 * inp
        + u.output_tokens as f64 * out
        + u.cache_write_5m as f64 * w5
        + u.cache_write_1h as f64 * w1
        + u.cache_read_input_tokens as f64 * rd)
        / 1e6;
    if batch { usd * p.batch_discount } else { usd }
}

/// A bound on the input tokens of a text: Claude's tokenizers are byte-level BPE, so a text never
/// has more tokens than UTF-8 bytes; `PART_OVERHEAD` covers the framing tokens of a part.
pub const PART_OVERHEAD: u64 = 16;

/// The highest price an input token of a request can bill at: input, or a cache write of the TTL
/// the request asks for (`ttl_1h`; the API writes no other).
fn top_input_rate(rates: &[f64; 5], ttl_1h: bool) -> f64 {
    let [inp, _, w5, w1, _] = *rates;
    inp.max(if ttl_1h { w1 } else { w5 })
}

/// Worst-case (input tokens, USD) of one request: the system prompt billed at the highest of
/// the input and (its TTL's) cache-write prices, the document at input price, `max_tokens` of
/// output.
pub fn worst_case(
    p: &Prices,
    system_bytes: usize,
    doc_bytes: usize,
    max_tokens: u32,
    batch: bool,
    ttl_1h: bool,
) -> (u64, f64) {
    let sys = system_bytes as u64 + PART_OVERHEAD;
    let doc = doc_bytes as u64 + PART_OVERHEAD;
    let total = sys + doc;
    let rates = p.rates(total);
    let usd = (sys as f64 * top_input_rate(&rates, ttl_1h)
        + doc as f64 * rates[0]
        + max_tokens as f64 * rates[1])
        / 1e6;
    (total, if batch { usd * p.batch_discount } else { usd })
}

/// Tokens added to a `count_tokens` answer (which the API calls an estimate) before it is
/// reserved: 2 % plus [`PART_OVERHEAD`].
pub fn count_margin(tokens: u64) -> u64 {
    tokens / 50 + PART_OVERHEAD
}

/// Worst-case (input tokens, USD) of one request whose input the API counted at `counted`
/// tokens: the count plus [`count_margin`], every input token at the highest of the input and
/// (its TTL's) cache-write prices (the count does not say which tokens are the cached rubric),
/// `max_tokens` of output.
pub fn worst_case_counted(
    p: &Prices,
    counted: u64,
    max_tokens: u32,
    batch: bool,
    ttl_1h: bool,
) -> (u64, f64) {
    let total = counted + count_margin(counted);
    let rates = p.rates(total);
    let usd = (total as f64 * top_input_rate(&rates, ttl_1h) + max_tokens as f64 * rates[1]) / 1e6;
    (total, if batch { usd * p.batch_discount } else { usd })
}

/// The hard budget: what has been spent, what is reserved by requests in flight, and the caps.
#[derive(Debug, Clone, Default)]
pub struct Budget {
    /// Cap in USD.
    pub max_usd: Option<f64>,
    /// Cap on total input tokens.
    pub max_input_tokens: Option<u64>,
    /// Spent (settled) USD.
    pub spent_usd: f64,
    /// Spent (settled) total input tokens.
    pub spent_input: u64,
    /// Reserved by requests or batches in flight.
    pub reserved_usd: f64,
    /// Reserved input tokens.
    pub reserved_input: u64,
}

impl Budget {
    /// A budget with the given caps and nothing spent.
    pub fn new(max_usd: Option<f64>, max_input_tokens: Option<u64>) -> Self {
        Budget {
            max_usd,
            max_input_tokens,
            ..Default::default()
        }
    }

    /// Reserves a worst case if it fits under both caps; returns false (reserving nothing)
    /// otherwise.
    pub fn try_reserve(&mut self, input: u64, usd: f64) -> bool {
        if let Some(m) = self.max_usd
            && self.spent_usd + self.reserved_usd + usd > m
        {
            return false;
        }
        if let Some(m) = self.max_input_tokens
            && self.spent_input + self.reserved_input + input > m
        {
            return false;
        }
        self.reserved_usd += usd;
        self.reserved_input += input;
        true
    }

    /// Reserves without checking (for a batch already submitted by an interrupted run).
    pub fn force_reserve(&mut self, input: u64, usd: f64) {
        self.reserved_usd += usd;
        self.reserved_input += input;
    }

    /// Releases a reservation and records what was actually spent.
    pub fn settle(
        &mut self,
        reserved_input: u64,
        reserved_usd: f64,
        actual_input: u64,
        actual_usd: f64,
    ) {
        self.reserved_usd = (self.reserved_usd - reserved_usd).max(0.0);
        self.reserved_input = self.reserved_input.saturating_sub(reserved_input);
        self.spent_usd += actual_usd;
        self.spent_input += actual_input;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haiku_batch_cost_matches_worked_example() {
        // ANTHROPIC-API.md §8: 100k docs × 1,500 doc tokens, a 600-token cached rubric, 50 output
        // tokens, via batch ≈ $9 (the rubric is read from cache after the first write).
        let p = Prices::default_for("claude-haiku-5-5").unwrap();
        let u = Usage {
            input_tokens: 1500,
            output_tokens: 50,
            cache_read_input_tokens: 600,
            ..Default::default()
        };
        let total = cost(&p, &u, true) * 100_000.0;
        assert!((total - 9.05).abs() < 1e-9, "{total}");
    }

    #[test]
    fn cache_writes_bill_by_ttl() {
        let p = Prices::default_for("claude-sonnet-5-5").unwrap();
        let v = serde_json::json!({"input_tokens": 10, "output_tokens": 0, "cache_creation_input_tokens": 1000,
            "cache_read_input_tokens": 0, "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 1000}});
        let u = Usage::from_json(&v, false);
        assert_eq!(u.cache_write_1h, 1000);
        let c = cost(&p, &u, false);
        assert!((c - (10.0 * 2.0 + 1000.0 * 4.0) / 1e6).abs() < 1e-12);
        // No breakdown: the requested TTL decides.
        let v = serde_json::json!({"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 1000});
        assert_eq!(Usage::from_json(&v, false).cache_write_5m, 1000);
        assert_eq!(Usage::from_json(&v, true).cache_write_1h, 1000);
    }

    #[test]
    fn long_context_tier() {
        let p = Prices::default_for("claude-haiku-5-5").unwrap();
        let u = Usage {
            input_tokens: 200_000,
            ..Default::default()
        };
        assert!((cost(&p, &u, false) - 0.1).abs() < 1e-12);
    }

    #[test]
    fn a_counted_request_reserves_less_than_its_byte_bound_and_more_than_it_costs() {
        let p = Prices::default_for("claude-sonnet-4-6").unwrap();
        // a 3 KB rubric and a 1 KB document at ~3 bytes per token, 256 output tokens, batch
        let (bi, bu) = worst_case(&p, 3000, 1000, 256, true, true);
        let counted = 1000 + 333;
        let (ci, cu) = worst_case_counted(&p, counted, 256, true, true);
        assert!(ci < bi && cu < bu, "{ci} {cu} vs {bi} {bu}");
        // the most such a request can cost: every counted token a cache write of the TTL it
        // asks for, all output
        let most = |ttl_1h: bool| Usage {
            cache_creation_input_tokens: counted,
            cache_write_1h: if ttl_1h { counted } else { 0 },
            cache_write_5m: if ttl_1h { 0 } else { counted },
            output_tokens: 256,
            ..Default::default()
        };
        assert!(cost(&p, &most(true), true) < cu);
        assert!(cu < 0.01, "a $0.01 budget buys such a request: {cu}");
        assert!(bu > 0.01, "the byte bound alone does not fit: {bu}");
        let (_, c5) = worst_case_counted(&p, counted, 256, true, false);
        assert!(c5 < cu);
        assert!(cost(&p, &most(false), true) < c5);
    }

    #[test]
    fn budget_never_reserves_past_the_cap() {
        let mut b = Budget::new(Some(1.0), Some(100));
        assert!(b.try_reserve(60, 0.6));
        assert!(!b.try_reserve(60, 0.3)); // tokens would exceed
        assert!(!b.try_reserve(10, 0.5)); // usd would exceed
        b.settle(60, 0.6, 20, 0.2);
        assert!(b.try_reserve(60, 0.5));
        assert!((b.spent_usd - 0.2).abs() < 1e-12);
    }
}
