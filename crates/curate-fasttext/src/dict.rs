//! The dictionary: words and labels, and how a line of text becomes input-matrix rows exactly as
//! fastText's `Dictionary::getLine` makes them (whitespace tokens, an end-of-sentence token,
//! each word's id and character n-grams, word n-grams, all hashed into `bucket` rows).

use crate::error::LoadError;
use crate::read::Reader;

/// The end-of-sentence token fastText adds at a newline.
pub const EOS: &[u8] = b"</s>";
/// The prefix that makes a token a label.
pub const LABEL_PREFIX: &[u8] = b"__label__";

/// fastText's string hash: 32-bit FNV-1a over the bytes taken as *signed* chars.
#[inline]
pub fn hash(bytes: &[u8]) -> u32 {
    let mut h = FNV_OFFSET;
    for &b in bytes {
        h = fnv_step(h, b);
    }
    h
}

const FNV_OFFSET: u32 = 2_166_136_261;

#[inline(always)]
fn fnv_step(h: u32, b: u8) -> u32 {
    // `uint32_t(int8_t(c))`: bytes ≥ 0x80 are sign-extended.
    (h ^ (b as i8 as i32 as u32)).wrapping_mul(16_777_619)
}

/// fastText's token separators (`Dictionary::readWord`): space, `\n`, `\r`, `\t`, `\v`, `\f`, NUL.
#[inline(always)]
fn is_space(b: u8) -> bool {
    const SPACES: u64 =
        1 << b' ' | 1 << b'\n' | 1 << b'\r' | 1 << b'\t' | 1 << 0x0b | 1 << 0x0c | 1;
    b <= b' ' && SPACES >> b & 1 == 1
}

/// How a newline in the text is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Newline {
    /// As fastText reads a line: the first newline ends the text (what follows is not read).
    EndsLine,
    /// As a space (what datatrove's `text.replace("\n", " ")` does before predicting).
    Space,
}

/// Word and label entries, the lookup table and each word's precomputed subword rows.
#[derive(Debug)]
pub(crate) struct Dictionary {
    /// Every entry's bytes, concatenated.
    arena: Vec<u8>,
    /// (start, end) of each entry in `arena`; words first, then labels.
    spans: Vec<(u32, u32)>,
    pub(crate) nwords: i32,
    pub(crate) nlabels: i32,
    /// Label counts in label order (the Huffman tree of hierarchical softmax is built on them).
    pub(crate) label_counts: Vec<i64>,
    /// Open-addressing table: (hash, entry id), id −1 = empty.
    table: Vec<(u32, i32)>,
    table_mask: usize,
    /// Input rows of word `i`: `subwords[sub_start[i]..sub_start[i + 1]]` (the word's own id,
    /// then its character n-grams, as `Dictionary::initNgrams`).
    subwords: Vec<i32>,
    sub_start: Vec<u32>,
    /// `pruneidx_size` from the file: −1 not pruned, 0 no n-gram rows, > 0 the rows in `prune`.
    pruneidx_size: i64,
    prune: PruneMap,
    pub(crate) minn: i32,
    pub(crate) maxn: i32,
    pub(crate) bucket: u32,
    /// Lemire's fastmod constant for `bucket` (`h % bucket` without a division).
    bucket_m: u64,
    pub(crate) word_ngrams: i32,
    /// Rows an n-gram id can reach beyond `nwords` (for checking the input matrix's size).
    pub(crate) ngram_rows: u64,
    /// This dictionary's identity for scratch memos ([`Memo`]).
    id: u64,
}

/// Per-thread buffers for turning a line into rows.
#[derive(Debug, Default)]
pub(crate) struct LineBuf {
    pub(crate) ids: Vec<i32>,
    hashes: Vec<i32>,
    word: Vec<u8>,
    /// Working memory of [`Dictionary::char_ngrams`].
    buckets: Vec<u32>,
    /// The line's tokens: (start, end, hash).
    toks: Vec<(usize, usize, u32)>,
    memo: Memo,
}

/// Tokens [`Dictionary::line`] reads ahead in its first pass (its working memory per line).
const LINE_WINDOW: usize = 4096;
/// Rows [`Dictionary::line`] gathers before it hands them on.
const FLUSH_ROWS: usize = 1 << 15;

