//! CPU-time throughput of prediction, measured as `benches/python_predict.py` measures the
//! Python package (best of N runs of CPU time, not wall time, so a loaded machine counts the
//! same on both sides): the first MB MB of documents of SHARD, every document predicted with
//! `k` labels (`best`: [`Model::predict_best`], what the `language` step calls), newlines as
//! spaces.
//!
//! Usage: cargo run --release -p curate-fasttext --example cpu_throughput -- MODEL|lid176 SHARD MB [K|best] [RUNS]

use std::fs::File;

use arrow::array::{Array, AsArray};
use curate_fasttext::{Model, Newline, Predict, Scratch};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// CPU seconds the calling thread has run so far, from /proc/self/schedstat
/// (nanoseconds; /proc/self/stat's clock ticks are too coarse for sub-second runs).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").expect("schedstat");
    let ns: f64 = stat.split(' ').next().unwrap().parse().unwrap();
    ns / 1e9
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let model = if a[1] == "lid176" {
        curate_fasttext::lid176()
    } else {
        std::sync::Arc::new(Model::open(&a[1]).unwrap_or_else(|e| panic!("{e}")))
    };
    let mb: usize = a[3].parse().unwrap();
    let best_only = a.get(4).is_some_and(|v| v == "best");
    let k: i64 = match a.get(4) {
        Some(v) if v != "best" => v.parse().unwrap(),
        _ => -1,
    };
    let runs: usize = a.get(5).map_or(5, |v| v.parse().unwrap());
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&a[2]).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let (mut docs, mut total) = (Vec::new(), 0usize);
    'read: for b in reader {
        let b = b.unwrap();
        let t = b.column_by_name("text").unwrap().as_string::<i32>().clone();
        for i in 0..t.len() {
            if total >= mb << 20 {
                break 'read;
            }
            total += t.value(i).len();
            docs.push(t.value(i).to_string());
        }
    }
    let opts = Predict {
        k: if k < 0 { usize::MAX } else { k as usize },
        threshold: 0.0,
        newline: Newline::Space,
    };
    let mut s = Scratch::default();
    let mut out = Vec::new();
    let mut best = f64::INFINITY;
    for _ in 0..runs {
        let t0 = cpu_seconds();
        let mut first = 0usize;
        for d in &docs {
            if best_only {
                first += model
                    .predict_best(d, Newline::Space, &mut s)
                    .map_or(0, |p| p.label);
            } else {
                model.predict(d, &opts, &mut s, &mut out);
                first += out.first().map_or(0, |p| p.label);
            }
        }
        std::hint::black_box(first);
        best = best.min(cpu_seconds() - t0);
    }
    println!(
        "curate-fasttext {}: {} documents, {total} bytes, {best:.3} s CPU (best of {runs}), {:.1} MiB/s",
        if best_only {
            "best".to_string()
        } else {
            format!("k={k}")
        },
        docs.len(),
        total as f64 / best / (1 << 20) as f64
    );
}
