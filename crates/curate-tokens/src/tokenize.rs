//! `tokenize`: the kept documents as Megatron-LM indexed datasets under `<out>/tokens/`.
//!
//! 1. **observe** (the pass before the step, one task per share): each document is encoded
//!    (EOS appended), its ids stored in the output dtype and buffered with its document key, its
//!    `split_by` value and its shuffle order `xxh3(key, seed)`; past `memory_limit` the buffer
//!    is sorted by (value, order, key) and spilled as a run file.
//! 2. **write** (one task): per `split_by` value, a k-way merge of every run's section streams
//!    the documents in (order, key) order into `.bin` / `.idx` pairs, a new pair whenever the
//!    next document would take the current one past `max_tokens_per_file`; `stats.json` records
//!    documents and tokens per file and per value.
//! 3. the documents themselves pass through unchanged to `data/`; at the end of the run the
//!    files are published under `tokens/` and hashed in the manifest.
//!
//! The order is a function of document keys and the run seed only, so the bytes are the same
//! for any thread count and task size; every file is committed atomically and the write stage
//! starts over from its runs when it is re-run, so a killed run resumes to the same bytes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::Array;
use arrow::datatypes::DataType;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use curate_core::step::{PassThrough, Published};
use curate_core::{
    Barrier, BuildEnv, Counters, DocBatch, Observer, Problems, Processor, StageContext, StageSpec,
    Step, StepError, StepSpec, TaskContext,
};
use rayon::prelude::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::encoder::{Dtype, Encoder, EncoderInfo, TIKTOKEN_ENCODINGS, is_tiktoken};
use crate::megatron::{FileStats, IndexedWriter};
use crate::runs::{Merge, RunBuffer, RunInfo, Section, SectionReader};
use crate::{read_json, write_json};

/// Tokenize the kept documents into Megatron-LM indexed datasets (`.bin` + `.idx`) under
/// `<out>/tokens/`, ready for Megatron-LM's or NeMo's `data_path`. Must be the last step.
///
/// The tokenizer is an OpenAI tiktoken encoding (`cl100k_base`, `o200k_base`; the rank files are
/// built into curate, nothing is downloaded) or a Hugging Face `tokenizer.json` file, local or
/// in your object storage (`s3://`). Each document's ids are followed by the end-of-text token
/// (`eos`). Token ids are stored as `uint16` when the vocabulary has fewer than 65,500 ids,
/// else `int32`, as Megatron does.
///
/// With `shuffle = true` documents are written in a seeded order (an xxh3 hash of each
/// document's key under the run seed), otherwise in input order; either way the files are
/// byte-identical for any thread count and task size. A file holds at most
/// `max_tokens_per_file` tokens (a longer document gets a file of its own). With `split_by`,
/// each value of that column (a string or integer column, e.g. a quality bucket) gets its own
/// dataset `tokens/<column>=<value>/part-NNNNN`, to be weighted in a blend at training time.
///
/// `tokens/stats.json` (also in the manifest) lists documents and tokens per file and per value.
/// See docs/TRAINING-DATA.md for the trainer's side.
///
/// ```toml
/// [[steps]]
/// type = "tokenize"
/// tokenizer = "cl100k_base"
/// split_by = "language"
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenizeConfig {
    /// "cl100k_base", "o200k_base", or a Hugging Face tokenizer.json: a local path (relative
    /// paths resolve from the working directory) or `s3://bucket/key` in your object storage
    /// (read once when the step is built).
    pub tokenizer: String,
    /// Output format: "megatron" (Megatron-LM indexed dataset, `.bin` + `.idx`).
    #[serde(default)]
    pub format: TokenFormat,
    /// Append the end-of-text token to every document.
    #[serde(default = "yes")]
    pub eos: bool,
    /// The end-of-text token's text (default "<|endoftext|>"). With `eos = true` a tokenizer
    /// whose vocabulary lacks it is an error.
    #[serde(default)]
    pub eos_token: Option<String>,
    /// tokenizer.json only: run its post-processor (e.g. Llama's beginning-of-text token),
    /// as `encode(text, add_special_tokens=True)` does.
    #[serde(default)]
    pub add_special_tokens: bool,
    /// Write documents in a seeded order (the run seed) instead of input order.
    #[serde(default = "yes")]
    pub shuffle: bool,
    /// Most tokens in one `.bin` file; the next file starts before a document would exceed it.
    #[serde(default = "default_max_tokens")]
    pub max_tokens_per_file: u64,
    /// A column whose values each get their own dataset (strings or integers; null values go
    /// to `<column>=__null__`).
    #[serde(default)]
    pub split_by: Option<String>,
    /// Memory budget per task for buffered tokens, e.g. "512MiB"; sorted runs spill to disk
    /// beyond it. Does not change the output.
    #[serde(default = "default_memory")]
    pub memory_limit: String,
}

