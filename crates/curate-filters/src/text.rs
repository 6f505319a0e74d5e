//! Python string semantics the reference rules rely on (`strip`, `splitlines`, `count`, `len`),
//! plus small hashing helpers for duplicate detection without allocation.

use std::sync::LazyLock;

use crate::datatrove_tables as dt;
use crate::words::{Class, py_isspace};

pub use crate::words::char_len;

/// datatrove's `PUNCTUATION_SET`.
pub(crate) static PUNCTUATION_SET: LazyLock<Class> =
    LazyLock::new(|| Class::new(dt::PUNCTUATION_SET));
/// datatrove's `TERMINAL_PUNCTUATION`.
pub(crate) static TERMINAL_PUNCTUATION: LazyLock<Class> =
    LazyLock::new(|| Class::new(dt::TERMINAL_PUNCTUATION));

/// Python's `s.strip()`.
pub fn py_strip(s: &str) -> &str {
    py_rstrip(py_lstrip(s))
}

/// Python's `s.lstrip()`.
pub fn py_lstrip(s: &str) -> &str {
    s.trim_start_matches(py_isspace)
}

/// Python's `s.rstrip()`.
pub fn py_rstrip(s: &str) -> &str {
    s.trim_end_matches(py_isspace)
}

/// `s.split(sep)` for an ASCII separator byte (Python's `s.split("\n")` for `b'\n'`), found
/// with `memchr` (`str::split` with a `char` compares each match through a `memcmp` call).
pub fn split_byte(s: &str, sep: u8) -> impl Iterator<Item = &str> + Clone {
    debug_assert!(sep.is_ascii());
    let mut pos = 0usize;
    let mut it = memchr::memchr_iter(sep, s.as_bytes());
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        match it.next() {
            Some(at) => {
                let piece = &s[pos..at];
                pos = at + 1;
                Some(piece)
            }
            None => {
                done = true;
                Some(&s[pos..])
            }
        }
    })
}

/// Python's `s.splitlines()` (no line ends kept; no trailing empty line).
pub fn splitlines(s: &str) -> SplitLines<'_> {
    SplitLines { s, pos: 0 }
}

/// Iterator of [`splitlines`].
#[derive(Debug, Clone)]
pub struct SplitLines<'a> {
    s: &'a str,
    pos: usize,
}

/// Length of the line break (`str.splitlines` boundary) starting at `b[i]`, if one does.
#[inline]
fn line_break_at(b: &[u8], i: usize) -> Option<usize> {
    match b[i] {
        b'\n' | b'\x0b' | b'\x0c' | b'\x1c' | b'\x1d' | b'\x1e' => Some(1),
        b'\r' => Some(if b.get(i + 1) == Some(&b'\n') { 2 } else { 1 }),
        0xC2 if b.get(i + 1) == Some(&0x85) => Some(2),
        0xE2 if b.get(i + 1) == Some(&0x80)
            && matches!(b.get(i + 2), Some(&0xA8) | Some(&0xA9)) =>
        {
            Some(3)
        }
        _ => None,
    }
}

impl<'a> Iterator for SplitLines<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.pos >= self.s.len() {
            return None;
        }
        let rest = &self.s[self.pos..];
        let b = rest.as_bytes();
        let mut i = 0;
        loop {
            // Every line break starts with a byte below 0x20 or above 0x7F: skip 8 bytes at a
            // time while none is (`x - 0x20..` borrows into bit 7 of a byte below 0x20).
            while let Some(w) = b.get(i..i + 8) {
                let x = u64::from_le_bytes(w.try_into().expect("8 bytes"));
                if ((x.wrapping_sub(0x2020_2020_2020_2020) & !x) | x) & 0x8080_8080_8080_8080 != 0 {
                    break;
                }
                i += 8;
            }
            if i >= b.len() {
                break;
            }
            let stop = (i + 8).min(b.len());
            while i < stop {
                if let Some(n) = line_break_at(b, i) {
                    self.pos += i + n;
                    return Some(&rest[..i]);
                }
                i += 1;
            }
        }
        self.pos = self.s.len();
        Some(rest)
    }
}

