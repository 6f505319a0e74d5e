//! From the hidden vector to label scores: softmax, one-vs-all / negative sampling (sigmoids from
//! fastText's 512-step table) and hierarchical softmax (a Huffman tree over the label counts,
//! searched depth-first), each as fastText computes it, rounding included.

use crate::heap::{self, Pair};
use crate::matrix::Matrix;

const SIGMOID_TABLE_SIZE: usize = 512;
const MAX_SIGMOID: f32 = 8.0;

/// fastText's `std_log`: `log(x + 1e-5)` in double precision, rounded to `f32`.
#[inline]
pub(crate) fn std_log(x: f32) -> f32 {
    (x as f64 + 1e-5).ln() as f32
}

/// The loss a model was trained with (`args.loss`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossKind {
    /// Hierarchical softmax (`hs`).
    HierarchicalSoftmax,
    /// Negative sampling (`ns`): predicts with independent sigmoids, as one-vs-all.
    NegativeSampling,
    /// Softmax.
    Softmax,
    /// One-vs-all (`ova`): an independent sigmoid per label.
    OneVsAll,
}

impl LossKind {
    pub(crate) fn from_code(c: i32) -> Option<Self> {
        Some(match c {
            1 => LossKind::HierarchicalSoftmax,
            2 => LossKind::NegativeSampling,
            3 => LossKind::Softmax,
            4 => LossKind::OneVsAll,
            _ => return None,
        })
    }

