//! Keep rules for scored documents: a threshold, or an exact top fraction.
//!
//! A top fraction needs a global view. The step's observers write one `(score, doc key)` record
//! per document to a per-task file; a single global task finds the exact cut — the k-th best
//! document under the order "higher score first, then smaller doc key", k = ⌈fraction · n⌉ — by
//! radix selection over the files (a 65,536-bin histogram per pass, so memory does not grow
//! with the corpus), and the processor keeps a document when it ranks at or above the cut. The
//! result depends only on the scores and keys, never on the task or thread count.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Error;

/// Which documents to keep.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Keep {
    /// Keep documents whose score is at least this value, e.g. `keep = { threshold = 3.0 }`.
    Threshold(f64),
    /// Keep this share of all documents, the highest-scoring ones, e.g.
    /// `keep = { top_fraction = 0.1 }`. Exact: ⌈fraction · n⌉ documents, ties broken by document
    /// key.
    TopFraction(f64),
    /// Keep the documents of these quality buckets, e.g. `keep = { buckets = [3, 4] }` (the
    /// `score` step's `buckets` or `bucket_edges`; `quality_threshold` on a stored bucket
    /// column). Bucket numbers 0–127.
    Buckets(#[schemars(with = "Vec<u32>")] BucketSet),
}

/// A set of bucket numbers below [`BucketSet::LIMIT`] (a bit mask, so [`Keep`] stays `Copy`);
/// written as a list in configs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "Vec<u32>", into = "Vec<u32>")]
pub struct BucketSet(u128);

impl BucketSet {
    /// Bucket numbers must be below this.
    pub const LIMIT: u32 = 128;

    /// Whether bucket `b` is in the set.
    #[inline]
    pub fn contains(&self, b: u32) -> bool {
        b < Self::LIMIT && self.0 >> b & 1 == 1
    }

    /// The largest bucket in the set.
    pub fn max(&self) -> Option<u32> {
        (self.0 != 0).then(|| 127 - self.0.leading_zeros())
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }
}

impl TryFrom<Vec<u32>> for BucketSet {
    type Error = String;
    fn try_from(v: Vec<u32>) -> Result<Self, String> {
        let mut m = 0u128;
        for b in v {
            if b >= Self::LIMIT {
                return Err(format!("bucket {b} is not below {}", Self::LIMIT));
            }
            m |= 1 << b;
        }
        Ok(BucketSet(m))
    }
}

impl From<BucketSet> for Vec<u32> {
    fn from(s: BucketSet) -> Vec<u32> {
        (0..BucketSet::LIMIT).filter(|b| s.contains(*b)).collect()
    }
}

impl Keep {
    /// Checks the value's range.
    pub fn validate(&self, problems: &mut curate_core::Problems) {
        match self {
            Keep::Threshold(t) if !t.is_finite() => {
                problems.push("keep.threshold", format!("{t} is not a finite number"))
            }
            Keep::TopFraction(f) => problems.range("keep.top_fraction", *f, 0.0, 1.0),
            Keep::Buckets(b) if b.is_empty() => {
                problems.push("keep.buckets", "is empty; it would keep no document")
            }
            _ => {}
        }
    }
}

/// Order key of a score: smaller is better (higher score). NaN ranks last.
#[inline]
pub fn rank_key(score: f32) -> u32 {
    if score.is_nan() {
        return u32::MAX;
    }
    let b = score.to_bits();
    let asc = if b & 0x8000_0000 != 0 {
        !b
    } else {
        b | 0x8000_0000
    };
    !asc
}

/// The score a [`rank_key`] was made from (NaN for the NaN key).
pub fn score_of_rank_key(k: u32) -> f32 {
    if k == u32::MAX {
        return f32::NAN;
    }
    let asc = !k;
    let b = if asc & 0x8000_0000 != 0 {
        asc & 0x7fff_ffff
    } else {
        !asc
    };
    f32::from_bits(b)
}

/// The exact top-fraction cut: the k-th best (rank key, doc key), or `None` to keep nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cut {
    /// Documents seen.
    pub n: u64,
    /// Documents to keep.
    pub k: u64,
    /// The last kept document's (rank key, doc key).
    pub last: Option<(u32, u64)>,
}

impl Cut {
    /// Whether a document with this score and key is kept.
    #[inline]
    pub fn keeps(&self, score: f32, key: u64) -> bool {
        self.last.is_some_and(|c| (rank_key(score), key) <= c)
    }

    /// Number of documents to keep out of `n` for `fraction`.
    pub fn count(n: u64, fraction: f64) -> u64 {
        ((fraction * n as f64 - 1e-9).ceil().max(0.0) as u64).min(n)
    }
}

const MAGIC: &[u8; 8] = b"CQSCR001";
const REC: usize = 12;

