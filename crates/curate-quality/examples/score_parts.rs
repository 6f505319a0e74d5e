//! Scoring cost by part, CPU time on this thread, over the text of one parquet file:
//! document properties, the linear score, the whole calibrated score.
//!
//!     cargo run --release -p curate-quality --example score_parts -- MODEL.bin FILE.parquet
use arrow::array::{Array, AsArray};
use curate_quality::Model;
use curate_quality::doc::DocStats;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let model = Model::load(std::path::Path::new(&a[1])).unwrap();
    let f = std::fs::File::open(&a[2]).unwrap();
    let mut texts = Vec::new();
    for b in ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap()
        .build()
        .unwrap()
    {
        let b = b.unwrap();
        let t = b.column_by_name("text").unwrap().as_string::<i32>();
        texts.extend((0..t.len()).map(|i| t.value(i).to_string()));
    }
    let bytes: usize = texts.iter().map(|t| t.len()).sum();
    let cpu = || curate_testkit::thread_cpu_seconds().unwrap();
    let mut sink = 0.0f32;
    let mut report = |name: &str, f: &mut dyn FnMut(&[u8]) -> f32| {
        let mut best = f64::MAX;
        for _ in 0..3 {
            let c = cpu();
            for t in &texts {
                sink += f(t.as_bytes());
            }
            best = best.min(cpu() - c);
        }
        println!(
            "{name:12} {:7.1} MB/s per core ({best:.3} s CPU)",
            bytes as f64 / best / 1e6
        );
    };
    // a fingerprint of every document's properties: a change to `DocStats::of` must keep it
    let mut fp = 0u64;
    for t in &texts {
        for v in DocStats::of(t.as_bytes()).features() {
            fp = curate_core::hash::mix64(fp ^ v.to_bits() as u64, 7);
        }
    }
    println!("doc properties fingerprint {fp:016x}");
    report("doc stats", &mut |t| DocStats::of(t).features()[0]);
    let mut sc = model.scratch();
    report("linear", &mut |t| model.linear(t, &mut sc));
    report("score", &mut |t| model.score(t, &mut sc));
    eprintln!("{} docs, {bytes} bytes, checksum {sink}", texts.len());
}
