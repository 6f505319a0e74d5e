//! Streaming reads of one task's share of an input.
//!
//! Parquet is read one row group at a time (so every error names its row group) in batches of
//! `batch_rows`, with optional column projection: memory is bounded by one row group's column
//! chunks plus one batch, whatever the file size. JSONL is decoded line by line (so every error
//! names its line), gzip and zstd transparently.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, RecordBatch};
use arrow::datatypes::{DataType, Schema, SchemaRef};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::async_reader::ParquetRecordBatchStreamBuilder;

use crate::error::{IoError, Location};
use crate::input::{Format, InputFile, JsonCompression, normalized_schema};

/// How documents are read.
#[derive(Debug, Clone)]
pub struct ReadSpec {
    /// Name of the text column.
    pub text_column: String,
    /// Rows per batch.
    pub batch_rows: usize,
    /// Columns to read (all when `None`); must include the text column.
    pub columns: Option<Vec<String>>,
}

/// An error from [`read_share`]: either reading failed (with its location) or the sink did.
#[derive(Debug)]
pub enum ReadError<E> {
    /// The input could not be read.
    Io(IoError),
    /// The consumer of batches failed.
    Sink(E),
}

impl<E: std::fmt::Display> std::fmt::Display for ReadError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Io(e) => e.fmt(f),
            ReadError::Sink(e) => e.fmt(f),
        }
    }
}

/// The schema batches of `file` will have under `spec` (projection applied, text as Utf8).
pub fn output_schema(file: &InputFile, spec: &ReadSpec) -> SchemaRef {
    let schema = normalized_schema(&file.schema, &spec.text_column);
    match &spec.columns {
        None => schema,
        Some(cols) => {
            let fields: Vec<_> = schema
                .fields()
                .iter()
                .filter(|f| cols.iter().any(|c| c == f.name()))
                .cloned()
                .collect();
            Arc::new(Schema::new(fields))
        }
    }
}

/// Streams row groups `rgs` of `file` (parquet) or the whole file (JSONL) into `sink`, which
/// gets each batch and the file-row index of its first row.
pub fn read_share<E>(
    file: &InputFile,
    rgs: Range<usize>,
    spec: &ReadSpec,
    mut sink: impl FnMut(RecordBatch, u64) -> Result<(), E>,
) -> Result<(), ReadError<E>> {
    match file.format {
        Format::Parquet => read_parquet(file, rgs, spec, &mut sink),
        Format::Jsonl(c) => read_jsonl(file, c, spec, &mut sink),
    }
}