/// Path of task `task`'s score file in a step directory.
pub(crate) fn scores_path(dir: &Path, task: usize) -> PathBuf {
    dir.join(format!("scores-{task:06}.bin"))
}

/// Streams `(score, key)` records into a temp file, renamed into place by `finish`.
pub(crate) struct ScoreWriter {
    out: curate_io::atomic::AtomicWriter,
}

impl ScoreWriter {
    pub(crate) fn create(path: PathBuf) -> Result<Self, Error> {
        let mut out = curate_io::atomic::AtomicWriter::create(&path, 1 << 18)?;
        out.append(MAGIC)?;
        Ok(ScoreWriter { out })
    }

    #[inline]
    pub(crate) fn write(&mut self, score: f32, key: u64) -> Result<(), Error> {
        let mut rec = [0u8; REC];
        rec[..4].copy_from_slice(&rank_key(score).to_le_bytes());
        rec[4..].copy_from_slice(&key.to_le_bytes());
        Ok(self.out.append(&rec)?)
    }

    pub(crate) fn finish(self) -> Result<(), Error> {
        Ok(self.out.commit()?)
    }
}

/// Calls `f` with every record's 96-bit composite `(rank key << 64) | doc key`.
fn for_each_record(paths: &[PathBuf], mut f: impl FnMut(u128)) -> Result<(), Error> {
    let mut buf = vec![0u8; REC * 8192];
    for p in paths {
        let file = File::open(p).map_err(|e| Error::io(p, e))?;
        let mut r = BufReader::new(file);
        let mut magic = [0u8; 8];
        r.read_exact(&mut magic).map_err(|e| Error::io(p, e))?;
        if &magic != MAGIC {
            return Err(Error::Corrupt {
                path: p.clone(),
                message: "not a score file (bad magic)".into(),
            });
        }
        let mut filled = 0;
        loop {
            let got = r.read(&mut buf[filled..]).map_err(|e| Error::io(p, e))?;
            filled += got;
            let whole = filled / REC * REC;
            for c in buf[..whole].chunks_exact(REC) {
                let rk = u32::from_le_bytes(c[..4].try_into().unwrap());
                let key = u64::from_le_bytes(c[4..].try_into().unwrap());
                f(((rk as u128) << 64) | key as u128);
            }
            buf.copy_within(whole..filled, 0);
            filled -= whole;
            if got == 0 {
                if filled != 0 {
                    return Err(Error::Corrupt {
                        path: p.clone(),
                        message: "truncated record".into(),
                    });
                }
                break;
            }
        }
    }
    Ok(())
}

/// Candidates at most this many are collected and sorted instead of refined further.
const COLLECT: u64 = 1 << 20;

/// Finds the exact cut for keeping `fraction` of the documents in the score files.
pub(crate) fn exact_cut(paths: &[PathBuf], fraction: f64) -> Result<Cut, Error> {
    exact_cut_with(paths, fraction, COLLECT)
}

fn exact_cut_with(paths: &[PathBuf], fraction: f64, collect: u64) -> Result<Cut, Error> {
    let n = count_records(paths)?;
    let k = Cut::count(n, fraction);
    Ok(Cut {
        n,
        k,
        last: kth_best(paths, k, collect)?,
    })
}

/// Number of records in the score files.
pub(crate) fn count_records(paths: &[PathBuf]) -> Result<u64, Error> {
    let mut n = 0u64;
    for_each_record(paths, |_| n += 1)?;
    Ok(n)
}

/// Equal-count buckets of the scored documents: for `n` documents in `buckets` buckets, the
/// (rank key, doc key) of the last document of the best `j` buckets, j = 1 … buckets − 1 (the
/// best j buckets hold ⌈j · n / buckets⌉ documents). See [`Buckets::of`].
pub(crate) fn bucket_bounds(paths: &[PathBuf], buckets: u32) -> Result<Buckets, Error> {
    let n = count_records(paths)?;
    let mut last = Vec::with_capacity(buckets as usize - 1);
    for j in 1..buckets as u64 {
        let k = (j * n).div_ceil(buckets as u64);
        last.push(kth_best(paths, k, COLLECT)?);
    }
    Ok(Buckets { n, last })
}

/// Equal-count quality buckets over a whole corpus, numbered 0 (lowest scores) to N − 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Buckets {
    /// Documents seen.
    pub n: u64,
    /// The last (rank key, doc key) of the best 1, 2, … N − 1 buckets (`None`: no document).
    pub last: Vec<Option<(u32, u64)>>,
}

impl Buckets {
    /// The bucket of a document: N − 1 minus the number of boundaries it ranks below.
    #[inline]
    pub fn of(&self, score: f32, key: u64) -> u32 {
        let me = (rank_key(score), key);
        let below = self
            .last
            .iter()
            .filter(|l| l.is_none_or(|l| me > l))
            .count();
        (self.last.len() - below) as u32
    }

