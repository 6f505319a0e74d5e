//! Streaming reads of one task's share of an input.
//!
//! Parquet is read one row group at a time (so every error names its row group) in batches of
//! `batch_rows`, with optional column projection: memory is bounded by one row group's column
//! chunks plus one batch, whatever the file size. JSONL is read `batch_rows` lines at a time
//! (their bytes kept until the batch is converted); when a batch does not decode, its lines are
//! decoded again one by one, so every error names its own line. gzip and zstd are decompressed transparently, and a
//! decompression failure is named as such (`zstd: …`, `gzip: …`), never as bad JSON.
//!
//! # Unreadable input
//!
//! [`read_share`] stops at the first unreadable unit ([`ReadMode::Fail`]). [`read_share_with`]
//! in [`ReadMode::Skip`] instead leaves out exactly the units it cannot read, reports each one as
//! a [`SkippedUnit`], and delivers every readable unit's rows exactly once:
//!
//! | unit | when | [`SkipLocation`] |
//! |---|---|---|
//! | a parquet row group | a page does not decode, a row count differs from the footer, the file does not open | `RowGroup(rg)` (one per row group of the share) |
//! | JSONL lines | a line is not UTF-8, not one JSON object, or has a field of the wrong type | `Lines { first, last }` (consecutive bad lines merged) |
//! | the rest of a JSONL file | the decompressor fails (truncated or corrupt `.gz` / `.zst`) or reading fails | `Rest { from_line }` |
//! | a JSONL file | it does not open | `File` |
//!
//! A unit is all or nothing: no row of a row group that fails half-way reaches the sink. In skip
//! mode a row group is decoded into memory before its batches are delivered when its
//! uncompressed size (from the footer) is at most [`SKIP_BUFFER_BYTES`]; a larger one is decoded
//! twice, once to check it and once to deliver it. Transport failures of object storage
//! ([`IoError::is_transport`]) are never skipped: they are returned as errors in both modes.
//!
//! # Row numbers
//!
//! The sink gets each batch with the file-row index of its first row (the caller's document
//! keys). A parquet row's index is its position in the file; a skipped row group still counts
//! its footer's rows, so the rows after it keep their indices. A JSONL row's index is the number
//! of non-blank lines before it: blank lines are not documents, and a skipped line keeps its
//! index (the documents after it number as if it were good). The indices of a file's readable
//! documents therefore never depend on task size, batch size or which units were skipped.
//!
//! A corrupt compressed stream may decompress to garbage before the decompressor notices (a
//! checksum is only checked at the end of a frame or member). When a line of a compressed file
//! does not decode, the rest of the stream is therefore read once to see whether it is corrupt:
//! if it is, the error is the decompressor's and (in skip mode) the rest of the file from that
//! line is skipped. Lines delivered before that point cannot be taken back.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Schema, SchemaRef};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ParquetRecordBatchReaderBuilder};
use parquet::arrow::async_reader::ParquetRecordBatchStreamBuilder;
use serde::Serialize;

use crate::error::{IoError, Location};
use crate::input::{
    Format, InputFile, JsonCompression, flattened_schema, is_string, normalized_schema,
};

/// How documents are read.
#[derive(Debug, Clone)]
pub struct ReadSpec {
    /// Name of the text column.
    pub text_column: String,
    /// Rows per batch.
    pub batch_rows: usize,
    /// Columns to read (all when `None`); must include the text column. Named as they are
    /// once `flatten` has applied.
    pub columns: Option<Vec<String>>,
    /// Struct columns whose fields are read as top-level columns in their place
    /// ([`crate::input::flattened_schema`]).
    pub flatten: Vec<String>,
}

/// What a read does with a unit of input it cannot read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadMode {
    /// Stop at the first unreadable unit with its located error.
    #[default]
    Fail,
    /// Leave out each unreadable unit, report it, and read the rest.
    Skip,
}

/// Where a skipped unit lies in its file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipLocation {
    /// A parquet row group (0-based), all of its rows.
    RowGroup(usize),
    /// JSONL lines `first..=last` (1-based, consecutive, none blank): one document each.
    Lines {
        /// The first bad line.
        first: u64,
        /// The last bad line.
        last: u64,
    },
    /// A JSONL file from line `from_line` (1-based) to its end: the decompressor failed there
    /// (a truncated or corrupt `.gz` / `.zst`), or reading did.
    Rest {
        /// The first line not read.
        from_line: u64,
    },
    /// A whole JSONL file: it could not be opened.
    File,
}

/// A unit of input left out by [`read_share_with`] in [`ReadMode::Skip`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedUnit {
    /// The file.
    pub path: PathBuf,
    /// Where in it.
    pub location: SkipLocation,
    /// Documents lost, when known: a row group's rows from the footer, the number of bad lines;
    /// `None` for the rest of a file or a whole JSONL file.
    pub rows: Option<u64>,
    /// Why, located (`file, row group 2: …`, `file, line 701: …`).
    pub error: String,
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

