//! Scratch experiments (not committed): train_student variants on the benchmark's label sets.
#[path = "bench_common/mod.rs"]
mod bench_common;

use bench_common::*;
use curate_quality::train::{Example, TrainConfig, train_student};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().unwrap())
        .unwrap_or(5000);
    let only = std::env::args().nth(2);
    let variants: Vec<(String, TrainConfig)> = std::env::args()
        .skip(3)
        .map(|v| {
            let cfg: TrainConfig = serde_json::from_str(&v).unwrap();
            (v, cfg)
        })
        .collect();
    let (docs, _, sets) = label_sets(n);
    for set in &sets {
        if only.as_deref().is_some_and(|o| o != set.name) {
            continue;
        }
        let examples: Vec<Example<'_>> = set
            .rows
            .iter()
            .map(|&(i, label, holdout)| Example {
                key: curate_core::hash::h64(docs[i].id.as_bytes(), 3),
                text: docs[i].text.as_bytes(),
                label,
                holdout,
            })
            .collect();
        for (name, cfg) in &variants {
            let t = std::time::Instant::now();
            let tr = train_student(&examples, cfg, 42).unwrap();
            let m = &tr.metrics;
            let alt = set.alt_threshold.map(|a| tr.evaluate_at(a)["auc"].clone());
            let sel: Vec<String> = m["selection"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    format!(
                        "n{}x{}:{:.4}@{}",
                        c["candidate"]["ngrams"],
                        c["candidate"]["crosses"].as_bool().unwrap() as u8,
                        c["score"].as_f64().unwrap(),
                        c["best_epoch"]
                    )
                })
                .collect();
            println!(
                "{:12} {:40} auc {:.4} rho {:.4} alt {:?} ece {:.3} f1 {:.3} {:.1}s  {}",
                set.name,
                name,
                m["auc"].as_f64().unwrap(),
                m["spearman"].as_f64().unwrap(),
                alt.and_then(|a| a.as_f64()),
                m["ece"].as_f64().unwrap(),
                m["f1"].as_f64().unwrap_or(f64::NAN),
                t.elapsed().as_secs_f64(),
                sel.join(" ")
            );
        }
    }
}
