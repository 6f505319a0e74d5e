//! The label store: every label ever bought, keyed by (model, prompt hash, text hash).
//!
//! It lives outside any snapshot (default `$XDG_CACHE_HOME/curate/labels`, else
//! `~/.cache/curate/labels`; `store = "PATH"` to share one across a team), so a re-run, or a new
//! snapshot over the same documents, never pays twice. Layout:
//!
//! ```text
//! STORE/segments/<hash>.parquet   immutable label tables
//! STORE/journal/<host>-<pid>-<t>.jsonl   labels of a run in progress, one fsynced line each
//! STORE/pending/<batch id>.json   batches submitted and not yet harvested
//! ```
//!
//! A run appends each label to its journal as soon as it is bought (so a crash loses nothing),
//! and folds its journal into a new segment when it finishes. Journals left by crashed runs are
//! read like segments and folded in by the next run on the same host. Batch ids are written to
//! `pending/` right after a batch is created, so a run killed mid-batch re-attaches to it instead
//! of buying it again.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Float64Type, Schema, UInt64Type};
use serde::{Deserialize, Serialize};

use crate::LabelError;
use crate::util::{read_parquet, write_atomic, write_parquet};

/// What became of a document sent to the teacher.
pub mod status {
    /// A valid score.
    pub const OK: &str = "ok";
    /// The model refused (`stop_reason = refusal`); recorded, unlabeled.
    pub const REFUSAL: &str = "refusal";
    /// The answer was cut by `max_tokens`; recorded, unlabeled.
    pub const MAX_TOKENS: &str = "max_tokens";
    /// The answer did not parse or broke the schema.
    pub const INVALID_OUTPUT: &str = "invalid_output";
}

/// One stored label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Model id.
    pub model: String,
    /// Hash of the rubric, schema and document presentation.
    pub prompt_hash: String,
    /// xxh3-128 of the full document text (hex).
    pub text_hash: String,
    /// See [`status`].
    pub status: String,
    /// The score, when `status` is `ok`.
    pub score: Option<f64>,
    /// The teacher's short reason, or what went wrong.
    pub reason: String,
    /// Uncached input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Cache-write input tokens.
    pub cache_creation_input_tokens: u64,
    /// Cache-read input tokens.
    pub cache_read_input_tokens: u64,
    /// What the label cost (USD).
    pub cost_usd: f64,
    /// `online` or `batch`.
    pub mode: String,
}

/// A batch submitted and not yet harvested.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    /// `msgbatch_…`.
    pub batch_id: String,
    /// Model of its requests.
    pub model: String,
    /// Prompt hash of its requests.
    pub prompt_hash: String,
    /// The custom ids it holds (`t<text hash>`).
    pub custom_ids: Vec<String>,
    /// Worst-case input tokens reserved for it.
    pub reserved_input: u64,
    /// Worst-case USD reserved for it.
    pub reserved_usd: f64,
    /// The step work dir that submitted it (whose budget it counts against).
    pub owner: String,
}

/// The store, opened for one (model, prompt hash).
pub struct Store {
    dir: PathBuf,
    model: String,
    prompt_hash: String,
    labels: HashMap<String, Record>,
    journal: Option<(PathBuf, File)>,
    journal_records: Vec<Record>,
    foreign_journals: Vec<PathBuf>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.dir)
            .field("labels", &self.labels.len())
            .finish()
    }
}

/// The default store directory: `$XDG_CACHE_HOME/curate/labels`, else `~/.cache/curate/labels`.
pub fn default_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(x).join("curate/labels");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    home.join(".cache/curate/labels")
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| fs::read_to_string("/etc/hostname").ok())
        .map(|h| {
            h.trim()
                .replace(|c: char| !c.is_ascii_alphanumeric() && c != '.', "_")
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into())
}

