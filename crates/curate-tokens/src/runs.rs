//! Sorted runs of tokenized documents: what the `tokenize` observer spills, and the k-way
//! merge its global stage reads them with.
//!
//! A run file is a sequence of *sections*, one per `split_by` value, in value order; within a
//! section documents are sorted by `(order, key)` — `order` is the seeded shuffle hash (0
//! without shuffling), `key` the document key. A record is
//!
//! ```text
//! order u64 · key u64 · ntokens u32 · ntokens token ids (in the output dtype)   little-endian
//! ```
//!
//! so the merge copies token bytes straight into the `.bin`. Where each section starts is kept
//! in the task's manifest ([`RunInfo`]).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use curate_core::StepError;
use serde::{Deserialize, Serialize};

use crate::AtomicWriter;

/// Bytes of a record's header.
pub const RECORD_HEADER: usize = 20;

/// One `split_by` value's documents within a run file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Section {
    /// The split value as text (`None`: null, or no `split_by`).
    pub value: Option<String>,
    /// Byte offset of its first record.
    pub offset: u64,
    /// Documents.
    pub documents: u64,
    /// Tokens.
    pub tokens: u64,
}

/// One run file of one task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    /// File name, relative to the step's `observe/` directory.
    pub file: String,
    /// Its sections, in value order.
    pub sections: Vec<Section>,
}

#[derive(Debug, Clone, Copy)]
struct Meta {
    value: u32,
    order: u64,
    key: u64,
    start: usize,
    ntokens: u32,
}

/// One task's tokenized documents in memory, until [`spill`](Self::spill)ed to a sorted run.
#[derive(Debug)]
pub struct RunBuffer {
    width: usize,
    arena: Vec<u8>,
    metas: Vec<Meta>,
    values: Vec<Option<String>>,
    index: HashMap<String, u32>,
    null: Option<u32>,
}

impl RunBuffer {
    /// An empty buffer for tokens of `width` bytes.
    pub fn new(width: usize) -> Self {
        Self {
            width,
            arena: Vec::new(),
            metas: Vec::new(),
            values: Vec::new(),
            index: HashMap::new(),
            null: None,
        }
    }

    /// The id of a split value (interned for the task's lifetime).
    pub fn value_id(&mut self, value: Option<&str>) -> u32 {
        match value {
            None => *self.null.get_or_insert_with(|| {
                self.values.push(None);
                (self.values.len() - 1) as u32
            }),
            Some(v) => {
                if let Some(id) = self.index.get(v) {
                    return *id;
                }
                self.values.push(Some(v.to_string()));
                let id = (self.values.len() - 1) as u32;
                self.index.insert(v.to_string(), id);
                id
            }
        }
    }

    /// Adds one document's token bytes (already in the output dtype).
    pub fn push(&mut self, value: u32, order: u64, key: u64, token_bytes: &[u8]) {
        let start = self.arena.len();
        self.arena.extend_from_slice(token_bytes);
        self.metas.push(Meta {
            value,
            order,
            key,
            start,
            ntokens: (token_bytes.len() / self.width) as u32,
        });
    }

    /// Bytes held (tokens plus per-document bookkeeping).
    pub fn bytes(&self) -> usize {
        self.arena.len() + self.metas.len() * std::mem::size_of::<Meta>()
    }

    /// Documents held.
    pub fn len(&self) -> usize {
        self.metas.len()
    }

    /// True when nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.metas.is_empty()
    }

    /// Sorts the buffered documents by (value, order, key), writes them to `path` atomically and
    /// empties the buffer (interned values are kept).
    pub fn spill(&mut self, path: &Path) -> Result<Vec<Section>, StepError> {
        let mut rank = vec![0u32; self.values.len()];
        let mut by_value: Vec<u32> = (0..self.values.len() as u32).collect();
        by_value.sort_by(|a, b| self.values[*a as usize].cmp(&self.values[*b as usize]));
        for (r, v) in by_value.iter().enumerate() {
            rank[*v as usize] = r as u32;
        }
        self.metas
            .sort_unstable_by_key(|m| (rank[m.value as usize], m.order, m.key));
        let mut w = AtomicWriter::create(path, 1 << 20)?;
        let mut sections: Vec<Section> = Vec::new();
        let mut offset = 0u64;
        let mut current = u32::MAX;
        let mut head = [0u8; RECORD_HEADER];
        for m in &self.metas {
            if m.value != current {
                current = m.value;
                sections.push(Section {
                    value: self.values[m.value as usize].clone(),
                    offset,
                    documents: 0,
                    tokens: 0,
                });
            }
            let s = sections.last_mut().expect("a section");
            s.documents += 1;
            s.tokens += m.ntokens as u64;
            head[..8].copy_from_slice(&m.order.to_le_bytes());
            head[8..16].copy_from_slice(&m.key.to_le_bytes());
            head[16..20].copy_from_slice(&m.ntokens.to_le_bytes());
            let body = &self.arena[m.start..m.start + m.ntokens as usize * self.width];
            w.append(&head)?;
            w.append(body)?;
            offset += (RECORD_HEADER + body.len()) as u64;
        }
        w.commit()?;
        self.metas.clear();
        self.arena.clear();
        Ok(sections)
    }
}

