//! End to end through the `curate` binary: exact + MinHash dedup on real corpus text with
//! injected duplicates, the same snapshot for any thread count, and a second run deduplicated
//! `against` the first snapshot's published index. Every removed duplicate names its survivor in
//! the exclusion output (`duplicate_of`, `duplicate_of_snapshot`), read back and checked.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::properties::WriterProperties;

/// `n` real documents (text, id) with at least 40 words, starting at document `skip`.
fn real_docs(skip: usize, n: usize) -> Vec<(String, String)> {
    let src = curate_testkit::corpus_shard_or_sample();
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&src).unwrap())
        .unwrap()
        .with_batch_size(1024)
        .build()
        .unwrap();
    let mut out = Vec::new();
    let mut seen = 0;
    for rb in reader {
        let rb = rb.unwrap();
        let t = rb
            .column_by_name("text")
            .unwrap()
            .as_string::<i32>()
            .clone();
        let id = rb.column_by_name("id").unwrap().as_string::<i32>().clone();
        for i in 0..rb.num_rows() {
            if t.value(i).split_whitespace().count() < 40 {
                continue;
            }
            seen += 1;
            if seen > skip {
                out.push((t.value(i).to_string(), id.value(i).to_string()));
                if out.len() == n {
                    return out;
                }
            }
        }
    }
    out
}

/// A near copy: one word in 60 replaced (Jaccard of 5-gram sets ≈ 0.9).
fn near_copy(text: &str, salt: usize) -> String {
    text.split_whitespace()
        .enumerate()
        .map(|(i, w)| {
            if (i + salt).is_multiple_of(60) {
                format!("edited{}", (i * 7 + salt) % 97)
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn write_input(path: &Path, docs: &[(String, String)]) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("text", DataType::Utf8, false),
        Field::new("id", DataType::Utf8, false),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            docs.iter().map(|d| d.0.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            docs.iter().map(|d| d.1.as_str()),
        )),
    ];
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(300))
        .build();
    let mut w =
        ArrowWriter::try_new(File::create(path).unwrap(), schema.clone(), Some(props)).unwrap();
    w.write(&RecordBatch::try_new(schema, cols).unwrap())
        .unwrap();
    w.close().unwrap();
}

fn config(dir: &Path, name: &str, input: &Path, steps: &str, out: &Path) -> PathBuf {
    let body = format!(
        "[input]\npaths = [{:?}]\ntext_column = \"text\"\nid_column = \"id\"\n\n{steps}\n[output]\ndir = {:?}\nexclusion = true\n\n[run]\nseed = 3\n",
        input.display().to_string(),
        out.display().to_string()
    );
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

fn run(cfg: &Path, threads: &str) {
    let o = Command::new(env!("CARGO_BIN_EXE_curate"))
        .env("NO_COLOR", "1")
        .args(["run", "--quiet", "--threads", threads, "--config"])
        .arg(cfg)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "curate run failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
}

fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

fn step<'a>(m: &'a serde_json::Value, kind: &str) -> &'a serde_json::Value {
    m["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} step"))
}

fn dropped(m: &serde_json::Value, kind: &str, reason: &str) -> u64 {
    step(m, kind)["dropped"][reason].as_u64().unwrap_or(0)
}

/// One row of a snapshot's `data/` or `excluded/` files.
#[derive(Debug, Clone)]
struct Row {
    text: String,
    id: String,
    cluster: Option<u64>,
    duplicate_of: Option<String>,
    duplicate_of_snapshot: Option<String>,
    step: Option<String>,
    reason: Option<String>,
}

