//! Scoring throughput of the student: `cargo bench -p curate-quality --bench scoring`.
//!
//! Texts: the first row group of the real corpus (or the bundled quick-start slice). The model
//! is a real one: trained here on a documented label rule (positives: documents whose URL is on
//! an educational/reference domain) so the weights are not all zero.

use arrow::array::AsArray;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use curate_quality::features::Features;
use curate_quality::fit::{Dataset, FitParams, HeadKind, fit};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

fn corpus(limit_bytes: usize) -> (Vec<String>, Vec<String>) {
    let path = curate_testkit::corpus_shard_or_sample();
    let f = std::fs::File::open(&path).unwrap();
    let r = ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap()
        .with_batch_size(4096)
        .build()
        .unwrap();
    let (mut texts, mut urls, mut bytes) = (Vec::new(), Vec::new(), 0);
    for b in r {
        let b = b.unwrap();
        let t = b.column_by_name("text").unwrap().as_string::<i32>();
        let u = b.column_by_name("url").unwrap().as_string::<i32>();
        for i in 0..b.num_rows() {
            bytes += t.value(i).len();
            texts.push(t.value(i).to_string());
            urls.push(u.value(i).to_string());
        }
        if bytes >= limit_bytes {
            break;
        }
    }
    (texts, urls)
}

fn bench(c: &mut Criterion) {
    let (texts, urls) = corpus(32 << 20);
    let features = Features {
        bits: 20,
        bigrams: true,
        seed: 1,
    };
    let mut d = Dataset::new();
    let (mut s, mut out) = (Vec::new(), Vec::new());
    for (i, (t, u)) in texts.iter().zip(&urls).enumerate().take(4000) {
        let pos = [".edu", ".gov", "wikipedia.org", ".ac."]
            .iter()
            .any(|x| u.contains(x));
        features.normalized(t.as_bytes(), &mut s, &mut out);
        d.push(i as u64, pos as u8 as f32, false, 0, &out);
    }
    let train: Vec<usize> = (0..d.len()).collect();
    let prm = FitParams {
        features,
        head: HeadKind::Logistic,
        scale_max: 1.0,
        learning_rate: 0.2,
        max_epochs: 3,
        patience: 2,
        l2: 0.0,
        seed: 1,
    };
    let (model, _) = fit(&d, &train, &[], &prm);
    let total: usize = texts.iter().map(|t| t.len()).sum();
    let mut g = c.benchmark_group("student_scoring");
    g.throughput(Throughput::Bytes(total as u64));
    g.sample_size(10);
    g.bench_function("score_calibrated_bigrams_2^20", |b| {
        b.iter(|| texts.iter().map(|t| model.score(t.as_bytes())).sum::<f32>())
    });
    g.bench_function("features_only", |b| {
        b.iter(|| {
            texts
                .iter()
                .map(|t| features.for_each(t.as_bytes(), |_| {}))
                .sum::<u32>()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
