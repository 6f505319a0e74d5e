//! `gopher_repetition`: Gopher's repetition heuristics (Rae et al. 2021, table A1), as datatrove
//! 0.10.1's `GopherRepetitionFilter` applies them.

use curate_core::{BuildEnv, Problems, Step, StepError, StepSpec};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::filter::{Doc, FilterStep, TextFilter, Verdict};
use crate::gopher_quality::{d_language, validate_language};
use crate::text::{CountTable, KeySet, SeenTwice, char_len, find_duplicates, py_strip};
use crate::words::{Span, shared_words};

/// Drops documents with too much repeated content: duplicated paragraphs and lines (by count and
/// by characters), a too frequent top 2-, 3- or 4-gram, or too many characters in duplicated 5- to
/// 10-grams.
///
/// Why: repetitive pages (spam, templates, scraped lists) are the main thing Gopher's recipe
/// removes after the quality rules; language models trained on them degrade.
///
/// Paragraphs are `text.strip()` split on two or more newlines, lines are the text split on one
/// or more newlines; character fractions are over the whole text's characters. Words are spaCy's
/// blank-English tokens. Rules run in datatrove's order; the first failing one names the reason.
/// A fraction set to 0 disables its rule. An empty text is dropped with reason `empty`.
///
/// A document longer than 1 MiB is decided on its first 1 MiB, cut back to the last line break
/// in it (the n-gram tables take about 20 bytes per byte of text; see
/// [`crate::filter::PREFIX_BYTES`]), and counted in the step's `decided_on_prefix` counter;
/// it is kept or dropped whole. Shorter documents are decided exactly as datatrove does.
///
/// Example:
///
/// ```toml
/// [[steps]]
/// type = "gopher_repetition"
/// dup_line_frac = 0.3
/// top_n_grams = [[2, 0.2], [3, 0.18], [4, 0.16]]
/// ```
///
/// Reasons: `empty`, `dup_para_frac`, `dup_para_char_frac`, `dup_line_frac`,
/// `dup_line_char_frac`, `top_{n}_gram`, `duplicated_{n}_n_grams`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GopherRepetitionConfig {
    /// Maximum share of lines that repeat an earlier line (reason `dup_line_frac`).
    #[serde(default = "d_dup_line_frac")]
    pub dup_line_frac: f64,
    /// Maximum share of paragraphs that repeat an earlier paragraph (reason `dup_para_frac`).
    #[serde(default = "d_dup_para_frac")]
    pub dup_para_frac: f64,
    /// Maximum share of characters in repeated lines (reason `dup_line_char_frac`).
    #[serde(default = "d_dup_line_char_frac")]
    pub dup_line_char_frac: f64,
    /// Maximum share of characters in repeated paragraphs (reason `dup_para_char_frac`).
    #[serde(default = "d_dup_para_char_frac")]
    pub dup_para_char_frac: f64,
    /// `[n, max_fraction]` pairs: the most frequent n-gram's characters (n-gram length with
    /// spaces × count) over the text's characters (reason `top_{n}_gram`).
    #[serde(default = "d_top_n_grams")]
    pub top_n_grams: Vec<(u32, f64)>,
    /// `[n, max_fraction]` pairs: characters in non-overlapping repeated n-grams over the text's
    /// characters (reason `duplicated_{n}_n_grams`).
    #[serde(default = "d_dup_n_grams")]
    pub dup_n_grams: Vec<(u32, f64)>,
    /// Language of the word splitter; only `en` (spaCy's blank English tokenizer) is supported.
    #[serde(default = "d_language")]
    pub language: String,
}

fn d_dup_line_frac() -> f64 {
    0.3
}
fn d_dup_para_frac() -> f64 {
    0.3
}
fn d_dup_line_char_frac() -> f64 {
    0.2
}
fn d_dup_para_char_frac() -> f64 {
    0.2
}
fn d_top_n_grams() -> Vec<(u32, f64)> {
    vec![(2, 0.2), (3, 0.18), (4, 0.16)]
}
fn d_dup_n_grams() -> Vec<(u32, f64)> {
    vec![
        (5, 0.15),
        (6, 0.14),
        (7, 0.13),
        (8, 0.12),
        (9, 0.11),
        (10, 0.10),
    ]
}

impl Default for GopherRepetitionConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults")
    }
}

impl StepSpec for GopherRepetitionConfig {
    const TYPE: &'static str = "gopher_repetition";

