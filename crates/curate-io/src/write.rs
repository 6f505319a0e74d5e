//! zstd parquet output with explicit writer properties.
//!
//! Row groups always hold exactly `row_group_rows` rows (the last one fewer): incoming batches
//! are re-chunked before they reach the encoder, so page and row-group boundaries — and hence
//! the file bytes — depend only on the rows written, never on how upstream tasks batched them.

use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use std::sync::Arc;

use parquet::arrow::ArrowSchemaConverter;
use parquet::arrow::add_encoded_arrow_schema_to_metadata;
use parquet::arrow::arrow_writer::{ArrowColumnChunk, ArrowRowGroupWriterFactory, compute_leaves};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use parquet::file::writer::SerializedFileWriter;
use rayon::prelude::*;
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
///
/// Row groups are encoded in parallel (on the current rayon pool, a few at a time) and appended
/// in order. Each row group is encoded on its own from its rows alone, so the file bytes do not
/// depend on how many are encoded at once.
pub struct ParquetSink {
    dest: PathBuf,
    atomic: Option<AtomicFile>,
    writer: Option<SerializedFileWriter<std::fs::File>>,
    factory: ArrowRowGroupWriterFactory,
    pending: Vec<RecordBatch>,
    pending_rows: usize,
    groups: Vec<RecordBatch>,
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
        let fmt = |e: &dyn std::fmt::Display| IoError::format(dest, Location::File, e);
        let mut wp = props.writer_properties().map_err(|e| fmt(&e))?;
        let parquet_schema = ArrowSchemaConverter::new()
            .with_coerce_types(wp.coerce_types())
            .convert(&schema)
            .map_err(|e| fmt(&e))?;
        add_encoded_arrow_schema_to_metadata(&schema, &mut wp);
        let mut atomic = AtomicFile::create(dest)?;
        let writer = SerializedFileWriter::new(
            atomic.take(),
            parquet_schema.root_schema_ptr(),
            Arc::new(wp),
        )
        .map_err(|e| fmt(&e))?;
        let factory = ArrowRowGroupWriterFactory::new(&writer, schema.clone());
        Ok(Self {
            dest: dest.to_path_buf(),
            atomic: Some(atomic),
            writer: Some(writer),
            factory,
            pending: Vec::new(),
            pending_rows: 0,
            groups: Vec::new(),
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
            self.cut_group(self.row_group_rows)?;
        }
        Ok(())
    }

    /// Moves the first `rows` pending rows into a complete row group.
    fn cut_group(&mut self, rows: usize) -> Result<(), IoError> {
        let all = arrow::compute::concat_batches(&self.schema, &self.pending)
            .map_err(|e| IoError::format(&self.dest, Location::File, e))?;
        let rest = all.slice(rows, all.num_rows() - rows);
        self.groups.push(all.slice(0, rows));
        self.pending_rows = rest.num_rows();
        self.pending = if rest.num_rows() > 0 {
            vec![rest]
        } else {
            Vec::new()
        };
        if self.groups.len() >= rayon::current_num_threads().max(1) {
            self.encode_groups()?;
        }
        Ok(())
    }

    /// Encodes the complete row groups in parallel and appends them in order.
    fn encode_groups(&mut self) -> Result<(), IoError> {
        let dest = &self.dest;
        let fmt = |e: &dyn std::fmt::Display| IoError::format(dest, Location::File, e);
        let first = self
            .writer
            .as_ref()
            .expect("open")
            .flushed_row_groups()
            .len();
        let factory = &self.factory;
        let schema = &self.schema;
        let encoded: Vec<Result<Vec<ArrowColumnChunk>, IoError>> = self
            .groups
            .par_iter()
            .enumerate()
            .map(|(i, group)| {
                let mut writers = factory
                    .create_column_writers(first + i)
                    .map_err(|e| fmt(&e))?;
                let mut w = writers.iter_mut();
                for (field, column) in schema.fields().iter().zip(group.columns()) {
                    for leaf in compute_leaves(field, column).map_err(|e| fmt(&e))? {
                        w.next()
                            .expect("one writer per leaf")
                            .write(&leaf)
                            .map_err(|e| fmt(&e))?;
                    }
                }
                writers
                    .into_iter()
                    .map(|w| w.close().map_err(|e| fmt(&e)))
                    .collect()
            })
            .collect();
        let writer = self.writer.as_mut().expect("open");
        for (group, chunks) in self.groups.iter().zip(encoded) {
            let mut rg = writer.next_row_group().map_err(|e| fmt(&e))?;
            for chunk in chunks? {
                chunk.append_to_row_group(&mut rg).map_err(|e| fmt(&e))?;
            }
            rg.close().map_err(|e| fmt(&e))?;
            self.rows += group.num_rows() as u64;
        }
        self.groups.clear();
        Ok(())
    }

    /// Writes the footer and commits; returns the row count.
    pub fn finish(mut self) -> Result<u64, IoError> {
        if self.pending_rows > 0 {
            let n = self.pending_rows;
            self.cut_group(n)?;
        }
        self.encode_groups()?;
        let w = self.writer.take().expect("open");
        let f = w
            .into_inner()
            .map_err(|e| IoError::format(&self.dest, Location::File, e))?;
        self.atomic.take().expect("open").commit_file(f)?;
        Ok(self.rows)
    }
}