    /// fastText's name (`hs`, `ns`, `softmax`, `ova`).
    pub fn name(self) -> &'static str {
        match self {
            LossKind::HierarchicalSoftmax => "hs",
            LossKind::NegativeSampling => "ns",
            LossKind::Softmax => "softmax",
            LossKind::OneVsAll => "ova",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Node {
    left: i32,
    right: i32,
    parent: i32,
    count: i64,
}

#[derive(Debug)]
pub(crate) enum Loss {
    Softmax,
    Sigmoid(Vec<f32>),
    /// `depth`: the most internal nodes on a path from the root to a leaf.
    Hs {
        tree: Vec<Node>,
        osz: usize,
        depth: usize,
    },
}

impl Loss {
    /// The loss for `kind`; `None` when hierarchical softmax cannot build its tree from
    /// `label_counts` (negative or absurd counts).
    pub(crate) fn new(kind: LossKind, label_counts: &[i64]) -> Option<Self> {
        Some(match kind {
            LossKind::Softmax => Loss::Softmax,
            LossKind::OneVsAll | LossKind::NegativeSampling => Loss::Sigmoid(sigmoid_table()),
            LossKind::HierarchicalSoftmax => {
                let osz = label_counts.len();
                let tree = huffman(label_counts);
                if !well_formed(&tree, osz) {
                    return None;
                }
                let depth = depth(&tree, osz);
                Loss::Hs { tree, osz, depth }
            }
        })
    }

    /// The first label of what [`Self::predict`] returns with every label (`k` = all) and
    /// `threshold` 0 — computed with far less work where the loss allows it, exactly.
    ///
    /// Hierarchical softmax: fastText's depth-first search, which with every label visits all
    /// of the tree, skips a subtree here when no leaf under it can reach the best leaf found so
    /// far (a leaf's log probability can exceed its ancestor's only by `std_log`'s `1e-5` per
    /// level: [`LEVEL_GAIN`] × the tree's depth bounds it). Every leaf it scores gets the very
    /// additions the full search makes, and every leaf it skips scores below the best, so the
    /// best is the full ranking's first — unless two leaves share the best score, which only the
    /// full ranking's heap order settles ([`Best::Tied`]: then call `predict`). Other losses
    /// return `None` (use `predict`).
    pub(crate) fn best(&self, wo: &Matrix, hidden: &[f32]) -> Option<Best> {
        let Loss::Hs { tree, osz, depth } = self else {
            return None;
        };
        let mut search = BestDfs {
            min: std_log(0.0),
            slack: LEVEL_GAIN * (*depth as f32 + 1.0),
            tree: Tree {
                nodes: tree,
                osz: *osz,
                wo,
                hidden,
            },
            best: None,
            tied: false,
        };
        search.visit(search.tree.root(), 0.0);
        Some(match (search.best, search.tied) {
            (_, true) => Best::Tied,
            (Some(b), false) => Best::One(b),
            (None, false) => Best::None,
        })
    }

    /// Whether at most one label can have a probability above `t` (as [`Self::predict`] reports
    /// it), so that the best label alone says whether any label passes `t`. Hierarchical
    /// softmax: two leaves share the path above the node where they part, whose two branches
    /// carry `f` and `1 − f`; each factor of a path is at most 1 plus `std_log`'s `1e-5`, so the
    /// two probabilities sum to at most `(1 + 1e-5)^(depth + 2)`, times the rounding of the
    /// scores' `f32` sums (under `5e-7` per level while scores stay above fastText's
    /// `log(1e-5)` floor) and of `exp` — bounded here with room to spare. Two labels above `t`
    /// need `2t` below that. Other losses: not claimed (one-vs-all labels are independent).
    pub(crate) fn exclusive_above(&self, t: f64) -> bool {
        match self {
            Loss::Hs { depth, .. } => {
                let levels = *depth as f64 + 2.0;
                let sum_bound = (1.0f64 + 1e-5).powf(levels) * (1.0 + 1e-4 + 2e-6 * levels);
                2.0 * t > sum_bound
            }
            _ => false,
        }
    }

    /// The `k` best labels with probability ≥ `threshold` into `heap`, sorted best first, as
    /// (log probability, label). `output` is scratch of `nlabels` values.
    pub(crate) fn predict(
        &self,
        wo: &Matrix,
        hidden: &[f32],
        k: usize,
        threshold: f32,
        output: &mut [f32],
        heap: &mut Vec<Pair>,
    ) {
        heap.clear();
        match self {
            Loss::Softmax => {
                for (i, o) in output.iter_mut().enumerate() {
                    *o = wo.dot_row(hidden, i);
                }
                let mut max = output[0];
                for &o in output.iter() {
                    // std::max(output[i], max)
                    if o < max {
                        continue;
                    }
                    max = o;
                }
                let mut z = 0.0f32;
                for o in output.iter_mut() {
                    // unqualified `exp` on a float: the double-precision one
                    *o = ((*o - max) as f64).exp() as f32;
                    z += *o;
                }
                for o in output.iter_mut() {
                    *o /= z;
                }
                find_k_best(k, threshold, output, heap);
            }
            Loss::Sigmoid(table) => {
                for (i, o) in output.iter_mut().enumerate() {
                    *o = sigmoid(table, wo.dot_row(hidden, i));
                }
                find_k_best(k, threshold, output, heap);
            }
            Loss::Hs { tree, osz, .. } => {
                let mut search = Dfs {
                    k,
                    min: std_log(threshold),
                    tree: Tree {
                        nodes: tree,
                        osz: *osz,
                        wo,
                        hidden,
                    },
                    heap,
                };
                search.visit(search.tree.root(), 0.0);
            }
        }
        heap::sort(heap);
    }
}

/// What the best label's search found ([`Loss::best`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Best {
    /// One label scores highest: the first of the full ranking.
    One(Pair),
    /// No label reaches the threshold: the full ranking is empty.
    None,
    /// Two labels share the highest score: only the full ranking orders them.
    Tied,
}

/// The largest amount `std_log` can add on one tree level: `log(1 + 1e-5)` for a sigmoid of
/// exactly 1, plus an `f32` rounding of the running score (≤ 1e-6 while the score lies above
/// fastText's `log(1e-5)` floor), with room to spare.
const LEVEL_GAIN: f32 = 2e-5;

/// fastText's `Loss::findKBest`.
fn find_k_best(k: usize, threshold: f32, output: &[f32], heap: &mut Vec<Pair>) {
    for (i, &o) in output.iter().enumerate() {
        if o < threshold {
            continue;
        }
        let l = std_log(o);
        if heap.len() == k && l < heap[0].0 {
            continue;
        }
        heap.push((l, i as i32));
        heap::push(heap);
        if heap.len() > k {
            heap::pop(heap);
            heap.pop();
        }
    }
}

/// fastText's sigmoid lookup table (`t_sigmoid_`, 513 entries over [−8, 8]).
fn sigmoid_table() -> Vec<f32> {
    (0..=SIGMOID_TABLE_SIZE)
        .map(|i| {
            let x = (i as i64 * 2 * MAX_SIGMOID as i64) as f32 / SIGMOID_TABLE_SIZE as f32
                - MAX_SIGMOID;
            (1.0f64 / (1.0f64 + (-x).exp() as f64)) as f32
        })
        .collect()
}

/// fastText's `Loss::sigmoid`: the table entry below `x`.
#[inline]
fn sigmoid(table: &[f32], x: f32) -> f32 {
    if x < -MAX_SIGMOID {
        0.0
    } else if x > MAX_SIGMOID {
        1.0
    } else {
        let i = ((x + MAX_SIGMOID) * SIGMOID_TABLE_SIZE as f32 / MAX_SIGMOID / 2.0) as i64;
        table[i as usize]
    }
}

/// fastText's `HierarchicalSoftmaxLoss::buildTree`: leaves are labels in dictionary order
/// (counts descending), internal nodes follow; two queues merged by count.
fn huffman(counts: &[i64]) -> Vec<Node> {
    let osz = counts.len();
    let mut tree = vec![
        Node {
            left: -1,
            right: -1,
            parent: -1,
            count: 1_000_000_000_000_000,
        };
        2 * osz - 1
    ];
    for (n, &c) in tree.iter_mut().zip(counts) {
        n.count = c;
    }
    let mut leaf = osz as i64 - 1;
    let mut node = osz;
    for i in osz..2 * osz - 1 {
        let mut mini = [0usize; 2];
        for m in &mut mini {
            // (a node not built yet counts 1e15; past the end cannot happen with valid counts)
            let node_count = tree.get(node).map_or(i64::MAX, |n| n.count);
            if leaf >= 0 && tree[leaf as usize].count < node_count {
                *m = leaf as usize;
                leaf -= 1;
            } else {
                *m = node;
                node += 1;
            }
        }
        tree[i].left = mini[0] as i32;
        tree[i].right = mini[1] as i32;
        tree[i].count = tree[mini[0]].count.wrapping_add(tree[mini[1]].count);
        tree[mini[0]].parent = i as i32;
        tree[mini[1]].parent = i as i32;
    }
    tree
}

/// Whether every internal node's children come before it (true for label counts in
/// `0..1e15`; the depth-first search relies on it to end).
fn well_formed(tree: &[Node], osz: usize) -> bool {
    tree.iter().enumerate().skip(osz).all(|(i, n)| {
        n.left >= 0 && (n.left as usize) < i && n.right >= 0 && (n.right as usize) < i
    })
}

/// A hierarchical softmax's tree with one hidden vector: what both searches walk.
struct Tree<'a> {
    nodes: &'a [Node],
    osz: usize,
    wo: &'a Matrix,
    hidden: &'a [f32],
}

