//! The `verify` option: exact Jaccard of candidate pairs from the shingle sets the observers
//! stored.

use super::*;

/// Records of a shingle index per fence key kept in memory (8 bytes per 256 documents).
pub(super) const FENCE: u64 = 256;

/// Where a document's shingle set is: observer task, byte offset, shingle count.
pub(super) type Loc = (u32, u64, u32);

/// One observer task's stored shingle sets.
pub(super) struct VerifyTask {
    /// Keys of records 0, FENCE, 2·FENCE, … of the index.
    pub(super) fence: Vec<u64>,
    pub(super) first: u64,
    pub(super) last: u64,
    pub(super) n: u64,
    pub(super) data_start: u64,
    pub(super) index_path: PathBuf,
    pub(super) index: File,
    pub(super) data_path: PathBuf,
    pub(super) data: File,
}

/// Exact Jaccard of candidate pairs, from the shingle sets the observers stored. A document's
/// set is found by binary search in its observer's index (sorted by key); observer tasks hold
/// disjoint key ranges.
pub(super) struct Verifier {
    pub(super) threshold: f64,
    /// Observer tasks that stored a set, by first key.
    pub(super) tasks: Vec<VerifyTask>,
    pub(super) rec: Vec<u8>,
    pub(super) bytes: Vec<u8>,
    pub(super) a: Vec<u32>,
    pub(super) b: Vec<u32>,
    pub(super) loaded: [Option<Loc>; 2],
}

impl Verifier {
    pub(super) fn open(
        dir: &Path,
        observed_tasks: usize,
        threshold: f64,
    ) -> Result<Self, StepError> {
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
    pub(super) fn locate(&mut self, key: u64) -> Result<Option<Loc>, StepError> {
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

    pub(super) fn load(&mut self, loc: Loc, slot: usize) -> Result<(), StepError> {
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
    pub(super) fn similar(&mut self, x: Option<Loc>, y: Option<Loc>) -> Result<bool, StepError> {
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
pub(super) fn read_loc(t: &VerifyTask, i: u64, rec: &mut [u8]) -> Result<ShingleLoc, StepError> {
    t.index
        .read_exact_at(rec, t.data_start + i * ShingleLoc::SIZE as u64)
        .map_err(|e| StepError::io(&t.index_path, e))?;
    Ok(ShingleLoc::decode(rec))
}

pub(super) fn verify_data_path(dir: &Path, task: usize) -> PathBuf {
    dir.join("verify").join(format!("task-{task:05}.shingles"))
}

pub(super) fn verify_index_path(dir: &Path, task: usize) -> PathBuf {
    dir.join("verify").join(format!("task-{task:05}.index"))
}
