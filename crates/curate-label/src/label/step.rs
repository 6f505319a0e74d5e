//! The runtime `label` step: observer, the barrier stage, processor and the labels files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Float32Array, Float32Builder, RecordBatch, StringArray, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Float32Type, Schema, UInt64Type};
use curate_core::hash::{h128, hex128};
use curate_core::step::Published;
use curate_core::{
    Barrier, Counters, DocBatch, Observer, Processor, StageContext, StageSpec, Step, StepError,
    TaskContext,
};

use super::annotators::{Annotator, label_claude, label_file, label_reference};
use super::config::LabelConfig;
use crate::LabelError;
use crate::util::{read_parquet, write_atomic, write_parquet};

/// The runtime `label` step.
pub struct LabelStep {
    pub(super) cfg: LabelConfig,
    pub(super) annotator: Annotator,
    /// Indices of the `label` steps before this one (earlier rounds; their spend counts
    /// against this step's `max_usd`).
    pub(super) earlier: Vec<usize>,
}

impl std::fmt::Debug for LabelStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LabelStep")
            .field("annotator", &self.cfg.annotator)
            .finish_non_exhaustive()
    }
}

/// The work-dir file with every label (and text); read by the `train` step.
pub const LABELS_FILE: &str = "labels.parquet";
pub(super) const SNAPSHOT_FILE: &str = "labels-snapshot.parquet";
pub(super) const STATS_FILE: &str = "stats.json";
/// What the last run of the label stage spent and did (work dir only; not deterministic).
pub const RUN_FILE: &str = "run.json";

