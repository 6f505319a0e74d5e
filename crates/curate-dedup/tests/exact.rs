//! `exact_dedup` driven by hand on real documents with injected copies.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{Doc, Rng, read_docs, split};
use curate_core::batch::doc_key;
use curate_core::{BuildEnv, Problems, StepSpec};
use curate_dedup::ExactDedupConfig;
use curate_dedup::common::Keep;
use curate_dedup::local::run_barrier;
use curate_dedup::normalize::TextNormalization;

fn env() -> BuildEnv {
    BuildEnv {
        seed: 0,
        index: 0,
        text_column: "text".into(),
        id_column: None,
        previous: vec![],
        config_dir: Path::new(".").to_path_buf(),
    }
}

/// Real documents (file 0) and copies (file 1): byte-identical, re-spaced, and upper-cased.
fn corpus() -> (Vec<Doc>, BTreeMap<u64, &'static str>) {
    let mut docs = read_docs(&curate_testkit::corpus_shard_or_sample(), 300, 10);
    let mut rng = Rng(3);
    let mut kinds = BTreeMap::new();
    let mut copies = Vec::new();
    for (i, d) in docs.iter().enumerate().filter(|(i, _)| i % 4 == 0) {
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
    let dir = tempfile::tempdir().unwrap();
    let step = cfg.build(&env()).unwrap();
    run_barrier(
        step.as_ref(),
        &split(docs, tasks, batch),
        dir.path(),
        0,
        None,
    )
    .unwrap()
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
        first.counters.get("exact_runs") >= 4.0,
        "spilled runs: {}",
        first.counters.get("exact_runs")
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
