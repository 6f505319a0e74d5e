//! The MinHash barrier driven by hand: the same removed set for any task split, batch size and
//! thread count; spilling under a tiny memory limit; keep = "highest"; cross-snapshot dedup.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{Doc, Rng, edit_words, read_docs, split};
use curate_core::batch::doc_key;
use curate_core::{BuildEnv, Problems, StepSpec};
use curate_dedup::MinhashDedupConfig;
use curate_dedup::common::Keep;
use curate_dedup::local::{LocalRun, run_barrier};

fn env(dir: &Path) -> BuildEnv {
    BuildEnv {
        seed: 0,
        index: 0,
        text_column: "text".into(),
        id_column: None,
        previous: vec![],
        config_dir: dir.to_path_buf(),
    }
}

/// Real documents, plus near copies (a few words edited) and exact copies of some of them, in
/// key order: file 0 holds the originals, file 1 the copies.
fn corpus_with_duplicates(n: usize) -> Vec<Doc> {
    let mut docs = read_docs(&curate_testkit::corpus_shard_or_sample(), n, 30);
    let mut rng = Rng(42);
    let mut copies = Vec::new();
    for (i, d) in docs.iter().enumerate().filter(|(i, _)| i % 5 == 0) {
        let words: Vec<&str> = d.text.split_whitespace().collect();
        let k = match i % 3 {
            0 => 0,                     // exact copy
            1 => words.len() / 100 + 1, // ~1 % of words edited
            _ => words.len() / 30 + 1,  // ~3 %
        };
        copies.push(Doc {
            key: doc_key(1, copies.len() as u64),
            text: edit_words(&words, k, &mut rng).join(" "),
            score: 0.0,
        });
    }
    for d in docs.iter_mut() {
        d.score = (rng.next() % 1000) as f64 / 10.0;
    }
    for d in copies.iter_mut() {
        d.score = (rng.next() % 1000) as f64 / 10.0;
    }
    docs.extend(copies);
    docs
}

