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
    Hs { tree: Vec<Node>, osz: usize },
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
                Loss::Hs { tree, osz }
            }
        })
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
            Loss::Hs { tree, osz } => {
                let mut search = Dfs {
                    k,
                    min: std_log(threshold),
                    tree,
                    osz: *osz,
                    wo,
                    hidden,
                    heap,
                };
                search.visit(2 * *osz as i32 - 2, 0.0);
            }
        }
        heap::sort(heap);
    }
}

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

/// fastText's `HierarchicalSoftmaxLoss::dfs`.
struct Dfs<'a> {
    k: usize,
    min: f32,
    tree: &'a [Node],
    osz: usize,
    wo: &'a Matrix,
    hidden: &'a [f32],
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
        let n = self.tree[node as usize];
        if n.left == -1 && n.right == -1 {
            self.heap.push((score, node));
            heap::push(self.heap);
            if self.heap.len() > self.k {
                heap::pop(self.heap);
                self.heap.pop();
            }
            return;
        }
        let f = self.wo.dot_row(self.hidden, node as usize - self.osz);
        // f = 1. / (1 + std::exp(-f)): float exp and sum, double division
        let f = (1.0f64 / (1.0f32 + (-f).exp()) as f64) as f32;
        self.visit(n.left, score + std_log((1.0f64 - f as f64) as f32));
        self.visit(n.right, score + std_log(f));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
