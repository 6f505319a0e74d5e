//! Reads of hand-damaged files: every unreadable unit is named exactly (fail mode) or left out
//! exactly (skip mode), whatever the share, and every readable row arrives once with its row
//! index.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, AsArray, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use super::*;
use crate::inspect::inspect;

fn spec(batch_rows: usize) -> ReadSpec {
    ReadSpec {
        text_column: "text".into(),
        batch_rows,
        columns: None,
        flatten: Vec::new(),
    }
}

/// A deterministic, hard-to-compress text for row `i`.
fn text(i: u64) -> String {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..24)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            format!("w{:x}", x % 100_000)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Rows read: (row index from the sink's first-row argument, the row's `n` column).
type Got = Vec<(u64, i64)>;

fn read(
    file: &InputFile,
    rgs: Range<usize>,
    batch_rows: usize,
    mode: ReadMode,
    buffer_limit: u64,
) -> Result<(Got, Vec<SkippedUnit>), IoError> {
    let mut got = Vec::new();
    let r = read_share_inner(
        file,
        rgs,
        &spec(batch_rows),
        mode,
        buffer_limit,
        |b, first| {
            let n = b.column_by_name("n").unwrap().as_primitive::<Int64Type>();
            let t = b.column_by_name("text").unwrap().as_string::<i32>();
            for i in 0..b.num_rows() {
                assert!(!t.is_null(i));
                got.push((first + i as u64, n.value(i)));
            }
            Ok::<(), String>(())
        },
    );
    match r {
        Ok(s) => Ok((got, s)),
        Err(ReadError::Io(e)) => Err(e),
        Err(ReadError::Sink(e)) => panic!("{e}"),
    }
}

// ---------------------------------------------------------------- parquet

const RG_ROWS: u64 = 40;

/// A parquet file of `rgs` row groups of [`RG_ROWS`] rows (`n` = row index), zstd pages of 8
/// rows, no dictionary: a row group's text column chunk holds five pages.
fn write_parquet(path: &Path, rgs: u64) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("n", DataType::Int64, false),
        Field::new("text", DataType::Utf8, false),
    ]));
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(RG_ROWS as usize))
        .set_data_page_row_count_limit(8)
        .set_write_batch_size(8)
        .set_dictionary_enabled(false)
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let mut w = ArrowWriter::try_new(
        std::fs::File::create(path).unwrap(),
        schema.clone(),
        Some(props),
    )
    .unwrap();
    let rows = rgs * RG_ROWS;
    let n: Vec<i64> = (0..rows as i64).collect();
    let t: Vec<String> = (0..rows).map(text).collect();
    let b = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(n)),
            Arc::new(StringArray::from(t)),
        ],
    )
    .unwrap();
    w.write(&b).unwrap();
    w.close().unwrap();
}

/// Byte range of row group `rg`'s text column chunk.
fn text_chunk(path: &Path, rg: usize) -> Range<usize> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let r = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let (start, len) = r.metadata().row_group(rg).column(1).byte_range();
    start as usize..(start + len) as usize
}

fn damage(path: &Path, range: Range<usize>) {
    let mut b = std::fs::read(path).unwrap();
    for x in &mut b[range] {
        *x ^= 0xA5;
    }
    std::fs::write(path, &b).unwrap();
}

fn rows_of(rgs: &[u64]) -> Got {
    rgs.iter()
        .flat_map(|&rg| (rg * RG_ROWS..(rg + 1) * RG_ROWS).map(|i| (i, i as i64)))
        .collect()
}

/// Reads the whole file in shares of `task_size` row groups.
fn read_in_shares(
    file: &InputFile,
    task_size: usize,
    batch_rows: usize,
    limit: u64,
) -> (Got, Vec<SkippedUnit>) {
    let (mut got, mut skipped) = (Vec::new(), Vec::new());
    let n = file.row_groups.len();
    for start in (0..n).step_by(task_size) {
        let (g, s) = read(
            file,
            start..(start + task_size).min(n),
            batch_rows,
            ReadMode::Skip,
            limit,
        )
        .unwrap();
        got.extend(g);
        skipped.extend(s);
    }
    (got, skipped)
}

