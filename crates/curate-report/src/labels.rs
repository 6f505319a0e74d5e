//! The teacher's labels as published in `labels/labels.parquet`: the score distribution per
//! split, label status, and what labeling cost (tokens by kind, USD).

use std::collections::BTreeMap;
use std::path::Path;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Float32Type, Float64Type, UInt64Type};
use serde::Serialize;

use crate::ReportError;

/// Where the label step publishes its labels, relative to the snapshot root.
pub const LABELS_FILE: &str = curate_snapshot::artifact::LABELS;

/// Distinct scores shown one bar each; past this, scores are binned.
const MAX_DISTINCT: usize = 12;

/// What the labels say.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LabelSummary {
    /// Labels.
    pub rows: u64,
    /// Labels per split, per score value (scores as written with 3 decimals), ascending.
    pub scores: BTreeMap<String, BTreeMap<String, u64>>,
    /// Labels per status.
    pub status: BTreeMap<String, u64>,
    /// Labels per model (or annotator).
    pub models: BTreeMap<String, u64>,
    /// Input tokens (uncached).
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Input tokens written to the prompt cache.
    pub cache_creation_input_tokens: u64,
    /// Input tokens read from the prompt cache.
    pub cache_read_input_tokens: u64,
    /// Cost of the labels in USD.
    pub cost_usd: f64,
    /// Labels per selection (how the `sample` step chose the document: `random`,
    /// `uncertainty-round-N`; `(not recorded)` for rows without one, such as reference
    /// positives). Empty when no row records a selection.
    pub selections: BTreeMap<String, SelectionCount>,
}

/// The labels bought under one selection.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SelectionCount {
    /// Rows with a score.
    pub labeled: u64,
    /// Rows without one (refused, over budget, failed).
    pub unlabeled: u64,
    /// What these rows cost in USD.
    pub cost_usd: f64,
}

/// The selection key of rows whose labels file records no selection.
pub const NO_SELECTION: &str = "(not recorded)";

/// Score value key: 3 decimals, so `0.0` and `0` are one bar and keys sort numerically when
/// they share a sign and width (scores are non-negative).
fn score_key(v: f64) -> String {
    format!("{v:08.3}")
}

