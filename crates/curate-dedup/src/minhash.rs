//! `minhash_dedup`: near-duplicate removal with MinHash LSH, multi-stage and bounded in memory.
//!
//! Pipeline (see `docs/DEDUP.md` for the file formats):
//!
//! 1. **observe** (pass before the barrier, one per input task): normalize → word n-gram shingles
//!    → `bands × rows` signature → one band key per band. Records `(band key, priority, doc key)`
//!    are buffered up to a share of `memory_limit`, sorted and spilled as run files partitioned by
//!    (band, hash range). With `verify`, the document's sorted shingle set is stored too.
//! 2. **buckets** (`bands × hash_ranges` tasks): k-way merge of that partition of every run (and
//!    of the `against` snapshots' indexes); documents sharing a band key become candidate edges
//!    (or hits against an earlier snapshot). With `verify`, candidate pairs are checked for true
//!    Jaccard here and only a spanning forest of each group's verified pairs is written.
//! 3. **cluster** (1 task): connected components of the documents that have an edge; the root of
//!    a component is its best document (smallest key, or highest score). In memory (union-find)
//!    when the node table fits half of `memory_limit`, else by contraction rounds over the edge
//!    files with a bounded table (`components.rs`); the same files either way. Writes the sorted
//!    node file the filter reads.
//! 4. **index** (`bands` tasks, when `write_index`): the band keys of the survivors, published in
//!    the snapshot so a later run can dedup `against` it without reading this corpus again.
//! 5. **filter** (pass after the barrier): drops the removed documents of each task's key range,
//!    naming each one's survivor in `duplicate_of` (and `duplicate_of_snapshot` for a match of an
//!    earlier snapshot): see [`crate::provenance`]. With an id column the observers also write
//!    `(key → id)`, the cluster stage writes the survivors' names for every removed document
//!    (`cluster/prov.run`, sorted by key), and the index publishes its survivors' ids.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, UInt64Array};
use curate_core::step::Published;
use curate_core::{
    Barrier, BuildEnv, Counters, DocBatch, Observer, Problems, Processor, StageContext, StageSpec,
    Step, StepError, StepSpec, TaskContext,
};
use curate_snapshot::artifact;
use rayon::prelude::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{
    Histogram, KEPT, Keep, NodeLookup, NodeRec, ObserverManifest, REMOVED, REMOVED_AGAINST,
    clear_task_files, manifest_path, priorities, read_json, read_manifests, validate_keep,
    write_json,
};
use crate::components::{
    Edge, ExternalReport, HIT, LabelRec, Node, TABLE_BYTES_PER_NODE, external_components, find,
};
use crate::provenance::{
    DUPLICATE_OF, DUPLICATE_OF_SNAPSHOT, DropNames, NULL_LEN, NamesCopier, NamesScan, NamesTable,
    NamesWriter, ProvBuilder, ProvLookup, ProvRec, RootKey, name_survivors, names_paths,
    observer_names, render_key,
};
use crate::runs::{
    ExternalSorter, KeyCursor, Merger, PartReader, Record, RunStreamWriter, Source, parse_bytes,
    read_header, spill_sorted, u32_at, u64_at,
};
use crate::signature::{Hasher, MAX_NGRAM, MinhashParams, Sketcher, jaccard_sorted};

/// Removes near-duplicate documents with MinHash LSH (datatrove's defaults: word 5-grams,
/// 14 bands × 8 rows, threshold ≈ 0.72).
///
/// Documents are normalized like datatrove's `simplify_text` (lowercase, punctuation removed,
/// digits and diacritics normalized), cut into word n-grams, and sketched with `bands × rows`
/// 2-independent hash functions. Two documents that agree on every row of at least one band are
/// candidates: the probability is `1 − (1 − J^rows)^bands` for Jaccard similarity J (0.92 at
/// J = 0.8 with the defaults). Candidates are clustered by connected components and one document
/// per cluster survives: the one with the smallest document key (input order), or with
/// `keep = "highest"` the one with the highest `score_column`. The result is the same for any
/// number of tasks or threads.
///
/// The work runs as resumable stages whose memory per task is bounded by `memory_limit`
/// (sorted runs spill to disk). With `verify`, candidate pairs must also reach that true Jaccard
/// similarity on their shingle sets before they join a cluster. The survivors' band keys are
/// published in the snapshot (`dedup/minhash/`), and `against` removes documents that duplicate
/// earlier snapshots' survivors without reading those corpora again.
///
/// Each removed document names its survivor in the exclusion output: `duplicate_of` is the
/// survivor's id (`[input] id_column`), or its document key (16 hex digits) when the input has no
/// id column; with `against`, `duplicate_of_snapshot` is the `against` entry of the earlier
/// snapshot a match came from (null for a survivor of this run) and `duplicate_of` the
/// survivor's id there.
///
/// Example:
///
/// ```toml
/// [[steps]]
/// type = "minhash_dedup"
/// verify = 0.8
/// memory_limit = "2GiB"
/// ```
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MinhashDedupConfig {
    /// Words per shingle.
    #[serde(default = "default_ngram")]
    pub ngram: usize,
    /// Number of LSH bands.
    #[serde(default = "default_bands")]
    pub bands: usize,
    /// Hashes per band.
    #[serde(default = "default_rows")]
    pub rows: usize,
    /// Seed of the shingle and MinHash functions. Snapshots deduplicated `against` each other
    /// must use the same seed (and ngram, bands, rows).
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Hash ranges per band: the buckets stage has `bands × hash_ranges` tasks.
    #[serde(default = "default_hash_ranges")]
    pub hash_ranges: usize,
    /// If set, a candidate pair joins a cluster only if the true Jaccard similarity of the two
    /// documents' shingle sets is at least this (e.g. 0.8). Costs disk space (4 bytes per
    /// distinct shingle) and a pass over the candidate pairs.
    #[serde(default)]
    pub verify: Option<f64>,
    /// Which document of a cluster survives.
    #[serde(default)]
    pub keep: Keep,
    /// Numeric column ranking documents for `keep = "highest"`.
    #[serde(default)]
    pub score_column: Option<String>,
    /// If set, adds this UInt64 column: the survivor's document key for members of a
    /// duplicate cluster, null for documents without duplicates.
    #[serde(default)]
    pub cluster_id_column: Option<String>,
    /// Earlier snapshot directories whose published MinHash index (`dedup/minhash/`) this run
    /// deduplicates against: documents matching it are removed. Relative to the config file.
    #[serde(default)]
    pub against: Vec<String>,
    /// Publish this run's index (survivors' band keys) in the snapshot for later `against` use.
    #[serde(default = "default_true")]
    pub write_index: bool,
    /// Memory budget per task (observer, merge, cluster), e.g. "512MiB"; sorted runs spill to
    /// disk beyond it.
    #[serde(default = "default_memory")]
    pub memory_limit: String,
}

fn default_ngram() -> usize {
    5
}
fn default_bands() -> usize {
    14
}
fn default_rows() -> usize {
    8
}
fn default_seed() -> u64 {
    1
}
fn default_hash_ranges() -> usize {
    4
}
fn default_true() -> bool {
    true
}
fn default_memory() -> String {
    "1GiB".to_string()
}

impl Default for MinhashDedupConfig {
    fn default() -> Self {
        Self {
            ngram: default_ngram(),
            bands: default_bands(),
            rows: default_rows(),
            seed: default_seed(),
            hash_ranges: default_hash_ranges(),
            verify: None,
            keep: Keep::Smallest,
            score_column: None,
            cluster_id_column: None,
            against: Vec::new(),
            write_index: true,
            memory_limit: default_memory(),
        }
    }
}

/// Version of the on-disk index format this curate writes (recorded in `index.json`): band
/// records `(band key, survivor key)` and, with an id column, the survivors' ids
/// (`names.keys` + `names.bin`).
pub const INDEX_FORMAT: &str = "curate-minhash-index-v2";

/// The first index format (band keys only, no survivor): still read by `against`; its matches
/// cannot name the survivor (`duplicate_of` is null, counter `minhash_against_unnamed`).
pub const INDEX_FORMAT_V1: &str = "curate-minhash-index-v1";

/// The published index's description, checked by `against`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexMeta {
    /// [`INDEX_FORMAT`] (or [`INDEX_FORMAT_V1`] for an index written before survivors were
    /// named).
    pub format: String,
    /// The MinHash scheme.
    pub params: MinhashParams,
    /// Number of survivors indexed.
    pub documents: u64,
    /// True when the index carries the survivors' ids (`names.keys` + `names.bin`); without,
    /// a survivor is named by its document key in that run.
    #[serde(default)]
    pub names: bool,
}

