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
//! Like every capability crate it depends on `curate-core` and `curate-io` only.

pub mod benchmarks;
pub mod bytebpe;
pub mod decontaminate;
pub mod encoder;
pub mod megatron;
pub mod ngrams;
pub mod runs;
pub mod tokenize;

use std::path::Path;

use curate_core::StepError;

pub use curate_io::atomic::AtomicWriter;

/// Writes `bytes` to `dest` atomically.
pub fn write_atomic(dest: &Path, bytes: &[u8]) -> Result<(), StepError> {
    Ok(curate_io::atomic::write_atomic(dest, bytes)?)
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
            let mut w = AtomicWriter::create(&dest, 1 << 10).unwrap();
            w.append(b"partial").unwrap();
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