fn run(
    cfg: &MinhashDedupConfig,
    docs: &[Doc],
    tasks: usize,
    batch: usize,
    threads: usize,
) -> (LocalRun, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let step = cfg.build(&env(dir.path())).unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let out = pool.install(|| {
        run_barrier(
            step.as_ref(),
            &split(docs, tasks, batch),
            dir.path(),
            0,
            Some("cluster"),
        )
        .unwrap()
    });
    (out, dir)
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn same_result_for_any_split_batch_size_and_thread_count() {
    let docs = corpus_with_duplicates(350);
    let cfg = MinhashDedupConfig {
        cluster_id_column: Some("cluster".into()),
        ..Default::default()
    };
    let (base, base_dir) = run(&cfg, &docs, 1, 1000, 1);
    assert!(
        base.removed.len() >= 50,
        "injected copies are found: {}",
        base.removed.len()
    );
    assert!(
        base.removed
            .keys()
            .all(|k| *k >> 40 == 1 || base.cluster_ids[k] != *k)
    );
    for (tasks, batch, threads) in [(4, 97, 2), (7, 33, 1), (3, 1000, 2)] {
        let (other, other_dir) = run(&cfg, &docs, tasks, batch, threads);
        assert_eq!(
            other.removed, base.removed,
            "tasks={tasks} batch={batch} threads={threads}"
        );
        assert_eq!(other.cluster_ids, base.cluster_ids);
        for f in [
            "cluster/nodes.run",
            "cluster/stats.json",
            "index/band-0000.bin",
            "index/band-0013.bin",
            "index/index.json",
        ] {
            assert_eq!(
                read(&other_dir.path().join(f)),
                read(&base_dir.path().join(f)),
                "{f} differs for tasks={tasks}"
            );
        }
    }
    // The smallest key of each cluster survives.
    let mut smallest: BTreeMap<u64, u64> = BTreeMap::new();
    for (k, c) in &base.cluster_ids {
        let e = smallest.entry(*c).or_insert(*k);
        *e = (*e).min(*k);
    }
    for (c, k) in smallest {
        assert_eq!(c, k, "cluster id is the survivor's key");
        assert!(!base.removed.contains_key(&k));
    }
    let stats = base.published.stats.expect("stats");
    assert_eq!(
        stats["duplicates_removed"].as_u64().unwrap() as usize,
        base.removed.len()
    );
    assert!(
        stats["cluster_sizes"]
            .as_object()
            .is_some_and(|h| !h.is_empty())
    );
}

#[test]
fn spills_under_a_tiny_memory_limit_with_the_same_result() {
    let docs = corpus_with_duplicates(400);
    let big = MinhashDedupConfig {
        verify: Some(0.8),
        cluster_id_column: Some("cluster".into()),
        ..Default::default()
    };
    // Below the validated minimum on purpose: forces many spills on this small input, in the
    // observers and in the cluster stage (whose node table then exceeds half the limit).
    let tiny = MinhashDedupConfig {
        memory_limit: "1KiB".into(),
        ..big.clone()
    };
    let (a, d1) = run(&big, &docs, 2, 100, 2);
    let (b, d2) = run(&tiny, &docs, 2, 100, 2);
    assert_eq!(a.removed, b.removed);
    assert_eq!(a.cluster_ids, b.cluster_ids);
    assert_eq!(
        a.counters.get("minhash_runs"),
        2.0,
        "one run per task with a large budget"
    );
    assert!(
        b.counters.get("minhash_runs") >= 8.0,
        "runs: {}",
        b.counters.get("minhash_runs")
    );
    assert_same_files(d1.path(), d2.path(), "1KiB vs 1GiB");
    let (ra, rb) = (cluster_run(d1.path()), cluster_run(d2.path()));
    assert_eq!(ra["external"], false, "{ra}");
    assert_eq!(rb["external"], true, "{rb}");
    assert!(rb["rounds"].as_u64().unwrap() >= 3, "{rb}");
    assert!(rb["spill_files"].as_u64().unwrap() >= 6, "{rb}");
    assert!(
        rb["peak_table_nodes"].as_u64().unwrap() * 4 <= rb["nodes"].as_u64().unwrap(),
        "the table held at most a quarter of the nodes: {rb}"
    );
    assert!(b.counters.get("minhash_cluster_rounds") >= 3.0);
    // The index stage took the removed set in chunks of 32 keys (one pass each), per band.
    assert!(b.removed.len() > 32, "{}", b.removed.len());
    assert_eq!(a.counters.get("minhash_index_passes"), 14.0);
    assert!(
        b.counters.get("minhash_index_passes") >= 28.0,
        "{}",
        b.counters.get("minhash_index_passes")
    );
    let text: usize = docs.iter().map(|d| d.text.len()).sum();
    assert!(
        text > 400 * 1024,
        "the limit is far below the input size ({text} bytes)"
    );
}

/// The cluster stage's record of how it ran (`cluster/run.json`).
fn cluster_run(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&read(&dir.join("cluster/run.json"))).unwrap()
}

/// The files every later consumer reads are byte-identical.
fn assert_same_files(a: &Path, b: &Path, what: &str) {
    for f in [
        "cluster/nodes.run",
        "cluster/stats.json",
        "index/band-0000.bin",
        "index/band-0007.bin",
        "index/band-0013.bin",
        "index/index.json",
    ] {
        assert!(read(&a.join(f)) == read(&b.join(f)), "{f} differs: {what}");
    }
}

#[test]
fn cluster_stage_past_memory_gives_the_same_files_for_any_limit_split_and_threads() {
    let docs = corpus_with_duplicates(600);
    let configs = [
        MinhashDedupConfig {
            cluster_id_column: Some("cluster".into()),
            ..Default::default()
        },
        MinhashDedupConfig {
            keep: Keep::Highest,
            score_column: Some("score".into()),
            verify: Some(0.8),
            cluster_id_column: Some("cluster".into()),
            ..Default::default()
        },
    ];
    for cfg in configs {
        let (base, base_dir) = run(&cfg, &docs, 1, 1000, 1);
        assert!(base.removed.len() >= 80, "{}", base.removed.len());
        assert_eq!(cluster_run(base_dir.path())["external"], false);
        for (limit, tasks, batch, threads) in [
            ("1KiB", 3, 64, 2),
            ("2KiB", 7, 33, 1),
            ("3KiB", 2, 500, 2),
            ("256MiB", 5, 97, 2),
        ] {
            let c = MinhashDedupConfig {
                memory_limit: limit.into(),
                ..cfg.clone()
            };
            let (other, dir) = run(&c, &docs, tasks, batch, threads);
            let what = format!("limit={limit} tasks={tasks} batch={batch} threads={threads}");
            assert_eq!(other.removed, base.removed, "{what}");
            assert_eq!(other.cluster_ids, base.cluster_ids, "{what}");
            assert_same_files(base_dir.path(), dir.path(), &what);
            let r = cluster_run(dir.path());
            assert_eq!(r["external"], !limit.ends_with("MiB"), "{what}: {r}");
            if limit.ends_with("KiB") {
                assert!(r["rounds"].as_u64().unwrap() >= 2, "{what}: {r}");
            }
        }
    }
}

