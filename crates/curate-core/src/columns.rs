//! Column ownership: what each step reads from and adds to the documents' columns, declared by
//! the step and checked by the pipeline against the input schema (read from file footers)
//! before any data is read or written.
//!
//! A step describes itself in [`Step::columns`](crate::Step::columns) through a [`Columns`]
//! view of the columns documents have when they reach it:
//!
//! - [`need`](Columns::need) a column of some kind (the `url` of `url_filter`, a stratum column
//!   of `sample`, the numeric score of `quality_threshold`): a missing or mistyped column is a
//!   problem naming the option that names it;
//! - [`add`](Columns::add) a column (`quality_score`, `split`, a cluster id): the pipeline
//!   refuses it when the input or an earlier step already has a column of that name, unless the
//!   step says `overwrite = true`;
//! - [`add_on_dropped`](Columns::add_on_dropped) a column written only on the rows the step
//!   drops, in the exclusion output (`duplicate_of`);
//! - record and read a [`scale`](Columns::set_scale): the value range a column (or a model
//!   trained on it) has, so a threshold outside it is caught before any work is done.
//!
//! Nothing here touches data: the checks are over names and Arrow types only.

use std::collections::BTreeMap;

use arrow::datatypes::DataType;

/// Where a column comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The input files.
    Input,
    /// A step, by position and type.
    Step {
        /// Position in the pipeline.
        index: usize,
        /// The step's type.
        kind: String,
    },
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Input => f.write_str("the input"),
            Origin::Step { index, kind } => write!(f, "steps[{index}] ({kind})"),
        }
    }
}

/// A column documents have at some point of the pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// Its Arrow type.
    pub data_type: DataType,
    /// Who wrote it.
    pub origin: Origin,
}

/// Whether `t` holds strings: Utf8, LargeUtf8, Utf8View, or a dictionary of one of them (the
/// readers hand every such input column on as Utf8).
pub fn is_string(t: &DataType) -> bool {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, v) => {
            matches!(
                **v,
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
            )
        }
        _ => false,
    }
}

/// What values a step needs in a column it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// Any type.
    Any,
    /// Strings ([`is_string`]).
    String,
    /// Numbers (integers or floats).
    Numeric,
    /// Strings or integers (values that name a group: strata, ids).
    Key,
}

impl Want {
    /// Whether `t` satisfies the want.
    pub fn accepts(self, t: &DataType) -> bool {
        let string = is_string(t);
        match self {
            Want::Any => true,
            Want::String => string,
            Want::Numeric => t.is_numeric(),
            Want::Key => string || t.is_integer() || matches!(t, DataType::Boolean),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Want::Any => "a column",
            Want::String => "a string column",
            Want::Numeric => "a numeric column",
            Want::Key => "a string or integer column",
        }
    }
}

/// A column a step declares it adds.
#[derive(Debug, Clone, PartialEq)]
pub struct Added {
    /// The column's name.
    pub name: String,
    /// Its Arrow type.
    pub data_type: DataType,
    /// The step option that names it (`column`, `cluster_id_column`), for the hint when it
    /// collides; `None` when the name is fixed.
    pub option: Option<&'static str>,
    /// Written only on the rows the step drops (exclusion output), never in `data/`.
    pub on_dropped: bool,
}

/// A problem a step found with the columns it sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnProblem {
    /// The step option concerned (may be empty).
    pub field: String,
    /// What is wrong.
    pub message: String,
    /// The way out, if any.
    pub hint: Option<String>,
}

/// A score column's name and its declared (low, high) scale.
pub type NamedScale = (String, (f64, f64));

/// The columns documents have when they reach a step, and what the step declares about them.
#[derive(Debug)]
pub struct Columns<'a> {
    current: &'a [Column],
    text: &'a str,
    scales: &'a BTreeMap<String, (f64, f64)>,
    added: Vec<Added>,
    new_scales: Vec<(String, (f64, f64))>,
    problems: Vec<ColumnProblem>,
}