impl StepSpec for MinhashDedupConfig {
    const RUN_ONLY: &'static [&'static str] = &["memory_limit"];
    const TYPE: &'static str = "minhash_dedup";

    fn validate(&self, p: &mut Problems) {
        p.range("ngram", self.ngram, 1, MAX_NGRAM);
        p.range("bands", self.bands, 1, 1024);
        p.range("rows", self.rows, 1, 64);
        p.range("hash_ranges", self.hash_ranges, 1, 4096);
        if let Some(v) = self.verify {
            p.range("verify", v, 0.0, 1.0);
        }
        validate_keep(self.keep, &self.score_column, p);
        if let Some(c) = &self.cluster_id_column
            && c.is_empty()
        {
            p.push("cluster_id_column", "must not be empty");
        }
        match parse_bytes(&self.memory_limit) {
            Ok(b) if b < (4 << 20) => p.push(
                "memory_limit",
                format!("\"{}\" is too small; at least 4MiB", self.memory_limit),
            ),
            Ok(_) => {}
            Err(e) => p.push("memory_limit", e),
        }
        for (i, a) in self.against.iter().enumerate() {
            if a.trim().is_empty() {
                p.push("against", format!("entry {i} is empty"));
            }
        }
    }

    fn build(&self, env: &BuildEnv) -> Result<Box<dyn Step>, StepError> {
        let params = MinhashParams {
            ngram: self.ngram,
            bands: self.bands,
            rows: self.rows,
            seed: self.seed,
        };
        let mut against = Vec::new();
        for a in &self.against {
            let dir = env.config_dir.join(a).join(artifact::MINHASH_DIR);
            let meta_path = dir.join("index.json");
            let meta: IndexMeta = read_json(&meta_path)?;
            let v1 = meta.format == INDEX_FORMAT_V1;
            if meta.format != INDEX_FORMAT && !v1 {
                return Err(StepError::Data(format!(
                    "{}: index format {:?}, this curate reads {INDEX_FORMAT:?} and {INDEX_FORMAT_V1:?}",
                    meta_path.display(),
                    meta.format
                )));
            }
            if meta.params != params {
                return Err(StepError::Data(format!(
                    "{}: index built with {:?}, but this step uses {:?}; ngram, bands, rows and seed must match",
                    meta_path.display(),
                    meta.params,
                    params
                )));
            }
            let names = (!v1 && meta.names).then(|| index_names_paths(&dir));
            if let Some((keys, bin)) = &names {
                for p in [keys, bin] {
                    if !p.exists() {
                        return Err(StepError::Data(format!(
                            "{}: says the index carries survivor ids, but {} is missing",
                            meta_path.display(),
                            p.display()
                        )));
                    }
                }
            }
            against.push(Against {
                label: a.clone(),
                dir,
                v1,
                names,
            });
        }
        let memory = parse_bytes(&self.memory_limit).map_err(StepError::Other)? as usize;
        Ok(Box::new(MinhashDedup {
            hasher: Arc::new(Hasher::new(params)),
            cfg: self.clone(),
            memory,
            against,
            has_ids: env.id_column.is_some(),
        }))
    }
}

/// The runtime `minhash_dedup` step.
pub struct MinhashDedup {
    hasher: Arc<Hasher>,
    cfg: MinhashDedupConfig,
    memory: usize,
    against: Vec<Against>,
    /// The input has an id column: observers record ids, survivors are named by them.
    has_ids: bool,
}

/// An earlier snapshot's published index (`against`).
struct Against {
    /// The `against` entry as written (the `duplicate_of_snapshot` of its matches).
    label: String,
    /// Its `dedup/minhash/` directory.
    dir: PathBuf,
    /// A [`INDEX_FORMAT_V1`] index: band keys only (8-byte records), no survivor.
    v1: bool,
    /// Its survivors' ids, when it carries them.
    names: Option<(PathBuf, PathBuf)>,
}

/// The published survivors' ids of an index directory.
fn index_names_paths(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("names.keys"), dir.join("names.bin"))
}

const STAGE_BUCKETS: usize = 0;
const STAGE_CLUSTER: usize = 1;
const STAGE_INDEX: usize = 2;

/// A band record: sorted by band key, then priority, then document key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct BandRec {
    hash: u64,
    prio: u32,
    key: u64,
}

impl Record for BandRec {
    const SIZE: usize = 20;
    fn encode(&self, out: &mut [u8]) {
        out[..8].copy_from_slice(&self.hash.to_le_bytes());
        out[8..12].copy_from_slice(&self.prio.to_le_bytes());
        out[12..20].copy_from_slice(&self.key.to_le_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        BandRec {
            hash: u64_at(b, 0),
            prio: u32_at(b, 8),
            key: u64_at(b, 12),
        }
    }
}

/// A node sorted by key (for building the node table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct KeyNode {
    key: u64,
    prio: u32,
    hit: bool,
}

impl Record for KeyNode {
    const SIZE: usize = 13;
    fn encode(&self, out: &mut [u8]) {
        out[..8].copy_from_slice(&self.key.to_le_bytes());
        out[8..12].copy_from_slice(&self.prio.to_le_bytes());
        out[12] = self.hit as u8;
    }
    fn decode(b: &[u8]) -> Self {
        KeyNode {
            key: u64_at(b, 0),
            prio: u32_at(b, 8),
            hit: b[12] != 0,
        }
    }
}

/// A band key of a published index and the smallest key of a survivor that has it (v2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct IdxRec {
    hash: u64,
    key: u64,
}

impl Record for IdxRec {
    const SIZE: usize = 16;
    fn encode(&self, out: &mut [u8]) {
        out[..8].copy_from_slice(&self.hash.to_le_bytes());
        out[8..16].copy_from_slice(&self.key.to_le_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        IdxRec {
            hash: u64_at(b, 0),
            key: u64_at(b, 8),
        }
    }
}

/// Record size of a [`INDEX_FORMAT_V1`] band file (the band key alone).
const IDX_V1_SIZE: usize = 8;

/// The survivor key of a match against a v1 index (which does not say).
const UNKNOWN_KEY: u64 = u64::MAX;

/// A document of this run sharing a band key with a survivor of an earlier snapshot: the
/// snapshot (`against` position) and that survivor's key there. Sorted by key, so a document's
/// first hit is its smallest (snapshot, survivor key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct HitRec {
    key: u64,
    snap: u32,
    skey: u64,
}

impl Record for HitRec {
    const SIZE: usize = 20;
    fn encode(&self, out: &mut [u8]) {
        out[..8].copy_from_slice(&self.key.to_le_bytes());
        out[8..12].copy_from_slice(&self.snap.to_le_bytes());
        out[12..20].copy_from_slice(&self.skey.to_le_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        HitRec {
            key: u64_at(b, 0),
            snap: u32_at(b, 8),
            skey: u64_at(b, 12),
        }
    }
}

/// A match of a cluster with an earlier snapshot, sorted by the cluster's root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct RootHit {
    root: u64,
    snap: u32,
    skey: u64,
}

impl Record for RootHit {
    const SIZE: usize = 20;
    fn encode(&self, out: &mut [u8]) {
        out[..8].copy_from_slice(&self.root.to_le_bytes());
        out[8..12].copy_from_slice(&self.snap.to_le_bytes());
        out[12..20].copy_from_slice(&self.skey.to_le_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        RootHit {
            root: u64_at(b, 0),
            snap: u32_at(b, 8),
            skey: u64_at(b, 12),
        }
    }
}

/// A removed document and the earlier snapshot's survivor it names, sorted by (snapshot,
/// survivor key) for the lookups of the survivors' ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct SnapMatch {
    snap: u32,
    skey: u64,
    key: u64,
}

impl Record for SnapMatch {
    const SIZE: usize = 20;
    fn encode(&self, out: &mut [u8]) {
        out[..4].copy_from_slice(&self.snap.to_le_bytes());
        out[4..12].copy_from_slice(&self.skey.to_le_bytes());
        out[12..20].copy_from_slice(&self.key.to_le_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        SnapMatch {
            snap: u32_at(b, 0),
            skey: u64_at(b, 4),
            key: u64_at(b, 12),
        }
    }
}

/// Where a document's shingle set lives in its observer's verify file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct ShingleLoc {
    key: u64,
    offset: u64,
    len: u32,
}

impl Record for ShingleLoc {
    const SIZE: usize = 20;
    fn encode(&self, out: &mut [u8]) {
        out[..8].copy_from_slice(&self.key.to_le_bytes());
        out[8..16].copy_from_slice(&self.offset.to_le_bytes());
        out[16..20].copy_from_slice(&self.len.to_le_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        ShingleLoc {
            key: u64_at(b, 0),
            offset: u64_at(b, 8),
            len: u32_at(b, 16),
        }
    }
}

/// Summary written by the cluster stage and published as the step's stats.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MinhashStats {
    /// Distinct candidate edges read.
    pub candidate_edges: u64,
    /// Candidate pairs rejected by `verify`.
    pub verify_rejected: u64,
    /// Candidate pairs checked by `verify`.
    pub verify_checked: u64,
    /// Documents in a cluster of two or more (or matching an earlier snapshot).
    pub documents_in_clusters: u64,
    /// Clusters of two or more documents.
    pub clusters: u64,
    /// Documents removed as duplicates of another document of this run.
    pub duplicates_removed: u64,
    /// Documents removed as duplicates of an earlier snapshot.
    pub removed_against: u64,
    /// Number of clusters by size (documents of this run).
    pub cluster_sizes: Histogram,
    /// Size of the node list, 17 bytes per document with an edge or hit (the same whichever way
    /// the cluster stage ran; how it ran is in `cluster/run.json`).
    pub cluster_table_bytes: u64,
}