impl Tree<'_> {
    fn root(&self) -> i32 {
        2 * self.osz as i32 - 2
    }

    /// The children of `node` reached with log probability `score`, and theirs, with
    /// fastText's arithmetic to the bit; `None` for a leaf.
    #[inline]
    fn children(&self, node: i32, score: f32) -> Option<[(i32, f32); 2]> {
        let n = self.nodes[node as usize];
        if n.left == -1 && n.right == -1 {
            return None;
        }
        let f = self.wo.dot_row(self.hidden, node as usize - self.osz);
        // f = 1. / (1 + std::exp(-f)): float exp and sum, double division
        let f = (1.0f64 / (1.0f32 + (-f).exp()) as f64) as f32;
        Some([
            (n.left, score + std_log((1.0f64 - f as f64) as f32)),
            (n.right, score + std_log(f)),
        ])
    }
}

/// fastText's `HierarchicalSoftmaxLoss::dfs`.
struct Dfs<'a> {
    k: usize,
    min: f32,
    tree: Tree<'a>,
    heap: &'a mut Vec<Pair>,
}

impl Dfs<'_> {
    fn visit(&mut self, node: i32, score: f32) {
        if score < self.min {
            return;
        }
        if self.heap.len() == self.k && score < self.heap[0].0 {
            return;
        }
        match self.tree.children(node, score) {
            None => {
                self.heap.push((score, node));
                heap::push(self.heap);
                if self.heap.len() > self.k {
                    heap::pop(self.heap);
                    self.heap.pop();
                }
            }
            Some([left, right]) => {
                self.visit(left.0, left.1);
                self.visit(right.0, right.1);
            }
        }
    }
}