    fn validate(&self, problems: &mut Problems) {
        problems.ratio("dup_line_frac", self.dup_line_frac);
        problems.ratio("dup_para_frac", self.dup_para_frac);
        problems.ratio("dup_line_char_frac", self.dup_line_char_frac);
        problems.ratio("dup_para_char_frac", self.dup_para_char_frac);
        for (field, list) in [
            ("top_n_grams", &self.top_n_grams),
            ("dup_n_grams", &self.dup_n_grams),
        ] {
            for &(n, f) in list {
                if !(1..=64).contains(&n) {
                    problems.push(field, format!("n = {n} is out of range; allowed: 1 to 64"));
                }
                if !(0.0..=1.0).contains(&f) {
                    problems.push(
                        field,
                        format!("fraction {f} for n = {n} is out of range; allowed: 0 to 1"),
                    );
                }
            }
        }
        validate_language(&self.language, problems);
    }

    fn build(&self, _env: &BuildEnv) -> Result<Box<dyn Step>, StepError> {
        Ok(FilterStep::boxed(GopherRepetition::new(self.clone())))
    }
}

/// The runtime filter.
#[derive(Debug)]
pub struct GopherRepetition {
    cfg: GopherRepetitionConfig,
    reasons: Vec<&'static str>,
    /// The distinct n of `top_n_grams` (n >= 1), ascending.
    top_levels: Vec<usize>,
    /// Documents longer than this are decided on their prefix.
    prefix_bytes: usize,
}

crate::reasons! {
    EMPTY = "empty",
    DUP_PARA_FRAC = "dup_para_frac",
    DUP_PARA_CHAR_FRAC = "dup_para_char_frac",
    DUP_LINE_FRAC = "dup_line_frac",
    DUP_LINE_CHAR_FRAC = "dup_line_char_frac",
}

/// Reason number of the first `top_{n}_gram` reason (one per `top_n_grams` entry, then one
/// `duplicated_{n}_n_grams` per `dup_n_grams` entry): the fixed reasons come first.
const TOP_N_GRAMS: usize = REASONS.len();

impl GopherRepetition {
    /// Builds the filter from its config.
    pub fn new(cfg: GopherRepetitionConfig) -> Self {
        let mut reasons: Vec<&'static str> = REASONS.to_vec();
        for &(n, _) in &cfg.top_n_grams {
            reasons.push(leak(format!("top_{n}_gram")));
        }
        for &(n, _) in &cfg.dup_n_grams {
            reasons.push(leak(format!("duplicated_{n}_n_grams")));
        }
        let mut top_levels: Vec<usize> = cfg
            .top_n_grams
            .iter()
            .map(|&(n, _)| n as usize)
            .filter(|&n| n >= 1)
            .collect();
        top_levels.sort_unstable();
        top_levels.dedup();
        Self {
            cfg,
            reasons,
            top_levels,
            prefix_bytes: crate::filter::PREFIX_BYTES,
        }
    }

    /// The filter deciding documents longer than `limit` bytes on their prefix (tests use small
    /// limits; the step uses [`crate::filter::PREFIX_BYTES`]).
    pub fn with_prefix_bytes(mut self, limit: usize) -> Self {
        self.prefix_bytes = limit;
        self
    }
}

/// Reason names are built once per step from its config; the handful of strings lives for the
/// program (a step is built once per run).
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// Reusable working memory.
#[derive(Debug, Default)]
pub struct Scratch {
    seen: KeySet,
    /// The document's words concatenated without separator (what datatrove's `"".join` builds).
    cat: Vec<u8>,
    /// Prefix sums over the words: byte offsets into `cat`, and characters. One more entry than
    /// words.
    offs: Vec<u32>,
    chars: Vec<u32>,
    /// Each word's id (xxh3, or `short_key` up to [`SIG`] bytes) times [`SEQ_MUL`]: its
    /// identity in the space-joined n-grams of `top_n_grams`.
    ids: Vec<u64>,
    /// Per word position: the largest n (of `top_n_grams`) whose n-gram starting here is
    /// known to repeat; 0 for none.
    rep: Vec<u8>,
    /// (n, count, first index) of the most common n-gram, per distinct n of `top_n_grams`.
    top: Vec<(usize, u32, u32)>,
    /// Per word boundary: the [`SIG`] bytes after it (`start`) / before it (`end`) may occur at
    /// another boundary too (all that do are marked).
    start: Vec<bool>,
    end: Vec<bool>,
    /// Candidate start positions (see `ngram_rules`).
    cands: Vec<u32>,
    /// The candidates whose n-gram the current `dup_n_grams` rule hashes.
    hashed: Vec<u32>,
    /// The [`SIG`]-byte keys of the word boundaries, for `start` then for `end`.
    sigs: Vec<u64>,
    /// Per word position: the key of the n-gram starting there (`top_n_grams`, current n).
    keys: Vec<u64>,
    table: CountTable,
    /// The n-grams seen in the current `dup_n_grams` rule.
    dup_seen: KeySet,
    twice: SeenTwice,
}