/// Token bytes a memo slot holds (longer tokens are always computed).
const MEMO_KEY: usize = 21;
/// Input rows a memo slot holds (a token with more is always computed).
const MEMO_IDS: usize = 10;
/// Memo slots (direct-mapped by the token's hash): 8,192 × 64 bytes = 512 KiB per scratch (on
/// lid.176 and FineWeb text ≈ 69 % of tokens hit; larger memos hit more but miss the cache).
const MEMO_SLOTS: usize = 1 << 13;

/// One memoized token: its bytes, whether it adds a hash for word n-grams, and its input rows in
/// the order fastText lists them (one 64-byte cache line; ≈ 98 % of FineWeb tokens fit).
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
struct Slot {
    /// Token length; 0 = empty (tokens are never empty).
    klen: u8,
    /// Rows in `ids`.
    n: u8,
    /// Whether the token pushes its hash (a word or an unknown non-label token).
    hashed: bool,
    key: [u8; MEMO_KEY],
    ids: [i32; MEMO_IDS],
}

const _: () = assert!(std::mem::size_of::<Slot>() == 64);

const EMPTY_SLOT: Slot = Slot {
    klen: 0,
    n: 0,
    hashed: false,
    key: [0; MEMO_KEY],
    ids: [0; MEMO_IDS],
};

/// A per-scratch, fixed-size memo from a token's exact bytes to the input rows it adds (what
/// [`Dictionary::token`] computes: the word's precomputed subwords, or an unknown word's
/// character n-gram rows). It only saves the dictionary look-up and the n-gram hashing: a hit
/// yields the very rows, in the very order, that computing them yields, so a line's rows — and
/// the flat in-order sum fastText makes of them — never depend on what the memo has seen.
/// Bound to one dictionary (`owner`); another model's first line clears it.
#[derive(Debug, Default)]
struct Memo {
    owner: u64,
    slots: Vec<Slot>,
}

impl Memo {
    #[inline(always)]
    fn index(h: u32) -> usize {
        (h.wrapping_mul(0x9E37_79B1) >> (32 - MEMO_SLOTS.trailing_zeros())) as usize
    }

    fn bind(&mut self, owner: u64) {
        if self.owner != owner || self.slots.is_empty() {
            self.slots.clear();
            self.slots.resize(MEMO_SLOTS, EMPTY_SLOT);
            self.owner = owner;
        }
    }

    /// Loads the slot of hash `h` (to bring it into the cache ahead of [`Self::get`]).
    #[inline(always)]
    fn touch(&self, h: u32) -> u8 {
        self.slots[Self::index(h)].klen
    }

    #[inline(always)]
    fn get(&self, tok: &[u8], h: u32) -> Option<&Slot> {
        let s = &self.slots[Self::index(h)];
        (s.klen as usize == tok.len() && s.key[..tok.len()] == *tok).then_some(s)
    }

    #[inline]
    fn put(&mut self, tok: &[u8], h: u32, ids: &[i32], hashed: bool) {
        if tok.len() > MEMO_KEY || ids.len() > MEMO_IDS {
            return;
        }
        let s = &mut self.slots[Self::index(h)];
        s.klen = tok.len() as u8;
        s.n = ids.len() as u8;
        s.hashed = hashed;
        s.key[..tok.len()].copy_from_slice(tok);
        s.ids[..ids.len()].copy_from_slice(ids);
    }
}

/// Hands the rows gathered so far to [`Dictionary::line`]'s sink and empties the buffer;
/// returns how many there were.
fn hand_on(ids: &mut Vec<i32>, sink: &mut dyn FnMut(&[i32])) -> usize {
    sink(ids);
    let n = ids.len();
    ids.clear();
    n
}

/// A distinct id per loaded dictionary (binds a scratch's memo to its model).
fn next_dictionary_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

pub(crate) struct DictArgs {
    pub minn: i32,
    pub maxn: i32,
    pub bucket: i32,
    pub word_ngrams: i32,
}

