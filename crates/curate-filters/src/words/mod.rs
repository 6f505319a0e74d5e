//! Word splitting that agrees with spaCy's blank English tokenizer (`spacy.blank("en")`), which
//! is what datatrove 0.10.1's `split_into_words` uses for English, and its sentencizer (what the
//! C4 filter counts sentences with).
//!
//! The algorithm follows spaCy's: split the text on whitespace (Python's `str.isspace`); for each
//! chunk, peel prefixes and suffixes in turn (stopping at a tokenizer exception), then split the
//! remaining core on infixes unless it is an exception or a URL. The character classes, the
//! exception list and the sentencizer's punctuation are data generated from spaCy
//! (`tests/reference/gen_spacy_tables.py` → `spacy_en_tables.rs`); the code is ours.
//!
//! Words are returned as byte spans into the text: no allocation per word. Whitespace tokens are
//! dropped, as datatrove's `strip_strings` does.
//!
//! spaCy's special-case matcher (re-merging affix-split tokens that spell a tokenizer exception)
//! is reproduced within each whitespace-separated chunk; agreement is measured in
//! `docs/FILTERS.md`. [`shared_words`] lets the word-based steps of a chain share one split per
//! text.

mod sentences;
mod shared;
mod spacy_en_tables;
#[cfg(test)]
mod tests;

use sentences::Sentencizer;
pub use sentences::count_sentences_in_words;
pub use shared::{clear_shared_words, share_words, shared_words};

use std::sync::LazyLock;

use xxhash_rust::xxh3::xxh3_64;

use crate::idhash::HashMap64;

use spacy_en_tables as t;

/// A word: a byte range `start..end` of the text.
pub type Span = (u32, u32);

/// A set of code points: a bitmap for the Basic Multilingual Plane, ranges above it.
pub(crate) struct Class {
    bmp: Box<[u64; 1024]>,
    astral: Vec<(u32, u32)>,
}

impl Class {
    pub(crate) fn new(ranges: &[(u32, u32)]) -> Self {
        let mut bmp = Box::new([0u64; 1024]);
        let mut astral = Vec::new();
        for &(a, b) in ranges {
            for cp in a..=b.min(0xFFFF) {
                bmp[(cp >> 6) as usize] |= 1 << (cp & 63);
            }
            if b > 0xFFFF {
                astral.push((a.max(0x10000), b));
            }
        }
        Class { bmp, astral }
    }

    fn with_chars(mut self, chars: impl IntoIterator<Item = char>) -> Self {
        for c in chars {
            let cp = c as u32;
            if cp <= 0xFFFF {
                self.bmp[(cp >> 6) as usize] |= 1 << (cp & 63);
            } else {
                self.astral.push((cp, cp));
            }
        }
        self.astral.sort_unstable();
        self
    }

    #[inline]
    pub(crate) fn has(&self, c: char) -> bool {
        let cp = c as u32;
        if cp <= 0xFFFF {
            self.bmp[(cp >> 6) as usize] >> (cp & 63) & 1 == 1
        } else {
            self.astral
                .binary_search_by(|&(a, b)| {
                    if b < cp {
                        std::cmp::Ordering::Less
                    } else if a > cp {
                        std::cmp::Ordering::Greater
                    } else {
                        std::cmp::Ordering::Equal
                    }
                })
                .is_ok()
        }
    }
}

struct Tables {
    alpha: Class,
    lower: Class,
    upper: Class,
    icons: Class,
    py_alpha: Class,
    py_space: Class,
    py_punct: Class,
    /// Single characters of spaCy's LIST_PUNCT (all entries but "……").
    punct: Class,
    /// Quote characters (CONCAT_QUOTES).
    quotes: Class,
    /// Characters allowed before a suffix `.` (besides digits and lowercase letters).
    dot_suffix_after: Class,
    /// Sentence-final characters of the sentencizer.
    sent_punct: Class,
    /// Single-character currency symbols.
    currency: Class,
    /// Exceptions by xxh3 of their text: (text, token byte lengths).
    exceptions: HashMap64<(&'static str, &'static [u8])>,
    /// A 64 Ki-bit filter over (byte length, first, second and last byte) of the exceptions
    /// ([`filter_index`]): most strings are rejected without hashing them.
    exception_filter: Box<[u64; 1024]>,
    max_exception_len: usize,
    /// Currency symbols and units (suffixes after a digit).
    units: std::collections::HashSet<&'static str>,
    /// The first bytes of `units` (most strings after a digit are rejected by it).
    unit_first: [bool; 256],
    max_unit_len: usize,
    url: regex::Regex,
}