/// Bytes of the concatenation compared up front to find the positions where a duplicated
/// n-gram can start.
const SIG: usize = 16;

/// Hash of the space-joined n-gram of words whose ids, multiplied by [`SEQ_MUL`], are `ids`,
/// folded left to right with [`seq_step`] (so the key of an n-gram extends the key of its first
/// n-1 words).
#[inline]
fn seq_key(ids: &[u64]) -> u64 {
    ids.iter().fold(0, |h, &w| seq_step(h, w))
}

/// The multiplier applied to each word id before [`seq_step`].
const SEQ_MUL: u64 = 0x9E37_79B9_7F4A_7C15;

/// One word (its id times [`SEQ_MUL`]) more in [`seq_key`].
#[inline]
fn seq_step(h: u64, w: u64) -> u64 {
    h.rotate_left(23) ^ w
}

impl TextFilter for GopherRepetition {
    type Scratch = Scratch;

    fn kind(&self) -> &'static str {
        GopherRepetitionConfig::TYPE
    }

    fn reasons(&self) -> &[&'static str] {
        &self.reasons
    }

    fn prefix_bytes(&self) -> Option<usize> {
        Some(self.prefix_bytes)
    }

    fn check(&self, doc: Doc<'_>, sc: &mut Scratch, _: &mut String) -> Verdict {
        let c = &self.cfg;
        let text = doc.text;
        if text.is_empty() {
            return Verdict::Drop(EMPTY);
        }
        let total = char_len(text) as f64;
        let stripped = py_strip(text);
        let mut n_paras = 0usize;
        let paras = split_newline_runs(stripped, 2).inspect(|_| n_paras += 1);
        let max_items = memchr::memchr_iter(b'\n', text.as_bytes()).count() + 1;
        let (dups, dup_chars) = find_duplicates(paras, max_items, &mut sc.seen);
        if c.dup_para_frac > 0.0 && dups as f64 / n_paras as f64 > c.dup_para_frac {
            return Verdict::Drop(DUP_PARA_FRAC);
        }
        if c.dup_para_char_frac > 0.0 && dup_chars as f64 / total > c.dup_para_char_frac {
            return Verdict::Drop(DUP_PARA_CHAR_FRAC);
        }
        let mut n_lines = 0usize;
        let lines = split_newline_runs(text, 1).inspect(|_| n_lines += 1);
        let (dups, dup_chars) = find_duplicates(lines, max_items, &mut sc.seen);
        if c.dup_line_frac > 0.0 && dups as f64 / n_lines as f64 > c.dup_line_frac {
            return Verdict::Drop(DUP_LINE_FRAC);
        }
        if c.dup_line_char_frac > 0.0 && dup_chars as f64 / total > c.dup_line_char_frac {
            return Verdict::Drop(DUP_LINE_CHAR_FRAC);
        }
        if c.top_n_grams.is_empty() && c.dup_n_grams.is_empty() {
            return Verdict::Keep;
        }
        shared_words(text, |words| self.ngram_rules(text, words, total, sc))
    }
}

