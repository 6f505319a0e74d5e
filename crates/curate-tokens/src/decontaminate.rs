//! `decontaminate`: removes documents that contain evaluation benchmark items.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, StringBuilder};
use arrow::datatypes::{DataType, Field};
use curate_core::step::Published;
use curate_core::{
    BuildEnv, Counters, DocBatch, Problems, Processor, Step, StepError, StepSpec, TaskContext,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::benchmarks::{self, Benchmark};
use crate::ngrams::{GramIndex, ItemKind, NGRAM_SCHEME, Scratch};
use crate::{read_json, write_json};

/// Remove documents that contain evaluation data: any document sharing a word n-gram with a
/// benchmark item is dropped as `contaminated` (or only marked, with `label_only = true`).
///
/// Each benchmark is one JSONL (`.jsonl`, `.json`, `.jsonl.gz`) or parquet file, named by its
/// file stem; the `fields` of each row, joined, form one item. Items and documents are
/// normalized alike: lowercase, punctuation and symbols deleted, words split on whitespace. A
/// document matches an item when they share an `ngram`-word sequence; an item shorter than
/// `ngram` words (but at least `min_item_words`) matches when the document contains the whole
/// normalized item. Line breaks, casing, punctuation and surrounding text do not hide a match.
///
/// Dropped documents' exclusion rows carry `contaminated_by` (the matching benchmarks, comma
/// separated) and `contamination_ngram` (the first matching n-gram, normalized); with
/// `label_only = true` those two columns are added to every kept document instead (null when
/// clean). Per-benchmark counts — items, documents hit, items found — go to the manifest and
/// the report.
///
/// Memory: the benchmarks' distinct n-grams, 16–24 bytes each (an 8-byte seeded xxh3 key and a
/// 4-byte posting in a table at most half full), reported as `index_bytes`; documents stream.
/// See docs/TRAINING-DATA.md.
///
/// ```toml
/// [[steps]]
/// type = "decontaminate"
/// benchmarks = ["evals/*.jsonl"]
/// fields = ["question", "answer"]
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DecontaminateConfig {
    /// Benchmark files or globs: local (relative paths resolve from the working directory) or
    /// in your object storage (`s3://bucket/evals/*.jsonl`, listed when the step is built);
    /// each file is one benchmark named by its file stem.
    pub benchmarks: Vec<String>,
    /// Fields of each benchmark row joined (by newlines) to form its item; missing or null
    /// fields are skipped.
    #[serde(default = "default_fields")]
    pub fields: Vec<String>,
    /// Words per n-gram after normalization.
    #[serde(default = "default_ngram")]
    pub ngram: usize,
    /// Items with fewer normalized words are not checked (too common to mean contamination);
    /// they are counted as `items_too_short`.
    #[serde(default = "default_min_words")]
    pub min_item_words: usize,
    /// Only add the `contaminated_by` and `contamination_ngram` columns; drop nothing.
    #[serde(default)]
    pub label_only: bool,
}

fn default_fields() -> Vec<String> {
    vec!["text".into()]
}
fn default_ngram() -> usize {
    13
}
fn default_min_words() -> usize {
    5
}

/// The column naming the benchmarks a document matched.
pub const CONTAMINATED_BY: &str = "contaminated_by";
/// The column holding the first matching n-gram.
pub const CONTAMINATION_NGRAM: &str = "contamination_ngram";

impl StepSpec for DecontaminateConfig {
    const TYPE: &'static str = "decontaminate";

    fn validate(&self, p: &mut Problems) {
        if self.benchmarks.is_empty() {
            p.push(
                "benchmarks",
                "is empty; list benchmark files or globs, e.g. [\"evals/*.jsonl\"]",
            );
        }
        for b in &self.benchmarks {
            if b.trim().is_empty() {
                p.push("benchmarks", "contains an empty path");
            }
        }
        if self.fields.is_empty() || self.fields.iter().any(|f| f.is_empty()) {
            p.push("fields", "must name at least one non-empty field");
        }
        p.range("ngram", self.ngram, 1, 64);
        p.range("min_item_words", self.min_item_words, 1, 64);
    }

    fn build(&self, env: &BuildEnv) -> Result<Box<dyn Step>, StepError> {
        let files = benchmarks::resolve(&self.benchmarks, &env.config_dir)?;
        let benches = benchmarks::load(&files, &self.fields)?;
        Ok(Box::new(Decontaminate::new(self, &benches)))
    }
}

/// One benchmark's counts, in the manifest's step stats.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BenchmarkStats {
    /// Benchmark name (file stem).
    pub name: String,
    /// Its file.
    pub file: String,
    /// xxh3-128 of the file, hex.
    pub xxh3_128: String,
    /// Rows read.
    pub rows: u64,
    /// Items (rows with text in the fields).
    pub items: u64,
    /// Items checked by their n-grams.
    pub items_ngrams: u64,
    /// Items shorter than `ngram` words, checked whole.
    pub items_whole: u64,
    /// Items shorter than `min_item_words`, not checked.
    pub items_too_short: u64,
    /// Documents that matched this benchmark.
    pub documents_hit: u64,
    /// Distinct items some document matched.
    pub items_found: u64,
}

