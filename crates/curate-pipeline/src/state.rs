//! The run state file: fingerprints of the config, the inputs and the task layout, written when
//! a run starts. A later run (or `curate task`) in the same directory resumes only if all three
//! match; otherwise it refuses, saying what changed, unless asked to start over.

use std::path::Path;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::PipelineError;
use crate::layout::Layout;

pub use curate_snapshot::{InputEntry, ResourceEntry};

/// The state of a started run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// This run's id: chosen when the run starts (and again after `--fresh`), carried by every
    /// completion record and naming the run's work directory, so nothing of another run in the
    /// same directory (a concurrent `--fresh`, a straggling cluster task) is ever taken for
    /// this run's.
    #[serde(default)]
    pub run_id: String,
    /// Config fingerprint.
    pub config_fingerprint: String,
    /// The fingerprinted config itself, so a refusal can say which fields changed.
    #[serde(default)]
    pub config: serde_json::Value,
    /// Inputs with content hashes.
    pub inputs: Vec<InputEntry>,
    /// Modification times (ns) of the inputs when hashed, to skip re-hashing unchanged files.
    pub mtimes: Vec<u128>,
    /// Task layout: stage names and task counts.
    pub stages: Vec<(String, usize)>,
    /// The files the steps read when they were built (models, tokenizers, benchmarks, label
    /// files, earlier snapshots' indexes), with content hashes; `None` in a run started by a
    /// curate that did not record them.
    #[serde(default)]
    pub resources: Option<Vec<ResourceEntry>>,
    /// Their modification times (or object version tokens) when hashed, as `mtimes`.
    #[serde(default)]
    pub resource_mtimes: Vec<u128>,
}

fn mtime(p: &Path) -> u128 {
    std::fs::metadata(p)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

impl State {
    /// Reads the state of `layout`, if a run was started there.
    pub fn load(layout: &Layout) -> Result<Option<State>, PipelineError> {
        match std::fs::read(layout.state()) {
            Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| {
                PipelineError::Refused(format!(
                    "{}: damaged run state ({e})",
                    layout.state().display()
                ))
                .with_hint("pass --fresh to discard this run and start over")
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(PipelineError::io(
                "reading run state",
                curate_io::IoError::os(layout.state(), e),
            )),
        }
    }

    /// An input's (modification time, size) now: for an object, its version token (ETag,
    /// modification time) stands in for the mtime. (0, 0) when it cannot be read.
    pub fn stamp(p: &Path) -> Result<(u128, u64), PipelineError> {
        Ok(match curate_io::store::ObjectUrl::from_path(p) {
            Some(Ok(url)) => curate_io::store::head(&url)
                .map_err(|e| PipelineError::io("hashing inputs", e))?
                .map(|o| (o.version, o.size))
                .unwrap_or((0, 0)),
            _ => (mtime(p), std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)),
        })
    }

    /// Hashes inputs (in parallel), reusing `previous` hashes of files whose size and mtime
    /// did not change.
    pub fn inputs(
        paths: &[&Path],
        previous: Option<&State>,
    ) -> Result<(Vec<InputEntry>, Vec<u128>), PipelineError> {
        let out: Result<Vec<(InputEntry, u128)>, PipelineError> = paths
            .par_iter()
            .map(|p| {
                let path = p.to_string_lossy().into_owned();
                let (m, size) = Self::stamp(p)?;
                if let Some(prev) = previous
                    && let Some(i) = prev.inputs.iter().position(|e| e.path == path)
                    && prev.inputs[i].bytes == size
                    && prev.mtimes.get(i) == Some(&m)
                    && m != 0
                {
                    return Ok((prev.inputs[i].clone(), m));
                }
                let (bytes, h) = curate_io::hash::hash_file(p)
                    .map_err(|e| PipelineError::io("hashing inputs", e))?;
                Ok((
                    InputEntry {
                        path,
                        bytes,
                        xxh3_128: curate_core::hash::hex128(h),
                    },
                    m,
                ))
            })
            .collect();
        Ok(out?.into_iter().unzip())
    }

    /// Commits the state file.
    pub fn commit(&self, layout: &Layout) -> Result<(), PipelineError> {
        let json = serde_json::to_vec_pretty(self).expect("json");
        curate_io::atomic::write_atomic(&layout.state(), &json)
            .map_err(|e| PipelineError::io("writing run state", e))
    }

    /// What differs between a started run and this one (empty = same run).
    pub fn differences(&self, other: &State) -> Vec<String> {
        let mut d = Vec::new();
        if self.config_fingerprint != other.config_fingerprint {
            let mut fields = Vec::new();
            json_changes("", &self.config, &other.config, &mut fields);
            if self.config.is_null() || fields.is_empty() {
                d.push(format!(
                    "the config changed (fingerprint {} → {})",
                    short(&self.config_fingerprint),
                    short(&other.config_fingerprint)
                ));
            } else {
                let shown = fields.len().min(12);
                d.push(format!(
                    "the config changed: {}{}",
                    fields[..shown].join(", "),
                    if fields.len() > shown {
                        format!(" and {} more", fields.len() - shown)
                    } else {
                        String::new()
                    }
                ));
            }
        }
        if self.inputs != other.inputs {
            for e in &other.inputs {
                match self.inputs.iter().find(|x| x.path == e.path) {
                    None => d.push(format!("new input {}", e.path)),
                    Some(x) if x != e => d.push(format!("input {} changed", e.path)),
                    _ => {}
                }
            }
            for x in &self.inputs {
                if !other.inputs.iter().any(|e| e.path == x.path) {
                    d.push(format!("input {} is no longer among the inputs", x.path));
                }
            }
        }
        if let (Some(was), Some(now)) = (&self.resources, &other.resources) {
            let named = |r: &ResourceEntry| format!("{} of steps[{}] ({})", r.path, r.step, r.kind);
            for r in now {
                match was.iter().find(|x| x.step == r.step && x.path == r.path) {
                    None => d.push(format!("the pipeline now reads {}", named(r))),
                    Some(x) if x != r => d.push(format!(
                        "{} changed since the run began ({} bytes, xxh3 {} then; {} bytes, xxh3 {} now)",
                        named(r),
                        x.bytes,
                        short(&x.xxh3_128),
                        r.bytes,
                        short(&r.xxh3_128)
                    )),
                    _ => {}
                }
            }
            for x in was {
                if !now.iter().any(|r| r.step == x.step && r.path == x.path) {
                    d.push(format!("{} is no longer read", named(x)));
                }
            }
        }
        if self.stages != other.stages {
            d.push("the task layout changed (task_size, or steps with global stages)".into());
        }
        d
    }
}

fn short(s: &str) -> &str {
    &s[..s.len().min(12)]
}

/// Every leaf that differs between two config JSONs, as `path: old → new`.
fn json_changes(path: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
    use serde_json::Value;
    let show = |v: &Value| match v {
        Value::Null => "(unset)".to_string(),
        other => {
            let s = other.to_string();
            if s.len() > 40 {
                format!("{}…", &s[..s.floor_char_boundary(40)])
            } else {
                s
            }
        }
    };
    let key = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let (va, vb) = (
                    x.get(k.as_str()).unwrap_or(&Value::Null),
                    y.get(k.as_str()).unwrap_or(&Value::Null),
                );
                json_changes(&key(k), va, vb, out);
            }
        }
        // steps: compare position by position, naming each by index and type
        (Value::Array(x), Value::Array(y)) if path == "steps" => {
            for i in 0..x.len().max(y.len()) {
                let name = |v: Option<&Value>| {
                    v.and_then(|v| v.get("type"))
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string()
                };
                let (ta, tb) = (name(x.get(i)), name(y.get(i)));
                match (x.get(i), y.get(i)) {
                    (Some(va), Some(vb)) if ta == tb => {
                        json_changes(&format!("steps[{i}] ({ta})"), va, vb, out)
                    }
                    (Some(_), Some(_)) => out.push(format!("steps[{i}]: {ta} → {tb}")),
                    (Some(_), None) => out.push(format!("steps[{i}] ({ta}) removed")),
                    (None, Some(_)) => out.push(format!("steps[{i}] ({tb}) added")),
                    (None, None) => {}
                }
            }
        }
        (x, y) if x != y => out.push(format!("{path}: {} → {}", show(x), show(y))),
        _ => {}
    }
}