impl Step for LabelStep {
    fn kind(&self) -> &'static str {
        "label"
    }

    fn columns(&self, c: &mut curate_core::columns::Columns<'_>) {
        use curate_core::columns::Want;
        c.need("split_column", &self.cfg.split_column, Want::String);
        // Optional: copied into `labels.parquet` when the documents have it (a `sample` step
        // writes it), and then it must hold strings.
        if c.get(&self.cfg.selection_column).is_some() {
            c.need("selection_column", &self.cfg.selection_column, Want::String);
        }
        c.add(Some("column"), &self.cfg.column, DataType::Float32);
        let scale = match &self.annotator {
            Annotator::Reference { .. } => Some((0.0, 1.0)),
            Annotator::Claude { rubric, .. } => Some((
                rubric.score_min.unwrap_or(0.0),
                rubric.score_max.unwrap_or(5.0),
            )),
            Annotator::File { .. } => None,
        };
        if let Some((lo, hi)) = scale {
            c.set_scale(&self.cfg.column, lo, hi);
        }
    }

    fn processor(&self, cx: &TaskContext<'_>) -> Result<Box<dyn Processor>, StepError> {
        let path = cx.dir.join(LABELS_FILE);
        let mut scores = HashMap::new();
        for rb in read_parquet(&path, Some(&["key", "score"]))? {
            let k = rb.column(0).as_primitive::<UInt64Type>();
            let s = rb.column(1).as_primitive::<Float32Type>();
            for i in 0..rb.num_rows() {
                if !k.is_null(i) && !s.is_null(i) {
                    scores.insert(k.value(i), s.value(i));
                }
            }
        }
        Ok(Box::new(LabelProcessor {
            scores,
            column: self.cfg.column.clone(),
        }))
    }

    fn barrier(&self) -> Option<&dyn Barrier> {
        Some(self)
    }

    fn publish(&self, dir: &Path) -> Result<Published, StepError> {
        let stats = std::fs::read(dir.join(STATS_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        Ok(Published {
            files: vec![
                (
                    curate_snapshot::artifact::LABELS.into(),
                    dir.join(SNAPSHOT_FILE),
                ),
                (
                    curate_snapshot::artifact::LABEL_STATS.into(),
                    dir.join(STATS_FILE),
                ),
            ],
            stats,
        })
    }
}

impl Barrier for LabelStep {
    fn observer(&self, cx: &TaskContext<'_>) -> Result<Box<dyn Observer>, StepError> {
        Ok(Box::new(LabelObserver {
            path: cx.dir.join(format!("observed-{:05}.parquet", cx.task)),
            batches: Vec::new(),
            split_column: self.cfg.split_column.clone(),
            selection_column: self.cfg.selection_column.clone(),
        }))
    }

    fn stages(&self, _observed_tasks: usize) -> Vec<StageSpec> {
        vec![StageSpec {
            name: "label".into(),
            tasks: 1,
        }]
    }

    fn run_stage_task(&self, cx: &StageContext<'_>) -> Result<(), StepError> {
        let mut items = Vec::new();
        for t in 0..cx.observed_tasks {
            let p = cx.dir.join(format!("observed-{t:05}.parquet"));
            for rb in read_parquet(&p, None)? {
                let k = rb.column(0).as_primitive::<UInt64Type>();
                let (id, split, text, selection) = (
                    rb.column(1).as_string::<i32>(),
                    rb.column(2).as_string::<i32>(),
                    rb.column(3).as_string::<i32>(),
                    rb.column(4).as_string::<i32>(),
                );
                for i in 0..rb.num_rows() {
                    items.push(Item {
                        key: k.value(i),
                        id: id.value(i).to_string(),
                        split: split.value(i).to_string(),
                        selection: (!selection.is_null(i)).then(|| selection.value(i).to_string()),
                        text: text.value(i).to_string(),
                    });
                }
            }
        }
        items.sort_by_key(|x| x.key);
        let (rows, stats) = match &self.annotator {
            Annotator::Claude {
                settings,
                rubric,
                key,
                store,
            } => label_claude(
                settings,
                rubric,
                key.clone(),
                store,
                &self.cfg,
                cx.dir,
                &self
                    .earlier
                    .iter()
                    .filter_map(|&i| cx.step_dirs.get(i).cloned())
                    .collect::<Vec<_>>(),
                &items,
            )?,
            Annotator::File {
                path,
                by_text,
                score_column,
            } => label_file(path, *by_text, score_column, &items)?,
            Annotator::Reference {
                path,
                text_column,
                holdout,
                max_docs,
                seed,
            } => label_reference(path, text_column, *holdout, *max_docs, *seed, &items)?,
        };
        let mut rows = rows;
        set_selections(&mut rows, &items);
        write_labels(&cx.dir.join(LABELS_FILE), &rows, true)?;
        write_labels(&cx.dir.join(SNAPSHOT_FILE), &rows, false)?;
        let mut stats = stats;
        let labeled = rows
            .iter()
            .filter(|r| r.key.is_some() && r.score.is_some())
            .count();
        let unlabeled = rows
            .iter()
            .filter(|r| r.key.is_some() && r.score.is_none())
            .count();
        stats.insert("annotator".into(), self.cfg.annotator.clone().into());
        stats.insert("sampled".into(), items.len().into());
        stats.insert("labeled".into(), labeled.into());
        stats.insert("unlabeled".into(), unlabeled.into());
        stats.insert("labels_hash".into(), labels_hash(&rows).into());
        write_atomic(
            &cx.dir.join(STATS_FILE),
            &serde_json::to_vec_pretty(&stats).expect("JSON"),
        )?;
        let mut c = cx.counters.lock().expect("counters");
        c.add("labeled", labeled as f64);
        c.add("unlabeled", unlabeled as f64);
        Ok(())
    }
}

pub(super) struct Item {
    pub(super) key: u64,
    pub(super) id: String,
    pub(super) split: String,
    /// How the document was chosen (the input's selection column), when known.
    pub(super) selection: Option<String>,
    pub(super) text: String,
}

/// Copies each sampled document's selection onto its label row (rows from outside the input,
/// such as reference positives, have none).
fn set_selections(rows: &mut [Row], items: &[Item]) {
    let by_key: HashMap<u64, &str> = items
        .iter()
        .filter_map(|it| Some((it.key, it.selection.as_deref()?)))
        .collect();
    for r in rows {
        r.selection = r.key.and_then(|k| by_key.get(&k)).map(|s| s.to_string());
    }
}

/// One row of the labels table.
#[derive(Debug, Clone, Default)]
pub(super) struct Row {
    pub(super) key: Option<u64>,
    pub(super) id: String,
    pub(super) split: String,
    /// How the document was chosen (`random`, `uncertainty-round-N`), when the input says.
    pub(super) selection: Option<String>,
    pub(super) score: Option<f32>,
    pub(super) reason: String,
    pub(super) status: String,
    pub(super) model: String,
    pub(super) input_tokens: u64,
    pub(super) output_tokens: u64,
    pub(super) cache_creation_input_tokens: u64,
    pub(super) cache_read_input_tokens: u64,
    pub(super) cost_usd: f64,
    pub(super) text_hash: String,
    pub(super) text: String,
}

pub(super) fn text_hash(t: &str) -> String {
    hex128(h128(t.as_bytes(), 0))
}

pub(super) fn labels_hash(rows: &[Row]) -> String {
    let mut s = String::new();
    for r in rows {
        s.push_str(&format!(
            "{:?}\0{}\0{}\0{:?}\0{}\n",
            r.key,
            r.id,
            r.split,
            r.score.map(f32::to_bits),
            r.text_hash
        ));
    }
    hex128(h128(s.as_bytes(), 0))
}

pub(super) type Stats = serde_json::Map<String, serde_json::Value>;

pub(super) fn write_labels(path: &Path, rows: &[Row], with_text: bool) -> Result<(), LabelError> {
    let s = |f: fn(&Row) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
    };
    let u = |f: fn(&Row) -> u64| -> ArrayRef {
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(f)))
    };
    let mut fields = vec![
        Field::new("key", DataType::UInt64, true),
        Field::new("id", DataType::Utf8, false),
        Field::new("split", DataType::Utf8, false),
        Field::new("selection", DataType::Utf8, true),
        Field::new("score", DataType::Float32, true),
        Field::new("reason", DataType::Utf8, false),
        Field::new("status", DataType::Utf8, false),
        Field::new("model", DataType::Utf8, false),
        Field::new("input_tokens", DataType::UInt64, false),
        Field::new("output_tokens", DataType::UInt64, false),
        Field::new("cache_creation_input_tokens", DataType::UInt64, false),
        Field::new("cache_read_input_tokens", DataType::UInt64, false),
        Field::new("cost_usd", DataType::Float64, false),
        Field::new("text_hash", DataType::Utf8, false),
    ];
    let mut cols: Vec<ArrayRef> = vec![
        Arc::new(rows.iter().map(|r| r.key).collect::<UInt64Array>()),
        s(|r| &r.id),
        s(|r| &r.split),
        Arc::new(
            rows.iter()
                .map(|r| r.selection.as_deref())
                .collect::<StringArray>(),
        ),
        Arc::new(rows.iter().map(|r| r.score).collect::<Float32Array>()),
        s(|r| &r.reason),
        s(|r| &r.status),
        s(|r| &r.model),
        u(|r| r.input_tokens),
        u(|r| r.output_tokens),
        u(|r| r.cache_creation_input_tokens),
        u(|r| r.cache_read_input_tokens),
        Arc::new(arrow::array::Float64Array::from_iter_values(
            rows.iter().map(|r| r.cost_usd),
        )),
        s(|r| &r.text_hash),
    ];
    if with_text {
        fields.push(Field::new("text", DataType::Utf8, false));
        cols.push(s(|r| &r.text));
    }
    let schema = Arc::new(Schema::new(fields));
    let rb =
        RecordBatch::try_new(schema.clone(), cols).map_err(|e| LabelError::Other(e.to_string()))?;
    write_parquet(path, schema, &[rb])
}

