//! Running tasks: the same code serves the local executor (all tasks of a stage on a rayon
//! pool) and cluster executors (`curate task --stage S --index I`, one task per array element).
//!
//! Every task writes its outputs atomically, then its completion record; a task with a record is
//! skipped, a task without one is re-run from scratch. Outputs are a function of the config and
//! the input only: documents flow in [`DocKey`](curate_core::DocKey) order, and data files are
//! cut by global row position, never by task.

mod finalize;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, UInt64Type};
use curate_core::batch::doc_key;
use curate_core::{Counters, DocBatch, StageContext, TaskContext};
use curate_io::part::{PartWriter, read_part};
use curate_io::read::{ReadError, ReadMode, ReadSpec, SkipLocation, read_share_with};
use curate_io::write::{OutputProps, ParquetSink};

use crate::config::{Config, OnError};
use crate::error::PipelineError;
use crate::layout::{self, Layout};
use crate::plan::{Plan, Stage, StageKind};
use crate::progress::Progress;
use crate::record::{FileRecord, Skipped, StepCounts, TaskRecord};
use curate_snapshot::Storage;

pub use crate::schema::KEY_COLUMN;

/// A planned run, ready to execute tasks.
pub struct Run {
    /// The validated config.
    pub config: Config,
    /// The plan.
    pub plan: Plan,
    /// The snapshot layout.
    pub layout: Layout,
    /// Parquet output settings.
    pub props: OutputProps,
    /// How inputs are read.
    pub read_spec: ReadSpec,
    /// Reasons of each step, by step index.
    pub reasons: Vec<Vec<String>>,
    /// Progress display.
    pub progress: Progress,
    /// Where the snapshot's files live (the output directory, or an `s3://` prefix through a
    /// local mirror): [`layout`](Self::layout) is rooted at its [`Storage::root`].
    pub storage: Box<dyn Storage>,
    /// The lock this run holds on its directory (released when the run is dropped).
    pub lock: crate::HeldLock,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run")
            .field("root", &self.layout.root)
            .field("plan", &self.plan)
            .finish()
    }
}

enum Source<'a> {
    Input(&'a crate::plan::Share),
    Part(PathBuf),
    Empty,
}

impl Run {
    /// Per step, the run counters its tasks added (`run.json`; [`finalize::run_counters`]).
    pub(crate) fn run_counters(&self) -> Result<BTreeMap<usize, Counters>, PipelineError> {
        finalize::run_counters(self)
    }

    fn step_label(&self, i: usize) -> String {
        format!("steps[{i}] ({})", self.plan.steps[i].kind())
    }

    /// Runs one task of `stage` unless its completion record exists; returns the record.
    ///
    /// The whole life of a task, for every executor and every storage:
    /// 1. fetch its completion record (if there is one, the task is done) and what it reads
    ///    from earlier stages;
    /// 2. run it: every output is written atomically under the storage's local root;
    /// 3. publish the outputs, then commit the record (create-only), unless another writer
    ///    replaced the run meanwhile;
    /// 4. drop the work files no later task reads.
    pub fn run_task(&self, stage: &Stage, task: usize) -> Result<TaskRecord, PipelineError> {
        // 1. fetch
        self.fetch_for_task(stage, task)?;
        let finalize = matches!(stage.kind, StageKind::Finalize);
        if let Some(r) = TaskRecord::load(&self.layout, &stage.name, task) {
            if finalize {
                // a run killed after finalize's record, before its work directory was gone
                self.drop_work()?;
            }
            return Ok(r);
        }
        if task >= stage.tasks {
            return Err(PipelineError::Usage(format!(
                "stage {} has {} task(s); index {task} is out of range",
                stage.name, stage.tasks
            )));
        }
        // 2. run
        let mut record = match stage.kind {
            StageKind::Pass { pass } => self.pass_task(&stage.name, pass, task)?,
            StageKind::Barrier { step, stage: s } => {
                self.barrier_task(&stage.name, step, s, task)?
            }
            StageKind::Assemble => self.assemble_task(&stage.name, task, stage.tasks)?,
            StageKind::Finalize => finalize::finalize(self)?,
        };
        record.run_id = self.layout.run_id.clone();
        pause_for_tests("CURATE_TEST_PAUSE_BEFORE_COMMIT_MS");
        if finalize {
            pause_for_tests("CURATE_TEST_PAUSE_BEFORE_FINALIZE_COMMIT_MS");
        }
        // 3. publish, then commit: nothing of this task becomes visible if another writer
        // replaced the run meanwhile; the work directory (local and published) goes only after
        // finalize's record, so a run killed before it finalizes again from the same files
        self.check_still_this_run()?;
        if self.storage.push(finalize)? {
            // publishing took time: ask again before the record makes it count
            self.check_still_this_run()?;
        }
        record
            .commit(&self.layout)
            .map_err(|e| PipelineError::io(format!("stage {} task {task}", stage.name), e))?;
        if !self
            .storage
            .commit_record(&self.layout.rel(&self.layout.done(&stage.name, task)))?
        {
            tracing::warn!(stage = %stage.name, task, "completion record already committed by another attempt; kept it");
        }
        // 4. drop what no later task reads
        if finalize {
            self.drop_work()?;
        }
        if !self.config.run.keep_work
            && let StageKind::Pass { pass } = stage.kind
            && pass > 0
        {
            let _ = std::fs::remove_file(self.layout.part(pass - 1, task));
            self.storage.push(false)?;
        }
        Ok(record)
    }

