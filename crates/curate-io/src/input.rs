//! Input discovery: paths and globs → a sorted list of files with their shapes.
//!
//! Only footers are read here (parquet metadata), never document data, so planning a run over
//! terabytes is cheap. Inputs are sorted by path; a file's position in that list is its
//! *ordinal*, the top bits of every [`DocKey`](https://docs.rs/curate-core) it yields.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::{DataType, Schema, SchemaRef};
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use serde::Serialize;

use crate::error::{IoError, Location};
use crate::read::ReadMode;
use crate::store::{self, ObjectUrl};

/// Compression of a JSONL file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JsonCompression {
    /// Plain text.
    None,
    /// `.gz`.
    Gzip,
    /// `.zst`.
    Zstd,
}

/// The format of an input file, from its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Apache Parquet.
    Parquet,
    /// JSON Lines, possibly compressed.
    Jsonl(JsonCompression),
}

impl Format {
    /// Detects the format from a file name: `.parquet`, `.jsonl`/`.json`/`.ndjson` with optional
    /// `.gz` / `.zst`.
    pub fn detect(path: &Path) -> Option<Format> {
        let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
        let (stem, comp) = if let Some(s) = name.strip_suffix(".gz") {
            (s.to_string(), JsonCompression::Gzip)
        } else if let Some(s) = name.strip_suffix(".zst") {
            (s.to_string(), JsonCompression::Zstd)
        } else {
            (name.clone(), JsonCompression::None)
        };
        if comp == JsonCompression::None && stem.ends_with(".parquet") {
            return Some(Format::Parquet);
        }
        if stem.ends_with(".jsonl") || stem.ends_with(".json") || stem.ends_with(".ndjson") {
            return Some(Format::Jsonl(comp));
        }
        None
    }
}

/// Shape of one parquet row group.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RowGroup {
    /// Rows in the group.
    pub rows: u64,
    /// Uncompressed bytes (for progress and planning).
    pub bytes: u64,
}

/// An input file, inspected.
#[derive(Debug, Clone)]
pub struct InputFile {
    /// Path as opened.
    pub path: PathBuf,
    /// Format.
    pub format: Format,
    /// Size in bytes.
    pub size: u64,
    /// Row groups (parquet) — a JSONL file is one unit with unknown row count.
    pub row_groups: Vec<RowGroup>,
    /// Arrow schema of the file (parquet: from the footer; JSONL: inferred from its first lines).
    pub schema: SchemaRef,
    /// Parquet metadata, loaded once and shared by every reader of this file.
    pub parquet: Option<ArrowReaderMetadata>,
}

impl InputFile {
    /// Total rows (parquet; 0 for JSONL, whose count is unknown until read).
    pub fn rows(&self) -> u64 {
        self.row_groups.iter().map(|r| r.rows).sum()
    }
}

/// Expands `patterns` (files or globs; relative ones stay relative to the working directory,
/// `base`, which is named in messages) into a sorted, de-duplicated list.
/// Every pattern that matches nothing is an error; all such errors are returned together.
pub fn resolve(patterns: &[String], base: &Path) -> Result<Vec<PathBuf>, Vec<String>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for pat in patterns {
        if let Some(url) = ObjectUrl::parse(pat) {
            match url {
                Err(m) => errors.push(format!("input {m}")),
                Ok(u) if pat.contains(['*', '?', '[']) => match store::glob(&u) {
                    Ok(v) if v.is_empty() => {
                        errors.push(format!("input pattern \"{pat}\" matches no object"))
                    }
                    Ok(v) => out.extend(v.iter().map(ObjectUrl::to_path)),
                    Err(m) => errors.push(m),
                },
                // existence is checked when the object's footer is read
                Ok(u) => out.push(u.to_path()),
            }
            continue;
        }
        // Relative patterns stay relative (to the working directory), so manifests record
        // paths as the user wrote them and are the same from any checkout.
        let full = PathBuf::from(pat);
        let full_s = pat.clone();
        if pat.contains(['*', '?', '[']) {
            match glob::glob(&full_s) {
                Ok(paths) => {
                    let before = out.len();
                    for p in paths {
                        match p {
                            Ok(p) if p.is_file() => out.push(p),
                            Ok(_) => {}
                            Err(e) => errors.push(format!("{}: {}", e.path().display(), e.error())),
                        }
                    }
                    if out.len() == before {
                        errors.push(format!(
                            "input pattern \"{pat}\" matches no file (looked in {})",
                            base.display()
                        ));
                    }
                }
                Err(e) => errors.push(format!("input pattern \"{pat}\" is not a valid glob: {e}")),
            }
        } else if full.is_dir() {
            errors.push(format!(
                "input path {} is a directory; use a glob such as \"{pat}/*.parquet\"",
                full.display()
            ));
        } else {
            out.push(full);
        }
    }
    out.sort();
    out.dedup();
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Reads an input's footer (parquet) or first lines (JSONL) and checks the text column.
pub fn inspect(path: &Path, text_column: &str) -> Result<InputFile, IoError> {
    inspect_with(path, text_column, ReadMode::Fail)
}

