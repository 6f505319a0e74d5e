//! Stage 1, **observe** (the pass before the barrier): normalize, shingle, sketch and spill the
//! band records of each input task.

use super::*;

/// What an observer needs of the step.
pub(super) struct MinhashDedupView {
    pub(super) hasher: Arc<Hasher>,
    pub(super) bands: usize,
    pub(super) hash_ranges: usize,
    pub(super) keep: Keep,
    pub(super) score_column: Option<String>,
}

pub(super) struct MinhashObserver {
    /// With an id column: the ids of the documents with a signature (the only ones that can
    /// survive a cluster or be indexed).
    pub(super) names: Option<NamesWriter>,
    pub(super) step: MinhashDedupView,
    pub(super) dir: PathBuf,
    pub(super) task: usize,
    pub(super) buf: Vec<(u32, BandRec)>,
    pub(super) cap: usize,
    pub(super) runs: Vec<String>,
    pub(super) documents: u64,
    pub(super) prio: Vec<u32>,
    pub(super) verify: Option<(RunStreamWriter<U32Rec>, RunStreamWriter<ShingleLoc>)>,
    pub(super) last_key: Option<u64>,
}

/// Per-chunk output of the parallel sketching.
#[derive(Default)]
pub(super) struct ChunkOut {
    /// (row, band keys start) per sketched document.
    pub(super) rows: Vec<u32>,
    pub(super) band_keys: Vec<u64>,
    /// Sorted distinct 32-bit shingle hashes per document (verify only), with lengths.
    pub(super) shingles: Vec<u32>,
    pub(super) lens: Vec<u32>,
    pub(super) short: u64,
}

impl MinhashObserver {
    pub(super) fn spill(&mut self) -> Result<(), StepError> {
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
        counters.add_run("minhash_runs", self.runs.len() as f64);
        let m = ObserverManifest {
            runs: std::mem::take(&mut self.runs),
            documents: self.documents,
        };
        write_json(&manifest_path(&self.dir, self.task), &m)
    }
}