impl Dictionary {
    pub(crate) fn load(r: &mut Reader<'_>, a: &DictArgs) -> Result<Self, LoadError> {
        let size = r.i32("dictionary size")?;
        let nwords = r.i32("dictionary word count")?;
        let nlabels = r.i32("dictionary label count")?;
        let _ntokens = r.i64("dictionary token count")?;
        let pruneidx_size = r.i64("dictionary pruneidx size")?;
        if size < 0 || nwords < 0 || nlabels < 0 || nwords as i64 + nlabels as i64 != size as i64 {
            return Err(LoadError::invalid(
                "dictionary",
                format!("{size} entries is not {nwords} words + {nlabels} labels"),
            ));
        }
        if nlabels == 0 {
            return Err(LoadError::invalid("dictionary", "no labels"));
        }
        // every entry takes at least 10 bytes (NUL, count, type)
        r.expect(size as u128 * 10, "dictionary entries")?;
        let mut arena = Vec::new();
        let mut spans = Vec::with_capacity(size as usize);
        let mut label_counts = Vec::with_capacity(nlabels as usize);
        for i in 0..size {
            let w = r.cstr("dictionary entry")?;
            let count = r.i64("dictionary entry count")?;
            let ty = r.u8("dictionary entry type")?;
            let want = u8::from(i >= nwords);
            if ty != want {
                return Err(LoadError::invalid(
                    "dictionary entry type",
                    format!(
                        "entry {i} ({:?}) has type {ty}; words (0) come first, then labels (1)",
                        String::from_utf8_lossy(w)
                    ),
                ));
            }
            if ty == 1 {
                label_counts.push(count);
            }
            let start = arena.len() as u32;
            arena.extend_from_slice(w);
            spans.push((start, arena.len() as u32));
        }
        if pruneidx_size < -1 {
            return Err(LoadError::invalid(
                "dictionary pruneidx size",
                format!("{pruneidx_size}"),
            ));
        }
        r.expect(
            pruneidx_size.max(0) as u128 * 8,
            "dictionary pruneidx entries",
        )?;
        let mut pairs = Vec::with_capacity(pruneidx_size.max(0) as usize);
        let mut max_row = -1i64;
        for _ in 0..pruneidx_size.max(0) {
            let from = r.i32("dictionary pruneidx entry")?;
            let to = r.i32("dictionary pruneidx entry")?;
            if from < 0 || to < 0 {
                return Err(LoadError::invalid(
                    "dictionary pruneidx entry",
                    format!("{from} → {to}"),
                ));
            }
            max_row = max_row.max(to as i64);
            pairs.push((from, to));
        }
        if a.bucket < 0 || a.minn < 0 || a.maxn < 0 || a.word_ngrams < 0 {
            return Err(LoadError::invalid(
                "arguments",
                format!(
                    "bucket {}, minn {}, maxn {}, wordNgrams {}",
                    a.bucket, a.minn, a.maxn, a.word_ngrams
                ),
            ));
        }
        let hashes_ngrams = a.maxn > 0 || a.word_ngrams > 1;
        if a.bucket == 0 && hashes_ngrams {
            return Err(LoadError::invalid(
                "arguments",
                "bucket is 0 but the model uses character or word n-grams",
            ));
        }
        let ngram_rows = match pruneidx_size {
            -1 if hashes_ngrams => a.bucket as u64,
            -1 | 0 => 0,
            _ => (max_row + 1) as u64,
        };
        let mut d = Dictionary {
            arena,
            spans,
            nwords,
            nlabels,
            label_counts,
            table: Vec::new(),
            table_mask: 0,
            subwords: Vec::new(),
            sub_start: Vec::new(),
            pruneidx_size,
            prune: PruneMap::new(&pairs, a.bucket as u32),
            minn: a.minn,
            maxn: a.maxn,
            bucket: a.bucket as u32,
            bucket_m: if a.bucket > 0 {
                (u64::MAX / a.bucket as u64).wrapping_add(1)
            } else {
                0
            },
            word_ngrams: a.word_ngrams,
            ngram_rows,
            id: next_dictionary_id(),
        };
        d.build_table();
        d.build_subwords();
        Ok(d)
    }

    fn build_table(&mut self) {
        let cap = (self.spans.len() * 2).next_power_of_two().max(16);
        self.table = vec![(0, -1); cap];
        self.table_mask = cap - 1;
        for id in 0..self.spans.len() {
            let w = self.entry(id as i32);
            let h = hash(w);
            // A repeated entry maps to its last occurrence, as fastText's table does.
            let slot = self.slot(w, h);
            self.table[slot] = (h, id as i32);
        }
    }