/// Progress of one stage, from completion records alone (no scheduler accounting needed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StageProgress {
    /// Stage name.
    pub stage: String,
    /// Tasks in the stage.
    pub tasks: usize,
    /// Tasks with a completion record.
    pub done: usize,
    /// Indices of the tasks still to run (at most the first 20).
    pub pending: Vec<usize>,
}

/// The layout of the run started in `root` (its run id read from the state), or a layout
/// without a run when none was started (or its state is unreadable).
pub fn run_layout(root: &Path) -> Layout {
    match State::load(&Layout::new(root)) {
        Ok(Some(s)) => Layout::for_run(root, &s.run_id),
        _ => Layout::new(root),
    }
}

/// Per-stage progress of the run started in `root`.
pub fn progress(root: &Path) -> Result<Vec<StageProgress>, PipelineError> {
    let state = State::load(&Layout::new(root))?.ok_or_else(|| {
        PipelineError::Other(format!(
            "{}: no curate run was started here",
            root.display()
        ))
    })?;
    let layout = Layout::for_run(root, &state.run_id);
    Ok(state
        .stages
        .iter()
        .map(|(name, tasks)| {
            let pending: Vec<usize> = (0..*tasks)
                .filter(|t| !layout.done(name, *t).exists())
                .collect();
            StageProgress {
                stage: name.clone(),
                tasks: *tasks,
                done: tasks - pending.len(),
                pending: pending.into_iter().take(20).collect(),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_changes_are_named_field_by_field() {
        let a = serde_json::json!({
            "input": { "paths": ["a.parquet"], "id_column": null },
            "steps": [
                { "type": "length", "min_words": 50 },
                { "type": "minhash_dedup", "bands": 14 }
            ],
            "run": { "seed": 42 }
        });
        let b = serde_json::json!({
            "input": { "paths": ["a.parquet"], "id_column": "id" },
            "steps": [
                { "type": "length", "min_words": 60 },
                { "type": "exact_dedup" },
                { "type": "score" }
            ],
            "run": { "seed": 42 }
        });
        let mut out = Vec::new();
        json_changes("", &a, &b, &mut out);
        assert_eq!(
            out,
            [
                "input.id_column: (unset) → \"id\"",
                "steps[0] (length).min_words: 50 → 60",
                "steps[1]: minhash_dedup → exact_dedup",
                "steps[2] (score) added",
            ]
        );
    }
}
