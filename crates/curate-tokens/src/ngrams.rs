//! Word n-grams of normalized text, and the set of benchmark n-grams documents are checked
//! against.
//!
//! **Normalization** (the same for benchmark items and documents): lowercase; every character
//! that is neither a letter, a digit nor whitespace (punctuation, symbols, emoji, combining
//! marks) is deleted; whitespace separates words. So `"Who wrote\n'Hamlet'?"` and
//! `"who  wrote hamlet"` are the same three words.
//!
//! **Hashes** (scheme [`NGRAM_SCHEME`]): each word is hashed once with seeded xxh3-64; a window
//! of words `a..k` is their hashes' polynomial `h[a]·B^(k-a-1) + … + h[k-1]` (wrapping 64-bit
//! arithmetic, `B` odd), found in O(1) from the document's running prefix values, and its key is
//! that value mixed by seeded xxh3-64 under the seed plus the window's length. Keys live in an
//! open-addressing table sized to a power of two at most half full: 8 bytes of key and 4 of
//! posting per slot, so 16–24 bytes per distinct n-gram (see [`GramIndex::memory_bytes`]).
//! The corpus side streams: a document costs one reused buffer of its own size.

use curate_core::hash::h64;

/// Version of the normalization and hashing; recorded in the manifest.
pub const NGRAM_SCHEME: &str = "decontaminate-v2";

/// Postings with this bit set index the multi-item lists.
const MULTI: u32 = 1 << 31;

/// The polynomial's base (odd, so multiplying by it is a bijection of `u64`).
const BASE: u64 = 0x9E37_79B9_7F4A_7C15;

/// Running polynomial values of a text's word hashes: `prefix[k]` covers words `0..k`.
#[derive(Debug, Default)]
struct Prefix {
    values: Vec<u64>,
}

impl Prefix {
    fn clear(&mut self) {
        self.values.clear();
        self.values.push(0);
    }

    /// Appends one word's hash.
    #[inline]
    fn push(&mut self, h: u64) {
        let last = self.values[self.values.len() - 1];
        self.values.push(last.wrapping_mul(BASE).wrapping_add(h));
    }

    /// Words so far.
    #[inline]
    fn words(&self) -> usize {
        self.values.len() - 1
    }

    /// The key of the last `len` words (`pow[len]` is `BASE^len`).
    #[inline]
    fn key(&self, len: usize, pow: &[u64], seed: u64) -> u64 {
        self.key_at(self.words(), len, pow, seed)
    }

    /// The key of the `len` words ending before word `k`.
    #[inline]
    fn key_at(&self, k: usize, len: usize, pow: &[u64], seed: u64) -> u64 {
        let v = self.values[k].wrapping_sub(self.values[k - len].wrapping_mul(pow[len]));
        h64(&v.to_le_bytes(), seed.wrapping_add(len as u64))
    }
}

/// Bits of the prefilter for items shorter than `n` (2^20 bits = 128 KiB).
const FILTER_BITS: u32 = 20;

/// Bits of the prefilter of all keys (2^22 bits = 512 KiB).
const KEY_FILTER_BITS: u32 = 22;

/// What normalization does with one character.
const SKIP: u8 = 0;
/// Ends the current word.
const SPACE: u8 = 1;
/// A letter or digit that is its own case fold: copied as it is.
const KEEP: u8 = 2;
/// A letter or digit that [`fold`] rewrites.
const FOLD: u8 = 3;

/// Classes of the ASCII bytes: letters and digits are kept (lowercased), whitespace and
/// control characters separate words, the rest (punctuation, symbols) is deleted.
const ASCII_CLASS: [u8; 128] = {
    let mut t = [SKIP; 128];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        t[b] = if c.is_ascii_alphanumeric() {
            KEEP
        } else if c.is_ascii_whitespace() || c.is_ascii_control() {
            SPACE
        } else {
            SKIP
        };
        b += 1;
    }
    t
};

/// The class of a non-ASCII character (the Unicode look-ups the tables cache).
fn unicode_class(c: char) -> u8 {
    if c.is_alphanumeric() {
        let mut l = c.to_lowercase();
        if !matches!(c, 'ς' | 'ß' | 'ẞ') && l.next() == Some(c) && l.next().is_none() {
            KEEP
        } else {
            FOLD
        }
    } else if c.is_whitespace() {
        SPACE
    } else {
        SKIP
    }
}