static TABLES: LazyLock<Tables> = LazyLock::new(|| {
    let single = |list: &[&str]| -> Vec<char> {
        list.iter()
            .filter(|s| s.chars().count() == 1)
            .filter_map(|s| s.chars().next())
            .collect()
    };
    let punct_chars: Vec<char> = t::PUNCT.iter().flat_map(|s| s.chars()).collect();
    let quote_chars = single(t::QUOTES);
    let lower = Class::new(t::ALPHA_LOWER);
    let mut lower_cls = String::new();
    for &(a, b) in t::ALPHA_LOWER {
        let (a, b) = (char::from_u32(a).unwrap(), char::from_u32(b).unwrap());
        lower_cls.push_str(&format!("\\x{{{:X}}}-\\x{{{:X}}}", a as u32, b as u32));
    }
    // spaCy's URL_MATCH without its private-IP exclusions: those strings are dotted numbers,
    // which the infix rules leave whole anyway, so the tokens come out the same.
    let url = format!(
        r"^(?:[\w+\-.]{{2,}}://)?(?:\S+(?::\S*)?@)?(?P<host>(?:[1-9]\d?|1\d\d|2[01]\d|22[0-3])(?:\.(?:1?\d{{1,2}}|2[0-4]\d|25[0-5])){{2}}(?:\.(?:[1-9]\d?|1\d\d|2[0-4]\d|25[0-4]))|(?:(?:[A-Za-z0-9\x{{a1}}-\x{{ffff}}][A-Za-z0-9\x{{a1}}-\x{{ffff}}_-]{{0,62}})?[A-Za-z0-9\x{{a1}}-\x{{ffff}}]\.)+(?:[{lower_cls}]{{2,63}}))(?::\d{{2,5}})?(?:[/?#]\S*)?$"
    );
    Tables {
        alpha: Class::new(t::ALPHA),
        lower,
        upper: Class::new(t::ALPHA_UPPER),
        icons: Class::new(t::ICONS),
        py_alpha: Class::new(t::PY_ALPHA),
        py_space: Class::new(t::PY_SPACE),
        py_punct: Class::new(t::PY_PUNCT),
        punct: Class::new(&[]).with_chars(single(t::PUNCT)),
        quotes: Class::new(&[]).with_chars(quote_chars.iter().copied()),
        dot_suffix_after: Class::new(&[])
            .with_chars(punct_chars)
            .with_chars(quote_chars)
            .with_chars(['%', '²', '-', '+', '|', '(', '?', ':', ')']),
        sent_punct: Class::new(&[]).with_chars(single(t::SENT_PUNCT)),
        currency: Class::new(&[]).with_chars(single(t::CURRENCY)),
        exceptions: t::EXCEPTIONS
            .iter()
            .map(|&(k, v)| (xxh3_64(k.as_bytes()), (k, v)))
            .collect(),
        exception_filter: {
            let mut f = Box::new([0u64; 1024]);
            for (k, _) in t::EXCEPTIONS {
                let i = filter_index(k.as_bytes());
                f[i >> 6] |= 1 << (i & 63);
            }
            f
        },
        max_exception_len: t::EXCEPTIONS
            .iter()
            .map(|(k, _)| k.len())
            .max()
            .unwrap_or(0),
        units: t::CURRENCY.iter().chain(t::UNITS).copied().collect(),
        unit_first: {
            let mut f = [false; 256];
            for u in t::CURRENCY.iter().chain(t::UNITS) {
                f[u.as_bytes()[0] as usize] = true;
            }
            f
        },
        max_unit_len: t::CURRENCY
            .iter()
            .chain(t::UNITS)
            .map(|u| u.len())
            .max()
            .unwrap_or(0),
        url: regex::Regex::new(&url).expect("URL pattern compiles"),
    }
});