impl MinhashDedup {
    fn parts(&self) -> usize {
        self.cfg.bands * self.cfg.hash_ranges
    }

    fn edges_path(dir: &Path, p: usize) -> PathBuf {
        dir.join("buckets").join(format!("p{p:05}.edges"))
    }

    fn summary_path(dir: &Path, p: usize) -> PathBuf {
        dir.join("buckets").join(format!("p{p:05}.json"))
    }

    /// The partition's matches against earlier snapshots (with `against`).
    fn hits_path(dir: &Path, p: usize) -> PathBuf {
        dir.join("buckets").join(format!("p{p:05}.hits"))
    }

    /// The survivors' names of every removed document (sorted by key) and the names' bytes.
    fn prov_paths(dir: &Path) -> (PathBuf, PathBuf) {
        (
            dir.join("cluster").join("prov.run"),
            dir.join("cluster").join("prov.names"),
        )
    }

    /// Whether the cluster stage writes provenance files: ids to name survivors with, or
    /// earlier snapshots to name.
    fn writes_provenance(&self) -> bool {
        self.has_ids || !self.against.is_empty()
    }

    fn cluster_run_path(dir: &Path) -> PathBuf {
        dir.join("cluster").join("run.json")
    }

    fn nodes_path(dir: &Path) -> PathBuf {
        dir.join("cluster").join("nodes.run")
    }

    fn stats_path(dir: &Path) -> PathBuf {
        dir.join("cluster").join("stats.json")
    }

    fn index_dir(dir: &Path) -> PathBuf {
        dir.join("index")
    }

    fn run_buckets(&self, cx: &StageContext<'_>) -> Result<(), StepError> {
        let p = cx.task;
        let band = p / self.cfg.hash_ranges;
        let range = p % self.cfg.hash_ranges;
        let manifests = read_manifests(cx.dir, cx.observed_tasks)?;
        let runs: Vec<PathBuf> = manifests
            .iter()
            .flat_map(|m| m.runs.iter().map(|r| cx.dir.join(r)))
            .collect();
        let n_sources = runs.len() + self.against.len();
        let buf = (self.memory / 2 / n_sources.max(1)).clamp(4096, 1 << 20);
        let mut sources: Vec<Box<dyn Source<BandRec> + Send>> = Vec::with_capacity(n_sources);
        for r in &runs {
            sources.push(Box::new(PartReader::<BandRec>::open(r, p, buf)?));
        }
        let first_index = sources.len();
        for a in &self.against {
            let path = a.dir.join(format!("band-{band:04}.bin"));
            let (lo, hi) = range_bounds(range, self.cfg.hash_ranges);
            sources.push(Box::new(IndexSource::open(&path, a.v1, lo, hi)?));
        }
        let mut merger = Merger::new(sources)?;
        let verifier = match self.cfg.verify {
            Some(t) => Some(Verifier::open(cx.dir, cx.observed_tasks, t)?),
            None => None,
        };
        let hits = if self.against.is_empty() {
            None
        } else {
            Some(RunStreamWriter::<HitRec>::create(&Self::hits_path(
                cx.dir, p,
            ))?)
        };
        let mut groups = GroupWriter {
            out: RunStreamWriter::<Edge>::create(&Self::edges_path(cx.dir, p))?,
            hits,
            verifier,
            summary: BucketSummary::default(),
            locs: Vec::new(),
            parent: Vec::new(),
            pairs: Vec::new(),
        };
        let mut group: Vec<Node> = Vec::new();
        let mut group_hash = 0u64;
        // The group's match with an earlier snapshot: the smallest (snapshot, survivor key).
        let mut group_hit: Option<(u32, u64)> = None;
        while let Some((r, src)) = merger.next_record()? {
            if r.hash != group_hash || (group.is_empty() && group_hit.is_none()) {
                groups.flush(&mut group, group_hit)?;
                group_hit = None;
                group_hash = r.hash;
            }
            if src >= first_index {
                let hit = ((src - first_index) as u32, r.key);
                group_hit = Some(group_hit.map_or(hit, |h| h.min(hit)));
            } else if group.last().is_none_or(|l| l.key != r.key) {
                group.push(Node {
                    prio: r.prio,
                    key: r.key,
                });
            }
        }
        groups.flush(&mut group, group_hit)?;
        let GroupWriter {
            out, hits, summary, ..
        } = groups;
        out.finish()?;
        if let Some(h) = hits {
            h.finish()?;
        }
        write_json(&Self::summary_path(cx.dir, p), &summary)?;
        let mut c = cx.counters.lock().expect("counters");
        c.add("minhash_candidate_edges", summary.candidate_edges as f64);
        c.add("minhash_bucket_groups", summary.groups as f64);
        Ok(())
    }

