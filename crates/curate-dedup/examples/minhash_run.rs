//! Whole MinHash dedup of the first N documents of a parquet file, streaming, in this process:
//! the benchmark driver for the peer comparisons in `docs/BENCHMARKS.md` (until then the `curate`
//! binary runs the same step through the real executor).
//!
//! ```text
//! RAYON_NUM_THREADS=1 cargo run --release -p curate-dedup --example minhash_run -- \
//!     ../shared/corpus/shard-00001.parquet 20089 4 256MiB [verify]
//! ```
//!
//! Arguments: parquet file, number of documents, tasks, memory limit, then optionally `verify`
//! and / or `id` (read the file's `id` column as the id column, so the step records ids and
//! names survivors by them, as the `curate` binary does by default on FineWeb).
//! Prints per-stage wall times, MB/s and the removed count.

use std::fs::File;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use curate_core::batch::doc_key;
use curate_core::{BuildEnv, Counters, DocBatch, StageContext, StepSpec, TaskContext};
use curate_dedup::MinhashDedupConfig;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// Streams the first `limit` documents as batches of `DocBatch` for task `task` of `tasks`
/// (contiguous row ranges), calling `f` on each; with `ids`, the `id` column too.
fn for_task_batches(
    path: &Path,
    limit: usize,
    task: usize,
    tasks: usize,
    ids: bool,
    mut f: impl FnMut(DocBatch),
) {
    let per = limit.div_ceil(tasks);
    let (lo, hi) = (task * per, ((task + 1) * per).min(limit));
    let file = File::open(path).expect("open parquet");
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).expect("parquet");
    let leaf = |name: &str| {
        builder
            .parquet_schema()
            .columns()
            .iter()
            .position(|c| c.name() == name)
            .unwrap_or_else(|| panic!("{name} column"))
    };
    let mut leaves = vec![leaf("text")];
    if ids {
        leaves.push(leaf("id"));
    }
    let mask = ProjectionMask::leaves(builder.parquet_schema(), leaves);
    let reader = builder
        .with_projection(mask)
        .with_batch_size(1024)
        .with_offset(lo)
        .with_limit(hi - lo)
        .build()
        .expect("reader");
    let mut row = lo as u64;
    for b in reader {
        let b = b.expect("batch");
        let n = b.num_rows() as u64;
        let keys = arrow::array::UInt64Array::from(
            (row..row + n).map(|r| doc_key(0, r)).collect::<Vec<_>>(),
        );
        row += n;
        let text = b.schema().index_of("text").expect("text");
        let id = b.schema().index_of("id").ok();
        f(DocBatch::new(b, text, id, keys));
    }
}

/// CPU seconds (user + system) this process has used so far, from `/proc/self/stat` (clock ticks
/// of 10 ms): on a shared machine wall time measures the neighbours too.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|x| x.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|x| x.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

