//! A fast path for the common kind of `tokenizer.json`: byte-level BPE (GPT-2, Llama-3, Qwen,
//! the ones `tokenizers` trains with a `ByteLevel` pre-tokenizer) without a normalizer.
//!
//! Hugging Face's `Tokenizer::encode` builds a full `Encoding` per document (a `String` per
//! token, offsets, masks); a trainer only needs ids. This encoder does exactly what `encode`
//! does to the ids, and nothing else:
//!
//! 1. added tokens (`<|endoftext|>` …) are cut out of the text first, leftmost-longest, as
//!    `AddedVocabulary` does;
//! 2. the rest is split by the pre-tokenizer's regex (`ByteLevel`'s GPT-2 pattern, or a `Split`
//!    pattern followed by a regex-less `ByteLevel`), matches and gaps kept in order
//!    (`Isolated`);
//! 3. each piece's bytes start as one symbol each and are merged by HF's own algorithm (the
//!    `word.rs` `merge_all` of `tokenizers`: a min-heap on (merge rank, position) that skips
//!    stale entries), so ties and repeated pairs resolve identically; with `ignore_merges` a
//!    piece that is a vocabulary entry is one token.
//!
//! [`ByteBpe::from_json`] returns `None` for any tokenizer.json outside this shape (a
//! normalizer, dropout, byte fallback, added tokens with `single_word`/`lstrip`/`rstrip`, …);
//! the caller then uses the `tokenizers` crate. Both paths are tested id for id against
//! Python's `tokenizers`.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use serde_json::Value;

type Fx = rustc_hash::FxBuildHasher;

/// GPT-2's pre-tokenization pattern, as `ByteLevel` (with `use_regex`) applies it.
pub const GPT2_PATTERN: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

/// GPT-2's map from bytes to the printable characters byte-level vocabularies are written in.
pub fn bytes_to_chars() -> [char; 256] {
    let mut out = ['\0'; 256];
    let mut n = 0u32;
    for b in 0..=255u8 {
        let printable = (b'!'..=b'~').contains(&b) || (0xA1..=0xAC).contains(&b) || b >= 0xAE;
        out[b as usize] = if printable {
            b as char
        } else {
            let c = char::from_u32(256 + n).expect("valid char");
            n += 1;
            c
        };
    }
    out
}

#[derive(Debug)]
struct Added {
    bytes: Vec<u8>,
    id: u32,
}

/// A byte-level BPE tokenizer.json, loaded for encoding ids only.
#[derive(Debug)]
pub struct ByteBpe {
    regex: fancy_regex::Regex,
    byte_ids: [u32; 256],
    /// (left, right) → (rank, merged id)
    merges: HashMap<(u32, u32), (u32, u32), Fx>,
    /// Whole pieces that are vocabulary entries (only with `ignore_merges`).
    whole: Option<HashMap<Vec<u8>, u32, Fx>>,
    /// Added tokens by first byte, longest first.
    added: Vec<Vec<Added>>,
    added_first: [bool; 256],
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Scratch reused across documents (one per thread).
#[derive(Debug, Default)]
struct Scratch {
    symbols: Vec<Symbol>,
    heap: BinaryHeap<Merge>,
}

#[derive(Debug, Clone, Copy)]
struct Symbol {
    c: u32,
    prev: isize,
    next: isize,
    len: usize,
}

#[derive(Debug, PartialEq, Eq)]
struct Merge {
    pos: usize,
    rank: u32,
    new_id: u32,
}

impl PartialOrd for Merge {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Merge {
    // a min-heap on rank, then position (as `tokenizers`' word.rs)
    fn cmp(&self, other: &Self) -> Ordering {
        if self.rank != other.rank {
            other.rank.cmp(&self.rank)
        } else {
            other.pos.cmp(&self.pos)
        }
    }
}

fn flag(v: &Value, k: &str) -> bool {
    v.get(k).and_then(Value::as_bool).unwrap_or(false)
}

fn null_or_empty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        _ => false,
    }
}