/// Reads one section of one run file, record by record.
#[derive(Debug)]
pub struct SectionReader {
    path: PathBuf,
    r: BufReader<std::fs::File>,
    left: u64,
    width: usize,
    head: Option<(u64, u64, u32)>,
}

impl SectionReader {
    /// Opens `path` at `section` with a read buffer of `buf` bytes.
    pub fn open(
        path: &Path,
        section: &Section,
        width: usize,
        buf: usize,
    ) -> Result<Self, StepError> {
        let mut f = std::fs::File::open(path).map_err(|e| StepError::io(path, e))?;
        f.seek(SeekFrom::Start(section.offset))
            .map_err(|e| StepError::io(path, e))?;
        let mut s = Self {
            path: path.to_path_buf(),
            r: BufReader::with_capacity(buf, f),
            left: section.documents,
            width,
            head: None,
        };
        s.advance()?;
        Ok(s)
    }

    /// The current record's `(order, key, ntokens)`, or `None` at the section's end.
    pub fn head(&self) -> Option<(u64, u64, u32)> {
        self.head
    }

    fn advance(&mut self) -> Result<(), StepError> {
        if self.left == 0 {
            self.head = None;
            return Ok(());
        }
        self.left -= 1;
        let mut h = [0u8; RECORD_HEADER];
        self.r
            .read_exact(&mut h)
            .map_err(|e| StepError::io(&self.path, e))?;
        self.head = Some((
            u64::from_le_bytes(h[..8].try_into().expect("8")),
            u64::from_le_bytes(h[8..16].try_into().expect("8")),
            u32::from_le_bytes(h[16..20].try_into().expect("4")),
        ));
        Ok(())
    }

    /// Reads the current record's token bytes into `out` (replacing its content) and moves to
    /// the next record.
    pub fn take_body(&mut self, out: &mut Vec<u8>) -> Result<(), StepError> {
        let n = self.head.map_or(0, |h| h.2) as usize * self.width;
        out.resize(n, 0);
        self.r
            .read_exact(out)
            .map_err(|e| StepError::io(&self.path, e))?;
        self.advance()
    }
}

/// A k-way merge of sections by `(order, key)`.
#[derive(Debug)]
pub struct Merge {
    sources: Vec<SectionReader>,
    heap: BinaryHeap<Reverse<(u64, u64, usize)>>,
}

impl Merge {
    /// Merges `sources`.
    pub fn new(sources: Vec<SectionReader>) -> Self {
        let mut heap = BinaryHeap::with_capacity(sources.len());
        for (i, s) in sources.iter().enumerate() {
            if let Some((o, k, _)) = s.head() {
                heap.push(Reverse((o, k, i)));
            }
        }
        Self { sources, heap }
    }

    /// The next document in order: its token bytes go to `out`; returns its token count.
    pub fn next_into(&mut self, out: &mut Vec<u8>) -> Result<Option<u32>, StepError> {
        let Some(Reverse((_, _, i))) = self.heap.pop() else {
            return Ok(None);
        };
        let s = &mut self.sources[i];
        let n = s.head().map_or(0, |h| h.2);
        s.take_body(out)?;
        if let Some((o, k, _)) = s.head() {
            self.heap.push(Reverse((o, k, i)));
        }
        Ok(Some(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spill_then_merge_orders_by_value_order_key() {
        let d = tempfile::tempdir().unwrap();
        let mut b = RunBuffer::new(2);
        let en = b.value_id(Some("en"));
        let de = b.value_id(Some("de"));
        let null = b.value_id(None);
        assert_eq!(b.value_id(Some("en")), en);
        b.push(en, 5, 1, &[1, 0]);
        b.push(de, 9, 2, &[2, 0, 2, 0]);
        b.push(en, 3, 3, &[3, 0]);
        b.push(null, 0, 4, &[]);
        let s1 = b.spill(&d.path().join("r1")).unwrap();
        assert!(b.is_empty());
        b.push(en, 4, 7, &[7, 0]);
        let s2 = b.spill(&d.path().join("r2")).unwrap();
        let vals: Vec<_> = s1.iter().map(|s| s.value.clone()).collect();
        assert_eq!(vals, [None, Some("de".into()), Some("en".into())]);
        assert_eq!((s1[2].documents, s1[2].tokens), (2, 2));
        let en1 = &s1[2];
        let en2 = &s2[0];
        let m = vec![
            SectionReader::open(&d.path().join("r1"), en1, 2, 64).unwrap(),
            SectionReader::open(&d.path().join("r2"), en2, 2, 64).unwrap(),
        ];
        let mut m = Merge::new(m);
        let mut out = Vec::new();
        let mut got = Vec::new();
        while let Some(n) = m.next_into(&mut out).unwrap() {
            assert_eq!(n as usize * 2, out.len());
            got.push(out[0]);
        }
        assert_eq!(got, [3, 7, 1], "sorted by order across runs");
    }
}
