//! The finalize task: publish step artefacts, hash every file, check the totals, write the
//! report, `stats.json` and the manifest (last), then remove intermediate parts.

use std::collections::BTreeMap;
use std::path::Path;

use curate_io::atomic::write_atomic;
use curate_snapshot::layout;

use crate::error::PipelineError;
use crate::exec::Run;
use crate::manifest::{FORMAT, FileEntry, HASH, Manifest, StepSummary, Totals, stats_json};
use crate::record::{Skipped, StepCounts, TaskRecord};

/// The entry of a file of the snapshot (hashed now).
fn entry(root: &Path, rel: &str, rows: Option<u64>) -> Result<FileEntry, PipelineError> {
    curate_snapshot::manifest::entry(root, rel, rows)
        .map_err(|e| PipelineError::io("hashing outputs", e))
}

/// Sums every task's counts into per-step summaries (the data counters only: the run counters,
/// [`curate_core::Counters::add_run`], are left out; [`run_counters`] has them).
pub fn step_summaries(run: &Run) -> Result<(Vec<StepSummary>, Vec<TaskRecord>), PipelineError> {
    let (mut per, all) = summed_counts(run)?;
    let steps = run
        .plan
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut c = per.remove(&i).unwrap_or_default();
            c.counters.take_run();
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

/// Per step (by index), the run counters its tasks added ([`curate_core::Counters::add_run`]:
/// spills, passes, rounds), summed; steps without any are left out. For `run.json`.
pub fn run_counters(run: &Run) -> Result<BTreeMap<usize, curate_core::Counters>, PipelineError> {
    Ok(summed_counts(run)?
        .0
        .into_iter()
        .map(|(i, mut c)| (i, c.counters.take_run()))
        .filter(|(_, c)| !c.0.is_empty())
        .collect())
}

/// Every step's counts summed over the records of every stage but finalize (by step index),
/// and those records.
fn summed_counts(
    run: &Run,
) -> Result<(BTreeMap<usize, StepCounts>, Vec<TaskRecord>), PipelineError> {
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
    Ok((per, all))
}

/// The finalize task: publish step artefacts, hash every file, check the totals, write the
/// manifest (last), then remove intermediate parts.
pub fn finalize(run: &Run) -> Result<TaskRecord, PipelineError> {
    let root = &run.layout.root;
    let (mut steps, records) = step_summaries(run)?;
    let state = crate::state::State::load(&run.layout)?.ok_or_else(|| {
        PipelineError::Other("missing .curate/state.json; was the run started?".into())
    })?;

    // The manifest vouches for the hashes of the inputs and of the files steps read, taken
    // when the run started: one rewritten since (its size or modification time moved) may have
    // been read in either version.
    let moved = |path: &str, bytes: u64, mtime: u128| {
        crate::state::State::stamp(Path::new(path)).is_ok_and(|now| now != (mtime, bytes))
    };
    let resources = state.resources.clone().unwrap_or_default();
    let changed: Vec<String> = state
        .inputs
        .iter()
        .zip(&state.mtimes)
        .filter(|(e, m)| moved(&e.path, e.bytes, **m))
        .map(|(e, _)| e.path.clone())
        .chain(
            resources
                .iter()
                .zip(&state.resource_mtimes)
                .filter(|(r, m)| moved(&r.path, r.bytes, **m))
                .map(|(r, _)| format!("{} (read by steps[{}] ({}))", r.path, r.step, r.kind)),
        )
        .collect();
    if !changed.is_empty() {
        return Err(PipelineError::Refused(format!(
            "file(s) changed while the run read them (size or modification time moved since it started): {}; the snapshot would not match the hashes its manifest records. Run the same command again: a changed file makes it a different run (--fresh starts over)",
            changed.join(", ")
        )));
    }

    let pass0: Vec<&TaskRecord> = records.iter().filter(|r| r.stage == "pass-0").collect();
    let last = format!("pass-{}", run.plan.passes.len() - 1);
    let input_rows: u64 = pass0.iter().map(|r| r.rows_in).sum();
    let kept_rows: u64 = records
        .iter()
        .filter(|r| r.stage == last)
        .map(|r| r.rows_out)
        .sum();
    let dropped_rows: u64 = steps.iter().flat_map(|s| s.dropped.values()).sum();
    let skipped: Vec<Skipped> = run
        .plan
        .unreadable
        .iter()
        .cloned()
        .chain(
            pass0
                .iter()
                .flat_map(|r| r.skipped.iter().chain(&r.skipped_units).cloned()),
        )
        .collect();
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
"{}: changed since task {} of stage assemble wrote it (another writer in this directory?); refusing to finalize a mixed snapshot", f.path, r.task)).with_hint("run again (with --fresh if another run replaced this one)"));
            }
            recorded.insert(f.path.clone());
            if layout::is_data(&f.path) {
                written_rows += f.rows;
                outputs.push(e);
            } else {
                excluded.push(e);
            }
        }
    }
    outputs.sort_by(|a, b| a.path.cmp(&b.path));
    excluded.sort_by(|a, b| a.path.cmp(&b.path));
    for sub in [layout::DATA_DIR, layout::EXCLUDED_DIR] {
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
            // Steps that run in rounds (`label`, `train`) publish to the same path: the last
            // round's file is the snapshot's, and the manifest lists it once.
            artifacts.retain(|a: &FileEntry| a.path != rel);
            artifacts.push(entry(root, &rel, None)?);
        }
    }
    artifacts.sort_by(|a, b| a.path.cmp(&b.path));

    let mut manifest = Manifest {
        format: FORMAT,
        curate_version: env!("CARGO_PKG_VERSION").to_string(),
        hash: HASH.into(),
        decision_hash_scheme: curate_core::hash::HASH_SCHEME.into(),
        config: run.config.content_json(),
        config_fingerprint: run.config.fingerprint(),
        seed: run.config.run.seed,
        inputs: state.inputs.clone(),
        resources,
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
    let written = curate_report::write_counted(root, &manifest, report_counts(run, &records))
        .map_err(|e| match e {
            curate_report::ReportError::Io(e) => {
                PipelineError::io("writing report.html and README.md", e)
            }
            other => PipelineError::Other(format!("writing report.html and README.md: {other}")),
        })?;
    for rel in written {
        manifest.artifacts.push(entry(root, &rel, None)?);
    }
    write_atomic(&run.layout.stats(), &stats_json(&manifest))
        .map_err(|e| PipelineError::io("writing stats", e))?;
    manifest.artifacts.push(entry(root, layout::STATS, None)?);
    manifest.artifacts.sort_by(|a, b| a.path.cmp(&b.path));
    manifest.content_hash = manifest.compute_content_hash();
    write_atomic(&run.layout.manifest(), &manifest.to_bytes())
        .map_err(|e| PipelineError::io("writing the manifest", e))?;
    // the work directory goes after this task's record (`Run::run_task`): killed before the
    // record, the run finalizes again from it
    Ok(TaskRecord {
        stage: "finalize".into(),
        task: 0,
        rows_out: kept_rows,
        ..Default::default()
    })
}

/// The report's counters of every pass task, merged in pass then task order (the order of the
/// data and exclusion files); `None` if a record has none (written by an older version).
fn report_counts(run: &Run, records: &[TaskRecord]) -> Option<curate_report::profile::Counts> {
    let passes: std::collections::BTreeSet<&str> = run
        .plan
        .stages
        .iter()
        .filter(|s| matches!(s.kind, crate::plan::StageKind::Pass { .. }))
        .map(|s| s.name.as_str())
        .collect();
    let mut all = curate_report::profile::Counts::default();
    for r in records.iter().filter(|r| passes.contains(r.stage.as_str())) {
        all.merge(r.profile.as_ref()?);
    }
    Some(all)
}

/// Removes temp files of interrupted commits from the snapshot (outside `.curate/`).
fn remove_temp_files(root: &Path) {
    fn walk(dir: &Path) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let Ok(ft) = e.file_type() else { continue };
            let name = e.file_name().to_string_lossy().into_owned();
            if ft.is_dir() && name != layout::META_DIR {
                walk(&e.path());
            } else if ft.is_file() && curate_io::atomic::is_temp_name(&name) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    walk(root);
}
