//! Hashed word features, fastText style, computed without allocating: word n-grams (unigrams,
//! optionally bigrams and trigrams) and word prefixes.
//!
//! A *word* is a maximal run of ASCII letters and digits and non-ASCII bytes (so UTF-8 letters of
//! any script stay inside words); ASCII letters are lowercased; everything else separates words.
//! Each word is hashed once with 64-bit FNV-1a over its lowercased bytes; a unigram feature is
//! that hash finalised under the model's seed, an n-gram feature combines the hashes of n
//! consecutive words, and a prefix feature is the FNV-1a state after the first `prefix` bytes of a
//! longer word (so `learning`, `learned` and `learner` share the feature `learn`). The top
//! `bits` bits of the finalised hash pick one of `2^bits` buckets.
//!
//! A document's bag is the *set* of its buckets (each counted once), weighted 1/√(number of
//! distinct buckets): whether a telling word occurs matters more than how often, and a rare word
//! in a long document still counts. [`Features::bag`] computes it for training;
//! [`crate::model::Scorer`] computes the same sum while it streams the text.
//!
//! The scheme is fixed and versioned ([`FEATURE_SCHEME`]): models record it, and a model written
//! under another scheme is refused rather than silently scored with different features.

use serde::{Deserialize, Serialize};

/// Version of the tokenisation + hashing scheme; stored in every model.
pub const FEATURE_SCHEME: &str = "words-fnv1a64-fmix64-ngrams-prefix-set-v2";

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
const BIGRAM_SALT: u64 = 0x9e37_79b9_7f4a_7c15;
const TRIGRAM_SALT: u64 = 0x6a09_e667_f3bc_c909;
const PREFIX_SALT: u64 = 0xbb67_ae85_84ca_a73b;

/// Byte class table: 0 for a separator, otherwise the byte as it enters the word hash
/// (ASCII letters lowercased, non-ASCII bytes unchanged).
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = if b.is_ascii_alphanumeric() {
            b.to_ascii_lowercase()
        } else if b >= 0x80 {
            b
        } else {
            0
        };
        i += 1;
    }
    t
};

/// MurmurHash3's 64-bit finaliser: a fixed bijective mix.
#[inline(always)]
pub(crate) fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// What a feature is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// One word.
    Unigram,
    /// Two consecutive words.
    Bigram,
    /// Three consecutive words.
    Trigram,
    /// The first `prefix` bytes of a longer word.
    Prefix,
}

/// How text becomes feature buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Features {
    /// log2 of the number of hash buckets.
    pub bits: u32,
    /// Longest word n-gram: 1 (unigrams), 2 (+ bigrams) or 3 (+ trigrams).
    pub ngrams: u8,
    /// Words longer than this many bytes also give their first `prefix` bytes as a feature
    /// (0: no prefix features).
    pub prefix: u8,
    /// Seed of the feature hash.
    pub seed: u64,
}

impl Features {
    /// Number of buckets (`2^bits`).
    pub fn buckets(&self) -> usize {
        1usize << self.bits
    }

    /// Calls `f` with the bucket of every feature of `text`, in text order (a bucket may repeat),
    /// and returns how many features there were. Allocates nothing.
    #[inline]
    pub fn for_each(&self, text: &[u8], mut f: impl FnMut(u32)) -> u32 {
        self.walk(text, |b, _, _| f(b))
    }

    /// Like [`Features::for_each`], with each feature's kind and byte span in `text` (the
    /// n-gram's words, or the prefix): how `model inspect` names the strongest buckets.
    pub fn for_each_span(&self, text: &[u8], f: impl FnMut(u32, Kind, (usize, usize))) -> u32 {
        self.walk(text, f)
    }

    #[inline(always)]
    fn walk(&self, text: &[u8], mut f: impl FnMut(u32, Kind, (usize, usize))) -> u32 {
        let shift = 64 - self.bits;
        let seed = self.seed;
        let bigram_seed = seed.rotate_left(32) ^ BIGRAM_SALT;
        let trigram_seed = seed.rotate_left(16) ^ TRIGRAM_SALT;
        let prefix_seed = seed.rotate_left(48) ^ PREFIX_SALT;
        let (ngrams, prefix) = (self.ngrams, self.prefix as usize);
        let mut n = 0u32;
        // Hashes and start offsets of the two previous words (valid when `words` > 0, > 1).
        let (mut p1, mut p2, mut s1, mut s2) = (0u64, 0u64, 0usize, 0usize);
        let mut words = 0u32;
        let mut h = FNV_OFFSET;
        let mut start = 0usize;
        let mut len = 0usize;
        let mut ph = 0u64;
        let mut emit = |h: u64,
                        ph: u64,
                        (start, end): (usize, usize),
                        p: [u64; 2],
                        s: [usize; 2],
                        words: u32| {
            f(
                (fmix64(h ^ seed) >> shift) as u32,
                Kind::Unigram,
                (start, end),
            );
            n += 1;
            if ngrams >= 2 && words >= 1 {
                let b = fmix64(p[0].rotate_left(23) ^ h ^ bigram_seed);
                f((b >> shift) as u32, Kind::Bigram, (s[0], end));
                n += 1;
                if ngrams >= 3 && words >= 2 {
                    let t = p[1].rotate_left(41) ^ p[0].rotate_left(23) ^ h ^ trigram_seed;
                    f((fmix64(t) >> shift) as u32, Kind::Trigram, (s[1], end));
                    n += 1;
                }
            }
            if prefix > 0 && end - start > prefix {
                let b = fmix64(ph ^ prefix_seed);
                f((b >> shift) as u32, Kind::Prefix, (start, start + prefix));
                n += 1;
            }
        };
        for (i, &b) in text.iter().enumerate() {
            let c = CLASS[b as usize];
            if c != 0 {
                if len == 0 {
                    start = i;
                }
                h = (h ^ c as u64).wrapping_mul(FNV_PRIME);
                len += 1;
                if len == prefix {
                    ph = h;
                }
            } else if len > 0 {
                emit(h, ph, (start, i), [p1, p2], [s1, s2], words);
                (p2, s2) = (p1, s1);
                (p1, s1) = (h, start);
                words += 1;
                h = FNV_OFFSET;
                len = 0;
            }
        }
        if len > 0 {
            emit(h, ph, (start, text.len()), [p1, p2], [s1, s2], words);
        }
        n
    }

