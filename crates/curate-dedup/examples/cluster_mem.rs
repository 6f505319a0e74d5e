//! Peak memory of the MinHash cluster stage on an edge-heavy synthetic corpus: the benchmark
//! driver for the cluster-stage rows of `docs/BENCHMARKS.md`.
//!
//! ```text
//! cargo build --release -p curate-dedup --example cluster_mem
//! # observers + buckets once (synthetic text: BASES documents, each with COPIES near copies)
//! target/release/examples/cluster_mem prepare /tmp/cc 400000 2
//! # the cluster stage alone, in a fresh process, under a memory limit
//! /usr/bin/time -v target/release/examples/cluster_mem cluster /tmp/cc 16MiB
//! ```
//!
//! `prepare` writes near duplicates (one word in 60 replaced, Jaccard ≈ 0.84 on 5-grams) so
//! nearly every document has candidate edges. `cluster` runs only the cluster stage over the
//! prepared edge files (it rewrites `cluster/`), prints how it ran (`cluster/run.json`), its stats
//! and an xxh3 of `cluster/nodes.run`, so runs under different limits can be compared.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arrow::array::{ArrayRef, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema};
use curate_core::batch::doc_key;
use curate_core::{BuildEnv, Counters, DocBatch, StageContext, StepSpec, TaskContext};
use curate_dedup::MinhashDedupConfig;
use rayon::prelude::*;

const TASKS: usize = 4;
const WORDS: usize = 60;

fn env() -> BuildEnv {
    BuildEnv {
        seed: 0,
        index: 0,
        text_column: "text".into(),
        id_column: None,
        previous: vec![],
        config_dir: ".".into(),
    }
}

fn splitmix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn word(v: u64) -> String {
    let mut v = v;
    (0..7)
        .map(|_| {
            let c = (b'a' + (v % 26) as u8) as char;
            v /= 26;
            c
        })
        .collect()
}

/// Document `row` of the synthetic corpus: base `row / (copies + 1)`, copy `row % (copies + 1)`.
fn text(row: u64, copies: u64) -> String {
    let (base, copy) = (row / (copies + 1), row % (copies + 1));
    let mut s = base.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0x1234;
    let edit = if copy == 0 {
        usize::MAX
    } else {
        (splitmix(&mut (base ^ copy << 40)) % WORDS as u64) as usize
    };
    let mut out = String::with_capacity(WORDS * 8);
    for i in 0..WORDS {
        let w = splitmix(&mut s);
        if i == edit {
            out.push_str(&word(splitmix(&mut (row ^ 0xdead_beef))));
        } else {
            out.push_str(&word(w % 50_000));
        }
        out.push(' ');
    }
    out
}

fn prepare(dir: &Path, bases: u64, copies: u64) {
    std::fs::create_dir_all(dir).expect("dir");
    let cfg = MinhashDedupConfig {
        memory_limit: "64MiB".into(),
        write_index: false,
        ..Default::default()
    };
    let step = cfg.build(&env()).expect("build");
    let barrier = step.barrier().expect("barrier");
    let step_dirs = vec![dir.to_path_buf()];
    let total = bases * (copies + 1);
    let per = total.div_ceil(TASKS as u64);
    let schema = Arc::new(Schema::new(vec![Field::new("text", DataType::Utf8, false)]));
    let t0 = Instant::now();
    (0..TASKS).into_par_iter().for_each(|t| {
        let cx = TaskContext {
            task: t,
            tasks: TASKS,
            dir,
            step_dirs: &step_dirs,
            seed: 0,
        };
        let mut obs = barrier.observer(&cx).expect("observer");
        let mut c = Counters::default();
        let (lo, hi) = (t as u64 * per, ((t as u64 + 1) * per).min(total));
        let mut row = lo;
        while row < hi {
            let end = (row + 8192).min(hi);
            let texts: ArrayRef = Arc::new(StringArray::from_iter_values(
                (row..end).map(|r| text(r, copies)),
            ));
            let rb = RecordBatch::try_new(schema.clone(), vec![texts]).expect("batch");
            let keys = UInt64Array::from((row..end).map(|r| doc_key(0, r)).collect::<Vec<_>>());
            obs.observe(&DocBatch::new(rb, 0, None, keys), &mut c)
                .expect("observe");
            row = end;
        }
        obs.finish(&mut c).expect("finish");
    });
    println!(
        "observed {total} documents in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    let counters = Mutex::new(Counters::default());
    let t1 = Instant::now();
    let buckets = &barrier.stages(TASKS)[0];
    (0..buckets.tasks).into_par_iter().for_each(|task| {
        let cx = StageContext {
            stage: 0,
            task,
            dir,
            step_dirs: &step_dirs,
            observed_tasks: TASKS,
            seed: 0,
            counters: &counters,
        };
        barrier.run_stage_task(&cx).expect("buckets");
    });
    let c = counters.into_inner().expect("counters");
    println!(
        "buckets: {:.1} s, {} candidate edges",
        t1.elapsed().as_secs_f64(),
        c.get("minhash_candidate_edges")
    );
}

fn cluster(dir: &Path, limit: &str) {
    let cfg = MinhashDedupConfig {
        memory_limit: limit.into(),
        write_index: false,
        ..Default::default()
    };
    let step = cfg.build(&env()).expect("build");
    let barrier = step.barrier().expect("barrier");
    let step_dirs = vec![dir.to_path_buf()];
    let counters = Mutex::new(Counters::default());
    let t0 = Instant::now();
    let cx = StageContext {
        stage: 1,
        task: 0,
        dir,
        step_dirs: &step_dirs,
        observed_tasks: TASKS,
        seed: 0,
        counters: &counters,
    };
    barrier.run_stage_task(&cx).expect("cluster");
    let secs = t0.elapsed().as_secs_f64();
    let run = std::fs::read_to_string(dir.join("cluster/run.json")).expect("run.json");
    let stats = std::fs::read_to_string(dir.join("cluster/stats.json")).expect("stats.json");
    // Hashed in 64 KiB pieces: reading the file whole would add its size to the peak RSS.
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    let mut f = std::fs::File::open(dir.join("cluster/nodes.run")).expect("nodes.run");
    let mut buf = vec![0u8; 1 << 16];
    let mut len = 0usize;
    loop {
        let n = std::io::Read::read(&mut f, &mut buf).expect("read nodes.run");
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        len += n;
    }
    println!("memory_limit {limit}: cluster stage {secs:.2} s");
    println!("run: {}", run.split_whitespace().collect::<String>());
    println!("stats: {}", stats.split_whitespace().collect::<String>());
    println!("nodes.run: {len} bytes, xxh3 {:016x}", h.digest());
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("prepare") => {
            let bases = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(400_000);
            let copies = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(2);
            prepare(Path::new(&args[2]), bases, copies);
        }
        Some("cluster") => cluster(
            Path::new(&args[2]),
            args.get(3).map(String::as_str).unwrap_or("1GiB"),
        ),
        _ => eprintln!("usage: cluster_mem prepare DIR [BASES] [COPIES] | cluster DIR [LIMIT]"),
    }
}