#[test]
fn a_corrupt_row_group_is_skipped_alone_for_any_task_size() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("x.parquet");
    write_parquet(&p, 4);
    damage(&p, text_chunk(&p, 1));
    let file = inspect(&p, "text").unwrap();

    let e = read(&file, 0..4, 16, ReadMode::Fail, SKIP_BUFFER_BYTES).unwrap_err();
    assert!(
        e.to_string()
            .contains("x.parquet, row group 1: column `text`: "),
        "{e}"
    );

    for task_size in 1..=4 {
        for limit in [SKIP_BUFFER_BYTES, 0] {
            let (got, skipped) = read_in_shares(&file, task_size, 16, limit);
            assert_eq!(got, rows_of(&[0, 2, 3]), "task_size {task_size}");
            assert_eq!(skipped.len(), 1);
            let s = &skipped[0];
            assert_eq!(s.location, SkipLocation::RowGroup(1));
            assert_eq!(s.rows, Some(RG_ROWS));
            assert_eq!(s.path, p);
            assert!(
                s.error.contains("row group 1: column `text`"),
                "{}",
                s.error
            );
        }
    }
}

/// A row group that fails to decode names the column that fails, whichever it is.
#[test]
fn a_corrupt_column_chunk_is_named() {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("n.parquet");
    write_parquet(&p, 2);
    let r = SerializedFileReader::new(std::fs::File::open(&p).unwrap()).unwrap();
    let (start, len) = r.metadata().row_group(1).column(0).byte_range();
    damage(&p, start as usize..(start + len) as usize);
    let file = inspect(&p, "text").unwrap();
    let e = read(&file, 0..2, 16, ReadMode::Fail, SKIP_BUFFER_BYTES).unwrap_err();
    assert!(
        e.to_string()
            .contains("n.parquet, row group 1: column `n`: "),
        "{e}"
    );
}

#[test]
fn a_row_group_failing_half_way_delivers_none_of_its_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("half.parquet");
    write_parquet(&p, 3);
    // damage only the end of row group 1's text chunk: its first pages still decode
    let chunk = text_chunk(&p, 1);
    damage(&p, chunk.end - 40..chunk.end - 10);
    let file = inspect(&p, "text").unwrap();

    // fail mode streams: rows of row group 1 arrive before its error does
    let mut seen = Vec::new();
    let r = read_share(&file, 0..3, &spec(8), |b, first| {
        seen.push((first, b.num_rows()));
        Ok::<(), String>(())
    });
    let Err(ReadError::Io(e)) = r else {
        panic!("expected an error")
    };
    assert!(e.to_string().contains("row group 1"), "{e}");
    assert!(
        seen.iter().any(|&(first, _)| first >= RG_ROWS),
        "the damage should be past the first page: {seen:?}"
    );

    // skip mode: all or nothing, whether buffered or checked first
    for limit in [SKIP_BUFFER_BYTES, 0] {
        let (got, skipped) = read(&file, 0..3, 8, ReadMode::Skip, limit).unwrap();
        assert_eq!(got, rows_of(&[0, 2]));
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0].location, SkipLocation::RowGroup(1));
    }
}

#[test]
fn an_unreadable_parquet_file_skips_each_row_group_of_the_share() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("gone.parquet");
    write_parquet(&p, 3);
    let file = inspect(&p, "text").unwrap();
    std::fs::remove_file(&p).unwrap();
    assert!(read(&file, 0..3, 16, ReadMode::Fail, SKIP_BUFFER_BYTES).is_err());
    let (got, skipped) = read(&file, 1..3, 16, ReadMode::Skip, SKIP_BUFFER_BYTES).unwrap();
    assert!(got.is_empty());
    let at: Vec<_> = skipped.iter().map(|s| s.location.clone()).collect();
    assert_eq!(at, [SkipLocation::RowGroup(1), SkipLocation::RowGroup(2)]);
    assert!(skipped.iter().all(|s| s.rows == Some(RG_ROWS)));
}

