//! Connected components of a graph held in edge files, in bounded memory.
//!
//! Nodes are `(priority, key)` pairs ordered best first; every component is labelled with its best
//! node. [`external_components`] never holds more than `cap` nodes in memory:
//!
//! 1. **Rounds.** Stream the round's edges through a union-find table of at most `cap` nodes. An
//!    edge whose missing endpoints no longer fit is *deferred* to a file. When the stream ends,
//!    every table node that is not the root of its table component is *eliminated*: written to
//!    the round's label file as `(key → root key)`. The deferred edges, with both ends replaced by
//!    their table root, self-loops dropped and duplicates removed by an external sort, are the next
//!    round's graph. Each table node entered through an edge that was united, so at least half of
//!    the table is eliminated per round: at most about `2 · nodes / cap` rounds.
//! 2. **Composition.** An eliminated node's root may itself be eliminated in a later round; the
//!    label files are composed from the last round back (two external sorts per round) into one
//!    file of final labels `(key → best key of its component)` sorted by key, for every node that
//!    is not its component's best.
//!
//! The components are those of the input graph whatever `cap` and the edge order: a round only
//! contracts edges of the graph, and relabelling the deferred edges with table roots keeps every
//! connection (the table root is connected to the node it replaces).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::{Path, PathBuf};

use curate_core::StepError;

use crate::runs::{ExternalSorter, PartReader, Record, RunStreamWriter, u32_at, u64_at};

/// A node of the candidate graph: (priority, document key), ordered best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Node {
    pub prio: u32,
    pub key: u64,
}

/// An edge between two nodes (or, with `b.key == HIT`, an index hit of `a`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Edge {
    pub a: Node,
    pub b: Node,
}

/// The `b.key` of an edge that records an index hit of `a` rather than a graph edge.
pub(crate) const HIT: u64 = u64::MAX;

impl Record for Edge {
    const SIZE: usize = 24;
    fn encode(&self, out: &mut [u8]) {
        out[..8].copy_from_slice(&self.a.key.to_le_bytes());
        out[8..12].copy_from_slice(&self.a.prio.to_le_bytes());
        out[12..20].copy_from_slice(&self.b.key.to_le_bytes());
        out[20..24].copy_from_slice(&self.b.prio.to_le_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        Edge {
            a: Node {
                key: u64_at(b, 0),
                prio: u32_at(b, 8),
            },
            b: Node {
                key: u64_at(b, 12),
                prio: u32_at(b, 20),
            },
        }
    }
}

/// A label: `key`'s component is represented by `root` (sorted by key, then root).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct LabelRec {
    pub key: u64,
    pub root: u64,
}

impl Record for LabelRec {
    const SIZE: usize = 16;
    fn encode(&self, out: &mut [u8]) {
        out[..8].copy_from_slice(&self.key.to_le_bytes());
        out[8..16].copy_from_slice(&self.root.to_le_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        LabelRec {
            key: u64_at(b, 0),
            root: u64_at(b, 8),
        }
    }
}

/// Memory per table node of [`external_components`], counted generously: the node (16 bytes
/// with padding), its parent (4), its hash-map slot (12 bytes + control byte at a load of at most
/// 7/8, rounded up to a power of two: ≤ 30) and its label when the round ends (16).
pub(crate) const TABLE_BYTES_PER_NODE: usize = 72;

/// What [`external_components`] did.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ExternalReport {
    /// Final labels: one `(key → best key)` per node that is not its component's best, sorted by
    /// key. `None` when no node was eliminated (no edges).
    pub labels: Option<PathBuf>,
    /// Contraction rounds run.
    pub rounds: u64,
    /// Edges deferred to a later round, summed over rounds.
    pub deferred_edges: u64,
    /// Files written to `tmp` (round graphs, deferred edges, label files, sort spills).
    pub spill_files: u64,
    /// Most nodes held in a round's table.
    pub peak_table_nodes: u64,
}

/// A multiplicative hasher for u64 document keys (murmur3's finalizer).
#[derive(Default, Clone, Copy)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u64(&mut self, x: u64) {
        let mut k = x ^ self.0;
        k ^= k >> 33;
        k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
        k ^= k >> 33;
        k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        k ^= k >> 33;
        self.0 = k;
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type KeyMap = HashMap<u64, u32, BuildHasherDefault<KeyHasher>>;