    fn run_cluster(&self, cx: &StageContext<'_>) -> Result<(), StepError> {
        let tmp = cx.dir.join("cluster").join("tmp");
        // Leftovers of an interrupted attempt are scratch: start clean.
        match std::fs::remove_dir_all(&tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(StepError::io(&tmp, e));
            }
            _ => {}
        }
        std::fs::create_dir_all(&tmp).map_err(|e| StepError::io(&tmp, e))?;
        let parts = self.parts();
        let mut stats = MinhashStats::default();
        for p in 0..parts {
            let s: BucketSummary = read_json(&Self::summary_path(cx.dir, p))?;
            stats.candidate_edges += s.candidate_edges;
            stats.verify_checked += s.verify_checked;
            stats.verify_rejected += s.verify_rejected;
        }
        let edge_files: Vec<PathBuf> = (0..parts).map(|p| Self::edges_path(cx.dir, p)).collect();
        // Pass 1: every document with an edge or a hit, once, sorted by key (external sort).
        let mut sorter = ExternalSorter::<KeyNode>::new(&tmp, "nodes", self.memory / 4);
        for path in &edge_files {
            let mut r = PartReader::<Edge>::open(path, 0, 1 << 16)?;
            while let Some(e) = r.next_record()? {
                let hit = e.b.key == HIT;
                sorter.push(KeyNode {
                    key: e.a.key,
                    prio: e.a.prio,
                    hit,
                })?;
                if !hit {
                    sorter.push(KeyNode {
                        key: e.b.key,
                        prio: e.b.prio,
                        hit: false,
                    })?;
                }
            }
        }
        let node_spills = sorter.spills() as u64;
        let nodes_path = tmp.join("nodes.keys");
        let mut w = RunStreamWriter::<KeyNode>::create_scratch(&nodes_path)?;
        let mut sorted = sorter.finish()?;
        let mut cur: Option<KeyNode> = None;
        while let Some(k) = sorted.next_record()? {
            match cur.as_mut() {
                Some(c) if c.key == k.key => c.hit |= k.hit,
                _ => {
                    if let Some(c) = cur.replace(k) {
                        w.push(c)?;
                    }
                }
            }
        }
        if let Some(c) = cur {
            w.push(c)?;
        }
        sorted.cleanup();
        let n = w.len();
        w.finish()?;
        stats.cluster_table_bytes = n * NodeRec::SIZE as u64;
        // The in-memory table when it fits half the budget, else external rounds: the same
        // components, the same files.
        let external = n as usize * IN_MEMORY_BYTES_PER_NODE > self.memory / 2;
        let out = Self::nodes_path(cx.dir);
        let report = if external {
            self.cluster_external(&tmp, &nodes_path, &edge_files, &out, &mut stats)?
        } else {
            cluster_in_memory(&nodes_path, &edge_files, &out, &mut stats)?;
            ExternalReport::default()
        };
        let (unnamed, prov_spills) = self.write_provenance(cx, &tmp, &out)?;
        write_json(&Self::stats_path(cx.dir), &stats)?;
        let run = ClusterRun {
            nodes: n,
            external,
            table_capacity: if external {
                (self.memory / 2 / TABLE_BYTES_PER_NODE).max(4) as u64
            } else {
                n
            },
            rounds: report.rounds,
            deferred_edges: report.deferred_edges,
            spill_files: report.spill_files + node_spills,
            peak_table_nodes: if external { report.peak_table_nodes } else { n },
        };
        write_json(&Self::cluster_run_path(cx.dir), &run)?;
        let _ = std::fs::remove_dir_all(&tmp);
        let mut c = cx.counters.lock().expect("counters");
        c.add("minhash_clusters", stats.clusters as f64);
        c.add("minhash_duplicates", stats.duplicates_removed as f64);
        c.add("minhash_removed_against", stats.removed_against as f64);
        c.add("minhash_verify_rejected", stats.verify_rejected as f64);
        c.add("minhash_cluster_external", external as u8 as f64);
        c.add("minhash_cluster_rounds", run.rounds as f64);
        c.add("minhash_cluster_spill_files", run.spill_files as f64);
        c.add("minhash_against_unnamed", unnamed as f64);
        c.add("minhash_provenance_spills", prov_spills as f64);
        Ok(())
    }

    /// Names the survivor of every removed document in `cluster/prov.run` (sorted by key) and
    /// `cluster/prov.names`, from the node file `nodes`, with bounded memory (external sorts of
    /// `memory_limit / 8`, at most four alive at once):
    ///
    /// - a duplicate of this run (with an id column): its cluster root's id, looked up in the
    ///   observers' names in ascending root order;
    /// - a match of an earlier snapshot: the survivor there that the document itself shares a
    ///   band key with (its smallest (snapshot, key) over all bands), or, for a document removed
    ///   only because its cluster matched, the smallest match of any member of its cluster; named
    ///   by its id in that snapshot's index (its key there when the index has no ids, unknown for
    ///   a v1 index).
    ///
    /// Returns the number of matches an old index could not name and the number of sorted
    /// runs its sorts spilled.
    fn write_provenance(
        &self,
        cx: &StageContext<'_>,
        tmp: &Path,
        nodes: &Path,
    ) -> Result<(u64, usize), StepError> {
        if !self.writes_provenance() {
            return Ok((0, 0));
        }
        let mut spills = 0;
        let budget = (self.memory / 8).max(1);
        let (run_path, blob_path) = Self::prov_paths(cx.dir);
        let mut prov = ProvBuilder::create(tmp, &blob_path, budget)?;
        if self.has_ids {
            let mut pairs = ExternalSorter::<RootKey>::new(tmp, "pairs", budget);
            let mut nr = PartReader::<NodeRec>::open(nodes, 0, 1 << 16)?;
            while let Some(n) = nr.next_record()? {
                if n.status == REMOVED {
                    pairs.push(RootKey {
                        root: n.root,
                        key: n.key,
                    })?;
                }
            }
            let mut names = NamesTable::open(observer_names(cx.dir, cx.observed_tasks))?;
            spills += pairs.spills();
            let mut sorted = pairs.finish()?;
            name_survivors(&mut sorted, &mut names, &mut prov)?;
            sorted.cleanup();
        }
        let mut unnamed = 0u64;
        if !self.against.is_empty() {
            // Every document's own matches, smallest first.
            let mut hits = ExternalSorter::<HitRec>::new(tmp, "hits", budget);
            for p in 0..self.parts() {
                let mut r = PartReader::<HitRec>::open(&Self::hits_path(cx.dir, p), 0, 1 << 16)?;
                while let Some(h) = r.next_record()? {
                    hits.push(h)?;
                }
            }
            spills += hits.spills();
            let mut hits = hits.finish()?;
            let mut matches = ExternalSorter::<SnapMatch>::new(tmp, "matches", budget);
            let mut root_hits = ExternalSorter::<RootHit>::new(tmp, "roothits", budget);
            let mut unmatched = ExternalSorter::<RootKey>::new(tmp, "unmatched", budget);
            let mut nr = PartReader::<NodeRec>::open(nodes, 0, 1 << 16)?;
            let mut h = hits.next_record()?;
            while let Some(n) = nr.next_record()? {
                if n.status != REMOVED_AGAINST {
                    continue;
                }
                while h.is_some_and(|h| h.key < n.key) {
                    h = hits.next_record()?;
                }
                match h {
                    Some(h) if h.key == n.key => {
                        matches.push(SnapMatch {
                            snap: h.snap,
                            skey: h.skey,
                            key: n.key,
                        })?;
                        root_hits.push(RootHit {
                            root: n.root,
                            snap: h.snap,
                            skey: h.skey,
                        })?;
                    }
                    _ => unmatched.push(RootKey {
                        root: n.root,
                        key: n.key,
                    })?,
                }
            }
            hits.cleanup();
            // Members without a match of their own take their cluster's smallest.
            spills += root_hits.spills() + unmatched.spills();
            let mut root_hits = root_hits.finish()?;
            let mut unmatched = unmatched.finish()?;
            let mut rh = root_hits.next_record()?;
            while let Some(u) = unmatched.next_record()? {
                while rh.is_some_and(|r| r.root < u.root) {
                    rh = root_hits.next_record()?;
                }
                let r = rh.filter(|r| r.root == u.root).ok_or_else(|| {
                    StepError::Other(format!(
                        "{}: cluster {:016x} is marked as matching an earlier snapshot, but none of its members has a match in buckets/*.hits",
                        nodes.display(),
                        u.root
                    ))
                })?;
                matches.push(SnapMatch {
                    snap: r.snap,
                    skey: r.skey,
                    key: u.key,
                })?;
            }
            root_hits.cleanup();
            unmatched.cleanup();
            // The earlier survivors' names, each looked up once, in (snapshot, key) order.
            let mut tables: Vec<Option<NamesTable>> = Vec::with_capacity(self.against.len());
            for a in &self.against {
                tables.push(match &a.names {
                    Some(files) => Some(NamesTable::open(vec![files.clone()])?),
                    None => None,
                });
            }
            let mut buf = Vec::new();
            let mut cur: Option<((u32, u64), (u64, u32))> = None;
            spills += matches.spills();
            let mut sorted = matches.finish()?;
            while let Some(m) = sorted.next_record()? {
                let at = match cur {
                    Some((k, at)) if k == (m.snap, m.skey) => at,
                    _ => {
                        let a = &self.against[m.snap as usize];
                        let name = if a.v1 {
                            None
                        } else {
                            match tables[m.snap as usize].as_mut() {
                                Some(t) => match t.get(m.skey, &mut buf)? {
                                    Some(true) => {}
                                    Some(false) => render_key(m.skey, &mut buf),
                                    None => {
                                        return Err(StepError::Data(format!(
                                            "{}: survivor {:016x} of the index has no entry in its names",
                                            a.dir.display(),
                                            m.skey
                                        )));
                                    }
                                },
                                None => render_key(m.skey, &mut buf),
                            }
                            Some(buf.as_slice())
                        };
                        let at = prov.name(name)?;
                        cur = Some(((m.snap, m.skey), at));
                        at
                    }
                };
                if at.1 == NULL_LEN {
                    unnamed += 1;
                }
                prov.push(ProvRec {
                    key: m.key,
                    snap: m.snap + 1,
                    off: at.0,
                    len: at.1,
                })?;
            }
            sorted.cleanup();
        }
        spills += prov.spills();
        prov.finish(&run_path)?;
        Ok((unnamed, spills))
    }

    /// The cluster stage past memory: components by contraction rounds
    /// ([`external_components`]), then members grouped by component with external sorts.
    fn cluster_external(
        &self,
        tmp: &Path,
        nodes_path: &Path,
        edge_files: &[PathBuf],
        out: &Path,
        stats: &mut MinhashStats,
    ) -> Result<ExternalReport, StepError> {
        let cap = (self.memory / 2 / TABLE_BYTES_PER_NODE).max(4);
        let budget = self.memory / 4;
        let report = external_components(edge_files, tmp, cap, budget)?;
        // Every node with its component's best key.
        let mut members = ExternalSorter::<MemberRec>::new(tmp, "members", budget);
        let mut nr = PartReader::<KeyNode>::open(nodes_path, 0, 1 << 16)?;
        let mut lr = match &report.labels {
            Some(p) => Some(PartReader::<LabelRec>::open(p, 0, 1 << 16)?),
            None => None,
        };
        let next_label = |lr: &mut Option<PartReader<LabelRec>>| match lr {
            Some(r) => r.next_record(),
            None => Ok(None),
        };
        let mut label = next_label(&mut lr)?;
        while let Some(k) = nr.next_record()? {
            while label.is_some_and(|l| l.key < k.key) {
                label = next_label(&mut lr)?;
            }
            let root = match label {
                Some(l) if l.key == k.key => l.root,
                _ => k.key,
            };
            members.push(MemberRec {
                root,
                key: k.key,
                hit: k.hit,
            })?;
        }
        // Members by component: their file, and one (root, size, hit) record per component.
        let members_path = tmp.join("members.run");
        let comps_path = tmp.join("components.run");
        let mut mw = RunStreamWriter::<MemberRec>::create_scratch(&members_path)?;
        let mut cw = RunStreamWriter::<CompRec>::create_scratch(&comps_path)?;
        let mut sorted = members.finish()?;
        let mut comp: Option<CompRec> = None;
        let mut close = |c: CompRec, cw: &mut RunStreamWriter<CompRec>| {
            if c.size >= 2 {
                stats.clusters += 1;
                *stats.cluster_sizes.entry(c.size).or_default() += 1;
            }
            cw.push(c)
        };
        while let Some(m) = sorted.next_record()? {
            mw.push(m)?;
            match comp.as_mut() {
                Some(c) if c.root == m.root => {
                    c.size += 1;
                    c.hit |= m.hit;
                }
                _ => {
                    let next = CompRec {
                        root: m.root,
                        size: 1,
                        hit: m.hit,
                    };
                    if let Some(c) = comp.replace(next) {
                        close(c, &mut cw)?;
                    }
                }
            }
        }
        if let Some(c) = comp {
            close(c, &mut cw)?;
        }
        sorted.cleanup();
        mw.finish()?;
        cw.finish()?;
        // Node records of the members of clusters (and of snapshot matches), sorted by key.
        let mut recs = ExternalSorter::<NodeRec>::new(tmp, "out", budget);
        let mut mr = PartReader::<MemberRec>::open(&members_path, 0, 1 << 16)?;
        let mut cr = PartReader::<CompRec>::open(&comps_path, 0, 1 << 16)?;
        let mut comp = cr.next_record()?;
        while let Some(m) = mr.next_record()? {
            while comp.is_some_and(|c| c.root < m.root) {
                comp = cr.next_record()?;
            }
            let c = comp.filter(|c| c.root == m.root).ok_or_else(|| {
                StepError::Other(format!(
                    "{}: no component record for root {}",
                    comps_path.display(),
                    m.root
                ))
            })?;
            if c.size < 2 && !c.hit {
                continue;
            }
            stats.documents_in_clusters += 1;
            let status = if c.hit {
                stats.removed_against += 1;
                REMOVED_AGAINST
            } else if m.root == m.key {
                KEPT
            } else {
                stats.duplicates_removed += 1;
                REMOVED
            };
            recs.push(NodeRec {
                key: m.key,
                root: m.root,
                status,
            })?;
        }
        let mut w = RunStreamWriter::<NodeRec>::create(out)?;
        let mut sorted = recs.finish()?;
        while let Some(r) = sorted.next_record()? {
            w.push(r)?;
        }
        sorted.cleanup();
        w.finish()?;
        Ok(report)
    }

    fn run_index(&self, cx: &StageContext<'_>) -> Result<(), StepError> {
        if cx.task == self.cfg.bands {
            return self.run_index_names(cx);
        }
        let band = cx.task;
        let manifests = read_manifests(cx.dir, cx.observed_tasks)?;
        let runs: Vec<PathBuf> = manifests
            .iter()
            .flat_map(|m| m.runs.iter().map(|r| cx.dir.join(r)))
            .collect();
        let dir = Self::index_dir(cx.dir);
        let tmp = dir.join(format!("tmp-{band:04}"));
        let _ = std::fs::remove_dir_all(&tmp);
        let buf = (self.memory / 2 / runs.len().max(1)).clamp(4096, 1 << 20);
        // The removed set, sorted by key, in chunks of at most `chunk` keys (8 bytes each). One
        // chunk: one pass over the band's records. More: one pass per chunk over the records
        // whose keys fall in the chunk's key range, (band key, survivor key) pairs through an
        // external sort. Each band key is written once, with the smallest key of a survivor
        // that has it: the same file either way.
        let chunk = (self.memory / 4 / 8).max(16);
        let mut nodes = PartReader::<NodeRec>::open(&Self::nodes_path(cx.dir), 0, 1 << 16)?;
        let mut carry: Option<u64> = None;
        let mut lo = 0u64;
        let mut removed_total = 0u64;
        let mut sorter: Option<ExternalSorter<IdxRec>> = None;
        let mut w = RunStreamWriter::<IdxRec>::create(&dir.join(format!("band-{band:04}.bin")))?;
        let mut passes = 0u64;
        loop {
            passes += 1;
            let mut removed: Vec<u64> = carry.take().into_iter().collect();
            while let Some(n) = nodes.next_record()? {
                if n.status == KEPT {
                    continue;
                }
                if removed.len() >= chunk {
                    carry = Some(n.key);
                    break;
                }
                removed.push(n.key);
            }
            removed_total += removed.len() as u64;
            // This pass covers keys lo..hi; all removed keys of that range are in `removed`.
            let hi = carry;
            if hi.is_some() && sorter.is_none() {
                std::fs::create_dir_all(&tmp).map_err(|e| StepError::io(&tmp, e))?;
                sorter = Some(ExternalSorter::new(&tmp, "survivors", self.memory / 4));
            }
            // The current band key and the smallest survivor key seen with it.
            let mut cur: Option<IdxRec> = None;
            let mut emit = |r: IdxRec| -> Result<(), StepError> {
                match sorter.as_mut() {
                    Some(s) => s.push(r),
                    None => w.push(r),
                }
            };
            for range in 0..self.cfg.hash_ranges {
                let p = band * self.cfg.hash_ranges + range;
                let mut sources: Vec<Box<dyn Source<BandRec> + Send>> =
                    Vec::with_capacity(runs.len());
                for r in &runs {
                    sources.push(Box::new(PartReader::<BandRec>::open(r, p, buf)?));
                }
                let mut m = Merger::new(sources)?;
                while let Some((rec, _)) = m.next_record()? {
                    if rec.key < lo
                        || hi.is_some_and(|h| rec.key >= h)
                        || removed.binary_search(&rec.key).is_ok()
                    {
                        continue;
                    }
                    match cur.as_mut() {
                        Some(c) if c.hash == rec.hash => c.key = c.key.min(rec.key),
                        _ => {
                            if let Some(c) = cur.replace(IdxRec {
                                hash: rec.hash,
                                key: rec.key,
                            }) {
                                emit(c)?;
                            }
                        }
                    }
                }
            }
            if let Some(c) = cur {
                emit(c)?;
            }
            match hi {
                Some(h) => lo = h,
                None => break,
            }
        }
        if let Some(s) = sorter {
            let mut sorted = s.finish()?;
            let mut last: Option<u64> = None;
            while let Some(r) = sorted.next_record()? {
                if last != Some(r.hash) {
                    w.push(r)?;
                    last = Some(r.hash);
                }
            }
            sorted.cleanup();
            let _ = std::fs::remove_dir_all(&tmp);
        }
        w.finish()?;
        if band == 0 {
            let documents: u64 = manifests.iter().map(|m| m.documents).sum::<u64>() - removed_total;
            let meta = IndexMeta {
                format: INDEX_FORMAT.to_string(),
                params: self.hasher.params().clone(),
                documents,
                names: self.has_ids,
            };
            write_json(&dir.join("index.json"), &meta)?;
        }
        let mut c = cx.counters.lock().expect("counters");
        c.add("minhash_index_passes", passes as f64);
        Ok(())
    }

    /// The index's last task (with an id column): the ids of this run's survivors (every
    /// observed document with a signature that was not removed), in key order, copied from the
    /// observers' names while walking the node file.
    fn run_index_names(&self, cx: &StageContext<'_>) -> Result<(), StepError> {
        let out = index_names_paths(&Self::index_dir(cx.dir));
        let mut copier = NamesCopier::create(&out)?;
        let mut scan = NamesScan::new(observer_names(cx.dir, cx.observed_tasks));
        let mut nodes = PartReader::<NodeRec>::open(&Self::nodes_path(cx.dir), 0, 1 << 16)?;
        let mut node = nodes.next_record()?;
        let mut buf = Vec::new();
        while let Some((key, named)) = scan.next_entry(&mut buf)? {
            while node.is_some_and(|n| n.key < key) {
                node = nodes.next_record()?;
            }
            if node.is_some_and(|n| n.key == key && n.status != KEPT) {
                continue;
            }
            copier.push(key, named.then_some(buf.as_slice()))?;
        }
        copier.finish()
    }
}

