//! Megatron-LM indexed datasets: a `.bin` of token ids and its `.idx`.
//!
//! The format, as Megatron-LM's `megatron/core/datasets/indexed_dataset.py` writes and reads it
//! (`_IndexWriter`, `_IndexReader`), all little-endian:
//!
//! ```text
//! .bin  the documents' token ids back to back, in the dtype below
//! .idx  b"MMIDIDX\x00\x00"            9 bytes, the magic
//!       version            u64      = 1
//!       dtype code         u8       8 = uint16, 4 = int32 (DType enum)
//!       sequence count     u64      n (one sequence per document here)
//!       document count     u64      n + 1 (length of the document index array)
//!       sequence lengths   i32 × n  tokens per sequence
//!       sequence pointers  i64 × n  byte offset of each sequence in the .bin
//!       document indices   i64 × (n + 1)  0, 1, …, n (document d = sequences [d, d+1))
//! ```
//!
//! Memory stays bounded whatever the file size: sequence lengths spill to a side file while the
//! `.bin` streams, and the `.idx` is written from it at the end.

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use curate_core::StepError;
use serde::{Deserialize, Serialize};

use crate::AtomicWriter;
use crate::encoder::Dtype;

/// The `.idx` magic.
pub const INDEX_HEADER: &[u8; 9] = b"MMIDIDX\x00\x00";

/// Bytes of the `.idx` header before the arrays.
pub const HEADER_BYTES: u64 = 9 + 8 + 1 + 8 + 8;

/// What one written file pair holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStats {
    /// The dataset prefix relative to the tokens directory (`part-00000` or
    /// `language=en/part-00000`): Megatron's `data_path` names it without `.bin` / `.idx`.
    pub prefix: String,
    /// Documents (sequences).
    pub documents: u64,
    /// Tokens (EOS included).
    pub tokens: u64,
}

/// Writes one `.bin` / `.idx` pair; both appear (atomically, `.bin` first) on
/// [`finish`](Self::finish).
#[derive(Debug)]
pub struct IndexedWriter {
    prefix: String,
    bin: Option<AtomicWriter>,
    bin_path: PathBuf,
    idx_path: PathBuf,
    lens_path: PathBuf,
    lens: Option<std::io::BufWriter<std::fs::File>>,
    dtype: Dtype,
    documents: u64,
    tokens: u64,
}

impl IndexedWriter {
    /// Starts `<dir>/<prefix>.bin` and `.idx`.
    pub fn create(dir: &Path, prefix: &str, dtype: Dtype) -> Result<Self, StepError> {
        let bin_path = dir.join(format!("{prefix}.bin"));
        let idx_path = dir.join(format!("{prefix}.idx"));
        let bin = AtomicWriter::create(&bin_path, 1 << 20)?;
        // `prefix` may name a subdirectory (`language=en/part-00000`)
        let lens_path = curate_io::atomic::temp_path(&dir.join(format!("{prefix}.lens")));
        let f = std::fs::File::create(&lens_path).map_err(|e| StepError::io(&lens_path, e))?;
        Ok(Self {
            prefix: prefix.to_string(),
            bin: Some(bin),
            bin_path,
            idx_path,
            lens_path,
            lens: Some(std::io::BufWriter::with_capacity(1 << 16, f)),
            dtype,
            documents: 0,
            tokens: 0,
        })
    }

    /// Tokens written so far.
    pub fn tokens(&self) -> u64 {
        self.tokens
    }

    /// Documents written so far.
    pub fn documents(&self) -> u64 {
        self.documents
    }

    /// Appends one document: `ntokens` ids already encoded in the file's dtype.
    pub fn push(&mut self, token_bytes: &[u8], ntokens: u32) -> Result<(), StepError> {
        debug_assert_eq!(token_bytes.len(), ntokens as usize * self.dtype.width());
        if ntokens > i32::MAX as u32 {
            return Err(StepError::Data(format!(
                "a document of {ntokens} tokens does not fit Megatron's int32 sequence lengths"
            )));
        }
        self.bin
            .as_mut()
            .expect("open until finish")
            .append(token_bytes)?;
        let lens = self.lens.as_mut().expect("open until finish");
        std::io::Write::write_all(lens, &(ntokens as i32).to_le_bytes())
            .map_err(|e| StepError::io(&self.lens_path, e))?;
        self.documents += 1;
        self.tokens += ntokens as u64;
        Ok(())
    }