/// The schema batches of `file` will have under `spec` (projection applied, string columns as
/// Utf8).
pub fn output_schema(file: &InputFile, spec: &ReadSpec) -> SchemaRef {
    let schema = normalized_schema(&flattened_schema(&file.schema, &spec.flatten));
    match &spec.columns {
        None => schema,
        // in the order `columns` lists them (so inputs whose files order the same columns
        // differently, parquet and JSONL say, share one schema)
        Some(cols) => {
            let fields: Vec<_> = column_indices(&schema, cols)
                .into_iter()
                .map(|i| schema.fields()[i].clone())
                .collect();
            Arc::new(Schema::new(fields))
        }
    }
}

/// Streams row groups `rgs` of `file` (parquet) or the whole file (JSONL) into `sink`, which
/// gets each batch and the file-row index of its first row. Stops at the first unreadable unit
/// ([`ReadMode::Fail`] of [`read_share_with`]).
pub fn read_share<E>(
    file: &InputFile,
    rgs: Range<usize>,
    spec: &ReadSpec,
    sink: impl FnMut(RecordBatch, u64) -> Result<(), E>,
) -> Result<(), ReadError<E>> {
    read_share_with(file, rgs, spec, ReadMode::Fail, sink).map(|_| ())
}

/// [`read_share`] with a choice of what to do with unreadable units (see the [module
/// docs](self)): in [`ReadMode::Skip`], each one is left out and returned, in file order, and
/// every readable unit's rows reach `sink` exactly once. Transport errors of object storage and
/// the sink's own errors are returned in both modes.
///
/// ```no_run
/// # use curate_io::read::{read_share_with, ReadMode, ReadSpec, ReadError};
/// # fn demo(file: &curate_io::input::InputFile, spec: &ReadSpec) -> Result<(), ReadError<String>> {
/// let skipped = read_share_with(file, 0..2, spec, ReadMode::Skip, |batch, first_row| {
///     // the batch's rows are rows first_row.. of the file
///     Ok::<(), String>(())
/// })?;
/// for s in &skipped {
///     eprintln!("skipped {:?} of {} ({:?} rows): {}", s.location, s.path.display(), s.rows, s.error);
/// }
/// # Ok(()) }
/// ```
pub fn read_share_with<E>(
    file: &InputFile,
    rgs: Range<usize>,
    spec: &ReadSpec,
    mode: ReadMode,
    sink: impl FnMut(RecordBatch, u64) -> Result<(), E>,
) -> Result<Vec<SkippedUnit>, ReadError<E>> {
    read_share_inner(file, rgs, spec, mode, SKIP_BUFFER_BYTES, sink)
}

/// [`read_share_with`] with the buffering limit of skip mode as a parameter (tests use 0).
fn read_share_inner<E>(
    file: &InputFile,
    rgs: Range<usize>,
    spec: &ReadSpec,
    mode: ReadMode,
    buffer_limit: u64,
    mut sink: impl FnMut(RecordBatch, u64) -> Result<(), E>,
) -> Result<Vec<SkippedUnit>, ReadError<E>> {
    let mut skipped = Vec::new();
    match file.format {
        Format::Parquet => {
            read_parquet(file, rgs, spec, mode, buffer_limit, &mut sink, &mut skipped)?
        }
        Format::Jsonl(c) => JsonlRead::new(file, c, spec, mode).run(&mut sink, &mut skipped)?,
    }
    Ok(skipped)
}

/// In skip mode, the largest row group (uncompressed bytes, from the footer) decoded into memory
/// before its rows are delivered; a larger one is decoded twice (checked, then delivered).
/// Buffering costs the decoded row group's memory (for a 50 MB FineWeb row group, about 50 MB
/// per task); decoding twice costs the decode time again.
pub const SKIP_BUFFER_BYTES: u64 = 256 << 20;

/// Skips `e` (in skip mode, when it is not a transport failure) by recording `unit`; returns it
/// as the read's error otherwise.
fn skip_or_fail<E>(
    mode: ReadMode,
    e: IoError,
    skipped: &mut Vec<SkippedUnit>,
    unit: impl FnOnce(String) -> SkippedUnit,
) -> Result<(), ReadError<E>> {
    if mode == ReadMode::Skip && !e.is_transport() {
        skipped.push(unit(e.to_string()));
        Ok(())
    } else {
        Err(ReadError::Io(e))
    }
}

/// A parquet file opened for reading row groups (a local file or an object).
struct ParquetShare<'a> {
    file: &'a InputFile,
    spec: &'a ReadSpec,
    meta: ArrowReaderMetadata,
    mask: Option<ProjectionMask>,
    handle: Option<File>,
    remote: Option<(crate::store::ObjectUrl, crate::store::ObjectFile)>,
}

/// A row group's batches as they decode.
type Batches<'a> = Box<dyn Iterator<Item = Result<RecordBatch, IoError>> + 'a>;

impl<'a> ParquetShare<'a> {
    fn open(file: &'a InputFile, spec: &'a ReadSpec) -> Result<Self, IoError> {
        let path = &file.path;
        let meta = file
            .parquet
            .clone()
            .expect("parquet metadata loaded by inspect");
        let remote = match crate::store::ObjectUrl::from_path(path) {
            Some(url) => {
                let url = url.map_err(|m| IoError::format(path, Location::File, m))?;
                let reader = crate::store::parquet_reader(&url, file.size)?;
                Some((url, reader))
            }
            None => None,
        };
        let handle = match &remote {
            Some(_) => None,
            None => Some(File::open(path).map_err(|e| IoError::os(path, e))?),
        };
        let mask = spec.columns.as_ref().map(|cols| {
            ProjectionMask::roots(
                meta.metadata().file_metadata().schema_descr(),
                root_indices(&file.schema, cols, &spec.flatten),
            )
        });
        Ok(ParquetShare {
            file,
            spec,
            meta,
            mask,
            handle,
            remote,
        })
    }

