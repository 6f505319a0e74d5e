//! Throughput of reading a task's share (`Throughput::Bytes` of text): a corpus shard as parquet,
//! and the same documents as JSONL (plain and zstd), in fail mode (`on_error = "fail"`) and skip
//! mode (`on_error = "skip"`, which decodes each row group whole before delivering it).
//!
//! Run: `cargo bench -p curate-io --bench read` (set `CURATE_BENCH_MB` to change the amount of
//! JSONL text, default 32 MB from the first corpus shard).

use std::hint::black_box;
use std::io::Write;

use arrow::array::{Array, AsArray};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use curate_io::input::InputFile;
use curate_io::inspect::inspect;
use curate_io::read::{ReadMode, ReadSpec, read_share_with};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

fn spec() -> ReadSpec {
    ReadSpec {
        text_column: "text".into(),
        batch_rows: 1024,
        columns: None,
        flatten: Vec::new(),
    }
}

/// Reads the whole file; returns the text bytes read.
fn read_all(file: &InputFile, mode: ReadMode) -> u64 {
    let mut bytes = 0u64;
    let rgs = 0..file.row_groups.len();
    read_share_with(file, rgs, &spec(), mode, |b, _| {
        let t = b.column_by_name("text").unwrap().as_string::<i32>();
        bytes += t.value_data().len() as u64;
        Ok::<(), String>(())
    })
    .unwrap();
    bytes
}

/// The first shard's documents as JSONL lines (id, text, url), up to `mb` MB of text.
fn jsonl(mb: usize) -> (Vec<u8>, u64) {
    let path = curate_testkit::corpus_shard_or_sample();
    let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let (mut out, mut text) = (Vec::new(), 0u64);
    'all: for b in reader {
        let b = b.unwrap();
        let t = b.column_by_name("text").unwrap().as_string::<i32>().clone();
        for i in 0..t.len() {
            if text >= (mb << 20) as u64 {
                break 'all;
            }
            let v = serde_json::json!({"id": format!("doc-{i}"), "text": t.value(i), "url": "https://example.com/a"});
            out.extend_from_slice(v.to_string().as_bytes());
            out.push(b'\n');
            text += t.value(i).len() as u64;
        }
    }
    (out, text)
}

fn benches(c: &mut Criterion) {
    let mb: usize = std::env::var("CURATE_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32);
    let tmp = tempfile::tempdir().unwrap();
    let (lines, text_bytes) = jsonl(mb);
    let plain = tmp.path().join("docs.jsonl");
    std::fs::write(&plain, &lines).unwrap();
    let zst = tmp.path().join("docs.jsonl.zst");
    let mut e = zstd::Encoder::new(Vec::new(), 3).unwrap();
    e.write_all(&lines).unwrap();
    std::fs::write(&zst, e.finish().unwrap()).unwrap();
    let shard = inspect(&curate_testkit::corpus_shard_or_sample(), "text").unwrap();
    let shard_bytes = read_all(&shard, ReadMode::Fail);

    for (name, file, bytes) in [
        ("read_parquet", shard, shard_bytes),
        ("read_jsonl", inspect(&plain, "text").unwrap(), text_bytes),
        ("read_jsonl_zst", inspect(&zst, "text").unwrap(), text_bytes),
    ] {
        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Bytes(bytes));
        g.sample_size(10);
        for (label, mode) in [("fail", ReadMode::Fail), ("skip", ReadMode::Skip)] {
            g.bench_function(label, |b| b.iter(|| black_box(read_all(&file, mode))));
        }
        g.finish();
    }
}

criterion_group!(read, benches);
criterion_main!(read);
