//! MinHash signatures: word n-gram shingles → `bands × rows` minimum hashes → band keys.
//!
//! ## The hash family, and why it is sound
//!
//! Each shingle (n consecutive normalized words) is reduced to a 64-bit value `x`: every word is
//! hashed once with seeded xxh3-64, the n word hashes are combined with fixed odd multipliers and
//! finalized with a 64-bit avalanche mixer. Each of the K = bands × rows MinHash functions is then
//! Thorup's *pair-multiply-shift* on the two 32-bit halves of `x`:
//!
//! ```text
//! h_i(x) = (((a_i + x_hi) · (b_i + x_lo) + c_i) mod 2^64) >> 32        a_i, b_i, c_i random 64-bit
//! ```
//!
//! which is *strongly universal* (2-independent) onto 32 bits for 64-bit keys (Thorup, "High Speed
//! Hashing for Integers and Strings", 2015, §3.5; the NH construction of UMAC). That is the same
//! guarantee datatrove's `(a·x + b) mod (2^61 − 1)` family gives, but on full 64-bit shingle
//! hashes (datatrove's default hashes shingles to 32 bits, so documents with many shingles see
//! collisions) and at the cost of one 64-bit multiply per function instead of a 128-bit product
//! and a modular reduction. The minimum over `x` is taken on the full 64-bit value and its top 32
//! bits kept, which equals the minimum of the 32-bit outputs.
//!
//! The inner loop runs over functions for a fixed shingle, so it vectorizes (`multiversion`
//! compiles it for AVX-512 and AVX2 and picks at run time; the baseline build is the fallback).
//!
//! Band keys: the `rows` values of band `b` hashed with xxh3-64 under a seed derived from `b`.
//! Two documents share a band key iff (up to a 2^-64 collision) they agree on all rows of it.

use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::normalize::{NormFlags, Normalizer};

/// Largest supported shingle size (words per shingle).
pub const MAX_NGRAM: usize = 32;

/// Parameters fixing a MinHash scheme; equal params give equal signatures.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MinhashParams {
    /// Words per shingle.
    pub ngram: usize,
    /// Number of LSH bands.
    pub bands: usize,
    /// Rows (hashes) per band.
    pub rows: usize,
    /// Seed of the word hashes and the permutation parameters.
    pub seed: u64,
}

/// Precomputed hash functions for one [`MinhashParams`].
#[derive(Debug, Clone)]
pub struct Hasher {
    params: MinhashParams,
    word_seed: u64,
    mult: [u64; 2],
    a: Vec<u64>,
    b: Vec<u64>,
    c: Vec<u64>,
    band_seeds: Vec<u64>,
}

/// splitmix64: the standard seed expander.
#[inline]
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// murmur3's 64-bit finalizer: a bijective avalanche mixer.
#[inline]
fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

impl Hasher {
    /// Builds the hash functions (panics if `ngram` is 0 or above [`MAX_NGRAM`]; configs are
    /// validated before this).
    pub fn new(params: MinhashParams) -> Self {
        assert!(
            params.ngram >= 1 && params.ngram <= MAX_NGRAM,
            "ngram out of range"
        );
        let k = params.bands * params.rows;
        let mut st = params.seed ^ 0x6375_7261_7465_6d68; // "curatemh"
        let word_seed = splitmix(&mut st);
        let mut mult = [0u64; 2];
        // mult[0]: the odd base of the rolling shingle polynomial; mult[1]: base^(ngram-1).
        mult[0] = splitmix(&mut st) | 1;
        mult[1] = (1..params.ngram).fold(1u64, |p, _| p.wrapping_mul(mult[0]));
        let mut a = Vec::with_capacity(k);
        let mut b = Vec::with_capacity(k);
        let mut c = Vec::with_capacity(k);
        for _ in 0..k {
            a.push(splitmix(&mut st));
            b.push(splitmix(&mut st));
            c.push(splitmix(&mut st));
        }
        let band_seeds = (0..params.bands).map(|_| splitmix(&mut st)).collect();
        Self {
            params,
            word_seed,
            mult,
            a,
            b,
            c,
            band_seeds,
        }
    }