/// [`unicode_class`] of every character of the Basic Multilingual Plane, built once (64 KiB):
/// web text's curly quotes, dashes and accented letters would otherwise each cost a Unicode
/// table search.
fn bmp_classes() -> &'static [u8; 0x10000] {
    static T: std::sync::OnceLock<Box<[u8; 0x10000]>> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        let mut t = Box::new([SKIP; 0x10000]);
        for (i, x) in t.iter_mut().enumerate() {
            if let Some(c) = char::from_u32(i as u32) {
                *x = if c.is_ascii() {
                    ASCII_CLASS[i]
                } else {
                    unicode_class(c)
                };
            }
        }
        t
    })
}

/// Splits text into normalized words, appending them to `out` separated by single spaces and
/// calling `word(start)` with each word's start offset once it is complete.
#[inline]
pub fn normalize_words(text: &str, out: &mut String, mut word: impl FnMut(&str, usize)) {
    let bmp = bmp_classes();
    let bytes = text.as_bytes();
    let mut start = out.len();
    let mut in_word = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let (class, c) = if b < 0x80 {
            i += 1;
            (ASCII_CLASS[b as usize], b.to_ascii_lowercase() as char)
        } else {
            // `i` is always at a character boundary: whole characters are consumed
            let c = text[i..]
                .chars()
                .next()
                .unwrap_or(char::REPLACEMENT_CHARACTER);
            i += c.len_utf8();
            let class = match bmp.get(c as usize) {
                Some(&x) => x,
                None => unicode_class(c),
            };
            (class, c)
        };
        if class >= KEEP {
            if !in_word {
                if !out.is_empty() {
                    out.push(' ');
                }
                start = out.len();
                in_word = true;
            }
            if class == KEEP {
                out.push(c);
            } else {
                fold(c, out);
            }
        } else if class == SPACE && in_word {
            in_word = false;
            word(out, start);
        }
    }
    if in_word {
        word(out, start);
    }
}

/// Appends `c` case-folded: lowercase, final sigma as sigma, `ß` as `ss`; characters the
/// lowercase mapping adds that are not letters or digits (the dot of `İ`) are dropped, as
/// punctuation is.
#[inline]
fn fold(c: char, out: &mut String) {
    match c {
        'ς' => out.push('σ'),
        'ß' | 'ẞ' => out.push_str("ss"),
        _ => {
            for l in c.to_lowercase() {
                if l.is_alphanumeric() {
                    out.push(if l == 'ς' { 'σ' } else { l });
                }
            }
        }
    }
}

/// An open-addressing map from n-gram key to posting.
#[derive(Debug, Default)]
struct Table {
    keys: Vec<u64>,
    vals: Vec<u32>,
    mask: usize,
}

impl Table {
    fn with_entries(n: usize) -> Table {
        let cap = (n.max(1) * 2).next_power_of_two();
        Table {
            keys: vec![0; cap],
            vals: vec![0; cap],
            mask: cap - 1,
        }
    }

    /// Keys are never 0 (0 marks an empty slot).
    #[inline]
    fn fix(k: u64) -> u64 {
        k.max(1)
    }

    fn insert(&mut self, key: u64, val: u32) {
        let key = Self::fix(key);
        let mut i = key as usize & self.mask;
        while self.keys[i] != 0 {
            i = (i + 1) & self.mask;
        }
        self.keys[i] = key;
        self.vals[i] = val;
    }

    #[inline]
    fn get(&self, key: u64) -> Option<u32> {
        let key = Self::fix(key);
        let mut i = key as usize & self.mask;
        loop {
            let k = self.keys[i];
            if k == key {
                return Some(self.vals[i]);
            }
            if k == 0 {
                return None;
            }
            i = (i + 1) & self.mask;
        }
    }

    fn bytes(&self) -> usize {
        self.keys.len() * 8 + self.vals.len() * 4
    }
}

/// How one item was indexed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    /// At least `n` words: its n-grams are in the set.
    Ngrams,
    /// Fewer than `n` words but at least `min_words`: matches as a whole normalized item.
    Whole,
    /// Fewer than `min_words` words: not checked.
    TooShort,
}

