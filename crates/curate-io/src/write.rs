//! zstd parquet output with explicit writer properties.
//!
//! Row groups always hold exactly `row_group_rows` rows (the last one fewer): incoming batches
//! are re-chunked before they reach the encoder, so page and row-group boundaries — and hence
//! the file bytes — depend only on the rows written, never on how upstream tasks batched them.

use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use serde::{Deserialize, Serialize};

use crate::atomic::AtomicFile;
use crate::error::{IoError, Location};

/// Output settings; every one is recorded in the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputProps {
    /// zstd compression level (1–22).
    pub zstd_level: i32,
    /// Rows per row group.
    pub row_group_rows: usize,
    /// Target data page size in bytes.
    pub data_page_bytes: usize,
    /// Writer version string recorded in the file footer.
    pub created_by: String,
}

impl OutputProps {
    /// The parquet writer properties these settings stand for.
    pub fn writer_properties(&self) -> Result<WriterProperties, String> {
        let level = ZstdLevel::try_new(self.zstd_level).map_err(|e| e.to_string())?;
        Ok(WriterProperties::builder()
            .set_writer_version(WriterVersion::PARQUET_1_0)
            .set_compression(Compression::ZSTD(level))
            .set_max_row_group_row_count(Some(self.row_group_rows))
            .set_data_page_size_limit(self.data_page_bytes)
            .set_dictionary_enabled(true)
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_created_by(self.created_by.clone())
            .build())
    }
}

/// Writes one parquet file atomically, in fixed-size row groups.
pub struct ParquetSink {
    dest: PathBuf,
    atomic: Option<AtomicFile>,
    writer: Option<ArrowWriter<std::fs::File>>,
    pending: Vec<RecordBatch>,
    pending_rows: usize,
    row_group_rows: usize,
    schema: SchemaRef,
    rows: u64,
}

impl std::fmt::Debug for ParquetSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetSink")
            .field("dest", &self.dest)
            .field("rows", &self.rows)
            .finish()
    }
}

impl ParquetSink {
    /// Starts a file that appears at `dest` on [`finish`](Self::finish).
    pub fn create(dest: &Path, schema: SchemaRef, props: &OutputProps) -> Result<Self, IoError> {
        let wp = props
            .writer_properties()
            .map_err(|e| IoError::format(dest, Location::File, e))?;
        let mut atomic = AtomicFile::create(dest)?;
        let writer = ArrowWriter::try_new(atomic.take(), schema.clone(), Some(wp))
            .map_err(|e| IoError::format(dest, Location::File, e))?;
        Ok(Self {
            dest: dest.to_path_buf(),
            atomic: Some(atomic),
            writer: Some(writer),
            pending: Vec::new(),
            pending_rows: 0,
            row_group_rows: props.row_group_rows,
            schema,
            rows: 0,
        })
    }

    /// Appends rows.
    pub fn write(&mut self, batch: RecordBatch) -> Result<(), IoError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.pending_rows += batch.num_rows();
        self.pending.push(batch);
        while self.pending_rows >= self.row_group_rows {
            self.flush_group(self.row_group_rows)?;
        }
        Ok(())
    }

    fn flush_group(&mut self, rows: usize) -> Result<(), IoError> {
        let all = arrow::compute::concat_batches(&self.schema, &self.pending)
            .map_err(|e| IoError::format(&self.dest, Location::File, e))?;
        let group = all.slice(0, rows);
        let rest = all.slice(rows, all.num_rows() - rows);
        let w = self.writer.as_mut().expect("open");
        w.write(&group)
            .map_err(|e| IoError::format(&self.dest, Location::File, e))?;
        w.flush()
            .map_err(|e| IoError::format(&self.dest, Location::File, e))?;
        self.rows += rows as u64;
        self.pending_rows = rest.num_rows();
        self.pending = if rest.num_rows() > 0 {
            vec![rest]
        } else {
            Vec::new()
        };
        Ok(())
    }

    /// Writes the footer and commits; returns the row count.
    pub fn finish(mut self) -> Result<u64, IoError> {
        if self.pending_rows > 0 {
            self.flush_group(self.pending_rows)?;
        }
        let w = self.writer.take().expect("open");
        let f = w
            .into_inner()
            .map_err(|e| IoError::format(&self.dest, Location::File, e))?;
        self.atomic.take().expect("open").commit_file(f)?;
        Ok(self.rows)
    }
}