    /// The parameters.
    pub fn params(&self) -> &MinhashParams {
        &self.params
    }

    /// Number of hash functions (bands × rows).
    pub fn num_hashes(&self) -> usize {
        self.a.len()
    }

    /// Appends the 64-bit hashes of every word n-gram of already-normalized `words` (separated by
    /// single spaces) to `out`. Fewer than `ngram` words give no shingle (as in datatrove).
    pub fn shingles(&self, words: &[u8], out: &mut Vec<u64>) {
        let n = self.params.ngram;
        let base = self.mult[0];
        let top = self.mult[1]; // base^(n-1), precomputed in `new`
        let mut ring = [0u64; MAX_NGRAM];
        let (mut idx, mut seen, mut h) = (0usize, 0usize, 0u64);
        for w in words.split(|b| *b == b' ') {
            if w.is_empty() {
                continue;
            }
            let wh = xxh3_64_with_seed(w, self.word_seed);
            // Rolling polynomial over the window: H = sum_j w_{t+j} * base^(n-1-j) (mod 2^64).
            if seen >= n {
                h = h.wrapping_sub(ring[idx].wrapping_mul(top));
            }
            h = h.wrapping_mul(base).wrapping_add(wh);
            ring[idx] = wh;
            idx += 1;
            if idx == n {
                idx = 0;
            }
            seen += 1;
            if seen >= n {
                out.push(fmix64(h));
            }
        }
    }

    /// Computes the signature (K minimum 32-bit hashes) of a non-empty shingle multiset.
    pub fn signature(&self, shingles: &[u64], sig: &mut Vec<u64>) {
        sig.clear();
        sig.resize(self.a.len(), u64::MAX);
        min_hashes(&self.a, &self.b, &self.c, shingles, sig);
        for s in sig.iter_mut() {
            *s >>= 32;
        }
    }

    /// Band key of band `band` of signature `sig`.
    #[inline]
    pub fn band_key(&self, sig: &[u64], band: usize) -> u64 {
        let r = self.params.rows;
        let mut buf = [0u8; 4 * 64];
        let rows = &sig[band * r..band * r + r];
        let n = rows.len().min(64);
        for (i, v) in rows.iter().take(n).enumerate() {
            buf[i * 4..i * 4 + 4].copy_from_slice(&(*v as u32).to_le_bytes());
        }
        let mut h = xxh3_64_with_seed(&buf[..n * 4], self.band_seeds[band]);
        // Rows beyond 64 (unusual configs) are folded in one at a time.
        for v in rows.iter().skip(n) {
            h = xxh3_64_with_seed(&v.to_le_bytes(), h);
        }
        h
    }
}

/// The vectorizable core: `sig[i] = min(sig[i], (a_i + x_hi)(b_i + x_lo) + c_i)` over all shingles.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512dq+avx512vl+avx2+fma",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
fn min_hashes(a: &[u64], b: &[u64], c: &[u64], shingles: &[u64], sig: &mut [u64]) {
    let k = sig.len();
    let (a, b, c) = (&a[..k], &b[..k], &c[..k]);
    // Blocks of 16 functions keep their running minima in registers across all shingles.
    let mut start = 0;
    while start < k {
        let end = (start + 16).min(k);
        let (ab, bb, cb) = (&a[start..end], &b[start..end], &c[start..end]);
        let sb = &mut sig[start..end];
        if sb.len() == 16 {
            let mut acc = [u64::MAX; 16];
            acc.copy_from_slice(sb);
            for &x in shingles {
                let hi = x >> 32;
                let lo = x & 0xffff_ffff;
                for i in 0..16 {
                    let h = ab[i]
                        .wrapping_add(hi)
                        .wrapping_mul(bb[i].wrapping_add(lo))
                        .wrapping_add(cb[i]);
                    acc[i] = acc[i].min(h);
                }
            }
            sb.copy_from_slice(&acc);
        } else {
            for &x in shingles {
                let hi = x >> 32;
                let lo = x & 0xffff_ffff;
                for i in 0..sb.len() {
                    let h = ab[i]
                        .wrapping_add(hi)
                        .wrapping_mul(bb[i].wrapping_add(lo))
                        .wrapping_add(cb[i]);
                    sb[i] = sb[i].min(h);
                }
            }
        }
        start = end;
    }
}

