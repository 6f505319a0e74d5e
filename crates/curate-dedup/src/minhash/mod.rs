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

mod buckets;
mod cluster;
mod filter;
mod index;
mod observe;
mod verify;
use filter::*;
use observe::*;
use verify::*;

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
            // the earlier snapshot is opened by its manifest, and every file of its index this
            // run reads is listed there with the hash it has now (and recorded for resumes)
            let root = env.config_dir.join(a);
            let snap = curate_snapshot::Snapshot::open(&root)
                .map_err(|e| StepError::Data(format!("against \"{a}\": {e}")))?;
            let checked = |rel: &str| -> Result<PathBuf, StepError> {
                let path = snap.path(rel);
                let listed = snap.artifact(rel).ok_or_else(|| {
                    StepError::Data(format!(
                        "against \"{a}\": {} is not listed in that snapshot's manifest (was it written with write_index = true?)",
                        path.display()
                    ))
                })?;
                let read = curate_core::resource::record_file(&path).map_err(StepError::Data)?;
                curate_snapshot::open::check_hash(&path, &read.xxh3_128, listed, "index")
                    .map_err(StepError::Data)?;
                Ok(path)
            };
            let dir = root.join(artifact::MINHASH_DIR);
            let meta_path = checked(artifact::MINHASH_INDEX)?;
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
            for band in 0..self.bands {
                checked(&format!("{}/band-{band:04}.bin", artifact::MINHASH_DIR))?;
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
                checked(artifact::MINHASH_NAMES_KEYS)?;
                checked(artifact::MINHASH_NAMES_BIN)?;
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
