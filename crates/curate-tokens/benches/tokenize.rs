//! Tokenization throughput of the encoders `tokenize` uses, one core (`Throughput::Bytes`;
//! tokens per second are printed beside). Whole-process comparisons against datatrove and
//! Python tiktoken: `benches/whole/tokenize.sh`.
//!
//! `CURATE_BENCH_MB=8 cargo bench -p curate-tokens --bench tokenize`

use std::path::Path;

use arrow::array::{Array, AsArray};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use curate_tokens::encoder::Encoder;

fn bench(c: &mut Criterion) {
    let mb: usize = std::env::var("CURATE_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let src = curate_testkit::corpus_shard_or_sample();
    let r = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(&src).unwrap(),
    )
    .unwrap()
    .build()
    .unwrap();
    let (mut docs, mut bytes) = (Vec::new(), 0usize);
    'outer: for b in r {
        let b = b.unwrap();
        let t = b.column_by_name("text").unwrap().as_string::<i32>();
        for i in 0..t.len() {
            bytes += t.value(i).len();
            docs.push(t.value(i).to_string());
            if bytes >= mb << 20 {
                break 'outer;
            }
        }
    }
    let mut g = c.benchmark_group("tokenize");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.sample_size(10);
    for name in ["cl100k_base", "o200k_base"] {
        let enc = Encoder::load(name, None, true, false, Path::new(".")).unwrap();
        let mut ids = Vec::new();
        let mut n = 0;
        for d in &docs {
            ids.clear();
            enc.encode_into(d, &mut ids).unwrap();
            n += ids.len();
        }
        eprintln!(
            "{name}: {} documents, {bytes} bytes, {n} tokens",
            docs.len()
        );
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut n = 0;
                for d in &docs {
                    ids.clear();
                    enc.encode_into(d, &mut ids).unwrap();
                    n += ids.len();
                }
                n
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