/// Reusable per-thread state to go from raw text to a signature without allocating per document.
#[derive(Debug, Clone)]
pub struct Sketcher {
    normalizer: Normalizer,
    /// Normalized text (UTF-8) of the last document.
    pub text: Vec<u8>,
    /// Shingle hashes of the last document.
    pub shingles: Vec<u64>,
    /// Signature of the last document.
    pub sig: Vec<u64>,
}

impl Default for Sketcher {
    fn default() -> Self {
        Self::new(NormFlags::full())
    }
}

impl Sketcher {
    /// A sketcher normalizing with `flags`.
    pub fn new(flags: NormFlags) -> Self {
        Self {
            normalizer: Normalizer::new(flags),
            text: Vec::new(),
            shingles: Vec::new(),
            sig: Vec::new(),
        }
    }

    /// Normalizes `text`, shingles it and computes its signature. Returns false (and leaves
    /// `sig` empty) when the document has fewer words than the shingle size.
    pub fn sketch(&mut self, hasher: &Hasher, text: &str) -> bool {
        self.normalizer.normalize(text, &mut self.text);
        self.shingles.clear();
        hasher.shingles(&self.text, &mut self.shingles);
        if self.shingles.is_empty() {
            self.sig.clear();
            return false;
        }
        hasher.signature(&self.shingles, &mut self.sig);
        true
    }
}

/// Exact Jaccard similarity of two sorted, deduplicated slices.
pub fn jaccard_sorted<T: Ord>(a: &[T], b: &[T]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let (mut i, mut j, mut inter) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                inter += 1;
                i += 1;
                j += 1;
            }
        }
    }
    inter as f64 / (a.len() + b.len() - inter) as f64
}

/// The LSH probability that a pair of Jaccard similarity `j` shares at least one band:
/// `1 − (1 − j^rows)^bands`.
pub fn collision_probability(j: f64, bands: usize, rows: usize) -> f64 {
    1.0 - (1.0 - j.powi(rows as i32)).powi(bands as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hasher() -> Hasher {
        Hasher::new(MinhashParams {
            ngram: 5,
            bands: 14,
            rows: 8,
            seed: 1,
        })
    }

    #[test]
    fn shingles_count_and_order_sensitivity() {
        let h = hasher();
        let mut v = Vec::new();
        h.shingles(b"a b c d e f g", &mut v);
        assert_eq!(v.len(), 3);
        let mut w = Vec::new();
        h.shingles(b"b a c d e f g", &mut w);
        assert_ne!(v[0], w[0], "word order matters within a shingle");
        assert_eq!(v[2], w[2], "same window, same hash");
        let mut short = Vec::new();
        h.shingles(b"a b c d", &mut short);
        assert!(short.is_empty());
    }

    #[test]
    fn signature_is_order_independent_and_pinned() {
        let h = hasher();
        let mut s1 = Vec::new();
        let mut s2 = Vec::new();
        h.signature(&[1, 2, 3, 99, 1 << 40], &mut s1);
        h.signature(&[1 << 40, 99, 3, 2, 1, 1], &mut s2);
        assert_eq!(s1, s2);
        assert_eq!(s1.len(), 112);
        assert!(s1.iter().all(|v| *v <= u32::MAX as u64));
        // Scalar reference of the same family.
        for (i, got) in s1.iter().enumerate() {
            let m = [1u64, 2, 3, 99, 1 << 40]
                .iter()
                .map(|&x| {
                    h.a[i]
                        .wrapping_add(x >> 32)
                        .wrapping_mul(h.b[i].wrapping_add(x & 0xffff_ffff))
                        .wrapping_add(h.c[i])
                })
                .min()
                .unwrap();
            assert_eq!(*got, m >> 32);
        }
    }

    #[test]
    fn s_curve_values() {
        assert!((collision_probability(0.8, 14, 8) - 0.924).abs() < 0.001);
        assert!((collision_probability(0.7, 14, 8) - 0.565).abs() < 0.002);
    }
}