/// The benchmarks' n-gram set, built once, then shared read-only by every task.
#[derive(Debug)]
pub struct GramIndex {
    n: usize,
    seed: u64,
    /// `BASE^l` for `l` in `0..=n`.
    pow: Vec<u64>,
    table: Table,
    multi: Vec<Vec<u32>>,
    /// Word counts of whole-item keys shorter than `n`, ascending.
    short_lens: Vec<usize>,
    short_filter: Vec<u64>,
    /// One bit per key prefix (top [`KEY_FILTER_BITS`] bits): most windows of a clean document
    /// are rejected here, in cache, before the table's random access.
    key_filter: Vec<u64>,
    distinct: usize,
}

/// Per-document scratch for [`GramIndex::scan`]: reused, so scanning allocates nothing per
/// document once the buffers have grown.
#[derive(Debug, Default)]
pub struct Scratch {
    norm: String,
    starts: Vec<u32>,
    prefix: Prefix,
    /// Windows that passed a prefilter, in scan order: (end word, words, key).
    cands: Vec<(u32, u32, u64)>,
    items: Vec<u32>,
}

impl GramIndex {
    /// Indexes `items` (texts) under `n`-grams and `seed`; items of fewer than `min_words`
    /// words are not indexed. Returns the index and how each item was indexed.
    pub fn build<'a>(
        items: impl IntoIterator<Item = &'a str>,
        n: usize,
        min_words: usize,
        seed: u64,
    ) -> (GramIndex, Vec<ItemKind>) {
        assert!(n >= 1, "n-grams of at least one word");
        let mut pairs: Vec<(u64, u32)> = Vec::new();
        let mut kinds = Vec::new();
        let mut s = Scratch::default();
        let mut short_lens = std::collections::BTreeSet::new();
        let mut whole_keys = Vec::new();
        let pow: Vec<u64> = std::iter::successors(Some(1u64), |p| Some(p.wrapping_mul(BASE)))
            .take(n + 1)
            .collect();
        for (id, text) in items.into_iter().enumerate() {
            s.norm.clear();
            s.prefix.clear();
            normalize_words(text, &mut s.norm, |out, start| {
                s.prefix.push(h64(&out.as_bytes()[start..], seed));
                if s.prefix.words() >= n {
                    pairs.push((s.prefix.key(n, &pow, seed), id as u32));
                }
            });
            let words = s.prefix.words();
            let kind = if words >= n {
                ItemKind::Ngrams
            } else if words >= min_words.max(1) {
                let key = s.prefix.key(words, &pow, seed);
                pairs.push((key, id as u32));
                whole_keys.push(Table::fix(key));
                short_lens.insert(words);
                ItemKind::Whole
            } else {
                ItemKind::TooShort
            };
            kinds.push(kind);
        }
        pairs.sort_unstable();
        pairs.dedup();
        let distinct = pairs.chunk_by(|a, b| a.0 == b.0).count();
        let mut table = Table::with_entries(distinct);
        let mut multi: Vec<Vec<u32>> = Vec::new();
        for group in pairs.chunk_by(|a, b| a.0 == b.0) {
            let val = if group.len() == 1 {
                group[0].1
            } else {
                multi.push(group.iter().map(|p| p.1).collect());
                MULTI | (multi.len() - 1) as u32
            };
            table.insert(group[0].0, val);
        }
        let mut short_filter = Vec::new();
        if !whole_keys.is_empty() {
            short_filter = vec![0u64; 1 << (FILTER_BITS - 6)];
            for k in &whole_keys {
                let b = (k >> (64 - FILTER_BITS)) as usize;
                short_filter[b >> 6] |= 1 << (b & 63);
            }
        }
        let mut key_filter = vec![0u64; 1 << (KEY_FILTER_BITS - 6)];
        for (k, _) in &pairs {
            let b = (Table::fix(*k) >> (64 - KEY_FILTER_BITS)) as usize;
            key_filter[b >> 6] |= 1 << (b & 63);
        }
        let idx = GramIndex {
            n,
            seed,
            pow,
            table,
            multi,
            short_lens: short_lens.into_iter().collect(),
            short_filter,
            key_filter,
            distinct,
        };
        (idx, kinds)
    }

    /// Distinct keys (n-grams and whole short items).
    pub fn len(&self) -> usize {
        self.distinct
    }

    /// True when no item was indexed.
    pub fn is_empty(&self) -> bool {
        self.distinct == 0
    }

    /// Words per n-gram.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Bytes the index holds in memory.
    pub fn memory_bytes(&self) -> usize {
        self.table.bytes()
            + self.short_filter.len() * 8
            + self.key_filter.len() * 8
            + self
                .multi
                .iter()
                .map(|m| m.len() * 4 + std::mem::size_of::<Vec<u32>>())
                .sum::<usize>()
    }

    /// Scans `text`; for every n-gram (or whole short item) it shares with the index, calls
    /// `hit(normalized words, item ids)`. Returns whether anything matched.
    pub fn scan(&self, text: &str, s: &mut Scratch, mut hit: impl FnMut(&str, &[u32])) -> bool {
        s.norm.clear();
        s.starts.clear();
        s.prefix.clear();
        s.cands.clear();
        let (n, seed, pow) = (self.n, self.seed, &self.pow[..]);
        let Scratch {
            norm,
            starts,
            prefix,
            cands,
            items,
        } = s;
        // three passes, so each is a tight loop whose memory accesses overlap: words and their
        // hashes; windows' keys against the in-cache prefilters; the table for the few left
        normalize_words(text, norm, |out, start| {
            starts.push(start as u32);
            prefix.push(h64(&out.as_bytes()[start..], seed));
        });
        let words = starts.len();
        let ngram = |k: usize, cands: &mut Vec<(u32, u32, u64)>| {
            let key = prefix.key_at(k, n, pow, seed);
            let b = (Table::fix(key) >> (64 - KEY_FILTER_BITS)) as usize;
            if self.key_filter[b >> 6] & (1 << (b & 63)) != 0 {
                cands.push((k as u32, n as u32, key));
            }
        };
        if self.short_lens.is_empty() {
            for k in n..=words {
                ngram(k, cands);
            }
        } else {
            // in the order of the word-by-word scan: at each word, its n-gram, then the
            // whole-item lengths ascending
            for k in 1..=words {
                if k >= n {
                    ngram(k, cands);
                }
                for &l in &self.short_lens {
                    if l > k {
                        break;
                    }
                    let key = prefix.key_at(k, l, pow, seed);
                    let b = (key >> (64 - FILTER_BITS)) as usize;
                    if self.short_filter[b >> 6] & (1 << (b & 63)) != 0 {
                        cands.push((k as u32, l as u32, key));
                    }
                }
            }
        }
        let mut any = false;
        for &(k, l, key) in cands.iter() {
            if let Some(v) = self.table.get(key) {
                any = true;
                let (k, l) = (k as usize, l as usize);
                // the words `k - l .. k`: up to the space before word `k`, or the end
                let end = starts.get(k).map_or(norm.len(), |&x| x as usize - 1);
                report(self, v, &norm[..end], starts, k - l, items, &mut hit);
            }
        }
        any
    }
}