/// Python's `str.isspace` for one character.
#[inline]
pub fn py_isspace(c: char) -> bool {
    if c.is_ascii() {
        matches!(
            c,
            ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r' | '\x1c'..='\x1f'
        )
    } else {
        TABLES.py_space.has(c)
    }
}

/// Python's `str.isalpha` for one character (general category L*).
#[inline]
pub fn py_isalpha(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphabetic()
    } else {
        TABLES.py_alpha.has(c)
    }
}

/// True when every character of `s` is in Unicode general category P* (spaCy's `is_punct`).
pub fn is_punct_token(s: &str) -> bool {
    s.chars().all(|c| {
        if c.is_ascii() {
            ascii_is_p(c)
        } else {
            TABLES.py_punct.has(c)
        }
    })
}

#[inline]
fn ascii_is_p(c: char) -> bool {
    // ASCII characters of category P*: the ASCII punctuation minus the symbols $+<=>^`|~.
    c.is_ascii_punctuation() && !matches!(c, '$' | '+' | '<' | '=' | '>' | '^' | '`' | '|' | '~')
}

/// Makes sure the tables are built (so a benchmark does not time their construction).
pub fn warm_up() {
    LazyLock::force(&TABLES);
}

/// A reusable English word splitter (spaCy-compatible). Keep one per task.
#[derive(Debug, Default)]
pub struct WordSplitter {
    suffixes: Vec<Span>,
    merged: Vec<Span>,
    memo: ChunkMemo,
}

/// The tokens of recently split chunks that needed the affix rules (`word.`, `(see`, `it's`):
/// a chunk's tokens depend only on its bytes, and web text repeats such chunks a lot.
#[derive(Debug, Default)]
struct ChunkMemo {
    /// xxh3 of the chunk → (start in `bytes`, start in `pieces`, number of pieces).
    index: HashMap64<(u32, u32, u32)>,
    /// The chunks' bytes, one after the other.
    bytes: Vec<u8>,
    /// Token byte ranges relative to the chunk start.
    pieces: Vec<(u16, u16)>,
}

/// Chunks longer than this are not memoised; the memo is emptied past `MEMO_BYTES` bytes.
const MEMO_MAX_CHUNK: usize = 64;
const MEMO_BYTES: usize = 16 << 10;

impl WordSplitter {
    /// A splitter with empty buffers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the words of `text` (non-whitespace tokens) to `out` (cleared first).
    pub fn split(&mut self, text: &str, out: &mut Vec<Span>) {
        out.clear();
        self.tokens(text, out, false);
    }

    /// Appends spaCy's tokens of `text` to `out`; with `spaces`, also its whitespace tokens
    /// (runs of whitespace other than a single `' '` after a token).
    pub fn tokens(&mut self, text: &str, out: &mut Vec<Span>, spaces: bool) {
        let tb = &*TABLES;
        let bytes = text.as_bytes();
        let mut i = 0usize;
        let n = bytes.len();
        let mut first = true;
        while i < n {
            // A whitespace run.
            let ws_start = i;
            while i < n {
                let k = BYTE_CLASS[bytes[i] as usize];
                if k & SPACE != 0 {
                    i += 1;
                    continue;
                }
                if k & HIGH == 0 {
                    break;
                }
                let (c, len) = next_char(text, i);
                if !tb.py_space.has(c) {
                    break;
                }
                i += len;
            }
            if i > ws_start && spaces {
                // spaCy absorbs one ' ' after a token as its trailing space.
                let s = if !first && bytes[ws_start] == b' ' {
                    ws_start + 1
                } else {
                    ws_start
                };
                if s < i {
                    out.push((s as u32, i as u32));
                }
            }
            if i >= n {
                break;
            }
            let start = i;
            // The union of the chunk's byte classes: a chunk of letters only or digits only
            // needs no affix rule.
            let mut classes = 0u8;
            while i < n {
                let k = BYTE_CLASS[bytes[i] as usize];
                if k & (SPACE | HIGH) == 0 {
                    classes |= k;
                    i += 1;
                    continue;
                }
                if k & SPACE != 0 {
                    break;
                }
                let (c, len) = next_char(text, i);
                if tb.py_space.has(c) {
                    break;
                }
                classes |= HIGH;
                i += len;
            }
            self.chunk(
                tb,
                text,
                start,
                i,
                classes == ALPHA || classes == DIGIT,
                out,
            );
            first = false;
        }
    }