#[test]
fn keep_highest_score_survives() {
    let docs = corpus_with_duplicates(300);
    let cfg = MinhashDedupConfig {
        keep: Keep::Highest,
        score_column: Some("score".into()),
        cluster_id_column: Some("cluster".into()),
        ..Default::default()
    };
    let (out, _d) = run(&cfg, &docs, 3, 64, 2);
    assert!(!out.removed.is_empty());
    let score: BTreeMap<u64, f64> = docs.iter().map(|d| (d.key, d.score)).collect();
    let mut members: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for (k, c) in &out.cluster_ids {
        members.entry(*c).or_default().push(*k);
    }
    for (root, ks) in members {
        let best = ks
            .iter()
            .copied()
            .max_by(|a, b| score[a].total_cmp(&score[b]).then(b.cmp(a)))
            .unwrap();
        assert_eq!(
            root, best,
            "survivor has the highest score (ties: smallest key)"
        );
        assert!(!out.removed.contains_key(&root));
        assert_eq!(
            ks.iter().filter(|k| out.removed.contains_key(k)).count(),
            ks.len() - 1
        );
    }
}

#[test]
fn against_an_earlier_snapshot_without_its_text() {
    let docs = read_docs(&curate_testkit::corpus_shard_or_sample(), 300, 30);
    let (old, new) = docs.split_at(150);
    let cfg = MinhashDedupConfig::default();
    let (first, _d1) = run(&cfg, old, 2, 50, 2);
    // Lay the published files out as a snapshot.
    let snap = tempfile::tempdir().unwrap();
    assert!(!first.published.files.is_empty());
    for (rel, src) in &first.published.files {
        let dst = snap.path().join(rel);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(src, dst).unwrap();
    }
    // New corpus: unseen documents plus near copies of 30 old ones.
    let mut rng = Rng(9);
    let mut docs2: Vec<Doc> = new.to_vec();
    let mut expect = Vec::new();
    for (i, d) in old.iter().take(30).enumerate() {
        let words: Vec<&str> = d.text.split_whitespace().collect();
        let key = doc_key(2, i as u64);
        docs2.push(Doc {
            key,
            text: edit_words(&words, words.len() / 200, &mut rng).join(" "),
            score: 0.0,
        });
        expect.push(key);
    }
    let cfg2 = MinhashDedupConfig {
        against: vec![snap.path().display().to_string()],
        ..Default::default()
    };
    let (second, d2) = run(&cfg2, &docs2, 2, 40, 2);
    // The same decisions when the cluster stage runs past memory.
    let tiny = MinhashDedupConfig {
        memory_limit: "512B".into(),
        ..cfg2.clone()
    };
    let (third, d3) = run(&tiny, &docs2, 3, 25, 1);
    assert_eq!(third.removed, second.removed);
    assert_eq!(cluster_run(d3.path())["external"], true);
    assert_same_files(d2.path(), d3.path(), "against, 512B vs 1GiB");
    let against: Vec<u64> = second
        .removed
        .iter()
        .filter(|(_, r)| *r == "minhash_duplicate_of_snapshot")
        .map(|(k, _)| *k)
        .collect();
    let hits = expect.iter().filter(|k| against.contains(k)).count();
    assert!(
        hits >= 29,
        "near copies of the old snapshot removed: {hits}/30"
    );
    assert!(
        against.iter().all(|k| expect.contains(k)),
        "only copies of old documents"
    );

    // A different scheme cannot read that index.
    let bad = MinhashDedupConfig {
        rows: 7,
        against: vec![snap.path().display().to_string()],
        ..Default::default()
    };
    let err = bad
        .build(&env(Path::new("/")))
        .err()
        .expect("mismatched params refused");
    assert!(err.to_string().contains("index.json"), "{err}");
}

