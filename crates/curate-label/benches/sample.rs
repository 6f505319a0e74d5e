//! Throughput of the `sample` step's per-document work: the observer (stratum key, seeded hash,
//! bounded heap per stratum) and the processor (the `split` column), on real corpus text.
//!
//! cargo bench -p curate-label --bench sample

use std::fs::File;
use std::sync::Mutex;

use arrow::array::{RecordBatch, UInt64Array};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use curate_core::{BuildEnv, Counters, DocBatch, StageContext, StepSpec, TaskContext};
use curate_label::SampleConfig;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

fn batches() -> (Vec<DocBatch>, u64) {
    let path = curate_testkit::corpus_shard_or_sample();
    let b = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap()).unwrap();
    let schema = b.schema().clone();
    let idx: Vec<usize> = ["text", "id", "url", "language"]
        .iter()
        .map(|c| schema.index_of(c).unwrap())
        .collect();
    let mask = ProjectionMask::roots(b.parquet_schema(), idx);
    let reader = b
        .with_projection(mask)
        .with_batch_size(4096)
        .build()
        .unwrap();
    let (mut out, mut bytes, mut key) = (Vec::new(), 0u64, 0u64);
    for rb in reader.take(3) {
        let rb: RecordBatch = rb.unwrap();
        let t = rb.schema().index_of("text").unwrap();
        let id = rb.schema().index_of("id").unwrap();
        bytes += rb.column(t).to_data().buffers()[1].len() as u64;
        let keys = UInt64Array::from_iter_values(key..key + rb.num_rows() as u64);
        key += rb.num_rows() as u64;
        out.push(DocBatch::new(rb, t, Some(id), keys));
    }
    (out, bytes)
}

fn bench(c: &mut Criterion) {
    let (batches, bytes) = batches();
    let cfg = SampleConfig {
        size: 2000,
        strata: vec![
            "language".into(),
            "url_domain".into(),
            "length_bucket".into(),
        ],
        allocation: "proportional".into(),
        holdout: 0.2,
        seed: Some(1),
        length_buckets: vec![500, 2000, 8000, 32000],
        column: "split".into(),
        strategy: "random".into(),
        selection_column: "selection".into(),
        per_bucket: 1,
    };
    let env = BuildEnv {
        seed: 1,
        index: 0,
        text_column: "text".into(),
        id_column: Some("id".into()),
        previous: vec![],
        config_dir: std::env::temp_dir(),
    };
    let step = cfg.build(&env).unwrap();
    let barrier = step.barrier().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dirs = vec![dir.path().to_path_buf()];
    let tcx = TaskContext {
        task: 0,
        tasks: 1,
        dir: dir.path(),
        step_dirs: &dirs,
        seed: 1,
    };
    let mut g = c.benchmark_group("sample");
    g.throughput(Throughput::Bytes(bytes));
    g.sample_size(20);
    g.bench_function("observe", |b| {
        b.iter(|| {
            let mut o = barrier.observer(&tcx).unwrap();
            let mut cn = Counters::default();
            for batch in &batches {
                o.observe(batch, &mut cn).unwrap();
            }
            o.finish(&mut cn).unwrap();
        })
    });
    let counters = Mutex::new(Counters::default());
    let scx = StageContext {
        stage: 0,
        task: 0,
        dir: dir.path(),
        step_dirs: &dirs,
        observed_tasks: 1,
        seed: 1,
        counters: &counters,
    };
    barrier.run_stage_task(&scx).unwrap();
    g.bench_function("process", |b| {
        let mut p = step.processor(&tcx).unwrap();
        b.iter(|| {
            let mut cn = Counters::default();
            for batch in &batches {
                let mut x = batch.clone();
                p.process(&mut x, &mut cn).unwrap();
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