    /// Appends the tokens of the chunk `text[start..end]`; `plain` when it is ASCII letters only
    /// or ASCII digits only.
    fn chunk(
        &mut self,
        tb: &Tables,
        text: &str,
        start: usize,
        end: usize,
        plain: bool,
        out: &mut Vec<Span>,
    ) {
        if let Some(lens) = exception(tb, &text[start..end]) {
            push_pieces(out, start, lens);
            return;
        }
        let b = &text.as_bytes()[start..end];
        if plain {
            // Only letters, or only digits: no prefix, suffix or infix rule applies (they all
            // need punctuation, a symbol, or digits next to letters), and it is not a URL.
            out.push((start as u32, end as u32));
            return;
        }
        let memoise = b.len() <= MEMO_MAX_CHUNK;
        let key = if memoise {
            let key = xxh3_64(b);
            if let Some(&(at, p, n)) = self.memo.index.get(&key)
                && self.memo.bytes.get(at as usize..at as usize + b.len()) == Some(b)
            {
                for &(x, y) in &self.memo.pieces[p as usize..(p + n) as usize] {
                    out.push((start as u32 + x as u32, start as u32 + y as u32));
                }
                return;
            }
            key
        } else {
            0
        };
        let first = out.len();
        self.split_chunk(tb, text, start, end, out);
        if out.len() - first > 1 {
            self.merge_specials(tb, text, first, out);
        }
        if memoise {
            let m = &mut self.memo;
            if m.bytes.len() > MEMO_BYTES {
                m.index.clear();
                m.bytes.clear();
                m.pieces.clear();
            }
            let (at, p) = (m.bytes.len() as u32, m.pieces.len() as u32);
            m.bytes.extend_from_slice(b);
            for &(x, y) in &out[first..] {
                m.pieces
                    .push(((x as usize - start) as u16, (y as usize - start) as u16));
            }
            m.index.insert(key, (at, p, (out.len() - first) as u32));
        }
    }

    /// spaCy's special-case matcher: after affix splitting, a run of adjacent tokens that spells
    /// a tokenizer exception (e.g. `):` or `n.`) is replaced by that exception's tokens. Matches
    /// are taken leftmost first, longest first, without overlap.
    fn merge_specials(&mut self, tb: &Tables, text: &str, first: usize, out: &mut Vec<Span>) {
        let n = out.len() - first;
        let mut i = 0;
        let mut changed = false;
        self.merged.clear();
        while i < n {
            let (a, _) = out[first + i];
            let mut best = None;
            for j in (i + 1..n).rev() {
                let (_, b) = out[first + j];
                if (b - a) as usize > tb.max_exception_len {
                    continue;
                }
                let cand = &text[a as usize..b as usize];
                // spaCy's matcher only knows exceptions that its affix rules would split.
                if let Some(l) = exception(tb, cand)
                    && splittable(tb, cand)
                {
                    best = Some((j, l));
                    break;
                }
            }
            match best {
                Some((j, l)) => {
                    let mut p = a as usize;
                    for &len in l {
                        self.merged.push((p as u32, (p + len as usize) as u32));
                        p += len as usize;
                    }
                    changed = true;
                    i = j + 1;
                }
                None => {
                    self.merged.push(out[first + i]);
                    i += 1;
                }
            }
        }
        if changed {
            out.truncate(first);
            out.extend_from_slice(&self.merged);
        }
    }

