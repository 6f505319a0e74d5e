//! Reading a snapshot or run that may live in object storage: the read-only commands
//! (`curate status`, `stats`, `snapshot verify`, `diff`) work on a local directory, which for
//! an `s3://` location is a mirror with only the objects the command needs fetched into it.
//! (Runs themselves go through [`curate_snapshot::storage`].)

use std::path::{Path, PathBuf};

use curate_io::store::ObjectUrl;
use curate_snapshot::storage::{Mirror, Storage};

use crate::error::PipelineError;
use crate::layout::{self, Layout};

/// A local directory to read a snapshot or run from: the directory itself, or for `s3://` a
/// temp directory with the objects `what` needs fetched into it.
#[derive(Debug)]
pub struct Readable {
    path: PathBuf,
    _mirror: Option<Mirror>,
}

/// What a read-only command needs of a remote snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Run state and completion records (`curate status`).
    Status,
    /// The manifest and stats (`curate stats`).
    Manifest,
    /// The manifest and every file it lists (`curate snapshot verify`).
    Snapshot,
}

impl Readable {
    /// Opens `dir` (a path or an `s3://` URL) for reading.
    pub fn open(dir: &Path, need: Need) -> Result<Readable, PipelineError> {
        let Some(url) = ObjectUrl::from_path(dir) else {
            return Ok(Readable {
                path: dir.to_path_buf(),
                _mirror: None,
            });
        };
        let mirror = Mirror::open(url.map_err(PipelineError::Other)?)?;
        let missing = |rel: &str, what: &str| {
            PipelineError::Other(format!("{}: no such object ({what})", mirror.url.join(rel)))
        };
        match need {
            Need::Status => {
                if !mirror.fetch(layout::STATE)? {
                    return Err(missing(layout::STATE, "no curate run was started here"));
                }
                // the records of the run the state names
                let state = crate::state::State::load(&Layout::new(&mirror.scratch))?;
                let layout = Layout::for_run(
                    &mirror.scratch,
                    &state.map(|s| s.run_id).unwrap_or_default(),
                );
                mirror.fetch_prefix("", &layout.rel(&layout.done_root()), &|_| true)?;
                mirror.fetch(layout::MANIFEST)?;
            }
            Need::Manifest => {
                if !mirror.fetch(layout::MANIFEST)? {
                    return Err(missing(
                        layout::MANIFEST,
                        "is this a finished curate snapshot?",
                    ));
                }
                mirror.fetch(layout::STATS)?;
            }
            Need::Snapshot => {
                if !mirror.fetch(layout::MANIFEST)? {
                    return Err(missing(
                        layout::MANIFEST,
                        "is this a finished curate snapshot?",
                    ));
                }
                mirror.fetch_prefix("", "", &|r| !layout::is_meta(r))?;
            }
        }
        Ok(Readable {
            path: mirror.scratch.clone(),
            _mirror: Some(mirror),
        })
    }

    /// The local directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