    /// Removes the run's work directory, locally and where the storage published it (unless
    /// `keep_work`): once finalize's record is committed, nothing reads it again.
    fn drop_work(&self) -> Result<(), PipelineError> {
        if self.config.run.keep_work {
            return Ok(());
        }
        // the snapshot is complete: a work file that will not go is worth a warning, not a
        // failed run (the next run in this directory removes what is left)
        let work = self.layout.work_root();
        if let Err(e) = curate_snapshot::storage::remove_any(&work) {
            tracing::warn!(dir = %work.display(), error = %e, "could not remove the work directory");
        }
        self.storage.drop_work()?;
        Ok(())
    }

    /// Step 1 of a task's life: makes what task `task` of `stage` reads from earlier stages
    /// present under the storage's root, its completion record first (if that exists, nothing
    /// else is fetched: the task is done).
    fn fetch_for_task(&self, stage: &Stage, task: usize) -> Result<(), PipelineError> {
        let (layout, st) = (&self.layout, &*self.storage);
        if layout.done(&stage.name, task).exists()
            || st.fetch(&layout.rel(&layout.done(&stage.name, task)))?
        {
            return Ok(());
        }
        let name = stage.name.as_str();
        let steps = layout.rel(&layout.work().join("steps"));
        match stage.kind {
            StageKind::Pass { pass } => {
                st.fetch_prefix(name, &steps, &|_| true)?;
                if pass > 0 && task < stage.tasks {
                    let part = layout.part(pass - 1, task);
                    if !part.exists() && !st.fetch(&layout.rel(&part))? {
                        return Err(curate_snapshot::SnapshotError::Missing {
                            location: st.location().join(layout.rel(&part)).display().to_string(),
                            why: format!("stage pass-{} must finish before {name}", pass - 1),
                        }
                        .into());
                    }
                }
            }
            StageKind::Barrier { .. } => st.fetch_prefix(name, &steps, &|_| true)?,
            StageKind::Assemble => {
                let last = format!(
                    "{}/",
                    layout.rel(&layout.pass_dir(self.plan.passes.len() - 1))
                );
                let excluded = format!("{}/", layout.rel(&layout.excluded_parts()));
                st.fetch_prefix(name, &layout.rel(&layout.done_root()), &|r| {
                    r.contains("/pass-")
                })?;
                st.fetch_prefix(name, &layout.rel(&layout.work()), &|r| {
                    r.starts_with(&last) || r.starts_with(&excluded)
                })?;
            }
            StageKind::Finalize => {
                st.fetch_prefix(name, &layout.rel(&layout.done_root()), &|_| true)?;
                st.fetch_prefix(name, &steps, &|_| true)?;
                st.fetch_prefix(name, layout::DATA_DIR, &|_| true)?;
                st.fetch_prefix(name, layout::EXCLUDED_DIR, &|_| true)?;
            }
        }
        Ok(())
    }