    fn split_chunk(
        &mut self,
        tb: &Tables,
        text: &str,
        start: usize,
        end: usize,
        out: &mut Vec<Span>,
    ) {
        self.suffixes.clear();
        let (mut s, mut e) = (start, end);
        let mut last = 0usize;
        let mut special_core: Option<&'static [u8]> = None;
        while s < e && e - s != last {
            if let Some(l) = exception(tb, &text[s..e]) {
                special_core = Some(l);
                break;
            }
            last = e - s;
            let pre = find_prefix(tb, &text[s..e]);
            if pre != 0
                && s + pre < e
                && let Some(l) = exception(tb, &text[s + pre..e])
            {
                out.push((s as u32, (s + pre) as u32));
                s += pre;
                special_core = Some(l);
                break;
            }
            let suf = find_suffix(tb, &text[s + pre..e]);
            if suf != 0
                && s < e - suf
                && let Some(l) = exception(tb, &text[s..e - suf])
            {
                self.suffixes.push(((e - suf) as u32, e as u32));
                e -= suf;
                special_core = Some(l);
                break;
            }
            if pre != 0 && suf != 0 && pre + suf <= e - s {
                out.push((s as u32, (s + pre) as u32));
                self.suffixes.push(((e - suf) as u32, e as u32));
                s += pre;
                e -= suf;
            } else if pre != 0 {
                out.push((s as u32, (s + pre) as u32));
                s += pre;
            } else if suf != 0 {
                self.suffixes.push(((e - suf) as u32, e as u32));
                e -= suf;
            }
        }
        if s < e {
            if let Some(l) = special_core.or_else(|| exception(tb, &text[s..e])) {
                push_pieces(out, s, l);
            } else if is_url(tb, &text[s..e]) {
                out.push((s as u32, e as u32));
            } else {
                infixes(tb, text, s, e, out);
            }
        }
        out.extend(self.suffixes.iter().rev());
    }

    /// Number of sentences spaCy's sentencizer finds in `text` (what datatrove's
    /// `split_into_sentences` returns the length of, for text without blank sentences).
    pub fn count_sentences(&mut self, text: &str, scratch: &mut Vec<Span>) -> usize {
        scratch.clear();
        self.tokens(text, scratch, true);
        let tb = &*TABLES;
        let mut st = Sentencizer::default();
        for &(a, b) in scratch.iter() {
            let tok = &text[a as usize..b as usize];
            if tok.chars().all(|c| is_space_fast(c, tb)) {
                st.space();
            } else {
                st.word(tb, tok);
            }
        }
        st.finish()
    }
}

#[inline]
fn next_char(text: &str, i: usize) -> (char, usize) {
    let b = text.as_bytes()[i];
    if b < 0x80 {
        (b as char, 1)
    } else {
        let c = text[i..].chars().next().expect("char boundary");
        (c, c.len_utf8())
    }
}

/// Byte classes of [`BYTE_CLASS`].
const ALPHA: u8 = 1;
const DIGIT: u8 = 2;
/// Any other ASCII byte that is not whitespace.
const OTHER: u8 = 4;
/// A byte of a multi-byte character.
const HIGH: u8 = 8;
/// ASCII whitespace (Python's `str.isspace`).
const SPACE: u8 = 16;

/// The class of each byte value.
static BYTE_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0usize;
    while b < 256 {
        let x = b as u8;
        t[b] = if x >= 0x80 {
            HIGH
        } else if ascii_space(x) {
            SPACE
        } else if x.is_ascii_alphabetic() {
            ALPHA
        } else if x.is_ascii_digit() {
            DIGIT
        } else {
            OTHER
        };
        b += 1;
    }
    t
};

/// Python's `str.isspace` for an ASCII byte.
#[inline]
const fn ascii_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0x1c..=0x1f)
}

#[inline]
fn is_space_fast(c: char, tb: &Tables) -> bool {
    if c.is_ascii() {
        matches!(
            c,
            ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r' | '\x1c'..='\x1f'
        )
    } else {
        tb.py_space.has(c)
    }
}

fn is_single_in(tok: &str, class: &Class) -> bool {
    let mut it = tok.chars();
    matches!((it.next(), it.next()), (Some(c), None) if class.has(c))
}