    /// The lowest score of each bucket's best boundary, for people (`None` where empty).
    pub fn lower_scores(&self) -> Vec<Option<f32>> {
        self.last
            .iter()
            .map(|l| l.map(|(rk, _)| score_of_rank_key(rk)))
            .collect()
    }
}

/// The k-th best (rank key, doc key) of the score files (1-based), `None` for k = 0: radix
/// selection, 16 bits per pass, candidates sorted once at most `collect` remain.
fn kth_best(paths: &[PathBuf], k: u64, collect: u64) -> Result<Option<(u32, u64)>, Error> {
    if k == 0 {
        return Ok(None);
    }
    let mut rank = k; // 1-based rank within the current candidates
    let mut prefix: u128 = 0;
    let mut hist = vec![0u64; 1 << 16];
    for shift in [80u32, 64, 48, 32, 16, 0] {
        hist.iter_mut().for_each(|h| *h = 0);
        let hi = shift + 16;
        for_each_record(paths, |c| {
            if c >> hi == prefix >> hi {
                hist[((c >> shift) & 0xffff) as usize] += 1;
            }
        })?;
        let mut d = 0usize;
        while hist[d] < rank {
            rank -= hist[d];
            d += 1;
        }
        prefix |= (d as u128) << shift;
        if shift == 0 {
            break;
        }
        if hist[d] <= collect {
            let mut cands = Vec::with_capacity(hist[d] as usize);
            for_each_record(paths, |c| {
                if c >> shift == prefix >> shift {
                    cands.push(c);
                }
            })?;
            cands.sort_unstable();
            prefix = cands[rank as usize - 1];
            break;
        }
    }
    Ok(Some(((prefix >> 64) as u32, prefix as u64)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_key_orders_descending() {
        let xs = [-3.5f32, -0.0, 0.0, 0.1, 2.0, 5.0, f32::INFINITY];
        for w in xs.windows(2) {
            assert!(rank_key(w[0]) >= rank_key(w[1]), "{w:?}");
        }
        assert!(rank_key(f32::NAN) > rank_key(f32::NEG_INFINITY));
        for x in xs {
            assert_eq!(score_of_rank_key(rank_key(x)).to_bits(), x.to_bits());
        }
        assert!(score_of_rank_key(rank_key(f32::NAN)).is_nan());
    }

    fn brute(records: &[(f32, u64)], fraction: f64) -> Vec<u64> {
        let mut v: Vec<(u32, u64)> = records.iter().map(|(s, k)| (rank_key(*s), *k)).collect();
        v.sort();
        let k = Cut::count(v.len() as u64, fraction) as usize;
        let mut kept: Vec<u64> = v[..k].iter().map(|x| x.1).collect();
        kept.sort();
        kept
    }

    #[test]
    fn exact_cut_matches_sorting_whatever_the_split() {
        let dir = tempfile::tempdir().unwrap();
        // Many ties (scores quantised to 8 values) so the key tie-break matters.
        let records: Vec<(f32, u64)> = (0..5000u64)
            .map(|i| ((curate_core::hash::mix64(i, 1) % 8) as f32 * 0.5, i * 3 + 1))
            .collect();
        for (tasks, fraction) in [
            (1usize, 0.1),
            (3, 0.1),
            (4, 0.5),
            (2, 0.0),
            (2, 1.0),
            (5, 0.0001),
        ] {
            let mut paths = Vec::new();
            for t in 0..tasks {
                let p = scores_path(dir.path(), t);
                let mut w = ScoreWriter::create(p.clone()).unwrap();
                for (s, k) in records.iter().skip(t).step_by(tasks) {
                    w.write(*s, *k).unwrap();
                }
                w.finish().unwrap();
                paths.push(p);
            }
            for collect in [0, 7, COLLECT] {
                let cut = exact_cut_with(&paths, fraction, collect).unwrap();
                let mut kept: Vec<u64> = records
                    .iter()
                    .filter(|(s, k)| cut.keeps(*s, *k))
                    .map(|x| x.1)
                    .collect();
                kept.sort();
                assert_eq!(
                    kept,
                    brute(&records, fraction),
                    "tasks {tasks} fraction {fraction} collect {collect}"
                );
                assert_eq!(kept.len() as u64, cut.k);
            }
        }
    }

    #[test]
    fn count_rounds_up() {
        assert_eq!(Cut::count(10, 0.1), 1);
        assert_eq!(Cut::count(11, 0.1), 2);
        assert_eq!(Cut::count(10, 0.0), 0);
        assert_eq!(Cut::count(10, 1.0), 10);
    }
}