impl GopherRepetition {
    /// The n-gram rules over the document's words.
    ///
    /// Most n-grams of a document occur once, and those can neither be a duplicate nor the most
    /// frequent n-gram (when any n-gram repeats), so the rules hash and count only the n-grams
    /// that may repeat, with exactly datatrove's sequential semantics:
    ///
    /// - `top_n_grams`, n ascending: an n-gram of words that repeats starts with an (n-1)-gram
    ///   that repeats, so each n looks only at the positions where the previous n found a
    ///   repeat (the smallest n at every position); of those, a [`SeenTwice`] filter passes the
    ///   ones whose key may occur twice (every occurrence of a repeated n-gram, and ~3 % of the
    ///   others), and only these are counted exactly.
    /// - `dup_n_grams`: two equal concatenations of at least [`SIG`] bytes start with the same
    ///   [`SIG`] bytes and end with the same [`SIG`] bytes; a [`SeenTwice`] pass marks the word
    ///   boundaries where the next (and the previous) [`SIG`] bytes may occur at another boundary
    ///   too, and only n-grams from such boundaries (or shorter than [`SIG`] bytes) are hashed
    ///   whole.
    fn ngram_rules(&self, text: &str, words: &[Span], total: f64, sc: &mut Scratch) -> Verdict {
        let c = &self.cfg;
        let nw = words.len();
        sc.offs.clear();
        sc.chars.clear();
        sc.ids.clear();
        let t = text.as_bytes();
        // Room for a whole SIG-byte block at every word start, the last one included: the bytes
        // past the concatenation are never compared (keys mask them, see `short_key`).
        if sc.cat.len() < text.len() + SIG {
            sc.cat.resize(text.len() + SIG, 0);
        }
        sc.offs.reserve(nw + 1);
        sc.chars.reserve(nw + 1);
        sc.ids.reserve(nw);
        sc.offs.push(0);
        sc.chars.push(0);
        let (mut off, mut chars) = (0usize, 0u32);
        // One pass over the words: the concatenation, its prefix sums, the word ids (multiplied
        // as `seq_step` needs them).
        for &(a, b) in words {
            let (a, b) = (a as usize, b as usize);
            let w = &t[a..b];
            let len = b - a;
            match t.get(a..a + SIG) {
                // A short word: one fixed-size copy (the bytes past it are overwritten by the
                // next word or never read).
                Some(block) if len <= SIG => sc.cat[off..off + SIG].copy_from_slice(block),
                _ => sc.cat[off..off + len].copy_from_slice(w),
            }
            let (id, n_chars) = if len <= SIG {
                let (lo, hi) = short_words(&sc.cat[off..off + SIG], len);
                (short_key(lo, hi, len), len - continuation_bytes(lo, hi))
            } else {
                (xxhash_rust::xxh3::xxh3_64(w), char_len(&text[a..b]))
            };
            sc.ids.push(id.wrapping_mul(SEQ_MUL));
            off += len;
            chars += n_chars as u32;
            sc.offs.push(off as u32);
            sc.chars.push(chars);
        }
        let cat_len = off;

        if !c.top_n_grams.is_empty() {
            // Per distinct n, ascending: (count, first index) of Counter.most_common(1) (the
            // highest count, ties to the first seen; when nothing repeats, the first n-gram).
            sc.rep.clear();
            sc.rep.resize(nw + 1, 0);
            sc.top.clear();
            // The key of the n-gram starting at each candidate position: the key of its first
            // n-1 words extended by one (`seq_step` folds left to right).
            let ids = &sc.ids;
            let keys = &mut sc.keys;
            // Positions whose n-gram may repeat, ascending: every position for the smallest n,
            // then those where the previous n found a repeat.
            let mut cands = std::mem::take(&mut sc.cands);
            cands.clear();
            let mut level = 0usize;
            for &n in &self.top_levels {
                if n > nw {
                    break;
                }
                // Most n-grams occur once: count exactly only those that may repeat (every
                // occurrence of a repeated one may, so counts and first indices are exact; when
                // nothing repeats, the top n-gram is the first one, count 1).
                if level == 0 {
                    keys.clear();
                    if n == 2 {
                        keys.extend(ids.windows(2).map(|w| seq_step(w[0], w[1])));
                    } else {
                        keys.extend(ids.windows(n).map(seq_key));
                    }
                    sc.twice.reset(keys.len());
                    for &key in keys.iter() {
                        sc.twice.add(key);
                    }
                    cands.extend(0..keys.len() as u32);
                    keep_where(&mut cands, |i| sc.twice.may_repeat(keys[i as usize]));
                } else {
                    // Ascending: the positions with a whole n-gram are a prefix.
                    cands.truncate(cands.partition_point(|&i| i as usize + n <= nw));
                    sc.twice.reset(cands.len());
                    for &i in &cands {
                        let i = i as usize;
                        let key = ids[i + level..i + n]
                            .iter()
                            .fold(keys[i], |h, &w| seq_step(h, w));
                        keys[i] = key;
                        sc.twice.add(key);
                    }
                    keep_where(&mut cands, |i| sc.twice.may_repeat(keys[i as usize]));
                }
                let mut best = (1u32, 0u32);
                sc.table.reset(cands.len());
                for &i in &cands {
                    let i = i as usize;
                    let (cnt, first) = sc.table.bump(keys[i], i as u32);
                    if cnt >= 2 {
                        sc.rep[first as usize] = n as u8;
                        sc.rep[i] = n as u8;
                        if cnt > best.0 || (cnt == best.0 && first < best.1) {
                            best = (cnt, first);
                        }
                    }
                }
                sc.top.push((n, best.0, best.1));
                // An n'-gram (n' > n) that repeats starts with an n-gram that repeats.
                keep_where(&mut cands, |i| sc.rep[i as usize] as usize >= n);
                level = n;
            }
            sc.cands = cands;
            for (k, &(n, frac)) in c.top_n_grams.iter().enumerate() {
                let n = n as usize;
                let Some(&(_, count, first)) = sc.top.iter().find(|t| t.0 == n) else {
                    continue; // n == 0 or fewer words than n
                };
                let f = first as usize;
                let chars = (sc.chars[f + n] - sc.chars[f]) as usize + n - 1;
                if (chars * count as usize) as f64 / total > frac {
                    return Verdict::Drop(TOP_N_GRAMS + k);
                }
            }
        }

        if c.dup_n_grams.is_empty() || nw == 0 {
            return Verdict::Keep;
        }
        // start[i]: the SIG bytes from boundary i may occur after another boundary; end[k]: the
        // SIG bytes up to boundary k may occur before another boundary (every repeat is marked).
        let first_short = sc.offs[..nw].partition_point(|&o| cat_len - o as usize >= SIG);
        let first_full_end = sc.offs.partition_point(|&o| (o as usize) < SIG);
        let mut start = std::mem::take(&mut sc.start);
        let mut end = std::mem::take(&mut sc.end);
        let cat = &sc.cat[..];
        // Each key is computed once, kept, then looked up after all are added.
        sc.sigs.clear();
        sc.sigs.extend(
            sc.offs[..first_short]
                .iter()
                .map(|&o| sig_key(&cat[o as usize..o as usize + SIG])),
        );
        mark_repeats(&mut sc.twice, &mut start, nw + 1, 0, &sc.sigs);
        sc.sigs.clear();
        sc.sigs.extend(
            sc.offs[first_full_end..]
                .iter()
                .map(|&o| sig_key(&cat[o as usize - SIG..o as usize])),
        );
        mark_repeats(&mut sc.twice, &mut end, nw + 1, first_full_end, &sc.sigs);
        sc.start = start;
        sc.end = end;
        // Positions that may start a repeated n-gram for some n of the rules: a repeated SIG-byte
        // start, or an n-gram shorter than SIG bytes (for the smallest n, hence for all).
        let n_min = c
            .dup_n_grams
            .iter()
            .map(|&(n, _)| n as usize)
            .min()
            .unwrap_or(0);
        let mut cands = std::mem::take(&mut sc.cands);
        cands.clear();
        cands.extend(0..nw as u32);
        keep_where(&mut cands, |i| {
            let i = i as usize;
            sc.start[i] | (i + n_min <= nw && ((sc.offs[i + n_min] - sc.offs[i]) as usize) < SIG)
        });
        let mut verdict = Verdict::Keep;
        let mut hashed = std::mem::take(&mut sc.hashed);
        'rules: for (k, &(n, frac)) in c.dup_n_grams.iter().enumerate() {
            let n = n as usize;
            if n == 0 || nw < n {
                continue; // no n-gram at all: nothing repeated (0 / total passes any fraction)
            }
            // The candidates with a whole n-gram (a prefix: they ascend) that is shorter than
            // SIG bytes or starts and ends at marked boundaries; the others occur nowhere else.
            let (offs, start, end) = (&sc.offs, &sc.start, &sc.end);
            hashed.clear();
            hashed.extend_from_slice(&cands[..cands.partition_point(|&i| i as usize + n <= nw)]);
            keep_where(&mut hashed, |i| {
                let i = i as usize;
                ((offs[i + n] - offs[i]) as usize <= SIG) | (start[i] & end[i + n])
            });
            if hashed.len() < 2 {
                continue; // no two that can be equal
            }
            sc.dup_seen.reset(hashed.len());
            let mut repeated = 0usize;
            // datatrove's loop visits every idx it does not skip; an n-gram that is not hashed
            // occurs nowhere else, so visiting it changes nothing but idx += 1.
            let mut idx = 0usize;
            for &i in &hashed {
                let i = i as usize;
                if i < idx {
                    continue; // inside a duplicate just counted
                }
                let (a, b) = (sc.offs[i] as usize, sc.offs[i + n] as usize);
                let len = b - a;
                // The n words concatenated without separator (datatrove joins with "").
                let key = if len <= SIG {
                    let (lo, hi) = short_words(&sc.cat[a..a + SIG], len);
                    short_key(lo, hi, len)
                } else {
                    xxhash_rust::xxh3::xxh3_64(&sc.cat[a..b])
                };
                if !sc.dup_seen.insert(key) {
                    repeated += (sc.chars[i + n] - sc.chars[i]) as usize;
                    if repeated as f64 / total > frac {
                        // The fraction only grows from here.
                        verdict = Verdict::Drop(TOP_N_GRAMS + c.top_n_grams.len() + k);
                        break 'rules;
                    }
                    idx = i + n;
                } else {
                    idx = i + 1;
                }
            }
        }
        sc.hashed = hashed;
        sc.cands = cands;
        verdict
    }
}

