//! The per-thread split cache the word-based steps of a chain share ([`shared_words`]).

use super::*;

/// Upper bound on the words the per-thread split cache holds (8 bytes each) before it is
/// emptied: 2 Mi words = 16 MiB, several default batches (256 documents) of web text, so the
/// steps of a chain find every text of a batch split (a batch larger than the cache only costs
/// re-splits). 512 Ki words measured slower on the FineWeb chain.
const SHARED_CAP: usize = 2 << 20;

/// The word splits of recent texts on this thread, keyed by a 128-bit hash of the text.
///
/// The word-based steps of a chain (`gopher_repetition`, `gopher_quality`, `fineweb_quality`)
/// see the same texts one after the other on the same thread; a split is a pure function of the
/// text, so the second and third step reuse the first one's words instead of splitting again.
/// A rewritten text (e.g. after `c4_quality`) has another hash and is split anew.
#[derive(Default)]
struct SharedSplits {
    splitter: WordSplitter,
    spans: Vec<Span>,
    /// Low 64 bits of the text's xxh3-128 → (high 64 bits, range in `spans`).
    index: HashMap64<(u64, usize, usize)>,
}

thread_local! {
    static SHARED: std::cell::RefCell<SharedSplits> = std::cell::RefCell::new(SharedSplits::default());
}

/// Calls `f` with the words of `text` (as [`WordSplitter::split`] returns them), reusing the split
/// of an identical text made earlier on this thread. `f` must not call `shared_words` itself.
pub fn shared_words<R>(text: &str, f: impl FnOnce(&[Span]) -> R) -> R {
    SHARED.with(|cell| {
        let mut guard = cell.borrow_mut();
        let c = &mut *guard;
        let h = xxhash_rust::xxh3::xxh3_128(text.as_bytes());
        let (lo, hi) = (h as u64, (h >> 64) as u64);
        if let Some(&(h2, a, b)) = c.index.get(&lo)
            && h2 == hi
        {
            return f(&c.spans[a..b]);
        }
        if c.spans.len() > SHARED_CAP {
            c.spans.clear();
            c.index.clear();
        }
        let start = c.spans.len();
        c.splitter.tokens(text, &mut c.spans, false);
        let end = c.spans.len();
        c.index.insert(lo, (hi, start, end));
        f(&c.spans[start..end])
    })
}

/// Records `words` as the split of `text` in this thread's split cache, for a text built from
/// pieces whose words are known (e.g. `c4_quality`'s kept lines joined by `\n`). `words` must be
/// exactly what [`WordSplitter::split`] returns for `text`.
pub fn share_words(text: &str, words: &[Span]) {
    SHARED.with(|cell| {
        let mut guard = cell.borrow_mut();
        let c = &mut *guard;
        let h = xxhash_rust::xxh3::xxh3_128(text.as_bytes());
        let (lo, hi) = (h as u64, (h >> 64) as u64);
        if c.index.get(&lo).is_some_and(|&(h2, _, _)| h2 == hi) {
            return;
        }
        if c.spans.len() > SHARED_CAP {
            c.spans.clear();
            c.index.clear();
        }
        let start = c.spans.len();
        c.spans.extend_from_slice(words);
        c.index.insert(lo, (hi, start, c.spans.len()));
    });
}

/// Empties this thread's split cache (benchmarks use it to time each filter's own split).
pub fn clear_shared_words() {
    SHARED.with(|cell| {
        let mut c = cell.borrow_mut();
        c.spans.clear();
        c.index.clear();
    });
}