    fn build_subwords(&mut self) {
        let mut subwords = Vec::new();
        let mut sub_start = Vec::with_capacity(self.nwords as usize + 1);
        let mut word = Vec::new();
        let mut tmp = Vec::new();
        for id in 0..self.nwords {
            sub_start.push(subwords.len() as u32);
            subwords.push(id);
            let w = self.entry(id);
            if w != EOS {
                word.clear();
                word.push(b'<');
                word.extend_from_slice(w);
                word.push(b'>');
                self.char_ngrams(&word, &mut subwords, &mut tmp);
            }
        }
        sub_start.push(subwords.len() as u32);
        self.subwords = subwords;
        self.sub_start = sub_start;
    }

    /// Whether the n-gram rows were pruned (a quantized model's dictionary).
    pub(crate) fn is_pruned(&self) -> bool {
        self.pruneidx_size >= 0
    }

    /// The bytes of entry `id`.
    pub(crate) fn entry(&self, id: i32) -> &[u8] {
        let (s, e) = self.spans[id as usize];
        &self.arena[s as usize..e as usize]
    }

    /// Label `i` (with its prefix, e.g. `__label__en`).
    pub(crate) fn label(&self, i: usize) -> &[u8] {
        self.entry(self.nwords + i as i32)
    }

    #[inline]
    fn slot(&self, w: &[u8], h: u32) -> usize {
        let mut i = (h.wrapping_mul(0x9E37_79B1) as usize) & self.table_mask;
        loop {
            let (eh, id) = self.table[i];
            if id < 0 || (eh == h && self.entry(id) == w) {
                return i;
            }
            i = (i + 1) & self.table_mask;
        }
    }

    /// The entry id of `w` (hash `h`), or −1.
    #[inline]
    pub(crate) fn find(&self, w: &[u8], h: u32) -> i32 {
        self.table[self.slot(w, h)].1
    }

    /// The n-gram rows of a pruned model, by rank: fastText's row (after the words) of the `r`-th
    /// kept bucket in bucket order. This dictionary numbers a kept bucket's row `nwords + r` (no
    /// table between the bucket and its row); the model stores its input matrix in that order
    /// ([`crate::matrix::Matrix::gathered`]). `None` when the rows are not pruned.
    pub(crate) fn ngram_rows_by_rank(&self) -> Option<&[i32]> {
        (self.pruneidx_size > 0).then_some(&self.prune.rows[..])
    }

    /// fastText's number for input row `id` of this dictionary (they differ for the n-gram rows
    /// of a pruned model; see [`Self::ngram_rows_by_rank`]).
    pub(crate) fn fasttext_row(&self, id: i32) -> i32 {
        match self.ngram_rows_by_rank() {
            Some(rows) if id >= self.nwords => self.nwords + rows[(id - self.nwords) as usize],
            _ => id,
        }
    }

    /// fastText's `pushHash`: n-gram bucket `id` → its input row, if the model kept it (a pruned
    /// model's kept bucket: `nwords` + its rank, see [`Self::ngram_rows_by_rank`]).
    #[inline]
    fn push_hash(&self, out: &mut Vec<i32>, id: i32) {
        if self.pruneidx_size == 0 || id < 0 {
            return;
        }
        if self.pruneidx_size > 0 {
            if let Some(rank) = self.prune.rank(id) {
                out.push(self.nwords + rank as i32);
            }
        } else {
            out.push(self.nwords + id);
        }
    }

    /// `h % bucket` (Lemire, Kaser & Kurz, "Faster remainder by direct computation", 2019:
    /// exact for every 32-bit `h` and divisor).
    #[inline(always)]
    fn bucket_of(&self, h: u32) -> u32 {
        let low = self.bucket_m.wrapping_mul(h as u64);
        ((low as u128 * self.bucket as u128) >> 64) as u32
    }

