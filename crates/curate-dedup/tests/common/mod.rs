//! Test support: real corpus documents as `DocBatch`es, task splits, near-duplicate injection.
#![allow(dead_code)]

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, Float64Array, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use curate_core::DocBatch;
use curate_core::batch::{doc_key, split_key};
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

/// The id the tests give document `key` in an `id` column: `f<file>-r<row>`, null for every
/// 11th row (a survivor with a null id is named by its key).
pub fn doc_id(key: u64) -> Option<String> {
    let (f, r) = split_key(key);
    (r % 11 != 5).then(|| format!("f{f}-r{r}"))
}

/// How a removed document names survivor `key`: its id, or its key in 16 hex digits when it
/// has no id (`ids = false`: no id column at all; or a null id).
pub fn survivor_name(key: u64, ids: bool) -> String {
    match doc_id(key).filter(|_| ids) {
        Some(id) => id,
        None => format!("{key:016x}"),
    }
}

/// The key a `duplicate_of` value names, among `docs` (ids as [`doc_id`], else hex keys).
pub fn named_key(name: &str, docs: &[Doc], ids: bool) -> Option<u64> {
    docs.iter()
        .map(|d| d.key)
        .find(|k| survivor_name(*k, ids) == name)
}

/// [`batch`] with an `id` column ([`doc_id`]) as the batch's id column.
pub fn batch_with_ids(docs: &[Doc]) -> DocBatch {
    let b = batch(docs);
    let (rb, keys) = b.into_parts();
    let ids: ArrayRef = Arc::new(StringArray::from(
        docs.iter().map(|d| doc_id(d.key)).collect::<Vec<_>>(),
    ));
    let mut fields: Vec<Field> = rb.schema().fields().iter().map(|f| (**f).clone()).collect();
    fields.push(Field::new("id", DataType::Utf8, true));
    let mut cols = rb.columns().to_vec();
    cols.push(ids);
    let rb = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).expect("batch");
    let id = rb.num_columns() - 1;
    DocBatch::new(rb, 0, Some(id), keys)
}

/// Splits docs (sorted by key) into `tasks` contiguous tasks of batches of `batch_size`.
pub fn split(docs: &[Doc], tasks: usize, batch_size: usize) -> Vec<Vec<DocBatch>> {
    split_ids(docs, tasks, batch_size, false)
}

/// [`split`], the batches with an `id` column when `ids`.
pub fn split_ids(docs: &[Doc], tasks: usize, batch_size: usize, ids: bool) -> Vec<Vec<DocBatch>> {
    let per = docs.len().div_ceil(tasks.max(1));
    (0..tasks)
        .map(|t| {
            let lo = (t * per).min(docs.len());
            let hi = ((t + 1) * per).min(docs.len());
            docs[lo..hi]
                .chunks(batch_size.max(1))
                .map(if ids { batch_with_ids } else { batch })
                .collect()
        })
        .collect()
}

/// The set of word 5-grams of a text after the dedup steps' full normalization.
pub fn shingles(text: &str) -> std::collections::BTreeSet<Vec<String>> {
    let mut norm =
        curate_dedup::normalize::Normalizer::new(curate_dedup::normalize::NormFlags::full());
    let t = norm.normalize_to_string(text);
    let words: Vec<String> = t.split_whitespace().map(str::to_string).collect();
    words.windows(5).map(|w| w.to_vec()).collect()
}

/// Jaccard similarity of two texts' normalized word 5-gram sets.
pub fn jaccard(a: &str, b: &str) -> f64 {
    let (x, y) = (shingles(a), shingles(b));
    let inter = x.intersection(&y).count();
    let union = x.len() + y.len() - inter;
    if union == 0 {
        1.0
    } else {
        inter as f64 / union as f64
    }
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