    /// Refuses to commit a record when the directory's run is no longer this one (another
    /// writer restarted it with `--fresh` while this task ran): the task's outputs belong to a
    /// discarded run.
    fn check_still_this_run(&self) -> Result<(), PipelineError> {
        self.storage.fetch(layout::STATE)?;
        let now = crate::state::State::load(&Layout::new(&self.layout.root))?.map(|s| s.run_id);
        if now.as_deref() != Some(self.layout.run_id.as_str()) {
            return Err(PipelineError::Refused(format!(
                "{}: the run this task belongs to ({}) was replaced by another (--fresh, or another writer) while the task ran; its results are discarded",
                self.layout.root.display(),
                if self.layout.run_id.is_empty() {
                    "-"
                } else {
                    &self.layout.run_id
                },
            )));
        }
        Ok(())
    }

    fn pass_task(&self, name: &str, pass: usize, task: usize) -> Result<TaskRecord, PipelineError> {
        let source = if pass == 0 {
            Source::Input(&self.plan.shares[task])
        } else {
            Source::Part(self.layout.part(pass - 1, task))
        };
        match self.pass_body(name, pass, task, source) {
            Err(PassFailure::Input(e))
                if self.config.input.on_error == OnError::Skip && !e.is_transport() =>
            {
                let share = &self.plan.shares[task];
                let path = self.plan.inputs[share.file].path.display().to_string();
                tracing::warn!(file = %path, error = %e, "skipping unreadable input shard (on_error = \"skip\")");
                let mut rec = self
                    .pass_body(name, pass, task, Source::Empty)
                    .map_err(PassFailure::into_error)?;
                rec.skipped = Some(Skipped {
                    path,
                    row_groups: [share.row_groups.start, share.row_groups.end],
                    rows: share.rows,
                    error: e.to_string(),
                });
                Ok(rec)
            }
            r => r.map_err(PassFailure::into_error),
        }
    }

