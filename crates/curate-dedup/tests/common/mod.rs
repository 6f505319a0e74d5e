//! Test support: real corpus documents as `DocBatch`es, task splits, near-duplicate injection.
#![allow(dead_code)]

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, Float64Array, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use curate_core::DocBatch;
use curate_core::batch::doc_key;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// One document: key, text, score.
#[derive(Debug, Clone)]
pub struct Doc {
    pub key: u64,
    pub text: String,
    pub score: f64,
}

/// Up to `max_docs` documents (with at least `min_words` words) of `path`, keyed as file 0.
pub fn read_docs(path: &Path, max_docs: usize, min_words: usize) -> Vec<Doc> {
    let file = File::open(path).expect("open corpus");
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("parquet")
        .with_batch_size(1024)
        .build()
        .expect("reader");
    let mut out = Vec::new();
    let mut row = 0u64;
    for batch in reader {
        let batch = batch.expect("batch");
        let texts = batch
            .column_by_name("text")
            .expect("text column")
            .as_string::<i32>();
        for t in texts.iter() {
            let t = t.unwrap_or("");
            if t.split_whitespace().count() >= min_words {
                out.push(Doc {
                    key: doc_key(0, row),
                    text: t.to_string(),
                    score: 0.0,
                });
                if out.len() >= max_docs {
                    return out;
                }
            }
            row += 1;
        }
    }
    out
}

/// Builds a `DocBatch` (columns text, score) from docs.
pub fn batch(docs: &[Doc]) -> DocBatch {
    let text: ArrayRef = Arc::new(StringArray::from(
        docs.iter().map(|d| d.text.as_str()).collect::<Vec<_>>(),
    ));
    let score: ArrayRef = Arc::new(Float64Array::from(
        docs.iter().map(|d| d.score).collect::<Vec<_>>(),
    ));
    let schema = Arc::new(Schema::new(vec![
        Field::new("text", DataType::Utf8, true),
        Field::new("score", DataType::Float64, true),
    ]));
    let rb = RecordBatch::try_new(schema, vec![text, score]).expect("batch");
    let keys = UInt64Array::from(docs.iter().map(|d| d.key).collect::<Vec<_>>());
    DocBatch::new(rb, 0, None, keys)
}

/// Splits docs (sorted by key) into `tasks` contiguous tasks of batches of `batch_size`.
pub fn split(docs: &[Doc], tasks: usize, batch_size: usize) -> Vec<Vec<DocBatch>> {
    let per = docs.len().div_ceil(tasks.max(1));
    (0..tasks)
        .map(|t| {
            let lo = (t * per).min(docs.len());
            let hi = ((t + 1) * per).min(docs.len());
            docs[lo..hi].chunks(batch_size.max(1)).map(batch).collect()
        })
        .collect()
}

/// A small deterministic PRNG (splitmix64).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Replaces `k` distinct random word positions of `words` with fresh tokens.
pub fn edit_words(words: &[&str], k: usize, rng: &mut Rng) -> Vec<String> {
    let mut out: Vec<String> = words.iter().map(|w| w.to_string()).collect();
    let mut idx: Vec<usize> = (0..words.len()).collect();
    for i in 0..k.min(idx.len()) {
        let j = i + rng.below(idx.len() - i);
        idx.swap(i, j);
        out[idx[i]] = token(rng);
    }
    out
}

/// A fresh lowercase token (letters only, so normalization keeps it as is).
pub fn token(rng: &mut Rng) -> String {
    let mut v = rng.next();
    (0..10)
        .map(|_| {
            let c = (b'a' + (v % 26) as u8) as char;
            v /= 26;
            c
        })
        .collect()
}