/// The rows of `dir/sub/*.parquet`.
fn rows(dir: &Path, sub: &str) -> Vec<Row> {
    let mut out = Vec::new();
    for b in common::read_dir_batches(&dir.join(sub)) {
        let s = |name: &str| b.column_by_name(name).map(|c| c.as_string::<i32>().clone());
        let text = s("text").expect("text");
        let id = s("id").expect("id");
        let cluster = b
            .column_by_name("cluster")
            .map(|c| c.as_primitive::<arrow::datatypes::UInt64Type>().clone());
        let (dup, snap, step, reason) = (
            s("duplicate_of"),
            s("duplicate_of_snapshot"),
            s("step"),
            s("reason"),
        );
        let opt = |c: &Option<StringArray>, i: usize| {
            c.as_ref()
                .filter(|c| c.is_valid(i))
                .map(|c| c.value(i).to_string())
        };
        for i in 0..b.num_rows() {
            out.push(Row {
                text: text.value(i).to_string(),
                id: id.value(i).to_string(),
                cluster: cluster
                    .as_ref()
                    .filter(|c| c.is_valid(i))
                    .map(|c| c.value(i)),
                duplicate_of: opt(&dup, i),
                duplicate_of_snapshot: opt(&snap, i),
                step: opt(&step, i),
                reason: opt(&reason, i),
            });
        }
    }
    out
}

/// Text as `exact_dedup` compares it by default (full normalization).
fn normalized(text: &str) -> String {
    curate_dedup::normalize::Normalizer::new(curate_dedup::normalize::NormFlags::full())
        .normalize_to_string(text)
}

/// Jaccard similarity of two texts' normalized word 5-gram sets.
fn jaccard(a: &str, b: &str) -> f64 {
    let set = |t: &str| -> BTreeSet<Vec<String>> {
        let words: Vec<String> = normalized(t).split_whitespace().map(String::from).collect();
        words.windows(5).map(|w| w.to_vec()).collect()
    };
    let (x, y) = (set(a), set(b));
    let inter = x.intersection(&y).count();
    inter as f64 / (x.len() + y.len() - inter).max(1) as f64
}

/// Checks every duplicate of a snapshot names its survivor: an exact duplicate, a document of
/// the snapshot (in `data/`, or excluded by the later MinHash step) with the same normalized
/// text; a near duplicate, a document in `data/` of the same cluster with a near-identical text.
/// Returns how many of each were checked.
fn assert_survivors_named(out: &Path) -> (usize, usize) {
    let data = rows(out, "data");
    let excluded = rows(out, "excluded");
    let by_id = |rs: &[Row]| -> BTreeMap<String, Row> {
        rs.iter().map(|r| (r.id.clone(), r.clone())).collect()
    };
    let (kept, gone) = (by_id(&data), by_id(&excluded));
    assert_eq!(kept.len(), data.len(), "ids are unique");
    // The survivor of a near duplicate is its cluster id, on both sides.
    assert!(
        data.iter().any(|r| r.cluster.is_some()),
        "cluster ids in data/"
    );
    let (mut exact, mut near) = (0, 0);
    for r in &excluded {
        let name = r.duplicate_of.as_deref();
        match r.reason.as_deref() {
            Some("exact_duplicate") => {
                exact += 1;
                let name = name.unwrap_or_else(|| panic!("{} names no survivor", r.id));
                let s = kept.get(name).or_else(|| {
                    gone.get(name)
                        .filter(|s| s.step.as_deref() == Some("minhash_dedup"))
                });
                let s = s.unwrap_or_else(|| panic!("{}: survivor {name} not found", r.id));
                assert_eq!(
                    normalized(&s.text),
                    normalized(&r.text),
                    "{} vs {name}",
                    r.id
                );
                assert!(r.cluster.is_none(), "removed before the MinHash step");
            }
            Some("minhash_duplicate") => {
                near += 1;
                let name = name.unwrap_or_else(|| panic!("{} names no survivor", r.id));
                let s = kept
                    .get(name)
                    .unwrap_or_else(|| panic!("{}: survivor {name} not in data/", r.id));
                assert!(
                    r.cluster.is_some(),
                    "{}: cluster id on the excluded side",
                    r.id
                );
                assert_eq!(r.cluster, s.cluster, "{} and {name}: one cluster", r.id);
                let j = jaccard(&r.text, &s.text);
                assert!(j >= 0.5, "{} vs {name}: Jaccard {j}", r.id);
            }
            other => panic!("unexpected reason {other:?}"),
        }
        assert!(r.duplicate_of_snapshot.is_none());
    }
    (exact, near)
}

const STEPS: &str = r#"
[[steps]]
type = "exact_dedup"
partitions = 4

[[steps]]
type = "minhash_dedup"
verify = 0.8
cluster_id_column = "cluster"
memory_limit = "8MiB"
"#;