    /// Commits the `.bin`, then writes and commits the `.idx`.
    pub fn finish(mut self) -> Result<FileStats, StepError> {
        let lens = self.lens.take().expect("open until finish");
        lens.into_inner()
            .map_err(|e| StepError::io(&self.lens_path, e.into_error()))?;
        self.bin.take().expect("open until finish").commit()?;
        let n = self.documents;
        let mut idx = AtomicWriter::create(&self.idx_path, 1 << 20)?;
        let w = &mut idx;
        w.append(INDEX_HEADER)?;
        w.append(&1u64.to_le_bytes())?;
        w.append(&[self.dtype.code()])?;
        w.append(&n.to_le_bytes())?;
        w.append(&(n + 1).to_le_bytes())?;
        // sequence lengths, then pointers from the same lengths
        let mut buf = vec![0u8; 1 << 16];
        for pass in 0..2 {
            let f = std::fs::File::open(&self.lens_path)
                .map_err(|e| StepError::io(&self.lens_path, e))?;
            let mut r = BufReader::with_capacity(1 << 16, f);
            let mut ptr: i64 = 0;
            let width = self.dtype.width() as i64;
            let mut out = Vec::with_capacity(1 << 17);
            loop {
                let got =
                    read_full(&mut r, &mut buf).map_err(|e| StepError::io(&self.lens_path, e))?;
                if got == 0 {
                    break;
                }
                if pass == 0 {
                    w.append(&buf[..got])?;
                } else {
                    out.clear();
                    for c in buf[..got].chunks_exact(4) {
                        let len = i32::from_le_bytes(c.try_into().expect("4 bytes")) as i64;
                        out.extend_from_slice(&ptr.to_le_bytes());
                        ptr += len * width;
                    }
                    w.append(&out)?;
                }
            }
        }
        let mut out = Vec::with_capacity(1 << 16);
        for d in 0..=n {
            out.extend_from_slice(&(d as i64).to_le_bytes());
            if out.len() >= 1 << 16 {
                w.append(&out)?;
                out.clear();
            }
        }
        w.append(&out)?;
        idx.commit()?;
        let _ = std::fs::remove_file(&self.lens_path);
        Ok(FileStats {
            prefix: self.prefix.clone(),
            documents: self.documents,
            tokens: self.tokens,
        })
    }

    /// The `.bin` path.
    pub fn bin_path(&self) -> &Path {
        &self.bin_path
    }
}

impl Drop for IndexedWriter {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.lens_path);
    }
}

/// Reads until `buf` is full or the reader ends (a multiple of 4 bytes unless the file is
/// torn).
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

/// A parsed `.idx` (for tests, `curate` tooling and the report): dtype and sequence lengths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    /// Token dtype.
    pub dtype: Dtype,
    /// Tokens per sequence.
    pub lengths: Vec<i32>,
    /// Byte offset of each sequence in the `.bin`.
    pub pointers: Vec<i64>,
    /// Document boundaries (sequence indices).
    pub documents: Vec<i64>,
}

impl Index {
    /// Reads and checks an `.idx` file.
    pub fn read(path: &Path) -> Result<Index, StepError> {
        let b = std::fs::read(path).map_err(|e| StepError::io(path, e))?;
        let bad = |m: &str| StepError::Data(format!("{}: {m}", path.display()));
        if b.len() < HEADER_BYTES as usize || &b[..9] != INDEX_HEADER {
            return Err(bad("not a Megatron index (bad magic)"));
        }
        let u64_at = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
        if u64_at(9) != 1 {
            return Err(bad("unsupported index version"));
        }
        let dtype = match b[17] {
            8 => Dtype::Uint16,
            4 => Dtype::Int32,
            c => return Err(bad(&format!("unsupported dtype code {c}"))),
        };
        let n = u64_at(18) as usize;
        let d = u64_at(26) as usize;
        let need = HEADER_BYTES as usize + n * 4 + n * 8 + d * 8;
        if b.len() != need {
            return Err(bad(&format!("{} bytes, expected {need}", b.len())));
        }
        let mut at = HEADER_BYTES as usize;
        let lengths = b[at..at + n * 4]
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes(c.try_into().expect("4")))
            .collect();
        at += n * 4;
        let pointers = b[at..at + n * 8]
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("8")))
            .collect();
        at += n * 8;
        let documents = b[at..at + d * 8]
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("8")))
            .collect();
        Ok(Index {
            dtype,
            lengths,
            pointers,
            documents,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_published_layout() {
        let d = tempfile::tempdir().unwrap();
        let mut w = IndexedWriter::create(d.path(), "part-00000", Dtype::Uint16).unwrap();
        let mut b = Vec::new();
        Dtype::Uint16.put(&[5, 6, 7], &mut b);
        w.push(&b, 3).unwrap();
        b.clear();
        w.push(&b, 0).unwrap();
        b.clear();
        Dtype::Uint16.put(&[9], &mut b);
        w.push(&b, 1).unwrap();
        let s = w.finish().unwrap();
        assert_eq!((s.documents, s.tokens), (3, 4));
        let bin = std::fs::read(d.path().join("part-00000.bin")).unwrap();
        assert_eq!(bin, [5, 0, 6, 0, 7, 0, 9, 0]);
        let idx = std::fs::read(d.path().join("part-00000.idx")).unwrap();
        assert_eq!(&idx[..9], b"MMIDIDX\x00\x00");
        assert_eq!(idx[17], 8);
        assert_eq!(idx.len() as u64, HEADER_BYTES + 3 * 4 + 3 * 8 + 4 * 8);
        let i = Index::read(&d.path().join("part-00000.idx")).unwrap();
        assert_eq!(i.lengths, [3, 0, 1]);
        assert_eq!(i.pointers, [0, 6, 6]);
        assert_eq!(i.documents, [0, 1, 2, 3]);
        // only the pair is left
        let mut names: Vec<String> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["part-00000.bin", "part-00000.idx"]);
    }

    #[test]
    fn an_abandoned_writer_leaves_nothing() {
        let d = tempfile::tempdir().unwrap();
        {
            let mut w = IndexedWriter::create(d.path(), "p", Dtype::Int32).unwrap();
            w.push(&[1, 0, 0, 0], 1).unwrap();
        }
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
    }
}