    /// The distinct buckets of `text`, sorted, into `out` (`out` is reused; nothing else is
    /// allocated once it has grown). The bag's weight is `1 / √out.len()` for each.
    pub fn bag(&self, text: &[u8], out: &mut Vec<u32>) {
        out.clear();
        self.for_each(text, |b| out.push(b));
        out.sort_unstable();
        out.dedup();
    }
}

/// The weight of each bucket of a bag of `distinct` buckets.
#[inline]
pub fn bag_weight(distinct: usize) -> f32 {
    if distinct == 0 {
        0.0
    } else {
        1.0 / (distinct as f32).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feats(ngrams: u8, prefix: u8, text: &str) -> Vec<u32> {
        let f = Features {
            bits: 20,
            ngrams,
            prefix,
            seed: 7,
        };
        let mut v = Vec::new();
        let n = f.for_each(text.as_bytes(), |b| v.push(b));
        assert_eq!(n as usize, v.len());
        v
    }

    #[test]
    fn words_are_lowercased_and_split_on_punctuation() {
        assert_eq!(feats(1, 0, "Hello, world!"), feats(1, 0, "hello world"));
        assert_eq!(
            feats(1, 0, "  hello\n\tworld  "),
            feats(1, 0, "hello world")
        );
        assert_eq!(feats(1, 0, "").len(), 0);
        assert_eq!(feats(1, 0, "...").len(), 0);
        // Non-ASCII letters stay inside words.
        assert_eq!(feats(1, 0, "café crème").len(), 2);
    }

    #[test]
    fn ngrams_follow_word_order() {
        let ab = feats(2, 0, "alpha beta");
        let ba = feats(2, 0, "beta alpha");
        assert_eq!(ab.len(), 3);
        // Same unigrams, different bigram.
        assert_eq!(ab[0], ba[1]);
        assert_eq!(ab[1], ba[0]);
        assert_ne!(ab[2], ba[2]);
        // Trigrams: 3 words give 3 unigrams, 2 bigrams, 1 trigram.
        assert_eq!(feats(3, 0, "a b c").len(), 6);
        assert_eq!(feats(3, 0, "a b c")[..5], feats(2, 0, "a b c")[..]);
    }

    #[test]
    fn prefixes_join_word_forms() {
        // "learning" and "learned" share the 5-byte prefix feature "learn"; "learn" itself (not
        // longer than 5 bytes) has none.
        let a = feats(1, 5, "learning");
        let b = feats(1, 5, "Learned");
        assert_eq!(a.len(), 2);
        assert_eq!(a[1], b[1]);
        assert_ne!(a[0], b[0]);
        assert_eq!(feats(1, 5, "learn").len(), 1);
    }

    #[test]
    fn seed_changes_buckets_and_values_are_pinned() {
        let mk = |seed| Features {
            bits: 20,
            ngrams: 2,
            prefix: 4,
            seed,
        };
        let (mut va, mut vb) = (Vec::new(), Vec::new());
        mk(1).for_each(b"quality data", |x| va.push(x));
        mk(2).for_each(b"quality data", |x| vb.push(x));
        assert_ne!(va, vb);
        // The scheme is persisted in models: these buckets must never change ("quality", its
        // prefix "qual", "data", "quality data"; the word and bigram buckets are those of v1).
        assert_eq!(va, PINNED.to_vec(), "{va:?}");
    }
    const PINNED: [u32; 4] = [228_120, 794_506, 771_835, 583_366];

    #[test]
    fn bag_is_sorted_and_distinct() {
        let f = Features {
            bits: 10,
            ngrams: 2,
            prefix: 0,
            seed: 3,
        };
        let mut out = Vec::new();
        f.bag(b"a b a b a b c", &mut out);
        // Distinct: a, b, c, "a b", "b a", "b c".
        assert_eq!(out.len(), 6);
        assert!(out.windows(2).all(|w| w[0] < w[1]));
        assert!((bag_weight(4) - 0.5).abs() < 1e-7);
    }
}