/// Reads `labels/labels.parquet` under `root`, or `None` when the run published none.
pub fn read(root: &Path) -> Result<Option<LabelSummary>, ReportError> {
    let path = root.join(LABELS_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let mut s = LabelSummary::default();
    let mut raw: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut distinct: BTreeMap<String, ()> = BTreeMap::new();
    let cols = [
        "split",
        "selection",
        "score",
        "status",
        "model",
        "input_tokens",
        "output_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
        "cost_usd",
    ];
    crate::profile::scan(&path, "split", &cols, |b| {
        let n = b.num_rows();
        s.rows += n as u64;
        let split = b.column_by_name("split").map(|c| c.as_string::<i32>());
        // an optional text column (absent, or of another type in an older labels file: None)
        let utf8 = |name: &str| {
            b.column_by_name(name)
                .filter(|c| c.data_type() == &DataType::Utf8)
                .map(|c| c.as_string::<i32>())
        };
        let (status, model, selection) = (utf8("status"), utf8("model"), utf8("selection"));
        let cost = b
            .column_by_name("cost_usd")
            .filter(|c| c.data_type() == &DataType::Float64)
            .map(|c| c.as_primitive::<Float64Type>());
        let score: Option<Vec<Option<f64>>> =
            b.column_by_name("score").and_then(|c| match c.data_type() {
                DataType::Float32 => Some(
                    c.as_primitive::<Float32Type>()
                        .iter()
                        .map(|v| v.map(f64::from))
                        .collect(),
                ),
                DataType::Float64 => Some(c.as_primitive::<Float64Type>().iter().collect()),
                _ => None,
            });
        for i in 0..n {
            let sp = split
                .filter(|c| !c.is_null(i))
                .map_or("(none)", |c| c.value(i))
                .to_string();
            let scored = score
                .as_ref()
                .and_then(|v| v[i])
                .is_some_and(|v| !v.is_nan());
            if let Some(c) = selection {
                let sel = if c.is_null(i) {
                    NO_SELECTION
                } else {
                    c.value(i)
                };
                let e = s.selections.entry(sel.to_string()).or_default();
                if scored {
                    e.labeled += 1;
                } else {
                    e.unlabeled += 1;
                }
                e.cost_usd += cost.filter(|c| !c.is_null(i)).map_or(0.0, |c| c.value(i));
            }
            if let Some(v) = score.as_ref().and_then(|v| v[i]).filter(|v| !v.is_nan()) {
                if distinct.len() <= MAX_DISTINCT {
                    distinct.insert(score_key(v), ());
                }
                raw.entry(sp).or_default().push(v);
            } else {
                *s.scores
                    .entry(sp)
                    .or_default()
                    .entry("unlabeled".into())
                    .or_default() += 1;
            }
            if let Some(c) = status.filter(|c| !c.is_null(i)) {
                *s.status.entry(c.value(i).to_string()).or_default() += 1;
            }
            if let Some(c) = model.filter(|c| !c.is_null(i)) {
                *s.models.entry(c.value(i).to_string()).or_default() += 1;
            }
        }
        let sum_u64 = |name: &str| -> u64 {
            b.column_by_name(name)
                .filter(|c| c.data_type() == &DataType::UInt64)
                .map(|c| c.as_primitive::<UInt64Type>().iter().flatten().sum())
                .unwrap_or(0)
        };
        s.input_tokens += sum_u64("input_tokens");
        s.output_tokens += sum_u64("output_tokens");
        s.cache_creation_input_tokens += sum_u64("cache_creation_input_tokens");
        s.cache_read_input_tokens += sum_u64("cache_read_input_tokens");
        if let Some(c) = cost {
            s.cost_usd += c.iter().flatten().sum::<f64>();
        }
        Ok(())
    })?;
    // Few distinct scores (binary or a small Likert scale): one bar each. Otherwise ten equal
    // bins over the observed range.
    let all: Vec<f64> = raw.values().flatten().copied().collect();
    let binned = distinct.len() > MAX_DISTINCT;
    let (lo, hi) = all
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    for (split, vals) in raw {
        let m = s.scores.entry(split).or_default();
        for v in vals {
            let key = if binned && hi > lo {
                let w = (hi - lo) / 10.0;
                let b = (((v - lo) / w).floor() as usize).min(9);
                format!(
                    "{}–{}",
                    fmt3(lo + w * b as f64),
                    fmt3(lo + w * (b + 1) as f64)
                )
            } else {
                score_key(v)
            };
            *m.entry(key).or_default() += 1;
        }
    }
    if s.selections.keys().all(|k| k == NO_SELECTION) {
        s.selections.clear();
    }
    Ok(Some(s))
}

fn fmt3(v: f64) -> String {
    format!("{v:08.3}")
}

/// A score key as shown on an axis (`0001.000` → `1`).
pub fn show_key(k: &str) -> String {
    k.split('–')
        .map(|p| match p.parse::<f64>() {
            Ok(v) => {
                let s = format!("{v:.3}");
                s.trim_end_matches('0').trim_end_matches('.').to_string()
            }
            Err(_) => p.to_string(),
        })
        .collect::<Vec<_>>()
        .join("–")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_numerically_and_show_plainly() {
        let mut k = [score_key(10.0), score_key(2.0), score_key(0.5)];
        k.sort();
        let shown: Vec<String> = k.iter().map(|k| show_key(k)).collect();
        assert_eq!(shown, ["0.5", "2", "10"]);
        assert_eq!(show_key("unlabeled"), "unlabeled");
    }
}

#[cfg(test)]
mod read_tests {
    use std::sync::Arc;

    use arrow::array::{
        ArrayRef, Float32Array, Float64Array, RecordBatch, StringArray, UInt64Array,
    };
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    /// Writes a labels file shaped like the label step's (through the io crate's sink).
    fn write_labels(root: &Path) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("split", DataType::Utf8, false),
            Field::new("selection", DataType::Utf8, true),
            Field::new("score", DataType::Float32, true),
            Field::new("status", DataType::Utf8, false),
            Field::new("model", DataType::Utf8, false),
            Field::new("input_tokens", DataType::UInt64, false),
            Field::new("output_tokens", DataType::UInt64, false),
            Field::new("cache_creation_input_tokens", DataType::UInt64, false),
            Field::new("cache_read_input_tokens", DataType::UInt64, false),
            Field::new("cost_usd", DataType::Float64, false),
        ]));
        let cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec![
                "train", "train", "holdout", "train",
            ])),
            Arc::new(StringArray::from(vec![
                Some("random"),
                Some("uncertainty-round-2"),
                Some("random"),
                None,
            ])),
            Arc::new(Float32Array::from(vec![
                Some(3.0),
                Some(1.0),
                Some(3.0),
                None,
            ])),
            Arc::new(StringArray::from(vec!["ok", "ok", "ok", "budget"])),
            Arc::new(StringArray::from(vec!["m", "m", "m", "m"])),
            Arc::new(UInt64Array::from(vec![100, 200, 300, 0])),
            Arc::new(UInt64Array::from(vec![5, 5, 5, 0])),
            Arc::new(UInt64Array::from(vec![1000, 0, 0, 0])),
            Arc::new(UInt64Array::from(vec![0, 1000, 1000, 0])),
            Arc::new(Float64Array::from(vec![0.25, 0.125, 0.125, 0.0])),
        ];
        let batch = RecordBatch::try_new(schema.clone(), cols).unwrap();
        std::fs::create_dir_all(root.join("labels")).unwrap();
        let props = curate_io::write::OutputProps {
            zstd_level: 3,
            row_group_rows: 2,
            data_page_bytes: 1 << 20,
            created_by: "test".into(),
        };
        let mut sink =
            curate_io::write::ParquetSink::create(&root.join(LABELS_FILE), schema, &props).unwrap();
        sink.write(batch).unwrap();
        sink.finish().unwrap();
    }

    #[test]
    fn labels_give_scores_per_split_tokens_and_cost() {
        let tmp = tempfile::tempdir().unwrap();
        write_labels(tmp.path());
        let s = read(tmp.path()).unwrap().unwrap();
        assert_eq!(s.rows, 4);
        assert_eq!(s.scores["train"][&score_key(3.0)], 1);
        assert_eq!(s.scores["train"][&score_key(1.0)], 1);
        assert_eq!(s.scores["train"]["unlabeled"], 1);
        assert_eq!(s.scores["holdout"][&score_key(3.0)], 1);
        assert_eq!(s.status["budget"], 1);
        assert_eq!(
            (
                s.input_tokens,
                s.output_tokens,
                s.cache_creation_input_tokens,
                s.cache_read_input_tokens
            ),
            (600, 15, 1000, 2000)
        );
        assert_eq!(s.cost_usd, 0.5);
        let sel = |k: &str| s.selections[k].clone();
        assert_eq!(
            sel("random"),
            SelectionCount {
                labeled: 2,
                unlabeled: 0,
                cost_usd: 0.375
            }
        );
        assert_eq!(
            sel("uncertainty-round-2"),
            SelectionCount {
                labeled: 1,
                unlabeled: 0,
                cost_usd: 0.125
            }
        );
        assert_eq!(
            sel(NO_SELECTION),
            SelectionCount {
                labeled: 0,
                unlabeled: 1,
                cost_usd: 0.0
            }
        );
        assert!(read(&tmp.path().join("none")).unwrap().is_none());
    }
}