/// The hash range (0..ranges) of a band key: monotone in the key.
fn range_of(hash: u64, ranges: usize) -> usize {
    ((hash as u128 * ranges as u128) >> 64) as usize
}

/// Inclusive-exclusive key bounds of hash range `r` (the upper bound is `None` for the last).
fn range_bounds(r: usize, ranges: usize) -> (u64, Option<u64>) {
    let bound = |i: usize| -> u64 {
        // Smallest hash h with range_of(h) >= i: ceil(i * 2^64 / ranges).
        let num = (i as u128) << 64;
        num.div_ceil(ranges as u128) as u64
    };
    let lo = if r == 0 { 0 } else { bound(r) };
    let hi = if r + 1 >= ranges {
        None
    } else {
        Some(bound(r + 1))
    };
    (lo, hi)
}

/// Band keys of an earlier snapshot's index within one hash range, as merge input: a record
/// whose `key` is the survivor's key in that snapshot ([`UNKNOWN_KEY`] for a v1 index).
struct IndexSource {
    cursor: KeyCursor,
    v1: bool,
    hi: Option<u64>,
}

impl IndexSource {
    fn open(path: &Path, v1: bool, lo: u64, hi: Option<u64>) -> Result<Self, StepError> {
        let size = if v1 { IDX_V1_SIZE } else { IdxRec::SIZE };
        let mut cursor = KeyCursor::open(path, size)?;
        cursor.seek(lo)?;
        Ok(Self { cursor, v1, hi })
    }
}

impl Source<BandRec> for IndexSource {
    fn next_record(&mut self) -> Result<Option<BandRec>, StepError> {
        let Some(b) = self.cursor.peek()? else {
            return Ok(None);
        };
        let h = u64_at(b, 0);
        if self.hi.is_some_and(|hi| h >= hi) {
            return Ok(None);
        }
        let key = if self.v1 { UNKNOWN_KEY } else { u64_at(b, 8) };
        self.cursor.advance();
        Ok(Some(BandRec {
            hash: h,
            prio: 0,
            key,
        }))
    }
}

/// Bytes per node of the in-memory cluster table: key, priority, hit flag, parent, component
/// size and component hit flag.
const IN_MEMORY_BYTES_PER_NODE: usize = 8 + 4 + 1 + 4 + 4 + 1;