/// Bit of [`Tables::exception_filter`] for a non-empty string: a hash of its length and first,
/// second and last bytes, 16 bits (the filter's 64 Ki bits hold the ~1,300 exceptions at ~2 %
/// density, so almost every other string is rejected without a table lookup).
#[inline]
fn filter_index(b: &[u8]) -> usize {
    let n = b.len();
    let (len, first, second, last) = (
        n as u32,
        b[0] as u32,
        b[(n > 1) as usize] as u32,
        b[n - 1] as u32,
    );
    let h = len.wrapping_mul(0x9E37_79B1)
        ^ first.wrapping_mul(0x85EB_CA77)
        ^ second.wrapping_mul(0x27D4_EB2F).rotate_left(11)
        ^ last.wrapping_mul(0xC2B2_AE3D);
    (h.wrapping_mul(0x2545_F491) >> 16) as usize
}

/// The tokens (byte lengths) of `s` when it is a tokenizer exception. Inlined: most strings are
/// rejected by the length and filter checks without a call.
#[inline(always)]
fn exception(tb: &Tables, s: &str) -> Option<&'static [u8]> {
    if s.len() > tb.max_exception_len || s.is_empty() {
        return None;
    }
    let i = filter_index(s.as_bytes());
    if tb.exception_filter[i >> 6] >> (i & 63) & 1 == 0 {
        return None;
    }
    exception_lookup(tb, s)
}

#[inline(never)]
fn exception_lookup(tb: &Tables, s: &str) -> Option<&'static [u8]> {
    match tb.exceptions.get(&xxh3_64(s.as_bytes())) {
        Some(&(k, v)) if k == s => Some(v),
        _ => None,
    }
}

/// True when a prefix, suffix or infix rule matches in `s` (spaCy adds only such exceptions to
/// its special-case matcher).
fn splittable(tb: &Tables, s: &str) -> bool {
    if find_prefix(tb, s) != 0 || find_suffix(tb, s) != 0 {
        return true;
    }
    let mut prev = None;
    for (i, c) in s.char_indices() {
        if infix_at(tb, s, i, c, c.len_utf8(), prev).is_some() {
            return true;
        }
        prev = Some(c);
    }
    false
}

fn push_pieces(out: &mut Vec<Span>, start: usize, lens: &[u8]) {
    let mut p = start;
    for &l in lens {
        out.push((p as u32, (p + l as usize) as u32));
        p += l as usize;
    }
}

/// Length in bytes of the prefix spaCy splits off `s` (0 for none).
fn find_prefix(tb: &Tables, s: &str) -> usize {
    let mut it = s.chars();
    let Some(c) = it.next() else { return 0 };
    let cl = c.len_utf8();
    match c {
        '§' | '%' | '=' | '—' | '–' => return cl,
        '+' => {
            return if it.next().is_some_and(|d| d.is_ascii_digit()) {
                0
            } else {
                1
            };
        }
        '.' => {
            let dots = s.bytes().take_while(|&b| b == b'.').count();
            return if dots >= 2 { dots } else { 0 };
        }
        _ => {}
    }
    if tb.punct.has(c) || tb.quotes.has(c) {
        return cl;
    }
    for cur in ["US$", "C$", "A$"] {
        if s.starts_with(cur) {
            return cur.len();
        }
    }
    if tb.currency.has(c) {
        return cl;
    }
    if tb.icons.has(c) {
        return cl;
    }
    0
}