/// `--sketch-only FILE N`: text → signature (+ band keys) over N documents held in memory,
/// three rounds, reported per CPU second.
fn sketch_only(path: &Path, limit: usize) {
    let mut texts = Vec::new();
    for_task_batches(path, limit, 0, 1, false, |b| {
        for i in 0..b.len() {
            texts.push(b.text(i).to_string());
        }
    });
    let bytes: usize = texts.iter().map(|t| t.len()).sum();
    let hasher = curate_dedup::signature::Hasher::new(curate_dedup::signature::MinhashParams {
        ngram: 5,
        bands: 14,
        rows: 8,
        seed: 1,
    });
    let mut sk = curate_dedup::signature::Sketcher::default();
    for round in 0..3 {
        let (c0, t0) = (cpu_seconds(), Instant::now());
        let mut acc = 0u64;
        for t in &texts {
            if sk.sketch(&hasher, t) {
                for b in 0..14 {
                    acc ^= hasher.band_key(&sk.sig, b);
                }
            }
        }
        let (cpu, wall) = (cpu_seconds() - c0, t0.elapsed().as_secs_f64());
        println!(
            "round {round}: {:.1} MB in {cpu:.2} CPU s = {:.1} MB/s per core (wall {wall:.2} s) [{acc:x}]",
            bytes as f64 / 1e6,
            bytes as f64 / 1e6 / cpu
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).is_some_and(|a| a == "--sketch-only") {
        let limit = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(20089);
        sketch_only(Path::new(&args[2]), limit);
        return;
    }
    let path = Path::new(
        args.get(1)
            .map(String::as_str)
            .unwrap_or("../shared/corpus/shard-00001.parquet"),
    )
    .to_path_buf();
    let limit: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(20089);
    let tasks: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(4);
    let memory = args.get(4).cloned().unwrap_or_else(|| "256MiB".to_string());
    let verify = args.iter().skip(5).any(|s| s == "verify");
    let ids = args.iter().skip(5).any(|s| s == "id");
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = MinhashDedupConfig {
        memory_limit: memory.clone(),
        verify: verify.then_some(0.8),
        ..Default::default()
    };
    let env = BuildEnv {
        seed: 0,
        index: 0,
        text_column: "text".into(),
        id_column: ids.then(|| "id".to_string()),
        previous: vec![],
        config_dir: ".".into(),
    };
    let step = cfg.build(&env).expect("build");
    let barrier = step.barrier().expect("barrier");
    let step_dirs = vec![dir.path().to_path_buf()];
    let t0 = Instant::now();
    let c0 = cpu_seconds();
    let mut bytes = 0usize;
    let mut counters = Counters::default();
    for t in 0..tasks {
        let cx = TaskContext {
            task: t,
            tasks,
            dir: dir.path(),
            step_dirs: &step_dirs,
            seed: 0,
        };
        let mut obs = barrier.observer(&cx).expect("observer");
        for_task_batches(&path, limit, t, tasks, ids, |b| {
            bytes += b.texts().values().len();
            obs.observe(&b, &mut counters).expect("observe");
        });
        obs.finish(&mut counters).expect("finish");
    }
    let t_obs = t0.elapsed();
    let c_obs = cpu_seconds() - c0;
    let shared = Mutex::new(Counters::default());
    let mut stage_times = Vec::new();
    for (s, spec) in barrier.stages(tasks).iter().enumerate() {
        let ts = Instant::now();
        for task in 0..spec.tasks {
            let cx = StageContext {
                stage: s,
                task,
                dir: dir.path(),
                step_dirs: &step_dirs,
                observed_tasks: tasks,
                seed: 0,
                counters: &shared,
            };
            barrier.run_stage_task(&cx).expect("stage");
        }
        stage_times.push((spec.name.clone(), ts.elapsed()));
    }
    let tf = Instant::now();
    let mut removed = 0usize;
    for t in 0..tasks {
        let cx = TaskContext {
            task: t,
            tasks,
            dir: dir.path(),
            step_dirs: &step_dirs,
            seed: 0,
        };
        let mut p = step.processor(&cx).expect("processor");
        for_task_batches(&path, limit, t, tasks, ids, |mut b| {
            p.process(&mut b, &mut counters).expect("process");
            removed += b.dropped();
        });
    }
    let t_filter = tf.elapsed();
    let total = t0.elapsed();
    let c_total = cpu_seconds() - c0;
    let mb = bytes as f64 / 1e6;
    println!(
        "input: {limit} documents, {mb:.1} MB of text, {tasks} tasks, memory_limit {memory}, verify {verify}, ids {ids}"
    );
    println!(
        "observe (read + signatures + runs): {:.2} s wall, {c_obs:.2} CPU s = {:.1} MB/s per core",
        t_obs.as_secs_f64(),
        mb / c_obs
    );
    for (name, d) in &stage_times {
        println!("stage {name}: {:.2} s", d.as_secs_f64());
    }
    println!("filter (read + lookup): {:.2} s", t_filter.as_secs_f64());
    println!(
        "total: {:.2} s wall, {c_total:.2} CPU s = {:.1} MB/s per core end to end; removed {removed}",
        total.as_secs_f64(),
        mb / c_total
    );
    counters.merge(&shared.into_inner().expect("counters"));
    println!(
        "counters: {}",
        serde_json::to_string(&counters.0).unwrap_or_default()
    );
    if let Some(stats) = step.publish(dir.path()).expect("publish").stats {
        println!("stats: {stats}");
    }
}
