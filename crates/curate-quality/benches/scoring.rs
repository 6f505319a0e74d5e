//! Scoring throughput of the student: `cargo bench -p curate-quality --bench scoring`.
//!
//! Texts: the first ≥ 32 MiB of the real corpus (or the bundled quick-start slice). The models
//! are real ones, trained here by the default `train` algorithm (`train_student`, model selection
//! included) on 4,000 of those documents labelled by the synthetic rubric teacher
//! (`curate_testkit::rubric`) — which selects document features — and by the fake Claude teacher
//! (`curate_testkit::anthropic::fake_score`), with the document features forced on and off, so
//! both scoring paths are timed.

use arrow::array::AsArray;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use curate_quality::doc::DocStats;
use curate_quality::train::{Example, TrainConfig, train_student};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

fn corpus(limit_bytes: usize) -> Vec<String> {
    let path = curate_testkit::corpus_shard_or_sample();
    let f = std::fs::File::open(&path).unwrap();
    let r = ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap()
        .with_batch_size(4096)
        .build()
        .unwrap();
    let (mut texts, mut bytes) = (Vec::new(), 0);
    for b in r {
        let b = b.unwrap();
        let t = b.column_by_name("text").unwrap().as_string::<i32>();
        for i in 0..b.num_rows() {
            bytes += t.value(i).len();
            texts.push(t.value(i).to_string());
        }
        if bytes >= limit_bytes {
            break;
        }
    }
    texts
}

fn model(texts: &[String], teacher: fn(&str) -> u32, doc: bool) -> curate_quality::Model {
    let examples: Vec<Example<'_>> = texts
        .iter()
        .take(4000)
        .enumerate()
        .map(|(i, t)| Example {
            key: i as u64,
            text: t.as_bytes(),
            label: teacher(t) as f32,
            holdout: i % 5 == 0,
        })
        .collect();
    let cfg = TrainConfig {
        doc_features: Some(doc),
        ..TrainConfig::default()
    };
    train_student(&examples, &cfg, 1).unwrap().model
}

fn bench(c: &mut Criterion) {
    let texts = corpus(32 << 20);
    let total: usize = texts.iter().map(|t| t.len()).sum();
    let with_doc = model(&texts, curate_testkit::rubric::rubric_score, true);
    let bag_only = model(&texts, curate_testkit::anthropic::fake_score, false);
    let mut g = c.benchmark_group("student_scoring");
    g.throughput(Throughput::Bytes(total as u64));
    g.sample_size(10);
    for (name, m) in [
        ("score_bag_and_doc_features", &with_doc),
        ("score_bag_only", &bag_only),
    ] {
        let mut sc = m.scratch();
        g.bench_function(name, |b| {
            b.iter(|| {
                texts
                    .iter()
                    .map(|t| m.score(t.as_bytes(), &mut sc))
                    .sum::<f32>()
            })
        });
    }
    let features = with_doc.header.features;
    g.bench_function("bag_features_only", |b| {
        b.iter(|| {
            texts
                .iter()
                .map(|t| features.for_each(t.as_bytes(), |_| {}))
                .sum::<u32>()
        })
    });
    g.bench_function("doc_stats_only", |b| {
        b.iter(|| {
            texts
                .iter()
                .map(|t| DocStats::of(t.as_bytes()).features()[0])
                .sum::<f32>()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
