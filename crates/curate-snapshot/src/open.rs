//! Reading an artefact of another, finished snapshot (a frozen model, a dedup index): the
//! snapshot is opened by its manifest, the artefact is looked up in the manifest's list, and
//! the file can be checked against the hash listed there.

use std::path::{Path, PathBuf};

use crate::error::SnapshotError;
use crate::manifest::{FileEntry, Manifest, load};

/// A finished snapshot (a local directory with its `manifest.json`), opened for reading.
#[derive(Debug, Clone)]
pub struct Snapshot {
    root: PathBuf,
    manifest: Manifest,
}

impl Snapshot {
    /// Opens the snapshot at `root` by reading its manifest.
    pub fn open(root: &Path) -> Result<Snapshot, SnapshotError> {
        Ok(Snapshot {
            root: root.to_path_buf(),
            manifest: load(root)?,
        })
    }

    /// The snapshot's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Its manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The path of a file of the snapshot (`rel` relative to its root, e.g. an
    /// [`artifact`](crate::artifact) constant).
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// The artefact's entry in the manifest (its listed size and xxh3-128), if listed.
    pub fn artifact(&self, rel: &str) -> Option<&FileEntry> {
        self.manifest.artifact(rel)
    }
}

/// Checks `hash` (the xxh3-128 of the bytes read from `path`, hex) against the one `listed`
/// for it; on a mismatch, the message says the `what` (e.g. "model") changed after the run
/// that listed it.
pub fn check_hash(path: &Path, hash: &str, listed: &FileEntry, what: &str) -> Result<(), String> {
    if listed.xxh3_128 == hash {
        Ok(())
    } else {
        Err(format!(
            "{} hashes to {hash} but its snapshot's manifest lists {}: the {what} changed after that run",
            path.display(),
            listed.xxh3_128
        ))
    }
}
