//! The MinHash barrier driven by hand: the same removed set for any task split, batch size and
//! thread count; spilling under a tiny memory limit; keep = "highest"; cross-snapshot dedup.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{Doc, Rng, edit_words, jaccard, named_key, read_docs, split_ids, survivor_name};
use curate_core::batch::doc_key;
use curate_core::{BuildEnv, Problems, StepSpec};
use curate_dedup::MinhashDedupConfig;
use curate_dedup::common::Keep;
use curate_dedup::local::{LocalRun, run_barrier};

fn env(dir: &Path) -> BuildEnv {
    env_ids(dir, false)
}

/// The build environment with (`ids`) or without an id column.
fn env_ids(dir: &Path, ids: bool) -> BuildEnv {
    BuildEnv {
        seed: 0,
        index: 0,
        text_column: "text".into(),
        id_column: ids.then(|| "id".to_string()),
        previous: vec![],
        config_dir: dir.to_path_buf(),
    }
}

/// Real documents, plus near copies (a few words edited) and exact copies of some of them, in
/// key order: file 0 holds the originals, file 1 the copies.
fn corpus_with_duplicates(n: usize) -> Vec<Doc> {
    corpus_copying_every(n, 5)
}

/// [`corpus_with_duplicates`] with a copy of every `k`-th document.
fn corpus_copying_every(n: usize, k: usize) -> Vec<Doc> {
    let mut docs = read_docs(&curate_testkit::corpus_shard_or_sample(), n, 30);
    let mut rng = Rng(42);
    let mut copies = Vec::new();
    for (i, d) in docs.iter().enumerate().filter(|(i, _)| i % k == 0) {
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
    run_ids(cfg, docs, tasks, batch, threads, false)
}

/// [`run`] with (`ids`) or without an id column.
fn run_ids(
    cfg: &MinhashDedupConfig,
    docs: &[Doc],
    tasks: usize,
    batch: usize,
    threads: usize,
    ids: bool,
) -> (LocalRun, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let step = cfg.build(&env_ids(dir.path(), ids)).unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let out = pool.install(|| {
        run_barrier(
            step.as_ref(),
            &split_ids(docs, tasks, batch, ids),
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
    let (base, base_dir) = run_ids(&cfg, &docs, 1, 1000, 1, true);
    assert_survivors_named(&base, &docs, true);
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
        let (other, other_dir) = run_ids(&cfg, &docs, tasks, batch, threads, true);
        assert_eq!(
            other.removed, base.removed,
            "tasks={tasks} batch={batch} threads={threads}"
        );
        assert_eq!(other.cluster_ids, base.cluster_ids);
        assert_eq!(other.duplicate_of, base.duplicate_of);
        for f in [
            "cluster/nodes.run",
            "cluster/stats.json",
            "cluster/prov.run",
            "cluster/prov.names",
            "index/band-0000.bin",
            "index/band-0013.bin",
            "index/index.json",
            "index/names.keys",
            "index/names.bin",
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
    // Copies of every other document: enough duplicates for the provenance sorts to spill.
    let docs = corpus_copying_every(400, 2);
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
    let (a, d1) = run_ids(&big, &docs, 2, 100, 2, true);
    let (b, d2) = run_ids(&tiny, &docs, 2, 100, 2, true);
    assert_eq!(a.removed, b.removed);
    assert_eq!(a.cluster_ids, b.cluster_ids);
    assert_eq!(a.duplicate_of, b.duplicate_of);
    assert_survivors_named(&b, &docs, true);
    assert_eq!(a.counters.get_run("minhash_provenance_spills"), 0.0);
    assert!(
        b.counters.get_run("minhash_provenance_spills") >= 2.0,
        "the survivor pairs and the provenance records spill: {}",
        b.counters.get_run("minhash_provenance_spills")
    );
    assert_eq!(
        a.counters.get_run("minhash_runs"),
        2.0,
        "one run per task with a large budget"
    );
    assert!(
        b.counters.get_run("minhash_runs") >= 8.0,
        "runs: {}",
        b.counters.get_run("minhash_runs")
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
    assert!(b.counters.get_run("minhash_cluster_rounds") >= 3.0);
    // The index stage took the removed set in chunks of 32 keys (one pass each), per band.
    assert!(b.removed.len() > 32, "{}", b.removed.len());
    assert_eq!(a.counters.get_run("minhash_index_passes"), 14.0);
    assert!(
        b.counters.get_run("minhash_index_passes") >= 28.0,
        "{}",
        b.counters.get_run("minhash_index_passes")
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

/// The files every later consumer reads are byte-identical (the provenance and index names
/// where the run wrote them).
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
    for f in [
        "cluster/prov.run",
        "cluster/prov.names",
        "index/names.keys",
        "index/names.bin",
    ] {
        let (x, y) = (a.join(f), b.join(f));
        assert_eq!(x.exists(), y.exists(), "{f}: {what}");
        if x.exists() {
            assert!(read(&x) == read(&y), "{f} differs: {what}");
        }
    }
}

/// Every document removed as a duplicate of this run names its cluster's survivor: the
/// survivor's id (its key without an id column or with a null id), a kept document whose key is
/// the cluster id.
fn assert_survivors_named(r: &LocalRun, docs: &[Doc], ids: bool) {
    let mut named = 0;
    assert_eq!(r.duplicate_of.len(), r.removed.len());
    for (key, reason) in &r.removed {
        if reason != "minhash_duplicate" {
            continue;
        }
        let name = r.duplicate_of[key]
            .as_deref()
            .unwrap_or_else(|| panic!("{key:016x} names no survivor"));
        named += 1;
        let root = r.cluster_ids[key];
        assert_eq!(name, survivor_name(root, ids), "duplicate {key:016x}");
        assert_eq!(named_key(name, docs, ids), Some(root));
        assert!(!r.removed.contains_key(&root), "the survivor is kept");
        assert_eq!(r.cluster_ids[&root], root);
        assert!(!r.duplicate_of_snapshot.contains_key(key));
    }
    assert!(named > 0);
}

#[test]
fn every_duplicate_names_its_survivor_with_and_without_ids() {
    let docs = corpus_with_duplicates(300);
    let text: BTreeMap<u64, &str> = docs.iter().map(|d| (d.key, d.text.as_str())).collect();
    for ids in [false, true] {
        for cfg in [
            MinhashDedupConfig {
                cluster_id_column: Some("cluster".into()),
                ..Default::default()
            },
            MinhashDedupConfig {
                verify: Some(0.8),
                keep: Keep::Highest,
                score_column: Some("score".into()),
                cluster_id_column: Some("cluster".into()),
                ..Default::default()
            },
        ] {
            let (r, _d) = run_ids(&cfg, &docs, 3, 50, 2, ids);
            assert!(r.removed.len() >= 40, "{}", r.removed.len());
            assert_survivors_named(&r, &docs, ids);
            if cfg.verify.is_some() {
                // With verify, most duplicates are direct verified neighbours of the survivor.
                let close = r
                    .removed
                    .keys()
                    .filter(|k| jaccard(text[*k], text[&r.cluster_ids[*k]]) >= 0.8)
                    .count();
                assert!(
                    close * 10 >= r.removed.len() * 9,
                    "{close}/{}",
                    r.removed.len()
                );
            }
        }
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

/// Lays a run's published files out as a snapshot directory.
fn snapshot_of(run: &LocalRun) -> tempfile::TempDir {
    let snap = tempfile::tempdir().unwrap();
    assert!(!run.published.files.is_empty());
    for (rel, src) in &run.published.files {
        let dst = snap.path().join(rel);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(src, dst).unwrap();
    }
    write_manifest(snap.path());
    snap
}

/// The manifest a finished run would write for the index files under `snap` (`against` opens
/// an earlier snapshot by its manifest and checks every file it reads against it).
fn write_manifest(snap: &Path) {
    let mut rels: Vec<String> = std::fs::read_dir(snap.join("dedup/minhash"))
        .unwrap()
        .map(|e| format!("dedup/minhash/{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    rels.sort();
    let artifacts = rels
        .iter()
        .map(|rel| curate_snapshot::manifest::entry(snap, rel, None).unwrap())
        .collect();
    let mut m = curate_snapshot::Manifest {
        format: curate_snapshot::manifest::FORMAT,
        curate_version: "test".into(),
        hash: curate_snapshot::manifest::HASH.into(),
        decision_hash_scheme: curate_core::hash::HASH_SCHEME.into(),
        config: serde_json::json!({}),
        config_fingerprint: String::new(),
        seed: 0,
        inputs: vec![],
        resources: vec![],
        skipped: vec![],
        writer: curate_io::write::OutputProps {
            zstd_level: 3,
            row_group_rows: 1,
            data_page_bytes: 1,
            created_by: "test".into(),
        },
        totals: Default::default(),
        steps: vec![],
        outputs: vec![],
        excluded: vec![],
        artifacts,
        content_hash: String::new(),
    };
    m.content_hash = m.compute_content_hash();
    std::fs::write(snap.join("manifest.json"), m.to_bytes()).unwrap();
}

/// The old corpus (150 real documents) and a new one: 150 unseen documents, near copies of 30
/// old ones (file 2) and exact copies of 10 new ones (file 3). Returns the copies' keys.
fn old_and_new() -> (Vec<Doc>, Vec<Doc>, Vec<u64>) {
    let docs = read_docs(&curate_testkit::corpus_shard_or_sample(), 300, 30);
    let (old, new) = docs.split_at(150);
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
    for (i, d) in new.iter().take(10).enumerate() {
        docs2.push(Doc {
            key: doc_key(3, i as u64),
            ..d.clone()
        });
    }
    (old.to_vec(), docs2, expect)
}

/// Each match of the earlier snapshot names, in `duplicate_of_snapshot`, the `against` entry
/// and, in `duplicate_of`, a survivor of the old run (as `ids` names it there) that is a near
/// copy of the removed document.
fn assert_snapshot_matches_named(
    r: &LocalRun,
    docs: &[Doc],
    old: &[Doc],
    old_run: &LocalRun,
    snap: &str,
    ids: bool,
) {
    let text: BTreeMap<u64, &str> = docs.iter().map(|d| (d.key, d.text.as_str())).collect();
    let old_text: BTreeMap<u64, &str> = old.iter().map(|d| (d.key, d.text.as_str())).collect();
    let mut n = 0;
    for (k, reason) in &r.removed {
        if reason != "minhash_duplicate_of_snapshot" {
            continue;
        }
        n += 1;
        assert_eq!(r.duplicate_of_snapshot[k], snap);
        let name = r.duplicate_of[k].as_deref().expect("named");
        let sk = named_key(name, old, ids).unwrap_or_else(|| panic!("{name} is no old document"));
        assert!(
            !old_run.removed.contains_key(&sk),
            "a survivor of the old run"
        );
        let j = jaccard(text[k], old_text[&sk]);
        assert!(j >= 0.5, "{k:016x} vs {name}: Jaccard {j}");
    }
    assert!(n >= 29, "{n}");
}

#[test]
fn against_an_earlier_snapshot_without_its_text() {
    let (old, docs2, expect) = old_and_new();
    let cfg = MinhashDedupConfig::default();
    let (first, _d1) = run_ids(&cfg, &old, 2, 50, 2, true);
    let snap = snapshot_of(&first);
    let label = snap.path().display().to_string();
    assert!(snap.path().join("dedup/minhash/names.keys").exists());
    let cfg2 = MinhashDedupConfig {
        against: vec![label.clone()],
        cluster_id_column: Some("cluster".into()),
        ..Default::default()
    };
    let (second, d2) = run_ids(&cfg2, &docs2, 2, 40, 2, true);
    // The same decisions and files when the cluster stage runs past memory.
    let tiny = MinhashDedupConfig {
        memory_limit: "512B".into(),
        ..cfg2.clone()
    };
    let (third, d3) = run_ids(&tiny, &docs2, 3, 25, 1, true);
    assert_eq!(third.removed, second.removed);
    assert_eq!(third.duplicate_of, second.duplicate_of);
    assert_eq!(third.duplicate_of_snapshot, second.duplicate_of_snapshot);
    assert_eq!(cluster_run(d3.path())["external"], true);
    assert!(third.counters.get_run("minhash_provenance_spills") >= 2.0);
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
    assert_snapshot_matches_named(&second, &docs2, &old, &first, &label, true);
    // The exact copies of new documents are duplicates of this run, named by this run's ids.
    assert!(second.removed.keys().filter(|k| **k >> 40 == 3).count() >= 10);
    assert_survivors_named(&second, &docs2, true);
    assert_eq!(second.counters.get("minhash_against_unnamed"), 0.0);

    // A later run without an id column still names the earlier survivors by their ids.
    let (noids, _d) = run_ids(&cfg2, &docs2, 2, 40, 1, false);
    assert_eq!(noids.removed, second.removed);
    assert_snapshot_matches_named(&noids, &docs2, &old, &first, &label, true);
    assert_survivors_named(&noids, &docs2, false);

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

/// A band key of a v2 index record (band key, survivor key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct V2(u64, u64);

impl curate_dedup::runs::Record for V2 {
    const SIZE: usize = 16;
    fn encode(&self, out: &mut [u8]) {
        out[..8].copy_from_slice(&self.0.to_le_bytes());
        out[8..].copy_from_slice(&self.1.to_le_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        V2(
            u64::from_le_bytes(b[..8].try_into().unwrap()),
            u64::from_le_bytes(b[8..].try_into().unwrap()),
        )
    }
}

/// A v1 index record (band key only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct V1(u64);

impl curate_dedup::runs::Record for V1 {
    const SIZE: usize = 8;
    fn encode(&self, out: &mut [u8]) {
        out.copy_from_slice(&self.0.to_le_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        V1(u64::from_le_bytes(b.try_into().unwrap()))
    }
}

/// Rewrites a snapshot's index as the first format (`curate-minhash-index-v1`), as an older
/// curate wrote it: band keys only, no survivor, no names.
fn downgrade_to_v1(snap: &Path, bands: usize) {
    let dir = snap.join("dedup/minhash");
    for b in 0..bands {
        let path = dir.join(format!("band-{b:04}.bin"));
        let mut r = curate_dedup::runs::PartReader::<V2>::open(&path, 0, 4096).unwrap();
        let mut keys = Vec::new();
        while let Some(V2(h, _)) = r.next_record().unwrap() {
            keys.push(V1(h));
        }
        curate_dedup::runs::write_run(&path, &[keys.len() as u64], keys.iter()).unwrap();
    }
    let meta = dir.join("index.json");
    let mut v: serde_json::Value = serde_json::from_slice(&read(&meta)).unwrap();
    v["format"] = "curate-minhash-index-v1".into();
    v.as_object_mut().unwrap().remove("names");
    std::fs::write(&meta, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    for f in ["names.keys", "names.bin"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    write_manifest(snap);
}

#[test]
fn snapshot_matches_named_by_key_without_ids_and_unnamed_by_a_v1_index() {
    let (old, docs2, _) = old_and_new();
    let cfg = MinhashDedupConfig::default();
    // The earlier run had no id column: its index names survivors by their keys there.
    let (first, _d1) = run_ids(&cfg, &old, 2, 50, 2, false);
    let snap = snapshot_of(&first);
    assert!(!snap.path().join("dedup/minhash/names.keys").exists());
    let label = snap.path().display().to_string();
    let cfg2 = MinhashDedupConfig {
        against: vec![label.clone()],
        cluster_id_column: Some("cluster".into()),
        ..Default::default()
    };
    let (second, _d2) = run_ids(&cfg2, &docs2, 2, 40, 2, true);
    assert_snapshot_matches_named(&second, &docs2, &old, &first, &label, false);

    // The same snapshot with its index in the first format: the same documents are removed,
    // the snapshot is named, the survivor there cannot be (null, and counted).
    downgrade_to_v1(snap.path(), cfg.bands);
    let (v1, _d3) = run_ids(&cfg2, &docs2, 3, 40, 2, true);
    assert_eq!(v1.removed, second.removed);
    let matched: Vec<u64> = v1
        .removed
        .iter()
        .filter(|(_, r)| *r == "minhash_duplicate_of_snapshot")
        .map(|(k, _)| *k)
        .collect();
    assert!(matched.len() >= 29);
    for k in &matched {
        assert_eq!(v1.duplicate_of[k], None, "{k:016x}");
        assert_eq!(v1.duplicate_of_snapshot[k], label);
    }
    assert_eq!(
        v1.counters.get("minhash_against_unnamed"),
        matched.len() as f64
    );
    // Duplicates of this run are still named.
    assert_survivors_named(&v1, &docs2, true);
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
    let tasks = split_ids(&docs, 2, 40, true);
    let (clean, clean_dir) = run_ids(&cfg, &docs, 2, 40, 1, true);

    let dir = tempfile::tempdir().unwrap();
    let step = cfg.build(&env_ids(dir.path(), true)).unwrap();
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
        "cluster/prov.run",
        "cluster/prov.names",
        "index/band-0005.bin",
        "index/index.json",
        "index/names.keys",
        "index/names.bin",
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
