//! Prediction throughput on real corpus text (`Throughput::Bytes`, one core): the built-in
//! lid.176.ftz as datatrove's LanguageFilter calls it (every label, newlines as spaces), and any
//! other model given in `CURATE_BENCH_FT_MODEL` (e.g. a classifier trained by
//! `benches/compare.sh`). The Python `fasttext` side of the comparison is
//! `benches/python_predict.py`, on the same documents (`benches/compare.sh` runs both).
//!
//! Run: `cargo bench -p curate-fasttext --bench predict` (`CURATE_BENCH_MB`, default 8: that
//! many MB of text from the start of the first corpus shard).

use std::fs::File;
use std::hint::black_box;

use arrow::array::{Array, AsArray};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use curate_fasttext::{Model, Newline, Predict, Scratch};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// The first `CURATE_BENCH_MB` MB of documents of the first shard (the rule
/// `python_predict.py` uses too).
fn corpus() -> Vec<String> {
    let mb: usize = std::env::var("CURATE_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let path = curate_testkit::corpus_shard_or_sample();
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let mut docs = Vec::new();
    let mut bytes = 0;
    for b in reader {
        let b = b.unwrap();
        let t = b.column_by_name("text").unwrap().as_string::<i32>().clone();
        for i in 0..t.len() {
            if bytes >= mb << 20 {
                return docs;
            }
            bytes += t.value(i).len();
            docs.push(t.value(i).to_string());
        }
    }
    docs
}

fn bench_model(c: &mut Criterion, name: &str, model: &Model, docs: &[String], bytes: u64) {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Bytes(bytes));
    g.sample_size(10);
    let mut s = Scratch::default();
    let mut out = Vec::new();
    let opts = Predict {
        k: usize::MAX,
        threshold: 0.0,
        newline: Newline::Space,
    };
    g.bench_function("all_labels", |b| {
        b.iter(|| {
            let mut first = 0usize;
            for d in docs {
                model.predict(d, &opts, &mut s, &mut out);
                first += out.first().map_or(0, |p| p.label);
            }
            black_box(first)
        })
    });
    let top1 = Predict { k: 1, ..opts };
    g.bench_function("top1", |b| {
        b.iter(|| {
            let mut first = 0usize;
            for d in docs {
                model.predict(d, &top1, &mut s, &mut out);
                first += out.first().map_or(0, |p| p.label);
            }
            black_box(first)
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    let docs = corpus();
    let bytes: u64 = docs.iter().map(|d| d.len() as u64).sum();
    eprintln!("{} documents, {bytes} bytes", docs.len());
    bench_model(c, "lid176", &curate_fasttext::lid176(), &docs, bytes);
    if let Ok(path) = std::env::var("CURATE_BENCH_FT_MODEL") {
        let model = Model::open(&path).unwrap_or_else(|e| panic!("{e}"));
        bench_model(c, "model", &model, &docs, bytes);
    }
}

criterion_group!(predict, benches);
criterion_main!(predict);
