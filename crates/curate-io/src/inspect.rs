//! Inspecting an input before it is read: a parquet file's footer or a JSONL file's first
//! lines, and the text column checked. Sits above [`crate::input`] (the input types) and
//! [`crate::read`] (JSONL schema inference), which do not import each other.

use std::fs::File;
use std::path::Path;

use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};

use crate::error::{IoError, Location};
use crate::input::{Format, InputFile, RowGroup, check_text_column};
use crate::read::{ReadMode, infer_jsonl_schema_with};
use crate::store::{self, ObjectUrl};

/// Reads an input's footer (parquet) or first lines (JSONL) and checks the text column.
pub fn inspect(path: &Path, text_column: &str) -> Result<InputFile, IoError> {
    inspect_with(path, text_column, ReadMode::Fail)
}

/// [`inspect`]; in [`ReadMode::Skip`] a JSONL file's schema is inferred from its readable lines
/// only (see [`infer_jsonl_schema_with`]), so that its bad lines are left to the
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
            let schema = infer_jsonl_schema_with(path, comp, mode)?;
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
        Format::Jsonl(comp) => (Vec::new(), infer_jsonl_schema_with(path, comp, mode)?, None),
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