/// Output formats of `tokenize`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenFormat {
    /// Megatron-LM indexed dataset: `.bin` (token ids) + `.idx` (lengths, offsets).
    #[default]
    Megatron,
}

fn yes() -> bool {
    true
}
fn default_max_tokens() -> u64 {
    1_000_000_000
}
fn default_memory() -> String {
    "512MiB".into()
}

impl StepSpec for TokenizeConfig {
    const RUN_ONLY: &'static [&'static str] = &["memory_limit"];
    const TYPE: &'static str = "tokenize";

    fn validate(&self, p: &mut Problems) {
        let t = self.tokenizer.trim();
        if t.is_empty() {
            p.push(
                "tokenizer",
                "must name a tiktoken encoding (cl100k_base, o200k_base) or a tokenizer.json path",
            );
        } else if curate_core::resource::is_remote(t) {
            curate_core::resource::check_scheme(p, "tokenizer", t);
        } else if !is_tiktoken(t) && !t.ends_with(".json") && !t.contains('/') {
            p.one_of("tokenizer", t, &TIKTOKEN_ENCODINGS);
        }
        if is_tiktoken(t) && self.add_special_tokens {
            p.push(
                "add_special_tokens",
                "applies to a tokenizer.json only (tiktoken encodings have no post-processor)",
            );
        }
        if self.max_tokens_per_file == 0 {
            p.push("max_tokens_per_file", "0 is out of range; at least 1");
        }
        if let Some(c) = &self.split_by
            && c.trim().is_empty()
        {
            p.push("split_by", "must name a column");
        }
        if let Some(e) = &self.eos_token
            && e.is_empty()
        {
            p.push("eos_token", "must not be empty");
        }
        match curate_core::config::parse_bytes(&self.memory_limit) {
            Ok(b) if b < (4 << 20) => p.push(
                "memory_limit",
                format!("\"{}\" is too small; at least 4MiB", self.memory_limit),
            ),
            Ok(_) => {}
            Err(e) => p.push("memory_limit", e),
        }
    }

    fn must_be_last(&self) -> bool {
        true
    }

    fn build(&self, env: &BuildEnv) -> Result<Box<dyn Step>, StepError> {
        let encoder = Encoder::load(
            &self.tokenizer,
            self.eos_token.as_deref(),
            self.eos,
            self.add_special_tokens,
            &env.config_dir,
        )?;
        let memory = curate_core::config::parse_bytes(&self.memory_limit)
            .map_err(StepError::Other)? as usize;
        Ok(Box::new(Tokenize {
            cfg: self.clone(),
            dtype: encoder.dtype(),
            encoder: Arc::new(encoder),
            memory,
            shuffle_seed: curate_core::hash::derive_seed(env.seed, "tokenize/shuffle"),
            seed: env.seed,
        }))
    }
}

/// The built `tokenize` step.
pub struct Tokenize {
    cfg: TokenizeConfig,
    encoder: Arc<Encoder>,
    dtype: Dtype,
    memory: usize,
    shuffle_seed: u64,
    seed: u64,
}

/// One dataset (one `split_by` value, or the whole corpus).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetStats {
    /// Its directory under `tokens/` (`language=en`; empty without `split_by`).
    pub name: String,
    /// The `split_by` value (null for a null value or without `split_by`).
    pub value: Option<String>,
    /// Documents.
    pub documents: u64,
    /// Tokens (EOS included).
    pub tokens: u64,
    /// Its files, in order.
    pub files: Vec<FileStats>,
}

/// `tokens/stats.json`, also the step's stats in the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenStats {
    /// "megatron".
    pub format: String,
    /// The tokenizer.
    pub tokenizer: serde_json::Value,
    /// Token dtype in the `.bin` files.
    pub dtype: String,
    /// Whether documents end with the end-of-text token.
    pub eos: bool,
    /// Whether documents are in seeded order.
    pub shuffle: bool,
    /// The run seed the order derives from.
    pub seed: u64,
    /// The split column.
    pub split_by: Option<String>,
    /// File size limit in tokens.
    pub max_tokens_per_file: u64,
    /// Documents over all datasets.
    pub documents: u64,
    /// Tokens over all datasets.
    pub tokens: u64,
    /// Every dataset, in value order.
    pub datasets: Vec<DatasetStats>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct ObserverManifest {
    runs: Vec<RunInfo>,
    documents: u64,
    tokens: u64,
}