/// The most internal nodes on a path from the root to a leaf of a well-formed tree.
fn depth(tree: &[Node], osz: usize) -> usize {
    // parents come after their children: one pass from the root down
    let mut d = vec![0usize; tree.len()];
    let mut most = 0;
    for i in (0..tree.len()).rev() {
        let p = tree[i].parent;
        if p >= 0 {
            d[i] = d[p as usize] + 1;
        }
        if i < osz {
            most = most.max(d[i]);
        }
    }
    most
}

/// The best leaf of fastText's `HierarchicalSoftmaxLoss::dfs` with every label and threshold 0,
/// pruned ([`Loss::best`]).
struct BestDfs<'a> {
    min: f32,
    slack: f32,
    tree: Tree<'a>,
    best: Option<Pair>,
    tied: bool,
}

impl BestDfs<'_> {
    fn visit(&mut self, node: i32, score: f32) {
        // fastText's own cut (the threshold's), unchanged
        if score < self.min {
            return;
        }
        // no leaf below can reach the best so far (not even tie it)
        if let Some((b, _)) = self.best
            && score + self.slack < b
        {
            return;
        }
        match self.tree.children(node, score) {
            None => match self.best {
                Some((b, _)) if score < b => {}
                Some((b, _)) if score == b => self.tied = true,
                _ => {
                    self.best = Some((score, node));
                    self.tied = false;
                }
            },
            // the likelier side first: the best is found early and prunes the rest
            Some([left, right]) if right.1 > left.1 => {
                self.visit(right.0, right.1);
                self.visit(left.0, left.1);
            }
            Some([left, right]) => {
                self.visit(left.0, left.1);
                self.visit(right.0, right.1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dense(rows: usize, cols: usize, data: Vec<f32>) -> Matrix {
        Matrix::Dense(crate::matrix::Dense { rows, cols, data })
    }

    /// The full ranking's first pair (`predict` with every label, threshold 0).
    fn full_first(loss: &Loss, wo: &Matrix, hidden: &[f32]) -> Option<Pair> {
        let mut output = vec![0.0; 64];
        let mut heap = Vec::new();
        loss.predict(wo, hidden, usize::MAX, 0.0, &mut output, &mut heap);
        heap.first().copied()
    }

    /// The pruned search finds exactly the full ranking's first label on random trees and
    /// weights (flat and peaked distributions, many leaves under fastText's 1e-5 floor), and
    /// says `Tied` when two leaves share the best score.
    #[test]
    fn best_is_the_full_rankings_first() {
        let mut state = 7u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u32
        };
        let (mut one, mut none) = (0, 0);
        for trial in 0..3_000 {
            let osz = 2 + next() as usize % 60;
            let mut counts: Vec<i64> = (0..osz).map(|_| 1 + next() as i64 % 1000).collect();
            counts.sort_unstable_by(|a, b| b.cmp(a));
            let loss = Loss::new(LossKind::HierarchicalSoftmax, &counts).unwrap();
            let dim = 4;
            let scale = [0.1f32, 1.0, 4.0, 30.0][trial % 4];
            let data: Vec<f32> = (0..(osz - 1) * dim)
                .map(|_| (next() as f32 / u32::MAX as f32 * 2.0 - 1.0) * scale)
                .collect();
            let wo = dense(osz - 1, dim, data);
            let hidden: Vec<f32> = (0..dim)
                .map(|_| next() as f32 / u32::MAX as f32 * 2.0 - 1.0)
                .collect();
            let full = full_first(&loss, &wo, &hidden);
            match loss.best(&wo, &hidden).unwrap() {
                Best::One(p) => {
                    assert_eq!(Some(p), full, "trial {trial}");
                    one += 1;
                }
                Best::None => {
                    assert_eq!(full, None, "trial {trial}");
                    none += 1;
                }
                Best::Tied => panic!("trial {trial}: a tie among random weights"),
            }
        }
        // (a tree's leaves share a probability of 1, so some leaf always passes the 1e-5 floor)
        assert_eq!((one, none), (3_000, 0));
        // all-zero weights: every sigmoid is 0.5, so leaves at the same depth tie
        let loss = Loss::new(LossKind::HierarchicalSoftmax, &[1, 1, 1, 1]).unwrap();
        let wo = dense(3, 2, vec![0.0; 6]);
        assert_eq!(loss.best(&wo, &[0.0, 0.0]), Some(Best::Tied));
        // … and the shallowest leaf wins alone when depths differ
        let loss = Loss::new(LossKind::HierarchicalSoftmax, &[10, 5, 3, 1]).unwrap();
        let best = loss.best(&wo, &[0.0, 0.0]);
        assert_eq!(
            best,
            Some(Best::One(full_first(&loss, &wo, &[0.0, 0.0]).unwrap()))
        );
        // other losses leave it to `predict`
        assert_eq!(Loss::Softmax.best(&wo, &[0.0, 0.0]), None);
    }

    /// Two labels above `t` are impossible for a hierarchical softmax when `t` is clearly above
    /// one half, possible below it.
    #[test]
    fn exclusive_above_half_only() {
        let loss = Loss::new(LossKind::HierarchicalSoftmax, &[5, 4, 3, 2, 1]).unwrap();
        assert!(loss.exclusive_above(0.65));
        assert!(loss.exclusive_above(0.51));
        assert!(!loss.exclusive_above(0.5));
        assert!(!loss.exclusive_above(0.3));
        assert!(!Loss::Softmax.exclusive_above(0.9));
    }

    #[test]
    fn huffman_tree_merges_smallest_counts_first() {
        // counts descending, as fastText's dictionary sorts labels
        let t = huffman(&[10, 5, 3, 1]);
        assert_eq!(t.len(), 7);
        // first merge: the two smallest leaves (3 and 1 → node 4), then 5 with node 4 (count 9),
        // then 10 with node 5
        assert_eq!((t[4].left, t[4].right, t[4].count), (3, 2, 4));
        assert_eq!((t[5].left, t[5].right, t[5].count), (4, 1, 9));
        assert_eq!((t[6].left, t[6].right, t[6].count), (5, 0, 19));
        assert_eq!(t[6].parent, -1);
    }

    #[test]
    fn sigmoid_table_matches_the_logistic_function() {
        let t = sigmoid_table();
        assert_eq!(t.len(), 513);
        assert!((t[256] - 0.5).abs() < 1e-7);
        assert_eq!(sigmoid(&t, 9.0), 1.0);
        assert_eq!(sigmoid(&t, -9.0), 0.0);
        assert!((sigmoid(&t, 1.0) - 0.731).abs() < 0.01);
    }
}
