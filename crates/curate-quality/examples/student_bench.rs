//! Student-vs-fastText benchmark, our side: builds two label sets from the corpus with explicit
//! rules, writes the shared train / held-out split in fastText's format for the peer script
//! (`benches/fasttext_peer.py`), trains and evaluates our student on the same split, and measures
//! its scoring throughput on one core.
//!
//! ```text
//! cargo run --release -p curate-quality --example student_bench -- OUT_DIR [N_DOCS]
//! /opt/peers-venv/bin/python crates/curate-quality/benches/fasttext_peer.py OUT_DIR
//! ```
//!
//! Label sets (documented in docs/BENCHMARKS.md; the labeling steps' own teachers were not used):
//! - `reference` (binary, DCLM-style "positives from a reference source, negatives the rest"):
//!   1 when the document comes from the Linux kernel documentation or the Debian Administrator's
//!   Handbook (URL contains `linux-doc` or `debian-handbook`), else 0. The student sees only the
//!   text.
//! - `rubric` (0–5, a deterministic stand-in for an LLM rubric): one point each for ≥ 150 words;
//!   ≥ 20 % English function words; ≥ 50 % of non-empty lines with ≥ 8 words; an explanatory cue
//!   ("for example", "e.g.", "because", "in order to", "this means", "note that"); < 2 % markup
//!   characters (`{}[]<>=;|_\/#$`).
//!
//! Documents: a seeded hash sample of N_DOCS (default 20,000) of both corpus shards; held out:
//! 20 % by a seeded hash of the id; our student carves its 10 % validation split from the rest.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use arrow::array::AsArray;
use curate_core::hash::{derive_seed, h64, mix64, unit};
use curate_quality::features::Features;
use curate_quality::fit::{Dataset, FitParams, HeadKind, fit};
use curate_quality::train::{CalibrationChoice, TrainConfig, evaluate};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

struct Doc {
    id: String,
    text: String,
    reference: f32,
    rubric: f32,
    holdout: bool,
}

const FUNCTION_WORDS: [&str; 24] = [
    "the", "of", "and", "to", "a", "in", "is", "that", "for", "it", "as", "with", "be", "on", "this", "are", "by",
    "or", "from", "an", "can", "you", "which", "not",
];
const CUES: [&str; 6] = ["for example", "e.g.", "because", "in order to", "this means", "note that"];

fn rubric(text: &str) -> f32 {
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut points = 0;
    points += (words.len() >= 150) as u32;
    let fw = words.iter().filter(|w| FUNCTION_WORDS.contains(&w.to_ascii_lowercase().as_str())).count();
    points += (!words.is_empty() && fw as f64 >= 0.2 * words.len() as f64) as u32;
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let long = lines.iter().filter(|l| l.split_whitespace().count() >= 8).count();
    points += (!lines.is_empty() && long as f64 >= 0.5 * lines.len() as f64) as u32;
    let lower = text.to_lowercase();
    points += CUES.iter().any(|c| lower.contains(c)) as u32;
    let markup = text.chars().filter(|c| "{}[]<>=;|_\\/#$".contains(*c)).count();
    points += ((markup as f64) < 0.02 * text.chars().count().max(1) as f64) as u32;
    points as f32
}

fn load(n_docs: usize) -> Vec<Doc> {
    let shards = curate_testkit::corpus_shards().unwrap_or_else(|| vec![curate_testkit::quickstart_sample()]);
    let mut all = Vec::new();
    for p in &shards {
        let f = std::fs::File::open(p).unwrap();
        let r = ParquetRecordBatchReaderBuilder::try_new(f).unwrap().with_batch_size(8192).build().unwrap();
        for b in r {
            let b = b.unwrap();
            let t = b.column_by_name("text").unwrap().as_string::<i32>();
            let u = b.column_by_name("url").unwrap().as_string::<i32>();
            let id = b.column_by_name("id").unwrap().as_string::<i32>();
            for i in 0..b.num_rows() {
                all.push((id.value(i).to_string(), u.value(i).to_string(), t.value(i).to_string()));
            }
        }
    }
    let frac = n_docs as f64 / all.len() as f64;
    let pick = derive_seed(1, "bench.sample");
    let hold = derive_seed(1, "bench.holdout");
    all.into_iter()
        .filter(|(id, _, _)| unit(h64(id.as_bytes(), pick)) < frac)
        .map(|(id, url, text)| Doc {
            reference: (url.contains("linux-doc") || url.contains("debian-handbook")) as u8 as f32,
            rubric: rubric(&text),
            holdout: unit(h64(id.as_bytes(), hold)) < 0.2,
            id,
            text,
        })
        .collect()
}

