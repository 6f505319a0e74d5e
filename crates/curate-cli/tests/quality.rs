//! End to end through the `curate` binary: the quality loop on a slice of the real corpus —
//! sample → label (offline `reference` teacher, or Claude against the fake Anthropic server) →
//! train → score — and re-cutting the stored scores with `quality_threshold`.

use crate::common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use arrow::array::{Array, AsArray};
use arrow::datatypes::Float32Type;
use curate_testkit::anthropic::{FakeAnthropic, FakeConfig};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

const KEY: &str = "sk-ant-quality-e2e-0123456789";

fn curate() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_curate"));
    c.env_remove("ANTHROPIC_API_KEY").env("NO_COLOR", "1");
    c
}

/// The first `n` documents of the real corpus (or the bundled slice) with `text`, `id`, `url`
/// and `language`, as a small parquet input of one row group.
fn input(dir: &Path, n: usize) -> PathBuf {
    common::corpus_slice(dir, n, n).0
}

fn write_config(dir: &Path, name: &str, inputs: &str, steps: &str, out: &Path) -> PathBuf {
    let cfg = format!(
        "[input]\npaths = [{inputs}]\ntext_column = \"text\"\nid_column = \"id\"\n\n{steps}\n[output]\ndir = \"{out}\"\n\n[run]\nseed = 7\n",
        out = out.display()
    );
    let p = dir.join(name);
    std::fs::write(&p, cfg).unwrap();
    p
}

