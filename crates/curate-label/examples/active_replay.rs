//! Active labeling replay: held-out AUC and Spearman against the number of labels bought, for
//! random sampling and for the `uncertainty` strategy, over a fully labelled pool.
//!
//! ```text
//! cargo run --release -p curate-label --example active_replay -- [N_DOCS] [STEP] [OUT.json]
//! ```
//!
//! Pool and teachers: the student benchmark's documents and label sets
//! (`crates/curate-quality/examples/bench_common`): a seeded hash sample of N_DOCS (default
//! 6,000) corpus documents labelled by the fake Anthropic teacher (`fake_teacher`, keep
//! threshold 1) and by the synthetic rubric teacher (`rubric`, keep threshold 3). The holdout (20 %, by a
//! seeded hash of the id) is the same for both strategies and never offered for labeling.
//!
//! - random: the labelled set grows by STEP (default 250) documents at a time in a seeded hash
//!   order of the pool (what `sample` picks without strata);
//! - active: the first STEP are the same random documents; each later round trains the student
//!   on the labels so far (the `train` step's defaults, keep threshold as above), scores the
//!   unlabelled pool, and adds the STEP documents with the smallest margin
//!   `|calibrated score − keep threshold|`, at most one per near-duplicate bucket
//!   ([`curate_label::active::near_dup_bucket`]), ties by the same hash — the
//!   `strategy = "uncertainty"` rule without strata.
//!
//! Every point trains the default student with seed 42 and reads its held-out AUC and Spearman.

#[path = "../../curate-quality/examples/bench_common/mod.rs"]
mod bench_common;

use std::collections::{HashMap, HashSet};

use bench_common::{LabelSet, label_sets};
use curate_core::hash::{derive_seed, h64};
use curate_quality::train::{Example, TrainConfig, train_student};

fn point(
    docs: &[bench_common::Doc],
    set: &LabelSet,
    labelled: &[usize],
    cfg: &TrainConfig,
) -> (curate_quality::Model, f64, f64) {
    let mut ex: Vec<Example<'_>> = Vec::new();
    let by_doc: HashMap<usize, f32> = set.rows.iter().map(|r| (r.0, r.1)).collect();
    for &i in labelled {
        ex.push(Example {
            key: h64(docs[i].id.as_bytes(), 3),
            text: docs[i].text.as_bytes(),
            label: by_doc[&i],
            holdout: false,
        });
    }
    for &(i, label, holdout) in &set.rows {
        if holdout {
            ex.push(Example {
                key: h64(docs[i].id.as_bytes(), 3),
                text: docs[i].text.as_bytes(),
                label,
                holdout: true,
            });
        }
    }
    let t = train_student(&ex, cfg, 42).expect("train");
    let m = &t.metrics;
    (
        t.model,
        m["auc"].as_f64().unwrap_or(f64::NAN),
        m["spearman"].as_f64().unwrap_or(f64::NAN),
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n_docs: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(6000);
    let step: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(250);
    let out = args.get(3).cloned();
    let (docs, _, sets) = label_sets(n_docs);
    let order_seed = derive_seed(1, "replay.order");
    let bucket_seed = derive_seed(1, "replay.buckets");
    let mut report = Vec::new();
    for set in sets.iter().filter(|s| s.name != "reference") {
        let cfg = TrainConfig {
            threshold: Some(set.threshold as f64),
            ..TrainConfig::default()
        };
        let mut pool: Vec<(u64, usize)> = set
            .rows
            .iter()
            .filter(|r| !r.2)
            .map(|r| (h64(docs[r.0].id.as_bytes(), order_seed), r.0))
            .collect();
        pool.sort_unstable();
        let pool: Vec<usize> = pool.into_iter().map(|p| p.1).collect();
        let n_hold = set.rows.iter().filter(|r| r.2).count();
        let positives = set.rows.iter().filter(|r| r.1 >= set.threshold).count();
        eprintln!(
            "{}: pool {} (holdout {n_hold}, positives {positives} of {})",
            set.name,
            pool.len(),
            set.rows.len()
        );
        let sizes: Vec<usize> = (1..=pool.len() / step).map(|k| k * step).collect();
        // Random: prefixes of the hash order.
        let mut random = Vec::new();
        for &n in &sizes {
            let (_, auc, rho) = point(&docs, set, &pool[..n], &cfg);
            eprintln!("  random {n:>5}: auc {auc:.4} spearman {rho:.4}");
            random.push(serde_json::json!({"labels": n, "auc": auc, "spearman": rho}));
        }
        // Active: same first round, then rounds of `step` by margin.
        let mut active = Vec::new();
        let mut labelled: Vec<usize> = pool[..step].to_vec();
        let mut taken: HashSet<usize> = labelled.iter().copied().collect();
        let mut skips = 0usize;
        loop {
            let (model, auc, rho) = point(&docs, set, &labelled, &cfg);
            eprintln!(
                "  active {:>5}: auc {auc:.4} spearman {rho:.4}",
                labelled.len()
            );
            active.push(serde_json::json!({"labels": labelled.len(), "auc": auc, "spearman": rho}));
            if labelled.len() + step > pool.len() {
                break;
            }
            let kt = model.header.keep_threshold;
            let mut sc = model.scorer();
            let mut cands: Vec<(u32, u64, usize)> = pool
                .iter()
                .filter(|i| !taken.contains(i))
                .map(|&i| {
                    let m = (sc.score(docs[i].text.as_bytes()) - kt).abs();
                    (m.to_bits(), h64(docs[i].id.as_bytes(), order_seed), i)
                })
                .collect();
            cands.sort_unstable();
            let mut used = HashSet::new();
            let mut picked = 0;
            let mut rest = Vec::new();
            for c in cands {
                if picked == step {
                    break;
                }
                if used.insert(curate_label::active::near_dup_bucket(
                    &docs[c.2].text,
                    bucket_seed,
                )) {
                    labelled.push(c.2);
                    taken.insert(c.2);
                    picked += 1;
                } else {
                    skips += 1;
                    rest.push(c.2);
                }
            }
            for i in rest.into_iter().take(step - picked) {
                labelled.push(i);
                taken.insert(i);
            }
        }
        report.push(serde_json::json!({
            "teacher": set.name, "threshold": set.threshold, "pool": pool.len(),
            "holdout": n_hold, "step": step, "near_duplicate_skips": skips,
            "random": random, "active": active,
        }));
    }
    let j = serde_json::to_string_pretty(&report).expect("json");
    match out {
        Some(p) => std::fs::write(p, &j).expect("write"),
        None => println!("{j}"),
    }
}
