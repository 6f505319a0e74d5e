//! Throughput of each filter on real corpus text (`Throughput::Bytes`), and of the FineWeb chain.
//!
//! Run: `cargo bench -p curate-filters --bench filters` (set `CURATE_BENCH_MB` to change the
//! amount of text, default 8 MB from the first corpus shard). The word splitter's per-thread
//! split cache (`words::shared_words`) is emptied at the start of every iteration; its chunk memo
//! stays warm, as it does over a long run.

use std::fs::File;
use std::hint::black_box;
use std::sync::Arc;

use arrow::array::{Array, AsArray};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use curate_filters::c4_badwords::C4BadWordsConfig;
use curate_filters::c4_quality::{C4Quality, C4QualityConfig};
use curate_filters::filter::{FilterProcessor, TextFilter, Verdict};
use curate_filters::fineweb_quality::FineWebQuality;
use curate_filters::gopher_quality::GopherQuality;
use curate_filters::gopher_repetition::GopherRepetition;
use curate_filters::pii::Pii;
use curate_filters::words::WordSplitter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

fn corpus() -> Vec<String> {
    let mb: usize = std::env::var("CURATE_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let path = curate_testkit::corpus_shard_or_sample();
    let f = File::open(&path).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(f)
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

fn bench_filter<F: TextFilter>(c: &mut Criterion, name: &str, f: F, docs: &[String], bytes: u64) {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Bytes(bytes));
    g.sample_size(10);
    let mut p = FilterProcessor::new(Arc::new(f));
    g.bench_function("corpus", |b| {
        b.iter(|| {
            // Each filter alone splits every text itself (no split shared from a previous step
            // or iteration).
            curate_filters::words::clear_shared_words();
            let mut kept = 0usize;
            for d in docs {
                kept += matches!(p.check(d, 0).0, Verdict::Keep | Verdict::Rewrite) as usize;
            }
            black_box(kept)
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    curate_filters::words::warm_up();
    let docs = corpus();
    let bytes: u64 = docs.iter().map(|d| d.len() as u64).sum();
    eprintln!("{} documents, {bytes} bytes", docs.len());

    let mut g = c.benchmark_group("word_splitter");
    g.throughput(Throughput::Bytes(bytes));
    g.sample_size(10);
    let mut w = WordSplitter::new();
    let mut spans = Vec::new();
    g.bench_function("corpus", |b| {
        b.iter(|| {
            let mut n = 0;
            for d in &docs {
                w.split(d, &mut spans);
                n += spans.len();
            }
            black_box(n)
        })
    });
    g.finish();

    bench_filter(
        c,
        "gopher_quality",
        GopherQuality::new(Default::default()),
        &docs,
        bytes,
    );
    bench_filter(
        c,
        "gopher_repetition",
        GopherRepetition::new(Default::default()),
        &docs,
        bytes,
    );
    bench_filter(
        c,
        "c4_quality",
        C4Quality::new(C4QualityConfig::default()),
        &docs,
        bytes,
    );
    let fw_c4 = C4QualityConfig {
        filter_no_terminal_punct: false,
        ..C4QualityConfig::default()
    };
    bench_filter(
        c,
        "c4_quality_fineweb",
        C4Quality::new(fw_c4.clone()),
        &docs,
        bytes,
    );
    bench_filter(
        c,
        "fineweb_quality",
        FineWebQuality::new(Default::default()),
        &docs,
        bytes,
    );
    bench_filter(c, "pii", Pii::new(Default::default()), &docs, bytes);

    let mut g = c.benchmark_group("language");
    g.throughput(Throughput::Bytes(bytes));
    g.sample_size(10);
    let mut buf = String::new();
    g.bench_function("corpus", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for d in &docs {
                n += curate_filters::language::detect(d, 4096, &mut buf)
                    .is_some_and(|(l, _)| l == "en") as usize;
            }
            black_box(n)
        })
    });
    g.finish();

    let mut g = c.benchmark_group("c4_badwords");
    g.throughput(Throughput::Bytes(bytes));
    g.sample_size(10);
    let bw = curate_filters::c4_badwords::standalone(&C4BadWordsConfig::default(), 0);
    let mut lower = String::new();
    g.bench_function("corpus", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for (i, d) in docs.iter().enumerate() {
                n += (bw.check(d, "en", i as u64, &mut lower)
                    == curate_filters::c4_badwords::BadWordsVerdict::Drop)
                    as usize;
            }
            black_box(n)
        })
    });
    g.finish();

    // The FineWeb chain as the pipeline runs it: each filter on the survivors of the previous,
    // c4_quality's rewritten text feeding fineweb_quality (URL filter and language ID left out
    // here; they are measured above / need columns).
    let mut g = c.benchmark_group("fineweb_chain");
    g.throughput(Throughput::Bytes(bytes));
    g.sample_size(10);
    let mut gr = FilterProcessor::new(Arc::new(GopherRepetition::new(Default::default())));
    let mut gq = FilterProcessor::new(Arc::new(GopherQuality::new(Default::default())));
    let mut c4 = FilterProcessor::new(Arc::new(C4Quality::new(fw_c4)));
    let mut fw = FilterProcessor::new(Arc::new(FineWebQuality::new(Default::default())));
    let mut text = String::new();
    g.bench_function("corpus", |b| {
        b.iter(|| {
            // gopher_quality (and fineweb_quality on unrewritten texts) reuse gopher_repetition's
            // split of the same text, as in a pipeline run; nothing carries over between
            // iterations.
            curate_filters::words::clear_shared_words();
            let mut kept = 0usize;
            for d in &docs {
                if matches!(gr.check(d, 0).0, Verdict::Drop(_))
                    || matches!(gq.check(d, 0).0, Verdict::Drop(_))
                {
                    continue;
                }
                match c4.check(d, 0) {
                    (Verdict::Drop(_), _) => continue,
                    (Verdict::Rewrite, out) => {
                        text.clear();
                        text.push_str(out);
                    }
                    _ => {
                        text.clear();
                        text.push_str(d);
                    }
                }
                kept += matches!(fw.check(&text, 0).0, Verdict::Keep) as usize;
            }
            black_box(kept)
        })
    });
    g.finish();
}

criterion_group!(filters, benches);
criterion_main!(filters);
