//! Shared helpers for the end-to-end tests: run the real `curate` binary, write configs and
//! small fixtures, read snapshots back.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};

/// The `curate` binary under test.
pub fn curate() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_curate"));
    c.env("NO_COLOR", "1").env_remove("CURATE_LOG");
    c
}

/// Runs curate with `args`, returning its output (never panics on failure).
pub fn run(args: &[&str]) -> Output {
    curate().args(args).output().expect("spawn curate")
}

/// Runs curate and asserts success, returning stderr.
pub fn run_ok(args: &[&str]) -> String {
    let o = run(args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        o.status.success(),
        "curate {args:?} failed:\n{err}\n{}",
        String::from_utf8_lossy(&o.stdout)
    );
    err
}

/// Stderr of a run that must fail.
pub fn run_err(args: &[&str]) -> String {
    let o = run(args);
    assert!(
        !o.status.success(),
        "curate {args:?} unexpectedly succeeded"
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `curate run -q --config CFG --output OUT`, which must succeed; returns its stdout.
pub fn run_config_ok(cfg: &Path, out: &Path) -> String {
    run_ok(&run_args(cfg, out))
}

/// `curate run -q --config CFG --output OUT --threads N`, which must succeed; returns its
/// stdout.
pub fn run_config_threads_ok(cfg: &Path, out: &Path, threads: &str) -> String {
    let [a, b, c, d, e, f] = run_args(cfg, out);
    run_ok(&[a, b, c, d, e, f, "--threads", threads])
}

/// The arguments of `curate run -q --fresh --config CFG --output OUT`.
pub fn fresh_args<'a>(cfg: &'a Path, out: &'a Path) -> [&'a str; 7] {
    let [a, b, c, d, e, f] = run_args(cfg, out);
    [a, b, "--fresh", c, d, e, f]
}

/// The arguments of `curate run -q --config CFG --output OUT`.
fn run_args<'a>(cfg: &'a Path, out: &'a Path) -> [&'a str; 6] {
    [
        "run",
        "-q",
        "--config",
        cfg.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]
}

/// `curate run -q --config CFG --output OUT`, which must fail; returns its stderr.
pub fn run_config_err(cfg: &Path, out: &Path) -> String {
    run_err(&run_args(cfg, out))
}

/// Writes a config file into `dir` and returns its path.
pub fn write_config(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

/// A quoted TOML string for a path.
pub fn q(p: &Path) -> String {
    format!("{:?}", p.to_string_lossy())
}

/// Writes a parquet file with a `text` and `id` column and the given row-group size.
pub fn write_texts(path: &Path, texts: &[&str], row_group: usize) {
    let ids: Vec<String> = (0..texts.len()).map(|i| format!("doc-{i}")).collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("text", DataType::Utf8, false),
        Field::new("id", DataType::Utf8, false),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(texts.to_vec())),
        Arc::new(StringArray::from(ids)),
    ];
    write_batch(path, RecordBatch::try_new(schema, cols).unwrap(), row_group);
}

/// Writes a record batch as parquet with the given row-group size.
pub fn write_batch(path: &Path, batch: RecordBatch, row_group: usize) {
    let f = std::fs::File::create(path).unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(row_group))
        .build();
    let mut w = parquet::arrow::ArrowWriter::try_new(f, batch.schema(), Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

/// Reads every row of the parquet files in `dir` (sorted by name).
pub fn read_dir_batches(dir: &Path) -> Vec<RecordBatch> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    read_files(&files)
}

/// Reads every row of the given parquet files, in order.
pub fn read_files(files: &[PathBuf]) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    for f in files {
        let r = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            std::fs::File::open(f).unwrap(),
        )
        .unwrap()
        .build()
        .unwrap();
        out.extend(r.map(|b| b.unwrap()));
    }
    out
}

/// Total rows of batches.
pub fn rows(b: &[RecordBatch]) -> usize {
    b.iter().map(|b| b.num_rows()).sum()
}

/// The manifest of a snapshot as JSON.
/// The run's completion-record directory (`.curate/done/<run id>`).
pub fn done_dir(out: &Path) -> PathBuf {
    let d = out.join(".curate/done");
    std::fs::read_dir(&d)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir() && p.join("pass-0").exists())
        .unwrap_or(d)
}

pub fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

/// Every file under `dir/data` and `dir/excluded` with its bytes, plus the manifest bytes.
pub fn snapshot_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for sub in ["data", "excluded"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join(sub))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        for f in files {
            out.push((
                format!("{sub}/{}", f.file_name().unwrap().to_string_lossy()),
                std::fs::read(&f).unwrap(),
            ));
        }
    }
    out.push((
        "manifest.json".into(),
        std::fs::read(dir.join("manifest.json")).unwrap(),
    ));
    out
}