fn run(config: &Path, threads: &str, key: Option<&str>) -> Output {
    let mut c = curate();
    c.args(["run", "--quiet", "--threads", threads, "--config"])
        .arg(config);
    if let Some(k) = key {
        c.env("ANTHROPIC_API_KEY", k);
    }
    c.output().unwrap()
}

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "curate failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// (id, quality_score) of every kept document of a snapshot, sorted by id.
fn scores(out: &Path) -> Vec<(String, f32)> {
    let mut v = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(out.join("data"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for p in files {
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&p).unwrap())
            .unwrap()
            .build()
            .unwrap();
        for rb in reader {
            let rb = rb.unwrap();
            let id = rb.column_by_name("id").unwrap().as_string::<i32>().clone();
            let s = rb
                .column_by_name("quality_score")
                .expect("quality_score column")
                .as_primitive::<Float32Type>()
                .clone();
            for i in 0..rb.num_rows() {
                assert!(!s.is_null(i), "every kept document carries a score");
                v.push((id.value(i).to_string(), s.value(i)));
            }
        }
    }
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn metrics(out: &Path) -> serde_json::Value {
    serde_json::from_slice(
        &std::fs::read(out.join("quality/metrics.json")).expect("quality/metrics.json"),
    )
    .unwrap()
}

const REFERENCE_STEPS: &str = r#"
[[steps]]
type = "sample"
size = 900
holdout = 0.25

[[steps]]
type = "label"
annotator = "reference"
reference = "REF"

[[steps]]
type = "train"
max_epochs = 10   # debug builds train slowly; the defaults are exercised by the unit tests

[[steps]]
type = "score"
keep = { top_fraction = 0.2 }
"#;

#[test]
fn reference_loop_end_to_end_is_deterministic_and_keeps_the_exact_top_fraction() {
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path(), 1200);
    let reference = curate_testkit::repo_root().join("configs/quickstart/reference.jsonl");
    let steps = REFERENCE_STEPS.replace("REF", &reference.display().to_string());
    let inputs = format!("\"{}\"", input.display());
    let (out1, out2) = (dir.path().join("out1"), dir.path().join("out2"));
    ok(&run(
        &write_config(dir.path(), "a.toml", &inputs, &steps, &out1),
        "1",
        None,
    ));
    ok(&run(
        &write_config(dir.path(), "b.toml", &inputs, &steps, &out2),
        "2",
        None,
    ));

    // The model and its evaluation are in the snapshot.
    let model = std::fs::read(out1.join("model/model.bin")).unwrap();
    assert_eq!(&model[..8], b"CURATEQM");
    assert_eq!(
        model,
        std::fs::read(out2.join("model/model.bin")).unwrap(),
        "same model bytes whatever the thread count"
    );
    let m = metrics(&out1);
    for k in ["auc", "spearman", "f1", "accuracy", "ece", "n_holdout"] {
        assert!(
            m.get(k).is_some_and(|v| !v.is_null()),
            "metrics.json lacks {k}: {m}"
        );
    }
    assert_eq!(m["head"], "logistic");
    // Held out: a quarter of the sampled corpus docs (negatives) plus the reference holdout.
    assert!(m["n_holdout"].as_u64().unwrap() > 150, "{m}");
    // Rust-book prose vs. the corpus is an easy split: the student must find it.
    assert!(m["auc"].as_f64().unwrap() > 0.9, "{m}");

    // Exactly ⌈0.2 · 1200⌉ documents kept, each with its score, identical across runs.
    let s1 = scores(&out1);
    assert_eq!(s1.len(), 240);
    assert_eq!(s1, scores(&out2));

    // The score step counts every scored document per score bin (the report's "before the cut"
    // series): all 1200, and the kept documents, binned the same way over the metrics' scale,
    // never outnumber the scored ones in a bin.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out1.join("manifest.json")).unwrap()).unwrap();
    let step = manifest["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["type"] == "score")
        .expect("score step in the manifest");
    let hist: Vec<u64> = (0..curate_quality::score::SCORE_HIST_BINS)
        .map(|k| {
            step["counters"][format!("score_hist_{k:02}")]
                .as_f64()
                .unwrap() as u64
        })
        .collect();
    assert_eq!(hist.iter().sum::<u64>(), 1200, "{hist:?}");
    let hi = m["scale"][1].as_f64().unwrap();
    let mut kept = vec![0u64; hist.len()];
    for (_, x) in &s1 {
        kept[curate_quality::score::score_hist_bin(f64::from(*x), 0.0, hi)] += 1;
    }
    assert!(
        kept.iter().zip(&hist).all(|(k, h)| k <= h),
        "kept {kept:?} vs scored {hist:?}"
    );
}

#[test]
fn claude_loop_against_the_fake_server_scores_every_document() {
    let dir = tempfile::tempdir().unwrap();
    let server = FakeAnthropic::start(FakeConfig::new(KEY));
    let input = input(dir.path(), 800);
    let steps = format!(
        r#"
[[steps]]
type = "sample"
size = 500
holdout = 0.2

[[steps]]
type = "label"
annotator = "claude"
model = "claude-haiku-5-5"
mode = "batch"
base_url = "{url}"
store = "{store}"
max_usd = 1.0
poll_interval_s = 0.01
poll_max_interval_s = 0.05

[[steps]]
type = "train"
threshold = 1.0
max_epochs = 10

[[steps]]
type = "score"
"#,
        url = server.base_url(),
        store = dir.path().join("store").display()
    );
    let out = dir.path().join("out");
    let cfg = write_config(
        dir.path(),
        "claude.toml",
        &format!("\"{}\"", input.display()),
        &steps,
        &out,
    );
    ok(&run(&cfg, "2", Some(KEY)));
    let m = metrics(&out);
    eprintln!(
        "auc {} spearman {} f1 {} positives {}",
        m["auc"], m["spearman"], m["f1"], m["n_positive"]
    );
    assert_eq!(m["head"], "ordinal");
    // This slice of technical docs rarely reaches 3 teaching words: evaluate at a keep
    // threshold of 1 so both classes are well populated.
    assert_eq!(m["threshold"], 1.0);
    assert!(m["n_holdout"].as_u64().unwrap() >= 80, "{m}");
    assert!(m["n_positive"].as_u64().unwrap() >= 15, "{m}");
    // The fake teacher counts teaching words: a bag-of-words student ranks it well.
    assert!(m["spearman"].as_f64().unwrap() > 0.4, "{m}");
    assert!(m["auc"].as_f64().unwrap() > 0.75, "{m}");
    // No keep rule: every document is kept and scored, on the 0–5 scale.
    let s = scores(&out);
    assert_eq!(s.len(), 800);
    assert!(s.iter().all(|(_, v)| (0.0..=5.0).contains(v)));
    // The last pass binned the kept scores for the report over the metrics' 0–5 scale (so
    // finalize drew the report from its counters, without reading the data files).
    assert_eq!(m["scale"], serde_json::json!([0.0, 5.0]));
    let done = common::done_dir(&out);
    let mut binned = 0;
    for stage in std::fs::read_dir(&done).unwrap() {
        for t in std::fs::read_dir(stage.unwrap().path()).unwrap() {
            let r: serde_json::Value =
                serde_json::from_slice(&std::fs::read(t.unwrap().path()).unwrap()).unwrap();
            let h = &r["profile"]["kept_scores"];
            if h.is_object() {
                assert_eq!((&h["lo"], &h["hi"]), (&m["scale"][0], &m["scale"][1]));
                binned += h["counts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c.as_u64().unwrap())
                    .sum::<u64>();
            }
        }
    }
    assert_eq!(binned, 800);
}

#[test]
fn quality_threshold_recuts_stored_scores_without_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path(), 600);
    let reference = curate_testkit::repo_root().join("configs/quickstart/reference.jsonl");
    let steps = REFERENCE_STEPS
        .replace("REF", &reference.display().to_string())
        .replace("top_fraction = 0.2", "threshold = 0.0");
    let out = dir.path().join("scored");
    ok(&run(
        &write_config(
            dir.path(),
            "a.toml",
            &format!("\"{}\"", input.display()),
            &steps,
            &out,
        ),
        "2",
        None,
    ));
    let all = scores(&out);
    assert_eq!(all.len(), 600);

    // What a re-cut would keep, from the score column alone.
    let o = curate()
        .args(["rethreshold", "--top-fraction", "0.25", "--json"])
        .arg(&out)
        .output()
        .unwrap();
    ok(&o);
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (
            r["total"].as_u64(),
            r["kept"].as_u64(),
            r["missing"].as_u64()
        ),
        (Some(600), Some(150), Some(0))
    );
    let o = curate()
        .args(["rethreshold", "--threshold", "2.0"])
        .arg(&out)
        .output()
        .unwrap();
    ok(&o);
    assert!(
        String::from_utf8_lossy(&o.stdout).starts_with("0 of 600 documents kept"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );

    // Re-cut: the snapshot's data files in, one `quality_threshold` step.
    let data = format!("\"{}/data/*.parquet\"", out.display());
    let recut = dir.path().join("recut");
    let cut_steps = "[[steps]]\ntype = \"quality_threshold\"\nkeep = { top_fraction = 0.25 }\n";
    ok(&run(
        &write_config(dir.path(), "b.toml", &data, cut_steps, &recut),
        "2",
        None,
    ));
    let kept = scores(&recut);
    assert_eq!(kept.len(), 150);
    // The kept documents keep their stored scores, and are the best ones.
    let mut sorted: Vec<f32> = all.iter().map(|x| x.1).collect();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let cut = sorted[149];
    for (id, s) in &kept {
        assert!(*s >= cut, "{id} scored {s} below the cut {cut}");
        assert!(
            all.binary_search_by(|x| x.0.cmp(id))
                .is_ok_and(|i| all[i].1 == *s)
        );
    }
}