fn write_split(dir: &Path, docs: &[Doc], label: impl Fn(&Doc) -> f32) {
    std::fs::create_dir_all(dir).unwrap();
    let mut tr = std::io::BufWriter::new(std::fs::File::create(dir.join("train.txt")).unwrap());
    let mut ho = std::io::BufWriter::new(std::fs::File::create(dir.join("holdout.txt")).unwrap());
    for d in docs {
        let text: String = d.text.chars().map(|c| if c == '\n' || c == '\r' { ' ' } else { c }).collect();
        let out = if d.holdout { &mut ho } else { &mut tr };
        writeln!(out, "__label__{} {}", label(d) as u32, text).unwrap();
    }
}

fn student(name: &str, docs: &[Doc], label: impl Fn(&Doc) -> f32, scale_max: f32, threshold: f32) -> serde_json::Value {
    let cfg = TrainConfig::default();
    let features = Features { bits: cfg.hash_bits, bigrams: cfg.bigrams, seed: derive_seed(42, "quality.features") };
    let t0 = Instant::now();
    let mut train = Dataset::new();
    let mut hold = Dataset::new();
    let (mut s, mut f) = (Vec::new(), Vec::new());
    for (i, d) in docs.iter().enumerate() {
        features.normalized(d.text.as_bytes(), &mut s, &mut f);
        let target = if d.holdout { &mut hold } else { &mut train };
        target.push(i as u64, label(d), d.holdout, 1, &f);
    }
    let valid_seed = derive_seed(42, "quality.validation");
    let (mut tr, mut va) = (Vec::new(), Vec::new());
    for i in 0..train.len() {
        if unit(mix64(train.keys[i], valid_seed)) < cfg.validation_fraction {
            va.push(i);
        } else {
            tr.push(i);
        }
    }
    let head = if scale_max == 1.0 { HeadKind::Logistic } else { HeadKind::Ordinal };
    let prm = FitParams {
        features,
        head,
        scale_max,
        learning_rate: cfg.learning_rate as f32,
        max_epochs: cfg.max_epochs,
        patience: cfg.patience,
        l2: cfg.l2 as f32,
        seed: derive_seed(42, "quality.order"),
    };
    let (mut model, report) = fit(&train, &tr, &va, &prm);
    let train_secs = t0.elapsed().as_secs_f64();
    let raw: Vec<f32> = (0..hold.len()).map(|i| model.header.head.raw(model.linear_sparse(hold.features(i)))).collect();
    let ev = evaluate(&hold, &raw, scale_max, threshold, CalibrationChoice::Auto, derive_seed(42, "quality.folds"));
    model.header.calibration = ev.calibration.clone();
    // Scoring throughput: every document, one thread, calibrated score from raw text.
    let bytes: usize = docs.iter().map(|d| d.text.len()).sum();
    let mut best = f64::MAX;
    let mut sink = 0.0f32;
    for _ in 0..3 {
        let t = Instant::now();
        for d in docs {
            sink += model.score(d.text.as_bytes());
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    let m = &ev.metrics;
    serde_json::json!({
        "label_set": name,
        "model": "curate student",
        "head": model.header.head.name(),
        "calibration": if model.header.calibration.is_some() { "isotonic" } else { "none" },
        "n_train": report.n_train, "n_valid": report.n_valid, "n_holdout": hold.len(),
        "epochs": report.epochs_run, "best_epoch": report.best_epoch,
        "auc": m["auc"], "spearman": m["spearman"], "f1": m["f1"], "accuracy": m["accuracy"],
        "ece": m["ece"], "ece_raw": m["ece_raw"],
        "train_seconds": train_secs,
        "score_docs": docs.len(), "score_bytes": bytes, "score_seconds": best,
        "docs_per_s": docs.len() as f64 / best, "mb_per_s": bytes as f64 / best / 1e6,
        "checksum": sink,
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let out = PathBuf::from(args.get(1).expect("usage: student_bench OUT_DIR [N_DOCS]"));
    let n: usize = args.get(2).map(|s| s.parse().unwrap()).unwrap_or(20_000);
    let docs = load(n);
    let pos = docs.iter().filter(|d| d.reference == 1.0).count();
    let hist: Vec<usize> = (0..6).map(|k| docs.iter().filter(|d| d.rubric == k as f32).count()).collect();
    eprintln!("{} docs; reference positives {pos}; rubric histogram {hist:?}", docs.len());
    write_split(&out.join("reference"), &docs, |d| d.reference);
    write_split(&out.join("rubric"), &docs, |d| d.rubric);
    let a = student("reference", &docs, |d| d.reference, 1.0, 0.5);
    let b = student("rubric", &docs, |d| d.rubric, 5.0, 3.0);
    let summary = serde_json::json!({"docs": docs.len(), "reference_positives": pos, "rubric_histogram": hist, "results": [a, b]});
    std::fs::write(out.join("ours.json"), serde_json::to_vec_pretty(&summary).unwrap()).unwrap();
    println!("{}", serde_json::to_string_pretty(&summary).unwrap());
}