/// Union-find root with path compression.
pub(crate) fn find(parent: &mut [u32], mut x: u32) -> u32 {
    let mut root = x;
    while parent[root as usize] != root {
        root = parent[root as usize];
    }
    while parent[x as usize] != root {
        let next = parent[x as usize];
        parent[x as usize] = root;
        x = next;
    }
    root
}

/// One round's union-find table.
struct Table {
    index: KeyMap,
    nodes: Vec<Node>,
    parent: Vec<u32>,
}

impl Table {
    fn new(cap: usize) -> Self {
        Self {
            index: KeyMap::with_capacity_and_hasher(cap, Default::default()),
            nodes: Vec::with_capacity(cap),
            parent: Vec::with_capacity(cap),
        }
    }

    fn get_or_insert(&mut self, n: Node) -> u32 {
        let next = self.nodes.len() as u32;
        let i = *self.index.entry(n.key).or_insert(next);
        if i == next {
            self.nodes.push(n);
            self.parent.push(next);
        }
        i
    }

    fn union(&mut self, a: u32, b: u32) {
        let (ra, rb) = (find(&mut self.parent, a), find(&mut self.parent, b));
        if ra == rb {
            return;
        }
        if self.nodes[ra as usize] < self.nodes[rb as usize] {
            self.parent[rb as usize] = ra;
        } else {
            self.parent[ra as usize] = rb;
        }
    }

    /// The node's table root, or the node itself if it is not in the table.
    fn root_of(&mut self, n: Node) -> Node {
        match self.index.get(&n.key) {
            Some(&i) => self.nodes[find(&mut self.parent, i) as usize],
            None => n,
        }
    }
}

/// Labels the components of the graph whose edges are in `inputs` (one-partition `Edge` run
/// files; hit records are skipped) with at most `cap` nodes in memory; `sort_budget` bytes per
/// external sort. Temporary files go to `tmp` (which must exist); the returned label file is in
/// `tmp` too.
pub(crate) fn external_components(
    inputs: &[PathBuf],
    tmp: &Path,
    cap: usize,
    sort_budget: usize,
) -> Result<ExternalReport, StepError> {
    let cap = cap.max(4);
    let mut report = ExternalReport::default();
    let mut graph: Vec<PathBuf> = inputs.to_vec();
    let mut owned = false;
    let mut maps: Vec<PathBuf> = Vec::new();
    loop {
        let round = report.rounds;
        report.rounds += 1;
        let mut table = Table::new(cap);
        let deferred_path = tmp.join(format!("deferred-{round:04}.edges"));
        let mut deferred = RunStreamWriter::<Edge>::create_scratch(&deferred_path)?;
        for path in &graph {
            let mut r = PartReader::<Edge>::open(path, 0, 1 << 16)?;
            while let Some(e) = r.next_record()? {
                if e.b.key == HIT {
                    continue;
                }
                let ia = table.index.get(&e.a.key).copied();
                let ib = table.index.get(&e.b.key).copied();
                let need = ia.is_none() as usize + ib.is_none() as usize;
                if table.nodes.len() + need > cap {
                    deferred.push(e)?;
                    continue;
                }
                let ia = ia.unwrap_or_else(|| table.get_or_insert(e.a));
                let ib = ib.unwrap_or_else(|| table.get_or_insert(e.b));
                table.union(ia, ib);
            }
        }
        report.peak_table_nodes = report.peak_table_nodes.max(table.nodes.len() as u64);
        let n_deferred = deferred.len();
        deferred.finish()?;
        report.deferred_edges += n_deferred;
        // The next round's graph: deferred edges between table roots, distinct, smaller node
        // first (sorted, so the next table fills with whole neighbourhoods).
        let next = if n_deferred > 0 {
            report.spill_files += 1;
            let mut sorter =
                ExternalSorter::<Edge>::new(tmp, &format!("relabel-{round:04}"), sort_budget);
            let mut r = PartReader::<Edge>::open(&deferred_path, 0, 1 << 16)?;
            while let Some(e) = r.next_record()? {
                let (a, b) = (table.root_of(e.a), table.root_of(e.b));
                if a != b {
                    sorter.push(Edge {
                        a: a.min(b),
                        b: a.max(b),
                    })?;
                }
            }
            report.spill_files += sorter.spills() as u64;
            let path = tmp.join(format!("graph-{:04}.edges", round + 1));
            let mut w = RunStreamWriter::<Edge>::create_scratch(&path)?;
            let mut sorted = sorter.finish()?;
            let mut last = None;
            while let Some(e) = sorted.next_record()? {
                if last != Some(e) {
                    w.push(e)?;
                    last = Some(e);
                }
            }
            sorted.cleanup();
            w.finish()?;
            report.spill_files += 1;
            Some(path)
        } else {
            None
        };
        let _ = std::fs::remove_file(&deferred_path);
        // This round's eliminated nodes.
        let Table {
            index,
            nodes,
            mut parent,
        } = table;
        drop(index);
        let mut m: Vec<LabelRec> = Vec::new();
        for i in 0..nodes.len() {
            let r = find(&mut parent, i as u32) as usize;
            if r != i {
                m.push(LabelRec {
                    key: nodes[i].key,
                    root: nodes[r].key,
                });
            }
        }
        drop((nodes, parent));
        m.sort_unstable();
        let map_path = tmp.join(format!("labels-{round:04}.run"));
        let mut w = RunStreamWriter::<LabelRec>::create_scratch(&map_path)?;
        for l in &m {
            w.push(*l)?;
        }
        w.finish()?;
        report.spill_files += 1;
        drop(m);
        maps.push(map_path);
        if owned {
            for g in &graph {
                let _ = std::fs::remove_file(g);
            }
        }
        match next {
            Some(p) => {
                graph = vec![p];
                owned = true;
            }
            None => break,
        }
    }
    report.labels = compose(maps, tmp, sort_budget, &mut report.spill_files)?;
    Ok(report)
}