/// The quick start's config with absolute paths, its score step's `keep` replaced by `keep`
/// (the whole `keep = ...` line; empty to score without a cut), run into `out`.
fn quickstart(dir: &Path, out: &Path, keep: &str, threads: &str) {
    let root = curate_testkit::repo_root();
    let cfg = std::fs::read_to_string(root.join("configs/quickstart.toml"))
        .unwrap()
        .replace(
            "\"configs/quickstart/sample.parquet\"",
            &format!(
                "\"{}\"",
                root.join("configs/quickstart/sample.parquet").display()
            ),
        )
        .replace(
            "\"configs/quickstart/reference.jsonl\"",
            &format!(
                "\"{}\"",
                root.join("configs/quickstart/reference.jsonl").display()
            ),
        )
        .replace("keep = { top_fraction = 0.3 }", keep);
    let name = format!("{}.toml", out.file_name().unwrap().to_string_lossy());
    let p = dir.join(name);
    std::fs::write(&p, cfg).unwrap();
    let o = curate()
        .args(["run", "--quiet", "--threads", threads, "--config"])
        .arg(&p)
        .arg("--output")
        .arg(out)
        .output()
        .unwrap();
    ok(&o);
}

#[test]
fn quickstart_scores_spread_and_reproduce_its_top_fraction_cut() {
    let dir = tempfile::tempdir().unwrap();
    // The quick start as shipped: the best 30 % by score.
    let cut = dir.path().join("cut");
    quickstart(dir.path(), &cut, "keep = { top_fraction = 0.3 }", "2");
    let kept = scores(&cut);
    let m = manifest_of(&cut);
    let score = m["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["type"] == "score")
        .unwrap();
    let scored = score["counters"]["scored"].as_f64().unwrap() as usize;
    assert_eq!(
        kept.len(),
        (3 * scored).div_ceil(10),
        "⌈0.3 · {scored}⌉ kept"
    );
    // The stored calibrated scores spread: no two kept documents share one, and they span a
    // range (the isotonic map used to send every kept document to 0.0).
    let mut bits: Vec<u32> = kept.iter().map(|k| k.1.to_bits()).collect();
    bits.sort_unstable();
    bits.dedup();
    assert_eq!(
        bits.len(),
        kept.len(),
        "ties among the kept scores: {kept:?}"
    );
    let min = kept.iter().map(|k| k.1).fold(f32::MAX, f32::min);
    let max = kept.iter().map(|k| k.1).fold(f32::MIN, f32::max);
    assert!(min > 0.0 && max > 4.0 * min, "kept scores {min}..{max}");
    // The manifest says which column the cut was made on and the lowest kept score.
    assert_eq!(score["stats"]["cut_column"], "quality_score");
    assert_eq!(
        score["stats"]["keep"]["kept"].as_u64(),
        Some(kept.len() as u64)
    );
    assert_eq!(
        score["stats"]["keep"]["min_kept_score"].as_f64().unwrap() as f32,
        min
    );

    // The same pipeline scoring every document without a cut (same model bytes, same scores).
    let all = dir.path().join("all");
    quickstart(dir.path(), &all, "", "1");
    assert_eq!(
        std::fs::read(cut.join("model/model.bin")).unwrap(),
        std::fs::read(all.join("model/model.bin")).unwrap()
    );
    let every = scores(&all);
    assert_eq!(every.len(), scored);
    for (id, s) in &kept {
        let i = every.binary_search_by(|x| x.0.cmp(id)).unwrap();
        assert_eq!(every[i].1, *s, "{id}");
    }

    // Re-cut from the stored column alone: `curate rethreshold` …
    let o = curate()
        .args(["rethreshold", "--top-fraction", "0.3", "--json"])
        .arg(&all)
        .output()
        .unwrap();
    ok(&o);
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["kept"].as_u64(), Some(kept.len() as u64));
    assert_eq!(r["min_kept_score"].as_f64().unwrap() as f32, min);
    let o = curate()
        .args(["rethreshold", "--threshold", &format!("{min:e}"), "--json"])
        .arg(&all)
        .output()
        .unwrap();
    ok(&o);
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["kept"].as_u64(), Some(kept.len() as u64));
    // … and the `quality_threshold` step, by top fraction and by the lowest kept score: exactly
    // the documents the quick start kept.
    let data = format!("\"{}/data/*.parquet\"", all.display());
    for (name, rule) in [
        ("fraction", "top_fraction = 0.3".to_string()),
        ("threshold", format!("threshold = {min:e}")),
    ] {
        let recut = dir.path().join(format!("recut-{name}"));
        let steps = format!("[[steps]]\ntype = \"quality_threshold\"\nkeep = {{ {rule} }}\n");
        ok(&run(
            &write_config(dir.path(), &format!("{name}.toml"), &data, &steps, &recut),
            "2",
            None,
        ));
        assert_eq!(scores(&recut), kept, "{name}");
    }
}