/// `ByteLevel` without a prefix space; `regex` says whether it splits with GPT-2's pattern.
fn plain_byte_level(v: &Value, regex: bool) -> bool {
    v.get("type").and_then(Value::as_str) == Some("ByteLevel")
        && !flag(v, "add_prefix_space")
        && v.get("use_regex").and_then(Value::as_bool).unwrap_or(true) == regex
}

impl ByteBpe {
    /// The fast encoder for `json`, or `None` when the tokenizer is not plain byte-level BPE.
    /// `add_special_tokens` needs a post-processor that adds nothing (`ByteLevel` or none).
    pub fn from_json(json: &Value, add_special_tokens: bool) -> Option<ByteBpe> {
        if !matches!(json.get("normalizer"), None | Some(Value::Null)) {
            return None;
        }
        let pattern = {
            let p = json.get("pre_tokenizer")?;
            match p.get("type").and_then(Value::as_str)? {
                "ByteLevel" if plain_byte_level(p, true) => GPT2_PATTERN.to_string(),
                "Sequence" => {
                    let list = p.get("pretokenizers")?.as_array()?;
                    let [split, bl] = list.as_slice() else {
                        return None;
                    };
                    let ok = split.get("type")?.as_str()? == "Split"
                        && split.get("behavior")?.as_str()? == "Isolated"
                        && !flag(split, "invert")
                        && plain_byte_level(bl, false);
                    if !ok {
                        return None;
                    }
                    split.get("pattern")?.get("Regex")?.as_str()?.to_string()
                }
                _ => return None,
            }
        };
        if add_special_tokens {
            match json.get("post_processor") {
                None | Some(Value::Null) => {}
                Some(pp) if pp.get("type").and_then(Value::as_str) == Some("ByteLevel") => {}
                _ => return None,
            }
        }
        let model = json.get("model")?;
        let ok = model.get("type")?.as_str()? == "BPE"
            && matches!(model.get("dropout"), None | Some(Value::Null))
            && !flag(model, "byte_fallback")
            && !flag(model, "fuse_unk")
            && null_or_empty(model.get("continuing_subword_prefix"))
            && null_or_empty(model.get("end_of_word_suffix"));
        if !ok {
            return None;
        }
        let to_char = bytes_to_chars();
        let mut to_byte: HashMap<char, u8> = HashMap::new();
        for (b, c) in to_char.iter().enumerate() {
            to_byte.insert(*c, b as u8);
        }
        let decode =
            |s: &str| -> Option<Vec<u8>> { s.chars().map(|c| to_byte.get(&c).copied()).collect() };
        let vocab = model.get("vocab")?.as_object()?;
        let mut ids: HashMap<&str, u32> = HashMap::with_capacity(vocab.len());
        for (k, v) in vocab {
            ids.insert(k.as_str(), u32::try_from(v.as_u64()?).ok()?);
        }
        let mut byte_ids = [0u32; 256];
        for (b, c) in to_char.iter().enumerate() {
            byte_ids[b] = *ids.get(c.to_string().as_str())?;
        }
        let mut merges: HashMap<(u32, u32), (u32, u32), Fx> = HashMap::default();
        for (rank, m) in model.get("merges")?.as_array()?.iter().enumerate() {
            let (a, b) = match m {
                Value::String(s) => s.split_once(' ')?,
                Value::Array(p) => (p.first()?.as_str()?, p.get(1)?.as_str()?),
                _ => return None,
            };
            let merged = format!("{a}{b}");
            let pair = (*ids.get(a)?, *ids.get(b)?);
            let new_id = *ids.get(merged.as_str())?;
            // the first listing of a pair is its rank (as a map built in merge order keeps)
            merges.entry(pair).or_insert((rank as u32, new_id));
        }
        let whole = if flag(model, "ignore_merges") {
            let mut w: HashMap<Vec<u8>, u32, Fx> = HashMap::default();
            for (k, id) in &ids {
                if let Some(b) = decode(k) {
                    w.insert(b, *id);
                }
            }
            Some(w)
        } else {
            None
        };
        let mut added: Vec<Vec<Added>> = (0..256).map(|_| Vec::new()).collect();
        let mut added_first = [false; 256];
        for t in json
            .get("added_tokens")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if flag(t, "single_word") || flag(t, "lstrip") || flag(t, "rstrip") {
                return None;
            }
            let content = t.get("content")?.as_str()?;
            if content.is_empty() {
                continue;
            }
            let id = u32::try_from(t.get("id")?.as_u64()?).ok()?;
            let bytes = content.as_bytes().to_vec();
            added_first[bytes[0] as usize] = true;
            added[bytes[0] as usize].push(Added { bytes, id });
        }
        for list in &mut added {
            list.sort_by_key(|b| std::cmp::Reverse(b.bytes.len()));
        }
        let regex = fancy_regex::Regex::new(&pattern).ok()?;
        Some(ByteBpe {
            regex,
            byte_ids,
            merges,
            whole,
            added,
            added_first,
        })
    }

    /// The leftmost-longest added token at or after `from`: (start, end, id).
    fn next_added(&self, text: &[u8], from: usize) -> Option<(usize, usize, u32)> {
        let mut i = from;
        while i < text.len() {
            if self.added_first[text[i] as usize] {
                for a in &self.added[text[i] as usize] {
                    if text[i..].starts_with(&a.bytes) {
                        return Some((i, i + a.bytes.len(), a.id));
                    }
                }
            }
            i += 1;
        }
        None
    }

    /// Appends the ids of `text` to `out`.
    pub fn encode(&self, text: &str, out: &mut Vec<u32>) -> Result<(), String> {
        SCRATCH.with(|s| self.encode_with(text, &mut s.borrow_mut(), out))
    }

    fn encode_with(&self, text: &str, s: &mut Scratch, out: &mut Vec<u32>) -> Result<(), String> {
        let bytes = text.as_bytes();
        let mut at = 0;
        while at < bytes.len() {
            let (end, next) = match self.next_added(bytes, at) {
                Some((start, stop, id)) => (start, Some((stop, id))),
                None => (bytes.len(), None),
            };
            if end > at {
                // added tokens start on a char boundary (their first byte is a valid start)
                self.encode_segment(&text[at..end], s, out)?;
            }
            match next {
                Some((stop, id)) => {
                    out.push(id);
                    at = stop;
                }
                None => break,
            }
        }
        Ok(())
    }

    fn encode_segment(&self, seg: &str, s: &mut Scratch, out: &mut Vec<u32>) -> Result<(), String> {
        let mut last = 0;
        for m in self.regex.find_iter(seg) {
            let m = m.map_err(|e| format!("pre-tokenizer regex: {e}"))?;
            if m.start() > last {
                self.encode_piece(&seg.as_bytes()[last..m.start()], s, out);
            }
            if m.end() > m.start() {
                self.encode_piece(m.as_str().as_bytes(), s, out);
            }
            last = m.end();
        }
        if last < seg.len() {
            self.encode_piece(&seg.as_bytes()[last..], s, out);
        }
        Ok(())
    }

    fn encode_piece(&self, piece: &[u8], s: &mut Scratch, out: &mut Vec<u32>) {
        if let Some(w) = &self.whole
            && let Some(id) = w.get(piece)
        {
            out.push(*id);
            return;
        }
        if piece.len() == 1 {
            out.push(self.byte_ids[piece[0] as usize]);
            return;
        }
        let syms = &mut s.symbols;
        syms.clear();
        let n = piece.len();
        for (i, b) in piece.iter().enumerate() {
            syms.push(Symbol {
                c: self.byte_ids[*b as usize],
                prev: i as isize - 1,
                next: if i + 1 < n { i as isize + 1 } else { -1 },
                len: 1,
            });
        }
        let heap = &mut s.heap;
        heap.clear();
        for i in 0..n - 1 {
            if let Some(&(rank, new_id)) = self.merges.get(&(syms[i].c, syms[i + 1].c)) {
                heap.push(Merge {
                    pos: i,
                    rank,
                    new_id,
                });
            }
        }
        while let Some(top) = heap.pop() {
            if syms[top.pos].len == 0 || syms[top.pos].next == -1 {
                continue;
            }
            let next_pos = syms[top.pos].next as usize;
            let right = syms[next_pos];
            // stale entry: the pair at this position changed since it was queued
            match self.merges.get(&(syms[top.pos].c, right.c)) {
                Some(&(_, id)) if id == top.new_id => {}
                _ => continue,
            }
            let cur = &mut syms[top.pos];
            cur.c = top.new_id;
            cur.len += right.len;
            cur.next = right.next;
            syms[next_pos].len = 0;
            if right.next > -1 && (right.next as usize) < n {
                syms[right.next as usize].prev = top.pos as isize;
            }
            let cur = syms[top.pos];
            if cur.prev >= 0 {
                let p = cur.prev as usize;
                if let Some(&(rank, new_id)) = self.merges.get(&(syms[p].c, cur.c)) {
                    heap.push(Merge {
                        pos: p,
                        rank,
                        new_id,
                    });
                }
            }
            if cur.next > -1 && (cur.next as usize) < n {
                let nx = cur.next as usize;
                if let Some(&(rank, new_id)) = self.merges.get(&(cur.c, syms[nx].c)) {
                    heap.push(Merge {
                        pos: top.pos,
                        rank,
                        new_id,
                    });
                }
            }
        }
        out.extend(syms.iter().filter(|x| x.len != 0).map(|x| x.c));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpt2_byte_map_is_a_bijection_onto_printables() {
        let m = bytes_to_chars();
        assert_eq!(m[b'A' as usize], 'A');
        assert_eq!(m[b' ' as usize], 'Ġ');
        assert_eq!(m[b'\n' as usize], 'Ċ');
        let set: std::collections::HashSet<char> = m.iter().copied().collect();
        assert_eq!(set.len(), 256);
    }

    fn toy(extra: Value) -> Value {
        // bytes a, b, c, space; merges: "a b" → ab, "ab c" → abc, "Ġ a" → Ġa
        let mut vocab = serde_json::Map::new();
        for (i, c) in bytes_to_chars().iter().enumerate() {
            vocab.insert(c.to_string(), Value::from(i as u64));
        }
        for (i, t) in ["ab", "abc", "Ġa", "<|end|>"].iter().enumerate() {
            vocab.insert(t.to_string(), Value::from(256 + i as u64));
        }
        let mut j = serde_json::json!({
            "normalizer": null,
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
            "post_processor": {"type": "ByteLevel"},
            "added_tokens": [{"id": 259, "content": "<|end|>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}],
            "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                      "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                      "vocab": vocab, "merges": ["a b", ["ab", "c"], "Ġ a"]}
        });
        if let (Value::Object(o), Value::Object(e)) = (&mut j, extra) {
            o.extend(e);
        }
        j
    }

    #[test]
    fn merges_added_tokens_and_fallbacks() {
        let t = ByteBpe::from_json(&toy(serde_json::json!({})), false).unwrap();
        let mut out = Vec::new();
        t.encode("abc ab<|end|>ca", &mut out).unwrap();
        // "abc" → abc; " ab" → Ġa b; "<|end|>"; "ca" → c a
        // "abc" → abc; " ab" → Ġ ab (a+b ranks before Ġ+a, which then no longer applies);
        // the added token; "ca" → c a
        assert_eq!(out, vec![257, 32, 256, 259, 99, 97]);
        // a normalizer, dropout or an lstrip added token are left to the tokenizers crate
        assert!(
            ByteBpe::from_json(
                &toy(serde_json::json!({"normalizer": {"type": "NFC"}})),
                false
            )
            .is_none()
        );
        assert!(
            ByteBpe::from_json(
                &toy(serde_json::json!({"post_processor": {"type": "TemplateProcessing"}})),
                true
            )
            .is_none()
        );
        assert!(
            ByteBpe::from_json(
                &toy(serde_json::json!({"post_processor": {"type": "TemplateProcessing"}})),
                false
            )
            .is_some()
        );
    }
}
