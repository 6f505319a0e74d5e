//! The snapshot manifest: written last, it records everything needed to audit and rebuild the
//! snapshot, and `curate snapshot verify` checks a directory against it.
//!
//! The manifest holds no timestamps, host names or thread counts, so the same config and input
//! give the same manifest bytes; run-specific facts go to `run.json`, which is not hashed.

use std::collections::BTreeMap;
use std::path::Path;

use curate_core::Counters;
use curate_io::atomic::{hash_file, write_atomic};
use curate_io::write::OutputProps;
use serde::{Deserialize, Serialize};

use crate::error::PipelineError;
use crate::exec::Run;
use crate::layout::Layout;
use crate::record::{Skipped, StepCounts, TaskRecord};
use crate::state::InputEntry;

/// Manifest format version (2: `content_hash`, `stats.json` listed, every file checked).
pub const FORMAT: u32 = 2;

/// A file of the snapshot with its content hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Path relative to the snapshot root.
    pub path: String,
    /// Rows (data and exclusion files).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rows: Option<u64>,
    /// Size in bytes.
    pub bytes: u64,
    /// xxh3-128 of the content, hex.
    pub xxh3_128: String,
}

/// Counts of one step over the whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepSummary {
    /// Position.
    pub index: usize,
    /// Type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Documents in.
    pub docs_in: u64,
    /// Documents kept.
    pub docs_out: u64,
    /// Dropped, by reason.
    pub dropped: BTreeMap<String, u64>,
    /// The step's counters.
    pub counters: Counters,
    /// The step's published stats.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub stats: Option<serde_json::Value>,
}

/// Run-wide totals. Invariant: `input_rows = kept_rows + dropped_rows`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Documents read.
    pub input_rows: u64,
    /// Documents in `data/`.
    pub kept_rows: u64,
    /// Documents dropped by steps.
    pub dropped_rows: u64,
    /// Documents in skipped shards (never read).
    pub skipped_rows: u64,
}

/// The snapshot manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version.
    pub format: u32,
    /// curate's version.
    pub curate_version: String,
    /// How content hashes are computed.
    pub hash: String,
    /// Hash scheme of membership decisions (dedup, sampling).
    pub decision_hash_scheme: String,
    /// The resolved config (everything that can change the output).
    pub config: serde_json::Value,
    /// Its fingerprint.
    pub config_fingerprint: String,
    /// The run seed.
    pub seed: u64,
    /// Every input.
    pub inputs: Vec<InputEntry>,
    /// Input shards skipped under `on_error = "skip"`.
    pub skipped: Vec<Skipped>,
    /// Parquet writer settings.
    pub writer: OutputProps,
    /// Totals.
    pub totals: Totals,
    /// Per-step counts.
    pub steps: Vec<StepSummary>,
    /// Data files.
    pub outputs: Vec<FileEntry>,
    /// Exclusion files.
    pub excluded: Vec<FileEntry>,
    /// Files steps published (labels, model, indexes, metrics), the report, the dataset card
    /// and `stats.json`.
    pub artifacts: Vec<FileEntry>,
    /// xxh3-128 of this manifest serialized with this field empty: a manifest edited by hand
    /// no longer matches it ([`verify`] checks).
    #[serde(default)]
    pub content_hash: String,
}

impl Manifest {
    /// The hash [`content_hash`](Self::content_hash) must hold.
    pub fn compute_content_hash(&self) -> String {
        let mut m = self.clone();
        m.content_hash = String::new();
        let json = serde_json::to_vec_pretty(&m).expect("json");
        curate_core::hash::hex128(xxhash_rust::xxh3::xxh3_128(&json))
    }