impl Store {
    /// Opens (creating) the store and loads the labels of (`model`, `prompt_hash`).
    pub fn open(dir: &Path, model: &str, prompt_hash: &str) -> Result<Store, LabelError> {
        for sub in ["segments", "journal", "pending"] {
            let d = dir.join(sub);
            fs::create_dir_all(&d).map_err(|e| LabelError::io(&d, e))?;
        }
        let mut s = Store {
            dir: dir.to_path_buf(),
            model: model.into(),
            prompt_hash: prompt_hash.into(),
            labels: HashMap::new(),
            journal: None,
            journal_records: Vec::new(),
            foreign_journals: Vec::new(),
        };
        for p in sorted_files(&dir.join("segments"), "parquet")? {
            s.load_segment(&p)?;
        }
        let host = hostname();
        for p in sorted_files(&dir.join("journal"), "jsonl")? {
            let recs = read_journal(&p)?;
            for r in recs {
                s.insert_loaded(r);
            }
            // A journal of a dead process on this host is folded into our segment at the end.
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let mut parts = name.rsplitn(3, '-');
            let (_t, pid, h) = (parts.next(), parts.next(), parts.next());
            if h == Some(host.as_str())
                && let Some(pid) = pid.and_then(|p| p.parse::<u32>().ok())
                && pid != std::process::id()
                && !Path::new(&format!("/proc/{pid}")).exists()
            {
                s.foreign_journals.push(p);
            }
        }
        Ok(s)
    }

    fn insert_loaded(&mut self, r: Record) {
        if r.model == self.model && r.prompt_hash == self.prompt_hash {
            self.labels.entry(r.text_hash.clone()).or_insert(r);
        }
    }

    fn load_segment(&mut self, p: &Path) -> Result<(), LabelError> {
        for rb in read_parquet(p, None)? {
            let s = |n: &str| -> Result<&StringArray, LabelError> {
                Ok(crate::util::column(&rb, n, p)?.as_string::<i32>())
            };
            let u = |n: &str| -> Result<&UInt64Array, LabelError> {
                Ok(crate::util::column(&rb, n, p)?.as_primitive::<UInt64Type>())
            };
            let (model, ph, th, st, reason, mode) = (
                s("model")?,
                s("prompt_hash")?,
                s("text_hash")?,
                s("status")?,
                s("reason")?,
                s("mode")?,
            );
            let score = crate::util::column(&rb, "score", p)?.as_primitive::<Float64Type>();
            let cost = crate::util::column(&rb, "cost_usd", p)?.as_primitive::<Float64Type>();
            let (it, ot, cc, cr) = (
                u("input_tokens")?,
                u("output_tokens")?,
                u("cache_creation_input_tokens")?,
                u("cache_read_input_tokens")?,
            );
            for i in 0..rb.num_rows() {
                if model.value(i) != self.model || ph.value(i) != self.prompt_hash {
                    continue;
                }
                self.insert_loaded(Record {
                    model: model.value(i).into(),
                    prompt_hash: ph.value(i).into(),
                    text_hash: th.value(i).into(),
                    status: st.value(i).into(),
                    score: (!score.is_null(i)).then(|| score.value(i)),
                    reason: reason.value(i).into(),
                    input_tokens: it.value(i),
                    output_tokens: ot.value(i),
                    cache_creation_input_tokens: cc.value(i),
                    cache_read_input_tokens: cr.value(i),
                    cost_usd: cost.value(i),
                    mode: mode.value(i).into(),
                });
            }
        }
        Ok(())
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The stored label of a text hash.
    pub fn get(&self, text_hash: &str) -> Option<&Record> {
        self.labels.get(text_hash)
    }

    /// Number of labels loaded for this (model, prompt hash).
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when no label is loaded.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Records a bought label: appended and fsynced to this run's journal before returning.
    pub fn put(&mut self, r: Record) -> Result<(), LabelError> {
        if self.journal.is_none() {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            let p = self.dir.join("journal").join(format!(
                "{}-{}-{nanos}.jsonl",
                hostname(),
                std::process::id()
            ));
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&p)
                .map_err(|e| LabelError::io(&p, e))?;
            self.journal = Some((p, f));
        }
        let (p, f) = self.journal.as_mut().expect("journal open");
        let mut line = serde_json::to_vec(&r).expect("record JSON");
        line.push(b'\n');
        f.write_all(&line).map_err(|e| LabelError::io(&*p, e))?;
        f.sync_data().map_err(|e| LabelError::io(&*p, e))?;
        self.labels.insert(r.text_hash.clone(), r.clone());
        self.journal_records.push(r);
        Ok(())
    }