#[test]
fn a_good_parquet_file_reads_the_same_in_both_modes() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("ok.parquet");
    write_parquet(&p, 3);
    let file = inspect(&p, "text").unwrap();
    let (fail, _) = read(&file, 0..3, 7, ReadMode::Fail, SKIP_BUFFER_BYTES).unwrap();
    assert_eq!(fail, rows_of(&[0, 1, 2]));
    for limit in [SKIP_BUFFER_BYTES, 0] {
        let (skip, skipped) = read(&file, 0..3, 7, ReadMode::Skip, limit).unwrap();
        assert_eq!(skip, fail);
        assert!(skipped.is_empty());
    }
}

// ---------------------------------------------------------------- JSONL

/// `lines` JSONL lines `{"n": i, "text": …}` (the i-th non-blank line has n = i), with the
/// given lines (1-based) replaced.
fn jsonl(lines: u64, replace: &[(u64, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in 1..=lines {
        match replace.iter().find(|(at, _)| *at == l) {
            Some((_, bytes)) => out.extend_from_slice(bytes),
            None => {
                let v = serde_json::json!({"n": l - 1, "text": text(l)});
                out.extend_from_slice(v.to_string().as_bytes());
            }
        }
        out.push(b'\n');
    }
    out
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn gz(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

fn zst(b: &[u8]) -> Vec<u8> {
    let mut e = zstd::Encoder::new(Vec::new(), 3).unwrap();
    e.include_checksum(true).unwrap();
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

/// (row, n) for the good lines among `1..=lines` (a row index counts every non-blank line).
fn good_rows(lines: u64, bad: &[u64]) -> Got {
    (1..=lines)
        .filter(|l| !bad.contains(l))
        .map(|l| (l - 1, l as i64 - 1))
        .collect()
}

/// The file inspected as skip mode does (its schema inferred from its readable lines).
fn open(p: &Path) -> InputFile {
    crate::inspect::inspect_with(p, "text", ReadMode::Skip).unwrap()
}

fn jsonl_error(p: &Path) -> String {
    let file = open(p);
    read(&file, 0..0, 256, ReadMode::Fail, SKIP_BUFFER_BYTES)
        .unwrap_err()
        .to_string()
}

#[test]
fn a_bad_json_line_is_named_and_skipped_alone() {
    let tmp = tempfile::tempdir().unwrap();
    // line 301 is in the middle of the second 256-line batch
    let p = write(
        tmp.path(),
        "a.jsonl",
        &jsonl(600, &[(301, b"{\"n\": 300, \"text\": \"oops\"")]),
    );
    let e = jsonl_error(&p);
    assert!(e.contains("a.jsonl, line 301: "), "{e}");
    // inspection in fail mode stops at it too (it is among the lines the schema comes from)
    let i = inspect(&p, "text").unwrap_err().to_string();
    assert!(i.contains("a.jsonl, line 301: not valid JSON"), "{i}");
    let file = open(&p);
    for batch_rows in [1, 7, 256, 1000] {
        let (got, skipped) = read(&file, 0..0, batch_rows, ReadMode::Skip, 0).unwrap();
        assert_eq!(got, good_rows(600, &[301]), "batch_rows {batch_rows}");
        assert_eq!(skipped.len(), 1);
        assert_eq!(
            skipped[0].location,
            SkipLocation::Lines {
                first: 301,
                last: 301
            }
        );
        assert_eq!(skipped[0].rows, Some(1));
        assert!(
            skipped[0].error.contains("line 301: "),
            "{}",
            skipped[0].error
        );
    }
}

#[test]
fn errors_name_the_real_line_not_the_batch_end() {
    let tmp = tempfile::tempdir().unwrap();
    // a wrong-typed field (found when the batch is converted, not when it is parsed), past
    // the lines the schema is inferred from, in the middle of the fifth 256-line batch
    let p = write(
        tmp.path(),
        "typed.jsonl",
        &jsonl(1200, &[(1101, b"{\"n\": \"seven\", \"text\": \"x\"}")]),
    );
    let e = jsonl_error(&p);
    assert!(e.contains("typed.jsonl, line 1101: "), "{e}");
    let (got, skipped) = read(&open(&p), 0..0, 256, ReadMode::Skip, 0).unwrap();
    assert_eq!(got, good_rows(1200, &[1101]));
    assert_eq!(
        skipped[0].location,
        SkipLocation::Lines {
            first: 1101,
            last: 1101
        }
    );
    let p = write(
        tmp.path(),
        "first.jsonl",
        &jsonl(300, &[(1, b"{\"text\": }")]),
    );
    // inspect reads the first lines too, and names the line
    let i = inspect(&p, "text").unwrap_err().to_string();
    assert!(i.contains("first.jsonl, line 1: "), "{i}");
    // with the schema inferred from a good file, the read itself names line 1 too
    let good = write(tmp.path(), "good.jsonl", &jsonl(300, &[]));
    let mut file = inspect(&good, "text").unwrap();
    file.path = p.clone();
    let e = read(&file, 0..0, 256, ReadMode::Fail, 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("first.jsonl, line 1: "), "{e}");
    // two values on one line, a non-UTF-8 line, an array
    for (name, bad) in [
        (
            "two.jsonl",
            &b"{\"n\": 1, \"text\": \"a\"} {\"n\": 2, \"text\": \"b\"}"[..],
        ),
        ("utf8.jsonl", b"{\"n\": 1, \"text\": \"\xff\xfe\"}"),
        ("array.jsonl", b"[1, 2]"),
    ] {
        let mut file = file.clone();
        file.path = write(tmp.path(), name, &jsonl(300, &[(257, bad)]));
        let e = read(&file, 0..0, 256, ReadMode::Fail, 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains(&format!("{name}, line 257: ")), "{e}");
        let (got, skipped) = read(&file, 0..0, 256, ReadMode::Skip, 0).unwrap();
        assert_eq!(got, good_rows(300, &[257]), "{name}");
        assert_eq!(
            skipped[0].location,
            SkipLocation::Lines {
                first: 257,
                last: 257
            }
        );
    }
}

#[test]
fn consecutive_bad_lines_are_one_unit_and_blank_lines_are_not_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let mut bytes = jsonl(40, &[(10, b"nope"), (11, b"nope"), (20, b"{")]);
    bytes.extend_from_slice(b"\n   \n");
    bytes.extend_from_slice(&jsonl(1, &[])); // one more good line: n = 0 again
    let p = write(tmp.path(), "b.jsonl", &bytes);
    let file = open(&p);
    let (got, skipped) = read(&file, 0..0, 16, ReadMode::Skip, 0).unwrap();
    let mut want = good_rows(40, &[10, 11, 20]);
    want.push((40, 0)); // the 41st non-blank line is row 40
    assert_eq!(got, want);
    let at: Vec<_> = skipped
        .iter()
        .map(|s| (s.location.clone(), s.rows))
        .collect();
    assert_eq!(
        at,
        [
            (
                SkipLocation::Lines {
                    first: 10,
                    last: 11
                },
                Some(2)
            ),
            (
                SkipLocation::Lines {
                    first: 20,
                    last: 20
                },
                Some(1)
            ),
        ]
    );
}

#[test]
fn a_byte_order_mark_is_accepted() {
    let tmp = tempfile::tempdir().unwrap();
    let mut bytes = BOM.to_vec();
    bytes.extend_from_slice(&jsonl(20, &[]));
    for (name, b) in [
        ("bom.jsonl", bytes.clone()),
        ("bom.jsonl.gz", gz(&bytes)),
        ("bom.jsonl.zst", zst(&bytes)),
    ] {
        let p = write(tmp.path(), name, &b);
        let file = inspect(&p, "text").unwrap();
        assert!(file.schema.field_with_name("n").is_ok());
        let (got, _) = read(&file, 0..0, 256, ReadMode::Fail, 0).unwrap();
        assert_eq!(got, good_rows(20, &[]), "{name}");
    }
}

/// A file of `n` good lines compressed with `codec`, inspected while whole, then replaced by
/// `damaged(compressed)`.
fn damaged_stream(
    dir: &Path,
    name: &str,
    n: u64,
    compress: fn(&[u8]) -> Vec<u8>,
    damaged: impl Fn(Vec<u8>) -> Vec<u8>,
) -> InputFile {
    let whole = compress(&jsonl(n, &[]));
    let p = write(dir, name, &whole);
    let file = inspect(&p, "text").unwrap();
    std::fs::write(&p, damaged(whole)).unwrap();
    file
}

#[test]
fn a_truncated_stream_skips_the_rest_of_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, codec, compress) in [
        ("t.jsonl.gz", "gzip", gz as fn(&[u8]) -> Vec<u8>),
        ("t.jsonl.zst", "zstd", zst),
    ] {
        let file = damaged_stream(tmp.path(), name, 3000, compress, |mut b| {
            b.truncate(b.len() / 2);
            b
        });
        let e = read(&file, 0..0, 256, ReadMode::Fail, 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains(&format!("{name}, line ")), "{e}");
        assert!(e.contains(&format!(": {codec}: ")), "{e}");
        assert!(!e.contains("JSON"), "{e}");
        let (got, skipped) = read(&file, 0..0, 256, ReadMode::Skip, 0).unwrap();
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        let SkipLocation::Rest { from_line } = skipped[0].location else {
            panic!("{skipped:?}")
        };
        assert!(from_line > 256 && from_line < 3000, "{from_line}");
        assert_eq!(skipped[0].rows, None);
        assert!(
            skipped[0].error.contains(&format!("{codec}: ")),
            "{}",
            skipped[0].error
        );
        // every line before the failure, once, in order
        assert_eq!(got, good_rows(from_line - 1, &[]), "{name}");
    }
}

#[test]
fn a_corrupt_stream_names_the_decompressor_not_the_json() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, codec, compress) in [
        ("c.jsonl.gz", "gzip", gz as fn(&[u8]) -> Vec<u8>),
        ("c.jsonl.zst", "zstd", zst),
    ] {
        let file = damaged_stream(tmp.path(), name, 3000, compress, |mut b| {
            let m = b.len() / 2;
            for x in &mut b[m..m + 64] {
                *x ^= 0x5A;
            }
            b
        });
        let e = read(&file, 0..0, 256, ReadMode::Fail, 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains(&format!("{name}, line ")), "{e}");
        assert!(e.contains(&format!(": {codec}: ")), "{e}");
        assert!(!e.contains("not valid JSON"), "{e}");
        let (got, skipped) = read(&file, 0..0, 256, ReadMode::Skip, 0).unwrap();
        let last = skipped.last().unwrap();
        let SkipLocation::Rest { from_line } = last.location else {
            panic!("{skipped:?}")
        };
        assert!(last.error.contains(&format!("{codec}: ")), "{}", last.error);
        // nothing is delivered from the point of failure on; what came before is whole
        assert!(got.iter().all(|&(row, _)| row + 1 < from_line));
        assert!(got.len() as u64 >= 256.min(from_line - 1) || got.is_empty());
    }
    // damage within the lines the schema is inferred from: inspection names the decompressor
    for (name, codec, compress) in [
        ("i.jsonl.gz", "gzip", gz as fn(&[u8]) -> Vec<u8>),
        ("i.jsonl.zst", "zstd", zst),
    ] {
        let mut b = compress(&jsonl(3000, &[]));
        let m = b.len() / 10;
        for x in &mut b[m..m + 64] {
            *x ^= 0x5A;
        }
        let p = write(tmp.path(), name, &b);
        let i = inspect(&p, "text").unwrap_err().to_string();
        assert!(i.contains(&format!(": {codec}: ")), "{i}");
        assert!(!i.contains("JSON"), "{i}");
    }
}

