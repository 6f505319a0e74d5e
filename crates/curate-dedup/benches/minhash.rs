//! Shingling + MinHash signatures on real corpus text (`Throughput::Bytes`, one thread).
//!
//! `cargo bench -p curate-dedup --bench minhash`

use std::fs::File;

use arrow::array::AsArray;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use curate_dedup::normalize::{NormFlags, Normalizer};
use curate_dedup::signature::{Hasher, MinhashParams, Sketcher};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// About `limit` bytes of document text from the first corpus shard (or the bundled sample).
fn corpus_texts(limit: usize) -> Vec<String> {
    let path = curate_testkit::corpus_shard_or_sample();
    let file = File::open(&path).expect("open corpus");
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("parquet")
        .build()
        .expect("reader");
    let mut out = Vec::new();
    let mut total = 0;
    for batch in reader {
        let batch = batch.expect("batch");
        let texts = batch
            .column_by_name("text")
            .expect("text column")
            .as_string::<i32>();
        for t in texts.iter().flatten() {
            total += t.len();
            out.push(t.to_string());
            if total >= limit {
                return out;
            }
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let texts = corpus_texts(16 << 20);
    let bytes: usize = texts.iter().map(|t| t.len()).sum();
    let hasher = Hasher::new(MinhashParams {
        ngram: 5,
        bands: 14,
        rows: 8,
        seed: 1,
    });
    let mut g = c.benchmark_group("minhash");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.sample_size(10);
    g.bench_function("normalize", |b| {
        let mut n = Normalizer::new(NormFlags::full());
        let mut out = Vec::new();
        b.iter(|| {
            let mut words = 0;
            for t in &texts {
                n.normalize(t, &mut out);
                words += out.len();
            }
            words
        })
    });
    g.bench_function("normalize+shingles", |b| {
        let mut n = Normalizer::new(NormFlags::full());
        let mut out = Vec::new();
        let mut sh = Vec::new();
        b.iter(|| {
            let mut count = 0;
            for t in &texts {
                n.normalize(t, &mut out);
                sh.clear();
                hasher.shingles(&out, &mut sh);
                count += sh.len();
            }
            count
        })
    });
    g.bench_function("text_to_signature_112", |b| {
        let mut sk = Sketcher::default();
        b.iter(|| {
            let mut acc = 0u64;
            for t in &texts {
                if sk.sketch(&hasher, t) {
                    acc ^= sk.sig[0];
                }
            }
            acc
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