    /// Checks the manifest's arithmetic: totals against steps and files, and each step's
    /// counts against its neighbours. Returns every inconsistency (empty = consistent).
    pub fn consistency(&self) -> Vec<String> {
        let mut p = Vec::new();
        let t = &self.totals;
        if t.input_rows != t.kept_rows + t.dropped_rows {
            p.push(format!(
                "totals: {} read != {} kept + {} dropped",
                t.input_rows, t.kept_rows, t.dropped_rows
            ));
        }
        let dropped: u64 = self.steps.iter().flat_map(|s| s.dropped.values()).sum();
        if dropped != t.dropped_rows {
            p.push(format!(
                "totals: {} dropped, but the steps dropped {dropped}",
                t.dropped_rows
            ));
        }
        let written: u64 = self.outputs.iter().filter_map(|f| f.rows).sum();
        if written != t.kept_rows {
            p.push(format!(
                "totals: {} kept, but the data files hold {written} rows",
                t.kept_rows
            ));
        }
        let exclusion = self
            .config
            .pointer("/output/exclusion")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        let excluded: u64 = self.excluded.iter().filter_map(|f| f.rows).sum();
        if exclusion && excluded != t.dropped_rows {
            p.push(format!(
                "totals: {} dropped, but the exclusion files hold {excluded} rows",
                t.dropped_rows
            ));
        }
        let skipped: u64 = self.skipped.iter().map(|s| s.rows).sum();
        if skipped != t.skipped_rows {
            p.push(format!(
                "totals: {} rows in skipped shards, but the skipped shards list {skipped}",
                t.skipped_rows
            ));
        }
        let mut expect_in = t.input_rows;
        for s in &self.steps {
            let d: u64 = s.dropped.values().sum();
            if s.docs_in != s.docs_out + d {
                p.push(format!(
                    "steps[{}] ({}): {} in != {} out + {d} dropped",
                    s.index, s.kind, s.docs_in, s.docs_out
                ));
            }
            if s.docs_in != expect_in {
                p.push(format!(
                    "steps[{}] ({}): {} in, but {expect_in} reached it",
                    s.index, s.kind, s.docs_in
                ));
            }
            expect_in = s.docs_out;
        }
        if expect_in != t.kept_rows {
            p.push(format!(
                "totals: {} kept, but the last step kept {expect_in}",
                t.kept_rows
            ));
        }
        let n = self
            .config
            .pointer("/steps")
            .and_then(|v| v.as_array())
            .map(Vec::len);
        if let Some(n) = n
            && n != self.steps.len()
        {
            p.push(format!(
                "the config has {n} step(s) but the manifest counts {}",
                self.steps.len()
            ));
        }
        p
    }
}

fn entry(root: &Path, rel: &str, rows: Option<u64>) -> Result<FileEntry, PipelineError> {
    let (bytes, h) =
        hash_file(&root.join(rel)).map_err(|e| PipelineError::io("hashing outputs", e))?;
    Ok(FileEntry {
        path: rel.to_string(),
        rows,
        bytes,
        xxh3_128: curate_core::hash::hex128(h),
    })
}

/// Sums every task's counts into per-step summaries.
pub fn step_summaries(run: &Run) -> Result<(Vec<StepSummary>, Vec<TaskRecord>), PipelineError> {
    let mut per: BTreeMap<usize, StepCounts> = BTreeMap::new();
    let mut all = Vec::new();
    for stage in &run.plan.stages {
        if matches!(stage.kind, crate::plan::StageKind::Finalize) {
            continue;
        }
        for r in run.stage_records(&stage.name)? {
            for (i, c) in &r.steps {
                per.entry(*i).or_default().merge(c);
            }
            all.push(r);
        }
    }
    let steps = run
        .plan
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let c = per.remove(&i).unwrap_or_default();
            StepSummary {
                index: i,
                kind: s.kind().to_string(),
                docs_in: c.docs_in,
                docs_out: c.docs_out,
                dropped: c.dropped,
                counters: c.counters,
                stats: None,
            }
        })
        .collect();
    Ok((steps, all))
}