    /// fastText's `computeSubwords` on a word already wrapped in `<` `>`: every n-gram of
    /// `minn..=maxn` characters (UTF-8 aware; not the lone `<` or `>`), hashed into buckets, each
    /// bucket's row (if the model kept it) appended to `out` in order. `tmp` is working memory.
    ///
    /// Two passes: the first hashes every n-gram and keeps the buckets the model kept (a bitmap
    /// test, branch-free: in a pruned model whether a bucket is kept is a coin toss the branch
    /// predictor loses), the second looks up their rows.
    fn char_ngrams(&self, word: &[u8], out: &mut Vec<i32>, tmp: &mut Vec<u32>) {
        let (minn, maxn) = (self.minn as usize, self.maxn as usize);
        if maxn == 0 || self.pruneidx_size == 0 {
            return;
        }
        let len = word.len();
        if tmp.len() < len * maxn {
            tmp.resize(len * maxn, 0);
        }
        let pruned = self.pruneidx_size > 0;
        let k = match (minn, maxn) {
            (2, 4) if word.is_ascii() => self.ascii_ngrams::<2, 4>(word, tmp, pruned),
            _ => self.utf8_ngrams(word, tmp, pruned),
        };
        let nwords = self.nwords;
        if pruned {
            out.extend(
                tmp[..k]
                    .iter()
                    .map(|&b| nwords + self.prune.rank_of_kept(b)),
            );
        } else {
            out.extend(tmp[..k].iter().map(|&b| nwords + b as i32));
        }
    }

    /// The buckets of [`Self::char_ngrams`] for an ASCII word (a character is a byte) and
    /// `MINN ≥ 2` (no one-character n-gram, so no `<` / `>` special case), n-gram lengths known
    /// to the compiler: every start's `MAXN` hash steps unrolled, with nothing to branch on but
    /// the word's end. Returns how many buckets it left in `tmp`.
    #[inline(always)]
    fn ascii_ngrams<const MINN: usize, const MAXN: usize>(
        &self,
        word: &[u8],
        tmp: &mut [u32],
        pruned: bool,
    ) -> usize {
        const { assert!(MINN >= 2 && MINN <= MAXN) };
        let len = word.len();
        let mut k = 0;
        let mut emit = |h: u32| {
            let b = self.bucket_of(h);
            tmp[k] = b;
            k += if pruned { self.prune.kept(b) } else { 1 };
        };
        // starts with all MAXN characters ahead: a fixed-size window, fully unrolled
        let full = (len + 1).saturating_sub(MAXN);
        for i in 0..full {
            let w: &[u8; MAXN] = word[i..i + MAXN].try_into().expect("MAXN bytes");
            let mut h = FNV_OFFSET;
            for (n, &c) in w.iter().enumerate() {
                h = fnv_step(h, c);
                if n + 1 >= MINN {
                    emit(h);
                }
            }
        }
        // the last starts, fewer characters ahead
        for i in full..len {
            let mut h = FNV_OFFSET;
            for (n, &c) in word[i..].iter().enumerate() {
                h = fnv_step(h, c);
                if n + 1 >= MINN {
                    emit(h);
                }
            }
        }
        k
    }

    /// The buckets of [`Self::char_ngrams`] for any word and n-gram lengths.
    fn utf8_ngrams(&self, word: &[u8], tmp: &mut [u32], pruned: bool) -> usize {
        let (minn, maxn) = (self.minn as usize, self.maxn as usize);
        let len = word.len();
        let mut k = 0;
        for i in 0..len {
            if word[i] & 0xC0 == 0x80 {
                continue;
            }
            let mut h = FNV_OFFSET;
            let mut j = i;
            let mut n = 1;
            while j < len && n <= maxn {
                h = fnv_step(h, word[j]);
                j += 1;
                while j < len && word[j] & 0xC0 == 0x80 {
                    h = fnv_step(h, word[j]);
                    j += 1;
                }
                if n >= minn && !(n == 1 && (i == 0 || j == len)) {
                    let b = self.bucket_of(h);
                    tmp[k] = b;
                    k += if pruned { self.prune.kept(b) } else { 1 };
                }
                n += 1;
            }
        }
        k
    }

    /// Whether lines go through the scratch's token memo: only with character n-grams (without
    /// them a token costs one dictionary look-up, which the memo would only replace by another
    /// cache line to load — a measured loss on a large dense classifier).
    #[inline(always)]
    fn memoizes(&self) -> bool {
        self.maxn > 0
    }