const OBSERVE: &str = "observe";
const OUT: &str = "out";
const STATS: &str = "stats.json";

/// The published directory of token files in the snapshot.
pub const TOKENS_DIR: &str = "tokens";

fn manifest_path(dir: &Path, task: usize) -> PathBuf {
    dir.join(OBSERVE).join(format!("task-{task:05}.json"))
}

/// A `split_by` value as a path component: ASCII letters, digits, `_` and `-` as they are, `.`
/// except in first place, every other byte as `%XX`; null is `__null__` (a real value
/// `__null__` is written `%5F_null__`). Distinct values never share a name.
pub fn escape_value(v: Option<&str>) -> String {
    let Some(v) = v else {
        return "__null__".into();
    };
    let mut s = String::with_capacity(v.len());
    for (i, b) in v.bytes().enumerate() {
        let plain = b.is_ascii_alphanumeric()
            || b == b'-'
            || (b == b'_' && !(i == 0 && v == "__null__"))
            || (b == b'.' && i > 0);
        if plain {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

impl Tokenize {
    fn dataset_name(&self, value: Option<&str>) -> String {
        match &self.cfg.split_by {
            None => String::new(),
            Some(c) => format!("{}={}", escape_value(Some(c)), escape_value(value)),
        }
    }

    fn run_write(&self, cx: &StageContext<'_>) -> Result<(), StepError> {
        let out = cx.dir.join(OUT);
        if out.exists() {
            std::fs::remove_dir_all(&out).map_err(|e| StepError::io(&out, e))?;
        }
        std::fs::create_dir_all(&out).map_err(|e| StepError::io(&out, e))?;
        let mut groups: BTreeMap<Option<String>, Vec<(PathBuf, Section)>> = BTreeMap::new();
        for t in 0..cx.observed_tasks {
            let m: ObserverManifest = read_json(&manifest_path(cx.dir, t))?;
            for r in m.runs {
                let path = cx.dir.join(OBSERVE).join(&r.file);
                for s in r.sections {
                    groups
                        .entry(s.value.clone())
                        .or_default()
                        .push((path.clone(), s));
                }
            }
        }
        let sources: usize = groups.values().map(Vec::len).max().unwrap_or(1);
        let buf = (self.memory / 2 / sources.max(1)).clamp(16 << 10, 1 << 20);
        let width = self.dtype.width();
        let mut datasets = Vec::new();
        let mut body = Vec::new();
        let max = self.cfg.max_tokens_per_file;
        for (value, secs) in groups {
            let name = self.dataset_name(value.as_deref());
            let mut readers = Vec::with_capacity(secs.len());
            for (p, s) in &secs {
                readers.push(SectionReader::open(p, s, width, buf)?);
            }
            let mut merge = Merge::new(readers);
            let mut files = Vec::new();
            let mut w: Option<IndexedWriter> = None;
            while let Some(n) = merge.next_into(&mut body)? {
                if let Some(cur) = &w
                    && cur.documents() > 0
                    && cur.tokens() + n as u64 > max
                {
                    files.push(w.take().expect("writer").finish()?);
                }
                if w.is_none() {
                    let prefix = if name.is_empty() {
                        format!("part-{:05}", files.len())
                    } else {
                        format!("{name}/part-{:05}", files.len())
                    };
                    w = Some(IndexedWriter::create(&out, &prefix, self.dtype)?);
                }
                w.as_mut().expect("writer").push(&body, n)?;
            }
            if let Some(w) = w {
                files.push(w.finish()?);
            }
            datasets.push(DatasetStats {
                name,
                value,
                documents: files.iter().map(|f| f.documents).sum(),
                tokens: files.iter().map(|f| f.tokens).sum(),
                files,
            });
        }
        let stats = TokenStats {
            format: "megatron".into(),
            tokenizer: serde_json::to_value(self.encoder.info()).expect("json"),
            dtype: serde_json::to_value(self.dtype)
                .expect("json")
                .as_str()
                .unwrap_or_default()
                .to_string(),
            eos: self.cfg.eos,
            shuffle: self.cfg.shuffle,
            seed: self.seed,
            split_by: self.cfg.split_by.clone(),
            max_tokens_per_file: max,
            documents: datasets.iter().map(|d| d.documents).sum(),
            tokens: datasets.iter().map(|d| d.tokens).sum(),
            datasets,
        };
        write_json(&cx.dir.join(STATS), &stats)?;
        let mut c = cx.counters.lock().expect("counters");
        c.add(
            "token_files",
            stats.datasets.iter().map(|d| d.files.len()).sum::<usize>() as f64,
        );
        c.add("token_datasets", stats.datasets.len() as f64);
        Ok(())
    }

    /// The tokenizer this step encodes with.
    pub fn encoder_info(&self) -> &EncoderInfo {
        self.encoder.info()
    }
}

impl Step for Tokenize {
    fn columns(&self, c: &mut curate_core::columns::Columns<'_>) {
        if let Some(col) = &self.cfg.split_by {
            c.need("split_by", col, curate_core::columns::Want::Key);
        }
    }

    fn kind(&self) -> &'static str {
        "tokenize"
    }

    fn processor(&self, _cx: &TaskContext<'_>) -> Result<Box<dyn Processor>, StepError> {
        Ok(Box::new(PassThrough))
    }

    fn barrier(&self) -> Option<&dyn Barrier> {
        Some(self)
    }

    fn publish(&self, dir: &Path) -> Result<Published, StepError> {
        let path = dir.join(STATS);
        if !path.exists() {
            return Ok(Published::default());
        }
        let stats: TokenStats = read_json(&path)?;
        let mut files = Vec::new();
        for d in &stats.datasets {
            for f in &d.files {
                for ext in ["bin", "idx"] {
                    files.push((
                        format!("{TOKENS_DIR}/{}.{ext}", f.prefix),
                        dir.join(OUT).join(format!("{}.{ext}", f.prefix)),
                    ));
                }
            }
        }
        files.push((format!("{TOKENS_DIR}/{STATS}"), path));
        Ok(Published {
            files,
            stats: Some(serde_json::to_value(&stats).expect("json")),
        })
    }
}

impl Barrier for Tokenize {
    fn observer(&self, cx: &TaskContext<'_>) -> Result<Box<dyn Observer>, StepError> {
        let dir = cx.dir.join(OBSERVE);
        std::fs::create_dir_all(&dir).map_err(|e| StepError::io(&dir, e))?;
        // a killed earlier attempt of this task may have left runs: they are redone
        let prefix = format!("task-{:05}-", cx.task);
        for e in std::fs::read_dir(&dir)
            .map_err(|e| StepError::io(&dir, e))?
            .flatten()
        {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_file(e.path());
            }
        }
        Ok(Box::new(TokenObserver {
            dir: cx.dir.to_path_buf(),
            task: cx.task,
            encoder: self.encoder.clone(),
            dtype: self.dtype,
            eos: if self.cfg.eos {
                self.encoder.info().eos_id
            } else {
                None
            },
            split_by: self.cfg.split_by.clone(),
            shuffle_seed: self.cfg.shuffle.then_some(self.shuffle_seed),
            budget: (self.memory / 2).max(1 << 20),
            buf: RunBuffer::new(self.dtype.width()),
            manifest: ObserverManifest::default(),
            values: Vec::new(),
            text: String::new(),
        }))
    }

    fn stages(&self, _observed_tasks: usize) -> Vec<StageSpec> {
        vec![StageSpec {
            name: "write".into(),
            tasks: 1,
        }]
    }

    fn run_stage_task(&self, cx: &StageContext<'_>) -> Result<(), StepError> {
        match cx.stage {
            0 => self.run_write(cx),
            s => Err(StepError::Other(format!("tokenize has no stage {s}"))),
        }
    }
}

/// Documents per parallel tokenization chunk.
const CHUNK: usize = 32;

struct TokenObserver {
    dir: PathBuf,
    task: usize,
    encoder: Arc<Encoder>,
    dtype: Dtype,
    eos: Option<u32>,
    split_by: Option<String>,
    shuffle_seed: Option<u64>,
    budget: usize,
    buf: RunBuffer,
    manifest: ObserverManifest,
    values: Vec<u32>,
    text: String,
}

impl TokenObserver {
    fn spill(&mut self) -> Result<(), StepError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let file = format!("task-{:05}-{:04}.run", self.task, self.manifest.runs.len());
        let sections = self.buf.spill(&self.dir.join(OBSERVE).join(&file))?;
        self.manifest.runs.push(RunInfo { file, sections });
        Ok(())
    }

    /// Interns the split value of every row into `self.values`.
    fn split_values(&mut self, batch: &DocBatch) -> Result<(), StepError> {
        self.values.clear();
        let Some(col) = &self.split_by else {
            let id = self.buf.value_id(None);
            self.values.resize(batch.len(), id);
            return Ok(());
        };
        let a = batch.column(col).ok_or_else(|| {
            let names: Vec<String> = batch
                .record()
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect();
            StepError::Data(format!(
                "split_by column `{col}` is not in the documents (columns: {})",
                names.join(", ")
            ))
        })?;
        let ok = matches!(
            a.data_type(),
            DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Utf8View
                | DataType::Boolean
                | DataType::Int8
                | DataType::Int16
                | DataType::Int32
                | DataType::Int64
                | DataType::UInt8
                | DataType::UInt16
                | DataType::UInt32
                | DataType::UInt64
                | DataType::Dictionary(_, _)
        );
        if !ok {
            return Err(StepError::Data(format!(
                "split_by column `{col}` is {}; use a string or integer column (one dataset per value)",
                a.data_type()
            )));
        }
        let opts = FormatOptions::default();
        let fmt = ArrayFormatter::try_new(a.as_ref(), &opts)
            .map_err(|e| StepError::Data(format!("split_by column `{col}`: {e}")))?;
        for i in 0..batch.len() {
            let id = if a.is_null(i) {
                self.buf.value_id(None)
            } else {
                self.text.clear();
                use std::fmt::Write as _;
                let _ = write!(self.text, "{}", fmt.value(i));
                self.buf.value_id(Some(&self.text))
            };
            self.values.push(id);
        }
        Ok(())
    }
}

