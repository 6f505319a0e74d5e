//! Re-applying a keep rule to stored quality scores, without the model: the
//! `quality_threshold` step and the [`rethreshold`] function behind `curate rethreshold`.

use arrow::array::{Array, AsArray, BooleanArray, Float32Array};
use arrow::datatypes::{DataType, Float32Type};
use curate_core::{
    Barrier, BuildEnv, Counters, DocBatch, Observer, Problems, Processor, StageContext, StageSpec,
    Step, StepError, StepSpec, TaskContext,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::keep::{Cut, Keep, ScoreWriter, rank_key, scores_path};
use crate::score::{Rule, read_cut, write_cut};

/// Re-apply a keep rule to an existing quality score column (no model, no text).
///
/// Reads only the score column a `score` step wrote (default `quality_score`), so a snapshot
/// can be re-cut at another threshold or top fraction without rescoring: run a pipeline whose
/// input is the earlier snapshot's data with this one step. Documents below the rule are
/// dropped as `below_quality_threshold`; documents without a score as `missing_quality_score`.
/// `top_fraction` is exact (⌈fraction · n⌉ documents; ties on the stored score broken by
/// document key) and makes the step a barrier.
///
/// ```toml
/// [[steps]]
/// type = "quality_threshold"
/// keep = { threshold = 3.5 }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QualityThresholdConfig {
    /// The keep rule: `{ threshold = X }` or `{ top_fraction = F }`.
    pub keep: Keep,
    /// The score column to read.
    #[serde(default = "crate::score::default_column")]
    pub column: String,
}

impl StepSpec for QualityThresholdConfig {
    const TYPE: &'static str = "quality_threshold";

    fn validate(&self, p: &mut Problems) {
        self.keep.validate(p);
        if self.column.is_empty() {
            p.push("column", "must not be empty");
        }
    }

    fn build(&self, _env: &BuildEnv) -> Result<Box<dyn Step>, StepError> {
        Ok(Box::new(QualityThreshold { cfg: self.clone() }))
    }
}

/// The built `quality_threshold` step.
#[derive(Debug)]
pub struct QualityThreshold {
    cfg: QualityThresholdConfig,
}

/// The bucket a stored bucket-column value names (`None` unless a whole number ≥ 0).
fn bucket_of(v: f32) -> Option<u32> {
    (v >= 0.0 && v.fract() == 0.0 && v < 1e9).then_some(v as u32)
}

fn score_column(batch: &DocBatch, name: &str) -> Result<Float32Array, StepError> {
    let col = batch.column(name).ok_or_else(|| {
        StepError::Data(format!(
            "quality_threshold: column `{name}` is missing; it is written by a `score` step"
        ))
    })?;
    let c = arrow::compute::cast(col, &DataType::Float32).map_err(|e| {
        StepError::Data(format!(
            "quality_threshold: column `{name}` is not numeric: {e}"
        ))
    })?;
    Ok(c.as_primitive::<Float32Type>().clone())
}

impl Step for QualityThreshold {
    fn kind(&self) -> &'static str {
        "quality_threshold"
    }

    fn columns(&self, c: &mut curate_core::columns::Columns<'_>) {
        c.need(
            "column",
            &self.cfg.column,
            curate_core::columns::Want::Numeric,
        );
        if let (Keep::Threshold(t), Some((lo, hi))) = (self.cfg.keep, c.scale(&self.cfg.column))
            && !(lo..=hi).contains(&t)
        {
            c.problem(
                "keep",
                format!(
                    "threshold {t} is outside the scale of `{}` ({lo}–{hi})",
                    self.cfg.column
                ),
            );
        }
    }

    fn reasons(&self) -> Vec<String> {
        vec![
            "below_quality_threshold".into(),
            "missing_quality_score".into(),
        ]
    }

    fn processor(&self, cx: &TaskContext<'_>) -> Result<Box<dyn Processor>, StepError> {
        let rule = match self.cfg.keep {
            Keep::Threshold(t) => Rule::Threshold(t as f32),
            Keep::TopFraction(_) => Rule::Cut(read_cut(cx.dir)?),
            Keep::Buckets(b) => Rule::Buckets(b),
        };
        Ok(Box::new(ThresholdProcessor {
            rule,
            column: self.cfg.column.clone(),
        }))
    }

    fn barrier(&self) -> Option<&dyn Barrier> {
        matches!(self.cfg.keep, Keep::TopFraction(_)).then_some(self as &dyn Barrier)
    }
}