/// The cluster stage when its node table fits: union-find over the sorted node list.
fn cluster_in_memory(
    nodes_path: &Path,
    edge_files: &[PathBuf],
    out: &Path,
    stats: &mut MinhashStats,
) -> Result<(), StepError> {
    let mut keys: Vec<u64> = Vec::new();
    let mut prio: Vec<u32> = Vec::new();
    let mut hit: Vec<bool> = Vec::new();
    let mut r = PartReader::<KeyNode>::open(nodes_path, 0, 1 << 16)?;
    while let Some(k) = r.next_record()? {
        keys.push(k.key);
        prio.push(k.prio);
        hit.push(k.hit);
    }
    let n = keys.len();
    let mut parent: Vec<u32> = (0..n as u32).collect();
    let idx = |k: u64| keys.binary_search(&k).expect("node in table") as u32;
    let better = |x: u32, y: u32| {
        (prio[x as usize], keys[x as usize]) < (prio[y as usize], keys[y as usize])
    };
    for path in edge_files {
        let mut r = PartReader::<Edge>::open(path, 0, 1 << 16)?;
        while let Some(e) = r.next_record()? {
            if e.b.key == HIT {
                continue;
            }
            let (ra, rb) = (
                find(&mut parent, idx(e.a.key)),
                find(&mut parent, idx(e.b.key)),
            );
            if ra == rb {
                continue;
            }
            if better(ra, rb) {
                parent[rb as usize] = ra;
            } else {
                parent[ra as usize] = rb;
            }
        }
    }
    // Components: size and whether any member matched an earlier snapshot.
    let mut size = vec![0u32; n];
    let mut comp_hit = vec![false; n];
    for i in 0..n as u32 {
        let r = find(&mut parent, i) as usize;
        size[r] += 1;
        comp_hit[r] |= hit[i as usize];
    }
    for i in 0..n {
        if parent[i] as usize == i && size[i] >= 2 {
            stats.clusters += 1;
            *stats.cluster_sizes.entry(size[i] as u64).or_default() += 1;
        }
    }
    let mut w = RunStreamWriter::<NodeRec>::create(out)?;
    for i in 0..n {
        let r = find(&mut parent, i as u32) as usize;
        if size[r] < 2 && !comp_hit[r] {
            continue;
        }
        stats.documents_in_clusters += 1;
        let status = if comp_hit[r] {
            stats.removed_against += 1;
            REMOVED_AGAINST
        } else if r == i {
            KEPT
        } else {
            stats.duplicates_removed += 1;
            REMOVED
        };
        w.push(NodeRec {
            key: keys[i],
            root: keys[r],
            status,
        })?;
    }
    w.finish()
}

/// What one buckets task found (`buckets/pPPPPP.json`); the cluster stage sums them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct BucketSummary {
    /// Candidate pairs generated from the groups (before `verify`).
    candidate_edges: u64,
    /// Pairs whose Jaccard similarity was computed.
    verify_checked: u64,
    /// Checked pairs below the threshold.
    verify_rejected: u64,
    /// Groups of two or more documents sharing a band key.
    groups: u64,
}

/// How the cluster stage ran (`cluster/run.json`; not part of the published stats, which are the
/// same whichever way it ran).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct ClusterRun {
    /// Documents with an edge or an index hit.
    nodes: u64,
    /// True when the node table did not fit `memory_limit / 2` and contraction rounds ran.
    external: bool,
    /// Nodes a table could hold.
    table_capacity: u64,
    /// Contraction rounds (0 in memory).
    rounds: u64,
    /// Edges deferred to a later round, summed.
    deferred_edges: u64,
    /// Scratch files written (sorted spills, round graphs, label files).
    spill_files: u64,
    /// Most nodes in memory at once.
    peak_table_nodes: u64,
}

/// A node with its component's best key, sorted by (root, key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct MemberRec {
    root: u64,
    key: u64,
    hit: bool,
}

impl Record for MemberRec {
    const SIZE: usize = 17;
    fn encode(&self, out: &mut [u8]) {
        out[..8].copy_from_slice(&self.root.to_le_bytes());
        out[8..16].copy_from_slice(&self.key.to_le_bytes());
        out[16] = self.hit as u8;
    }
    fn decode(b: &[u8]) -> Self {
        MemberRec {
            root: u64_at(b, 0),
            key: u64_at(b, 8),
            hit: b[16] != 0,
        }
    }
}

/// A component: its best key, size, and whether a member matched an earlier snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct CompRec {
    root: u64,
    size: u64,
    hit: bool,
}

impl Record for CompRec {
    const SIZE: usize = 17;
    fn encode(&self, out: &mut [u8]) {
        out[..8].copy_from_slice(&self.root.to_le_bytes());
        out[8..16].copy_from_slice(&self.size.to_le_bytes());
        out[16] = self.hit as u8;
    }
    fn decode(b: &[u8]) -> Self {
        CompRec {
            root: u64_at(b, 0),
            size: u64_at(b, 8),
            hit: b[16] != 0,
        }
    }
}

/// The buckets stage's group → edges step, with the optional Jaccard check.
struct GroupWriter {
    out: RunStreamWriter<Edge>,
    /// With `against`: every member of a group matching an earlier snapshot, with the match.
    hits: Option<RunStreamWriter<HitRec>>,
    verifier: Option<Verifier>,
    summary: BucketSummary,
    locs: Vec<Option<Loc>>,
    parent: Vec<u32>,
    pairs: Vec<(u32, u32)>,
}

impl GroupWriter {
    /// Writes the edges (or index hits) of one group of documents sharing a band key and
    /// empties it.
    fn flush(&mut self, group: &mut Vec<Node>, hit: Option<(u32, u64)>) -> Result<(), StepError> {
        if let Some((snap, skey)) = hit {
            for &a in group.iter() {
                self.out.push(Edge {
                    a,
                    b: Node {
                        prio: u32::MAX,
                        key: HIT,
                    },
                })?;
                if let Some(h) = self.hits.as_mut() {
                    h.push(HitRec {
                        key: a.key,
                        snap,
                        skey,
                    })?;
                }
            }
        } else if group.len() >= 2 {
            self.summary.groups += 1;
            let first = group[0];
            match self.verifier.as_mut() {
                None => {
                    // A star from the best member.
                    self.summary.candidate_edges += group.len() as u64 - 1;
                    for &b in &group[1..] {
                        self.out.push(Edge { a: first, b })?;
                    }
                }
                Some(v) => {
                    // Verification may reject a star edge that another member would pass: small
                    // groups get every pair, large ones a chain as well. Pairs are checked in
                    // that fixed order and skipped once their ends are connected within the
                    // group, so only a spanning forest of the verified pairs is written (the
                    // same components as all verified pairs).
                    let len = group.len() as u32;
                    self.pairs.clear();
                    self.pairs.extend((1..len).map(|j| (0, j)));
                    if len <= 16 {
                        for i in 1..len {
                            self.pairs.extend((i + 1..len).map(|j| (i, j)));
                        }
                    } else {
                        self.pairs.extend((1..len - 1).map(|i| (i, i + 1)));
                    }
                    self.summary.candidate_edges += self.pairs.len() as u64;
                    self.locs.clear();
                    for n in group.iter() {
                        self.locs.push(v.locate(n.key)?);
                    }
                    self.parent.clear();
                    self.parent.extend(0..len);
                    for &(i, j) in &self.pairs {
                        let (ri, rj) = (find(&mut self.parent, i), find(&mut self.parent, j));
                        if ri == rj {
                            continue;
                        }
                        self.summary.verify_checked += 1;
                        if !v.similar(self.locs[i as usize], self.locs[j as usize])? {
                            self.summary.verify_rejected += 1;
                            continue;
                        }
                        self.parent[ri.max(rj) as usize] = ri.min(rj);
                        self.out.push(Edge {
                            a: group[i as usize],
                            b: group[j as usize],
                        })?;
                    }
                }
            }
        }
        group.clear();
        Ok(())
    }
}

/// Records of a shingle index per fence key kept in memory (8 bytes per 256 documents).
const FENCE: u64 = 256;

/// Where a document's shingle set is: observer task, byte offset, shingle count.
type Loc = (u32, u64, u32);

/// One observer task's stored shingle sets.
struct VerifyTask {
    /// Keys of records 0, FENCE, 2·FENCE, … of the index.
    fence: Vec<u64>,
    first: u64,
    last: u64,
    n: u64,
    data_start: u64,
    index_path: PathBuf,
    index: File,
    data_path: PathBuf,
    data: File,
}

/// Exact Jaccard of candidate pairs, from the shingle sets the observers stored. A document's
/// set is found by binary search in its observer's index (sorted by key); observer tasks hold
/// disjoint key ranges.
struct Verifier {
    threshold: f64,
    /// Observer tasks that stored a set, by first key.
    tasks: Vec<VerifyTask>,
    rec: Vec<u8>,
    bytes: Vec<u8>,
    a: Vec<u32>,
    b: Vec<u32>,
    loaded: [Option<Loc>; 2],
}