/// Length in bytes of the suffix spaCy splits off `s` (0 for none).
fn find_suffix(tb: &Tables, s: &str) -> usize {
    let dots = s.bytes().rev().take_while(|&b| b == b'.').count();
    if dots >= 2 {
        return dots;
    }
    let b = s.as_bytes();
    if b.is_empty() {
        return 0;
    }
    if b[b.len().saturating_sub(6)..]
        .iter()
        .all(|&x| x.is_ascii() && !x.is_ascii_digit() && x != b'\'')
    {
        // The suffixes of two or more characters are `'s`-like (an apostrophe), `……`
        // (non-ASCII) or a unit / currency after a digit: with none of those among the last
        // six characters, only a one-character suffix can match.
        return usize::from(suffix_at(tb, s, b.len() - 1, 1));
    }
    // Start offsets of the last (up to) five characters, from the left.
    let mut starts = [0usize; 5];
    let mut k = 0;
    for (i, _) in s.char_indices().rev().take(5) {
        starts[4 - k] = i;
        k += 1;
    }
    let starts = &starts[5 - k..];
    // Leftmost start that some suffix rule matches through to the end.
    for (j, &p) in starts.iter().enumerate() {
        if suffix_at(tb, s, p, starts.len() - j) {
            return s.len() - p;
        }
    }
    0
}

fn suffix_at(tb: &Tables, s: &str, p: usize, nchars: usize) -> bool {
    let x = &s[p..];
    // ASCII digits are whole characters: the character before `p` is one when its last byte is.
    let prev_digit = p > 0 && s.as_bytes()[p - 1].is_ascii_digit();
    if nchars == 1 {
        let c = x.chars().next().expect("one char");
        if tb.punct.has(c)
            || c == '…'
            || tb.quotes.has(c)
            || tb.icons.has(c)
            || c == '—'
            || c == '–'
        {
            return true;
        }
        if c == '+' && prev_digit {
            return true;
        }
        if c == '.' {
            let before = &s[..p];
            if let Some(pc) = before.chars().next_back() {
                if pc.is_ascii_digit() || tb.lower.has(pc) || tb.dot_suffix_after.has(pc) {
                    return true;
                }
                let mut bi = before.chars().rev();
                let (a, b) = (bi.next(), bi.next());
                if matches!(a, Some('F' | 'f' | 'C' | 'c' | 'K' | 'k')) && b == Some('°') {
                    return true;
                }
                if let (Some(a), Some(b)) = (a, b)
                    && tb.upper.has(a)
                    && tb.upper.has(b)
                {
                    return true;
                }
            }
            return false;
        }
    } else if matches!(x, "……" | "'s" | "'S" | "’s" | "’S") {
        // The multi-character suffixes besides units: an ellipsis and the possessives.
        return true;
    }
    prev_digit
        && x.len() <= tb.max_unit_len
        && tb.unit_first[x.as_bytes()[0] as usize]
        && tb.units.contains(&x)
}

fn is_url(tb: &Tables, s: &str) -> bool {
    // Every URL the pattern accepts has a dot before its top-level domain or in its IP address.
    // Every URL the pattern accepts has a dot before its top-level domain (whose first
    // character is a lowercase letter) or before a number of its IP address.
    let b = s.as_bytes();
    if !memchr::memchr_iter(b'.', b).any(|i| {
        b.get(i + 1)
            .is_some_and(|&x| x.is_ascii_lowercase() || x.is_ascii_digit() || x >= 0x80)
    }) {
        return false;
    }
    if !tb.url.is_match(s) {
        return false;
    }
    // spaCy's negative lookaheads: no host that starts like a private or loopback address. Such
    // a host starts with digits followed by a dot; without a digit before a dot anywhere, no
    // host can, and the (costly) capture search for the host's start is not needed.
    if !memchr::memchr_iter(b'.', b).any(|i| i > 0 && b[i - 1].is_ascii_digit()) {
        return true;
    }
    let Some(caps) = tb.url.captures(s) else {
        return false;
    };
    let host = caps.name("host").map_or("", |m| &s[m.start()..]);
    !private_ip_prefix(host)
}

/// True when `h` starts with `10.d.d.d`, `127.d.d.d`, `169.254.d.d`, `192.168.d.d` or
/// `172.16-31.d.d` (1 to 3 digits per number), as spaCy's URL pattern excludes.
fn private_ip_prefix(h: &str) -> bool {
    fn octets(mut s: &str, n: usize) -> bool {
        for _ in 0..n {
            let Some(r) = s.strip_prefix('.') else {
                return false;
            };
            let d = r.bytes().take_while(|b| b.is_ascii_digit()).count();
            if d == 0 {
                return false;
            }
            s = &r[d.min(3)..];
        }
        true
    }
    for (p, n) in [("10", 3), ("127", 3), ("169.254", 2), ("192.168", 2)] {
        if h.strip_prefix(p).is_some_and(|r| octets(r, n)) {
            return true;
        }
    }
    if let Some(r) = h.strip_prefix("172.") {
        let d: String = r.chars().take(2).collect();
        if let Ok(v) = d.parse::<u32>()
            && (16..=31).contains(&v)
            && d.len() == 2
        {
            return octets(&r[2..], 2);
        }
    }
    false
}