/// Calls `hit` with the words from word `first` to the end of `norm` and the posting's items.
fn report(
    idx: &GramIndex,
    val: u32,
    norm: &str,
    starts: &[u32],
    first: usize,
    items: &mut Vec<u32>,
    hit: &mut impl FnMut(&str, &[u32]),
) {
    items.clear();
    if val & MULTI == 0 {
        items.push(val);
    } else {
        items.extend_from_slice(&idx.multi[(val & !MULTI) as usize]);
    }
    hit(&norm[starts[first] as usize..], items);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(t: &str) -> String {
        let mut o = String::new();
        normalize_words(t, &mut o, |_, _| {});
        o
    }

    #[test]
    fn normalization_deletes_punctuation_and_case() {
        assert_eq!(words("Who wrote\n'Hamlet'?"), "who wrote hamlet");
        assert_eq!(words("  who  WROTE hamlet "), "who wrote hamlet");
        assert_eq!(words("don't — stop!"), "dont stop");
        assert_eq!(words("Ünïcode ÉTÉ 3.14"), "ünïcode été 314");
        assert_eq!(words("a\u{00a0}b\tc"), "a b c");
        assert_eq!(words("!!!"), "");
        assert_eq!(
            words("ΓΡΑΜΜΑΤΟΣΕΙΡΆΣ Straße"),
            words("γραμματοσειράς STRASSE")
        );
        assert_eq!(words("İstanbul"), "istanbul");
    }

    /// The per-character normalization before the class tables (`chars()` and a Unicode
    /// look-up per character), kept as the reference the fast path must equal.
    fn reference_words(text: &str) -> (String, Vec<usize>) {
        let (mut out, mut starts) = (String::new(), Vec::new());
        let (mut start, mut in_word) = (0, false);
        for c in text.chars() {
            let alnum = if c.is_ascii() {
                c.is_ascii_alphanumeric()
            } else {
                c.is_alphanumeric()
            };
            let space = if c.is_ascii() {
                c.is_ascii_whitespace() || c.is_ascii_control()
            } else {
                c.is_whitespace()
            };
            if alnum {
                if !in_word {
                    if !out.is_empty() {
                        out.push(' ');
                    }
                    start = out.len();
                    in_word = true;
                }
                if c.is_ascii() {
                    out.push(c.to_ascii_lowercase());
                } else {
                    fold(c, &mut out);
                }
            } else if space && in_word {
                in_word = false;
                starts.push(start);
            }
        }
        if in_word {
            starts.push(start);
        }
        (out, starts)
    }

    #[test]
    fn class_tables_normalize_every_character_as_unicode_says() {
        // every scalar value inside, before, after and alone between words
        let mut text = String::new();
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
            text.push('a');
            text.push(c);
            text.push('B');
            text.push(' ');
            text.push(c);
            text.push(' ');
        }
        let mut out = String::new();
        let mut starts = Vec::new();
        normalize_words(&text, &mut out, |_, s| starts.push(s));
        let (want, want_starts) = reference_words(&text);
        assert!(out == want, "normalized text differs from the reference");
        assert_eq!(starts, want_starts);
    }

    #[test]
    fn finds_ngrams_and_whole_short_items() {
        let items = [
            "The quick brown fox jumps over the lazy dog near the river bank today.",
            "What is the boiling point of water?",
            "too short",
        ];
        let (idx, kinds) = GramIndex::build(items.iter().copied(), 8, 4, 7);
        assert_eq!(
            kinds,
            [ItemKind::Ngrams, ItemKind::Whole, ItemKind::TooShort]
        );
        let mut s = Scratch::default();
        let mut got = Vec::new();
        let doc = "Intro text. THE QUICK brown fox -- jumps; over the lazy DOG! and more";
        assert!(idx.scan(doc, &mut s, |g, it| got.push((g.to_string(), it.to_vec()))));
        assert_eq!(
            got[0],
            (
                "the quick brown fox jumps over the lazy".to_string(),
                vec![0]
            )
        );
        got.clear();
        let doc = "Quiz: what is the BOILING point of water? Answer below.";
        assert!(idx.scan(doc, &mut s, |g, it| got.push((g.to_string(), it.to_vec()))));
        assert_eq!(
            got,
            [("what is the boiling point of water".to_string(), vec![1])]
        );
        assert!(!idx.scan("the quick brown cat jumps over", &mut s, |_, _| {}));
        assert!(!idx.scan("this is too short to say", &mut s, |_, _| {}));
        assert!(idx.memory_bytes() >= idx.len() * 12);
    }

    #[test]
    fn hits_come_in_word_order_ngram_before_whole_items() {
        // n = 4: item 0 by its 4-grams, items 1 (3 words) and 2 (2 words) whole
        let items = ["a b c d e", "c d e", "d e"];
        let (idx, _) = GramIndex::build(items.iter().copied(), 4, 2, 3);
        let mut s = Scratch::default();
        let mut got = Vec::new();
        idx.scan("x A, b c d e. y d e", &mut s, |g, it| {
            got.push((g.to_string(), it.to_vec()))
        });
        let want = [
            ("a b c d", 0),
            ("b c d e", 0),
            ("d e", 2),
            ("c d e", 1),
            ("d e", 2),
        ];
        let want: Vec<(String, Vec<u32>)> = want
            .iter()
            .map(|(g, i)| (g.to_string(), vec![*i]))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn shared_ngrams_name_every_item() {
        let items = ["one two three four five six", "zero one two three four"];
        let (idx, _) = GramIndex::build(items.iter().copied(), 4, 4, 1);
        let mut s = Scratch::default();
        let mut got = Vec::new();
        idx.scan("one two three four", &mut s, |_, it| {
            got.extend_from_slice(it)
        });
        got.sort();
        assert_eq!(got, [0, 1]);
    }
}