/// The first `docs` documents of the corpus (or the bundled slice) with their `text`, `id`,
/// `url` and `language`, written to `dir/input.parquet` in row groups of `row_group`; returns
/// the path and the ids in order.
pub fn corpus_slice(dir: &Path, docs: usize, row_group: usize) -> (PathBuf, Vec<String>) {
    let src = curate_testkit::corpus_shard_or_sample();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(&src).unwrap(),
    )
    .unwrap()
    .with_batch_size(docs)
    .build()
    .unwrap();
    let names = ["text", "id", "url", "language"];
    let mut cols: Vec<Vec<String>> = vec![Vec::new(); names.len()];
    for rb in reader {
        let rb = rb.unwrap();
        let take = (docs - cols[0].len()).min(rb.num_rows());
        for (c, name) in names.iter().enumerate() {
            let a = rb.column_by_name(name).unwrap().as_string::<i32>();
            cols[c].extend((0..take).map(|i| a.value(i).to_owned()));
        }
        if cols[0].len() == docs {
            break;
        }
    }
    let schema = Arc::new(Schema::new(
        names
            .iter()
            .map(|n| Field::new(*n, DataType::Utf8, false))
            .collect::<Vec<_>>(),
    ));
    let arrays: Vec<ArrayRef> = cols
        .iter()
        .map(|c| Arc::new(StringArray::from_iter_values(c)) as ArrayRef)
        .collect();
    let path = dir.join("input.parquet");
    write_batch(
        &path,
        RecordBatch::try_new(schema, arrays).unwrap(),
        row_group,
    );
    let ids = cols.swap_remove(1);
    (path, ids)
}

/// Asserts two snapshots have the same data and exclusion files and manifest, byte for byte;
/// a differing manifest is reported field by field.
pub fn assert_same_snapshot(got: &Path, want: &Path, what: &str) {
    assert_verifies(got, what);
    let (a, b) = (snapshot_bytes(got), snapshot_bytes(want));
    let names = |v: &[(String, Vec<u8>)]| v.iter().map(|x| x.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&a), names(&b), "{what}: files");
    for (x, y) in a.iter().zip(&b) {
        if x.1 != y.1 && x.0 == "manifest.json" {
            let (m, n): (serde_json::Value, serde_json::Value) = (
                serde_json::from_slice(&x.1).unwrap(),
                serde_json::from_slice(&y.1).unwrap(),
            );
            let mut diffs = Vec::new();
            json_diff("", &m, &n, &mut diffs);
            panic!("{what}: manifest.json differs:\n{}", diffs.join("\n"));
        }
        assert!(x.1 == y.1, "{what}: {} differs", x.0);
    }
}

/// Asserts two snapshots of the same documents read from differently shaped inputs have the
/// same data and exclusion files, byte for byte (their manifests differ: other input files);
/// returns the files' names, which include at least one data file.
pub fn assert_same_data(got: &Path, want: &Path, what: &str) -> Vec<String> {
    let files = |out: &Path| {
        let mut v = snapshot_bytes(out);
        v.retain(|(name, _)| name != "manifest.json");
        v
    };
    let (want, got) = (files(want), files(got));
    let names: Vec<String> = want.iter().map(|x| x.0.clone()).collect();
    assert!(
        names.iter().any(|n| n.starts_with("data/")),
        "{what}: {names:?}"
    );
    assert_eq!(
        names,
        got.iter().map(|x| x.0.clone()).collect::<Vec<_>>(),
        "{what}: files"
    );
    for (w, g) in want.iter().zip(&got) {
        assert!(w.1 == g.1, "{what}: {} differs", w.0);
    }
    names
}

/// `curate snapshot verify` passes on the snapshot (a local path or an `s3://` URL).
pub fn assert_verifies(dir: &Path, what: &str) {
    let o = curate()
        .args(["snapshot", "verify"])
        .arg(dir)
        .output()
        .expect("spawn curate");
    assert!(
        o.status.success(),
        "{what}: `curate snapshot verify {}` failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Leaf paths where two JSON values differ (for a readable failure).
fn json_diff(at: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                let (u, v) = (
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                );
                json_diff(&format!("{at}.{k}"), u, v, out);
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (u, v)) in x.iter().zip(y).enumerate() {
                json_diff(&format!("{at}[{i}]"), u, v, out);
            }
        }
        _ if a != b => out.push(format!("  {at}: {a} vs {b}")),
        _ => {}
    }
}