/// The finalize task: publish step artefacts, hash every file, check the totals, write the
/// manifest (last), then remove intermediate parts.
pub fn finalize(run: &Run) -> Result<TaskRecord, PipelineError> {
    let root = &run.layout.root;
    let (mut steps, records) = step_summaries(run)?;
    let state = crate::state::State::load(&run.layout)?.ok_or_else(|| {
        PipelineError::Other("missing .curate/state.json; was the run started?".into())
    })?;

    let pass0: Vec<&TaskRecord> = records.iter().filter(|r| r.stage == "pass-0").collect();
    let last = format!("pass-{}", run.plan.passes.len() - 1);
    let input_rows: u64 = pass0.iter().map(|r| r.rows_in).sum();
    let kept_rows: u64 = records
        .iter()
        .filter(|r| r.stage == last)
        .map(|r| r.rows_out)
        .sum();
    let dropped_rows: u64 = steps.iter().flat_map(|s| s.dropped.values()).sum();
    let skipped: Vec<Skipped> = pass0.iter().filter_map(|r| r.skipped.clone()).collect();
    let skipped_rows = skipped.iter().map(|s| s.rows).sum();
    if input_rows != kept_rows + dropped_rows {
        return Err(PipelineError::Other(format!(
            "internal error: counts do not add up: {input_rows} read != {kept_rows} kept + {dropped_rows} dropped"
        )));
    }

    if let Some(r) = records.iter().find(|r| r.run_id != run.layout.run_id) {
        return Err(PipelineError::Refused(format!(
            "stage {} task {}: its completion record belongs to another run ({}); refusing to finalize a mixed snapshot",
            r.stage, r.task, r.run_id
        )));
    }
    remove_temp_files(root);
    let mut outputs = Vec::new();
    let mut excluded = Vec::new();
    let mut written_rows = 0;
    let mut recorded: std::collections::BTreeSet<String> = Default::default();
    for r in records.iter().filter(|r| r.stage == "assemble") {
        for f in &r.files {
            let e = entry(root, &f.path, Some(f.rows))?;
            if !f.xxh3_128.is_empty() && (e.xxh3_128 != f.xxh3_128 || e.bytes != f.bytes) {
                return Err(PipelineError::Refused(format!(
                    "{}: changed since task {} of stage assemble wrote it (another writer in this directory?); refusing to finalize a mixed snapshot\nhint: run again (with --fresh if another run replaced this one)",
                    f.path, r.task
                )));
            }
            recorded.insert(f.path.clone());
            if f.path.starts_with("data/") {
                written_rows += f.rows;
                outputs.push(e);
            } else {
                excluded.push(e);
            }
        }
    }
    outputs.sort_by(|a, b| a.path.cmp(&b.path));
    excluded.sort_by(|a, b| a.path.cmp(&b.path));
    for sub in ["data", "excluded"] {
        for e in std::fs::read_dir(root.join(sub))
            .into_iter()
            .flatten()
            .flatten()
        {
            let rel = format!("{sub}/{}", e.file_name().to_string_lossy());
            if !recorded.contains(&rel) {
                return Err(PipelineError::Refused(format!(
                    "{rel}: not written by this run (another writer in this directory?); refusing to finalize a mixed snapshot"
                )));
            }
        }
    }
    if written_rows != kept_rows {
        return Err(PipelineError::Other(format!(
            "internal error: data files hold {written_rows} rows but {kept_rows} were kept"
        )));
    }

    let mut artifacts = Vec::new();
    for (i, s) in run.plan.steps.iter().enumerate() {
        let published = s
            .publish(&run.plan.step_dirs[i])
            .map_err(|e| PipelineError::Step {
                step: format!("steps[{i}] ({})", s.kind()),
                context: "publishing to the snapshot".into(),
                source: e,
            })?;
        steps[i].stats = published.stats;
        for (rel, src) in published.files {
            curate_io::atomic::copy_atomic(&src, &root.join(&rel))
                .map_err(|e| PipelineError::io("publishing", e))?;
            artifacts.push(entry(root, &rel, None)?);
        }
    }
    artifacts.sort_by(|a, b| a.path.cmp(&b.path));

    let mut manifest = Manifest {
        format: FORMAT,
        curate_version: env!("CARGO_PKG_VERSION").to_string(),
        hash: "xxh3-128".into(),
        decision_hash_scheme: curate_core::hash::HASH_SCHEME.into(),
        config: run.config.content_json(),
        config_fingerprint: run.config.fingerprint(),
        seed: run.config.run.seed,
        inputs: state.inputs.clone(),
        skipped,
        writer: run.props.clone(),
        totals: Totals {
            input_rows,
            kept_rows,
            dropped_rows,
            skipped_rows,
        },
        steps,
        outputs,
        excluded,
        artifacts,
        content_hash: String::new(),
    };
    // The report and the dataset card describe the finished snapshot; they are written before
    // the manifest, so it lists and hashes them like any other artefact.
    let described = serde_json::to_value(&manifest).expect("json");
    let written = curate_report::write(root, &described).map_err(|e| match e {
        curate_report::ReportError::Io(e) => {
            PipelineError::io("writing report.html and README.md", e)
        }
        other => PipelineError::Other(format!("writing report.html and README.md: {other}")),
    })?;
    for rel in written {
        manifest.artifacts.push(entry(root, &rel, None)?);
    }
    write_atomic(&root.join(STATS), &stats_json(&manifest))
        .map_err(|e| PipelineError::io("writing stats", e))?;
    manifest.artifacts.push(entry(root, STATS, None)?);
    manifest.artifacts.sort_by(|a, b| a.path.cmp(&b.path));
    manifest.content_hash = manifest.compute_content_hash();
    let json = serde_json::to_vec_pretty(&manifest).expect("json");
    write_atomic(&run.layout.manifest(), &json)
        .map_err(|e| PipelineError::io("writing the manifest", e))?;
    if !run.config.run.keep_work {
        let _ = std::fs::remove_dir_all(run.layout.work_root());
    }
    Ok(TaskRecord {
        stage: "finalize".into(),
        task: 0,
        rows_out: kept_rows,
        ..Default::default()
    })
}

/// `stats.json`: the manifest's totals and per-step counts, for tools that want only those.
pub const STATS: &str = "stats.json";

/// The bytes of `stats.json` for a manifest.
pub fn stats_json(m: &Manifest) -> Vec<u8> {
    let stats = serde_json::json!({ "totals": m.totals, "steps": m.steps });
    serde_json::to_vec_pretty(&stats).expect("json")
}

