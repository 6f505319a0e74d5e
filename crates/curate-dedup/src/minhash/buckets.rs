//! Stage 2, **buckets** (`bands × hash_ranges` tasks): the k-way merge of one partition of every
//! observer's runs (and of the `against` indexes) into candidate edges, with the optional
//! Jaccard check of each group's pairs.

use super::*;

impl MinhashDedup {
    pub(super) fn run_buckets(&self, cx: &StageContext<'_>) -> Result<(), StepError> {
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
}

/// Band keys of an earlier snapshot's index within one hash range, as merge input: a record
/// whose `key` is the survivor's key in that snapshot ([`UNKNOWN_KEY`] for a v1 index).
pub(super) struct IndexSource {
    pub(super) cursor: KeyCursor,
    pub(super) v1: bool,
    pub(super) hi: Option<u64>,
}

impl IndexSource {
    pub(super) fn open(path: &Path, v1: bool, lo: u64, hi: Option<u64>) -> Result<Self, StepError> {
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

/// The buckets stage's group → edges step, with the optional Jaccard check.
pub(super) struct GroupWriter {
    pub(super) out: RunStreamWriter<Edge>,
    /// With `against`: every member of a group matching an earlier snapshot, with the match.
    pub(super) hits: Option<RunStreamWriter<HitRec>>,
    pub(super) verifier: Option<Verifier>,
    pub(super) summary: BucketSummary,
    pub(super) locs: Vec<Option<Loc>>,
    pub(super) parent: Vec<u32>,
    pub(super) pairs: Vec<(u32, u32)>,
}

impl GroupWriter {
    /// Writes the edges (or index hits) of one group of documents sharing a band key and
    /// empties it.
    pub(super) fn flush(
        &mut self,
        group: &mut Vec<Node>,
        hit: Option<(u32, u64)>,
    ) -> Result<(), StepError> {
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