/// What each task records (per-benchmark document counts and the items it found).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct TaskFound {
    documents: u64,
    contaminated: u64,
    documents_hit: Vec<u64>,
    items_found: Vec<u32>,
}

/// The built `decontaminate` step.
pub struct Decontaminate {
    index: Arc<GramIndex>,
    item_bench: Arc<Vec<u16>>,
    benches: Vec<BenchmarkStats>,
    items: usize,
    ngram: usize,
    min_item_words: usize,
    label_only: bool,
}

impl Decontaminate {
    /// Indexes the benchmarks' items.
    pub fn new(cfg: &DecontaminateConfig, benches: &[Benchmark]) -> Self {
        let seed = curate_core::hash::derive_seed(0, NGRAM_SCHEME);
        let texts = benches
            .iter()
            .flat_map(|b| b.items.iter().map(String::as_str));
        let (index, kinds) = GramIndex::build(texts, cfg.ngram, cfg.min_item_words, seed);
        let mut item_bench = Vec::with_capacity(kinds.len());
        let mut stats = Vec::with_capacity(benches.len());
        let mut at = 0;
        for (bi, b) in benches.iter().enumerate() {
            let k = &kinds[at..at + b.items.len()];
            at += b.items.len();
            item_bench.extend(std::iter::repeat_n(bi as u16, b.items.len()));
            let count = |x: ItemKind| k.iter().filter(|y| **y == x).count() as u64;
            stats.push(BenchmarkStats {
                name: b.name.clone(),
                file: b.path.display().to_string(),
                xxh3_128: b.xxh3_128.clone(),
                rows: b.rows,
                items: b.items.len() as u64,
                items_ngrams: count(ItemKind::Ngrams),
                items_whole: count(ItemKind::Whole),
                items_too_short: count(ItemKind::TooShort),
                ..Default::default()
            });
        }
        Decontaminate {
            index: Arc::new(index),
            item_bench: Arc::new(item_bench),
            benches: stats,
            items: kinds.len(),
            ngram: cfg.ngram,
            min_item_words: cfg.min_item_words,
            label_only: cfg.label_only,
        }
    }

    /// The n-gram index (for benches and tests).
    pub fn index(&self) -> &GramIndex {
        &self.index
    }

    fn found_path(dir: &Path, task: usize) -> PathBuf {
        dir.join("found").join(format!("task-{task:05}.json"))
    }
}

fn columns() -> Vec<Field> {
    vec![
        Field::new(CONTAMINATED_BY, DataType::Utf8, true),
        Field::new(CONTAMINATION_NGRAM, DataType::Utf8, true),
    ]
}

impl Step for Decontaminate {
    fn kind(&self) -> &'static str {
        "decontaminate"
    }

    fn reasons(&self) -> Vec<String> {
        vec!["contaminated".into()]
    }

    fn columns(&self, c: &mut curate_core::columns::Columns<'_>) {
        // `label_only` marks every document; otherwise only the dropped ones say why
        for f in columns() {
            if self.label_only {
                c.add(None, f.name(), f.data_type().clone());
            } else {
                c.add_on_dropped(f.name(), f.data_type().clone());
            }
        }
    }

    fn processor(&self, cx: &TaskContext<'_>) -> Result<Box<dyn Processor>, StepError> {
        let words = self.items.div_ceil(64);
        Ok(Box::new(DecontProcessor {
            index: self.index.clone(),
            item_bench: self.item_bench.clone(),
            names: self.benches.iter().map(|b| b.name.clone()).collect(),
            label_only: self.label_only,
            scratch: Scratch::default(),
            found: vec![0; words],
            doc_benches: vec![false; self.benches.len()],
            out: TaskFound {
                documents_hit: vec![0; self.benches.len()],
                ..Default::default()
            },
            path: Self::found_path(cx.dir, cx.task),
            by: String::new(),
            gram: String::new(),
        }))
    }

    fn publish(&self, dir: &Path) -> Result<Published, StepError> {
        let mut benches = self.benches.clone();
        let mut found = vec![false; self.items];
        let (mut documents, mut contaminated) = (0u64, 0u64);
        let found_dir = dir.join("found");
        let mut files: Vec<PathBuf> = match std::fs::read_dir(&found_dir) {
            Ok(rd) => rd
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("task-"))
                        && p.extension().is_some_and(|x| x == "json")
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        files.sort();
        for f in &files {
            let t: TaskFound = read_json(f)?;
            documents += t.documents;
            contaminated += t.contaminated;
            for (b, n) in benches.iter_mut().zip(&t.documents_hit) {
                b.documents_hit += n;
            }
            for i in t.items_found {
                if let Some(x) = found.get_mut(i as usize) {
                    *x = true;
                }
            }
        }
        for (i, f) in found.iter().enumerate() {
            if *f {
                benches[self.item_bench[i] as usize].items_found += 1;
            }
        }
        let stats = serde_json::json!({
            "scheme": NGRAM_SCHEME,
            "ngram": self.ngram,
            "min_item_words": self.min_item_words,
            "label_only": self.label_only,
            "distinct_keys": self.index.len(),
            "index_bytes": self.index.memory_bytes(),
            "documents": documents,
            "contaminated": contaminated,
            "benchmarks": benches,
        });
        Ok(Published {
            files: Vec::new(),
            stats: Some(stats),
        })
    }
}