impl Observer for TokenObserver {
    fn observe(&mut self, batch: &DocBatch, counters: &mut Counters) -> Result<(), StepError> {
        let n = batch.len();
        self.split_values(batch)?;
        let encoder = &self.encoder;
        let (dtype, eos) = (self.dtype, self.eos);
        // (token bytes, token counts) per chunk of rows, in row order
        let chunks: Vec<(Vec<u8>, Vec<u32>)> = (0..n)
            .into_par_iter()
            .chunks(CHUNK)
            .map_init(Vec::new, |ids: &mut Vec<u32>, rows| {
                let mut bytes = Vec::new();
                let mut counts = Vec::with_capacity(rows.len());
                for i in rows {
                    ids.clear();
                    encoder.encode_into(batch.text(i), ids)?;
                    if let Some(e) = eos {
                        ids.push(e);
                    }
                    dtype.put(ids, &mut bytes);
                    counts.push(ids.len() as u32);
                }
                Ok((bytes, counts))
            })
            .collect::<Result<_, StepError>>()?;
        let keys = batch.keys().values();
        let width = dtype.width();
        let mut row = 0;
        let mut tokens = 0u64;
        let mut text_bytes = 0u64;
        for (bytes, counts) in &chunks {
            let mut at = 0;
            for &c in counts {
                let len = c as usize * width;
                let key = keys[row];
                let order = self
                    .shuffle_seed
                    .map_or(0, |s| curate_core::hash::mix64(key, s));
                self.buf
                    .push(self.values[row], order, key, &bytes[at..at + len]);
                at += len;
                tokens += c as u64;
                text_bytes += batch.text(row).len() as u64;
                row += 1;
                if self.buf.bytes() >= self.budget {
                    self.spill()?;
                }
            }
        }
        self.manifest.documents += n as u64;
        self.manifest.tokens += tokens;
        counters.add("tokenized_documents", n as f64);
        counters.add("tokens", tokens as f64);
        counters.add("tokenized_bytes", text_bytes as f64);
        Ok(())
    }