/// The first `len` (at most [`SIG`]) bytes of `block` (at least [`SIG`] bytes long) as two
/// little-endian words, the bytes past `len` zeroed.
#[inline]
fn short_words(block: &[u8], len: usize) -> (u64, u64) {
    let lo = u64::from_le_bytes(block[..8].try_into().expect("8 bytes"));
    let hi = u64::from_le_bytes(block[8..16].try_into().expect("8 bytes"));
    let (mlo, mhi) = SHORT_MASKS[len];
    (lo & mlo, hi & mhi)
}

/// Per length 0..=16: the masks keeping that many bytes of two little-endian words.
static SHORT_MASKS: [(u64, u64); SIG + 1] = {
    let mut m = [(0u64, 0u64); SIG + 1];
    const fn keep(n: usize) -> u64 {
        if n >= 8 {
            u64::MAX
        } else {
            (1u64 << (8 * n)) - 1
        }
    }
    let mut len = 0;
    while len <= SIG {
        m[len] = (keep(len), keep(len.saturating_sub(8)));
        len += 1;
    }
    m
};

/// UTF-8 continuation bytes among the bytes of `lo` and `hi` (zero bytes are not).
#[inline]
fn continuation_bytes(lo: u64, hi: u64) -> usize {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    if (lo | hi) & HIGH == 0 {
        return 0;
    }
    // Bit 7 set and bit 6 clear: 10xxxxxx.
    let cont = |x: u64| (x & !(x << 1) & HIGH).count_ones() as usize;
    cont(lo) + cont(hi)
}