    /// Row group `rg`'s batches, text normalised and columns as `[input] columns` lists them; a
    /// batch that fails to decode names its column ([`Self::name_column`]).
    fn batches(&self, rg: usize) -> Result<Batches<'_>, IoError> {
        let path = &self.file.path;
        let at = Location::RowGroup(rg);
        let decoded = self.decoded(rg, self.mask.clone())?;
        Ok(Box::new(decoded.map(move |b| {
            b.map_err(|e| self.name_column(rg, e))
                .and_then(|b| shaped(path, b, self.spec, at.clone()))
        })))
    }

    /// Row group `rg`'s batches as the file holds them (the columns of `mask`, all without one):
    /// a local file through the sync reader; an object through the async reader, which fetches
    /// just this row group's column chunks by range (its transport failures stay `Remote`
    /// errors, never mistaken for bad data).
    fn decoded(&self, rg: usize, mask: Option<ProjectionMask>) -> Result<Batches<'_>, IoError> {
        let path = &self.file.path;
        let at = Location::RowGroup(rg);
        let fmt = |e: &dyn std::fmt::Display| IoError::format(path, at.clone(), e);
        match (&self.handle, &self.remote) {
            (Some(handle), _) => {
                let h = handle.try_clone().map_err(|e| IoError::os(path, e))?;
                let mut b =
                    ParquetRecordBatchReaderBuilder::new_with_metadata(h, self.meta.clone())
                        .with_row_groups(vec![rg])
                        .with_batch_size(self.spec.batch_rows);
                if let Some(m) = mask {
                    b = b.with_projection(m);
                }
                let reader = b.build().map_err(|e| fmt(&e))?;
                Ok(Box::new(reader.map(move |b| {
                    b.map_err(|e| IoError::format(path, at.clone(), e))
                })))
            }
            (None, Some((url, object))) => {
                let mut b = ParquetRecordBatchStreamBuilder::new_with_metadata(
                    object.clone(),
                    self.meta.clone(),
                )
                .with_row_groups(vec![rg])
                .with_batch_size(self.spec.batch_rows);
                if let Some(m) = mask {
                    b = b.with_projection(m);
                }
                let mut stream = b.build().map_err(|e| fmt(&e))?;
                Ok(Box::new(std::iter::from_fn(move || {
                    crate::store::block_on(futures::StreamExt::next(&mut stream)).map(|b| {
                        b.map_err(|e| crate::store::parquet_read_error(url, at.clone(), e))
                    })
                })))
            }
            (None, None) => unreachable!("a file or an object"),
        }
    }

    /// A decode error of row group `rg` with the failing column named: the first of the
    /// columns read that fails on its own (read again alone, only on this error path). A
    /// transport error is returned as it is (it says nothing about the data), and the error
    /// keeps its message alone when the store fails during the diagnosis.
    fn name_column(&self, rg: usize, e: IoError) -> IoError {
        let IoError::Format { path, at, message } = e else {
            return e;
        };
        let roots = match &self.spec.columns {
            Some(cols) => column_indices(&self.file.schema, cols),
            None => (0..self.file.schema.fields().len()).collect(),
        };
        let descr = self.meta.metadata().file_metadata().schema_descr();
        let mut column = None;
        for root in roots {
            let error = match self.decoded(rg, Some(ProjectionMask::roots(descr, [root]))) {
                Ok(mut batches) => batches.find_map(Result::err),
                Err(e) => Some(e),
            };
            match error {
                // the column's own bytes do not decode
                Some(IoError::Format { .. }) => {
                    column = self
                        .file
                        .schema
                        .fields()
                        .get(root)
                        .map(|f| f.name().clone());
                    break;
                }
                // the store (or the file) failing now says nothing about the column
                Some(_) => break,
                None => {}
            }
        }
        let message = match column {
            Some(c) => format!("column `{c}`: {message}"),
            None => message,
        };
        IoError::Format { path, at, message }
    }

    /// The error when row group `rg` yielded `got` rows, if its footer promises others.
    fn check_rows(&self, rg: usize, got: u64) -> Result<(), IoError> {
        let expected = self.file.row_groups[rg].rows;
        if got == expected {
            return Ok(());
        }
        Err(IoError::format(
            &self.file.path,
            Location::RowGroup(rg),
            format!("read {got} rows but the footer promises {expected}"),
        ))
    }

    /// Delivers row group `rg` batch by batch as it decodes (an error may come after some of
    /// its batches were delivered).
    fn stream<E>(
        &self,
        rg: usize,
        first_row: u64,
        sink: &mut impl FnMut(RecordBatch, u64) -> Result<(), E>,
    ) -> Result<(), ReadError<E>> {
        let mut got = 0u64;
        for batch in self.batches(rg).map_err(ReadError::Io)? {
            let batch = batch.map_err(ReadError::Io)?;
            let n = batch.num_rows() as u64;
            sink(batch, first_row + got).map_err(ReadError::Sink)?;
            got += n;
        }
        self.check_rows(rg, got).map_err(ReadError::Io)
    }

    /// Decodes row group `rg` whole, keeping its batches when `keep` (else only checking it).
    fn decode(&self, rg: usize, keep: bool) -> Result<Vec<RecordBatch>, IoError> {
        let mut out = Vec::new();
        let mut got = 0u64;
        for batch in self.batches(rg)? {
            let batch = batch?;
            got += batch.num_rows() as u64;
            if keep {
                out.push(batch);
            }
        }
        self.check_rows(rg, got)?;
        Ok(out)
    }
}