#[test]
fn an_unreadable_jsonl_file_is_one_unit() {
    let tmp = tempfile::tempdir().unwrap();
    let p = write(tmp.path(), "gone.jsonl", &jsonl(10, &[]));
    let file = inspect(&p, "text").unwrap();
    std::fs::remove_file(&p).unwrap();
    assert!(read(&file, 0..0, 256, ReadMode::Fail, 0).is_err());
    let (got, skipped) = read(&file, 0..0, 256, ReadMode::Skip, 0).unwrap();
    assert!(got.is_empty());
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].location, SkipLocation::File);
    assert!(
        skipped[0].error.contains("gone.jsonl"),
        "{}",
        skipped[0].error
    );
}

#[test]
fn skip_mode_inference_leaves_bad_lines_to_the_read() {
    let tmp = tempfile::tempdir().unwrap();
    let p = write(tmp.path(), "i.jsonl", &jsonl(50, &[(3, b"{bad")]));
    let e = inspect(&p, "text").unwrap_err().to_string();
    assert!(e.contains("i.jsonl, line 3: not valid JSON"), "{e}");
    let file = crate::inspect::inspect_with(&p, "text", ReadMode::Skip).unwrap();
    let (got, skipped) = read(&file, 0..0, 256, ReadMode::Skip, 0).unwrap();
    assert_eq!(got, good_rows(50, &[3]));
    assert_eq!(
        skipped[0].location,
        SkipLocation::Lines { first: 3, last: 3 }
    );
    let blank = write(tmp.path(), "bad.jsonl", b"{bad\n[1]\n");
    assert!(crate::inspect::inspect_with(&blank, "text", ReadMode::Skip).is_err());
}

