//! Student-vs-fastText benchmark, our side: builds the label sets from the corpus, writes the
//! shared train / held-out split in fastText's format for the peer script
//! (`benches/fasttext_peer.py`), trains and evaluates the default student on the same split, and
//! measures its scoring throughput on one core.
//!
//! ```text
//! cargo run --release -p curate-quality --example student_bench -- OUT_DIR [N_DOCS]
//! /opt/peers-venv/bin/python crates/curate-quality/benches/fasttext_peer.py OUT_DIR
//! ```
//!
//! Label sets (documented in docs/BENCHMARKS.md):
//! - `reference`: the `reference` teacher's rule — positives are the quick start's reference
//!   documents (`configs/quickstart/reference.jsonl`, Rust-book prose), negatives a 3,000-document
//!   hash sample of the corpus documents below.
//! - `fake_teacher`: the fake Anthropic server's default teacher
//!   (`curate_testkit::anthropic::fake_score`: how many of ten teaching words occur, capped at 5)
//!   on every sampled corpus document; AUC / F1 at keep threshold 2 (and 3, where about 1 % of
//!   documents are positive).
//! - `rubric`: the synthetic rubric teacher (`curate_testkit::rubric::rubric_score`: prose vs
//!   lists, length, vocabulary richness, sentence structure, code/table density, cue words that
//!   count only in prose, 12 % seeded label noise) on every sampled corpus document; AUC / F1 at 3.
//!
//! Documents: a seeded hash sample of N_DOCS (default 8,000) of both corpus shards; held out:
//! 20 % by a seeded hash of the id; the student carves its validation split from the rest.
//! Scoring throughput is measured over the sampled corpus documents (written once to
//! OUT_DIR/score.txt for the peer, which times fastText on the same texts).

#[path = "bench_common/mod.rs"]
mod bench_common;

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use bench_common::{Doc, LabelSet, label_sets, one_line, write_split};
use curate_quality::train::{Example, TrainConfig, train_student};

fn student(
    docs: &[Doc],
    set: &LabelSet,
    score_docs: &[Doc],
    model_out: &std::path::Path,
) -> serde_json::Value {
    // The student is told the set's keep rule, as fastText's binary formulation is (a user sets
    // `threshold` to the keep rule of their teacher); AUC, F1 and selection use it.
    let cfg = TrainConfig {
        threshold: Some(set.threshold as f64),
        ..TrainConfig::default()
    };
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
    let t0 = Instant::now();
    let trained = train_student(&examples, &cfg, 42).expect("train");
    let train_secs = t0.elapsed().as_secs_f64();
    let model = &trained.model;
    // kept for whole-process scoring runs (`score` with `model = ".../model.bin"`)
    std::fs::write(model_out, model.to_bytes()).expect("write model");
    // Scoring throughput: every document, one thread, calibrated score from raw text.
    let bytes: usize = score_docs.iter().map(|d| d.text.len()).sum();
    let mut best = f64::MAX;
    let mut best_cpu = f64::MAX;
    let mut sink = 0.0f32;
    let mut scorer = model.scorer();
    let cpu = || curate_testkit::thread_cpu_seconds().unwrap_or(f64::NAN);
    for _ in 0..3 {
        let (t, c) = (Instant::now(), cpu());
        for d in score_docs {
            sink += scorer.score(d.text.as_bytes());
        }
        best = best.min(t.elapsed().as_secs_f64());
        best_cpu = best_cpu.min(cpu() - c);
    }
    let alt = set.alt_threshold.map(|t| {
        let e = trained.evaluate_at(t);
        serde_json::json!({"threshold": t, "auc": e["auc"], "spearman": e["spearman"], "f1": e["f1"], "f1_probability": e["f1_probability"], "accuracy": e["accuracy"]})
    });
    let m = &trained.metrics;
    serde_json::json!({
        "label_set": set.name,
        "model": "curate student",
        "head": model.header.head.name(),
        "calibration": m["calibration"],
        "selection": m["selection"],
        "n_train": m["n_train"], "n_valid": m["n_validation"], "n_holdout": m["n_holdout"],
        "auc": m["auc"], "spearman": m["spearman"], "f1": m["f1"], "f1_probability": m["f1_probability"], "accuracy": m["accuracy"],
        "ece": m["ece"], "ece_raw": m["ece_raw"], "threshold": set.threshold, "alt": alt,
        "train_seconds": train_secs,
        "score_docs": score_docs.len(), "score_bytes": bytes, "score_seconds": best,
        "docs_per_s": score_docs.len() as f64 / best, "mb_per_s": bytes as f64 / best / 1e6,
        "score_cpu_seconds": best_cpu, "cpu_mb_per_s": bytes as f64 / best_cpu / 1e6,
        "model_bytes": model.to_bytes().len(),
        "checksum": sink,
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let out = PathBuf::from(
        args.get(1)
            .expect("usage: student_bench OUT_DIR [N_DOCS] [--sets a,b]"),
    );
    let n: usize = args
        .get(2)
        .filter(|a| !a.starts_with("--"))
        .map(|s| s.parse().unwrap())
        .unwrap_or(8_000);
    let only: Option<Vec<String>> = args
        .iter()
        .position(|a| a == "--sets")
        .map(|i| args[i + 1].split(',').map(String::from).collect());
    let (docs, n_corpus, sets) = label_sets(n);
    std::fs::create_dir_all(&out).unwrap();
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(out.join("score.txt")).unwrap());
        for d in &docs[..n_corpus] {
            writeln!(f, "{}", one_line(&d.text)).unwrap();
        }
    }
    let mut results = Vec::new();
    let mut described = Vec::new();
    for set in &sets {
        write_split(&out.join(set.name), &docs, set);
        let pos = set.rows.iter().filter(|r| r.1 >= set.threshold).count();
        let hold = set.rows.iter().filter(|r| r.2).count();
        let mut hist = [0usize; 6];
        for r in &set.rows {
            hist[(r.1 as usize).min(5)] += 1;
        }
        eprintln!(
            "{}: {} rows, {pos} positive, {hold} held out, labels {hist:?}",
            set.name,
            set.rows.len()
        );
        described.push(serde_json::json!({
            "name": set.name, "rows": set.rows.len(), "positives": pos, "holdout": hold,
            "label_counts": hist, "scale_max": set.scale_max, "threshold": set.threshold,
            "alt_threshold": set.alt_threshold,
        }));
        if only
            .as_ref()
            .is_some_and(|o| !o.iter().any(|x| x == set.name))
        {
            continue;
        }
        let r = student(
            &docs,
            set,
            &docs[..n_corpus],
            &out.join(set.name).join("model.bin"),
        );
        eprintln!(
            "  student: auc {} spearman {} f1 {} ece {} ({:.1} s, {:.0} MB/s)",
            r["auc"],
            r["spearman"],
            r["f1"],
            r["ece"],
            r["train_seconds"].as_f64().unwrap(),
            r["cpu_mb_per_s"].as_f64().unwrap()
        );
        results.push(r);
    }
    std::fs::write(
        out.join("sets.json"),
        serde_json::to_vec_pretty(&described).unwrap(),
    )
    .unwrap();
    let summary = serde_json::json!({
        "corpus_docs": n_corpus, "reference_docs": docs.len() - n_corpus,
        "sets": described, "results": results,
    });
    std::fs::write(
        out.join("ours.json"),
        serde_json::to_vec_pretty(&summary).unwrap(),
    )
    .unwrap();
    println!("{}", serde_json::to_string_pretty(&summary).unwrap());
}
