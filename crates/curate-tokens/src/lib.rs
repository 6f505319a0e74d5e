//! The snapshot's last mile: training-ready output.
//!
//! Two steps live here, both ordinary curate steps built from their config:
//!
//! - [`decontaminate`](decontaminate::DecontaminateConfig): a processor that drops (or marks)
//!   documents sharing a normalized word n-gram with an evaluation benchmark. The benchmarks'
//!   n-gram set is loaded once when the step is built ([`ngrams`], [`benchmarks`]); the corpus
//!   streams through it.
//! - [`tokenize`](tokenize::TokenizeConfig): a terminal barrier that turns the kept documents into
//!   Megatron-LM indexed datasets (`.bin` + `.idx`, [`megatron`]) under `<out>/tokens/`. Its
//!   observer tokenizes each task's documents ([`encoder`]) into sorted run files on disk
//!   ([`runs`]); one global stage merges the runs in the seeded document order and cuts the
//!   datasets into files. The bytes depend only on the config, the run seed and the kept
//!   documents: never on threads, task size or how often the run was killed and resumed.
//!
//! Like every capability crate this one depends on `curate-core` only.

pub mod benchmarks;
pub mod bytebpe;
pub mod decontaminate;
pub mod encoder;
pub mod megatron;
pub mod ngrams;
pub mod runs;
pub mod tokenize;

use std::io::Write;
use std::path::{Path, PathBuf};

use curate_core::StepError;

/// A file being written beside its destination, renamed into place by [`commit`](Self::commit)
/// after an fsync: readers and resumed runs see the whole file or none of it.
#[derive(Debug)]
pub struct AtomicWriter {
    tmp: PathBuf,
    dest: PathBuf,
    out: Option<std::io::BufWriter<std::fs::File>>,
}

impl AtomicWriter {
    /// Creates the temp file (and the destination's directory).
    pub fn create(dest: &Path) -> Result<Self, StepError> {
        let dir = dest.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| StepError::io(dir, e))?;
        let tmp = curate_io::atomic::temp_path(dest);
        let f = std::fs::File::create(&tmp).map_err(|e| StepError::io(&tmp, e))?;
        Ok(Self {
            tmp,
            dest: dest.to_path_buf(),
            out: Some(std::io::BufWriter::with_capacity(1 << 20, f)),
        })
    }

    /// Appends bytes.
    #[inline]
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), StepError> {
        let out = self.out.as_mut().expect("open until commit");
        out.write_all(bytes)
            .map_err(|e| StepError::io(&self.tmp, e))
    }

    /// Flushes, fsyncs and renames into place.
    pub fn commit(mut self) -> Result<(), StepError> {
        let out = self.out.take().expect("open until commit");
        let f = out
            .into_inner()
            .map_err(|e| StepError::io(&self.tmp, e.into_error()))?;
        f.sync_all().map_err(|e| StepError::io(&self.tmp, e))?;
        drop(f);
        std::fs::rename(&self.tmp, &self.dest).map_err(|e| StepError::io(&self.dest, e))?;
        if let Some(d) = self.dest.parent()
            && let Ok(d) = std::fs::File::open(d)
        {
            let _ = d.sync_all();
        }
        self.tmp = PathBuf::new();
        Ok(())
    }
}

impl Drop for AtomicWriter {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Writes `bytes` to `dest` atomically.
pub fn write_atomic(dest: &Path, bytes: &[u8]) -> Result<(), StepError> {
    let mut w = AtomicWriter::create(dest)?;
    w.write(bytes)?;
    w.commit()
}

/// Reads a JSON file written by this crate.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, StepError> {
    let b = std::fs::read(path).map_err(|e| StepError::io(path, e))?;
    serde_json::from_slice(&b).map_err(|e| StepError::Data(format!("{}: {e}", path.display())))
}

/// Writes a value as pretty JSON, atomically.
pub(crate) fn write_json<T: serde::Serialize>(path: &Path, v: &T) -> Result<(), StepError> {
    write_atomic(path, &serde_json::to_vec_pretty(v).expect("serialisable"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writer_is_all_or_nothing() {
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("a/b.bin");
        {
            let mut w = AtomicWriter::create(&dest).unwrap();
            w.write(b"partial").unwrap();
        }
        assert!(!dest.exists());
        assert_eq!(
            std::fs::read_dir(dest.parent().unwrap()).unwrap().count(),
            0
        );
        write_atomic(&dest, b"whole").unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"whole");
    }
}
