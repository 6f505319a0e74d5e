//! `exact_dedup`: removes documents whose normalized text is identical to another's.
//!
//! 1. **observe**: xxh3-128 of each document's normalized text; records `(hash, priority, key)`
//!    are buffered up to a share of `memory_limit` and spilled as sorted runs partitioned by hash.
//! 2. **groups** (`partitions` tasks): k-way merge of one partition of every run; in each group of
//!    equal hashes the first record (best priority, then smallest key) survives. The group's
//!    other members are written, sorted by key through an external sorter, to the partition's
//!    node file.
//! 3. **filter**: each task walks the node files forward in key order and drops its duplicates,
//!    naming each one's survivor in `duplicate_of` (see [`crate::provenance`]: with an id column
//!    the observers also write `(key → id)` and the groups stage writes, per partition, the
//!    survivors' ids for its duplicates, sorted by key).

use std::path::{Path, PathBuf};

use curate_core::step::Published;
use curate_core::{
    Barrier, BuildEnv, Counters, DocBatch, Observer, Problems, Processor, StageContext, StageSpec,
    Step, StepError, StepSpec, TaskContext,
};
use rayon::prelude::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{
    Histogram, Keep, NodeLookup, NodeRec, ObserverManifest, REMOVED, clear_task_files,
    manifest_path, priorities, read_json, read_manifests, validate_keep, write_json,
};
use crate::normalize::{Normalizer, TextNormalization};
use crate::provenance::{
    DUPLICATE_OF, DropNames, NamesTable, NamesWriter, ProvBuilder, ProvLookup, RootKey,
    name_survivors, names_paths, observer_names, render_key,
};
use crate::runs::{
    ExternalSorter, Merger, PartReader, Record, RunStreamWriter, Source, parse_bytes, spill_sorted,
    u32_at, u64_at,
};

/// Removes exact duplicates: documents whose normalized text hashes (xxh3-128) to the same value
/// as another document's. One document per group survives: the one with the smallest document key
/// (input order), or with `keep = "highest"` the one with the highest `score_column`. The result
/// is the same for any number of tasks or threads.
///
/// Runs as resumable stages bounded by `memory_limit` per task (sorted runs spill to disk).
///
/// Each removed document names its survivor in the exclusion output's `duplicate_of` column:
/// the survivor's id (`[input] id_column`), or its document key (16 hex digits) when the input
/// has no id column.
///
/// Example:
///
/// ```toml
/// [[steps]]
/// type = "exact_dedup"
/// normalization = "whitespace"
/// ```
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExactDedupConfig {
    /// How text is normalized before hashing: "none" (raw bytes), "whitespace", "lowercase" or
    /// "full" (datatrove's simplify_text: lowercase, no punctuation, digits and diacritics
    /// normalized).
    #[serde(default)]
    pub normalization: TextNormalization,
    /// Which document of a group survives.
    #[serde(default)]
    pub keep: Keep,
    /// Numeric column ranking documents for `keep = "highest"`.
    #[serde(default)]
    pub score_column: Option<String>,
    /// Hash partitions: the groups stage has this many tasks.
    #[serde(default = "default_partitions")]
    pub partitions: usize,
    /// Memory budget per task, e.g. "512MiB"; sorted runs spill to disk beyond it.
    #[serde(default = "default_memory")]
    pub memory_limit: String,
}

fn default_partitions() -> usize {
    16
}
fn default_memory() -> String {
    "1GiB".to_string()
}

impl Default for ExactDedupConfig {
    fn default() -> Self {
        Self {
            normalization: TextNormalization::Full,
            keep: Keep::Smallest,
            score_column: None,
            partitions: default_partitions(),
            memory_limit: default_memory(),
        }
    }
}

impl StepSpec for ExactDedupConfig {
    const RUN_ONLY: &'static [&'static str] = &["memory_limit"];
    const TYPE: &'static str = "exact_dedup";

    fn validate(&self, p: &mut Problems) {
        p.range("partitions", self.partitions, 1, 4096);
        validate_keep(self.keep, &self.score_column, p);
        match parse_bytes(&self.memory_limit) {
            Ok(b) if b < (4 << 20) => p.push(
                "memory_limit",
                format!("\"{}\" is too small; at least 4MiB", self.memory_limit),
            ),
            Ok(_) => {}
            Err(e) => p.push("memory_limit", e),
        }
    }

    fn build(&self, env: &BuildEnv) -> Result<Box<dyn Step>, StepError> {
        let memory = parse_bytes(&self.memory_limit).map_err(StepError::Other)? as usize;
        Ok(Box::new(ExactDedup {
            cfg: self.clone(),
            memory,
            seed: curate_core::hash::derive_seed(0, "exact_dedup"),
            has_ids: env.id_column.is_some(),
        }))
    }
}

