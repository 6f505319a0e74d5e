//! Helpers for driving steps by hand through the core traits, as the executor does.

use std::path::Path;
use std::sync::{Arc, Mutex};

use arrow::array::{ArrayRef, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema};
use curate_core::{BuildEnv, Counters, DocBatch, StageContext, Step, TaskContext};

/// A build env whose previous steps are `previous`.
pub fn env(previous: &[&str]) -> BuildEnv {
    BuildEnv {
        seed: 42,
        index: previous.len(),
        text_column: "text".into(),
        id_column: Some("id".into()),
        previous: previous.iter().map(|s| s.to_string()).collect(),
        config_dir: std::env::temp_dir(),
    }
}

/// A batch of (id, text, language) rows with keys `first_key..`, plus a `url` column.
pub fn batch_of(rows: &[(String, String, String)], first_key: u64) -> DocBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("text", DataType::Utf8, true),
        Field::new("id", DataType::Utf8, true),
        Field::new("language", DataType::Utf8, true),
        Field::new("url", DataType::Utf8, true),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.1.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.0.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.2.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter()
                .map(|r| format!("https://site{}.org/{}", r.0.len() % 3, r.0)),
        )),
    ];
    let rb = RecordBatch::try_new(schema, cols).unwrap();
    let keys = UInt64Array::from_iter_values(first_key..first_key + rows.len() as u64);
    DocBatch::new(rb, 0, Some(1), keys)
}

/// Runs a barrier step over `batches` (one task per batch) in a fresh temp dir.
pub fn run_barrier(step: &dyn Step, batches: Vec<DocBatch>) -> Vec<DocBatch> {
    let dir = tempfile::tempdir().unwrap();
    run_barrier_in(step, batches, dir.path()).unwrap()
}

/// Runs a barrier step in `dir`: observers (task per batch), every stage task, processors.
pub fn run_barrier_in(
    step: &dyn Step,
    batches: Vec<DocBatch>,
    dir: &Path,
) -> Result<Vec<DocBatch>, curate_core::StepError> {
    let barrier = step.barrier().expect("a barrier step");
    let dirs = vec![dir.to_path_buf()];
    let tasks = batches.len();
    for (t, b) in batches.iter().enumerate() {
        let cx = TaskContext {
            task: t,
            tasks,
            dir,
            step_dirs: &dirs,
            seed: 42,
        };
        let mut o = barrier.observer(&cx)?;
        let mut c = Counters::default();
        o.observe(b, &mut c)?;
        o.finish(&mut c)?;
    }
    let counters = Mutex::new(Counters::default());
    for (s, spec) in barrier.stages(tasks).iter().enumerate() {
        for task in 0..spec.tasks {
            let cx = StageContext {
                stage: s,
                task,
                dir,
                step_dirs: &dirs,
                observed_tasks: tasks,
                seed: 42,
                counters: &counters,
            };
            barrier.run_stage_task(&cx)?;
        }
    }
    let mut out = Vec::new();
    for (t, mut b) in batches.into_iter().enumerate() {
        let cx = TaskContext {
            task: t,
            tasks,
            dir,
            step_dirs: &dirs,
            seed: 42,
        };
        let mut p = step.processor(&cx)?;
        let mut c = Counters::default();
        p.process(&mut b, &mut c)?;
        p.finish(&mut c)?;
        assert_eq!(b.dropped(), 0, "sample/label never drop documents");
        out.push(b);
    }
    Ok(out)
}