fn manifest_of(out: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap()
}

/// Float32 column `column` of every row of a snapshot's data, by id.
fn column_by_id(out: &Path, column: &str) -> std::collections::BTreeMap<String, f32> {
    let mut m = std::collections::BTreeMap::new();
    for e in std::fs::read_dir(out.join("data")).unwrap() {
        let reader =
            ParquetRecordBatchReaderBuilder::try_new(File::open(e.unwrap().path()).unwrap())
                .unwrap()
                .build()
                .unwrap();
        for rb in reader {
            let rb = rb.unwrap();
            let id = rb.column_by_name("id").unwrap().as_string::<i32>().clone();
            let s = rb
                .column_by_name(column)
                .unwrap_or_else(|| panic!("no column {column}"))
                .as_primitive::<Float32Type>()
                .clone();
            for i in 0..rb.num_rows() {
                m.insert(id.value(i).to_string(), s.value(i));
            }
        }
    }
    m
}

#[test]
fn a_frozen_model_from_an_earlier_snapshot_scores_a_new_run_exactly() {
    let dir = tempfile::tempdir().unwrap();
    // Snapshot A trains the student and scores every document it keeps.
    let a = dir.path().join("a");
    quickstart(dir.path(), &a, "", "2");
    let trained = column_by_id(&a, "quality_score");
    assert!(trained.len() > 20);
    // Run B re-curates A's documents with A's model, frozen: no train step, same scores.
    let data = format!("\"{}/data/*.parquet\"", a.display());
    let score = |model: &str, extra: &str| {
        format!(
            "{extra}[[steps]]\ntype = \"score\"\ncolumn = \"frozen_score\"\nmodel = \"{model}\"\nkeep = {{ top_fraction = 0.5 }}\n"
        )
    };
    let b = dir.path().join("b");
    let cfg = write_config(
        dir.path(),
        "b.toml",
        &data,
        &score(&a.display().to_string(), ""),
        &b,
    );
    ok(&run(&cfg, "2", None));
    let frozen = column_by_id(&b, "frozen_score");
    assert_eq!(frozen.len(), trained.len().div_ceil(2), "the top half");
    for (id, s) in &frozen {
        assert_eq!(
            trained[id], *s,
            "{id}: the frozen model scores as it did in its own run"
        );
    }
    // The model travels with B: the same bytes, listed in B's manifest with its source.
    assert_eq!(
        std::fs::read(a.join("model/model.bin")).unwrap(),
        std::fs::read(b.join("model/model.bin")).unwrap()
    );
    let m = manifest_of(&b);
    let stats = &m["steps"][0]["stats"]["model"];
    assert_eq!(stats["source"], a.display().to_string());
    assert_eq!(stats["model_hash"], metrics(&a)["model_hash"]);
    common::assert_verifies(&b, "frozen model");
    // The model file itself works too.
    let c = dir.path().join("c");
    let cfg = write_config(
        dir.path(),
        "c.toml",
        &data,
        &score(&a.join("model/model.bin").display().to_string(), ""),
        &c,
    );
    ok(&run(&cfg, "1", None));
    assert_eq!(column_by_id(&c, "frozen_score"), frozen);

    // A model changed after its run is refused, before any data is touched.
    let tampered = dir.path().join("tampered");
    std::fs::create_dir_all(tampered.join("model")).unwrap();
    std::fs::copy(a.join("manifest.json"), tampered.join("manifest.json")).unwrap();
    let mut bin = std::fs::read(a.join("model/model.bin")).unwrap();
    let last = bin.len() - 1;
    bin[last] ^= 1;
    std::fs::write(tampered.join("model/model.bin"), bin).unwrap();
    let d = dir.path().join("d");
    let cfg = write_config(
        dir.path(),
        "d.toml",
        &data,
        &score(&tampered.display().to_string(), ""),
        &d,
    );
    let o = run(&cfg, "1", None);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("the model changed after that run"), "{err}");
    assert!(!d.join("data").exists(), "nothing written");

    // A frozen model beside a train step of the same run is a config problem.
    let train = "[[steps]]\ntype = \"train\"\n";
    let cfg = write_config(
        dir.path(),
        "e.toml",
        &data,
        &score(&a.display().to_string(), train),
        &dir.path().join("e"),
    );
    let o = run(&cfg, "1", None);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("would both be the snapshot's model/model.bin"),
        "{err}"
    );
}