/// Every input document is in `data/` or `excluded/` of the snapshot, exactly once.
pub fn assert_every_document_once(out: &Path, input_ids: &[String]) {
    let mut seen = std::collections::BTreeSet::new();
    for sub in ["data", "excluded"] {
        for rb in read_dir_batches(&out.join(sub)) {
            let ids = rb.column_by_name("id").unwrap().as_string::<i32>();
            for i in 0..ids.len() {
                assert!(
                    seen.insert(ids.value(i).to_owned()),
                    "{} written twice",
                    ids.value(i)
                );
            }
        }
    }
    let lost: Vec<_> = input_ids.iter().filter(|id| !seen.contains(*id)).collect();
    assert!(lost.is_empty(), "documents lost: {lost:?}");
    assert_eq!(seen.len(), input_ids.len());
}

/// Completion records committed so far by the stages whose name starts with `stage_prefix`
/// (`.curate/done/<run id>/<stage>/<task>.json`; a temp file is not a finished task).
pub fn committed(out: &Path, stage_prefix: &str) -> usize {
    let Ok(runs) = std::fs::read_dir(out.join(".curate/done")) else {
        return 0;
    };
    runs.flatten()
        .filter_map(|r| std::fs::read_dir(r.path()).ok())
        .flat_map(|stages| stages.flatten())
        .filter(|s| s.file_name().to_string_lossy().starts_with(stage_prefix))
        .filter_map(|s| std::fs::read_dir(s.path()).ok())
        .flat_map(|d| d.flatten())
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.ends_with(".json") && !n.starts_with('.')
        })
        .count()
}

/// A fake Claude that answers every request after `delay` and caches no prompt, so a labeling
/// stage lasts long enough to be killed inside it and every run is billed (and recorded) the
/// same (the crash and Slurm kill trials).
pub fn slow_fake_claude(
    key: &str,
    delay: std::time::Duration,
) -> curate_testkit::anthropic::FakeAnthropic {
    use curate_testkit::anthropic::{FakeAnthropic, FakeConfig, Fault, Faults};
    let mut fc = FakeConfig::new(key);
    fc.faults = Faults {
        rate: 1.0,
        kinds: vec![Fault::Slow],
        slow: delay,
        ..Faults::default()
    };
    fc.cache_min_tokens = u64::MAX / 4;
    FakeAnthropic::start(fc)
}

/// Writes a small byte-level BPE `tokenizer.json` (GPT-2's byte alphabet, a few English merges,
/// `<|endoftext|>` as a special token) to `path`: a real Hugging Face tokenizer file that
/// `tokenize` loads like any other, without training one.
pub fn byte_level_tokenizer_json(path: &Path) {
    let chars = curate_tokens::bytebpe::bytes_to_chars();
    let mut vocab = serde_json::Map::new();
    for (i, c) in chars.iter().enumerate() {
        vocab.insert(c.to_string(), serde_json::Value::from(i as u64));
    }
    let mut merges = Vec::new();
    for (a, b) in [
        ("Ġ", "t"),
        ("h", "e"),
        ("Ġt", "he"),
        ("i", "n"),
        ("e", "r"),
        ("a", "n"),
        ("o", "n"),
        ("Ġ", "a"),
        ("in", "g"),
        ("r", "e"),
        ("Ġ", "s"),
        ("e", "s"),
        ("a", "t"),
        ("Ġ", "o"),
        ("o", "r"),
    ] {
        let id = vocab.len() as u64;
        vocab.insert(format!("{a}{b}"), serde_json::Value::from(id));
        merges.push(format!("{a} {b}"));
    }
    let eos = vocab.len() as u64;
    vocab.insert("<|endoftext|>".into(), serde_json::Value::from(eos));
    let j = serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [{"id": eos, "content": "<|endoftext|>", "single_word": false,
            "lstrip": false, "rstrip": false, "normalized": false, "special": true}],
        "normalizer": null,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true,
            "use_regex": true},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true,
            "use_regex": true},
        "decoder": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true,
            "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null,
            "continuing_subword_prefix": null, "end_of_word_suffix": null, "fuse_unk": false,
            "byte_fallback": false, "ignore_merges": false, "vocab": vocab, "merges": merges}
    });
    std::fs::write(path, serde_json::to_vec_pretty(&j).unwrap()).unwrap();
}

/// The `text` column of a parquet file, in order.
pub fn texts_of(file: &Path) -> Vec<String> {
    read_files(&[file.to_path_buf()])
        .iter()
        .flat_map(|b| {
            let t = b.column_by_name("text").unwrap().as_string::<i32>();
            (0..b.num_rows())
                .map(|i| t.value(i).to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A benchmark item planted from a document: 20 of its words, one per line, upper-cased (only
/// decontamination's normalized n-grams still match it).
pub fn benchmark_item(doc: &str) -> String {
    let w: Vec<&str> = doc.split_whitespace().skip(5).take(20).collect();
    w.join("\n").to_uppercase()
}
