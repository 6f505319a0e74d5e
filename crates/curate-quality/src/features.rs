//! Hashed word unigram + bigram features, fastText style, computed without allocating.
//!
//! A *word* is a maximal run of ASCII letters and digits and non-ASCII bytes (so UTF-8 letters of
//! any script stay inside words); ASCII letters are lowercased; everything else separates words.
//! Each word is hashed once with 64-bit FNV-1a over its lowercased bytes; a unigram feature is
//! that hash finalised under the model's seed, a bigram feature combines the hashes of two
//! consecutive words. The top `bits` bits of the finalised hash pick one of `2^bits` buckets.
//!
//! The scheme is fixed and versioned ([`FEATURE_SCHEME`]): models record it, and a model written
//! under another scheme is refused rather than silently scored with different features.

use serde::{Deserialize, Serialize};

/// Version of the tokenisation + hashing scheme; stored in every model.
pub const FEATURE_SCHEME: &str = "words-fnv1a64-fmix64-sqrtn-v1";

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
const BIGRAM_SALT: u64 = 0x9e37_79b9_7f4a_7c15;

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
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// How text becomes feature buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Features {
    /// log2 of the number of hash buckets.
    pub bits: u32,
    /// Whether word bigrams are features too (unigrams always are).
    pub bigrams: bool,
    /// Seed of the feature hash.
    pub seed: u64,
}

impl Features {
    /// Number of buckets (`2^bits`).
    pub fn buckets(&self) -> usize {
        1usize << self.bits
    }

    /// Calls `f` with the bucket of every feature of `text`, in text order, and returns how many
    /// features there were. Allocates nothing.
    #[inline]
    pub fn for_each(&self, text: &[u8], mut f: impl FnMut(u32)) -> u32 {
        let shift = 64 - self.bits;
        let seed = self.seed;
        let bigram_seed = seed.rotate_left(32) ^ BIGRAM_SALT;
        let mut n = 0u32;
        let mut prev = 0u64;
        let mut have_prev = false;
        let mut h = FNV_OFFSET;
        let mut in_word = false;
        let mut emit = |h: u64, prev: u64, have_prev: bool| {
            f((fmix64(h ^ seed) >> shift) as u32);
            n += 1;
            if self.bigrams && have_prev {
                let b = fmix64(prev.rotate_left(23) ^ h ^ bigram_seed);
                f((b >> shift) as u32);
                n += 1;
            }
        };
        for &b in text {
            let c = CLASS[b as usize];
            if c != 0 {
                h = (h ^ c as u64).wrapping_mul(FNV_PRIME);
                in_word = true;
            } else if in_word {
                emit(h, prev, have_prev);
                prev = h;
                have_prev = true;
                h = FNV_OFFSET;
                in_word = false;
            }
        }
        if in_word {
            emit(h, prev, have_prev);
        }
        n
    }

    /// The features of `text` as sorted (bucket, weight) pairs, a bucket's weight being its count
    /// divided by √n (n = number of features), so a rare word in a long document still counts.
    /// `scratch` and `out` are reused buffers.
    pub fn normalized(&self, text: &[u8], scratch: &mut Vec<u32>, out: &mut Vec<(u32, f32)>) {
        scratch.clear();
        out.clear();
        let n = self.for_each(text, |b| scratch.push(b));
        if n == 0 {
            return;
        }
        scratch.sort_unstable();
        let inv = 1.0 / (n as f32).sqrt();
        let mut i = 0;
        while i < scratch.len() {
            let b = scratch[i];
            let mut j = i + 1;
            while j < scratch.len() && scratch[j] == b {
                j += 1;
            }
            out.push((b, (j - i) as f32 * inv));
            i = j;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feats(bigrams: bool, text: &str) -> Vec<u32> {
        let f = Features {
            bits: 20,
            bigrams,
            seed: 7,
        };
        let mut v = Vec::new();
        let n = f.for_each(text.as_bytes(), |b| v.push(b));
        assert_eq!(n as usize, v.len());
        v
    }

    #[test]
    fn words_are_lowercased_and_split_on_punctuation() {
        assert_eq!(feats(false, "Hello, world!"), feats(false, "hello world"));
        assert_eq!(
            feats(false, "  hello\n\tworld  "),
            feats(false, "hello world")
        );
        assert_eq!(feats(false, "").len(), 0);
        assert_eq!(feats(false, "...").len(), 0);
        // Non-ASCII letters stay inside words.
        assert_eq!(feats(false, "café crème").len(), 2);
    }

    #[test]
    fn bigrams_follow_word_order() {
        let ab = feats(true, "alpha beta");
        let ba = feats(true, "beta alpha");
        assert_eq!(ab.len(), 3);
        // Same unigrams, different bigram.
        assert_eq!(ab[0], ba[1]);
        assert_eq!(ab[1], ba[0]);
        assert_ne!(ab[2], ba[2]);
    }

    #[test]
    fn seed_changes_buckets_and_values_are_pinned() {
        let a = Features {
            bits: 20,
            bigrams: true,
            seed: 1,
        };
        let b = Features {
            bits: 20,
            bigrams: true,
            seed: 2,
        };
        let mut va = Vec::new();
        let mut vb = Vec::new();
        a.for_each(b"quality data", |x| va.push(x));
        b.for_each(b"quality data", |x| vb.push(x));
        assert_ne!(va, vb);
        // The scheme is persisted in models: these buckets must never change.
        assert_eq!(va, vec![PINNED[0], PINNED[1], PINNED[2]], "{va:?}");
    }
    const PINNED: [u32; 3] = [228_120, 771_835, 583_366];

    #[test]
    fn normalized_weights_are_counts_over_sqrt_n() {
        let f = Features {
            bits: 10,
            bigrams: true,
            seed: 3,
        };
        let mut s = Vec::new();
        let mut out = Vec::new();
        f.normalized(b"a b a b a b c", &mut s, &mut out);
        // 13 features (7 words + 6 bigrams): weights sum to 13 / √13 = √13.
        let total: f32 = out.iter().map(|x| x.1).sum();
        assert!((total - 13f32.sqrt()).abs() < 1e-5, "{total}");
        assert!(out.windows(2).all(|w| w[0].0 < w[1].0));
    }
}