/// The runtime `exact_dedup` step.
pub struct ExactDedup {
    cfg: ExactDedupConfig,
    memory: usize,
    seed: u64,
    /// The input has an id column: observers record ids, the groups stage names survivors.
    has_ids: bool,
}

/// `(hash, priority, key)`, sorted in that order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct HashRec {
    hash: u128,
    prio: u32,
    key: u64,
}

impl Record for HashRec {
    const SIZE: usize = 28;
    fn encode(&self, out: &mut [u8]) {
        out[..16].copy_from_slice(&self.hash.to_le_bytes());
        out[16..20].copy_from_slice(&self.prio.to_le_bytes());
        out[20..28].copy_from_slice(&self.key.to_le_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        HashRec {
            hash: u128::from_le_bytes(b[..16].try_into().expect("16 bytes")),
            prio: u32_at(b, 16),
            key: u64_at(b, 20),
        }
    }
}

/// Per-partition summary of the groups stage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExactStats {
    /// Groups of two or more identical documents.
    pub groups: u64,
    /// Documents removed.
    pub duplicates_removed: u64,
    /// Number of groups by size.
    pub group_sizes: Histogram,
}

impl ExactDedup {
    fn nodes_path(dir: &Path, p: usize) -> PathBuf {
        dir.join("groups").join(format!("p{p:05}.run"))
    }

    fn stats_path(dir: &Path, p: usize) -> PathBuf {
        dir.join("groups").join(format!("p{p:05}.json"))
    }

    /// The partition's provenance: one record per duplicate (sorted by key) and the survivors'
    /// ids.
    fn prov_paths(dir: &Path, p: usize) -> (PathBuf, PathBuf) {
        (
            dir.join("groups").join(format!("p{p:05}.prov")),
            dir.join("groups").join(format!("p{p:05}.names")),
        )
    }

    fn run_groups(&self, cx: &StageContext<'_>) -> Result<(), StepError> {
        let p = cx.task;
        let manifests = read_manifests(cx.dir, cx.observed_tasks)?;
        let runs: Vec<PathBuf> = manifests
            .iter()
            .flat_map(|m| m.runs.iter().map(|r| cx.dir.join(r)))
            .collect();
        let buf = (self.memory / 2 / runs.len().max(1)).clamp(4096, 1 << 20);
        let mut sources: Vec<Box<dyn Source<HashRec> + Send>> = Vec::with_capacity(runs.len());
        for r in &runs {
            sources.push(Box::new(PartReader::<HashRec>::open(r, p, buf)?));
        }
        let mut merger = Merger::new(sources)?;
        let tmp = cx.dir.join("groups").join(format!("tmp-{p:05}"));
        std::fs::create_dir_all(&tmp).map_err(|e| StepError::io(&tmp, e))?;
        let mut sorter = ExternalSorter::<NodeRec>::new(&tmp, "nodes", self.memory / 4);
        // (survivor, duplicate) pairs, to name the survivors once the merge is done.
        let mut pairs = self
            .has_ids
            .then(|| ExternalSorter::<RootKey>::new(&tmp, "pairs", self.memory / 4));
        let mut stats = ExactStats::default();
        let mut current: Option<(u128, u64)> = None; // (hash, survivor key)
        let mut size = 0u64;
        let close = |size: u64, stats: &mut ExactStats| {
            if size >= 2 {
                stats.groups += 1;
                *stats.group_sizes.entry(size).or_default() += 1;
            }
        };
        while let Some((r, _)) = merger.next_record()? {
            match current {
                Some((h, root)) if h == r.hash => {
                    size += 1;
                    stats.duplicates_removed += 1;
                    sorter.push(NodeRec {
                        key: r.key,
                        root,
                        status: REMOVED,
                    })?;
                    if let Some(pairs) = pairs.as_mut() {
                        pairs.push(RootKey { root, key: r.key })?;
                    }
                }
                _ => {
                    close(size, &mut stats);
                    current = Some((r.hash, r.key));
                    size = 1;
                }
            }
        }
        close(size, &mut stats);
        let mut sorted = sorter.finish()?;
        let mut w = RunStreamWriter::<NodeRec>::create(&Self::nodes_path(cx.dir, p))?;
        while let Some(n) = sorted.next_record()? {
            w.push(n)?;
        }
        w.finish()?;
        sorted.cleanup();
        drop(merger);
        let mut prov_spills = 0;
        if let Some(pairs) = pairs {
            let (run, blob) = Self::prov_paths(cx.dir, p);
            let mut names = NamesTable::open(observer_names(cx.dir, cx.observed_tasks))?;
            let mut prov = ProvBuilder::create(&tmp, &blob, self.memory / 4)?;
            prov_spills += pairs.spills();
            let mut sorted = pairs.finish()?;
            name_survivors(&mut sorted, &mut names, &mut prov)?;
            sorted.cleanup();
            prov_spills += prov.spills();
            prov.finish(&run)?;
        }
        let _ = std::fs::remove_dir(&tmp);
        write_json(&Self::stats_path(cx.dir, p), &stats)?;
        let mut c = cx.counters.lock().expect("counters");
        c.add("exact_groups", stats.groups as f64);
        c.add("exact_duplicates", stats.duplicates_removed as f64);
        c.add_run("exact_provenance_spills", prov_spills as f64);
        Ok(())
    }
}