fn read_parquet<E>(
    file: &InputFile,
    rgs: Range<usize>,
    spec: &ReadSpec,
    sink: &mut impl FnMut(RecordBatch, u64) -> Result<(), E>,
) -> Result<(), ReadError<E>> {
    let path = &file.path;
    let meta = file
        .parquet
        .clone()
        .expect("parquet metadata loaded by inspect");
    let remote = match crate::store::ObjectUrl::from_path(path) {
        Some(url) => {
            let url = url.map_err(|m| ReadError::Io(IoError::format(path, Location::File, m)))?;
            let reader = crate::store::parquet_reader(&url, file.size).map_err(ReadError::Io)?;
            Some((url, reader))
        }
        None => None,
    };
    let handle = match &remote {
        Some(_) => None,
        None => Some(File::open(path).map_err(|e| ReadError::Io(IoError::os(path, e)))?),
    };
    let mut first_row: u64 = file.row_groups[..rgs.start].iter().map(|r| r.rows).sum();
    let mask = spec.columns.as_ref().map(|cols| {
        let idx: Vec<usize> = file
            .schema
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, f)| cols.iter().any(|c| c == f.name()))
            .map(|(i, _)| i)
            .collect();
        ProjectionMask::roots(meta.metadata().file_metadata().schema_descr(), idx)
    });
    for rg in rgs {
        let at = Location::RowGroup(rg);
        let fmt = |e: &dyn std::fmt::Display| ReadError::Io(IoError::format(path, at.clone(), e));
        // the row group's batches: a local file through the sync reader; an object through the
        // async reader, which fetches just this row group's column chunks by range
        let batches: Box<dyn Iterator<Item = Result<RecordBatch, IoError>>> =
            match (&handle, &remote) {
                (Some(handle), _) => {
                    let h = handle
                        .try_clone()
                        .map_err(|e| ReadError::Io(IoError::os(path, e)))?;
                    let mut b = ParquetRecordBatchReaderBuilder::new_with_metadata(h, meta.clone())
                        .with_row_groups(vec![rg])
                        .with_batch_size(spec.batch_rows);
                    if let Some(m) = &mask {
                        b = b.with_projection(m.clone());
                    }
                    let reader = b.build().map_err(|e| fmt(&e))?;
                    let at = at.clone();
                    Box::new(
                        reader.map(move |b| b.map_err(|e| IoError::format(path, at.clone(), e))),
                    )
                }
                (None, Some((url, object))) => {
                    let mut b = ParquetRecordBatchStreamBuilder::new_with_metadata(
                        object.clone(),
                        meta.clone(),
                    )
                    .with_row_groups(vec![rg])
                    .with_batch_size(spec.batch_rows);
                    if let Some(m) = &mask {
                        b = b.with_projection(m.clone());
                    }
                    let mut stream = b.build().map_err(|e| fmt(&e))?;
                    let at = at.clone();
                    // transport failures stay `Remote` errors (never mistaken for bad data)
                    Box::new(std::iter::from_fn(move || {
                        crate::store::block_on(futures::StreamExt::next(&mut stream)).map(|b| {
                            b.map_err(|e| crate::store::parquet_read_error(url, at.clone(), e))
                        })
                    }))
                }
                (None, None) => unreachable!("a file or an object"),
            };
        let mut got = 0u64;
        for batch in batches {
            let batch = batch.map_err(ReadError::Io)?;
            let batch = normalize_text(path, batch, &spec.text_column).map_err(ReadError::Io)?;
            let n = batch.num_rows() as u64;
            sink(batch, first_row + got).map_err(ReadError::Sink)?;
            got += n;
        }
        let expected = file.row_groups[rg].rows;
        if got != expected {
            return Err(fmt(&format!(
                "read {got} rows but the footer promises {expected}"
            )));
        }
        first_row += got;
    }
    Ok(())
}

/// Casts the text column to Utf8 if it is LargeUtf8 or Utf8View.
fn normalize_text(
    path: &Path,
    batch: RecordBatch,
    text_column: &str,
) -> Result<RecordBatch, IoError> {
    let schema = batch.schema();
    let Ok(i) = schema.index_of(text_column) else {
        return Err(IoError::Column {
            path: path.to_path_buf(),
            column: text_column.to_string(),
            message: "missing".into(),
        });
    };
    if batch.column(i).data_type() == &DataType::Utf8 {
        return Ok(batch);
    }
    let cast =
        arrow::compute::cast(batch.column(i), &DataType::Utf8).map_err(|e| IoError::Column {
            path: path.to_path_buf(),
            column: text_column.to_string(),
            message: e.to_string(),
        })?;
    let mut cols = batch.columns().to_vec();
    cols[i] = cast;
    let out_schema = normalized_schema(&schema, text_column);
    RecordBatch::try_new(out_schema, cols).map_err(|e| IoError::format(path, Location::File, e))
}

fn open_jsonl(path: &Path, comp: JsonCompression) -> Result<Box<dyn BufRead>, IoError> {
    let f: Box<dyn Read> = match crate::store::ObjectUrl::from_path(path) {
        Some(url) => {
            let url = url.map_err(|m| IoError::format(path, Location::File, m))?;
            Box::new(crate::store::ObjectReader::open(&url)?)
        }
        None => Box::new(File::open(path).map_err(|e| IoError::os(path, e))?),
    };
    let r: Box<dyn Read> = match comp {
        JsonCompression::None => Box::new(f),
        JsonCompression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(f))),
        JsonCompression::Zstd => Box::new(zstd::Decoder::new(f).map_err(|e| IoError::os(path, e))?),
    };
    Ok(Box::new(BufReader::with_capacity(1 << 20, r)))
}

/// Lines used to infer a JSONL file's schema.
const INFER_LINES: usize = 1000;