impl Barrier for QualityThreshold {
    fn observer(&self, cx: &TaskContext<'_>) -> Result<Box<dyn Observer>, StepError> {
        Ok(Box::new(ThresholdObserver {
            column: self.cfg.column.clone(),
            out: ScoreWriter::create(scores_path(cx.dir, cx.task))?,
        }))
    }

    fn stages(&self, _observed_tasks: usize) -> Vec<StageSpec> {
        vec![StageSpec {
            name: "cut".into(),
            tasks: 1,
        }]
    }

    fn run_stage_task(&self, cx: &StageContext<'_>) -> Result<(), StepError> {
        let Keep::TopFraction(f) = self.cfg.keep else {
            return Err(StepError::Other(
                "quality_threshold: cut stage without top_fraction".into(),
            ));
        };
        write_cut(cx.dir, cx.observed_tasks, f)?;
        Ok(())
    }
}

struct ThresholdObserver {
    column: String,
    out: ScoreWriter,
}

impl Observer for ThresholdObserver {
    fn observe(&mut self, batch: &DocBatch, _c: &mut Counters) -> Result<(), StepError> {
        let s = score_column(batch, &self.column)?;
        for i in 0..batch.len() {
            let v = if s.is_null(i) { f32::NAN } else { s.value(i) };
            self.out.write(v, batch.keys().value(i))?;
        }
        Ok(())
    }

    fn finish(self: Box<Self>, _c: &mut Counters) -> Result<(), StepError> {
        self.out.finish()?;
        Ok(())
    }
}

struct ThresholdProcessor {
    rule: Rule,
    column: String,
}

impl Processor for ThresholdProcessor {
    fn process(&mut self, batch: &mut DocBatch, counters: &mut Counters) -> Result<(), StepError> {
        let s = score_column(batch, &self.column)?;
        let (mut below, mut missing) = (0u64, 0u64);
        for i in 0..batch.len() {
            if s.is_null(i) {
                batch.drop_row(i, 1);
                missing += 1;
                continue;
            }
            let keep = match self.rule {
                Rule::All => true,
                Rule::Threshold(t) => s.value(i) >= t,
                Rule::Cut(c) => c.keeps(s.value(i), batch.keys().value(i)),
                Rule::Buckets(set) => bucket_of(s.value(i)).is_some_and(|b| set.contains(b)),
            };
            if !keep {
                batch.drop_row(i, 0);
                below += 1;
            }
        }
        counters.add("below_quality_threshold", below as f64);
        counters.add("missing_quality_score", missing as f64);
        Ok(())
    }
}

/// What [`rethreshold`] decided.
#[derive(Debug, Clone)]
pub struct Rethreshold {
    /// One keep mask per input array.
    pub masks: Vec<BooleanArray>,
    /// Documents kept.
    pub kept: u64,
    /// Documents in all.
    pub total: u64,
    /// The lowest kept score (None when nothing is kept).
    pub min_kept_score: Option<f32>,
}

