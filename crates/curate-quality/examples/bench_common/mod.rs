//! The benchmark's documents and label sets, shared by the student benchmark example and its
//! experiments. Every choice is a seeded hash, so the rows are the same on every run.
#![allow(dead_code)] // each example uses part of it

use std::io::Write;
use std::path::Path;

use arrow::array::AsArray;
use curate_core::hash::{derive_seed, h64, unit};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// One document.
pub struct Doc {
    pub id: String,
    pub text: String,
}

/// One labelled set: (document index, label, held out).
pub struct LabelSet {
    pub name: &'static str,
    pub rows: Vec<(usize, f32, bool)>,
    pub scale_max: f32,
    /// The keep threshold AUC / F1 are reported at.
    pub threshold: f32,
    /// A second keep threshold to report AUC / F1 at.
    pub alt_threshold: Option<f32>,
}

/// A seeded hash sample of about `n_docs` documents of both corpus shards (or the bundled slice).
pub fn load_corpus(n_docs: usize) -> Vec<Doc> {
    let shards = curate_testkit::corpus_shards()
        .unwrap_or_else(|| vec![curate_testkit::quickstart_sample()]);
    let mut all = Vec::new();
    for p in &shards {
        let f = std::fs::File::open(p).unwrap();
        let r = ParquetRecordBatchReaderBuilder::try_new(f)
            .unwrap()
            .with_batch_size(8192)
            .build()
            .unwrap();
        for b in r {
            let b = b.unwrap();
            let t = b.column_by_name("text").unwrap().as_string::<i32>();
            let id = b.column_by_name("id").unwrap().as_string::<i32>();
            for i in 0..b.num_rows() {
                all.push(Doc {
                    id: id.value(i).to_string(),
                    text: truncate(t.value(i)).to_string(),
                });
            }
        }
    }
    let frac = n_docs as f64 / all.len() as f64;
    let pick = derive_seed(1, "bench.sample");
    all.into_iter()
        .filter(|d| unit(h64(d.id.as_bytes(), pick)) < frac)
        .collect()
}

/// Documents are cut to their first this-many bytes (at a character boundary), like the `label`
/// step cuts what it sends the Claude teacher (by default 2,048 tokens at 3 bytes a token), and to
/// keep the fastText grid's 54 trainings per teacher affordable. Teachers label, and both students
/// see, the cut text.
pub const MAX_DOC_BYTES: usize = 4096;

/// `t` cut to at most [`MAX_DOC_BYTES`] at a character boundary.
pub fn truncate(t: &str) -> &str {
    let mut end = t.len().min(MAX_DOC_BYTES);
    while !t.is_char_boundary(end) {
        end -= 1;
    }
    &t[..end]
}

/// The quick start's reference documents (Rust-book prose).
pub fn load_reference() -> Vec<Doc> {
    let p = curate_testkit::repo_root().join("configs/quickstart/reference.jsonl");
    std::fs::read_to_string(&p)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            Doc {
                id: v["id"].as_str().unwrap().into(),
                text: truncate(v["text"].as_str().unwrap()).into(),
            }
        })
        .collect()
}

fn held_out(d: &Doc) -> bool {
    unit(h64(d.id.as_bytes(), derive_seed(1, "bench.holdout"))) < 0.2
}

/// The corpus sample followed by the reference documents, its corpus size, and the three label
/// sets over them.
pub fn label_sets(n_docs: usize) -> (Vec<Doc>, usize, Vec<LabelSet>) {
    let mut docs = load_corpus(n_docs);
    let n_corpus = docs.len();
    docs.extend(load_reference());
    let neg_seed = derive_seed(1, "bench.negatives");
    let neg_frac = 2000.0 / n_corpus as f64;
    let reference = LabelSet {
        name: "reference",
        rows: (0..docs.len())
            .filter(|&i| i >= n_corpus || unit(h64(docs[i].id.as_bytes(), neg_seed)) < neg_frac)
            .map(|i| (i, (i >= n_corpus) as u8 as f32, held_out(&docs[i])))
            .collect(),
        scale_max: 1.0,
        threshold: 0.5,
        alt_threshold: None,
    };
    let corpus_rows = |f: &dyn Fn(&str) -> u32| -> Vec<(usize, f32, bool)> {
        (0..n_corpus)
            .map(|i| (i, f(&docs[i].text) as f32, held_out(&docs[i])))
            .collect()
    };
    let fake = LabelSet {
        name: "fake_teacher",
        rows: corpus_rows(&curate_testkit::anthropic::fake_score),
        scale_max: 5.0,
        threshold: 1.0,
        alt_threshold: Some(2.0),
    };
    let rubric = LabelSet {
        name: "rubric",
        rows: corpus_rows(&curate_testkit::rubric::rubric_score),
        scale_max: 5.0,
        threshold: 3.0,
        alt_threshold: None,
    };
    (docs, n_corpus, vec![reference, fake, rubric])
}

/// A text on one line (fastText reads one document per line).
pub fn one_line(t: &str) -> String {
    t.chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect()
}

/// Writes `train.txt` and `holdout.txt` in fastText's format (`__label__K text`).
pub fn write_split(dir: &Path, docs: &[Doc], set: &LabelSet) {
    std::fs::create_dir_all(dir).unwrap();
    let mut tr = std::io::BufWriter::new(std::fs::File::create(dir.join("train.txt")).unwrap());
    let mut ho = std::io::BufWriter::new(std::fs::File::create(dir.join("holdout.txt")).unwrap());
    for &(i, label, hold) in &set.rows {
        let out = if hold { &mut ho } else { &mut tr };
        writeln!(out, "__label__{} {}", label as u32, one_line(&docs[i].text)).unwrap();
    }
}
