//! Shared helpers for the end-to-end tests: run the real `curate` binary, write configs and
//! small fixtures, read snapshots back.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
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
            std::fs::File::open(&f).unwrap(),
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
