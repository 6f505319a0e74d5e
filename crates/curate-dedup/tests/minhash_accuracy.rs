//! MinHash accuracy on real corpus text with injected edits at controlled Jaccard similarities:
//! the LSH collision rate follows the S-curve `1 − (1 − J^8)^14`, signature estimates track the
//! true Jaccard, and with `verify` the clusters join no pair below the threshold.

mod common;

use common::{Doc, Rng, edit_words, read_docs, split};
use curate_core::batch::doc_key;
use curate_core::{BuildEnv, StepSpec};
use curate_dedup::MinhashDedupConfig;
use curate_dedup::normalize::{NormFlags, Normalizer};
use curate_dedup::signature::{Hasher, MinhashParams, collision_probability, jaccard_sorted};
use proptest::prelude::*;

fn params() -> MinhashParams {
    MinhashParams {
        ngram: 5,
        bands: 14,
        rows: 8,
        seed: 1,
    }
}

fn shingle_set(h: &Hasher, words: &str) -> Vec<u64> {
    let mut v = Vec::new();
    h.shingles(words.as_bytes(), &mut v);
    v.sort_unstable();
    v.dedup();
    v
}

/// Normalized word lists of real documents with at least `min_words` words.
fn base_words(n: usize, min_words: usize) -> Vec<Vec<String>> {
    let path = curate_testkit::corpus_shard_or_sample();
    let mut norm = Normalizer::new(NormFlags::full());
    read_docs(&path, n, min_words)
        .into_iter()
        .map(|d| {
            norm.normalize_to_string(&d.text)
                .split(' ')
                .map(str::to_string)
                .collect()
        })
        .collect()
}

/// The variant of `words` with the most edits whose true Jaccard is still >= `target` (edits
/// replace a growing prefix of one fixed random order of positions, so J falls monotonically).
fn variant_at(h: &Hasher, words: &[String], target: f64, seed: u64) -> (String, f64) {
    let base = words.join(" ");
    let base_set = shingle_set(h, &base);
    let refs: Vec<&str> = words.iter().map(|s| s.as_str()).collect();
    let make = |k: usize| {
        let mut rng = Rng(seed);
        let v = edit_words(&refs, k, &mut rng).join(" ");
        let j = jaccard_sorted(&base_set, &shingle_set(h, &v));
        (v, j)
    };
    // Binary search on a cheap proxy (the fraction of n-gram windows untouched by an edit, which
    // is the Jaccard of the window multisets), then measure the true set Jaccard once.
    let n = h.params().ngram;
    let windows = words.len().saturating_sub(n - 1).max(1);
    let proxy = |k: usize| {
        let mut rng = Rng(seed);
        let edited = edit_words(&refs, k, &mut rng);
        let touched: Vec<bool> = edited.iter().zip(words).map(|(a, b)| a != b).collect();
        let kept = (0..windows)
            .filter(|&i| !touched[i..(i + n).min(touched.len())].iter().any(|t| *t))
            .count();
        kept as f64 / (2 * windows - kept) as f64
    };
    let (mut lo, mut hi) = (0usize, words.len());
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if proxy(mid) >= target {
            lo = mid
        } else {
            hi = mid - 1
        }
    }
    make(lo)
}

fn band_hit(h: &Hasher, a: &[u64], b: &[u64]) -> bool {
    (0..h.params().bands).any(|band| h.band_key(a, band) == h.band_key(b, band))
}

