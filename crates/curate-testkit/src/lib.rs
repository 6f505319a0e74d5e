//! Test support shared by curate's crates: where the real corpus is, the bundled quick-start
//! slice, the reference-tool virtualenv, the fake Anthropic server ([`anthropic`]) and the
//! synthetic rubric teacher ([`rubric`]).

use std::path::{Path, PathBuf};

/// The repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// The bundled quick-start slice (a few MB of ../shared/corpus, committed in the repo).
pub fn quickstart_sample() -> PathBuf {
    repo_root().join("configs/quickstart/sample.parquet")
}

/// The real corpus shards (`../shared/corpus/*.parquet`, or `$CURATE_CORPUS`), or `None` on a
/// fresh clone without them.
pub fn corpus_shards() -> Option<Vec<PathBuf>> {
    let dir = std::env::var_os("CURATE_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared/corpus"));
    let mut shards: Vec<PathBuf> = std::fs::read_dir(&dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
        .collect();
    shards.sort();
    (!shards.is_empty()).then_some(shards)
}

/// The first real corpus shard, or the bundled quick-start slice when the corpus is absent
/// (printing that it fell back, so a reader of the test log knows which data ran).
pub fn corpus_shard_or_sample() -> PathBuf {
    match corpus_shards() {
        Some(s) => s[0].clone(),
        None => {
            eprintln!("note: ../shared/corpus not found; using the bundled quick-start slice");
            quickstart_sample()
        }
    }
}

/// The Python interpreter of the reference-tool virtualenv (`$CURATE_PYTHON`, else
/// `/opt/curate-venv/bin/python`), installed by `.ci/setup.d/*.sh`.
///
/// Returns `None` when absent and not under CI (the caller prints why it skips); under CI
/// (`CI=true`) a missing venv is a failure, so reference tests can never pass vacuously there.
pub fn reference_python() -> Option<PathBuf> {
    let p = std::env::var_os("CURATE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/curate-venv/bin/python"));
    if p.exists() {
        return Some(p);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "reference virtualenv missing at {} under CI: .ci/run must install it",
            p.display()
        );
    }
    eprintln!(
        "skipped: reference virtualenv not found at {} (run .ci/setup.d scripts)",
        p.display()
    );
    None
}

/// CPU time this thread has used, in seconds (`/proc/thread-self/schedstat`): what benchmarks
/// report per core on a machine other jobs share, where wall time includes waiting for a core.
pub fn thread_cpu_seconds() -> Option<f64> {
    let ns: u64 = std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(ns as f64 / 1e9)
}

pub mod anthropic;
pub mod rubric;
