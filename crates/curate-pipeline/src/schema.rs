//! Column ownership, checked before any data is read: every step's declared columns
//! ([`Step::columns`](curate_core::Step::columns)) against the input schema (from footers) and
//! the columns earlier steps add.
//!
//! The rules:
//! - a column a step needs must exist with the right kind of values where the step runs;
//! - a column a step adds must not already exist (in the input or from an earlier step) unless
//!   the step says `overwrite = true`; the text column and the internal key column are never
//!   replaced; a column a step writes only on the rows it drops never shares a name with a
//!   data column;
//! - `__curate_key` is reserved: an input that has it is refused;
//! - with `[output] exclusion = true`, the exclusion files add `step` and `reason` (and the
//!   columns steps write on the rows they drop, such as `duplicate_of`): an input column of such
//!   a name is refused too.
//!
//! The result is the schema of `data/` (input columns, then added columns in the order steps
//! add them) and of `excluded/` (every data column, nullable, then the drop-only columns,
//! `step` and `reason`).

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use curate_core::columns::{Column, Columns, Origin};
use curate_core::{Problem, Problems, Step};

use crate::config::Config;

/// Name of the hidden key column in intermediate parts.
pub const KEY_COLUMN: &str = "__curate_key";

/// Columns the exclusion files add after the document's columns.
pub const EXCLUSION_COLUMNS: [&str; 2] = ["step", "reason"];

/// The schemas a run writes, derived from the input schema and the steps' declarations.
#[derive(Debug, Clone)]
pub struct Schemas {
    /// Columns of documents as read.
    pub input: SchemaRef,
    /// Columns of `data/` files.
    pub data: SchemaRef,
    /// Columns of `excluded/` files (without the internal key).
    pub exclusion: SchemaRef,
    /// Per step: the columns it writes only on the rows it drops.
    pub on_dropped: Vec<Vec<String>>,
}