fn read_parquet<E>(
    file: &InputFile,
    rgs: Range<usize>,
    spec: &ReadSpec,
    mode: ReadMode,
    buffer_limit: u64,
    sink: &mut impl FnMut(RecordBatch, u64) -> Result<(), E>,
    skipped: &mut Vec<SkippedUnit>,
) -> Result<(), ReadError<E>> {
    let path = &file.path;
    let unit = |rg: usize| {
        let rows = file.row_groups[rg].rows;
        move |error| SkippedUnit {
            path: path.clone(),
            location: SkipLocation::RowGroup(rg),
            rows: Some(rows),
            error,
        }
    };
    let share = match ParquetShare::open(file, spec) {
        Ok(s) => s,
        Err(e) if mode == ReadMode::Fail || e.is_transport() => return Err(ReadError::Io(e)),
        Err(e) => {
            // every row group of the share is unreadable, each recorded as itself
            let msg = e.to_string();
            skipped.extend(rgs.map(|rg| unit(rg)(msg.clone())));
            return Ok(());
        }
    };
    let mut first_row: u64 = file.row_groups[..rgs.start].iter().map(|r| r.rows).sum();
    for rg in rgs {
        match mode {
            ReadMode::Fail => share.stream(rg, first_row, sink)?,
            ReadMode::Skip if file.row_groups[rg].bytes > buffer_limit => {
                // check first, then deliver: two decodes, memory of one batch
                match share.decode(rg, false) {
                    Ok(_) => share.stream(rg, first_row, sink)?,
                    Err(e) => skip_or_fail(mode, e, skipped, unit(rg))?,
                }
            }
            ReadMode::Skip => match share.decode(rg, true) {
                Ok(batches) => {
                    let mut row = first_row;
                    for b in batches {
                        let n = b.num_rows() as u64;
                        sink(b, row).map_err(ReadError::Sink)?;
                        row += n;
                    }
                }
                Err(e) => skip_or_fail(mode, e, skipped, unit(rg))?,
            },
        }
        first_row += file.row_groups[rg].rows;
    }
    Ok(())
}

/// The indices in `schema` of the columns `cols` names, in the order of `cols` (every column
/// of a name the file repeats, which the plan then refuses; names it lacks left out).
fn column_indices(schema: &Schema, cols: &[String]) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::with_capacity(cols.len());
    for c in cols {
        for (i, f) in schema.fields().iter().enumerate() {
            if f.name() == c && !out.contains(&i) {
                out.push(i);
            }
        }
    }
    out
}

/// The file-schema (root) indices of the columns `cols` names, a field of a flattened struct
/// standing for its struct (decoded whole, then flattened and projected by [`shaped`]).
fn root_indices(schema: &Schema, cols: &[String], flatten: &[String]) -> Vec<usize> {
    let mut out = column_indices(schema, cols);
    for (i, f) in schema.fields().iter().enumerate() {
        if let DataType::Struct(children) = f.data_type()
            && flatten.contains(f.name())
            && children.iter().any(|c| cols.contains(c.name()))
            && !out.contains(&i)
        {
            out.push(i);
        }
    }
    out
}

/// The batch with each struct column `flatten` names replaced by its fields (nulls of the
/// struct carried into them), as [`crate::input::flattened_schema`] describes.
fn flatten_batch(path: &Path, b: RecordBatch, flatten: &[String]) -> Result<RecordBatch, IoError> {
    if flatten.is_empty() {
        return Ok(b);
    }
    let schema = b.schema();
    let mut cols = Vec::with_capacity(b.num_columns());
    for (f, c) in schema.fields().iter().zip(b.columns()) {
        match c.as_struct_opt() {
            Some(st) if flatten.contains(f.name()) => {
                for child in st.columns() {
                    let nulls = arrow::buffer::NullBuffer::union(
                        st.nulls(),
                        child.logical_nulls().as_ref(),
                    );
                    let data = child
                        .to_data()
                        .into_builder()
                        .nulls(nulls)
                        .build()
                        .map_err(|e| IoError::format(path, Location::File, e))?;
                    cols.push(arrow::array::make_array(data));
                }
            }
            _ => cols.push(c.clone()),
        }
    }
    RecordBatch::try_new(Arc::new(flattened_schema(&schema, flatten)), cols)
        .map_err(|e| IoError::format(path, Location::File, e))
}