    fn pass_body(
        &self,
        name: &str,
        pass: usize,
        task: usize,
        source: Source<'_>,
    ) -> Result<TaskRecord, PassFailure> {
        let ctx = format!("stage {name} task {task}");
        let p = &self.plan.passes[pass];
        let seed = self.config.run.seed;
        let tcx = |i: usize| TaskContext {
            task,
            tasks: self.plan.shares.len(),
            dir: &self.plan.step_dirs[i],
            step_dirs: &self.plan.step_dirs,
            seed,
        };
        let step_err = |i: usize, e| {
            PassFailure::Other(PipelineError::Step {
                step: self.step_label(i),
                context: ctx.clone(),
                source: e,
            })
        };
        let mut procs = Vec::new();
        for i in p.steps.clone() {
            procs.push((
                i,
                self.plan.steps[i]
                    .processor(&tcx(i))
                    .map_err(|e| step_err(i, e))?,
            ));
        }
        let mut observer = match p.barrier {
            Some(b) => {
                let barrier = self.plan.steps[b].barrier().expect("barrier step");
                Some((b, barrier.observer(&tcx(b)).map_err(|e| step_err(b, e))?))
            }
            None => None,
        };
        let io = |e| PassFailure::Other(PipelineError::io(ctx.clone(), e));
        let mut kept = PartWriter::create(&self.layout.part(pass, task)).map_err(io)?;
        let mut excl = if self.config.output.exclusion {
            Some(PartWriter::create(&self.layout.excluded_part(pass, task)).map_err(io)?)
        } else {
            None
        };
        let mut counts: BTreeMap<usize, StepCounts> = BTreeMap::new();
        for i in p.steps.clone().chain(p.barrier) {
            counts.insert(i, StepCounts::default());
        }
        let mut rows_in = 0u64;
        let schema = self.plan.schemas.input.clone();
        let text = schema
            .index_of(&self.config.input.text_column)
            .expect("text column");
        let id = self
            .config
            .input
            .id_column
            .as_ref()
            .and_then(|c| schema.index_of(c).ok());
        let bar = self.progress.bar(name);
        // the report's counters, of each document as it is written (kept: last pass only)
        let last_pass = pass + 1 == self.plan.passes.len();
        let scale = if last_pass {
            self.report_scale()
        } else {
            (0.0, 1.0)
        };
        let text_name = self.config.input.text_column.as_str();
        let mut profile = curate_report::profile::Counts::default();

        let mut handle = |record: RecordBatch, keys: UInt64Array| -> Result<(), PipelineError> {
            let n = record.num_rows() as u64;
            rows_in += n;
            bar.add(n, curate_io::part::logical_bytes(&record));
            let mut doc = DocBatch::new(record, text, id, keys);
            // this batch's dropped rows of every step, written together in key order so the
            // exclusion output does not depend on batch boundaries
            let mut excluded: Vec<RecordBatch> = Vec::new();
            for (i, proc_) in procs.iter_mut() {
                if doc.is_empty() {
                    break;
                }
                let c = counts.get_mut(i).expect("counts");
                c.docs_in += doc.len() as u64;
                proc_
                    .process(&mut doc, &mut c.counters)
                    .map_err(|e| PipelineError::Step {
                        step: self.step_label(*i),
                        context: ctx.clone(),
                        source: e,
                    })?;
                // The dropped rows are copied out only when they are written.
                let (mut k, reasons, dropped) = doc.split(excl.is_some());
                for name in &self.plan.schemas.on_dropped[*i] {
                    k.remove_column(name);
                }
                if !reasons.is_empty() {
                    let names = &self.reasons[*i];
                    let mut per: Vec<u64> = vec![0; names.len().max(1)];
                    for r in &reasons {
                        if let Some(x) = per.get_mut(*r as usize) {
                            *x += 1;
                        }
                    }
                    for (r, cnt) in per.iter().enumerate() {
                        if *cnt > 0 {
                            let reason = names
                                .get(r)
                                .cloned()
                                .unwrap_or_else(|| format!("reason_{r}"));
                            *c.dropped.entry(reason).or_default() += cnt;
                        }
                    }
                    if let Some(d) = dropped {
                        excluded.push(self.exclusion_batch(&d, *i, &reasons));
                    }
                }
                c.docs_out += k.len() as u64;
                doc = k;
            }
            if let Some(w) = excl.as_mut()
                && let Some(b) = in_key_order(&excluded)
            {
                w.write(&b).map_err(|e| PipelineError::io(ctx.clone(), e))?;
                profile.add_excluded(&b, text_name);
            }
            if doc.is_empty() {
                return Ok(());
            }
            if let Some((b, obs)) = observer.as_mut() {
                let c = counts.get_mut(b).expect("counts");
                obs.observe(&doc, &mut c.counters)
                    .map_err(|e| PipelineError::Step {
                        step: self.step_label(*b),
                        context: ctx.clone(),
                        source: e,
                    })?;
            }
            let (record, keys) = doc.into_parts();
            kept.write(&with_key(&record, keys))
                .map_err(|e| PipelineError::io(ctx.clone(), e))?;
            if last_pass {
                profile.add_kept(&record, text_name, scale);
            }
            Ok(())
        };

        let mut skipped_units = Vec::new();
        match source {
            Source::Empty => {}
            Source::Input(share) => {
                let file = &self.plan.inputs[share.file];
                let ordinal = share.file as u32;
                // with on_error = "skip", exactly the unreadable row groups / lines are left out
                let mode = match self.config.input.on_error {
                    OnError::Skip => ReadMode::Skip,
                    OnError::Fail => ReadMode::Fail,
                };
                let units = read_share_with(
                    file,
                    share.row_groups.clone(),
                    &self.read_spec,
                    mode,
                    |batch, first| {
                        let keys = UInt64Array::from_iter_values(
                            (0..batch.num_rows() as u64).map(|i| doc_key(ordinal, first + i)),
                        );
                        handle(batch, keys)
                    },
                )
                .map_err(|e| match e {
                    ReadError::Io(e) => PassFailure::Input(e),
                    ReadError::Sink(e) => PassFailure::Other(e),
                })?;
                for u in units {
                    let path = u.path.display().to_string();
                    tracing::warn!(file = %path, error = %u.error, "skipping unreadable input (on_error = \"skip\")");
                    skipped_units.push(Skipped {
                        path,
                        row_groups: match u.location {
                            SkipLocation::RowGroup(g) => [g, g + 1],
                            _ => [share.row_groups.start, share.row_groups.end],
                        },
                        rows: u.rows.unwrap_or(0),
                        error: u.error,
                    });
                }
            }
            Source::Part(path) => {
                for b in read_part(&path).map_err(io)? {
                    let b = b.map_err(io)?;
                    let (record, keys) = split_key(&b);
                    handle(record, keys).map_err(PassFailure::Other)?;
                }
            }
        }
        bar.task_done();
        for (i, proc_) in procs.iter_mut() {
            let c = counts.get_mut(i).expect("counts");
            proc_.finish(&mut c.counters).map_err(|e| step_err(*i, e))?;
        }
        if let Some((b, obs)) = observer {
            let c = counts.get_mut(&b).expect("counts");
            obs.finish(&mut c.counters).map_err(|e| step_err(b, e))?;
        }
        let (rows_out, bytes_out) = kept.finish().map_err(io)?;
        let (excluded_rows, excluded_bytes) = match excl {
            Some(w) => w.finish().map_err(io)?,
            None => (0, 0),
        };
        Ok(TaskRecord {
            stage: name.to_string(),
            task,
            rows_in,
            rows_out,
            bytes_out,
            excluded_rows,
            excluded_bytes,
            steps: counts,
            skipped: None,
            skipped_units,
            files: Vec::new(),
            profile: Some(profile),
            ..Default::default()
        })
    }