/// Re-applies `keep` to stored score columns (one array per batch, in snapshot order; only
/// this column is needed). Nulls are never kept. For a top fraction the cut is exact:
/// ⌈fraction · n⌉ documents, ties on the score broken by position (earlier first).
pub fn rethreshold(scores: &[Float32Array], keep: Keep) -> Rethreshold {
    let total: u64 = scores.iter().map(|a| a.len() as u64).sum();
    let cut = match keep {
        Keep::Threshold(_) | Keep::Buckets(_) => None,
        Keep::TopFraction(f) => {
            let k = Cut::count(total, f) as usize;
            let mut all: Vec<(u32, u64)> = Vec::with_capacity(total as usize);
            let mut pos = 0u64;
            for a in scores {
                for i in 0..a.len() {
                    let v = if a.is_null(i) { f32::NAN } else { a.value(i) };
                    all.push((rank_key(v), pos));
                    pos += 1;
                }
            }
            Some(if k == 0 {
                Cut {
                    n: total,
                    k: 0,
                    last: None,
                }
            } else {
                let (_, kth, _) = all.select_nth_unstable(k - 1);
                Cut {
                    n: total,
                    k: k as u64,
                    last: Some(*kth),
                }
            })
        }
    };
    let (mut kept, mut pos, mut min_kept) = (0u64, 0u64, None::<f32>);
    let masks = scores
        .iter()
        .map(|a| {
            let m: BooleanArray = (0..a.len())
                .map(|i| {
                    let p = pos;
                    pos += 1;
                    let keep = !a.is_null(i)
                        && match (keep, cut) {
                            (Keep::Threshold(t), _) => a.value(i) >= t as f32,
                            (Keep::Buckets(set), _) => {
                                bucket_of(a.value(i)).is_some_and(|b| set.contains(b))
                            }
                            (_, Some(c)) => c.keeps(a.value(i), p),
                            _ => false,
                        };
                    if keep {
                        kept += 1;
                        min_kept = Some(min_kept.map_or(a.value(i), |m: f32| m.min(a.value(i))));
                    }
                    Some(keep)
                })
                .collect();
            m
        })
        .collect();
    Rethreshold {
        masks,
        kept,
        total,
        min_kept_score: min_kept,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rethreshold_threshold_and_top_fraction() {
        let a = Float32Array::from(vec![Some(1.0), None, Some(4.0)]);
        let b = Float32Array::from(vec![Some(3.0), Some(3.0), Some(0.5)]);
        let r = rethreshold(&[a.clone(), b.clone()], Keep::Threshold(3.0));
        assert_eq!(r.kept, 3);
        assert_eq!(r.total, 6);
        assert_eq!(r.masks[0], BooleanArray::from(vec![false, false, true]));
        assert_eq!(r.masks[1], BooleanArray::from(vec![true, true, false]));
        // Top half of 6 = 3: 4.0, then the two 3.0s.
        let r = rethreshold(&[a.clone(), b.clone()], Keep::TopFraction(0.5));
        assert_eq!(r.kept, 3);
        assert_eq!(r.min_kept_score, Some(3.0));
        // Top 2: 4.0 and the earlier 3.0 (ties by position).
        let r = rethreshold(&[a, b], Keep::TopFraction(0.3));
        assert_eq!(r.masks[1], BooleanArray::from(vec![true, false, false]));
        assert_eq!(r.kept, 2);
    }
}

/// What re-cutting a snapshot's stored scores would keep.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SnapshotCut {
    /// Documents in the snapshot's data files.
    pub total: u64,
    /// Documents the rule keeps.
    pub kept: u64,
    /// `kept / total`.
    pub kept_fraction: f64,
    /// Lowest kept score.
    pub min_kept_score: Option<f32>,
    /// Documents without a score (never kept).
    pub missing: u64,
    /// Data files read.
    pub files: usize,
}

/// Re-applies `keep` to a snapshot's stored scores, reading only the score column of
/// `dir/data/*.parquet` (files in name order, so top-fraction ties break by position).
pub fn rethreshold_snapshot(
    dir: &std::path::Path,
    keep: Keep,
    column: &str,
) -> Result<SnapshotCut, crate::Error> {
    use parquet::arrow::ProjectionMask;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let data = dir.join("data");
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&data)
        .map_err(|e| crate::Error::io(&data, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
        .collect();
    files.sort();
    let mut arrays = Vec::new();
    for p in &files {
        let corrupt = |m: String| crate::Error::Corrupt {
            path: p.clone(),
            message: m,
        };
        let f = std::fs::File::open(p).map_err(|e| crate::Error::io(p, e))?;
        let b = ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| corrupt(e.to_string()))?;
        let schema = b.parquet_schema();
        let idx = (0..schema.num_columns())
            .find(|&i| schema.column(i).name() == column)
            .ok_or_else(|| {
                corrupt(format!(
                    "no `{column}` column; was the snapshot made with a `score` step?"
                ))
            })?;
        let mask = ProjectionMask::leaves(schema, [idx]);
        let reader = b
            .with_projection(mask)
            .build()
            .map_err(|e| corrupt(e.to_string()))?;
        for (i, batch) in reader.enumerate() {
            let batch = batch.map_err(|e| corrupt(format!("batch {i}: {e}")))?;
            let c = arrow::compute::cast(batch.column(0), &DataType::Float32)
                .map_err(|e| corrupt(e.to_string()))?;
            arrays.push(c.as_primitive::<Float32Type>().clone());
        }
    }
    let r = rethreshold(&arrays, keep);
    let missing = arrays.iter().map(|a| a.null_count() as u64).sum();
    Ok(SnapshotCut {
        total: r.total,
        kept: r.kept,
        kept_fraction: if r.total > 0 {
            r.kept as f64 / r.total as f64
        } else {
            0.0
        },
        min_kept_score: r.min_kept_score,
        missing,
        files: files.len(),
    })
}