/// Splits `text[s..e]` on spaCy's English infixes, pushing the pieces.
fn infixes(tb: &Tables, text: &str, s: usize, e: usize, out: &mut Vec<Span>) {
    let core = &text[s..e];
    let b = core.as_bytes();
    let mut start = 0usize; // start of the pending piece, relative to `s`
    let mut i = 0usize;
    let mut prev: Option<char> = None;
    while i < b.len() {
        let x = b[i];
        if x.is_ascii_alphanumeric() {
            // No infix rule starts with a letter or a digit.
            prev = Some(x as char);
            i += 1;
            continue;
        }
        let (c, cl) = next_char(core, i);
        let m = infix_at(tb, core, i, c, cl, prev);
        if let Some(end) = m {
            if i != 0 {
                if i != start {
                    out.push(((s + start) as u32, (s + i) as u32));
                }
                out.push(((s + i) as u32, (s + end) as u32));
                start = end;
            }
            // Advance past the match; `prev` is the match's last character.
            prev = core[..end].chars().next_back();
            i = end;
        } else {
            prev = Some(c);
            i += cl;
        }
    }
    if start < b.len() {
        out.push(((s + start) as u32, e as u32));
    }
}

/// The end of an infix match starting at byte `i` of `core`, if any (rules in spaCy's order).
#[inline]
fn infix_at(
    tb: &Tables,
    core: &str,
    i: usize,
    c: char,
    cl: usize,
    prev: Option<char>,
) -> Option<usize> {
    let b = core.as_bytes();
    let next = || core[i + cl..].chars().next();
    if c.is_ascii_alphanumeric() {
        return None; // fast path: no rule starts with a letter or digit
    }
    if c == '.' && b.get(i + 1) == Some(&b'.') {
        let n = b[i..].iter().take_while(|&&x| x == b'.').count();
        return Some(i + n);
    }
    if c == '…' || tb.icons.has(c) {
        return Some(i + cl);
    }
    let pdigit = prev.is_some_and(|p| p.is_ascii_digit());
    if pdigit
        && matches!(c, '+' | '-' | '*' | '^')
        && next().is_some_and(|n| n.is_ascii_digit() || n == '-')
    {
        return Some(i + 1);
    }
    if c == '.'
        && prev.is_some_and(|p| tb.lower.has(p) || tb.quotes.has(p))
        && next().is_some_and(|n| tb.upper.has(n) || tb.quotes.has(n))
    {
        return Some(i + 1);
    }
    let palpha = prev.is_some_and(|p| tb.alpha.has(p));
    if c == ',' && palpha && next().is_some_and(|n| tb.alpha.has(n)) {
        return Some(i + 1);
    }
    if palpha || pdigit {
        // Every hyphen of spaCy's list starts with one of these characters.
        if matches!(c, '-' | '\u{2013}' | '\u{2014}' | '~') {
            for h in t::HYPHENS {
                if core[i..].starts_with(h)
                    && core[i + h.len()..]
                        .chars()
                        .next()
                        .is_some_and(|n| tb.alpha.has(n))
                {
                    return Some(i + h.len());
                }
            }
        }
        if matches!(c, ':' | '<' | '>' | '=' | '/') && next().is_some_and(|n| tb.alpha.has(n)) {
            return Some(i + 1);
        }
    }
    None
}

/// Number of characters (Unicode scalar values, Python's `len`) in `s`.
#[inline]
pub fn char_len(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.as_bytes().iter().filter(|&&b| (b as i8) >= -0x40).count()
    }
}