impl Step for ExactDedup {
    fn kind(&self) -> &'static str {
        "exact_dedup"
    }

    fn columns(&self, c: &mut curate_core::columns::Columns<'_>) {
        crate::common::need_score_column(c, self.cfg.keep, &self.cfg.score_column);
        c.add_on_dropped(DUPLICATE_OF, arrow::datatypes::DataType::Utf8);
    }

    fn reasons(&self) -> Vec<String> {
        vec!["exact_duplicate".to_string()]
    }

    fn processor(&self, cx: &TaskContext<'_>) -> Result<Box<dyn Processor>, StepError> {
        let paths: Vec<PathBuf> = (0..self.cfg.partitions)
            .map(|p| Self::nodes_path(cx.dir, p))
            .collect();
        let prov = if self.has_ids {
            (0..self.cfg.partitions)
                .map(|p| {
                    let (run, blob) = Self::prov_paths(cx.dir, p);
                    ProvLookup::open(&run, &blob)
                })
                .collect::<Result<Vec<_>, _>>()?
        } else {
            Vec::new()
        };
        Ok(Box::new(ExactFilter {
            lookup: NodeLookup::open(&paths)?,
            prov,
            names: DropNames::default(),
            buf: Vec::new(),
        }))
    }

    fn barrier(&self) -> Option<&dyn Barrier> {
        Some(self)
    }

    fn publish(&self, dir: &Path) -> Result<Published, StepError> {
        let mut total = ExactStats::default();
        let mut any = false;
        for p in 0..self.cfg.partitions {
            let path = Self::stats_path(dir, p);
            if !path.exists() {
                continue;
            }
            any = true;
            let s: ExactStats = read_json(&path)?;
            total.groups += s.groups;
            total.duplicates_removed += s.duplicates_removed;
            for (k, v) in s.group_sizes {
                *total.group_sizes.entry(k).or_default() += v;
            }
        }
        let stats = any.then(|| {
            let mut v = serde_json::to_value(&total).unwrap_or_default();
            v["normalization"] = serde_json::to_value(self.cfg.normalization).unwrap_or_default();
            v
        });
        Ok(Published {
            files: Vec::new(),
            stats,
        })
    }
}

impl Barrier for ExactDedup {
    fn observer(&self, cx: &TaskContext<'_>) -> Result<Box<dyn Observer>, StepError> {
        let runs_dir = cx.dir.join("observe");
        std::fs::create_dir_all(&runs_dir).map_err(|e| StepError::io(&runs_dir, e))?;
        clear_task_files(&runs_dir, &format!("task-{:05}-", cx.task))?;
        let cap = (self.memory / 4 / std::mem::size_of::<(u32, HashRec)>()).max(16);
        let names = if self.has_ids {
            Some(NamesWriter::create(&names_paths(cx.dir, cx.task))?)
        } else {
            None
        };
        Ok(Box::new(ExactObserver {
            names,
            dir: cx.dir.to_path_buf(),
            task: cx.task,
            normalizer: self.cfg.normalization.flags().map(Normalizer::new),
            seed: self.seed,
            keep: self.cfg.keep,
            score_column: self.cfg.score_column.clone(),
            partitions: self.cfg.partitions,
            part_of: ExactPartitioner {
                partitions: self.cfg.partitions,
            },
            buf: Vec::with_capacity(cap.min(1 << 20)),
            cap,
            runs: Vec::new(),
            documents: 0,
            prio: Vec::new(),
            hashes: Vec::new(),
        }))
    }