/// Python's `hay.count(needle)` (non-overlapping occurrences).
pub fn count_str(hay: &str, needle: &str) -> usize {
    memchr::memmem::find_iter(hay.as_bytes(), needle.as_bytes())
        .fold((0usize, 0usize), |(n, next), at| {
            if at >= next {
                (n + 1, at + needle.len())
            } else {
                (n, next)
            }
        })
        .0
}

/// True when `hay.lower()` (Python) contains `needle` (ASCII lowercase). `buf` is scratch.
pub fn lower_contains(hay: &str, needle: &str, buf: &mut String) -> bool {
    if hay.is_ascii() {
        let (h, n) = (hay.as_bytes(), needle.as_bytes());
        return h.len() >= n.len() && h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n));
    }
    py_lower_into(hay, buf);
    buf.contains(needle)
}

/// Python's `s.lower()` into `buf` (cleared first).
pub fn py_lower_into(s: &str, buf: &mut String) {
    buf.clear();
    if s.is_ascii() {
        buf.push_str(s);
        buf.make_ascii_lowercase();
        return;
    }
    for c in s.chars() {
        if c.is_ascii() {
            buf.push(c.to_ascii_lowercase());
        } else {
            buf.extend(c.to_lowercase());
        }
    }
}

pub use crate::idhash::{HashMap64, HashSet64, IdHasher};

/// 64-bit hash of a string for duplicate detection.
#[inline]
pub fn h(s: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(s.as_bytes())
}

/// datatrove's `find_duplicates`: (number of duplicate elements, characters in them).
/// `max_items` bounds the number of items (e.g. newlines + 1 for the lines of a text).
pub(crate) fn find_duplicates<'a>(
    items: impl Iterator<Item = &'a str>,
    max_items: usize,
    seen: &mut KeySet,
) -> (usize, usize) {
    seen.reset(max_items);
    let (mut n, mut chars) = (0, 0);
    for (k, x) in items.enumerate() {
        assert!(k < max_items, "more items than max_items");
        if !seen.insert(h(x)) {
            n += 1;
            chars += char_len(x);
        }
    }
    (n, chars)
}

/// Which 64-bit keys of a set may occur more than once: two bitmaps of about 32 bits per key
/// (`once`, `twice`), filled by [`SeenTwice::add`]. A key added twice always tests positive; a key
/// added once tests positive only when other keys cover its bit (about 3 % of them), so the
/// filter narrows down where to look for repeats (exactly, with a [`CountTable`] or [`KeySet`]) while touching
/// 8 bytes per key instead of a hash-table slot: its bitmaps stay in the first-level cache for
/// documents of thousands of words.
#[derive(Debug, Default)]
pub(crate) struct SeenTwice {
    once: Vec<u64>,
    twice: Vec<u64>,
    shift: u32,
}

impl SeenTwice {
    /// Empties the filter and sizes it for `n` keys.
    pub(crate) fn reset(&mut self, n: usize) {
        let bits = (32 * n).next_power_of_two().max(512);
        let words = bits / 64;
        self.once.clear();
        self.once.resize(words, 0);
        self.twice.clear();
        self.twice.resize(words, 0);
        self.shift = 64 - bits.trailing_zeros();
    }

    #[inline]
    fn bit(&self, key: u64) -> (usize, u64) {
        let b = home(key, self.shift);
        (b >> 6, 1u64 << (b & 63))
    }

    /// Adds one occurrence of `key`.
    #[inline]
    pub(crate) fn add(&mut self, key: u64) {
        let (w, m) = self.bit(key);
        self.twice[w] |= self.once[w] & m;
        self.once[w] |= m;
    }

