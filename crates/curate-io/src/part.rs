//! Intermediate part files: the documents one task hands to the next pass or to assembly.
//!
//! Arrow IPC (uncompressed), written through [`AtomicFile`] so a crashed task leaves either a
//! whole part or none. The schema is taken from the first batch; a task with no surviving
//! documents commits a part with an empty schema and no batches.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use arrow::array::{Array, RecordBatch};
use arrow::datatypes::{DataType, Schema};
use arrow::ipc::reader::FileReader;
use arrow::ipc::writer::FileWriter;

use crate::atomic::AtomicFile;
use crate::error::{IoError, Location};

/// Writes one part file.
pub struct PartWriter {
    dest: PathBuf,
    atomic: Option<AtomicFile>,
    writer: Option<FileWriter<BufWriter<File>>>,
    rows: u64,
    bytes: u64,
}

impl std::fmt::Debug for PartWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartWriter")
            .field("dest", &self.dest)
            .field("rows", &self.rows)
            .finish()
    }
}

impl PartWriter {
    /// Starts a part that will appear at `dest` on [`finish`](Self::finish).
    pub fn create(dest: &Path) -> Result<Self, IoError> {
        Ok(Self {
            dest: dest.to_path_buf(),
            atomic: Some(AtomicFile::create(dest)?),
            writer: None,
            rows: 0,
            bytes: 0,
        })
    }

    /// Appends a batch (empty batches are skipped).
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), IoError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if self.writer.is_none() {
            let f = self.atomic.as_mut().expect("open").take();
            let w = FileWriter::try_new(BufWriter::with_capacity(1 << 20, f), &batch.schema())
                .map_err(|e| IoError::format(&self.dest, Location::File, e))?;
            self.writer = Some(w);
        }
        let w = self.writer.as_mut().expect("writer");
        w.write(batch)
            .map_err(|e| IoError::format(&self.dest, Location::File, e))?;
        self.rows += batch.num_rows() as u64;
        self.bytes += logical_bytes(batch);
        Ok(())
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Commits the part; returns (rows, logical bytes).
    pub fn finish(mut self) -> Result<(u64, u64), IoError> {
        let atomic = self.atomic.take().expect("open");
        let file = match self.writer.take() {
            Some(mut w) => {
                w.finish()
                    .map_err(|e| IoError::format(&self.dest, Location::File, e))?;
                w.into_inner()
                    .map_err(|e| IoError::format(&self.dest, Location::File, e))?
                    .into_inner()
                    .map_err(|e| IoError::os(&self.dest, e.into_error()))?
            }
            None => {
                let mut atomic = atomic;
                let f = atomic.take();
                let mut w = FileWriter::try_new(BufWriter::new(f), &Schema::empty())
                    .map_err(|e| IoError::format(&self.dest, Location::File, e))?;
                w.finish()
                    .map_err(|e| IoError::format(&self.dest, Location::File, e))?;
                let f = w
                    .into_inner()
                    .map_err(|e| IoError::format(&self.dest, Location::File, e))?
                    .into_inner()
                    .map_err(|e| IoError::os(&self.dest, e.into_error()))?;
                atomic.commit_file(f)?;
                return Ok((0, 0));
            }
        };
        atomic.commit_file(file)?;
        Ok((self.rows, self.bytes))
    }
}

/// Opens a part for reading: its batches in order.
pub fn read_part(
    path: &Path,
) -> Result<impl Iterator<Item = Result<RecordBatch, IoError>>, IoError> {
    let f = File::open(path).map_err(|e| IoError::os(path, e))?;
    let r = FileReader::try_new(std::io::BufReader::with_capacity(1 << 20, f), None)
        .map_err(|e| IoError::format(path, Location::File, format!("corrupt part file: {e}")))?;
    let p = path.to_path_buf();
    Ok(r.map(move |b| b.map_err(|e| IoError::format(&p, Location::File, e))))
}

/// A deterministic, additive measure of a batch's data size: value bytes of variable-width
/// columns plus 8 bytes per row for them, and the fixed width of the others. It does not depend
/// on how rows are split into batches, so file-size planning is the same for every task split.
pub fn logical_bytes(batch: &RecordBatch) -> u64 {
    let rows = batch.num_rows() as u64;
    batch
        .columns()
        .iter()
        .map(|c| match c.data_type() {
            DataType::Utf8 => {
                let s = c
                    .as_any()
                    .downcast_ref::<arrow::array::StringArray>()
                    .expect("utf8");
                let o = s.value_offsets();
                (o[o.len() - 1] - o[0]) as u64 + 8 * rows
            }
            DataType::LargeUtf8 => {
                let s = c
                    .as_any()
                    .downcast_ref::<arrow::array::LargeStringArray>()
                    .expect("utf8");
                let o = s.value_offsets();
                (o[o.len() - 1] - o[0]) as u64 + 8 * rows
            }
            dt => dt.primitive_width().map(|w| w as u64).unwrap_or(8) * rows,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{StringArray, UInt64Array};
    use std::sync::Arc;

    #[test]
    fn roundtrip_and_empty() {
        let dir = tempfile::tempdir().unwrap();
        let schema = Arc::new(Schema::new(vec![
            arrow::datatypes::Field::new("text", DataType::Utf8, true),
            arrow::datatypes::Field::new("k", DataType::UInt64, false),
        ]));
        let b = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec!["ab", "cde"])),
                Arc::new(UInt64Array::from(vec![1, 2])),
            ],
        )
        .unwrap();
        let mut w = PartWriter::create(&dir.path().join("p.arrow")).unwrap();
        w.write(&b).unwrap();
        w.write(&b.slice(0, 1)).unwrap();
        assert_eq!(
            w.finish().unwrap(),
            (3, logical_bytes(&b) + logical_bytes(&b.slice(0, 1)))
        );
        let got: Vec<_> = read_part(&dir.path().join("p.arrow"))
            .unwrap()
            .map(|b| b.unwrap())
            .collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], b);
        // additive: the size of a batch is the sum of its slices
        assert_eq!(
            logical_bytes(&b),
            logical_bytes(&b.slice(0, 1)) + logical_bytes(&b.slice(1, 1))
        );

        let w = PartWriter::create(&dir.path().join("e.arrow")).unwrap();
        assert_eq!(w.finish().unwrap(), (0, 0));
        assert_eq!(read_part(&dir.path().join("e.arrow")).unwrap().count(), 0);
    }
}