/// Removes temp files of interrupted commits from the snapshot (outside `.curate/`).
fn remove_temp_files(root: &Path) {
    fn walk(dir: &Path) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let Ok(ft) = e.file_type() else { continue };
            let name = e.file_name().to_string_lossy().into_owned();
            if ft.is_dir() && name != ".curate" {
                walk(&e.path());
            } else if ft.is_file() && curate_io::atomic::is_temp_name(&name) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    walk(root);
}

/// Reads a snapshot's manifest.
pub fn load(dir: &Path) -> Result<Manifest, PipelineError> {
    let path = Layout::new(dir).manifest();
    let bytes = std::fs::read(&path).map_err(|e| {
        PipelineError::Other(format!(
            "{}: {e} (is this a finished curate snapshot?)",
            path.display()
        ))
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| PipelineError::Other(format!("{}: not a valid manifest: {e}", path.display())))
}

/// Checks a snapshot against its manifest; returns every problem (empty = verified):
///
/// - the manifest itself: its `content_hash` (a hand edit shows) and its arithmetic
///   ([`Manifest::consistency`]);
/// - every file it lists: present, same size, same xxh3-128, and for parquet files the same
///   row count;
/// - every other file under the snapshot is reported as not listed, except `manifest.json`
///   itself, `run.json` (timings, informational) and the run's state under `.curate/`.
pub fn verify(dir: &Path) -> Result<(Manifest, Vec<String>), PipelineError> {
    let m = load(dir)?;
    let mut problems = Vec::new();
    if m.format >= 2 {
        let h = m.compute_content_hash();
        if h != m.content_hash {
            problems.push(format!(
                "manifest.json: its content does not match its content_hash ({h} vs {}): it was edited",
                m.content_hash
            ));
        }
    } else {
        problems.push(format!(
            "manifest.json: format {} (an older curate) has no content hash; the manifest itself cannot be checked (re-run the pipeline to upgrade it)",
            m.format
        ));
    }
    for c in m.consistency() {
        problems.push(format!("manifest.json: {c}"));
    }
    let all = m.outputs.iter().chain(&m.excluded).chain(&m.artifacts);
    for f in all {
        let p = dir.join(&f.path);
        match hash_file(&p) {
            Err(e) => problems.push(format!("{}: missing or unreadable: {e}", f.path)),
            Ok((bytes, h)) => {
                if bytes != f.bytes {
                    problems.push(format!(
                        "{}: size {bytes} bytes, manifest says {}",
                        f.path, f.bytes
                    ));
                }
                let h = curate_core::hash::hex128(h);
                if h != f.xxh3_128 {
                    problems.push(format!(
                        "{}: content hash {h}, manifest says {}",
                        f.path, f.xxh3_128
                    ));
                }
                if let Some(rows) = f.rows {
                    match parquet_rows(&p) {
                        Ok(n) if n == rows => {}
                        Ok(n) => {
                            problems.push(format!("{}: {n} rows, manifest says {rows}", f.path))
                        }
                        Err(e) => problems.push(format!("{}: unreadable parquet: {e}", f.path)),
                    }
                }
            }
        }
    }
    let listed: std::collections::BTreeSet<&str> = m
        .outputs
        .iter()
        .chain(&m.excluded)
        .chain(&m.artifacts)
        .map(|f| f.path.as_str())
        .collect();
    let mut files = Vec::new();
    snapshot_files(dir, dir, &mut files);
    for rel in files {
        if !listed.contains(rel.as_str()) {
            problems.push(format!("{rel}: not listed in the manifest"));
        }
    }
    Ok((m, problems))
}

/// Files under a snapshot that the manifest must list: everything but `manifest.json`,
/// `run.json` and `.curate/` (symbolic links are listed too, never followed).
fn snapshot_files(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        let rel = p
            .strip_prefix(root)
            .unwrap_or(&p)
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        if dir == root && matches!(rel.as_str(), "manifest.json" | "run.json" | ".curate") {
            continue;
        }
        match e.file_type() {
            Ok(t) if t.is_dir() => snapshot_files(root, &p, out),
            _ => out.push(rel),
        }
    }
}

fn parquet_rows(p: &Path) -> Result<u64, String> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let f = std::fs::File::open(p).map_err(|e| e.to_string())?;
    let r = SerializedFileReader::new(f).map_err(|e| e.to_string())?;
    Ok(r.metadata().file_metadata().num_rows() as u64)
}

/// xxh3-128 of the manifest file, hex: one digest for the whole snapshot.
pub fn digest(dir: &Path) -> Result<String, PipelineError> {
    let (_, h) = hash_file(&Layout::new(dir).manifest())
        .map_err(|e| PipelineError::io("hashing the manifest", e))?;
    Ok(curate_core::hash::hex128(h))
}