struct DecontProcessor {
    index: Arc<GramIndex>,
    item_bench: Arc<Vec<u16>>,
    names: Vec<String>,
    label_only: bool,
    scratch: Scratch,
    found: Vec<u64>,
    doc_benches: Vec<bool>,
    out: TaskFound,
    path: PathBuf,
    by: String,
    gram: String,
}

impl Processor for DecontProcessor {
    fn process(&mut self, batch: &mut DocBatch, counters: &mut Counters) -> Result<(), StepError> {
        let n = batch.len();
        let mut by = StringBuilder::new();
        let mut grams = StringBuilder::new();
        let mut hits = 0u64;
        let mut bytes = 0u64;
        for i in 0..n {
            let text = batch.text(i);
            bytes += text.len() as u64;
            self.gram.clear();
            let (found, doc_benches, gram, item_bench) = (
                &mut self.found,
                &mut self.doc_benches,
                &mut self.gram,
                &self.item_bench,
            );
            let hit = self.index.scan(text, &mut self.scratch, |g, items| {
                if gram.is_empty() {
                    gram.push_str(g);
                }
                for &it in items {
                    found[it as usize >> 6] |= 1 << (it & 63);
                    doc_benches[item_bench[it as usize] as usize] = true;
                }
            });
            if hit {
                hits += 1;
                self.by.clear();
                for (b, on) in self.doc_benches.iter_mut().enumerate() {
                    if *on {
                        *on = false;
                        self.out.documents_hit[b] += 1;
                        if !self.by.is_empty() {
                            self.by.push(',');
                        }
                        self.by.push_str(&self.names[b]);
                    }
                }
                by.append_value(&self.by);
                grams.append_value(&self.gram);
                if !self.label_only {
                    batch.drop_row(i, 0);
                }
            } else {
                by.append_null();
                grams.append_null();
            }
        }
        self.out.documents += n as u64;
        self.out.contaminated += hits;
        counters.add("decontaminate_documents", n as f64);
        counters.add("decontaminate_bytes", bytes as f64);
        counters.add("contaminated", hits as f64);
        // label_only: every batch gets the columns (one schema); otherwise only the dropped
        // rows need them, and the pipeline keeps them for the exclusion rows alone
        if self.label_only || hits > 0 {
            batch.set_column(CONTAMINATED_BY, Arc::new(by.finish()) as ArrayRef);
            batch.set_column(CONTAMINATION_NGRAM, Arc::new(grams.finish()) as ArrayRef);
        }
        Ok(())
    }

    fn finish(&mut self, _counters: &mut Counters) -> Result<(), StepError> {
        self.out.items_found = self
            .found
            .iter()
            .enumerate()
            .flat_map(|(w, bits)| {
                (0..64)
                    .filter(move |b| bits & (1u64 << b) != 0)
                    .map(move |b| (w * 64 + b) as u32)
            })
            .collect();
        write_json(&self.path, &self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_problems_are_collected() {
        let cfg: DecontaminateConfig = serde_json::from_value(serde_json::json!({
            "benchmarks": [], "fields": [], "ngram": 0
        }))
        .unwrap();
        let mut p = Problems::new();
        cfg.validate(&mut p);
        let fields: Vec<&str> = p.items().iter().map(|x| x.field.as_str()).collect();
        assert_eq!(fields, ["benchmarks", "fields", "ngram"]);
    }
}