#[test]
fn exact_and_minhash_dedup_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let base = real_docs(0, 900);
    assert!(base.len() >= 300, "corpus too small: {}", base.len());
    // 900 originals, 120 exact copies, 150 near copies (new ids).
    let mut docs = base.clone();
    for (i, d) in base.iter().take(120).enumerate() {
        docs.push((d.0.clone(), format!("exact-{i}")));
    }
    for (i, d) in base.iter().skip(200).take(150).enumerate() {
        docs.push((near_copy(&d.0, i), format!("near-{i}")));
    }
    let input = tmp.path().join("input.parquet");
    write_input(&input, &docs);

    let out1 = tmp.path().join("snap1");
    let out2 = tmp.path().join("snap2");
    run(&config(tmp.path(), "a.toml", &input, STEPS, &out1), "1");
    // another split into tasks (three row groups each instead of one: fewer spilled runs) and
    // two threads: the whole snapshot, manifest included, is the same (the counts of spilled
    // runs, which differ, live in run.json)
    let b = config(tmp.path(), "b.toml", &input, STEPS, &out2);
    let body = std::fs::read_to_string(&b).unwrap();
    std::fs::write(&b, body.replace("seed = 3\n", "seed = 3\ntask_size = 3\n")).unwrap();
    run(&b, "2");
    common::assert_same_snapshot(
        &out2,
        &out1,
        "task_size 3, 2 threads vs task_size 1, 1 thread",
    );
    let exact_runs = |d: &Path| {
        let r: serde_json::Value =
            serde_json::from_slice(&std::fs::read(d.join("run.json")).unwrap()).unwrap();
        r["step_run_counters"]["0"]["exact_runs"].as_f64().unwrap()
    };
    assert_eq!((exact_runs(&out1), exact_runs(&out2)), (4.0, 2.0));
    let m1 = manifest(&out1);

    let exact = dropped(&m1, "exact_dedup", "exact_duplicate");
    let near = dropped(&m1, "minhash_dedup", "minhash_duplicate");
    assert!(exact >= 120, "exact copies removed: {exact}");
    assert!(near >= 140, "near copies removed: {near}");
    let stats = &step(&m1, "minhash_dedup")["stats"];
    assert_eq!(stats["duplicates_removed"].as_u64().unwrap(), near);
    assert!(
        stats["cluster_sizes"]["2"].as_u64().unwrap() >= 100,
        "{stats}"
    );
    assert_eq!(
        m1["totals"]["kept_rows"].as_u64().unwrap(),
        docs.len() as u64 - exact - near
    );
    let (named_exact, named_near) = assert_survivors_named(&out1);
    assert_eq!(named_exact as u64, exact);
    assert_eq!(named_near as u64, near);
    let artifacts: Vec<&str> = m1["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["path"].as_str().unwrap())
        .collect();
    assert!(
        artifacts.contains(&"dedup/minhash/index.json"),
        "{artifacts:?}"
    );

    // Second snapshot: unseen documents plus fresh near copies of the first one's survivors,
    // deduplicated against it without reading its data.
    let unseen = real_docs(900, 200);
    let mut docs2 = unseen.clone();
    for (i, d) in base.iter().skip(400).take(100).enumerate() {
        docs2.push((near_copy(&d.0, i + 1000), format!("again-{i}")));
    }
    let input2 = tmp.path().join("input2.parquet");
    write_input(&input2, &docs2);
    let against = format!("{STEPS}against = [{:?}]\n", out1.display().to_string());
    let out3 = tmp.path().join("snap3");
    run(&config(tmp.path(), "c.toml", &input2, &against, &out3), "2");
    let m3 = manifest(&out3);
    let hits = dropped(&m3, "minhash_dedup", "minhash_duplicate_of_snapshot");
    // The unseen real documents may include a few natural near duplicates of the first slice.
    assert!(
        (95..150).contains(&hits),
        "near copies of the first snapshot removed: {hits} of 100"
    );
    // Each names the first snapshot and the survivor there it nearly copies.
    let snap1 = rows(&out1, "data");
    let snap1: BTreeMap<&str, &Row> = snap1.iter().map(|r| (r.id.as_str(), r)).collect();
    let label = out1.display().to_string();
    let mut named = 0;
    for r in rows(&out3, "excluded") {
        if r.reason.as_deref() != Some("minhash_duplicate_of_snapshot") {
            assert!(r.duplicate_of_snapshot.is_none());
            continue;
        }
        named += 1;
        assert_eq!(r.duplicate_of_snapshot.as_deref(), Some(label.as_str()));
        let name = r.duplicate_of.as_deref().expect("named");
        let s = snap1
            .get(name)
            .unwrap_or_else(|| panic!("{}: {name} is not in the first snapshot", r.id));
        let j = jaccard(&r.text, &s.text);
        assert!(j >= 0.5, "{} vs {name}: Jaccard {j}", r.id);
        if let Some(i) = r.id.strip_prefix("again-") {
            let i: usize = i.parse().unwrap();
            if name == base[400 + i].1 {
                // one word in 60 edited: each edit changes up to 5 shingles on each side, so a
                // short document's copy can sit near 0.7 (MinHash's 14 × 8 threshold region)
                assert!(j >= 0.7, "{} vs {name}: Jaccard {j}", r.id);
            }
        }
    }
    assert_eq!(named as u64, hits);

    // The run read the first snapshot's index through its manifest: each file it read is listed
    // with the hash the first manifest gives it.
    let listed: BTreeMap<String, String> = m1["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let p = out1.join(a["path"].as_str().unwrap());
            (
                p.display().to_string(),
                a["xxh3_128"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let read = m3["resources"].as_array().expect("resources listed");
    assert!(read.len() >= 3, "{read:?}");
    for r in read {
        assert_eq!(r["type"], "minhash_dedup");
        let path = r["path"].as_str().unwrap();
        assert!(path.contains("dedup/minhash/"), "{path}");
        assert_eq!(
            Some(r["xxh3_128"].as_str().unwrap()),
            listed.get(path).map(|s| s.as_str()),
            "{path}"
        );
    }
    // A flipped byte in that index, or its snapshot without a manifest, is refused before any
    // data is read, naming the file.
    let band = out1.join("dedup/minhash/band-0000.bin");
    let good = std::fs::read(&band).unwrap();
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    std::fs::write(&band, &bad).unwrap();
    let cfg4 = config(
        tmp.path(),
        "d.toml",
        &input2,
        &against,
        &tmp.path().join("snap4"),
    );
    let err = common::run_config_err(&cfg4, &tmp.path().join("snap4"));
    assert!(
        err.contains("band-0000.bin hashes to") && err.contains("the index changed after that run"),
        "{err}"
    );
    std::fs::write(&band, &good).unwrap();
    std::fs::rename(out1.join("manifest.json"), tmp.path().join("m1.json")).unwrap();
    let err = common::run_config_err(&cfg4, &tmp.path().join("snap4"));
    assert!(
        err.contains(&format!("against \"{}\"", out1.display())) && err.contains("manifest.json"),
        "{err}"
    );
}

#[test]
fn dedup_config_problems_are_all_reported_and_explained() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.parquet");
    write_input(&input, &[("a b c d e f".to_string(), "x".to_string())]);
    let steps = r#"
[[steps]]
type = "minhash_dedup"
bands = 0
verify = 1.5
keep = "highest"
memory_limit = "lots"
wrong_key = 1

[[steps]]
type = "exact_dedup"
normalization = "fancy"
"#;
    let cfg = config(
        tmp.path(),
        "bad.toml",
        &input,
        steps,
        &tmp.path().join("out"),
    );
    let o = Command::new(env!("CARGO_BIN_EXE_curate"))
        .env("NO_COLOR", "1")
        .arg("validate")
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    for needle in [
        "`bands`",
        "`verify`",
        "`score_column`",
        "`memory_limit`",
        "`wrong_key`",
        "fancy",
    ] {
        assert!(err.contains(needle), "{needle} missing from:\n{err}");
    }
    let o = Command::new(env!("CARGO_BIN_EXE_curate"))
        .args(["explain", "minhash_dedup"])
        .output()
        .unwrap();
    let doc = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && doc.contains("verify") && doc.contains("against"),
        "{doc}"
    );
}
