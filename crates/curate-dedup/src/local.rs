//! Drives a barrier step in-process, the way the executor does: observers per task, then every
//! stage's tasks (in parallel, in any order), then a processor per task. Used by this crate's
//! tests, benches and the `minhash_run` example; the real executor (resume, manifests, slurm)
//! lives in `curate-pipeline`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use arrow::array::{Array, AsArray};
use arrow::datatypes::UInt64Type;
use curate_core::step::Published;
use curate_core::{Counters, DocBatch, StageContext, Step, StepError, TaskContext};
use rayon::prelude::*;

/// What a local run of a barrier step decided.
#[derive(Debug, Default)]
pub struct LocalRun {
    /// Dropped documents: key → reason name.
    pub removed: BTreeMap<u64, String>,
    /// Values of the cluster-id column, if the step adds one (non-null only).
    pub cluster_ids: BTreeMap<u64, u64>,
    /// `duplicate_of` of every dropped document (None: null).
    pub duplicate_of: BTreeMap<u64, Option<String>>,
    /// `duplicate_of_snapshot` of dropped documents, where set.
    pub duplicate_of_snapshot: BTreeMap<u64, String>,
    /// All counters (observers, stages, processors).
    pub counters: Counters,
    /// What the step publishes.
    pub published: Published,
}

/// Runs `step` (which must have a barrier) over `tasks` (each a list of batches in key order)
/// with `dir` as its work directory. Stage tasks run in parallel, highest index first (any order
/// must do). `cluster_col` names a column whose values to collect.
pub fn run_barrier(
    step: &dyn Step,
    tasks: &[Vec<DocBatch>],
    dir: &Path,
    seed: u64,
    cluster_col: Option<&str>,
) -> Result<LocalRun, StepError> {
    let barrier = step
        .barrier()
        .ok_or_else(|| StepError::Other(format!("{} has no barrier", step.kind())))?;
    let n = tasks.len();
    let step_dirs = vec![dir.to_path_buf()];
    let counters = Mutex::new(Counters::default());
    // Pass N: observers, one per task, in parallel.
    tasks
        .par_iter()
        .enumerate()
        .try_for_each(|(t, batches)| -> Result<(), StepError> {
            let cx = TaskContext {
                task: t,
                tasks: n,
                dir,
                step_dirs: &step_dirs,
                seed,
            };
            let mut obs = barrier.observer(&cx)?;
            let mut c = Counters::default();
            for b in batches {
                obs.observe(b, &mut c)?;
            }
            obs.finish(&mut c)?;
            counters.lock().expect("counters").merge(&c);
            Ok(())
        })?;
    // Global stages: tasks of a stage in parallel, stages in order.
    for (s, spec) in barrier.stages(n).iter().enumerate() {
        (0..spec.tasks).into_par_iter().rev().try_for_each(|task| {
            let cx = StageContext {
                stage: s,
                task,
                dir,
                step_dirs: &step_dirs,
                observed_tasks: n,
                seed,
                counters: &counters,
            };
            barrier.run_stage_task(&cx)
        })?;
    }
    // Pass N+1: processors.
    let reasons = step.reasons();
    type TaskOut = (
        BTreeMap<u64, String>,
        BTreeMap<u64, u64>,
        BTreeMap<u64, Option<String>>,
        BTreeMap<u64, String>,
        Counters,
    );
    let per_task: Vec<TaskOut> = tasks
        .par_iter()
        .enumerate()
        .map(|(t, batches)| -> Result<_, StepError> {
            let cx = TaskContext {
                task: t,
                tasks: n,
                dir,
                step_dirs: &step_dirs,
                seed,
            };
            let mut p = step.processor(&cx)?;
            let mut c = Counters::default();
            let (mut removed, mut ids) = (BTreeMap::new(), BTreeMap::new());
            let (mut dup_of, mut dup_snap) = (BTreeMap::new(), BTreeMap::new());
            for b in batches {
                let mut b = b.clone();
                p.process(&mut b, &mut c)?;
                let names = b
                    .column(crate::provenance::DUPLICATE_OF)
                    .map(|c| c.as_string::<i32>().clone());
                let snaps = b
                    .column(crate::provenance::DUPLICATE_OF_SNAPSHOT)
                    .map(|c| c.as_string::<i32>().clone());
                for (i, v) in b.verdicts().iter().enumerate() {
                    if *v != 0 {
                        let key = b.keys().value(i);
                        removed.insert(key, reasons[*v as usize - 1].clone());
                        let name = names
                            .as_ref()
                            .filter(|c| c.is_valid(i))
                            .map(|c| c.value(i).to_string());
                        dup_of.insert(key, name);
                        if let Some(s) = snaps.as_ref().filter(|c| c.is_valid(i)) {
                            dup_snap.insert(key, s.value(i).to_string());
                        }
                    }
                }
                if let Some(col) = cluster_col.and_then(|name| b.column(name)) {
                    let col = col.as_primitive::<UInt64Type>();
                    for i in 0..col.len() {
                        if col.is_valid(i) {
                            ids.insert(b.keys().value(i), col.value(i));
                        }
                    }
                }
            }
            p.finish(&mut c)?;
            Ok((removed, ids, dup_of, dup_snap, c))
        })
        .collect::<Result<_, _>>()?;
    let mut out = LocalRun::default();
    for (r, i, d, s, c) in per_task {
        out.removed.extend(r);
        out.cluster_ids.extend(i);
        out.duplicate_of.extend(d);
        out.duplicate_of_snapshot.extend(s);
        out.counters.merge(&c);
    }
    out.counters
        .merge(&counters.into_inner().expect("counters"));
    out.published = step.publish(dir)?;
    Ok(out)
}