/// Int32 column `column` of every row of a snapshot's data, by id.
fn int_column_by_id(out: &Path, column: &str) -> std::collections::BTreeMap<String, Option<i32>> {
    let mut m = std::collections::BTreeMap::new();
    for e in std::fs::read_dir(out.join("data")).unwrap() {
        let reader =
            ParquetRecordBatchReaderBuilder::try_new(File::open(e.unwrap().path()).unwrap())
                .unwrap()
                .build()
                .unwrap();
        for rb in reader {
            let rb = rb.unwrap();
            let id = rb.column_by_name("id").unwrap().as_string::<i32>().clone();
            let s = rb
                .column_by_name(column)
                .unwrap_or_else(|| panic!("no column {column}"))
                .as_primitive::<arrow::datatypes::Int32Type>()
                .clone();
            for i in 0..rb.num_rows() {
                m.insert(id.value(i).to_string(), (!s.is_null(i)).then(|| s.value(i)));
            }
        }
    }
    m
}

#[test]
fn buckets_partition_the_corpus_exactly_for_any_layout_and_combine_joins_scorers() {
    let dir = tempfile::tempdir().unwrap();
    let input = common::corpus_slice(dir.path(), 1200, 100).0; // 12 row groups
    let reference = curate_testkit::repo_root().join("configs/quickstart/reference.jsonl");
    let train = REFERENCE_STEPS
        .replace("REF", &reference.display().to_string())
        .replace(
            "keep = { top_fraction = 0.2 }",
            "buckets = 5\nkeep = { buckets = [2, 3, 4] }",
        );
    let steps = format!(
        r#"{train}
[[steps]]
type = "score"
column = "q2"
bucket_edges = [0.25, 0.5, 0.75]
bucket_column = "b2"
tokenizer = "none"

[[steps]]
type = "combine"
columns = ["quality_bucket", "b2"]
method = "max_bucket"
column = "mix_bucket"

[[steps]]
type = "combine"
columns = ["quality_score", "q2"]
method = "weighted"
weights = [3, 1]
column = "blend"
"#
    );
    let cfg = |name: &str, out: &Path, threads: usize, task_size: usize| {
        let p = dir.path().join(name);
        std::fs::write(
            &p,
            format!(
                "[input]\npaths = [\"{}\"]\n\n{steps}\n[output]\ndir = \"{}\"\n\n[run]\nseed = 7\nthreads = {threads}\ntask_size = {task_size}\n",
                input.display(),
                out.display()
            ),
        )
        .unwrap();
        p
    };
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    ok(&run(&cfg("a.toml", &a, 1, 1), "1", None));
    ok(&run(&cfg("b.toml", &b, 2, 5), "2", None));
    // The same bytes for any thread count and task size.
    let files = |out: &Path| {
        let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(out.join("data"))
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(files(&a), files(&b), "data differs between layouts");

    // Equal-count buckets over all 1200 scored documents: the best j of 5 hold ⌈j · 1200 / 5⌉,
    // so 240 each; the kept buckets 2–4 are exactly 720 documents.
    let m = manifest_of(&a);
    let score = m["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["type"] == "score")
        .unwrap();
    let docs: Vec<u64> = (0..5)
        .map(|b| {
            score["counters"][format!("bucket_docs_{b:02}")]
                .as_f64()
                .unwrap() as u64
        })
        .collect();
    assert_eq!(docs, [240; 5]);
    let tokens: Vec<u64> = (0..5)
        .map(|b| {
            score["counters"][format!("bucket_tokens_{b:02}")]
                .as_f64()
                .unwrap() as u64
        })
        .collect();
    assert!(
        tokens.iter().all(|t| *t > 0),
        "cl100k tokens per bucket: {tokens:?}"
    );
    assert_eq!(score["stats"]["buckets"]["count"], 5);
    let bucket = int_column_by_id(&a, "quality_bucket");
    let q = column_by_id(&a, "quality_score");
    assert_eq!(bucket.len(), 720);
    let mut per = [0usize; 5];
    for b in bucket.values() {
        per[b.unwrap() as usize] += 1;
    }
    assert_eq!(per, [0, 0, 240, 240, 240]);
    // A higher bucket never holds a lower score.
    let mut by: Vec<(i32, f32)> = bucket.iter().map(|(id, b)| (b.unwrap(), q[id])).collect();
    by.sort_by(|x, y| x.0.cmp(&y.0).then(x.1.total_cmp(&y.1)));
    for w in by.windows(2) {
        assert!(w[0].0 == w[1].0 || w[0].1 <= w[1].1, "{w:?}");
    }
    // Fixed edges, the max of the two bucket columns, and the weighted blend.
    let q2 = column_by_id(&a, "q2");
    let b2 = int_column_by_id(&a, "b2");
    let mix = int_column_by_id(&a, "mix_bucket");
    let blend = column_by_id(&a, "blend");
    for (id, s) in &q2 {
        let want = [0.25f64, 0.5, 0.75]
            .iter()
            .filter(|e| f64::from(*s) >= **e)
            .count() as i32;
        assert_eq!(b2[id], Some(want), "{id}: {s}");
        assert_eq!(mix[id], Some(want.max(bucket[id].unwrap())), "{id}");
        assert_eq!(q[id], *s, "two score steps of one model agree");
        let w = ((3.0 * f64::from(q[id]) + f64::from(*s)) / 4.0) as f32;
        assert_eq!(blend[id], w, "{id}");
    }
    // The report draws the buckets.
    let html = std::fs::read_to_string(a.join("report.html")).unwrap();
    assert!(
        html.contains("data-chart=\"quality-buckets\" data-empty=\"false\""),
        "chart drawn"
    );
    assert!(html.contains("tokens ("), "a token series");

    // `keep = { buckets = [...] }` re-selects from the stored bucket column.
    let recut = dir.path().join("recut");
    let data = format!("\"{}/data/*.parquet\"", a.display());
    let steps = "[[steps]]\ntype = \"quality_threshold\"\ncolumn = \"quality_bucket\"\nkeep = { buckets = [4] }\n";
    ok(&run(
        &write_config(dir.path(), "recut.toml", &data, steps, &recut),
        "2",
        None,
    ));
    assert_eq!(int_column_by_id(&recut, "quality_bucket").len(), 240);
}

#[test]
fn bucket_options_are_checked_before_any_data() {
    let dir = tempfile::tempdir().unwrap();
    let steps = "[[steps]]\ntype = \"train\"\n[[steps]]\ntype = \"score\"\nbuckets = 1\nbucket_edges = [2, 1]\nkeep = { buckets = [9] }\n[[steps]]\ntype = \"combine\"\ncolumns = [\"a\"]\nmethod = \"weighted\"\n";
    let cfg = write_config(
        dir.path(),
        "c.toml",
        "\"x.parquet\"",
        steps,
        &dir.path().join("o"),
    );
    let o = curate()
        .args(["validate", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    for want in [
        "bucket_edges",
        "buckets",
        "keep.buckets",
        "columns",
        "weights",
    ] {
        assert!(err.contains(want), "{want}: {err}");
    }
}