/// Checks every step's columns; returns the schemas or every problem found.
pub fn check(
    input: &SchemaRef,
    steps: &[Box<dyn Step>],
    config: &Config,
) -> Result<Schemas, Vec<Problem>> {
    let mut p = Problems::new();
    let text = config.input.text_column.as_str();
    p.set_scope("input");
    if input.field_with_name(KEY_COLUMN).is_ok() {
        p.push_hint(
            "paths",
            format!("the input has a column `{KEY_COLUMN}`, a name curate reserves for its internal document keys"),
            "leave it out with `[input] columns = [...]`",
        );
    }
    let mut current: Vec<Column> = input
        .fields()
        .iter()
        .filter(|f| f.name() != KEY_COLUMN)
        .map(|f| Column {
            name: f.name().clone(),
            data_type: f.data_type().clone(),
            origin: Origin::Input,
        })
        .collect();
    let mut scales: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    // drop-only columns: name → (type, first step writing it)
    let mut dropped_cols: Vec<(String, DataType, usize)> = Vec::new();
    let mut on_dropped = vec![Vec::new(); steps.len()];
    for (i, step) in steps.iter().enumerate() {
        let entry = &config.steps[i];
        p.set_scope(format!("steps[{i}] ({})", step.kind()));
        let mut view = Columns::new(&current, text, &scales);
        step.columns(&mut view);
        let (added, new_scales, problems) = view.into_parts();
        for c in problems {
            match c.hint {
                Some(h) => p.push_hint(&c.field, c.message, h),
                None => p.push(&c.field, c.message),
            }
        }
        let origin = Origin::Step {
            index: i,
            kind: step.kind().to_string(),
        };
        for (k, a) in added.iter().enumerate() {
            let field = a.option.unwrap_or("");
            if added[..k].iter().any(|b| b.name == a.name) {
                p.push(field, format!("adds column `{}` twice", a.name));
                continue;
            }
            if a.name == KEY_COLUMN || a.name == text {
                let what = if a.name == text {
                    "the text column"
                } else {
                    "reserved for curate's internal document keys"
                };
                let hint = match a.option {
                    Some(o) => format!("choose another name with `{o} = \"...\"`"),
                    None => "this step's column name cannot be changed".to_string(),
                };
                p.push_hint(
                    field,
                    format!(
                        "adds column `{}`, which is {what}; it can never be replaced",
                        a.name
                    ),
                    hint,
                );
                continue;
            }
            if a.on_dropped {
                on_dropped[i].push(a.name.clone());
                if let Some(c) = current.iter().find(|c| c.name == a.name) {
                    p.push_hint(
                        field,
                        format!(
                            "writes column `{}` on the documents it drops, but {} already has a column of that name",
                            a.name, c.origin
                        ),
                        "rename that column, or leave it out with `[input] columns = [...]`",
                    );
                }
                match dropped_cols.iter().find(|(n, _, _)| *n == a.name) {
                    Some((_, t, _)) if *t != a.data_type => p.push(
                        field,
                        format!(
                            "writes `{}` on dropped documents as {}, but an earlier step writes it as {t}",
                            a.name, a.data_type
                        ),
                    ),
                    Some(_) => {}
                    None => dropped_cols.push((a.name.clone(), a.data_type.clone(), i)),
                }
                continue;
            }
            match current.iter().position(|c| c.name == a.name) {
                Some(j) if !entry.overwrite => {
                    let rename = match a.option {
                        Some(o) => format!("rename it with `{o} = \"...\"`, or "),
                        None => String::new(),
                    };
                    p.push_hint(
                        field,
                        format!(
                            "adds column `{}`, which {} already has; it would be overwritten",
                            a.name, current[j].origin
                        ),
                        format!("{rename}set `overwrite = true` on this step to replace it"),
                    );
                }
                Some(j) => {
                    current[j] = Column {
                        name: a.name.clone(),
                        data_type: a.data_type.clone(),
                        origin: origin.clone(),
                    };
                }
                None => current.push(Column {
                    name: a.name.clone(),
                    data_type: a.data_type.clone(),
                    origin: origin.clone(),
                }),
            }
        }
        for (k, r) in new_scales {
            scales.insert(k, r);
        }
    }
    // drop-only columns must not collide with data columns added after them either
    for (name, _, i) in &dropped_cols {
        if let Some(c) = current.iter().find(|c| &c.name == name)
            && c.origin != Origin::Input
        {
            p.set_scope(format!("steps[{i}] ({})", steps[*i].kind()));
            p.push(
                "",
                format!(
                    "writes `{name}` on the documents it drops, but {} adds a column of that name",
                    c.origin
                ),
            );
        }
    }
    if config.output.exclusion {
        p.set_scope("output");
        for name in EXCLUSION_COLUMNS {
            if let Some(c) = current.iter().find(|c| c.name == name) {
                p.push_hint(
                    "exclusion",
                    format!(
                        "the exclusion files add a column `{name}` (the step and reason of each drop), but {} already has one",
                        c.origin
                    ),
                    "leave that column out with `[input] columns = [...]`, rename it, or set `exclusion = false`",
                );
            }
        }
    }
    if !p.is_empty() {
        return Err(p.into_items());
    }
    let data = Arc::new(Schema::new(
        current
            .iter()
            .map(|c| {
                let nullable = input
                    .field_with_name(&c.name)
                    .map(|f| f.is_nullable() || c.origin != Origin::Input)
                    .unwrap_or(true);
                Field::new(&c.name, c.data_type.clone(), nullable)
            })
            .collect::<Vec<_>>(),
    ));
    let mut ex: Vec<Field> = current
        .iter()
        .map(|c| Field::new(&c.name, c.data_type.clone(), true))
        .collect();
    for (name, t, _) in &dropped_cols {
        if !ex.iter().any(|f| f.name() == name) {
            ex.push(Field::new(name, t.clone(), true));
        }
    }
    ex.push(Field::new("step", DataType::Utf8, false));
    ex.push(Field::new("reason", DataType::Utf8, false));
    Ok(Schemas {
        input: input.clone(),
        data,
        exclusion: Arc::new(Schema::new(ex)),
        on_dropped,
    })
}