impl Verifier {
    fn open(dir: &Path, observed_tasks: usize, threshold: f64) -> Result<Self, StepError> {
        let mut tasks = Vec::new();
        for t in 0..observed_tasks {
            let index_path = verify_index_path(dir, t);
            let index = File::open(&index_path).map_err(|e| StepError::io(&index_path, e))?;
            let head = read_header(&index, &index_path, ShingleLoc::SIZE)?;
            let n: u64 = head.counts.iter().sum();
            if n == 0 {
                continue;
            }
            let data_path = verify_data_path(dir, t);
            let data = File::open(&data_path).map_err(|e| StepError::io(&data_path, e))?;
            let mut vt = VerifyTask {
                fence: Vec::with_capacity(n.div_ceil(FENCE) as usize),
                first: 0,
                last: 0,
                n,
                data_start: head.data_start,
                index_path,
                index,
                data_path,
                data,
            };
            let mut rec = vec![0u8; ShingleLoc::SIZE];
            for i in (0..n).step_by(FENCE as usize) {
                let k = read_loc(&vt, i, &mut rec)?.key;
                vt.fence.push(k);
            }
            vt.first = vt.fence[0];
            vt.last = read_loc(&vt, n - 1, &mut rec)?.key;
            tasks.push(vt);
        }
        tasks.sort_by_key(|t| t.first);
        Ok(Self {
            threshold,
            tasks,
            rec: vec![0u8; ShingleLoc::SIZE],
            bytes: Vec::new(),
            a: Vec::new(),
            b: Vec::new(),
            loaded: [None, None],
        })
    }

    /// The location of `key`'s shingle set, if one was stored.
    fn locate(&mut self, key: u64) -> Result<Option<Loc>, StepError> {
        let at = self.tasks.partition_point(|t| t.first <= key);
        if at == 0 {
            return Ok(None);
        }
        let t = &self.tasks[at - 1];
        if key > t.last {
            return Ok(None);
        }
        // The fence keys narrow the search to one block of the index: one read.
        let block = t.fence.partition_point(|&f| f <= key).saturating_sub(1) as u64;
        let start = block * FENCE;
        let count = (t.n - start).min(FENCE) as usize;
        self.rec.resize(count * ShingleLoc::SIZE, 0);
        t.index
            .read_exact_at(
                &mut self.rec,
                t.data_start + start * ShingleLoc::SIZE as u64,
            )
            .map_err(|e| StepError::io(&t.index_path, e))?;
        let recs = &self.rec;
        let at_rec =
            |i: usize| ShingleLoc::decode(&recs[i * ShingleLoc::SIZE..][..ShingleLoc::SIZE]);
        let (mut lo, mut hi) = (0usize, count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let s = at_rec(mid);
            match s.key.cmp(&key) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(Some((at as u32 - 1, s.offset, s.len))),
            }
        }
        Ok(None)
    }

    fn load(&mut self, loc: Loc, slot: usize) -> Result<(), StepError> {
        if self.loaded[slot] == Some(loc) {
            return Ok(());
        }
        let (t, off, len) = loc;
        let t = &self.tasks[t as usize];
        self.bytes.resize(len as usize * 4, 0);
        t.data
            .read_exact_at(&mut self.bytes, off)
            .map_err(|e| StepError::io(&t.data_path, e))?;
        let out = if slot == 0 { &mut self.a } else { &mut self.b };
        out.clear();
        out.extend(
            self.bytes
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes"))),
        );
        self.loaded[slot] = Some(loc);
        Ok(())
    }

    /// True when both sets are stored and their Jaccard similarity reaches the threshold.
    fn similar(&mut self, x: Option<Loc>, y: Option<Loc>) -> Result<bool, StepError> {
        let (Some(x), Some(y)) = (x, y) else {
            return Ok(false);
        };
        // Jaccard ≤ min size / max size: pairs of very different sizes need no read (the bound
        // rounds the same way as the exact value, so the decision is the same).
        let (lx, ly) = (x.2 as f64, y.2 as f64);
        if lx.max(ly) > 0.0 && lx.min(ly) / lx.max(ly) < self.threshold {
            return Ok(false);
        }
        self.load(x, 0)?;
        self.load(y, 1)?;
        Ok(jaccard_sorted(&self.a, &self.b) >= self.threshold)
    }
}

/// Record `i` of an observer task's shingle index.
fn read_loc(t: &VerifyTask, i: u64, rec: &mut [u8]) -> Result<ShingleLoc, StepError> {
    t.index
        .read_exact_at(rec, t.data_start + i * ShingleLoc::SIZE as u64)
        .map_err(|e| StepError::io(&t.index_path, e))?;
    Ok(ShingleLoc::decode(rec))
}

fn verify_data_path(dir: &Path, task: usize) -> PathBuf {
    dir.join("verify").join(format!("task-{task:05}.shingles"))
}

fn verify_index_path(dir: &Path, task: usize) -> PathBuf {
    dir.join("verify").join(format!("task-{task:05}.index"))
}

impl Step for MinhashDedup {
    fn kind(&self) -> &'static str {
        "minhash_dedup"
    }

    fn columns(&self, c: &mut curate_core::columns::Columns<'_>) {
        crate::common::need_score_column(c, self.cfg.keep, &self.cfg.score_column);
        if let Some(name) = &self.cfg.cluster_id_column {
            c.add(
                Some("cluster_id_column"),
                name,
                arrow::datatypes::DataType::UInt64,
            );
        }
        c.add_on_dropped(DUPLICATE_OF, arrow::datatypes::DataType::Utf8);
        if !self.against.is_empty() {
            c.add_on_dropped(DUPLICATE_OF_SNAPSHOT, arrow::datatypes::DataType::Utf8);
        }
    }

    fn reasons(&self) -> Vec<String> {
        vec![
            "minhash_duplicate".to_string(),
            "minhash_duplicate_of_snapshot".to_string(),
        ]
    }

    fn processor(&self, cx: &TaskContext<'_>) -> Result<Box<dyn Processor>, StepError> {
        let prov = if self.writes_provenance() {
            let (run, blob) = Self::prov_paths(cx.dir);
            Some(ProvLookup::open(&run, &blob)?)
        } else {
            None
        };
        Ok(Box::new(MinhashFilter {
            lookup: NodeLookup::open(&[Self::nodes_path(cx.dir)])?,
            cluster_col: self.cfg.cluster_id_column.clone(),
            prov,
            has_ids: self.has_ids,
            snapshots: self.against.iter().map(|a| a.label.clone()).collect(),
            names: DropNames::default(),
            buf: Vec::new(),
        }))
    }

    fn barrier(&self) -> Option<&dyn Barrier> {
        Some(self)
    }

    fn publish(&self, dir: &Path) -> Result<Published, StepError> {
        let stats_path = Self::stats_path(dir);
        let stats: Option<MinhashStats> = if stats_path.exists() {
            Some(read_json(&stats_path)?)
        } else {
            None
        };
        let mut files = Vec::new();
        let idx = Self::index_dir(dir);
        if self.cfg.write_index && idx.join("index.json").exists() {
            files.push((artifact::MINHASH_INDEX.to_string(), idx.join("index.json")));
            for b in 0..self.cfg.bands {
                let name = format!("band-{b:04}.bin");
                files.push((artifact::minhash_file(&name), idx.join(&name)));
            }
            if self.has_ids {
                let (keys, bin) = index_names_paths(&idx);
                files.push((artifact::MINHASH_NAMES_KEYS.to_string(), keys));
                files.push((artifact::MINHASH_NAMES_BIN.to_string(), bin));
            }
        }
        let stats = stats.map(|s| {
            let mut v = serde_json::to_value(&s).unwrap_or_default();
            v["params"] = serde_json::to_value(self.hasher.params()).unwrap_or_default();
            v["verify"] = serde_json::to_value(self.cfg.verify).unwrap_or_default();
            v
        });
        Ok(Published { files, stats })
    }
}

impl Barrier for MinhashDedup {
    fn observer(&self, cx: &TaskContext<'_>) -> Result<Box<dyn Observer>, StepError> {
        let prefix = format!("task-{:05}-", cx.task);
        let runs_dir = cx.dir.join("observe");
        std::fs::create_dir_all(&runs_dir).map_err(|e| StepError::io(&runs_dir, e))?;
        clear_task_files(&runs_dir, &prefix)?;
        let verify = if self.cfg.verify.is_some() {
            let data = RunStreamWriter::<U32Rec>::create(&verify_data_path(cx.dir, cx.task))?;
            let index = RunStreamWriter::<ShingleLoc>::create(&verify_index_path(cx.dir, cx.task))?;
            Some((data, index))
        } else {
            None
        };
        // Records: 20 bytes plus the partition tag; a quarter of the budget for the buffer.
        let cap =
            (self.memory / 4 / std::mem::size_of::<(u32, BandRec)>()).max(self.cfg.bands * 64);
        let names = if self.has_ids {
            Some(NamesWriter::create(&names_paths(cx.dir, cx.task))?)
        } else {
            None
        };
        Ok(Box::new(MinhashObserver {
            names,
            step: MinhashDedupView {
                hasher: self.hasher.clone(),
                bands: self.cfg.bands,
                hash_ranges: self.cfg.hash_ranges,
                keep: self.cfg.keep,
                score_column: self.cfg.score_column.clone(),
            },
            dir: cx.dir.to_path_buf(),
            task: cx.task,
            buf: Vec::with_capacity(cap.min(1 << 20)),
            cap,
            runs: Vec::new(),
            documents: 0,
            prio: Vec::new(),
            verify,
            last_key: None,
        }))
    }