    /// One token of a line (fastText's `getLine` body), from the scratch's memo when it holds
    /// the token. Returns false at an end-of-sentence token, after which fastText reads no
    /// further.
    #[inline]
    fn token(&self, tok: &[u8], h: u32, lb: &mut LineBuf) -> bool {
        if !self.memoizes() {
            return self.compute_token(tok, h, lb);
        }
        if let Some(s) = lb.memo.get(tok, h) {
            // the whole fixed-size array (a few vector moves, no call), then cut to the slot's rows
            let at = lb.ids.len();
            lb.ids.extend_from_slice(&s.ids);
            lb.ids.truncate(at + s.n as usize);
            if s.hashed {
                lb.hashes.push(h as i32);
            }
            return true;
        }
        if tok == EOS {
            return self.compute_token(tok, h, lb);
        }
        let from = lb.ids.len();
        let hashes = lb.hashes.len();
        self.compute_token(tok, h, lb);
        lb.memo
            .put(tok, h, &lb.ids[from..], lb.hashes.len() > hashes);
        true
    }

    /// [`Self::token`] without the memo.
    #[inline]
    fn compute_token(&self, tok: &[u8], h: u32, lb: &mut LineBuf) -> bool {
        let wid = self.find(tok, h);
        if wid >= 0 {
            if wid < self.nwords {
                if self.maxn <= 0 {
                    lb.ids.push(wid);
                } else {
                    let (s, e) = (
                        self.sub_start[wid as usize],
                        self.sub_start[wid as usize + 1],
                    );
                    lb.ids
                        .extend_from_slice(&self.subwords[s as usize..e as usize]);
                }
                lb.hashes.push(h as i32);
            }
        } else if !tok.starts_with(LABEL_PREFIX) {
            if tok != EOS {
                lb.word.clear();
                lb.word.push(b'<');
                lb.word.extend_from_slice(tok);
                lb.word.push(b'>');
                self.char_ngrams(&lb.word, &mut lb.ids, &mut lb.buckets);
            }
            lb.hashes.push(h as i32);
        }
        tok != EOS
    }

    /// The input rows of one line of text, as fastText's `predict` computes them for `text`
    /// followed by a newline: whitespace-separated tokens, then `</s>`; reading stops after a
    /// `</s>` token (a literal one in the text included). The rows go to `sink` in order, a
    /// bounded batch at a time (however long the text, this holds a window of tokens and at most
    /// [`FLUSH_ROWS`] rows, plus a hash per token when the model has word n-grams); returns how
    /// many there were.
    pub(crate) fn line(
        &self,
        text: &[u8],
        newline: Newline,
        lb: &mut LineBuf,
        sink: &mut dyn FnMut(&[i32]),
    ) -> usize {
        lb.ids.clear();
        lb.hashes.clear();
        let memo = self.memoizes();
        if memo {
            lb.memo.bind(self.id);
        }
        let keep_hashes = self.word_ngrams > 1;
        let mut rows = 0;
        let n = text.len();
        let mut i = 0;
        let mut open = true;
        let mut ended = false;
        while open && !ended {
            // First pass over a window of tokens: each one's span and hash, touching its memo
            // slot, so the slots' cache misses overlap instead of stalling the second pass one
            // token at a time.
            lb.toks.clear();
            let mut touched = 0u8;
            loop {
                if i >= n {
                    ended = true;
                    break;
                }
                let b = text[i];
                if is_space(b) {
                    if b == b'\n' && newline == Newline::EndsLine {
                        ended = true;
                        break;
                    }
                    i += 1;
                    continue;
                }
                if lb.toks.len() == LINE_WINDOW {
                    break;
                }
                let start = i;
                let mut h = FNV_OFFSET;
                while i < n && !is_space(text[i]) {
                    h = fnv_step(h, text[i]);
                    i += 1;
                }
                if memo {
                    touched ^= lb.memo.touch(h);
                }
                lb.toks.push((start, i, h));
            }
            std::hint::black_box(touched);
            // Second pass: fastText's `getLine` over the window; reading stops after a `</s>`.
            for t in 0..lb.toks.len() {
                let (s, e, h) = lb.toks[t];
                if !self.token(&text[s..e], h, lb) {
                    open = false;
                    break;
                }
            }
            if lb.ids.len() >= FLUSH_ROWS {
                rows += hand_on(&mut lb.ids, sink);
            }
            if !keep_hashes {
                lb.hashes.clear();
            }
        }
        if open {
            self.token(EOS, hash(EOS), lb);
        }
        self.word_ngrams(lb);
        if !lb.ids.is_empty() {
            rows += hand_on(&mut lb.ids, sink);
        }
        rows
    }