    /// The score scale the report will bin the kept documents' `quality_score` over: that of
    /// the quality metrics the last `train` step publishes, else `[0, 1]`
    /// ([`curate_report::report::score_scale`]). Should the metrics not be readable here, the
    /// counters carry the scale they used and finalize measures the files instead.
    fn report_scale(&self) -> (f64, f64) {
        let metrics = self
            .plan
            .steps
            .iter()
            .enumerate()
            .rev()
            .filter(|(_, s)| s.kind() == "train")
            .find_map(|(i, s)| {
                let published = s.publish(&self.plan.step_dirs[i]).ok()?;
                let (_, src) = published
                    .files
                    .into_iter()
                    .find(|(rel, _)| rel == curate_report::METRICS_FILE)?;
                serde_json::from_slice::<serde_json::Value>(&std::fs::read(src).ok()?).ok()
            });
        curate_report::report::score_scale(metrics.as_ref())
    }

    /// Dropped rows as exclusion rows, in the run's exclusion schema: every data column (null
    /// where the document had none yet when it was dropped), the columns steps write on the
    /// rows they drop, `step`, `reason` and the key.
    fn exclusion_batch(&self, d: &DocBatch, step: usize, reasons: &[u32]) -> RecordBatch {
        let rec = d.record();
        let schema = &self.plan.schemas.exclusion;
        let n = d.len();
        let kind = self.plan.steps[step].kind();
        let names = &self.reasons[step];
        let mut cols: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len() + 1);
        for f in schema.fields() {
            let col: ArrayRef = match f.name().as_str() {
                "step" => Arc::new(StringArray::from_iter_values(std::iter::repeat_n(kind, n))),
                "reason" => Arc::new(StringArray::from_iter_values(reasons.iter().map(|r| {
                    names
                        .get(*r as usize)
                        .map(String::as_str)
                        .unwrap_or("unknown")
                }))),
                name => match rec.column_by_name(name) {
                    Some(c) if c.data_type() == f.data_type() => c.clone(),
                    // a column replaced later with another type (`overwrite = true`)
                    Some(c) => arrow::compute::cast(c, f.data_type())
                        .unwrap_or_else(|_| arrow::array::new_null_array(f.data_type(), n)),
                    None => arrow::array::new_null_array(f.data_type(), n),
                },
            };
            cols.push(col);
        }
        let mut fields: Vec<Arc<Field>> = schema.fields().iter().cloned().collect();
        fields.push(Arc::new(Field::new(KEY_COLUMN, DataType::UInt64, false)));
        cols.push(Arc::new(d.keys().clone()));
        RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).expect("exclusion batch")
    }

    fn barrier_task(
        &self,
        name: &str,
        step: usize,
        stage: usize,
        task: usize,
    ) -> Result<TaskRecord, PipelineError> {
        let counters = Mutex::new(Counters::default());
        let cx = StageContext {
            stage,
            task,
            dir: &self.plan.step_dirs[step],
            step_dirs: &self.plan.step_dirs,
            observed_tasks: self.plan.shares.len(),
            seed: self.config.run.seed,
            counters: &counters,
        };
        let bar = self.progress.bar(name);
        self.plan.steps[step]
            .barrier()
            .expect("barrier step")
            .run_stage_task(&cx)
            .map_err(|e| PipelineError::Step {
                step: self.step_label(step),
                context: format!("stage {name} task {task}"),
                source: e,
            })?;
        bar.task_done();
        let mut steps = BTreeMap::new();
        steps.insert(
            step,
            StepCounts {
                counters: counters.into_inner().expect("lock"),
                ..Default::default()
            },
        );
        Ok(TaskRecord {
            stage: name.to_string(),
            task,
            steps,
            ..Default::default()
        })
    }

    /// Records of every task of a stage (all must exist).
    pub fn stage_records(&self, name: &str) -> Result<Vec<TaskRecord>, PipelineError> {
        let stage = self
            .plan
            .stage(name)
            .ok_or_else(|| PipelineError::Usage(format!("no stage {name}")))?;
        (0..stage.tasks)
            .map(|t| {
                TaskRecord::load(&self.layout, name, t).ok_or_else(|| {
                    PipelineError::Other(format!(
                        "stage {name} task {t} has not finished (no completion record)"
                    ))
                })
            })
            .collect()
    }

    /// The kept-row segments (part path, rows, bytes) of the last pass, in order.
    fn kept_segments(&self) -> Result<Vec<(PathBuf, u64, u64)>, PipelineError> {
        let last = self.plan.passes.len() - 1;
        let recs = self.stage_records(&format!("pass-{last}"))?;
        Ok(recs
            .iter()
            .map(|r| (self.layout.part(last, r.task), r.rows_out, r.bytes_out))
            .collect())
    }

    /// The excluded-row segments of every pass, in pass then task order.
    fn excluded_segments(&self) -> Result<Vec<(PathBuf, u64, u64)>, PipelineError> {
        let mut out = Vec::new();
        for pass in 0..self.plan.passes.len() {
            for r in self.stage_records(&format!("pass-{pass}"))? {
                out.push((
                    self.layout.excluded_part(pass, r.task),
                    r.excluded_rows,
                    r.excluded_bytes,
                ));
            }
        }
        Ok(out)
    }

    fn assemble_task(
        &self,
        name: &str,
        task: usize,
        tasks: usize,
    ) -> Result<TaskRecord, PipelineError> {
        let bar = self.progress.bar(name);
        let mut files = Vec::new();
        let kept = self.kept_segments()?;
        files.extend(self.assemble_files(&kept, task, tasks, false)?);
        if self.config.output.exclusion {
            let ex = self.excluded_segments()?;
            files.extend(self.assemble_files(&ex, task, tasks, true)?);
        }
        bar.task_done();
        let rows_out = files
            .iter()
            .filter(|f| layout::is_data(&f.path))
            .map(|f| f.rows)
            .sum();
        Ok(TaskRecord {
            stage: name.to_string(),
            task,
            rows_out,
            files,
            ..Default::default()
        })
    }

    /// Writes every `tasks`-th file (starting at `task`) of the files the segments cut into.
    fn assemble_files(
        &self,
        segs: &[(PathBuf, u64, u64)],
        task: usize,
        tasks: usize,
        excluded: bool,
    ) -> Result<Vec<FileRecord>, PipelineError> {
        let total_rows: u64 = segs.iter().map(|s| s.1).sum();
        let total_bytes: u64 = segs.iter().map(|s| s.2).sum();
        let per_file = rows_per_file(
            total_rows,
            total_bytes,
            self.config.output.target_file_size.0,
            self.props.row_group_rows,
        );
        let n_files = total_rows.div_ceil(per_file.max(1)) as usize;
        let mut out = Vec::new();
        for k in (task..n_files).step_by(tasks) {
            let start = k as u64 * per_file;
            let end = (start + per_file).min(total_rows);
            let dest = if excluded {
                self.layout.excluded_file(k)
            } else {
                self.layout.data_file(k)
            };
            let ctx = format!("assemble {}", dest.display());
            let rows = self
                .write_range(segs, start, end, &dest)
                .map_err(|e| PipelineError::io(ctx, e))?;
            let rel = dest
                .strip_prefix(&self.layout.root)
                .unwrap_or(&dest)
                .to_string_lossy()
                .into_owned();
            let (bytes, h) = curate_io::hash::hash_file(&dest)
                .map_err(|e| PipelineError::io("hashing outputs", e))?;
            out.push(FileRecord {
                path: rel,
                rows,
                bytes,
                xxh3_128: curate_core::hash::hex128(h),
            });
        }
        Ok(out)
    }

    /// Streams global rows `start..end` of the segments into one parquet file.
    fn write_range(
        &self,
        segs: &[(PathBuf, u64, u64)],
        start: u64,
        end: u64,
        dest: &std::path::Path,
    ) -> Result<u64, curate_io::IoError> {
        let mut sink: Option<ParquetSink> = None;
        let mut offset = 0u64;
        for (path, rows, _) in segs {
            let (s0, s1) = (offset, offset + rows);
            offset = s1;
            if s1 <= start || s0 >= end || *rows == 0 {
                continue;
            }
            let mut row = s0;
            for b in read_part(path)? {
                let b = b?;
                let (b0, b1) = (row, row + b.num_rows() as u64);
                row = b1;
                if b1 <= start || b0 >= end {
                    continue;
                }
                let lo = start.max(b0) - b0;
                let hi = end.min(b1) - b0;
                let b = drop_key(&b.slice(lo as usize, (hi - lo) as usize));
                if sink.is_none() {
                    sink = Some(ParquetSink::create(dest, b.schema(), &self.props)?);
                }
                let s = sink.as_mut().expect("sink");
                s.write(b)?;
                if row >= end {
                    break;
                }
            }
        }
        match sink {
            Some(s) => s.finish(),
            None => Ok(0),
        }
    }
}

