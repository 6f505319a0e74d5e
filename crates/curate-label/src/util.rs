//! Small shared helpers: atomic files, parquet and JSONL reading, time parsing.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Schema};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::LabelError;

/// Writes `bytes` to `path` atomically (curate-io's one atomic writer: temp file in the same
/// directory, fsync, rename, fsync of the directory).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), LabelError> {
    curate_io::atomic::write_atomic(path, bytes).map_err(|e| {
        let (path, source) = e.into_os();
        LabelError::Io { path, source }
    })
}

/// The writer properties of every parquet file this crate writes (recorded here so they are
/// explicit: zstd level 3, one row group per 64k rows).
pub fn writer_props() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(3).expect("zstd level"),
        ))
        .set_max_row_group_row_count(Some(65_536))
        .set_created_by("curate-label".to_string())
        .build()
}

/// Writes record batches of one schema to a parquet file atomically.
pub fn write_parquet(
    path: &Path,
    schema: Arc<Schema>,
    batches: &[RecordBatch],
) -> Result<(), LabelError> {
    let mut buf = Vec::new();
    {
        let mut w = ArrowWriter::try_new(&mut buf, schema, Some(writer_props())).map_err(|e| {
            LabelError::Parquet {
                path: path.to_path_buf(),
                message: e.to_string(),
            }
        })?;
        for b in batches {
            w.write(b).map_err(|e| LabelError::Parquet {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        }
        w.close().map_err(|e| LabelError::Parquet {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    }
    write_atomic(path, &buf)
}

/// Reads every record batch of a parquet file, optionally projecting columns by name (missing
/// names are an error naming the file and column).
pub fn read_parquet(path: &Path, columns: Option<&[&str]>) -> Result<Vec<RecordBatch>, LabelError> {
    let perr = |m: String| LabelError::Parquet {
        path: path.to_path_buf(),
        message: m,
    };
    let f = File::open(path).map_err(|e| LabelError::io(path, e))?;
    let mut b = ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| perr(e.to_string()))?;
    if let Some(cols) = columns {
        let schema = b.schema().clone();
        let mut idx = Vec::new();
        for c in cols {
            match schema.index_of(c) {
                Ok(i) => idx.push(i),
                Err(_) => return Err(perr(format!("missing column `{c}`"))),
            }
        }
        let mask = parquet::arrow::ProjectionMask::roots(b.parquet_schema(), idx);
        b = b.with_projection(mask);
    }
    let reader = b
        .with_batch_size(8192)
        .build()
        .map_err(|e| perr(e.to_string()))?;
    let mut out = Vec::new();
    for (i, rb) in reader.enumerate() {
        out.push(rb.map_err(|e| perr(format!("batch {i}: {e}")))?);
    }
    Ok(out)
}

/// A column of a record batch by name, or an error naming the file and column.
pub fn column<'a>(
    rb: &'a RecordBatch,
    name: &str,
    path: &Path,
) -> Result<&'a ArrayRef, LabelError> {
    rb.column_by_name(name).ok_or_else(|| LabelError::Parquet {
        path: path.to_path_buf(),
        message: format!("missing column `{name}`"),
    })
}

/// The value of a string-like column at `i` (Utf8, LargeUtf8, Utf8View or anything
/// displayable), or `None` for a null.
pub fn str_value(a: &dyn Array, i: usize) -> Option<String> {
    if a.is_null(i) {
        return None;
    }
    match a.data_type() {
        DataType::Utf8 => Some(a.as_string::<i32>().value(i).to_string()),
        DataType::LargeUtf8 => Some(a.as_string::<i64>().value(i).to_string()),
        DataType::Utf8View => Some(a.as_string_view().value(i).to_string()),
        _ => arrow::util::display::array_value_to_string(a, i).ok(),
    }
}

/// The value of a numeric column at `i` as f64, or `None` for a null or a non-number.
pub fn f64_value(a: &dyn Array, i: usize) -> Option<f64> {
    if a.is_null(i) {
        return None;
    }
    let c = arrow::compute::cast(&a.slice(i, 1), &DataType::Float64).ok()?;
    let c = c.as_primitive::<arrow::datatypes::Float64Type>();
    (!c.is_null(0)).then(|| c.value(0))
}

/// Reads a JSONL file line by line (`.jsonl` or `.json` with one object per line), calling `f`
/// with the 1-based line number and the parsed object.
pub fn read_jsonl(
    path: &Path,
    mut f: impl FnMut(usize, serde_json::Map<String, serde_json::Value>) -> Result<(), LabelError>,
) -> Result<(), LabelError> {
    let file = File::open(path).map_err(|e| LabelError::io(path, e))?;
    let reader = BufReader::new(file);
    for (n, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| LabelError::io(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(&line).map_err(|e| LabelError::Input {
            path: path.to_path_buf(),
            message: format!("line {}: not JSON: {e}", n + 1),
        })?;
        let serde_json::Value::Object(m) = v else {
            return Err(LabelError::Input {
                path: path.to_path_buf(),
                message: format!("line {}: not a JSON object", n + 1),
            });
        };
        f(n + 1, m)?;
    }
    Ok(())
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses an RFC 3339 timestamp (`2026-11-30T01:02:03.5Z`, `...+01:00`) to Unix seconds.
pub fn parse_rfc3339(s: &str) -> Option<f64> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b't' || b[10] == b' ')
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    let mut frac = 0.0;
    if let Some(r) = rest.strip_prefix('.') {
        let end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
        frac = format!("0.{}", &r[..end]).parse().ok()?;
        rest = &r[end..];
    }
    let offset = if rest.eq_ignore_ascii_case("z") {
        0
    } else {
        let sign = match rest.as_bytes().first()? {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let oh: i64 = rest.get(1..3)?.parse().ok()?;
        let om: i64 = rest.get(4..6)?.parse().ok()?;
        sign * (oh * 3600 + om * 60)
    };
    let days = days_from_civil(y, mo as u32, d as u32);
    Some((days * 86_400 + h * 3600 + mi * 60 + se - offset) as f64 + frac)
}

#[cfg(test)]
/// Formats Unix seconds as RFC 3339 UTC (`2026-11-30T01:02:03Z`).
pub fn format_rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Parses an HTTP date (IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`) to Unix seconds.
pub fn parse_http_date(s: &str) -> Option<f64> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    if parts.len() != 6 || parts[5] != "GMT" {
        return None;
    }
    let d: u32 = parts[1].parse().ok()?;
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let m = MONTHS.iter().position(|x| *x == parts[2])? as u32 + 1;
    let y: i64 = parts[3].parse().ok()?;
    let t: Vec<i64> = parts[4].split(':').filter_map(|x| x.parse().ok()).collect();
    if t.len() != 3 {
        return None;
    }
    Some((days_from_civil(y, m, d) * 86_400 + t[0] * 3600 + t[1] * 60 + t[2]) as f64)
}

/// Seconds since the Unix epoch, now.
pub fn now_unix() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Resolves a config path relative to the config file's directory.
pub fn resolve(config_dir: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        config_dir.join(p)
    }
}

/// Truncates `s` to at most `max_bytes` bytes at a char boundary.
pub fn truncate_utf8(s: &str, max_bytes: usize) -> &str {
    if s.len() <= max_bytes {
        return s;
    }
    let mut end = max_bytes;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_roundtrip() {
        let t = parse_rfc3339("2026-11-30T01:02:03Z").unwrap();
        assert_eq!(format_rfc3339(t as i64), "2026-11-30T01:02:03Z");
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(parse_rfc3339("1970-01-01T01:00:00.5+01:00"), Some(0.5));
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:01:00 GMT"), Some(60.0));
        assert!(parse_rfc3339("yesterday").is_none());
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate_utf8("héllo", 2), "h");
        assert_eq!(truncate_utf8("héllo", 3), "hé");
        assert_eq!(truncate_utf8("abc", 10), "abc");
    }
}