/// A decoded batch as readers hand it on: `[input] flatten` applied, its string columns as Utf8
/// and, with `[input] columns`, only those columns, in the order listed there (a parquet
/// projection mask keeps the file's order).
fn shaped(
    path: &Path,
    b: RecordBatch,
    spec: &ReadSpec,
    at: Location,
) -> Result<RecordBatch, IoError> {
    if b.schema().index_of(&spec.text_column).is_err() {
        return Err(IoError::Column {
            path: path.to_path_buf(),
            column: spec.text_column.clone(),
            message: "missing".into(),
        });
    }
    let b = normalize_strings(path, flatten_batch(path, b, &spec.flatten)?)?;
    match &spec.columns {
        Some(cols) => b
            .project(&column_indices(&b.schema(), cols))
            .map_err(|e| IoError::format(path, at, e)),
        None => Ok(b),
    }
}

/// Casts every string column that is not Utf8 (LargeUtf8, Utf8View, dictionary-encoded) to
/// Utf8 — the same values, in the one string type steps read. Batches of plain Utf8 columns
/// (FineWeb's, JSONL's) pass through untouched.
fn normalize_strings(path: &Path, batch: RecordBatch) -> Result<RecordBatch, IoError> {
    let schema = batch.schema();
    let recast = |t: &DataType| is_string(t) && t != &DataType::Utf8;
    if !schema.fields().iter().any(|f| recast(f.data_type())) {
        return Ok(batch);
    }
    let mut cols = batch.columns().to_vec();
    for (i, f) in schema.fields().iter().enumerate() {
        if recast(f.data_type()) {
            cols[i] =
                arrow::compute::cast(&cols[i], &DataType::Utf8).map_err(|e| IoError::Column {
                    path: path.to_path_buf(),
                    column: f.name().clone(),
                    message: format!("reading {} as a string column: {e}", f.data_type()),
                })?;
        }
    }
    RecordBatch::try_new(normalized_schema(&schema), cols)
        .map_err(|e| IoError::format(path, Location::File, e))
}

fn open_jsonl(path: &Path, comp: JsonCompression) -> Result<Box<dyn BufRead>, IoError> {
    let f: Box<dyn Read> = match crate::store::ObjectUrl::from_path(path) {
        Some(url) => {
            let url = url.map_err(|m| IoError::format(path, Location::File, m))?;
            Box::new(crate::store::ObjectReader::open(&url)?)
        }
        None => Box::new(File::open(path).map_err(|e| IoError::os(path, e))?),
    };
    Ok(match comp {
        JsonCompression::None => Box::new(BufReader::with_capacity(1 << 20, f)),
        // A decompressor that fails part-way through a read returns the error, not the text it
        // decoded before it: small reads keep that loss (and what skip mode leaves out) small.
        JsonCompression::Gzip => Box::new(BufReader::with_capacity(
            DECODED_READ,
            flate2::read::MultiGzDecoder::new(BufReader::new(f)),
        )),
        JsonCompression::Zstd => Box::new(BufReader::with_capacity(
            DECODED_READ,
            zstd::Decoder::new(f).map_err(|e| IoError::os(path, e))?,
        )),
    })
}

/// Bytes of decompressed text asked for at a time.
const DECODED_READ: usize = 64 << 10;

/// The name of a compression in messages.
fn codec(comp: JsonCompression) -> Option<&'static str> {
    match comp {
        JsonCompression::None => None,
        JsonCompression::Gzip => Some("gzip"),
        JsonCompression::Zstd => Some("zstd"),
    }
}

/// The UTF-8 byte order mark, accepted (and dropped) at the start of a JSONL file.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The lines of a JSONL file, decompressed, with read errors located at the line they stop.
struct LineReader<'a> {
    path: &'a Path,
    comp: JsonCompression,
    r: Box<dyn BufRead>,
    line: Vec<u8>,
    /// Lines read so far (the 1-based number of the current line).
    line_no: u64,
}

impl<'a> LineReader<'a> {
    fn open(path: &'a Path, comp: JsonCompression) -> Result<Self, IoError> {
        Ok(LineReader {
            path,
            comp,
            r: open_jsonl(path, comp)?,
            line: Vec::new(),
            line_no: 0,
        })
    }

    /// Appends the next line to `buf` (its newline included, a leading BOM of line 1 dropped)
    /// and returns its number; `None` at the end. On an error, `buf` may hold part of the line.
    fn append_line(&mut self, buf: &mut Vec<u8>) -> Result<Option<u64>, IoError> {
        let start = buf.len();
        let read = self
            .r
            .read_until(b'\n', buf)
            .map_err(|e| self.read_error(e))?;
        if read == 0 {
            return Ok(None);
        }
        self.line_no += 1;
        if self.line_no == 1 && buf[start..].starts_with(BOM) {
            buf.drain(start..start + BOM.len());
        }
        Ok(Some(self.line_no))
    }

    /// The next line's number and bytes, as [`append_line`](Self::append_line) reads them.
    fn next_line(&mut self) -> Result<Option<(u64, &[u8])>, IoError> {
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        let r = self.append_line(&mut line);
        self.line = line;
        Ok(r?.map(|n| (n, &self.line[..])))
    }

