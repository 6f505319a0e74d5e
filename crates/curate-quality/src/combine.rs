//! The `combine` step: several score columns into one, to ensemble the student with other
//! scorers (a `fasttext_classifier`, a second `score` step with another frozen model, ...).

use std::sync::Arc;

use arrow::array::{Array, AsArray, Float32Array, Int32Array};
use arrow::datatypes::{DataType, Float64Type};
use curate_core::columns::{Columns, Want};
use curate_core::{
    BuildEnv, Counters, DocBatch, Problems, Processor, Step, StepError, StepSpec, TaskContext,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Combine several numeric columns into one score or bucket column.
///
/// - `method = "max_bucket"` (Nemotron-CC): each input is a bucket column (the Int32
///   `quality_bucket` a `score` step with `buckets = N` writes, one per classifier); the result
///   (Int32) is the highest bucket any input gives the document. Null inputs are ignored; a
///   document with no bucket at all gets null.
/// - `method = "mean"`: the mean of the inputs (Float32).
/// - `method = "weighted"`: Σ weightᵢ · inputᵢ / Σ weightᵢ (Float32), `weights` one per input.
///
/// For `mean` and `weighted` a document with any null input gets null (a partial mean would not
/// be on the same footing as the others). Inputs should share a scale (calibrated scores, or
/// buckets of the same count); the step does not rescale them. Every value is computed from
/// the document's own row, so the result does not depend on tasks or threads.
///
/// ```toml
/// [[steps]]
/// type = "combine"
/// columns = ["quality_bucket", "edu_bucket"]
/// method = "max_bucket"
/// column = "mix_bucket"
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CombineConfig {
    /// The input columns (at least two; numeric).
    pub columns: Vec<String>,
    /// `max_bucket`, `mean` or `weighted`.
    pub method: Method,
    /// Weights of `weighted`, one per input column (non-negative, not all zero).
    #[serde(default)]
    pub weights: Option<Vec<f64>>,
    /// The column to add.
    #[serde(default = "default_column")]
    pub column: String,
}

fn default_column() -> String {
    "combined_score".into()
}

/// How `combine` joins its inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// The highest bucket (Int32).
    MaxBucket,
    /// The mean (Float32).
    Mean,
    /// The weighted mean (Float32).
    Weighted,
}

impl StepSpec for CombineConfig {
    const TYPE: &'static str = "combine";

    fn validate(&self, p: &mut Problems) {
        if self.columns.len() < 2 {
            p.push(
                "columns",
                format!(
                    "has {} column(s); combine needs at least two",
                    self.columns.len()
                ),
            );
        }
        for (i, c) in self.columns.iter().enumerate() {
            if c.is_empty() {
                p.push(&format!("columns[{i}]"), "is empty");
            } else if self.columns[..i].contains(c) {
                p.push(&format!("columns[{i}]"), format!("`{c}` is listed twice"));
            }
        }
        if self.column.is_empty() {
            p.push("column", "must not be empty");
        }
        match (&self.method, &self.weights) {
            (Method::Weighted, None) => p.push_hint(
                "weights",
                "is missing",
                "give one weight per input column, e.g. weights = [0.7, 0.3]",
            ),
            (Method::Weighted, Some(w)) => {
                if w.len() != self.columns.len() {
                    p.push(
                        "weights",
                        format!("has {} weights for {} columns", w.len(), self.columns.len()),
                    );
                }
                if w.iter().any(|x| !x.is_finite() || *x < 0.0) || w.iter().all(|x| *x == 0.0) {
                    p.push(
                        "weights",
                        format!("{w:?}: weights must be finite, non-negative and not all zero"),
                    );
                }
            }
            (_, Some(_)) => p.push("weights", "is only used with method = \"weighted\""),
            _ => {}
        }
    }

    fn build(&self, _env: &BuildEnv) -> Result<Box<dyn Step>, StepError> {
        let weights = match self.method {
            Method::Weighted => self.weights.clone().unwrap_or_default(),
            _ => vec![1.0; self.columns.len()],
        };
        Ok(Box::new(Combine(Arc::new(Runtime {
            cfg: self.clone(),
            weights,
        }))))
    }
}