    /// Folds this run's journal (and journals of dead runs on this host) into a new immutable
    /// segment, then removes them.
    pub fn compact(&mut self) -> Result<(), LabelError> {
        let mut recs = std::mem::take(&mut self.journal_records);
        for p in &self.foreign_journals {
            recs.extend(read_journal(p)?);
        }
        if recs.is_empty() {
            return Ok(());
        }
        recs.sort_by(|a, b| {
            (&a.model, &a.prompt_hash, &a.text_hash).cmp(&(&b.model, &b.prompt_hash, &b.text_hash))
        });
        recs.dedup_by(|a, b| {
            a.model == b.model && a.prompt_hash == b.prompt_hash && a.text_hash == b.text_hash
        });
        let rb = records_batch(&recs);
        let mut h = 0u128;
        for r in &recs {
            h ^= curate_core::hash::h128(
                format!("{}\0{}\0{}", r.model, r.prompt_hash, r.text_hash).as_bytes(),
                0,
            );
        }
        let path = self
            .dir
            .join("segments")
            .join(format!("{}.parquet", &curate_core::hash::hex128(h)[..24]));
        if !path.exists() {
            write_parquet(&path, rb.schema(), &[rb])?;
        }
        if let Some((p, _)) = self.journal.take() {
            fs::remove_file(&p).map_err(|e| LabelError::io(&p, e))?;
        }
        for p in std::mem::take(&mut self.foreign_journals) {
            let _ = fs::remove_file(&p);
        }
        Ok(())
    }

    /// Pending batches of this (model, prompt hash).
    pub fn pending(&self) -> Result<Vec<Pending>, LabelError> {
        let mut out = Vec::new();
        for p in sorted_files(&self.dir.join("pending"), "json")? {
            let text = fs::read_to_string(&p).map_err(|e| LabelError::io(&p, e))?;
            let v: Pending = serde_json::from_str(&text).map_err(|e| LabelError::Input {
                path: p.clone(),
                message: format!("bad pending-batch record: {e}"),
            })?;
            if v.model == self.model && v.prompt_hash == self.prompt_hash {
                out.push(v);
            }
        }
        Ok(out)
    }

    /// Persists a pending batch (atomically).
    pub fn add_pending(&self, p: &Pending) -> Result<(), LabelError> {
        let path = self
            .dir
            .join("pending")
            .join(format!("{}.json", safe(&p.batch_id)));
        write_atomic(&path, &serde_json::to_vec_pretty(p).expect("JSON"))
    }

    /// Forgets a harvested batch.
    pub fn remove_pending(&self, batch_id: &str) -> Result<(), LabelError> {
        let path = self
            .dir
            .join("pending")
            .join(format!("{}.json", safe(batch_id)));
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(LabelError::io(&path, e)),
        }
    }
}

fn safe(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn sorted_files(dir: &Path, ext: &str) -> Result<Vec<PathBuf>, LabelError> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| LabelError::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    v.sort();
    Ok(v)
}

fn read_journal(p: &Path) -> Result<Vec<Record>, LabelError> {
    let f = File::open(p).map_err(|e| LabelError::io(p, e))?;
    let mut out = Vec::new();
    for line in BufReader::new(f).lines() {
        let line = line.map_err(|e| LabelError::io(p, e))?;
        // A torn last line (crash mid-write) is skipped: its label was not acknowledged.
        if let Ok(r) = serde_json::from_str::<Record>(&line) {
            out.push(r);
        }
    }
    Ok(out)
}