    /// A failed read at the next line: the decompressor's error named as such (`zstd: …`);
    /// transport and OS errors as they are.
    fn read_error(&self, e: std::io::Error) -> IoError {
        let at = Location::Line(self.line_no + 1);
        match codec(self.comp) {
            Some(name) if e.raw_os_error().is_none() => {
                let os = IoError::Os {
                    path: self.path.to_path_buf(),
                    at: at.clone(),
                    source: e,
                };
                if os.is_transport() {
                    return os;
                }
                let IoError::Os { source, .. } = os else {
                    unreachable!()
                };
                IoError::format(self.path, at, format!("{name}: {source}"))
            }
            _ => IoError::Os {
                path: self.path.to_path_buf(),
                at,
                source: e,
            },
        }
    }

    /// Reads the rest of the stream to see whether it is corrupt: its decompression error (at the
    /// line where it surfaced), or `None` when the stream ends cleanly. Transport failures are
    /// returned as errors.
    fn corruption(&mut self) -> Result<Option<IoError>, IoError> {
        if self.comp == JsonCompression::None {
            return Ok(None);
        }
        loop {
            match self.next_line() {
                Ok(Some(_)) => {}
                Ok(None) => return Ok(None),
                Err(e) if e.is_transport() => return Err(e),
                Err(e) => return Ok(Some(e)),
            }
        }
    }
}

/// The decompression error `corrupt` (found reading on from `line`) as the error of `line`: the
/// stream, not the JSON, is what is wrong from there.
fn corrupt_from(path: &Path, line: u64, corrupt: IoError) -> IoError {
    let (at, message) = match corrupt {
        IoError::Format { at, message, .. } => (at, message),
        other => (Location::File, other.to_string()),
    };
    let noticed = match at {
        Location::Line(l) if l != line => format!(" (the decompressor noticed at line {l})"),
        _ => String::new(),
    };
    IoError::format(
        path,
        Location::Line(line),
        format!("{message}; the compressed stream is corrupt from here{noticed}"),
    )
}

/// Lines used to infer a JSONL file's schema.
const INFER_LINES: usize = 1000;

/// Infers a JSONL file's schema from its first lines.
pub fn infer_jsonl_schema(path: &Path, comp: JsonCompression) -> Result<SchemaRef, IoError> {
    infer_jsonl_schema_with(path, comp, ReadMode::Fail)
}