/// `flatten`: a struct column's fields are read as top-level columns where the struct stood, a
/// null struct gives nulls in every field, and `columns` may name a field of a flattened struct
/// (the projection mask then decodes that struct), in parquet and in JSONL alike.
#[test]
fn a_flattened_struct_reads_as_its_fields() {
    use arrow::array::{ArrayRef, StructArray};
    use arrow::buffer::NullBuffer;
    let tmp = tempfile::tempdir().unwrap();
    let meta_fields = vec![
        Field::new("url", DataType::Utf8, true),
        Field::new("n", DataType::Int64, true),
    ];
    let meta = StructArray::new(
        meta_fields.clone().into(),
        vec![
            Arc::new(StringArray::from(vec!["http://a", "http://b", "http://c"])) as ArrayRef,
            Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef,
        ],
        Some(NullBuffer::from(vec![true, false, true])),
    );
    let schema = Arc::new(Schema::new(vec![
        Field::new("text", DataType::Utf8, false),
        Field::new("metadata", DataType::Struct(meta_fields.into()), true),
        Field::new("id", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(vec!["a b", "c d", "e f"])),
            Arc::new(meta),
            Arc::new(StringArray::from(vec!["x", "y", "z"])),
        ],
    )
    .unwrap();
    let parquet = tmp.path().join("m.parquet");
    let mut w =
        ArrowWriter::try_new(std::fs::File::create(&parquet).unwrap(), schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let jsonl = write(
        tmp.path(),
        "m.jsonl",
        b"{\"text\":\"a b\",\"metadata\":{\"url\":\"http://a\",\"n\":1},\"id\":\"x\"}\n\
          {\"text\":\"c d\",\"metadata\":null,\"id\":\"y\"}\n\
          {\"text\":\"e f\",\"metadata\":{\"url\":\"http://c\",\"n\":3},\"id\":\"z\"}\n",
    );
    for (path, columns) in [
        (&parquet, None),
        (&parquet, Some(vec!["text".to_string(), "url".to_string()])),
        (&jsonl, Some(vec!["text".to_string(), "url".to_string()])),
    ] {
        let f = open(path);
        let spec = ReadSpec {
            columns: columns.clone(),
            flatten: vec!["metadata".into()],
            ..spec(16)
        };
        let want = output_schema(&f, &spec);
        let mut got = Vec::new();
        read_share(&f, 0..f.row_groups.len().max(1), &spec, |b, _| {
            got.push(b);
            Ok::<_, ()>(())
        })
        .unwrap();
        let b = arrow::compute::concat_batches(&want, &got).unwrap();
        let names: Vec<&str> = want.fields().iter().map(|f| f.name().as_str()).collect();
        if columns.is_some() {
            assert_eq!(names, ["text", "url"], "{}", path.display());
        } else {
            assert_eq!(names, ["text", "url", "n", "id"], "{}", path.display());
            let n = b.column_by_name("n").unwrap().as_primitive::<Int64Type>();
            assert_eq!((n.value(0), n.is_null(1), n.value(2)), (1, true, 3));
        }
        let url = b.column_by_name("url").unwrap().as_string::<i32>();
        let urls: Vec<Option<&str>> = url.iter().collect();
        assert_eq!(
            urls,
            [Some("http://a"), None, Some("http://c")],
            "{}",
            path.display()
        );
    }
}