/// Composes the rounds' label files (last round first) into final labels sorted by key.
fn compose(
    maps: Vec<PathBuf>,
    tmp: &Path,
    sort_budget: usize,
    spill_files: &mut u64,
) -> Result<Option<PathBuf>, StepError> {
    let mut fin: Option<PathBuf> = None;
    for (r, m) in maps.into_iter().enumerate().rev() {
        let Some(later) = fin.take() else {
            fin = Some(m);
            continue;
        };
        // This round's labels by root, each root resolved through the later rounds' labels.
        let mut by_root =
            ExternalSorter::<LabelRec>::new(tmp, &format!("bytarget-{r:04}"), sort_budget);
        let mut rd = PartReader::<LabelRec>::open(&m, 0, 1 << 16)?;
        while let Some(l) = rd.next_record()? {
            by_root.push(LabelRec {
                key: l.root,
                root: l.key,
            })?;
        }
        *spill_files += by_root.spills() as u64;
        let mut by_key =
            ExternalSorter::<LabelRec>::new(tmp, &format!("resolved-{r:04}"), sort_budget);
        let mut sorted = by_root.finish()?;
        let mut lat = PartReader::<LabelRec>::open(&later, 0, 1 << 16)?;
        let mut cur = lat.next_record()?;
        while let Some(l) = sorted.next_record()? {
            while cur.is_some_and(|c| c.key < l.key) {
                cur = lat.next_record()?;
            }
            let root = match cur {
                Some(c) if c.key == l.key => c.root,
                _ => l.key,
            };
            by_key.push(LabelRec { key: l.root, root })?;
        }
        sorted.cleanup();
        *spill_files += by_key.spills() as u64;
        // Merge with the later labels (disjoint keys: a node is eliminated once).
        let out = tmp.join(format!("final-{r:04}.run"));
        let mut w = RunStreamWriter::<LabelRec>::create_scratch(&out)?;
        let mut a = by_key.finish()?;
        let mut b = PartReader::<LabelRec>::open(&later, 0, 1 << 16)?;
        let (mut x, mut y) = (a.next_record()?, b.next_record()?);
        loop {
            match (x, y) {
                (Some(p), Some(q)) if p.key <= q.key => {
                    w.push(p)?;
                    x = a.next_record()?;
                }
                (_, Some(q)) => {
                    w.push(q)?;
                    y = b.next_record()?;
                }
                (Some(p), None) => {
                    w.push(p)?;
                    x = a.next_record()?;
                }
                (None, None) => break,
            }
        }
        a.cleanup();
        w.finish()?;
        *spill_files += 1;
        let _ = std::fs::remove_file(&m);
        let _ = std::fs::remove_file(&later);
        fin = Some(out);
    }
    Ok(fin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runs::write_run;

    fn node(k: u64) -> Node {
        // A priority that disagrees with key order for some nodes, as with keep = "highest".
        Node {
            prio: (k % 7 == 3) as u32 * 5 + (k % 5 == 1) as u32,
            key: k,
        }
    }

    /// Reference labels by in-memory union-find: best node of each component.
    fn reference(edges: &[(u64, u64)]) -> Vec<LabelRec> {
        let mut keys: Vec<u64> = edges.iter().flat_map(|&(a, b)| [a, b]).collect();
        keys.sort_unstable();
        keys.dedup();
        let idx = |k: u64| keys.binary_search(&k).unwrap() as u32;
        let mut parent: Vec<u32> = (0..keys.len() as u32).collect();
        for &(a, b) in edges {
            let (ra, rb) = (find(&mut parent, idx(a)), find(&mut parent, idx(b)));
            if ra != rb {
                if node(keys[ra as usize]) < node(keys[rb as usize]) {
                    parent[rb as usize] = ra;
                } else {
                    parent[ra as usize] = rb;
                }
            }
        }
        let mut out = Vec::new();
        for i in 0..keys.len() {
            let r = find(&mut parent, i as u32) as usize;
            if r != i {
                out.push(LabelRec {
                    key: keys[i],
                    root: keys[r],
                });
            }
        }
        out
    }

    fn run(edges: &[(u64, u64)], files: usize, cap: usize) -> (Vec<LabelRec>, ExternalReport) {
        let dir = tempfile::tempdir().unwrap();
        let mut inputs = Vec::new();
        for (f, chunk) in edges.chunks(edges.len().div_ceil(files).max(1)).enumerate() {
            let recs: Vec<Edge> = chunk
                .iter()
                .map(|&(a, b)| Edge {
                    a: node(a),
                    b: node(b),
                })
                .collect();
            let p = dir.path().join(format!("in-{f}.edges"));
            write_run(&p, &[recs.len() as u64], recs.iter()).unwrap();
            inputs.push(p);
        }
        let tmp = dir.path().join("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        let report = external_components(&inputs, &tmp, cap, 4096).unwrap();
        let mut got = Vec::new();
        if let Some(p) = &report.labels {
            let mut r = PartReader::<LabelRec>::open(p, 0, 4096).unwrap();
            while let Some(l) = r.next_record().unwrap() {
                got.push(l);
            }
        }
        (got, report)
    }

    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % n
        }
    }

    #[test]
    fn same_components_as_in_memory_union_find_for_any_table_size() {
        let mut rng = Rng(7);
        let mut graphs: Vec<(&str, Vec<(u64, u64)>)> = Vec::new();
        // A long path in shuffled order (diameter 999), priorities out of key order.
        let mut path: Vec<(u64, u64)> = (0..999u64).map(|i| (i * 3 + 1, i * 3 + 4)).collect();
        for i in (1..path.len()).rev() {
            path.swap(i, rng.below(i as u64 + 1) as usize);
        }
        graphs.push(("path", path));
        // Stars, as the buckets stage writes them, repeated across "bands".
        let mut stars = Vec::new();
        for band in 0..3u64 {
            for c in 0..200u64 {
                for m in 1..(c % 6 + 2) {
                    stars.push((c * 100 + band % 2, c * 100 + m + band));
                }
            }
        }
        graphs.push(("stars", stars));
        // Sparse random graph: many components of all sizes, self-loops and repeated edges.
        let random: Vec<(u64, u64)> = (0..1200)
            .map(|_| (rng.below(1000) * 11, rng.below(1000) * 11))
            .filter(|(a, b)| a != b)
            .collect();
        graphs.push(("random", random));
        for (name, edges) in &graphs {
            let expect = reference(edges);
            assert!(!expect.is_empty());
            for (cap, files) in [(1 << 20, 1), (4, 1), (17, 3), (64, 2), (500, 5)] {
                let (got, report) = run(edges, files, cap);
                assert_eq!(got, expect, "{name}: cap {cap}, {files} files");
                assert!(report.peak_table_nodes <= cap as u64, "{name}: {report:?}");
                if cap < 100 {
                    assert!(report.rounds > 1, "{name}: cap {cap} needs rounds");
                    assert!(report.spill_files > report.rounds, "{report:?}");
                }
            }
        }
    }

    #[test]
    fn no_edges_no_labels() {
        let (got, report) = run(&[], 1, 16);
        assert!(got.is_empty());
        assert_eq!(report.rounds, 1);
    }
}