/// A test hook: sleeps for the milliseconds the environment variable `var` names, if set (the
/// concurrency tests use it to hold a task between its work and its commit while another
/// writer replaces the run, the crash tests to kill a run between its manifest and finalize's
/// record; nothing else sets it).
fn pause_for_tests(var: &str) {
    if let Some(ms) = std::env::var(var).ok().and_then(|v| v.parse::<u64>().ok()) {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}

/// Rows per data file: the target size over the mean row size, rounded down to whole row
/// groups (at least one). A function of the kept data alone.
pub fn rows_per_file(rows: u64, bytes: u64, target: u64, row_group: usize) -> u64 {
    if rows == 0 {
        return row_group as u64;
    }
    let mean = (bytes / rows).max(1);
    let raw = (target / mean).max(1);
    let rg = row_group as u64;
    (raw / rg).max(1) * rg
}

enum PassFailure {
    Input(curate_io::IoError),
    Other(PipelineError),
}

impl PassFailure {
    fn into_error(self) -> PipelineError {
        match self {
            PassFailure::Input(e) => PipelineError::io("reading input", e),
            PassFailure::Other(e) => e,
        }
    }
}

/// Concatenates exclusion batches (same schema) and sorts their rows by key.
fn in_key_order(batches: &[RecordBatch]) -> Option<RecordBatch> {
    match batches {
        [] => None,
        [one] => Some(one.clone()),
        many => {
            let all = arrow::compute::concat_batches(&many[0].schema(), many).expect("same schema");
            let keys = all.column_by_name(KEY_COLUMN).expect("key column");
            let order = arrow::compute::sort_to_indices(keys, None, None).expect("sortable keys");
            Some(arrow::compute::take_record_batch(&all, &order).expect("take"))
        }
    }
}

fn with_key(record: &RecordBatch, keys: UInt64Array) -> RecordBatch {
    let mut fields: Vec<_> = record.schema().fields().iter().cloned().collect();
    fields.push(Arc::new(Field::new(KEY_COLUMN, DataType::UInt64, false)));
    let mut cols = record.columns().to_vec();
    cols.push(Arc::new(keys));
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).expect("key column")
}

fn split_key(b: &RecordBatch) -> (RecordBatch, UInt64Array) {
    let i = b.schema().index_of(KEY_COLUMN).expect("parts carry keys");
    let keys = b.column(i).as_primitive::<UInt64Type>().clone();
    let mut b = b.clone();
    b.remove_column(i);
    (b, keys)
}

fn drop_key(b: &RecordBatch) -> RecordBatch {
    match b.schema().index_of(KEY_COLUMN) {
        Ok(i) => {
            let mut b = b.clone();
            b.remove_column(i);
            b
        }
        Err(_) => b.clone(),
    }
}
