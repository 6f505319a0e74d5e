//! The run state file: fingerprints of the config, the inputs and the task layout, written when
//! a run starts. A later run (or `curate task`) in the same directory resumes only if all three
//! match; otherwise it refuses, saying what changed, unless asked to start over.

use std::path::Path;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::PipelineError;
use crate::layout::Layout;

/// An input file as recorded in the state and the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputEntry {
    /// Path as resolved.
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// xxh3-128 of the content, hex.
    pub xxh3_128: String,
}

/// The state of a started run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Config fingerprint.
    pub config_fingerprint: String,
    /// Inputs with content hashes.
    pub inputs: Vec<InputEntry>,
    /// Modification times (ns) of the inputs when hashed, to skip re-hashing unchanged files.
    pub mtimes: Vec<u128>,
    /// Task layout: stage names and task counts.
    pub stages: Vec<(String, usize)>,
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
                PipelineError::Other(format!(
                    "{}: corrupt state file: {e}",
                    layout.state().display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(PipelineError::io(
                "reading run state",
                curate_io::IoError::os(layout.state(), e),
            )),
        }
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
                // an object's version token (ETag, modification time) stands in for the mtime
                let (m, size) = match curate_io::store::ObjectUrl::from_path(p) {
                    Some(Ok(url)) => curate_io::store::head(&url)
                        .map_err(|e| PipelineError::io("hashing inputs", e))?
                        .map(|o| (o.version, o.size))
                        .unwrap_or((0, 0)),
                    _ => (mtime(p), std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)),
                };
                if let Some(prev) = previous {
                    if let Some(i) = prev.inputs.iter().position(|e| e.path == path) {
                        if prev.inputs[i].bytes == size && prev.mtimes.get(i) == Some(&m) && m != 0
                        {
                            return Ok((prev.inputs[i].clone(), m));
                        }
                    }
                }
                let (bytes, h) = curate_io::atomic::hash_file(p)
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
            d.push(format!(
                "the config changed (fingerprint {} → {})",
                &self.config_fingerprint[..12],
                &other.config_fingerprint[..12]
            ));
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
        if self.stages != other.stages {
            d.push("the task layout changed (task_size, or steps with global stages)".into());
        }
        d
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

/// Per-stage progress of the run started in `root`.
pub fn progress(root: &Path) -> Result<Vec<StageProgress>, PipelineError> {
    let layout = Layout::new(root);
    let state = State::load(&layout)?.ok_or_else(|| {
        PipelineError::Other(format!(
            "{}: no curate run was started here",
            root.display()
        ))
    })?;
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