#[test]
fn lsh_recall_follows_the_s_curve_on_real_text() {
    let h = Hasher::new(params());
    let bases = base_words(50, 150);
    assert!(bases.len() >= 40, "need real documents");
    let targets = [0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95];
    let (mut sa, mut sb) = (Vec::new(), Vec::new());
    let mut high = (0usize, 0usize); // pairs at J >= 0.8: (found, total)
    let mut est_err = Vec::new();
    for &t in &targets {
        let (mut found, mut total, mut jsum) = (0usize, 0usize, 0.0);
        for (i, w) in bases.iter().enumerate() {
            let (v, j) = variant_at(&h, w, t, (i as u64) << 8 | (t * 100.0) as u64);
            let base = w.join(" ");
            let (mut s1, mut s2) = (Vec::new(), Vec::new());
            h.shingles(base.as_bytes(), &mut s1);
            h.shingles(v.as_bytes(), &mut s2);
            h.signature(&s1, &mut sa);
            h.signature(&s2, &mut sb);
            let hit = band_hit(&h, &sa, &sb);
            found += hit as usize;
            total += 1;
            jsum += j;
            let est = sa.iter().zip(&sb).filter(|(x, y)| x == y).count() as f64 / sa.len() as f64;
            est_err.push((est - j, j));
            if t >= 0.8 {
                high.0 += hit as usize;
                high.1 += 1;
            }
        }
        let jm = jsum / total as f64;
        let p = collision_probability(jm, 14, 8);
        let rate = found as f64 / total as f64;
        let sigma = (p * (1.0 - p) / total as f64).sqrt();
        eprintln!("J≈{jm:.3}: found {found}/{total} = {rate:.3}, S-curve {p:.3} (σ {sigma:.3})");
        assert!(
            (rate - p).abs() <= 3.0 * sigma + 0.03,
            "J={jm:.3}: rate {rate:.3} vs S-curve {p:.3}"
        );
    }
    let recall = high.0 as f64 / high.1 as f64;
    eprintln!("recall at J >= 0.8: {recall:.3} ({}/{})", high.0, high.1);
    assert!(recall >= 0.92, "recall at J >= 0.8 is {recall:.3}");
    // Signature estimates: unbiased overall, within 4 binomial σ for ~all pairs.
    let bias = est_err.iter().map(|(e, _)| e).sum::<f64>() / est_err.len() as f64;
    let outliers = est_err
        .iter()
        .filter(|(e, j)| e.abs() > 4.0 * (j * (1.0 - j) / 112.0).sqrt() + 0.01)
        .count();
    eprintln!(
        "estimate bias {bias:.4}, outliers {outliers}/{}",
        est_err.len()
    );
    assert!(bias.abs() < 0.01, "MinHash estimate bias {bias}");
    assert!(
        outliers as f64 <= 0.01 * est_err.len() as f64,
        "{outliers} estimates beyond 4σ"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// For random sets with a known overlap, the fraction of equal signature entries estimates
    /// the Jaccard similarity within binomial bounds.
    #[test]
    fn minhash_estimate_within_bounds(common in 0usize..400, only_a in 0usize..300, only_b in 0usize..300, seed in any::<u64>()) {
        prop_assume!(common + only_a + only_b > 0 && common + only_a > 0 && common + only_b > 0);
        let h = Hasher::new(MinhashParams { seed, ..params() });
        let mut rng = Rng(seed ^ 0xabc);
        let c: Vec<u64> = (0..common).map(|_| rng.next()).collect();
        let mut a = c.clone();
        a.extend((0..only_a).map(|_| rng.next()));
        let mut b = c;
        b.extend((0..only_b).map(|_| rng.next()));
        let j = common as f64 / (common + only_a + only_b) as f64;
        let (mut sa, mut sb) = (Vec::new(), Vec::new());
        h.signature(&a, &mut sa);
        h.signature(&b, &mut sb);
        let est = sa.iter().zip(&sb).filter(|(x, y)| x == y).count() as f64 / 112.0;
        let bound = 5.0 * (j * (1.0 - j) / 112.0).sqrt() + 0.02;
        prop_assert!((est - j).abs() <= bound, "J={j:.3} est={est:.3} bound={bound:.3}");
        if j == 1.0 { prop_assert_eq!(&sa, &sb); }
    }
}

/// Bases (file 0) plus one edited variant each (file 1, so bases are the survivors).
fn injected_corpus(h: &Hasher, n: usize, targets: &[f64]) -> (Vec<Doc>, Vec<(u64, u64)>) {
    let bases = base_words(n, 150);
    let mut docs = Vec::new();
    let mut pairs = Vec::new();
    let mut variants = Vec::new();
    for (i, w) in bases.iter().enumerate() {
        let t = targets[i % targets.len()];
        let (v, _) = variant_at(h, w, t, 7777 + i as u64);
        let (kb, kv) = (doc_key(0, i as u64), doc_key(1, i as u64));
        docs.push(Doc {
            key: kb,
            text: w.join(" "),
            score: 0.0,
        });
        variants.push(Doc {
            key: kv,
            text: v,
            score: 0.0,
        });
        pairs.push((kb, kv));
    }
    docs.extend(variants);
    (docs, pairs)
}

#[test]
fn verify_keeps_clusters_above_the_threshold() {
    let h = Hasher::new(params());
    let targets = [0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95];
    let (docs, pairs) = injected_corpus(&h, 120, &targets);
    let text_of = |k: u64| {
        docs.iter()
            .find(|d| d.key == k)
            .map(|d| d.text.clone())
            .unwrap()
    };
    let env = BuildEnv {
        seed: 0,
        index: 0,
        text_column: "text".into(),
        id_column: None,
        previous: vec![],
        config_dir: ".".into(),
    };
    let mut results = Vec::new();
    for verify in [None, Some(0.8)] {
        let cfg = MinhashDedupConfig {
            verify,
            cluster_id_column: Some("cluster".into()),
            ..Default::default()
        };
        let step = cfg.build(&env).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let run = curate_dedup::local::run_barrier(
            step.as_ref(),
            &split(&docs, 3, 50),
            dir.path(),
            0,
            Some("cluster"),
        )
        .unwrap();
        // Precision: every removed document is at J >= 0.8 from its cluster's survivor.
        let (mut good, mut bad) = (0usize, 0usize);
        for (&k, reason) in &run.removed {
            assert_eq!(reason, "minhash_duplicate");
            let root = run.cluster_ids[&k];
            let j = jaccard_sorted(
                &shingle_set(&h, &text_of(root)),
                &shingle_set(&h, &text_of(k)),
            );
            if j >= 0.8 - 1e-3 { good += 1 } else { bad += 1 }
        }
        let precision = good as f64 / (good + bad).max(1) as f64;
        // Recall of pairs at J >= 0.85.
        let (mut hi_found, mut hi_total) = (0, 0);
        for (i, (_, kv)) in pairs.iter().enumerate() {
            if targets[i % targets.len()] >= 0.85 {
                hi_total += 1;
                hi_found += run.removed.contains_key(kv) as usize;
            }
        }
        let recall = hi_found as f64 / hi_total as f64;
        eprintln!(
            "verify={verify:?}: removed {}, precision {precision:.3} ({bad} below 0.8), recall@J>=0.85 {recall:.3}",
            run.removed.len()
        );
        results.push((precision, bad, recall));
    }
    let (p_plain, bad_plain, _) = results[0];
    let (p_verify, _, r_verify) = results[1];
    assert!(
        bad_plain > 0,
        "the injected pairs below 0.8 must produce LSH false positives ({p_plain})"
    );
    assert!(p_verify >= 0.99, "precision with verify = {p_verify}");
    assert!(
        r_verify >= 0.95,
        "recall with verify at J >= 0.85 = {r_verify}"
    );
}