struct Runtime {
    cfg: CombineConfig,
    weights: Vec<f64>,
}

/// The built `combine` step.
struct Combine(Arc<Runtime>);

impl Step for Combine {
    fn kind(&self) -> &'static str {
        CombineConfig::TYPE
    }

    fn columns(&self, c: &mut Columns<'_>) {
        for name in &self.0.cfg.columns {
            c.need("columns", name, Want::Numeric);
        }
        let out = match self.0.cfg.method {
            Method::MaxBucket => DataType::Int32,
            Method::Mean | Method::Weighted => DataType::Float32,
        };
        c.add(Some("column"), &self.0.cfg.column, out);
    }

    fn reasons(&self) -> Vec<String> {
        Vec::new()
    }

    fn processor(&self, _cx: &TaskContext<'_>) -> Result<Box<dyn Processor>, StepError> {
        Ok(Box::new(CombineProcessor {
            rt: self.0.clone(),
            inputs: Vec::new(),
        }))
    }
}

struct CombineProcessor {
    rt: Arc<Runtime>,
    /// The inputs of the current batch, cast to Float64.
    inputs: Vec<arrow::array::Float64Array>,
}

impl Processor for CombineProcessor {
    fn process(&mut self, batch: &mut DocBatch, counters: &mut Counters) -> Result<(), StepError> {
        let n = batch.len();
        self.inputs.clear();
        for name in &self.rt.cfg.columns {
            let col = batch
                .column(name)
                .ok_or_else(|| StepError::Data(format!("combine: column `{name}` is missing")))?;
            let c = arrow::compute::cast(col, &DataType::Float64).map_err(|e| {
                StepError::Data(format!("combine: column `{name}` is not numeric: {e}"))
            })?;
            self.inputs.push(c.as_primitive::<Float64Type>().clone());
        }
        let mut nulls = 0u64;
        let out: Arc<dyn Array> = match self.rt.cfg.method {
            Method::MaxBucket => {
                let v: Int32Array = (0..n)
                    .map(|i| {
                        let m = self
                            .inputs
                            .iter()
                            .filter(|a| !a.is_null(i))
                            .map(|a| a.value(i))
                            .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
                        nulls += m.is_none() as u64;
                        m.map(|x| x as i32)
                    })
                    .collect();
                Arc::new(v)
            }
            Method::Mean | Method::Weighted => {
                let total: f64 = self.rt.weights.iter().sum();
                let v: Float32Array = (0..n)
                    .map(|i| {
                        if self.inputs.iter().any(|a| a.is_null(i)) {
                            nulls += 1;
                            return None;
                        }
                        let s: f64 = self
                            .inputs
                            .iter()
                            .zip(&self.rt.weights)
                            .map(|(a, w)| a.value(i) * w)
                            .sum();
                        Some((s / total) as f32)
                    })
                    .collect();
                Arc::new(v)
            }
        };
        counters.add("combined", n as f64);
        counters.add("combined_null", nulls as f64);
        batch.set_column(&self.rt.cfg.column, out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(method: Method, weights: Option<Vec<f64>>) -> CombineConfig {
        CombineConfig {
            columns: vec!["a".into(), "b".into()],
            method,
            weights,
            column: "c".into(),
        }
    }

    #[test]
    fn validation_names_every_problem() {
        let mut p = Problems::new();
        CombineConfig {
            columns: vec!["a".into(), "a".into()],
            method: Method::Weighted,
            weights: Some(vec![1.0, -1.0, 0.0]),
            column: String::new(),
        }
        .validate(&mut p);
        let fields: Vec<&str> = p.items().iter().map(|x| x.field.as_str()).collect();
        assert_eq!(fields, ["columns[1]", "column", "weights", "weights"]);
        let mut p = Problems::new();
        cfg(Method::Mean, Some(vec![1.0, 1.0])).validate(&mut p);
        assert_eq!(p.items().len(), 1);
        let mut p = Problems::new();
        cfg(Method::Weighted, None).validate(&mut p);
        assert_eq!(p.items().len(), 1);
        let mut p = Problems::new();
        cfg(Method::MaxBucket, None).validate(&mut p);
        assert!(p.items().is_empty());
    }
}