/// Infers a JSONL file's schema from its first lines.
pub fn infer_jsonl_schema(path: &Path, comp: JsonCompression) -> Result<SchemaRef, IoError> {
    let mut r = open_jsonl(path, comp)?;
    let mut sample = Vec::new();
    let mut line = Vec::new();
    let mut n = 0u64;
    while sample.len() < INFER_LINES {
        line.clear();
        let read = r.read_until(b'\n', &mut line).map_err(|e| IoError::Os {
            path: path.to_path_buf(),
            at: Location::Line(n + 1),
            source: e,
        })?;
        if read == 0 {
            break;
        }
        n += 1;
        let s = std::str::from_utf8(&line).map_err(|e| {
            IoError::format(path, Location::Line(n), format!("not valid UTF-8: {e}"))
        })?;
        if s.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(s).map_err(|e| {
            IoError::format(path, Location::Line(n), format!("not valid JSON: {e}"))
        })?;
        if !v.is_object() {
            return Err(IoError::format(
                path,
                Location::Line(n),
                "expected a JSON object per line",
            ));
        }
        sample.push(v);
    }
    if sample.is_empty() {
        return Err(IoError::format(
            path,
            Location::File,
            "no JSON records (the file has only blank lines)",
        ));
    }
    let schema = arrow::json::reader::infer_json_schema_from_iterator(sample.iter().map(Ok))
        .map_err(|e| {
            IoError::format(path, Location::File, format!("cannot infer a schema: {e}"))
        })?;
    Ok(Arc::new(schema))
}

fn read_jsonl<E>(
    file: &InputFile,
    comp: JsonCompression,
    spec: &ReadSpec,
    sink: &mut impl FnMut(RecordBatch, u64) -> Result<(), E>,
) -> Result<(), ReadError<E>> {
    let path = &file.path;
    let io = ReadError::Io;
    let mut r = open_jsonl(path, comp).map_err(io)?;
    let mut decoder = arrow::json::ReaderBuilder::new(file.schema.clone())
        .with_batch_size(spec.batch_rows)
        .with_strict_mode(true)
        .build_decoder()
        .map_err(|e| io(IoError::format(path, Location::File, e)))?;
    let mut line = Vec::new();
    let mut line_no = 0u64;
    let mut pending = 0usize;
    let mut first_row = 0u64;
    let project = |b: RecordBatch| -> Result<RecordBatch, IoError> {
        let b = normalize_text(path, b, &spec.text_column)?;
        match &spec.columns {
            None => Ok(b),
            Some(cols) => {
                let idx: Vec<usize> = b
                    .schema()
                    .fields()
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| cols.iter().any(|c| c == f.name()))
                    .map(|(i, _)| i)
                    .collect();
                b.project(&idx)
                    .map_err(|e| IoError::format(path, Location::File, e))
            }
        }
    };
    loop {
        line.clear();
        let read = r.read_until(b'\n', &mut line).map_err(|e| {
            io(IoError::Os {
                path: path.clone(),
                at: Location::Line(line_no + 1),
                source: e,
            })
        })?;
        if read == 0 {
            break;
        }
        line_no += 1;
        let at = Location::Line(line_no);
        if std::str::from_utf8(&line).is_err() {
            let err = std::str::from_utf8(&line).unwrap_err();
            return Err(io(IoError::format(
                path,
                at,
                format!("not valid UTF-8: {err}"),
            )));
        }
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        decoder
            .decode(&line)
            .map_err(|e| io(IoError::format(path, at.clone(), e)))?;
        // a record is complete only once the decoder sees the next value; flush per record
        decoder
            .decode(b"\n")
            .map_err(|e| io(IoError::format(path, at.clone(), e)))?;
        pending += 1;
        if pending == spec.batch_rows {
            let b = decoder
                .flush()
                .map_err(|e| io(IoError::format(path, at.clone(), e)))?;
            if let Some(b) = b {
                let n = b.num_rows() as u64;
                sink(project(b).map_err(io)?, first_row).map_err(ReadError::Sink)?;
                first_row += n;
            }
            pending = 0;
        }
    }
    if let Some(b) = decoder
        .flush()
        .map_err(|e| io(IoError::format(path, Location::Line(line_no), e)))?
        .filter(|b| b.num_rows() > 0)
    {
        sink(project(b).map_err(io)?, first_row).map_err(ReadError::Sink)?;
    }
    Ok(())
}

/// Rows of `batch` whose text is null (reported, treated as empty text downstream).
pub fn null_texts(batch: &RecordBatch, text: usize) -> usize {
    batch.column(text).null_count()
}