/// [`infer_jsonl_schema`]; in [`ReadMode::Skip`] lines that do not parse are left out of the
/// sample and a failing stream ends it (the read itself then skips them as units), so only a
/// file without a single readable record is an error.
pub fn infer_jsonl_schema_with(
    path: &Path,
    comp: JsonCompression,
    mode: ReadMode,
) -> Result<SchemaRef, IoError> {
    let mut r = LineReader::open(path, comp)?;
    let mut sample = Vec::new();
    let mut first_error = None;
    while sample.len() < INFER_LINES {
        let (n, line) = match r.next_line() {
            Ok(Some(l)) => l,
            Ok(None) => break,
            Err(e) if mode == ReadMode::Skip && !e.is_transport() => {
                first_error.get_or_insert(e);
                break;
            }
            Err(e) => return Err(e),
        };
        let v = match std::str::from_utf8(line) {
            Err(e) => Err(format!("not valid UTF-8: {e}")),
            Ok(s) if s.trim().is_empty() => continue,
            Ok(s) => match serde_json::from_str::<serde_json::Value>(s) {
                Err(e) => Err(format!("not valid JSON: {e}")),
                Ok(v) if !v.is_object() => Err("expected a JSON object per line".to_string()),
                Ok(v) => Ok(v),
            },
        };
        match v {
            Ok(v) => sample.push(v),
            Err(m) => {
                let e = IoError::format(path, Location::Line(n), m);
                // a compressed stream that turns to garbage: name the decompressor's error
                let e = match r.corruption()? {
                    Some(c) => corrupt_from(path, n, c),
                    None => e,
                };
                if mode == ReadMode::Fail {
                    return Err(e);
                }
                first_error.get_or_insert(e);
                if r.comp != JsonCompression::None {
                    break; // the stream was read to its end
                }
            }
        }
    }
    if sample.is_empty() {
        if let Some(e) = first_error {
            return Err(e);
        }
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

/// A decoder error as a message: syntax errors say "not valid JSON", type errors name the field.
fn json_error(e: &arrow::error::ArrowError) -> String {
    let m = match e {
        arrow::error::ArrowError::JsonError(m) => m.clone(),
        other => other.to_string(),
    };
    if m.starts_with("whilst decoding field") || m.starts_with("column '") {
        m
    } else {
        format!("not valid JSON: {m}")
    }
}

/// One non-blank line of the current JSONL batch.
struct Entry {
    /// 1-based line number.
    line: u64,
    /// File-row index (non-blank lines before it).
    row: u64,
    /// Its bytes in the batch buffer, or why it cannot be a document (not UTF-8).
    bytes: Result<Range<usize>, String>,
}

/// What became of a batch.
enum Flushed {
    /// Go on reading.
    More,
    /// The rest of the file is skipped (a corrupt compressed stream).
    Stop,
}

/// A JSONL read: lines are read `batch_rows` at a time into one buffer, each fed to the decoder
/// as it comes, and the batch is converted at once (the fast path); a batch that fails anywhere
/// is decoded again line by line from the buffer, to find (and, in skip mode, leave out) its bad
/// lines.
struct JsonlRead<'a> {
    file: &'a InputFile,
    comp: JsonCompression,
    spec: &'a ReadSpec,
    mode: ReadMode,
    decoder: Option<arrow::json::reader::Decoder>,
    /// The batch's lines, each ending in `\n`.
    buf: Vec<u8>,
    entries: Vec<Entry>,
    /// Rows (non-blank lines) so far.
    rows: u64,
    /// Whether every line of the batch so far was fed to the decoder cleanly.
    fast: bool,
    /// Whether the rest of the stream was read through once and found intact.
    stream_checked: bool,
}

impl<'a> JsonlRead<'a> {
    fn new(file: &'a InputFile, comp: JsonCompression, spec: &'a ReadSpec, mode: ReadMode) -> Self {
        JsonlRead {
            file,
            comp,
            spec,
            mode,
            decoder: None,
            buf: Vec::new(),
            entries: Vec::with_capacity(spec.batch_rows),
            rows: 0,
            fast: true,
            stream_checked: comp == JsonCompression::None,
        }
    }

    fn path(&self) -> &'a Path {
        &self.file.path
    }

    fn run<E>(
        mut self,
        sink: &mut impl FnMut(RecordBatch, u64) -> Result<(), E>,
        skipped: &mut Vec<SkippedUnit>,
    ) -> Result<(), ReadError<E>> {
        let path = self.path();
        let mut lines = match LineReader::open(path, self.comp) {
            Ok(l) => l,
            Err(e) => {
                return skip_or_fail(self.mode, e, skipped, |error| SkippedUnit {
                    path: path.to_path_buf(),
                    location: SkipLocation::File,
                    rows: None,
                    error,
                });
            }
        };
        loop {
            // lines are read straight into the batch buffer
            let start = self.buf.len();
            let line_no = match lines.append_line(&mut self.buf) {
                Ok(Some(l)) => l,
                Ok(None) => break,
                Err(e) => {
                    self.buf.truncate(start);
                    // the readable lines before the failure are delivered, the rest skipped
                    if self.mode == ReadMode::Skip && !e.is_transport() {
                        self.flush(&mut lines, sink, skipped)?;
                    }
                    let from_line = lines.line_no + 1;
                    return skip_or_fail(self.mode, e, skipped, |error| SkippedUnit {
                        path: path.to_path_buf(),
                        location: SkipLocation::Rest { from_line },
                        rows: None,
                        error,
                    });
                }
            };
            let line = &self.buf[start..];
            if line.iter().all(|b| b.is_ascii_whitespace()) {
                self.buf.truncate(start);
                continue;
            }
            let bytes = match std::str::from_utf8(line) {
                Ok(_) => {
                    if line.last() != Some(&b'\n') {
                        self.buf.push(b'\n');
                    }
                    Ok(start..self.buf.len())
                }
                Err(e) => {
                    let m = format!("not valid UTF-8: {e}");
                    self.buf.truncate(start);
                    Err(m)
                }
            };
            // each line is decoded as it is read (while it is in cache); a batch that fails on
            // the way is decoded again line by line when it is flushed
            if self.fast {
                self.fast = match &bytes {
                    Ok(range) => self.feed(range.clone()).is_ok(),
                    Err(_) => false,
                };
            }
            self.entries.push(Entry {
                line: line_no,
                row: self.rows,
                bytes,
            });
            self.rows += 1;
            if self.entries.len() == self.spec.batch_rows
                && let Flushed::Stop = self.flush(&mut lines, sink, skipped)?
            {
                return Ok(());
            }
        }
        self.flush(&mut lines, sink, skipped)?;
        Ok(())
    }

    fn new_decoder(&self, rows: usize) -> Result<arrow::json::reader::Decoder, IoError> {
        arrow::json::ReaderBuilder::new(self.file.schema.clone())
            // one more than the batch holds, so that a line holding two values shows as a count
            // mismatch instead of stopping the decode
            .with_batch_size(rows + 1)
            .with_strict_mode(true)
            .build_decoder()
            .map_err(|e| IoError::format(self.path(), Location::File, e))
    }

    /// Feeds `bytes` (whole lines) to the decoder; an error leaves no decoder behind.
    fn feed(&mut self, bytes: Range<usize>) -> Result<(), String> {
        let mut d = match self.decoder.take() {
            Some(d) => d,
            None => self
                .new_decoder(self.spec.batch_rows)
                .map_err(|e| e.to_string())?,
        };
        let buf = &self.buf[bytes];
        let used = d.decode(buf).map_err(|e| json_error(&e))?;
        if used != buf.len() {
            return Err("expected one JSON object per line, found more values".into());
        }
        self.decoder = Some(d);
        Ok(())
    }

    /// The batch of the `rows` lines fed since the last finish (a decoder that flushed cleanly is
    /// kept for the next batch).
    fn finish(&mut self, rows: usize) -> Result<RecordBatch, String> {
        let mut d = self.decoder.take().ok_or("nothing decoded")?;
        if d.len() != rows {
            return Err(format!(
                "expected one JSON object per line, found {} values",
                d.len()
            ));
        }
        let b = d.flush().map_err(|e| json_error(&e))?;
        self.decoder = Some(d);
        b.ok_or_else(|| "no JSON object".to_string())
    }

    /// Decodes and delivers the batch's lines, then clears it.
    fn flush<E>(
        &mut self,
        lines: &mut LineReader<'a>,
        sink: &mut impl FnMut(RecordBatch, u64) -> Result<(), E>,
        skipped: &mut Vec<SkippedUnit>,
    ) -> Result<Flushed, ReadError<E>> {
        if self.entries.is_empty() {
            return Ok(Flushed::More);
        }
        let r = self.flush_entries(lines, sink, skipped);
        self.entries.clear();
        self.buf.clear();
        self.fast = true;
        r
    }

    fn flush_entries<E>(
        &mut self,
        lines: &mut LineReader<'a>,
        sink: &mut impl FnMut(RecordBatch, u64) -> Result<(), E>,
        skipped: &mut Vec<SkippedUnit>,
    ) -> Result<Flushed, ReadError<E>> {
        let path = self.path();
        let io = ReadError::Io;
        // the fast path: every line UTF-8 and fed cleanly, the batch converts whole
        if self.fast
            && let Ok(b) = self.finish(self.entries.len())
        {
            let first = self.entries[0].row;
            sink(
                shaped(self.path(), b, self.spec, Location::File).map_err(io)?,
                first,
            )
            .map_err(ReadError::Sink)?;
            return Ok(Flushed::More);
        }
        // line by line, with a fresh decoder: each line's one-row batch, or its error
        self.decoder = None;
        let mut decoded: Vec<Result<RecordBatch, String>> = Vec::with_capacity(self.entries.len());
        for i in 0..self.entries.len() {
            let r = match self.entries[i].bytes.clone() {
                Ok(range) => self.feed(range).and_then(|()| self.finish(1)),
                Err(m) => Err(m),
            };
            decoded.push(r);
        }
        let first_bad = decoded
            .iter()
            .position(|r| r.is_err())
            .expect("a batch that failed to decode has a bad line");
        let bad_line = self.entries[first_bad].line;
        // a compressed stream may turn to garbage before its decompressor notices
        let corrupt = match self.stream_checked {
            true => None,
            false => lines.corruption().map_err(io)?,
        }
        .map(|c| corrupt_from(path, bad_line, c));
        if self.mode == ReadMode::Fail {
            let e = corrupt.unwrap_or_else(|| {
                let m = decoded[first_bad].as_ref().expect_err("bad");
                IoError::format(path, Location::Line(bad_line), m)
            });
            return Err(io(e));
        }
        if corrupt.is_none() && !self.stream_checked {
            // intact: read on after this batch's lines in a fresh stream
            let at = lines.line_no;
            *lines = LineReader::open(path, self.comp).map_err(io)?;
            while lines.line_no < at {
                if lines.next_line().map_err(io)?.is_none() {
                    break;
                }
            }
            self.stream_checked = true;
        }
        let upto = if corrupt.is_some() {
            first_bad
        } else {
            decoded.len()
        };
        // deliver the runs of good lines; record the bad ones
        let mut run: Vec<RecordBatch> = Vec::new();
        let mut run_first = 0u64;
        for (i, r) in decoded.into_iter().enumerate().take(upto) {
            match r {
                Ok(b) => {
                    if run.is_empty() {
                        run_first = self.entries[i].row;
                    }
                    run.push(b);
                }
                Err(m) => {
                    self.deliver(&mut run, run_first, sink)?;
                    let line = self.entries[i].line;
                    let error = IoError::format(path, Location::Line(line), m).to_string();
                    match skipped.last_mut() {
                        Some(SkippedUnit {
                            location: SkipLocation::Lines { last, .. },
                            rows: Some(rows),
                            path: p,
                            ..
                        }) if p == path && *last + 1 == line => {
                            *last = line;
                            *rows += 1;
                        }
                        _ => skipped.push(SkippedUnit {
                            path: path.to_path_buf(),
                            location: SkipLocation::Lines {
                                first: line,
                                last: line,
                            },
                            rows: Some(1),
                            error,
                        }),
                    }
                }
            }
        }
        self.deliver(&mut run, run_first, sink)?;
        match corrupt {
            Some(e) => {
                skipped.push(SkippedUnit {
                    path: path.to_path_buf(),
                    location: SkipLocation::Rest {
                        from_line: bad_line,
                    },
                    rows: None,
                    error: e.to_string(),
                });
                Ok(Flushed::Stop)
            }
            None => Ok(Flushed::More),
        }
    }

    /// Delivers a run of consecutive good rows (one-row batches) as one batch.
    fn deliver<E>(
        &self,
        run: &mut Vec<RecordBatch>,
        first: u64,
        sink: &mut impl FnMut(RecordBatch, u64) -> Result<(), E>,
    ) -> Result<(), ReadError<E>> {
        if run.is_empty() {
            return Ok(());
        }
        let b = arrow::compute::concat_batches(&run[0].schema(), run.iter())
            .map_err(|e| ReadError::Io(IoError::format(self.path(), Location::File, e)))?;
        run.clear();
        sink(
            shaped(self.path(), b, self.spec, Location::File).map_err(ReadError::Io)?,
            first,
        )
        .map_err(ReadError::Sink)
    }
}

#[cfg(test)]
#[path = "read_tests.rs"]
mod tests;