#[test]
fn validation_collects_every_problem() {
    let cfg = MinhashDedupConfig {
        ngram: 0,
        bands: 0,
        verify: Some(1.5),
        keep: Keep::Highest,
        memory_limit: "lots".into(),
        ..Default::default()
    };
    let mut p = Problems::new();
    cfg.validate(&mut p);
    let fields: Vec<&str> = p.items().iter().map(|x| x.field.as_str()).collect();
    assert_eq!(
        fields,
        ["ngram", "bands", "verify", "score_column", "memory_limit"]
    );
}

#[test]
fn rerun_after_a_crash_gives_the_same_files() {
    use curate_core::{Counters, StageContext, TaskContext};
    let docs = corpus_with_duplicates(200);
    let cfg = MinhashDedupConfig {
        verify: Some(0.8),
        memory_limit: "1KiB".into(),
        ..Default::default()
    };
    let tasks = split(&docs, 2, 40);
    let (clean, clean_dir) = run(&cfg, &docs, 2, 40, 1);

    let dir = tempfile::tempdir().unwrap();
    let step = cfg.build(&env(dir.path())).unwrap();
    let barrier = step.barrier().unwrap();
    let step_dirs = vec![dir.path().to_path_buf()];
    let tcx = |t| TaskContext {
        task: t,
        tasks: 2,
        dir: dir.path(),
        step_dirs: &step_dirs,
        seed: 0,
    };
    // Task 0 is killed after some batches (its spilled runs stay behind, no manifest)...
    let mut c = Counters::default();
    let mut obs = barrier.observer(&tcx(0)).unwrap();
    for b in &tasks[0][..3] {
        obs.observe(b, &mut c).unwrap();
    }
    drop(obs);
    // ...then both tasks run to completion; task 1 twice, as after a lost completion record.
    for t in [0, 1, 1] {
        let mut obs = barrier.observer(&tcx(t)).unwrap();
        for b in &tasks[t] {
            obs.observe(b, &mut c).unwrap();
        }
        obs.finish(&mut c).unwrap();
    }
    // A cluster stage killed mid-way left scratch files of its rounds behind.
    let scratch = dir.path().join("cluster/tmp");
    std::fs::create_dir_all(&scratch).unwrap();
    std::fs::write(scratch.join("graph-0001.edges"), b"torn").unwrap();
    std::fs::write(scratch.join("labels-0000.run"), b"torn").unwrap();
    let counters = std::sync::Mutex::new(Counters::default());
    for (s, spec) in barrier.stages(2).iter().enumerate() {
        // Every stage task runs twice: a re-run must leave the same files.
        for task in (0..spec.tasks).chain(0..spec.tasks) {
            let cx = StageContext {
                stage: s,
                task,
                dir: dir.path(),
                step_dirs: &step_dirs,
                observed_tasks: 2,
                seed: 0,
                counters: &counters,
            };
            barrier.run_stage_task(&cx).unwrap();
        }
    }
    for f in [
        "cluster/nodes.run",
        "cluster/stats.json",
        "index/band-0005.bin",
        "index/index.json",
    ] {
        assert_eq!(
            read(&dir.path().join(f)),
            read(&clean_dir.path().join(f)),
            "{f}"
        );
    }
    let mut removed = BTreeMap::new();
    for (t, batches) in tasks.iter().enumerate() {
        let mut p = step.processor(&tcx(t)).unwrap();
        for b in batches {
            let mut b = b.clone();
            p.process(&mut b, &mut c).unwrap();
            for i in (0..b.len()).filter(|i| b.is_dropped(*i)) {
                removed.insert(b.keys().value(i), "minhash_duplicate".to_string());
            }
        }
    }
    assert_eq!(removed, clean.removed);
    assert_eq!(cluster_run(dir.path())["external"], true);
    assert!(!scratch.exists(), "scratch files removed");
}

#[test]
fn empty_and_short_inputs() {
    let cfg = MinhashDedupConfig {
        verify: Some(0.8),
        ..Default::default()
    };
    let (out, _d) = run(&cfg, &[], 3, 10, 1);
    assert!(out.removed.is_empty());
    assert_eq!(out.published.stats.expect("stats")["clusters"], 0);
    // Documents shorter than one shingle are never near duplicates (as in datatrove).
    let short: Vec<Doc> = (0..4)
        .map(|i| Doc {
            key: doc_key(0, i),
            text: "too short to shingle".into(),
            score: 0.0,
        })
        .collect();
    let (out, _d) = run(&cfg, &short, 2, 1, 1);
    assert!(out.removed.is_empty());
    assert_eq!(out.counters.get("minhash_too_short"), 4.0);
}