    /// False when `key` was added at most once (and no other key shares its bit).
    #[inline]
    pub(crate) fn may_repeat(&self, key: u64) -> bool {
        let (w, m) = self.bit(key);
        self.twice[w] & m != 0
    }
}

/// The position of `key` in a power-of-two table addressed by its top `64 - shift` bits after a
/// multiplicative mix.
#[inline]
fn home(key: u64, shift: u32) -> usize {
    (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> shift) as usize
}

/// Capacity (a power of two, load factor at most 1/2), index mask and [`home`] shift of an
/// open-addressing table for up to `n` keys.
fn geometry(n: usize) -> (usize, usize, u32) {
    let cap = (2 * n).next_power_of_two().max(16);
    (cap, cap - 1, 64 - cap.trailing_zeros())
}

/// A set of 64-bit hashes: open addressing over 8-byte slots (0 marks an empty slot; a key of 0
/// is stored as 1, which merges two of the 2^64 hash values, far below the chance of any 64-bit
/// hash collision in a document), cleared per use in proportion to its size.
#[derive(Debug, Default)]
pub(crate) struct KeySet {
    slots: Vec<u64>,
    mask: usize,
    shift: u32,
}

impl KeySet {
    /// Empties the set and sizes it for up to `n` keys (load factor at most 1/2).
    pub(crate) fn reset(&mut self, n: usize) {
        let cap;
        (cap, self.mask, self.shift) = geometry(n);
        self.slots.clear();
        self.slots.resize(cap, 0);
    }

    /// Inserts `key`; true when it was not there yet.
    #[inline]
    pub(crate) fn insert(&mut self, key: u64) -> bool {
        let key = key.max(1);
        let mut i = home(key, self.shift);
        loop {
            let s = &mut self.slots[i];
            if *s == 0 {
                *s = key;
                return true;
            }
            if *s == key {
                return false;
            }
            i = (i + 1) & self.mask;
        }
    }
}

/// An open-addressing table counting 64-bit keys (for `Counter.most_common`-style tallies): each
/// 16-byte slot holds a key, its count (0 marks an empty slot) and the index it was first seen
/// at. Cleared per use in proportion to its size.
#[derive(Debug, Default)]
pub(crate) struct CountTable {
    slots: Vec<CountSlot>,
    mask: usize,
    shift: u32,
}

#[derive(Debug, Clone, Copy, Default)]
struct CountSlot {
    key: u64,
    count: u32,
    first: u32,
}

impl CountTable {
    /// Empties the table and sizes it for up to `n` keys (load factor at most 1/2).
    pub(crate) fn reset(&mut self, n: usize) {
        let cap;
        (cap, self.mask, self.shift) = geometry(n);
        self.slots.clear();
        self.slots.resize(cap, CountSlot::default());
    }

