//! `exact_dedup` driven by hand on real documents with injected copies.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{Doc, Rng, named_key, read_docs, split_ids, survivor_name};
use curate_core::batch::doc_key;
use curate_core::{BuildEnv, Problems, StepSpec};
use curate_dedup::ExactDedupConfig;
use curate_dedup::common::Keep;
use curate_dedup::local::run_barrier;
use curate_dedup::normalize::TextNormalization;

fn env(ids: bool) -> BuildEnv {
    BuildEnv {
        seed: 0,
        index: 0,
        text_column: "text".into(),
        id_column: ids.then(|| "id".to_string()),
        previous: vec![],
        config_dir: Path::new(".").to_path_buf(),
    }
}

/// Real documents (file 0) and copies (file 1): byte-identical, re-spaced, and upper-cased.
fn corpus() -> (Vec<Doc>, BTreeMap<u64, &'static str>) {
    corpus_copying_every(4)
}

/// [`corpus`] with a copy of every `k`-th document.
fn corpus_copying_every(k: usize) -> (Vec<Doc>, BTreeMap<u64, &'static str>) {
    let mut docs = read_docs(&curate_testkit::corpus_shard_or_sample(), 300, 10);
    let mut rng = Rng(3);
    let mut kinds = BTreeMap::new();
    let mut copies = Vec::new();
    for (i, d) in docs.iter().enumerate().filter(|(i, _)| i % k == 0) {
        let (text, kind) = match i % 3 {
            0 => (d.text.clone(), "identical"),
            1 => (
                d.text.split_whitespace().collect::<Vec<_>>().join("  \n "),
                "spacing",
            ),
            _ => (d.text.to_uppercase(), "case"),
        };
        let key = doc_key(1, copies.len() as u64);
        kinds.insert(key, kind);
        copies.push(Doc {
            key,
            text,
            score: 0.0,
        });
    }
    for d in docs.iter_mut().chain(copies.iter_mut()) {
        d.score = (rng.next() % 100) as f64;
    }
    docs.extend(copies);
    (docs, kinds)
}

fn removed(
    cfg: &ExactDedupConfig,
    docs: &[Doc],
    tasks: usize,
    batch: usize,
) -> BTreeMap<u64, String> {
    run(cfg, docs, tasks, batch).removed
}

fn run(
    cfg: &ExactDedupConfig,
    docs: &[Doc],
    tasks: usize,
    batch: usize,
) -> curate_dedup::local::LocalRun {
    run_in(cfg, docs, tasks, batch, false).0
}

/// A run with (`ids`) or without an id column; its work directory is kept.
fn run_in(
    cfg: &ExactDedupConfig,
    docs: &[Doc],
    tasks: usize,
    batch: usize,
    ids: bool,
) -> (curate_dedup::local::LocalRun, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let step = cfg.build(&env(ids)).unwrap();
    let out = run_barrier(
        step.as_ref(),
        &split_ids(docs, tasks, batch, ids),
        dir.path(),
        0,
        None,
    )
    .unwrap();
    (out, dir)
}

/// The survivor of each group of documents with the same normalized text (smallest key, or
/// highest score then smallest key), by member.
fn survivors(docs: &[Doc], cfg: &ExactDedupConfig) -> BTreeMap<u64, u64> {
    let flags = cfg.normalization.flags().expect("a normalization");
    let mut norm = curate_dedup::normalize::Normalizer::new(flags);
    let mut groups: BTreeMap<String, Vec<&Doc>> = BTreeMap::new();
    for d in docs {
        groups
            .entry(norm.normalize_to_string(&d.text))
            .or_default()
            .push(d);
    }
    let mut out = BTreeMap::new();
    for g in groups.values().filter(|g| g.len() > 1) {
        let best = match cfg.keep {
            Keep::Smallest => g.iter().min_by_key(|d| d.key).unwrap(),
            Keep::Highest => g
                .iter()
                .max_by(|a, b| a.score.total_cmp(&b.score).then(b.key.cmp(&a.key)))
                .unwrap(),
        };
        for d in g {
            out.insert(d.key, best.key);
        }
    }
    out
}

/// Every removed document names its group's survivor in `duplicate_of`: a kept document whose
/// normalized text is the same.
fn assert_survivors_named(
    r: &curate_dedup::local::LocalRun,
    docs: &[Doc],
    cfg: &ExactDedupConfig,
    ids: bool,
) {
    let surv = survivors(docs, cfg);
    assert_eq!(
        r.duplicate_of.len(),
        r.removed.len(),
        "one name per removed"
    );
    for (key, name) in &r.duplicate_of {
        let name = name.as_deref().expect("every duplicate names its survivor");
        let s = surv[key];
        assert_ne!(s, *key);
        assert_eq!(name, survivor_name(s, ids), "duplicate {key:016x}");
        assert_eq!(named_key(name, docs, ids), Some(s));
        assert!(!r.removed.contains_key(&s), "the named survivor is kept");
    }
}

#[test]
fn every_duplicate_names_its_survivor_with_and_without_ids() {
    let (docs, kinds) = corpus();
    for ids in [false, true] {
        for keep in [Keep::Smallest, Keep::Highest] {
            let cfg = ExactDedupConfig {
                keep,
                score_column: (keep == Keep::Highest).then(|| "score".into()),
                ..Default::default()
            };
            let (r, _dir) = run_in(&cfg, &docs, 3, 40, ids);
            assert!(r.removed.len() >= kinds.len() / 2, "{}", r.removed.len());
            assert_survivors_named(&r, &docs, &cfg, ids);
            if ids {
                // Some survivors have a null id and are named by their key.
                let hex = r
                    .duplicate_of
                    .values()
                    .flatten()
                    .filter(|n| n.len() == 16 && !n.starts_with('f'))
                    .count();
                assert!(hex >= 1 && hex < r.removed.len(), "{hex}");
            }
        }
    }
}