/// The Arrow table of records (the segment schema).
pub fn records_batch(recs: &[Record]) -> RecordBatch {
    let s = |f: fn(&Record) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(recs.iter().map(f)))
    };
    let u = |f: fn(&Record) -> u64| -> ArrayRef {
        Arc::new(UInt64Array::from_iter_values(recs.iter().map(f)))
    };
    let schema = Arc::new(Schema::new(vec![
        Field::new("model", DataType::Utf8, false),
        Field::new("prompt_hash", DataType::Utf8, false),
        Field::new("text_hash", DataType::Utf8, false),
        Field::new("status", DataType::Utf8, false),
        Field::new("score", DataType::Float64, true),
        Field::new("reason", DataType::Utf8, false),
        Field::new("input_tokens", DataType::UInt64, false),
        Field::new("output_tokens", DataType::UInt64, false),
        Field::new("cache_creation_input_tokens", DataType::UInt64, false),
        Field::new("cache_read_input_tokens", DataType::UInt64, false),
        Field::new("cost_usd", DataType::Float64, false),
        Field::new("mode", DataType::Utf8, false),
    ]));
    let cols: Vec<ArrayRef> = vec![
        s(|r| &r.model),
        s(|r| &r.prompt_hash),
        s(|r| &r.text_hash),
        s(|r| &r.status),
        Arc::new(recs.iter().map(|r| r.score).collect::<Float64Array>()),
        s(|r| &r.reason),
        u(|r| r.input_tokens),
        u(|r| r.output_tokens),
        u(|r| r.cache_creation_input_tokens),
        u(|r| r.cache_read_input_tokens),
        Arc::new(Float64Array::from_iter_values(
            recs.iter().map(|r| r.cost_usd),
        )),
        s(|r| &r.mode),
    ];
    RecordBatch::try_new(schema, cols).expect("segment batch")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(th: &str, score: f64) -> Record {
        Record {
            model: "m".into(),
            prompt_hash: "p".into(),
            text_hash: th.into(),
            status: status::OK.into(),
            score: Some(score),
            reason: "r".into(),
            input_tokens: 10,
            output_tokens: 2,
            cache_creation_input_tokens: 0,
            cache_read_input_tokens: 5,
            cost_usd: 0.001,
            mode: "online".into(),
        }
    }

    #[test]
    fn labels_survive_reopen_and_compaction() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = Store::open(dir.path(), "m", "p").unwrap();
            s.put(rec("a", 1.0)).unwrap();
            s.put(rec("b", 2.0)).unwrap();
            // No compaction: as if the run crashed. The journal alone must suffice.
        }
        let mut s = Store::open(dir.path(), "m", "p").unwrap();
        assert_eq!(s.get("a").unwrap().score, Some(1.0));
        s.put(rec("c", 3.0)).unwrap();
        s.compact().unwrap();
        let s = Store::open(dir.path(), "m", "p").unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s.get("c").unwrap(), &rec("c", 3.0));
        // Other prompt hashes are invisible.
        assert!(Store::open(dir.path(), "m", "other").unwrap().is_empty());
    }

    #[test]
    fn costs_resumed_from_the_journal_are_bit_exact() {
        // A label bought before a crash is read back from the JSON journal; its cost must be the
        // same f64 as in the run that bought it, or a resumed snapshot differs from an
        // uninterrupted one (serde_json's `float_roundtrip`).
        let dir = tempfile::tempdir().unwrap();
        let costs = [
            0.000_180_200_000_000_000_02,
            0.1 + 0.2,
            1.0 / 3.0,
            2.5e-7 * 3.0,
        ];
        {
            let mut s = Store::open(dir.path(), "m", "p").unwrap();
            for (i, c) in costs.iter().enumerate() {
                s.put(Record {
                    cost_usd: *c,
                    ..rec(&format!("t{i}"), 1.0)
                })
                .unwrap();
            }
        }
        let s = Store::open(dir.path(), "m", "p").unwrap();
        for (i, c) in costs.iter().enumerate() {
            assert_eq!(
                s.get(&format!("t{i}")).unwrap().cost_usd.to_bits(),
                c.to_bits()
            );
        }
    }

    #[test]
    fn pending_batches_roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), "m", "p").unwrap();
        let p = Pending {
            batch_id: "msgbatch_1".into(),
            model: "m".into(),
            prompt_hash: "p".into(),
            custom_ids: vec!["t1".into()],
            reserved_input: 10,
            reserved_usd: 0.5,
            owner: "x".into(),
        };
        s.add_pending(&p).unwrap();
        assert_eq!(s.pending().unwrap().len(), 1);
        s.remove_pending("msgbatch_1").unwrap();
        assert!(s.pending().unwrap().is_empty());
    }
}