    fn finish(mut self: Box<Self>, _counters: &mut Counters) -> Result<(), StepError> {
        // (no run count among the counters: it depends on the task layout, the manifest must not)
        self.spill()?;
        write_json(&manifest_path(&self.dir, self.task), &self.manifest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_escape_to_distinct_path_components() {
        assert_eq!(escape_value(Some("en")), "en");
        assert_eq!(escape_value(Some("3")), "3");
        assert_eq!(escape_value(Some("a/b c")), "a%2Fb%20c");
        assert_eq!(escape_value(Some("..")), "%2E.");
        assert_eq!(escape_value(Some("")), "");
        assert_eq!(escape_value(None), "__null__");
        assert_ne!(escape_value(Some("__null__")), escape_value(None));
        assert_eq!(escape_value(Some("a%2F")), "a%252F");
    }

    #[test]
    fn config_problems_are_collected() {
        let cfg: TokenizeConfig = serde_json::from_value(serde_json::json!({
            "tokenizer": "cl100k", "max_tokens_per_file": 0, "memory_limit": "1KiB",
            "split_by": " "
        }))
        .unwrap();
        let mut p = Problems::new();
        cfg.validate(&mut p);
        let fields: Vec<&str> = p.items().iter().map(|x| x.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "tokenizer",
                "max_tokens_per_file",
                "split_by",
                "memory_limit"
            ]
        );
        assert_eq!(
            p.items()[0].hint.as_deref(),
            Some("did you mean \"cl100k_base\"?")
        );
    }
}