    /// Counts one more occurrence of `key` (first seen at `index` if new); returns its count and
    /// the index it was first seen at.
    #[inline]
    pub(crate) fn bump(&mut self, key: u64, index: u32) -> (u32, u32) {
        let mut i = home(key, self.shift);
        loop {
            let s = &mut self.slots[i];
            if s.count == 0 {
                *s = CountSlot {
                    key,
                    count: 1,
                    first: index,
                };
                return (1, index);
            }
            if s.key == key {
                s.count += 1;
                return (s.count, s.first);
            }
            i = (i + 1) & self.mask;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The line splitter's 8-byte skipping against a byte-by-byte scan, with every kind of
    /// break (and near misses) at every offset around the 8-byte blocks.
    #[test]
    fn splitlines_matches_bytewise_scan() {
        fn reference(s: &str) -> Vec<&str> {
            let b = s.as_bytes();
            let (mut out, mut start, mut i) = (Vec::new(), 0, 0);
            while i < b.len() {
                if let Some(n) = line_break_at(b, i) {
                    out.push(&s[start..i]);
                    i += n;
                    start = i;
                } else {
                    i += 1;
                }
            }
            if start < b.len() {
                out.push(&s[start..]);
            }
            out
        }
        let pieces = [
            "\n", "\r", "\r\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "\t", "\u{85}",
            "\u{2028}", "\u{2029}", "\u{2027}", "\u{a0}", "é", "\u{7f}", " ",
        ];
        for p in pieces {
            for q in pieces {
                for a in 0..20 {
                    for gap in [0, 1, 7, 9] {
                        let s = format!("{}{p}{}{q}xyz", "a".repeat(a), "b".repeat(gap));
                        assert_eq!(splitlines(&s).collect::<Vec<_>>(), reference(&s), "{s:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn python_semantics() {
        assert_eq!(
            splitlines("a\nb\r\nc\rd\u{2028}e\n").collect::<Vec<_>>(),
            ["a", "b", "c", "d", "e"]
        );
        assert_eq!(splitlines("\n\nx").collect::<Vec<_>>(), ["", "", "x"]);
        assert_eq!(splitlines("").count(), 0);
        assert_eq!(count_str("....", "..."), 1);
        assert_eq!(count_str("......", "..."), 2);
        assert_eq!(py_strip("\u{a0} x \u{1f}"), "x");
        let mut b = String::new();
        assert!(lower_contains("JavaScript", "javascript", &mut b));
        assert!(lower_contains("Ünd JAVASCRIPT", "javascript", &mut b));
        let mut twice = SeenTwice::default();
        twice.reset(1000);
        for k in 0..1000u64 {
            twice.add(k * 7919);
        }
        twice.add(5 * 7919);
        twice.add(u64::MAX);
        twice.add(u64::MAX);
        assert!(twice.may_repeat(5 * 7919) && twice.may_repeat(u64::MAX));
        let false_positives = (0..1000u64)
            .filter(|&k| k != 5 && twice.may_repeat(k * 7919))
            .count();
        assert!(false_positives < 100, "{false_positives}");
        let mut seen = KeySet::default();
        for t in ["", "\n", "a", "a\nb", "\n\na\n", "é\nü\n\n"] {
            let want: Vec<&str> = t.split('\n').collect();
            assert_eq!(split_byte(t, b'\n').collect::<Vec<_>>(), want, "{t:?}");
        }
        assert_eq!(
            find_duplicates(["a", "bb", "a", "bb", "bb"].into_iter(), 5, &mut seen),
            (3, 5)
        );
    }

    proptest::proptest! {
        /// The key set, the count table and the seen-twice filter against std's maps, over key
        /// sequences with many repeats, across resets of varying sizes (reused memory); keys 0
        /// and 1 are left out (the key set stores 0 as 1).
        #[test]
        fn tables_agree_with_std_maps(
            docs in proptest::collection::vec(
                proptest::collection::vec(2u64..60, 0..300), 1..6),
            spread in 1u64..u64::MAX / 64,
        ) {
            use std::collections::{HashMap, HashSet};
            let (mut set, mut table, mut twice) =
                (KeySet::default(), CountTable::default(), SeenTwice::default());
            for doc in &docs {
                let keys: Vec<u64> = doc.iter().map(|&k| k.wrapping_mul(spread)).collect();
                set.reset(keys.len());
                table.reset(keys.len());
                twice.reset(keys.len());
                let (mut want_set, mut want_counts) = (HashSet::new(), HashMap::new());
                for (i, &k) in keys.iter().enumerate() {
                    proptest::prop_assert_eq!(set.insert(k), want_set.insert(k));
                    let e = want_counts.entry(k).or_insert((0u32, i as u32));
                    e.0 += 1;
                    proptest::prop_assert_eq!(table.bump(k, i as u32), *e);
                    twice.add(k);
                }
                for (k, &(n, _)) in &want_counts {
                    if n >= 2 {
                        proptest::prop_assert!(twice.may_repeat(*k));
                    }
                }
            }
        }
    }
}
