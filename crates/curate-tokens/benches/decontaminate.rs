//! Decontamination throughput: documents scanned against a benchmark n-gram set, bytes of text
//! per second on one core (`Throughput::Bytes`).
//!
//! `CURATE_BENCH_MB=20 cargo bench -p curate-tokens --bench decontaminate`
//!
//! Documents: the first `CURATE_BENCH_MB` MB of corpus text (default 8). Benchmark: 5,000 items
//! of 20–60 words (question + answer) cut from later corpus documents, so the set has the size
//! and word statistics of a real evaluation suite (≈ 150k distinct 13-grams).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use curate_core::{BuildEnv, Counters, DocBatch, StepSpec, TaskContext};
use curate_tokens::decontaminate::DecontaminateConfig;

fn texts(mb: usize, skip: usize, limit: usize) -> Vec<String> {
    let src = curate_testkit::corpus_shard_or_sample();
    let r = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(&src).unwrap(),
    )
    .unwrap()
    .with_batch_size(1024)
    .build()
    .unwrap();
    let (mut out, mut bytes, mut seen) = (Vec::new(), 0, 0);
    for b in r {
        let b = b.unwrap();
        let t = b.column_by_name("text").unwrap().as_string::<i32>();
        for i in 0..t.len() {
            seen += 1;
            if seen <= skip {
                continue;
            }
            bytes += t.value(i).len();
            out.push(t.value(i).to_string());
            if bytes >= mb << 20 || out.len() >= limit {
                return out;
            }
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let mb: usize = std::env::var("CURATE_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let docs = texts(mb, 0, usize::MAX);
    let bytes: usize = docs.iter().map(String::len).sum();
    let dir = tempfile::tempdir().unwrap();
    let mut jsonl = String::new();
    let mut items = 0;
    for d in texts(1000, 20_000, 6000) {
        let w: Vec<&str> = d.split_whitespace().collect();
        if w.len() < 60 {
            continue;
        }
        jsonl.push_str(
            &serde_json::json!({"question": w[..50].join(" "), "answer": w[50..55].join(" ")})
                .to_string(),
        );
        jsonl.push('\n');
        items += 1;
        if items == 5000 {
            break;
        }
    }
    std::fs::write(dir.path().join("suite.jsonl"), jsonl).unwrap();
    let cfg: DecontaminateConfig = toml::from_str(&format!(
        "benchmarks = [\"{}/suite.jsonl\"]\nfields = [\"question\", \"answer\"]\n",
        dir.path().display()
    ))
    .unwrap();
    let env = BuildEnv {
        seed: 1,
        index: 0,
        text_column: "text".into(),
        id_column: None,
        previous: vec![],
        config_dir: dir.path().to_path_buf(),
    };
    let step = cfg.build(&env).unwrap();
    let work = dir.path().join("work");
    let cx = TaskContext {
        task: 0,
        tasks: 1,
        dir: &work,
        step_dirs: &[],
        seed: 1,
    };
    let schema = Arc::new(Schema::new(vec![Field::new("text", DataType::Utf8, true)]));
    let batches: Vec<RecordBatch> = docs
        .chunks(256)
        .map(|ch| {
            let col: ArrayRef = Arc::new(StringArray::from_iter_values(ch));
            RecordBatch::try_new(schema.clone(), vec![col]).unwrap()
        })
        .collect();
    eprintln!(
        "{} documents, {bytes} bytes; benchmark: {items} items",
        docs.len()
    );
    // CPU time of whole passes on this thread (the machine may be shared: wall time is not
    // a per-core figure then), from /proc/thread-self/schedstat (ns on CPU)
    let cpu_ns = || -> Option<u64> {
        std::fs::read_to_string("/proc/thread-self/schedstat")
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    {
        let mut p = step.processor(&cx).unwrap();
        let (c0, t0) = (cpu_ns(), std::time::Instant::now());
        let passes = 5;
        for _ in 0..passes {
            let mut counters = Counters::default();
            for rb in &batches {
                let keys = UInt64Array::from_iter_values(0..rb.num_rows() as u64);
                let mut d = DocBatch::new(rb.clone(), 0, None, keys);
                p.process(&mut d, &mut counters).unwrap();
            }
        }
        if let (Some(a), Some(b)) = (c0, cpu_ns()) {
            let cpu = (b - a) as f64 / 1e9;
            eprintln!(
                "{passes} passes: {cpu:.3} CPU s, {:.1} MB/s per core (CPU time); wall {:.3} s",
                (passes * bytes) as f64 / 1e6 / cpu,
                t0.elapsed().as_secs_f64()
            );
        }
    }
    let mut g = c.benchmark_group("decontaminate");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.sample_size(10);
    let mut p = step.processor(&cx).unwrap();
    g.bench_function("scan_13gram", |b| {
        b.iter(|| {
            let mut counters = Counters::default();
            for rb in &batches {
                let keys = UInt64Array::from_iter_values(0..rb.num_rows() as u64);
                let mut d = DocBatch::new(rb.clone(), 0, None, keys);
                p.process(&mut d, &mut counters).unwrap();
            }
            counters.get("contaminated")
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