/// The columns of an `observed-*.parquet` file: the sampled rows a task saw.
fn observed_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("key", DataType::UInt64, false),
        Field::new("id", DataType::Utf8, false),
        Field::new("split", DataType::Utf8, true),
        Field::new("text", DataType::Utf8, false),
        Field::new("selection", DataType::Utf8, true),
    ]))
}

pub(super) struct LabelObserver {
    path: PathBuf,
    batches: Vec<RecordBatch>,
    split_column: String,
    selection_column: String,
}

impl Observer for LabelObserver {
    fn observe(&mut self, batch: &DocBatch, _counters: &mut Counters) -> Result<(), StepError> {
        let name = &self.split_column;
        let split = batch.column(name).ok_or_else(|| {
            StepError::Data(format!(
                "label: the input has no `{name}` column; put a `sample` step before `label`"
            ))
        })?;
        let split = split.as_string_opt::<i32>().ok_or_else(|| {
            StepError::Data(format!("label: the `{name}` column is not a string column"))
        })?;
        let mask: arrow::array::BooleanArray =
            (0..batch.len()).map(|i| Some(!split.is_null(i))).collect();
        if mask.true_count() == 0 {
            return Ok(());
        }
        let keys: ArrayRef = Arc::new(batch.keys().clone());
        let ids: ArrayRef = Arc::new(StringArray::from_iter_values(
            (0..batch.len()).map(|i| batch.id_string(i)),
        ));
        let texts: ArrayRef = Arc::new(StringArray::from_iter_values(
            (0..batch.len()).map(|i| batch.text(i)),
        ));
        let split_col: ArrayRef = Arc::new(split.clone());
        // The selection column is optional (checked to hold strings at validate time).
        let selection: ArrayRef = match batch
            .column(&self.selection_column)
            .and_then(|c| c.as_string_opt::<i32>())
        {
            Some(c) => Arc::new(c.clone()),
            None => arrow::array::new_null_array(&DataType::Utf8, batch.len()),
        };
        let rb = RecordBatch::try_new(
            observed_schema(),
            vec![keys, ids, split_col, texts, selection],
        )
        .map_err(|e| StepError::Other(e.to_string()))?;
        let rb = arrow::compute::filter_record_batch(&rb, &mask)
            .map_err(|e| StepError::Other(e.to_string()))?;
        self.batches.push(rb);
        Ok(())
    }

    fn finish(self: Box<Self>, counters: &mut Counters) -> Result<(), StepError> {
        let schema = observed_schema();
        let n: usize = self.batches.iter().map(|b| b.num_rows()).sum();
        counters.add("sampled_seen", n as f64);
        let batches: Vec<RecordBatch> = self
            .batches
            .into_iter()
            .map(|b| {
                RecordBatch::try_new(schema.clone(), b.columns().to_vec()).expect("same columns")
            })
            .collect();
        write_parquet(&self.path, schema, &batches).map_err(StepError::from)
    }
}

pub(super) struct LabelProcessor {
    scores: HashMap<u64, f32>,
    column: String,
}

impl Processor for LabelProcessor {
    fn process(&mut self, batch: &mut DocBatch, counters: &mut Counters) -> Result<(), StepError> {
        let mut b = Float32Builder::with_capacity(batch.len());
        let mut n = 0u64;
        for &k in batch.keys().values().iter() {
            match self.scores.get(&k) {
                Some(&s) => {
                    n += 1;
                    b.append_value(s)
                }
                None => b.append_null(),
            }
        }
        batch.set_column(&self.column, Arc::new(b.finish()));
        counters.add("teacher_scored", n as f64);
        Ok(())
    }
}

/// A path's last component, for stats that must not depend on where files live.
pub(super) fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}