/// [`inspect`]; in [`ReadMode::Skip`] a JSONL file's schema is inferred from its readable lines
/// only (see [`crate::read::infer_jsonl_schema_with`]), so that its bad lines are left to the
/// read to skip. A parquet footer is needed either way.
pub fn inspect_with(path: &Path, text_column: &str, mode: ReadMode) -> Result<InputFile, IoError> {
    let format = Format::detect(path).ok_or_else(|| {
        IoError::format(
            path,
            Location::File,
            "unknown input format; expected .parquet, .jsonl, .jsonl.gz or .jsonl.zst",
        )
    })?;
    if let Some(url) = ObjectUrl::from_path(path) {
        let url = url.map_err(|m| IoError::format(path, Location::File, m))?;
        return inspect_object(path, &url, format, text_column, mode);
    }
    let file = File::open(path).map_err(|e| IoError::os(path, e))?;
    let size = file.metadata().map_err(|e| IoError::os(path, e))?.len();
    if size == 0 {
        return Err(IoError::format(
            path,
            Location::File,
            "file is empty (0 bytes)",
        ));
    }
    let (row_groups, schema, parquet) = match format {
        Format::Parquet => {
            let meta =
                ArrowReaderMetadata::load(&file, ArrowReaderOptions::new()).map_err(|e| {
                    IoError::format(
                        path,
                        Location::File,
                        format!("not a readable parquet file: {e}"),
                    )
                })?;
            (row_group_shapes(&meta), meta.schema().clone(), Some(meta))
        }
        Format::Jsonl(comp) => {
            let schema = crate::read::infer_jsonl_schema_with(path, comp, mode)?;
            (Vec::new(), schema, None)
        }
    };
    check_text_column(path, &schema, text_column)?;
    Ok(InputFile {
        path: path.to_path_buf(),
        format,
        size,
        row_groups,
        schema,
        parquet,
    })
}

/// [`inspect`] for an `s3://` object: one HEAD and the footer's byte range (parquet), or the
/// first lines (JSONL).
fn inspect_object(
    path: &Path,
    url: &ObjectUrl,
    format: Format,
    text_column: &str,
    mode: ReadMode,
) -> Result<InputFile, IoError> {
    let size = store::head(url)?
        .ok_or_else(|| IoError::Remote {
            path: path.to_path_buf(),
            at: Location::File,
            message: "no such object".into(),
        })?
        .size;
    if size == 0 {
        return Err(IoError::format(
            path,
            Location::File,
            "file is empty (0 bytes)",
        ));
    }
    let (row_groups, schema, parquet) = match format {
        Format::Parquet => {
            let mut reader = store::parquet_reader(url, size)?;
            let meta = store::block_on(ArrowReaderMetadata::load_async(
                &mut reader,
                ArrowReaderOptions::new(),
            ))
            .map_err(|e| {
                IoError::format(
                    path,
                    Location::File,
                    format!("not a readable parquet file: {e}"),
                )
            })?;
            (row_group_shapes(&meta), meta.schema().clone(), Some(meta))
        }
        Format::Jsonl(comp) => (
            Vec::new(),
            crate::read::infer_jsonl_schema_with(path, comp, mode)?,
            None,
        ),
    };
    check_text_column(path, &schema, text_column)?;
    Ok(InputFile {
        path: path.to_path_buf(),
        format,
        size,
        row_groups,
        schema,
        parquet,
    })
}

fn row_group_shapes(meta: &ArrowReaderMetadata) -> Vec<RowGroup> {
    meta.metadata()
        .row_groups()
        .iter()
        .map(|rg| RowGroup {
            rows: rg.num_rows() as u64,
            bytes: rg.total_byte_size() as u64,
        })
        .collect()
}

/// Checks `schema` has a string column named `text_column`.
pub fn check_text_column(path: &Path, schema: &Schema, text_column: &str) -> Result<(), IoError> {
    match schema.field_with_name(text_column) {
        Err(_) => {
            let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            Err(IoError::Column {
                path: path.to_path_buf(),
                column: text_column.to_string(),
                message: format!("missing; the file has columns: {}", names.join(", ")),
            })
        }
        Ok(f) => match f.data_type() {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Ok(()),
            other => Err(IoError::Column {
                path: path.to_path_buf(),
                column: text_column.to_string(),
                message: format!("has type {other}, expected a string column"),
            }),
        },
    }
}

/// The schema documents have once read: the file schema with the text column as Utf8.
pub fn normalized_schema(schema: &Schema, text_column: &str) -> SchemaRef {
    let fields: Vec<_> = schema
        .fields()
        .iter()
        .map(|f| {
            if f.name() == text_column && f.data_type() != &DataType::Utf8 {
                Arc::new(f.as_ref().clone().with_data_type(DataType::Utf8))
            } else {
                f.clone()
            }
        })
        .collect();
    Arc::new(Schema::new(fields))
}