#[test]
fn provenance_spills_and_is_the_same_for_any_split_and_limit() {
    let (docs, _) = corpus_copying_every(1);
    let files = [
        "groups/p00000.prov",
        "groups/p00000.names",
        "groups/p00001.prov",
    ];
    let tiny = ExactDedupConfig {
        memory_limit: "4KiB".into(),
        partitions: 2,
        ..Default::default()
    };
    let (base, base_dir) = run_in(&tiny, &docs, 1, 1000, true);
    assert!(base.removed.len() >= 250, "{}", base.removed.len());
    assert!(
        base.counters.get_run("exact_provenance_spills") >= 4.0,
        "both sorts of both partitions spill: {}",
        base.counters.get_run("exact_provenance_spills")
    );
    assert_survivors_named(&base, &docs, &tiny, true);
    let big = ExactDedupConfig {
        memory_limit: "1GiB".into(),
        ..tiny.clone()
    };
    for (cfg, tasks, batch) in [(&tiny, 4, 17), (&tiny, 9, 64), (&big, 2, 100)] {
        let (other, dir) = run_in(cfg, &docs, tasks, batch, true);
        assert_eq!(other.duplicate_of, base.duplicate_of, "tasks={tasks}");
        for f in files {
            assert_eq!(
                std::fs::read(dir.path().join(f)).unwrap(),
                std::fs::read(base_dir.path().join(f)).unwrap(),
                "{f}: tasks={tasks} limit={}",
                cfg.memory_limit
            );
        }
    }
    assert_eq!(
        run_in(&big, &docs, 2, 100, true)
            .0
            .counters
            .get_run("exact_provenance_spills"),
        0.0
    );
}

#[test]
fn normalization_decides_what_is_identical() {
    let (docs, kinds) = corpus();
    let count = |k: &str| kinds.values().filter(|v| **v == k).count();
    for (norm, expect) in [
        (TextNormalization::None, count("identical")),
        (
            TextNormalization::Whitespace,
            count("identical") + count("spacing"),
        ),
        (TextNormalization::Full, kinds.len()),
    ] {
        let cfg = ExactDedupConfig {
            normalization: norm,
            ..Default::default()
        };
        let r = removed(&cfg, &docs, 3, 40);
        // The corpus itself may hold a few exact duplicates: count only the injected copies.
        let injected = r.keys().filter(|k| kinds.contains_key(k)).count();
        assert_eq!(injected, expect, "{norm:?}");
        assert!(r.values().all(|v| v == "exact_duplicate"));
    }
}

#[test]
fn same_result_for_any_split() {
    let (docs, _) = corpus();
    // 4 KiB: a few dozen records per spill, far below this input.
    let cfg = ExactDedupConfig {
        memory_limit: "4KiB".into(),
        partitions: 5,
        ..Default::default()
    };
    let first = run(&cfg, &docs, 1, 1000);
    assert!(
        first.counters.get_run("exact_runs") >= 4.0,
        "spilled runs: {}",
        first.counters.get_run("exact_runs")
    );
    assert!(first.counters.get("exact_groups") >= 50.0);
    let a = first.removed;
    for (tasks, batch) in [(4, 17), (9, 64)] {
        assert_eq!(removed(&cfg, &docs, tasks, batch), a, "tasks={tasks}");
    }
    let big = ExactDedupConfig {
        partitions: 5,
        ..Default::default()
    };
    assert_eq!(
        removed(&big, &docs, 2, 100),
        a,
        "memory limit does not change the result"
    );
}

#[test]
fn keep_highest() {
    let (docs, _) = corpus();
    let cfg = ExactDedupConfig {
        keep: Keep::Highest,
        score_column: Some("score".into()),
        normalization: TextNormalization::Full,
        ..Default::default()
    };
    let r = removed(&cfg, &docs, 2, 50);
    // Group documents by their normalized text and check the survivor of each group.
    let mut norm =
        curate_dedup::normalize::Normalizer::new(curate_dedup::normalize::NormFlags::full());
    let mut groups: BTreeMap<String, Vec<&Doc>> = BTreeMap::new();
    for d in &docs {
        groups
            .entry(norm.normalize_to_string(&d.text))
            .or_default()
            .push(d);
    }
    for g in groups.values().filter(|g| g.len() > 1) {
        let best = g
            .iter()
            .max_by(|a, b| a.score.total_cmp(&b.score).then(b.key.cmp(&a.key)))
            .unwrap();
        for d in g {
            assert_eq!(r.contains_key(&d.key), d.key != best.key);
        }
    }
}

#[test]
fn validation() {
    let cfg = ExactDedupConfig {
        partitions: 0,
        score_column: Some("s".into()),
        memory_limit: "1k".into(),
        ..Default::default()
    };
    let mut p = Problems::new();
    cfg.validate(&mut p);
    let fields: Vec<&str> = p.items().iter().map(|x| x.field.as_str()).collect();
    assert_eq!(fields, ["partitions", "score_column", "memory_limit"]);
}