/// A 64-bit key of a string of `len` (at most [`SIG`]) bytes given as [`short_words`]: equal
/// strings, equal keys; different strings get different keys but for 64-bit hash collisions (as
/// with xxh3).
#[inline]
fn short_key(lo: u64, hi: u64, len: usize) -> u64 {
    // xxh3's 128-bit multiply-fold of the two halves, seeded by the length, then a final mix.
    let a = lo ^ 0x1cad_21f7_2c81_017c ^ (len as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let b = hi ^ 0xdb97_9083_e96d_d4de;
    let m = (a as u128).wrapping_mul(b as u128);
    let h = (m as u64) ^ ((m >> 64) as u64) ^ lo.rotate_left(29) ^ hi.rotate_left(47);
    let h = (h ^ (h >> 37)).wrapping_mul(0x1656_6791_9E37_79F9);
    h ^ (h >> 32)
}

/// A 64-bit key of `b`, [`SIG`] bytes long (equal bytes, equal keys).
#[inline]
fn sig_key(b: &[u8]) -> u64 {
    let b: &[u8; SIG] = b.try_into().expect("SIG bytes");
    let x = u64::from_le_bytes(b[..8].try_into().expect("8 bytes"));
    let y = u64::from_le_bytes(b[8..16].try_into().expect("8 bytes"));
    x.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ y.wrapping_mul(0xC2B2_AE3D_27D4_EB4F).rotate_left(31)
}

/// Sets `marks` to `len` falses, then marks each position `from + j` whose key `keys[j]` equals
/// another of `keys` (and, through the filter's false positives, about 3 % of the others: the
/// marks only narrow down where repeats are looked for).
fn mark_repeats(
    twice: &mut SeenTwice,
    marks: &mut Vec<bool>,
    len: usize,
    from: usize,
    keys: &[u64],
) {
    marks.clear();
    marks.resize(len, false);
    twice.reset(keys.len());
    for &key in keys {
        twice.add(key);
    }
    for (m, &key) in marks[from..].iter_mut().zip(keys) {
        *m = twice.may_repeat(key);
    }
}

/// `v.retain(keep)` without a branch on `keep`'s answer (each element is written, and the write
/// position advances when it is kept): the answers are unpredictable (a third of the positions
/// of a text may repeat), and mispredicted branches cost more than the writes.
fn keep_where(v: &mut Vec<u32>, mut keep: impl FnMut(u32) -> bool) {
    let mut k = 0usize;
    for j in 0..v.len() {
        let x = v[j];
        v[k] = x;
        k += keep(x) as usize;
    }
    v.truncate(k);
}

/// Python's `re.split(r"\n{min,}", s)`: pieces between runs of at least `min` newlines.
fn split_newline_runs(s: &str, min: usize) -> impl Iterator<Item = &str> {
    let b = s.as_bytes();
    let mut pos = 0usize;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let mut i = pos;
        while let Some(off) = memchr::memchr(b'\n', &b[i..]) {
            let at = i + off;
            let run = b[at..].iter().take_while(|&&x| x == b'\n').count();
            if run >= min {
                let piece = &s[pos..at];
                pos = at + run;
                return Some(piece);
            }
            i = at + run;
        }
        done = true;
        Some(&s[pos..])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::testing::{batch, run};

    #[test]
    fn splits_like_python_re() {
        let v: Vec<&str> = split_newline_runs("\na\n\n\nb\nc\n", 1).collect();
        assert_eq!(v, ["", "a", "b", "c", ""]);
        let v: Vec<&str> = split_newline_runs("a\nb\n\nc", 2).collect();
        assert_eq!(v, ["a\nb", "c"]);
        let v: Vec<&str> = split_newline_runs("", 2).collect();
        assert_eq!(v, [""]);
    }

    #[test]
    fn reasons() {
        let cfg = GopherRepetitionConfig::default();
        let distinct: String = (0..80)
            .map(|i| format!("alpha{i} beta{i} gamma{i} delta{i}.\n"))
            .collect();
        let dup_lines = "same line here\nsame line here\nsame line here\nother\n".repeat(3);
        let ngram = "buy cheap pills now buy cheap pills now ".repeat(20) + &distinct;
        let texts = [
            "",
            distinct.as_str(),
            "para one\n\npara one\n\npara one\n\npara two",
            dup_lines.as_str(),
            ngram.as_str(),
        ];
        let got = run(&cfg, &mut batch(&texts), 0);
        assert_eq!(got[0].as_deref(), Some("empty"));
        assert_eq!(got[1], None);
        assert_eq!(got[2].as_deref(), Some("dup_para_frac"));
        assert_eq!(got[3].as_deref(), Some("dup_line_frac"));
        assert!(
            got[4]
                .as_deref()
                .is_some_and(|r| r.starts_with("top_") || r.starts_with("duplicated_")),
            "{:?}",
            got[4]
        );
    }

    #[test]
    fn long_documents_are_decided_on_their_prefix_and_counted() {
        use crate::filter::{FilterProcessor, decision_prefix};
        use curate_core::{Counters, Processor};
        let distinct: String = (0..40)
            .map(|i| format!("alpha{i} beta{i} gamma{i} delta{i}.\n"))
            .collect();
        let spam = "buy cheap pills now\n".repeat(50);
        // clean start, repetitive tail: dropped whole, kept on a prefix of the clean start
        let long = format!("{distinct}{spam}");
        let limit = distinct.len() + 5;
        assert_eq!(
            decision_prefix(&long, limit),
            distinct.trim_end_matches('\n')
        );
        let f = GopherRepetition::new(Default::default());
        let mut whole = FilterProcessor::new(std::sync::Arc::new(f));
        assert!(matches!(whole.check(&long, 0).0, Verdict::Drop(_)));
        let f = GopherRepetition::new(Default::default()).with_prefix_bytes(limit);
        let mut p = FilterProcessor::new(std::sync::Arc::new(f));
        assert_eq!(p.check(&long, 0).0, Verdict::Keep);
        // a document of exactly the limit is decided whole
        let at_limit = format!("{}{}", &distinct[..limit - 20], "x".repeat(20));
        assert_eq!(at_limit.len(), limit);
        let mut b = batch(&[
            long.as_str(),
            spam.as_str(),
            at_limit.as_str(),
            distinct.as_str(),
        ]);
        let mut c = Counters::default();
        p.process(&mut b, &mut c).unwrap();
        assert_eq!(c.0.get("decided_on_prefix"), Some(&1.0));
        let dropped: Vec<bool> = (0..4).map(|i| b.is_dropped(i)).collect();
        assert_eq!(dropped, [false, true, false, false]);
    }

    #[test]
    fn short_keys_ignore_the_bytes_past_the_string_and_count_characters() {
        let strings = [
            "",
            "a",
            "ab",
            "ba",
            "a\0",
            "abcdefgh",
            "abcdefghi",
            "é",
            "naïve",
            "日本語",
            "🦀x",
            "abcdefghijklmnop",
        ];
        let mut keys = std::collections::HashSet::new();
        for s in strings {
            let mut block = s.as_bytes().to_vec();
            let mut other = block.clone();
            block.resize(SIG, b'x');
            other.resize(SIG, 0xFF);
            let (lo, hi) = short_words(&block, s.len());
            assert_eq!((lo, hi), short_words(&other, s.len()), "{s:?}");
            assert_eq!(
                s.len() - continuation_bytes(lo, hi),
                s.chars().count(),
                "{s:?}"
            );
            assert!(keys.insert(short_key(lo, hi, s.len())), "{s:?}");
        }
    }

    #[test]
    fn config_pairs_from_toml() {
        let cfg: GopherRepetitionConfig =
            toml::from_str("top_n_grams = [[2, 0.5]]\ndup_n_grams = []").unwrap();
        let f = GopherRepetition::new(cfg);
        assert_eq!(f.reasons().last(), Some(&"top_2_gram"));
    }

    /// datatrove's n-gram rules written plainly (strings, `Counter`, `set`), for comparison.
    fn naive_ngram_reason(
        cfg: &GopherRepetitionConfig,
        words: &[&str],
        total: usize,
    ) -> Option<usize> {
        use std::collections::{HashMap, HashSet};
        for (k, &(n, frac)) in cfg.top_n_grams.iter().enumerate() {
            let n = n as usize;
            if words.len() < n {
                continue;
            }
            let mut counts: HashMap<String, (usize, usize)> = HashMap::new();
            for i in 0..=words.len() - n {
                let g = words[i..i + n].join(" ");
                let next = counts.len();
                counts.entry(g).or_insert((0, next)).0 += 1;
            }
            let (g, (cnt, _)) = counts
                .iter()
                .max_by(|a, b| a.1.0.cmp(&b.1.0).then(b.1.1.cmp(&a.1.1)))
                .unwrap();
            if (g.chars().count() * cnt) as f64 / total as f64 > frac {
                return Some(5 + k);
            }
        }
        for (k, &(n, frac)) in cfg.dup_n_grams.iter().enumerate() {
            let n = n as usize;
            let mut unique = HashSet::new();
            let (mut repeated, mut idx) = (0usize, 0usize);
            while idx + n <= words.len() {
                let g: String = words[idx..idx + n].concat();
                if unique.contains(&g) {
                    repeated += g.chars().count();
                    idx += n;
                } else {
                    unique.insert(g);
                    idx += 1;
                }
            }
            if repeated as f64 / total as f64 > frac {
                return Some(5 + cfg.top_n_grams.len() + k);
            }
        }
        None
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 1000, ..Default::default() })]
        /// The prefiltered, hashed n-gram rules decide exactly as the plain ones, on texts from a
        /// tiny vocabulary (many repeats, and concatenations that collide across word
        /// boundaries: "ab c" vs "a bc") and from distinct words with copied runs.
        #[test]
        fn ngram_rules_match_plain_semantics(
            picks in proptest::collection::vec(0usize..40, 0..300),
            repeat in proptest::collection::vec((0usize..300, 1usize..25, 0usize..300), 0..4),
            thresholds in proptest::collection::vec(0.0f64..0.6, 9),
        ) {
            const VOCAB: &[&str] = &[
                "a", "b", "ab", "c", "bc", "abc", "the", "é", "longerword", "abcdefgh", "ijklmnop",
                "abcdefghijklmnop",
            ];
            let mut words: Vec<String> = picks
                .iter()
                .map(|&i| VOCAB.get(i).map_or_else(|| format!("word{i}"), |w| w.to_string()))
                .collect();
            // Copy a few runs of words elsewhere: real repeats among mostly distinct text.
            for &(from, len, to) in &repeat {
                if from < words.len() && to <= words.len() {
                    let run: Vec<String> = words[from..(from + len).min(words.len())].to_vec();
                    words.splice(to..to, run);
                }
            }
            let text = words.join(" ");
            let cfg = GopherRepetitionConfig {
                dup_line_frac: 0.0,
                dup_para_frac: 0.0,
                dup_line_char_frac: 0.0,
                dup_para_char_frac: 0.0,
                top_n_grams: (2..=4).zip(thresholds[..3].iter().copied()).collect(),
                dup_n_grams: (5..=10).zip(thresholds[3..].iter().copied()).collect(),
                language: "en".into(),
            };
            let f = GopherRepetition::new(cfg.clone());
            let mut sc = Scratch::default();
            let got = f.check(Doc { text: &text, key: 0 }, &mut sc, &mut String::new());
            let words: Vec<&str> = text.split(' ').filter(|w| !w.is_empty()).collect();
            let want = if text.is_empty() {
                Some(0)
            } else {
                naive_ngram_reason(&cfg, &words, text.chars().count())
            };
            let got = match got {
                Verdict::Keep => None,
                Verdict::Drop(r) => Some(r),
                Verdict::Rewrite => unreachable!(),
            };
            proptest::prop_assert_eq!(got, want, "text: {:?}", text);
        }
    }
}