    /// fastText's `addWordNgrams`: hashes of runs of 2..=wordNgrams consecutive words.
    fn word_ngrams(&self, lb: &mut LineBuf) {
        let n = self.word_ngrams as usize;
        if n <= 1 {
            return;
        }
        let bucket = self.bucket as u64;
        let hashes = &lb.hashes;
        for i in 0..hashes.len() {
            // `uint64_t h = hashes[i]` on an int32: sign-extended.
            let mut h = hashes[i] as i64 as u64;
            for &hj in &hashes[i + 1..hashes.len().min(i + n)] {
                h = h.wrapping_mul(116_049_371).wrapping_add(hj as i64 as u64);
                self.push_hash(&mut lb.ids, (h % bucket) as i32);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn fastmod_is_exact() {
        let mut state = 3u64;
        for bucket in [
            1u32,
            2,
            3,
            7,
            200_000,
            2_000_000,
            2_000_003,
            i32::MAX as u32,
        ] {
            let m = (u64::MAX / bucket as u64).wrapping_add(1);
            let f = |h: u32| ((m.wrapping_mul(h as u64) as u128 * bucket as u128) >> 64) as u32;
            for h in [0u32, 1, bucket - 1, bucket, u32::MAX, u32::MAX - 1] {
                assert_eq!(f(h), h % bucket, "{h} % {bucket}");
            }
            for _ in 0..10_000 {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let h = (state >> 32) as u32;
                assert_eq!(f(h), h % bucket, "{h} % {bucket}");
            }
        }
    }
}

/// The pruned-bucket map of a quantized model (bucket → row): a bitmap of the kept buckets (one
/// bit per bucket: most n-grams of a pruned model fall in dropped buckets, and the bitmap answers
/// those from cache), the count of kept buckets before each bitmap word, and the rows of the kept
/// buckets in bucket order — so a kept bucket's rank is `base[w] + kept bits before it in word
/// w`, and its fastText row `rows[rank]`. About 6 bytes per 64 buckets (lid.176: ≈ 0.4 MB), where
/// a hash table with its probes was several times that and missed the cache on every kept
/// n-gram. Predicting needs only the rank (the model renumbers its n-gram rows by rank); `rows`
/// serves that renumbering and [`Dictionary::fasttext_row`].
#[derive(Debug)]
struct PruneMap {
    kept: Vec<u64>,
    base: Vec<u32>,
    rows: Vec<i32>,
}

impl PruneMap {
    fn new(pairs: &[(i32, i32)], bucket: u32) -> Self {
        if pairs.is_empty() {
            return PruneMap {
                kept: Vec::new(),
                base: Vec::new(),
                rows: Vec::new(),
            };
        }
        let words = (bucket as usize).div_ceil(64);
        let mut kept = vec![0u64; words];
        for &(k, _) in pairs {
            // (a key ≥ bucket can never be looked up)
            if let Some(w) = kept.get_mut(k as usize / 64) {
                *w |= 1 << (k % 64);
            }
        }
        let mut base = Vec::with_capacity(words);
        let mut n = 0u32;
        for w in &kept {
            base.push(n);
            n += w.count_ones();
        }
        let mut m = PruneMap {
            kept,
            base,
            rows: vec![0; n as usize],
        };
        // a repeated key keeps its last value, as std::unordered_map's `[]=` does
        for &(k, v) in pairs {
            if let Some(r) = m.rank(k) {
                m.rows[r] = v;
            }
        }
        m
    }

    /// The position of bucket `k` among the kept ones, if kept.
    #[inline(always)]
    fn rank(&self, k: i32) -> Option<usize> {
        let w = k as usize / 64;
        let bits = *self.kept.get(w)?;
        let b = k as u32 % 64;
        if bits >> b & 1 == 0 {
            return None;
        }
        let below = (bits & ((1u64 << b) - 1)).count_ones();
        Some((self.base[w] + below) as usize)
    }

    /// 1 if bucket `b` (< the model's `bucket`) was kept, else 0.
    #[inline(always)]
    fn kept(&self, b: u32) -> usize {
        (self.kept[b as usize / 64] >> (b % 64) & 1) as usize
    }

    /// The rank of bucket `b` among the kept ones, which [`Self::kept`] says was kept.
    #[inline(always)]
    fn rank_of_kept(&self, b: u32) -> i32 {
        let w = b as usize / 64;
        let below = (self.kept[w] & ((1u64 << (b % 64)) - 1)).count_ones();
        (self.base[w] + below) as i32
    }
}