    fn stages(&self, _observed_tasks: usize) -> Vec<StageSpec> {
        vec![StageSpec {
            name: "groups".to_string(),
            tasks: self.cfg.partitions,
        }]
    }

    fn run_stage_task(&self, cx: &StageContext<'_>) -> Result<(), StepError> {
        match cx.stage {
            0 => self.run_groups(cx),
            s => Err(StepError::Other(format!("exact_dedup has no stage {s}"))),
        }
    }
}

#[derive(Clone, Copy)]
struct ExactPartitioner {
    partitions: usize,
}

impl ExactPartitioner {
    fn of(&self, hash: u128) -> usize {
        (((hash >> 64) as u64 as u128 * self.partitions as u128) >> 64) as usize
    }
}

struct ExactObserver {
    names: Option<NamesWriter>,
    dir: PathBuf,
    task: usize,
    normalizer: Option<Normalizer>,
    seed: u64,
    keep: Keep,
    score_column: Option<String>,
    partitions: usize,
    part_of: ExactPartitioner,
    buf: Vec<(u32, HashRec)>,
    cap: usize,
    runs: Vec<String>,
    documents: u64,
    prio: Vec<u32>,
    hashes: Vec<u128>,
}

impl ExactObserver {
    fn spill(&mut self) -> Result<(), StepError> {
        let partitions = self.partitions;
        spill_sorted(
            &self.dir,
            self.task,
            partitions,
            &mut self.buf,
            &mut self.runs,
        )
    }
}

impl Observer for ExactObserver {
    fn observe(&mut self, batch: &DocBatch, counters: &mut Counters) -> Result<(), StepError> {
        let n = batch.len();
        priorities(
            batch,
            self.keep,
            self.score_column.as_deref(),
            &mut self.prio,
        )?;
        let seed = self.seed;
        let norm = self.normalizer.as_ref();
        self.hashes.clear();
        self.hashes.par_extend((0..n).into_par_iter().map_init(
            || (norm.cloned(), Vec::new()),
            |(nm, s), i| match nm {
                Some(nm) => {
                    nm.normalize(batch.text(i), s);
                    curate_core::hash::h128(s, seed)
                }
                None => curate_core::hash::h128(batch.text(i).as_bytes(), seed),
            },
        ));
        let keys = batch.keys().values();
        for i in 0..n {
            if self.buf.len() >= self.cap {
                self.spill()?;
            }
            let hash = self.hashes[i];
            let part = self.part_of.of(hash);
            self.buf.push((
                part as u32,
                HashRec {
                    hash,
                    prio: self.prio[i],
                    key: keys[i],
                },
            ));
        }
        if let Some(w) = self.names.as_mut() {
            w.push_all(batch)?;
        }
        self.documents += n as u64;
        counters.add("exact_documents", n as f64);
        Ok(())
    }

    fn finish(mut self: Box<Self>, counters: &mut Counters) -> Result<(), StepError> {
        self.spill()?;
        if let Some(w) = self.names.take() {
            w.finish()?;
        }
        counters.add_run("exact_runs", self.runs.len() as f64);
        let m = ObserverManifest {
            runs: std::mem::take(&mut self.runs),
            documents: self.documents,
        };
        write_json(&manifest_path(&self.dir, self.task), &m)
    }
}

struct ExactFilter {
    lookup: NodeLookup,
    /// Per partition, with an id column: the survivors' ids of its duplicates.
    prov: Vec<ProvLookup>,
    names: DropNames,
    buf: Vec<u8>,
}

impl Processor for ExactFilter {
    fn process(&mut self, batch: &mut DocBatch, counters: &mut Counters) -> Result<(), StepError> {
        let mut dropped = 0u64;
        self.names.clear();
        for i in 0..batch.len() {
            let key = batch.keys().value(i);
            if let Some((part, n)) = self.lookup.get(key)?
                && n.status == REMOVED
            {
                batch.drop_row(i, 0);
                dropped += 1;
                match self.prov.get_mut(part) {
                    Some(prov) => {
                        prov.get(key, &mut self.buf)?;
                    }
                    None => render_key(n.root, &mut self.buf),
                }
                self.names.push(i, 0, Some(&self.buf));
            }
        }
        self.names.apply(batch, None);
        counters.add("exact_removed", dropped as f64);
        Ok(())
    }
}
