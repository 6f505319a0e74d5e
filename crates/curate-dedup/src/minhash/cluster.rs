//! Stage 3, **cluster** (1 task): connected components of the documents with an edge, in memory
//! or by contraction rounds past memory, and the survivors' names (provenance).

use super::*;

impl MinhashDedup {
    pub(super) fn run_cluster(&self, cx: &StageContext<'_>) -> Result<(), StepError> {
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
        c.add_run("minhash_cluster_external", external as u8 as f64);
        c.add_run("minhash_cluster_rounds", run.rounds as f64);
        c.add_run("minhash_cluster_spill_files", run.spill_files as f64);
        c.add("minhash_against_unnamed", unnamed as f64);
        c.add_run("minhash_provenance_spills", prov_spills as f64);
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
    pub(super) fn write_provenance(
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
    pub(super) fn cluster_external(
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
}

/// Bytes per node of the in-memory cluster table: key, priority, hit flag, parent, component
/// size and component hit flag.
pub(super) const IN_MEMORY_BYTES_PER_NODE: usize = 8 + 4 + 1 + 4 + 4 + 1;

/// The cluster stage when its node table fits: union-find over the sorted node list.
pub(super) fn cluster_in_memory(
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

/// How the cluster stage ran (`cluster/run.json`; not part of the published stats, which are the
/// same whichever way it ran).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct ClusterRun {
    /// Documents with an edge or an index hit.
    pub(super) nodes: u64,
    /// True when the node table did not fit `memory_limit / 2` and contraction rounds ran.
    pub(super) external: bool,
    /// Nodes a table could hold.
    pub(super) table_capacity: u64,
    /// Contraction rounds (0 in memory).
    pub(super) rounds: u64,
    /// Edges deferred to a later round, summed.
    pub(super) deferred_edges: u64,
    /// Scratch files written (sorted spills, round graphs, label files).
    pub(super) spill_files: u64,
    /// Most nodes in memory at once.
    pub(super) peak_table_nodes: u64,
}

/// A node with its component's best key, sorted by (root, key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct MemberRec {
    pub(super) root: u64,
    pub(super) key: u64,
    pub(super) hit: bool,
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
pub(super) struct CompRec {
    pub(super) root: u64,
    pub(super) size: u64,
    pub(super) hit: bool,
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