    fn stages(&self, _observed_tasks: usize) -> Vec<StageSpec> {
        let mut s = vec![
            StageSpec {
                name: "buckets".to_string(),
                tasks: self.parts(),
            },
            StageSpec {
                name: "cluster".to_string(),
                tasks: 1,
            },
        ];
        if self.cfg.write_index {
            // One task per band, and one for the survivors' ids.
            s.push(StageSpec {
                name: "index".to_string(),
                tasks: self.cfg.bands + self.has_ids as usize,
            });
        }
        s
    }

    fn run_stage_task(&self, cx: &StageContext<'_>) -> Result<(), StepError> {
        match cx.stage {
            STAGE_BUCKETS => self.run_buckets(cx),
            STAGE_CLUSTER => self.run_cluster(cx),
            STAGE_INDEX => self.run_index(cx),
            s => Err(StepError::Other(format!("minhash_dedup has no stage {s}"))),
        }
    }
}

/// A u32 record (verify shingle data).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct U32Rec(u32);

impl Record for U32Rec {
    const SIZE: usize = 4;
    fn encode(&self, out: &mut [u8]) {
        out.copy_from_slice(&self.0.to_le_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        U32Rec(u32_at(b, 0))
    }
}

/// What an observer needs of the step.
struct MinhashDedupView {
    hasher: Arc<Hasher>,
    bands: usize,
    hash_ranges: usize,
    keep: Keep,
    score_column: Option<String>,
}

struct MinhashObserver {
    /// With an id column: the ids of the documents with a signature (the only ones that can
    /// survive a cluster or be indexed).
    names: Option<NamesWriter>,
    step: MinhashDedupView,
    dir: PathBuf,
    task: usize,
    buf: Vec<(u32, BandRec)>,
    cap: usize,
    runs: Vec<String>,
    documents: u64,
    prio: Vec<u32>,
    verify: Option<(RunStreamWriter<U32Rec>, RunStreamWriter<ShingleLoc>)>,
    last_key: Option<u64>,
}

/// Per-chunk output of the parallel sketching.
#[derive(Default)]
struct ChunkOut {
    /// (row, band keys start) per sketched document.
    rows: Vec<u32>,
    band_keys: Vec<u64>,
    /// Sorted distinct 32-bit shingle hashes per document (verify only), with lengths.
    shingles: Vec<u32>,
    lens: Vec<u32>,
    short: u64,
}

impl MinhashObserver {
    fn spill(&mut self) -> Result<(), StepError> {
        let partitions = self.step.bands * self.step.hash_ranges;
        spill_sorted(
            &self.dir,
            self.task,
            partitions,
            &mut self.buf,
            &mut self.runs,
        )
    }
}

impl Observer for MinhashObserver {
    fn observe(&mut self, batch: &DocBatch, counters: &mut Counters) -> Result<(), StepError> {
        let n = batch.len();
        priorities(
            batch,
            self.step.keep,
            self.step.score_column.as_deref(),
            &mut self.prio,
        )?;
        let hasher = &self.step.hasher;
        let bands = self.step.bands;
        let want_sets = self.verify.is_some();
        let chunk = 64usize;
        let outs: Vec<ChunkOut> = (0..n.div_ceil(chunk))
            .into_par_iter()
            .map_init(Sketcher::default, |sk, c| {
                let mut out = ChunkOut::default();
                for i in c * chunk..((c + 1) * chunk).min(n) {
                    if !sk.sketch(hasher, batch.text(i)) {
                        out.short += 1;
                        continue;
                    }
                    out.rows.push(i as u32);
                    for b in 0..bands {
                        out.band_keys.push(hasher.band_key(&sk.sig, b));
                    }
                    if want_sets {
                        let start = out.shingles.len();
                        out.shingles
                            .extend(sk.shingles.iter().map(|s| (*s >> 32) as u32));
                        let tail = &mut out.shingles[start..];
                        tail.sort_unstable();
                        let mut w = 0;
                        for r in 0..tail.len() {
                            if r == 0 || tail[r] != tail[w - 1] {
                                tail[w] = tail[r];
                                w += 1;
                            }
                        }
                        out.shingles.truncate(start + w);
                        out.lens.push(w as u32);
                    }
                }
                out
            })
            .collect();
        let keys = batch.keys().values();
        let mut short = 0;
        for out in &outs {
            short += out.short;
            let mut soff = 0usize;
            for (j, &row) in out.rows.iter().enumerate() {
                let row = row as usize;
                let key = keys[row];
                debug_assert!(
                    self.last_key.is_none_or(|l| l < key),
                    "keys ascend within a task"
                );
                self.last_key = Some(key);
                let prio = self.prio[row];
                if let Some(w) = self.names.as_mut() {
                    w.push(batch, row)?;
                }
                for b in 0..bands {
                    if self.buf.len() >= self.cap {
                        self.spill()?;
                    }
                    let hash = out.band_keys[j * bands + b];
                    let part = b * self.step.hash_ranges + range_of(hash, self.step.hash_ranges);
                    self.buf.push((part as u32, BandRec { hash, prio, key }));
                }
                if let Some((data, index)) = self.verify.as_mut() {
                    let len = out.lens[j] as usize;
                    let offset = 24 + data.len() * 4;
                    for s in &out.shingles[soff..soff + len] {
                        data.push(U32Rec(*s))?;
                    }
                    index.push(ShingleLoc {
                        key,
                        offset,
                        len: len as u32,
                    })?;
                    soff += len;
                }
            }
        }
        self.documents += n as u64;
        counters.add("minhash_documents", n as f64);
        counters.add("minhash_too_short", short as f64);
        Ok(())
    }

    fn finish(mut self: Box<Self>, counters: &mut Counters) -> Result<(), StepError> {
        self.spill()?;
        if let Some((data, index)) = self.verify.take() {
            data.finish()?;
            index.finish()?;
        }
        if let Some(w) = self.names.take() {
            w.finish()?;
        }
        counters.add("minhash_runs", self.runs.len() as f64);
        let m = ObserverManifest {
            runs: std::mem::take(&mut self.runs),
            documents: self.documents,
        };
        write_json(&manifest_path(&self.dir, self.task), &m)
    }
}

/// The filter of the pass after the barrier.
struct MinhashFilter {
    lookup: NodeLookup,
    cluster_col: Option<String>,
    /// The survivors' names (with an id column or `against`).
    prov: Option<ProvLookup>,
    has_ids: bool,
    /// The `against` entries, for `duplicate_of_snapshot`.
    snapshots: Vec<String>,
    names: DropNames,
    buf: Vec<u8>,
}

impl MinhashFilter {
    /// Names the survivor of removed document `key` (root `root`) in `self.buf`; returns the
    /// snapshot number (0: this run) and false when the name is unknown.
    fn name(&mut self, key: u64, root: u64, status: u8) -> Result<(u32, bool), StepError> {
        match self.prov.as_mut() {
            Some(p) if status == REMOVED_AGAINST || self.has_ids => p.get(key, &mut self.buf),
            _ => {
                render_key(root, &mut self.buf);
                Ok((0, true))
            }
        }
    }
}

impl Processor for MinhashFilter {
    fn process(&mut self, batch: &mut DocBatch, counters: &mut Counters) -> Result<(), StepError> {
        let n = batch.len();
        let mut ids: Option<Vec<Option<u64>>> =
            self.cluster_col.as_ref().map(|_| Vec::with_capacity(n));
        let (mut dup, mut against) = (0u64, 0u64);
        self.names.clear();
        for i in 0..n {
            let key = batch.keys().value(i);
            let node = self.lookup.get(key)?.map(|(_, x)| x);
            if let Some(ids) = ids.as_mut() {
                ids.push(node.map(|x| x.root));
            }
            let Some(node) = node.filter(|x| x.status != KEPT) else {
                continue;
            };
            if node.status == REMOVED {
                batch.drop_row(i, 0);
                dup += 1;
            } else {
                batch.drop_row(i, 1);
                against += 1;
            }
            let (snap, named) = self.name(key, node.root, node.status)?;
            self.names
                .push(i, snap, named.then_some(self.buf.as_slice()));
        }
        if let (Some(name), Some(ids)) = (&self.cluster_col, ids) {
            let col: ArrayRef = Arc::new(UInt64Array::from(ids));
            batch.set_column(name, col);
        }
        let snapshots = (!self.snapshots.is_empty()).then_some(self.snapshots.as_slice());
        self.names.apply(batch, snapshots);
        counters.add("minhash_removed", dup as f64);
        counters.add("minhash_removed_against", against as f64);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_partition_the_hash_space() {
        for ranges in [1usize, 3, 4, 7] {
            for r in 0..ranges {
                let (lo, hi) = range_bounds(r, ranges);
                assert_eq!(range_of(lo, ranges), r);
                if let Some(hi) = hi {
                    assert_eq!(range_of(hi - 1, ranges), r);
                    assert_eq!(range_of(hi, ranges), r + 1);
                } else {
                    assert_eq!(range_of(u64::MAX, ranges), r);
                }
            }
        }
    }
}
