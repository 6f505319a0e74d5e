//! The binary-heap operations fastText's top-k selection runs through (`std::push_heap`,
//! `pop_heap`, `sort_heap` over `(log probability, label)` pairs ordered by "greater score
//! first"), reimplemented step for step as GCC's standard library performs them, so that labels
//! with equal scores come out in the same order as fastText's.

/// (log probability, label or tree node).
pub(crate) type Pair = (f32, i32);

/// fastText's `comparePairs`: `l` sorts before `r` when its score is greater.
#[inline(always)]
fn comp(l: &Pair, r: &Pair) -> bool {
    l.0 > r.0
}

/// Moves `value` up from `hole` towards `top`.
fn sift_up(h: &mut [Pair], mut hole: usize, top: usize, value: Pair) {
    while hole > top {
        let parent = (hole - 1) / 2;
        if !comp(&h[parent], &value) {
            break;
        }
        h[hole] = h[parent];
        hole = parent;
    }
    h[hole] = value;
}

/// Moves the hole at `hole` down to a leaf, then `value` up into place (`len` elements).
fn adjust(h: &mut [Pair], mut hole: usize, len: usize, value: Pair) {
    let top = hole;
    let mut second = hole;
    while second < (len - 1) / 2 {
        second = 2 * (second + 1);
        if comp(&h[second], &h[second - 1]) {
            second -= 1;
        }
        h[hole] = h[second];
        hole = second;
    }
    if len & 1 == 0 && second == (len - 2) / 2 {
        second = 2 * (second + 1);
        h[hole] = h[second - 1];
        hole = second - 1;
    }
    sift_up(h, hole, top, value);
}

/// `std::push_heap`: the last element joins the heap before it.
pub(crate) fn push(h: &mut [Pair]) {
    let last = h.len() - 1;
    let value = h[last];
    sift_up(h, last, 0, value);
}

/// `std::pop_heap`: the front moves to the end; the rest is a heap again.
pub(crate) fn pop(h: &mut [Pair]) {
    let len = h.len();
    if len > 1 {
        let last = len - 1;
        let value = h[last];
        h[last] = h[0];
        adjust(h, 0, last, value);
    }
}

/// `std::sort_heap`: the heap becomes sorted, greatest score first.
pub(crate) fn sort(h: &mut [Pair]) {
    let mut len = h.len();
    while len > 1 {
        len -= 1;
        let value = h[len];
        h[len] = h[0];
        adjust(h, 0, len, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pushing in any order then sorting gives scores in descending order, and the front of the
    /// heap is always its smallest score.
    #[test]
    fn heap_orders_by_descending_score() {
        let mut state = 12345u64;
        for len in 0..40 {
            let mut h: Vec<Pair> = Vec::new();
            for i in 0..len {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                h.push((((state >> 33) % 7) as f32, i));
                push(&mut h);
                let min = h.iter().map(|p| p.0).fold(f32::INFINITY, f32::min);
                assert_eq!(h[0].0, min);
            }
            sort(&mut h);
            assert!(h.windows(2).all(|w| w[0].0 >= w[1].0), "{h:?}");
            let mut ids: Vec<i32> = h.iter().map(|p| p.1).collect();
            ids.sort();
            assert_eq!(ids, (0..len).collect::<Vec<_>>());
        }
    }

    #[test]
    fn pop_removes_the_smallest() {
        let mut h: Vec<Pair> = Vec::new();
        for (i, s) in [3.0, 1.0, 2.0, 5.0, 4.0].into_iter().enumerate() {
            h.push((s, i as i32));
            push(&mut h);
        }
        pop(&mut h);
        assert_eq!(h.pop(), Some((1.0, 1)));
    }
}