impl<'a> Columns<'a> {
    /// A view of `current` (the columns documents have when they reach the step), the text
    /// column's name and the scales recorded by earlier steps.
    pub fn new(
        current: &'a [Column],
        text: &'a str,
        scales: &'a BTreeMap<String, (f64, f64)>,
    ) -> Self {
        Self {
            current,
            text,
            scales,
            added: Vec::new(),
            new_scales: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// The column named `name`, if documents have it here.
    pub fn get(&self, name: &str) -> Option<&Column> {
        self.current.iter().find(|c| c.name == name)
    }

    /// Every column documents have here, in order.
    pub fn all(&self) -> &[Column] {
        self.current
    }

    /// The text column's name.
    pub fn text(&self) -> &str {
        self.text
    }

    /// Requires column `name` (named by the step option `option`) to exist with values of kind
    /// `want`; records a problem otherwise.
    pub fn need(&mut self, option: &str, name: &str, want: Want) -> Option<&Column> {
        let Some(i) = self.current.iter().position(|c| c.name == name) else {
            let names: Vec<&str> = self.current.iter().map(|c| c.name.as_str()).collect();
            let hint = crate::config::did_you_mean(name, names.iter().copied())
                .map(|s| format!("did you mean `{s}`?"));
            self.problems.push(ColumnProblem {
                field: option.to_string(),
                message: format!(
                    "needs {} `{name}`, which the documents do not have here (columns: {})",
                    want.describe(),
                    names.join(", ")
                ),
                hint,
            });
            return None;
        };
        let c = &self.current[i];
        if !want.accepts(&c.data_type) {
            self.problems.push(ColumnProblem {
                field: option.to_string(),
                message: format!(
                    "needs {} but `{name}` (from {}) is {}",
                    want.describe(),
                    c.origin,
                    c.data_type
                ),
                hint: None,
            });
            return None;
        }
        Some(&self.current[i])
    }

    /// Declares a column the step adds to every document. `option` names the step option that
    /// sets its name (so a collision can say how to rename it), `None` if the name is fixed.
    pub fn add(&mut self, option: Option<&'static str>, name: &str, data_type: DataType) {
        self.added.push(Added {
            name: name.to_string(),
            data_type,
            option,
            on_dropped: false,
        });
    }

    /// Declares a column the step writes only on the rows it drops (in the exclusion output).
    pub fn add_on_dropped(&mut self, name: &str, data_type: DataType) {
        self.added.push(Added {
            name: name.to_string(),
            data_type,
            option: None,
            on_dropped: true,
        });
    }

    /// Records that the values of `key` (a column name, or a name such as `model:quality`)
    /// lie in `[lo, hi]`, for later steps' checks.
    pub fn set_scale(&mut self, key: &str, lo: f64, hi: f64) {
        self.new_scales.push((key.to_string(), (lo, hi)));
    }

    /// The range recorded for `key` by this or an earlier step, if known.
    pub fn scale(&self, key: &str) -> Option<(f64, f64)> {
        self.new_scales
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, r)| *r)
            .or_else(|| self.scales.get(key).copied())
    }

    /// Records a problem with option `field`.
    pub fn problem(&mut self, field: &str, message: impl Into<String>) {
        self.problems.push(ColumnProblem {
            field: field.to_string(),
            message: message.into(),
            hint: None,
        });
    }

    /// Records a problem with a hint.
    pub fn problem_hint(
        &mut self,
        field: &str,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.problems.push(ColumnProblem {
            field: field.to_string(),
            message: message.into(),
            hint: Some(hint.into()),
        });
    }

    /// What the step declared: added columns, scales and problems.
    pub fn into_parts(self) -> (Vec<Added>, Vec<NamedScale>, Vec<ColumnProblem>) {
        (self.added, self.new_scales, self.problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols() -> Vec<Column> {
        vec![
            Column {
                name: "text".into(),
                data_type: DataType::Utf8,
                origin: Origin::Input,
            },
            Column {
                name: "score".into(),
                data_type: DataType::Utf8,
                origin: Origin::Input,
            },
        ]
    }

    #[test]
    fn need_reports_missing_and_mistyped_columns() {
        let c = cols();
        let scales = BTreeMap::new();
        let mut v = Columns::new(&c, "text", &scales);
        assert!(v.need("column", "score", Want::Numeric).is_none());
        assert!(v.need("url_column", "url", Want::String).is_none());
        assert!(v.need("column", "text", Want::String).is_some());
        let (_, _, problems) = v.into_parts();
        assert_eq!(problems.len(), 2);
        assert!(problems[0].message.contains("numeric"), "{problems:?}");
        assert!(problems[0].message.contains("Utf8"), "{problems:?}");
        assert!(problems[1].message.contains("`url`"), "{problems:?}");
    }

    #[test]
    fn scales_flow_from_earlier_steps_and_this_one() {
        let c = cols();
        let mut scales = BTreeMap::new();
        scales.insert("teacher_score".to_string(), (0.0, 5.0));
        let mut v = Columns::new(&c, "text", &scales);
        assert_eq!(v.scale("teacher_score"), Some((0.0, 5.0)));
        v.set_scale("teacher_score", 0.0, 1.0);
        assert_eq!(v.scale("teacher_score"), Some((0.0, 1.0)));
        assert_eq!(v.scale("other"), None);
    }
}
