//! Fixed-size records on disk: atomically written, sorted, partitioned run files, their k-way
//! merge, and external sorting under a memory budget.
//!
//! A *run file* holds records sorted within each partition, with a header giving every
//! partition's record range, so a merge task reads only its partition of every run:
//!
//! ```text
//! magic "CDRUN001" | record size u32 | partitions u32 | counts: u64 × partitions | records...
//! ```
//!
//! A one-partition run is used for sorted outputs that are looked up by key (removed-document
//! sets) with a [`KeyCursor`].
//!
//! A *blob file* holds variable-length byte strings (document ids) that fixed-size records point
//! into by absolute offset and length:
//!
//! ```text
//! magic "CDBLOB01" | bytes...
//! ```

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use curate_core::StepError;
use curate_io::atomic::AtomicWriter;

const RUN_MAGIC: &[u8; 8] = b"CDRUN001";
const BLOB_MAGIC: &[u8; 8] = b"CDBLOB01";

/// A fixed-size, totally ordered record.
pub trait Record: Copy + Ord + Send + Sync + 'static {
    /// Encoded size in bytes.
    const SIZE: usize;
    /// Encodes into `out` (exactly `SIZE` bytes).
    fn encode(&self, out: &mut [u8]);
    /// Decodes from `b` (exactly `SIZE` bytes).
    fn decode(b: &[u8]) -> Self;
}

#[inline]
pub(crate) fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

#[inline]
pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// Writes a file atomically: a temp file in the same directory, fsync, rename, fsync of the dir.
pub fn write_atomic(
    path: &Path,
    f: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<(), StepError> {
    write_file(path, true, f)
}

/// Writes a file through a temp file and a rename (curate-io's one atomic writer); `durable`
/// adds the fsyncs of [`write_atomic`]. Scratch files that a re-run of the task recreates
/// (sort spills, the cluster stage's rounds) skip them.
pub fn write_file(
    path: &Path,
    durable: bool,
    f: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<(), StepError> {
    Ok(curate_io::atomic::write_with(path, durable, f)?)
}

/// Sorts a task's buffered `(partition, record)` pairs, writes them as the task's next run file
/// `observe/task-TTTTT-NNNN.run` under `dir` (one section per partition), records its name in
/// `runs` and empties the buffer. Nothing is written for an empty buffer.
pub fn spill_sorted<R: Record + Ord>(
    dir: &Path,
    task: usize,
    partitions: usize,
    buf: &mut Vec<(u32, R)>,
    runs: &mut Vec<String>,
) -> Result<(), StepError> {
    if buf.is_empty() {
        return Ok(());
    }
    buf.sort_unstable();
    let mut counts = vec![0u64; partitions];
    for (p, _) in buf.iter() {
        counts[*p as usize] += 1;
    }
    let name = format!("observe/task-{:05}-{:04}.run", task, runs.len());
    write_run(&dir.join(&name), &counts, buf.iter().map(|(_, r)| r))?;
    runs.push(name);
    buf.clear();
    Ok(())
}

/// Writes one run file from records already sorted by (partition, record), with `counts[p]`
/// records in partition `p`.
pub fn write_run<'a, R: Record>(
    path: &Path,
    counts: &[u64],
    records: impl IntoIterator<Item = &'a R>,
) -> Result<(), StepError> {
    write_run_file(path, true, counts, records)
}

/// [`write_run`], with the fsyncs only if `durable`.
pub fn write_run_file<'a, R: Record>(
    path: &Path,
    durable: bool,
    counts: &[u64],
    records: impl IntoIterator<Item = &'a R>,
) -> Result<(), StepError> {
    write_file(path, durable, |w| {
        w.write_all(RUN_MAGIC)?;
        w.write_all(&(R::SIZE as u32).to_le_bytes())?;
        w.write_all(&(counts.len() as u32).to_le_bytes())?;
        for c in counts {
            w.write_all(&c.to_le_bytes())?;
        }
        let mut buf = vec![0u8; R::SIZE];
        for r in records {
            r.encode(&mut buf);
            w.write_all(&buf)?;
        }
        Ok(())
    })
}

/// Streaming writer of a one-partition run of records given in sorted order (count patched in
/// the header at the end).
pub struct RunStreamWriter<R: Record> {
    w: AtomicWriter,
    n: u64,
    buf: Vec<u8>,
    _r: std::marker::PhantomData<R>,
}

impl<R: Record> RunStreamWriter<R> {
    /// Starts writing `path` (atomically on [`finish`](Self::finish)).
    pub fn create(path: &Path) -> Result<Self, StepError> {
        Self::open_writer(path, true)
    }

    /// Starts writing a scratch file: renamed into place on [`finish`](Self::finish) but not
    /// fsynced (a re-run of the task writes it again).
    pub fn create_scratch(path: &Path) -> Result<Self, StepError> {
        Self::open_writer(path, false)
    }

    fn open_writer(path: &Path, durable: bool) -> Result<Self, StepError> {
        let mut w = if durable {
            AtomicWriter::create(path, 1 << 16)?
        } else {
            AtomicWriter::scratch(path, 1 << 16)?
        };
        let mut head = Vec::with_capacity(24);
        head.extend_from_slice(RUN_MAGIC);
        head.extend_from_slice(&(R::SIZE as u32).to_le_bytes());
        head.extend_from_slice(&1u32.to_le_bytes());
        head.extend_from_slice(&0u64.to_le_bytes());
        w.append(&head)?;
        Ok(Self {
            w,
            n: 0,
            buf: vec![0u8; R::SIZE],
            _r: std::marker::PhantomData,
        })
    }

    /// Appends a record (in the order the file's readers expect: sorted for key lookups).
    pub fn push(&mut self, r: R) -> Result<(), StepError> {
        r.encode(&mut self.buf);
        self.w.append(&self.buf)?;
        self.n += 1;
        Ok(())
    }

    /// Number of records written so far.
    pub fn len(&self) -> u64 {
        self.n
    }

    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Patches the header, fsyncs and renames into place.
    pub fn finish(self) -> Result<(), StepError> {
        let (mut file, commit) = self.w.into_file()?;
        file.seek(SeekFrom::Start(16))
            .and_then(|_| file.write_all(&self.n.to_le_bytes()))
            .map_err(|e| StepError::io(commit.tmp_path(), e))?;
        Ok(commit.commit_file(file)?)
    }
}

/// Streaming writer of a blob file (atomically renamed into place on
/// [`finish`](Self::finish)): byte strings appended in order, addressed by absolute offset.
pub struct BlobWriter {
    w: AtomicWriter,
    pos: u64,
}

impl BlobWriter {
    /// Starts writing `path`.
    pub fn create(path: &Path) -> Result<Self, StepError> {
        let mut w = AtomicWriter::create(path, 1 << 16)?;
        w.append(BLOB_MAGIC)?;
        Ok(Self {
            w,
            pos: BLOB_MAGIC.len() as u64,
        })
    }

    /// Appends `bytes`; returns their offset.
    pub fn append(&mut self, bytes: &[u8]) -> Result<u64, StepError> {
        let at = self.pos;
        self.w.append(bytes)?;
        self.pos += bytes.len() as u64;
        Ok(at)
    }

    /// Fsyncs and renames into place.
    pub fn finish(self) -> Result<(), StepError> {
        Ok(self.w.commit()?)
    }
}

/// Random reads of a blob file.
pub struct BlobReader {
    path: PathBuf,
    file: File,
    len: u64,
}

impl BlobReader {
    /// Opens `path`, checking its magic.
    pub fn open(path: &Path) -> Result<Self, StepError> {
        let file = File::open(path).map_err(|e| StepError::io(path, e))?;
        let mut head = [0u8; 8];
        file.read_exact_at(&mut head, 0)
            .map_err(|e| StepError::io(path, e))?;
        if &head != BLOB_MAGIC {
            return Err(StepError::Data(format!(
                "{}: not a curate blob file (bad header)",
                path.display()
            )));
        }
        let len = file.metadata().map_err(|e| StepError::io(path, e))?.len();
        Ok(Self {
            path: path.to_path_buf(),
            file,
            len,
        })
    }

    /// Reads `len` bytes at `off` into `out` (replacing its contents).
    pub fn read(&self, off: u64, len: u32, out: &mut Vec<u8>) -> Result<(), StepError> {
        if off < BLOB_MAGIC.len() as u64 || off + len as u64 > self.len {
            return Err(StepError::Data(format!(
                "{}: {len} bytes at offset {off} are outside the file ({} bytes)",
                self.path.display(),
                self.len
            )));
        }
        out.resize(len as usize, 0);
        self.file
            .read_exact_at(out, off)
            .map_err(|e| StepError::io(&self.path, e))
    }
}

/// Header of a run file.
#[derive(Debug, Clone)]
pub struct RunHeader {
    /// Record count per partition.
    pub counts: Vec<u64>,
    /// Byte offset of the first record.
    pub data_start: u64,
}

impl RunHeader {
    /// Byte offset and record count of partition `p`.
    pub fn partition(&self, p: usize, size: usize) -> (u64, u64) {
        let before: u64 = self.counts[..p].iter().sum();
        (self.data_start + before * size as u64, self.counts[p])
    }
}

/// Reads the header of run file `path`, checking the record size.
pub fn read_header(file: &File, path: &Path, size: usize) -> Result<RunHeader, StepError> {
    let mut head = [0u8; 16];
    file.read_exact_at(&mut head, 0)
        .map_err(|e| StepError::io(path, e))?;
    if &head[..8] != RUN_MAGIC || u32_at(&head, 8) as usize != size {
        return Err(StepError::Data(format!(
            "{}: not a curate run file of {size}-byte records (bad header)",
            path.display()
        )));
    }
    let parts = u32_at(&head, 12) as usize;
    let mut counts = vec![0u8; parts * 8];
    file.read_exact_at(&mut counts, 16)
        .map_err(|e| StepError::io(path, e))?;
    let counts: Vec<u64> = counts.chunks_exact(8).map(|c| u64_at(c, 0)).collect();
    let data_start = 16 + parts as u64 * 8;
    let len = file.metadata().map_err(|e| StepError::io(path, e))?.len();
    let expect = data_start + counts.iter().sum::<u64>() * size as u64;
    if len != expect {
        return Err(StepError::Data(format!(
            "{}: truncated run file ({len} bytes, header says {expect})",
            path.display()
        )));
    }
    Ok(RunHeader { counts, data_start })
}

/// Sequential reader of one partition of one run file.
pub struct PartReader<R: Record> {
    path: PathBuf,
    r: BufReader<File>,
    left: u64,
    buf: Vec<u8>,
    _r: std::marker::PhantomData<R>,
}

impl<R: Record> PartReader<R> {
    /// Opens partition `p` of run file `path` with a read buffer of `buf_bytes`.
    pub fn open(path: &Path, p: usize, buf_bytes: usize) -> Result<Self, StepError> {
        let file = File::open(path).map_err(|e| StepError::io(path, e))?;
        let head = read_header(&file, path, R::SIZE)?;
        if p >= head.counts.len() {
            return Err(StepError::Data(format!(
                "{}: has {} partitions, partition {p} requested",
                path.display(),
                head.counts.len()
            )));
        }
        let (off, n) = head.partition(p, R::SIZE);
        Self::at(path, file, off, n, buf_bytes)
    }

    /// Reads `n` records starting at byte `off`.
    pub fn at(
        path: &Path,
        mut file: File,
        off: u64,
        n: u64,
        buf_bytes: usize,
    ) -> Result<Self, StepError> {
        file.seek(SeekFrom::Start(off))
            .map_err(|e| StepError::io(path, e))?;
        let cap = buf_bytes.max(R::SIZE * 16);
        Ok(Self {
            path: path.to_path_buf(),
            r: BufReader::with_capacity(cap, file),
            left: n,
            buf: vec![0u8; R::SIZE],
            _r: std::marker::PhantomData,
        })
    }

    /// The next record, if any.
    pub fn next_record(&mut self) -> Result<Option<R>, StepError> {
        if self.left == 0 {
            return Ok(None);
        }
        self.r
            .read_exact(&mut self.buf)
            .map_err(|e| StepError::io(&self.path, e))?;
        self.left -= 1;
        Ok(Some(R::decode(&self.buf)))
    }
}

/// A source of sorted records for [`Merger`].
pub trait Source<R> {
    /// The next record, if any.
    fn next_record(&mut self) -> Result<Option<R>, StepError>;
}

impl<R: Record> Source<R> for PartReader<R> {
    fn next_record(&mut self) -> Result<Option<R>, StepError> {
        PartReader::next_record(self)
    }
}

/// An in-memory sorted source.
pub struct VecSource<R> {
    items: std::vec::IntoIter<R>,
}

impl<R> VecSource<R> {
    /// Wraps records already sorted.
    pub fn new(v: Vec<R>) -> Self {
        Self {
            items: v.into_iter(),
        }
    }
}

impl<R> Source<R> for VecSource<R> {
    fn next_record(&mut self) -> Result<Option<R>, StepError> {
        Ok(self.items.next())
    }
}

/// K-way merge of sorted sources (ties broken by source index, so the order is deterministic).
pub struct Merger<R: Record> {
    sources: Vec<Box<dyn Source<R> + Send>>,
    heap: BinaryHeap<Reverse<(R, usize)>>,
}

impl<R: Record> Merger<R> {
    /// Starts merging `sources`.
    pub fn new(mut sources: Vec<Box<dyn Source<R> + Send>>) -> Result<Self, StepError> {
        let mut heap = BinaryHeap::with_capacity(sources.len());
        for (i, s) in sources.iter_mut().enumerate() {
            if let Some(r) = s.next_record()? {
                heap.push(Reverse((r, i)));
            }
        }
        Ok(Self { sources, heap })
    }

    /// The next record in order with the index of its source.
    pub fn next_record(&mut self) -> Result<Option<(R, usize)>, StepError> {
        let Some(Reverse((r, i))) = self.heap.pop() else {
            return Ok(None);
        };
        if let Some(n) = self.sources[i].next_record()? {
            self.heap.push(Reverse((n, i)));
        }
        Ok(Some((r, i)))
    }
}

/// Sorts an unbounded stream of records under a memory budget: buffers, spills sorted runs to
/// `dir`, and merges them at the end.
pub struct ExternalSorter<R: Record> {
    dir: PathBuf,
    prefix: String,
    cap: usize,
    buf: Vec<R>,
    runs: Vec<PathBuf>,
    budget: usize,
}

impl<R: Record> ExternalSorter<R> {
    /// A sorter spilling to `dir/{prefix}-NNNN.run` whenever `budget` bytes of records are
    /// buffered.
    pub fn new(dir: &Path, prefix: &str, budget: usize) -> Self {
        // At least 64 records per spill: a real budget (`memory_limit` ≥ 4 MiB) holds far more;
        // the floor only matters to tests that force spills with tiny limits.
        let cap = (budget / std::mem::size_of::<R>().max(1)).max(64);
        Self {
            dir: dir.to_path_buf(),
            prefix: prefix.to_string(),
            cap,
            buf: Vec::new(),
            runs: Vec::new(),
            budget,
        }
    }

    /// Adds a record.
    pub fn push(&mut self, r: R) -> Result<(), StepError> {
        if self.buf.len() >= self.cap {
            self.spill()?;
        }
        self.buf.push(r);
        Ok(())
    }

    fn spill(&mut self) -> Result<(), StepError> {
        self.buf.sort_unstable();
        let path = self
            .dir
            .join(format!("{}-{:04}.run", self.prefix, self.runs.len()));
        write_run_file(&path, false, &[self.buf.len() as u64], self.buf.iter())?;
        self.runs.push(path);
        self.buf.clear();
        Ok(())
    }

    /// Number of runs spilled so far.
    pub fn spills(&self) -> usize {
        self.runs.len()
    }

    /// All records in sorted order. The spill files are deleted when the merger is dropped...
    /// they are removed by [`cleanup`](SortedOutput::cleanup).
    pub fn finish(mut self) -> Result<SortedOutput<R>, StepError> {
        self.buf.sort_unstable();
        let buf_bytes = (self.budget / (self.runs.len() + 1)).clamp(4096, 1 << 20);
        let mut sources: Vec<Box<dyn Source<R> + Send>> = Vec::with_capacity(self.runs.len() + 1);
        for p in &self.runs {
            sources.push(Box::new(PartReader::<R>::open(p, 0, buf_bytes)?));
        }
        sources.push(Box::new(VecSource::new(std::mem::take(&mut self.buf))));
        Ok(SortedOutput {
            merger: Merger::new(sources)?,
            runs: self.runs,
        })
    }
}

/// The merged output of an [`ExternalSorter`].
pub struct SortedOutput<R: Record> {
    merger: Merger<R>,
    runs: Vec<PathBuf>,
}

impl<R: Record> SortedOutput<R> {
    /// The next record in sorted order.
    pub fn next_record(&mut self) -> Result<Option<R>, StepError> {
        Ok(self.merger.next_record()?.map(|(r, _)| r))
    }

    /// Deletes the spill files.
    pub fn cleanup(self) {
        for p in &self.runs {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl<R: Record> Source<R> for SortedOutput<R> {
    fn next_record(&mut self) -> Result<Option<R>, StepError> {
        SortedOutput::next_record(self)
    }
}

/// Random-access view of a one-partition run file of records sorted by a u64 key in their first
/// eight bytes, read forward with a moving cursor (binary search to reposition).
pub struct KeyCursor {
    path: PathBuf,
    file: File,
    size: usize,
    start: u64,
    n: u64,
    pos: u64,
    buf: Vec<u8>,
    buf_first: u64,
    buf_len: u64,
    block: u64,
    last: Option<u64>,
}

impl KeyCursor {
    /// Opens `path`, a run file of `size`-byte records keyed by their leading little-endian u64,
    /// read in blocks of 4096 records (lookups of most of the file's keys).
    pub fn open(path: &Path, size: usize) -> Result<Self, StepError> {
        Self::with_block(path, size, 4096)
    }

    /// [`open`](Self::open) with blocks of `block` records: small blocks suit lookups of a few
    /// keys spread over a large file.
    pub fn with_block(path: &Path, size: usize, block: u64) -> Result<Self, StepError> {
        let file = File::open(path).map_err(|e| StepError::io(path, e))?;
        let head = read_header(&file, path, size)?;
        let n = head.counts.iter().sum();
        Ok(Self {
            path: path.to_path_buf(),
            file,
            size,
            start: head.data_start,
            n,
            pos: 0,
            buf: Vec::new(),
            buf_first: 0,
            buf_len: 0,
            block: block.max(1),
            last: None,
        })
    }

    /// Number of records.
    pub fn len(&self) -> u64 {
        self.n
    }

    /// True when the file holds no record.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    fn key_at(&self, i: u64) -> Result<u64, StepError> {
        let mut k = [0u8; 8];
        self.file
            .read_exact_at(&mut k, self.start + i * self.size as u64)
            .map_err(|e| StepError::io(&self.path, e))?;
        Ok(u64::from_le_bytes(k))
    }

    /// Moves the cursor to the first record whose key is `>= key`.
    pub fn seek(&mut self, key: u64) -> Result<(), StepError> {
        self.seek_from(0, key)
    }

    /// [`seek`](Self::seek) among records `lo..` (all records before `lo` have smaller keys).
    fn seek_from(&mut self, lo: u64, key: u64) -> Result<(), StepError> {
        let (mut lo, mut hi) = (lo, self.n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.key_at(mid)? < key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        self.pos = lo;
        Ok(())
    }

    /// The record under the cursor (without moving), or `None` at the end.
    pub fn peek(&mut self) -> Result<Option<&[u8]>, StepError> {
        if self.pos >= self.n {
            return Ok(None);
        }
        if self.pos < self.buf_first || self.pos >= self.buf_first + self.buf_len {
            let count = (self.n - self.pos).min(self.block);
            self.buf.resize(count as usize * self.size, 0);
            self.file
                .read_exact_at(&mut self.buf, self.start + self.pos * self.size as u64)
                .map_err(|e| StepError::io(&self.path, e))?;
            self.buf_first = self.pos;
            self.buf_len = count;
        }
        let at = (self.pos - self.buf_first) as usize * self.size;
        Ok(Some(&self.buf[at..at + self.size]))
    }

    /// True when the block in memory holds the cursor and a key `>= key`.
    fn buffered_beyond(&self, key: u64) -> bool {
        let end = self.buf_first + self.buf_len;
        self.buf_len > 0
            && self.pos >= self.buf_first
            && self.pos < end
            && u64_at(&self.buf, (self.buf_len as usize - 1) * self.size) >= key
    }

    /// Advances past the record under the cursor.
    pub fn advance(&mut self) {
        self.pos += 1;
    }

    /// Finds the record with exactly `key`, moving forward (keys must be asked in ascending
    /// order; a smaller key repositions with a binary search).
    pub fn find(&mut self, key: u64) -> Result<Option<&[u8]>, StepError> {
        // Every record before the cursor has a key below the last key asked for.
        if self.last.is_none_or(|l| key < l) {
            self.seek(key)?;
        } else if self.pos < self.n && !self.buffered_beyond(key) {
            // The key lies past the block in memory: a binary search over the rest rather than
            // reading every block in between (lookups of keys far apart).
            self.seek_from(self.pos, key)?;
        }
        self.last = Some(key);
        loop {
            let k = match self.peek()? {
                Some(cur) => u64_at(cur, 0),
                None => return Ok(None),
            };
            if k < key {
                self.advance();
                continue;
            }
            if k == key {
                return self.peek();
            }
            return Ok(None);
        }
    }
}

pub use curate_core::config::parse_bytes;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    struct K(u64, u64);

    impl Record for K {
        const SIZE: usize = 16;
        fn encode(&self, out: &mut [u8]) {
            out[..8].copy_from_slice(&self.0.to_le_bytes());
            out[8..16].copy_from_slice(&self.1.to_le_bytes());
        }
        fn decode(b: &[u8]) -> Self {
            K(u64_at(b, 0), u64_at(b, 8))
        }
    }

    #[test]
    fn external_sort_spills_and_merges() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = ExternalSorter::<K>::new(dir.path(), "t", 16 * 1024);
        let mut expect = Vec::new();
        let mut x = 12345u64;
        for i in 0..10_000u64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            s.push(K(x >> 40, i)).unwrap();
            expect.push(K(x >> 40, i));
        }
        assert!(s.spills() >= 5);
        expect.sort();
        let mut out = s.finish().unwrap();
        let mut got = Vec::new();
        while let Some(r) = out.next_record().unwrap() {
            got.push(r);
        }
        out.cleanup();
        assert_eq!(got, expect);
    }

    #[test]
    fn partitioned_run_and_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.run");
        let recs = [K(1, 0), K(5, 0), K(2, 1), K(3, 1), K(9, 1)];
        write_run(&p, &[2, 3], recs.iter()).unwrap();
        let mut r = PartReader::<K>::open(&p, 1, 4096).unwrap();
        let mut got = Vec::new();
        while let Some(x) = r.next_record().unwrap() {
            got.push(x);
        }
        assert_eq!(got, vec![K(2, 1), K(3, 1), K(9, 1)]);

        let q = dir.path().join("b.run");
        let mut w = RunStreamWriter::<K>::create(&q).unwrap();
        for k in [2u64, 4, 8, 16] {
            w.push(K(k, k * 10)).unwrap();
        }
        w.finish().unwrap();
        let mut c = KeyCursor::open(&q, 16).unwrap();
        assert!(c.find(1).unwrap().is_none());
        assert_eq!(u64_at(c.find(4).unwrap().unwrap(), 8), 40);
        assert!(c.find(5).unwrap().is_none());
        assert!(c.find(16).unwrap().is_some());
        assert!(c.find(17).unwrap().is_none());
        assert!(c.find(2).unwrap().is_some(), "a smaller key repositions");
    }

    #[test]
    fn cursor_finds_sparse_and_dense_keys_for_any_block_size() {
        let dir = tempfile::tempdir().unwrap();
        let q = dir.path().join("c.run");
        let keys: Vec<u64> = (0..5000u64).map(|i| i * 8 + (i % 7)).collect();
        let mut w = RunStreamWriter::<K>::create(&q).unwrap();
        for k in &keys {
            w.push(K(*k, k ^ 0xabc)).unwrap();
        }
        w.finish().unwrap();
        let set: std::collections::BTreeSet<u64> = keys.iter().copied().collect();
        for block in [1u64, 3, 64, 4096] {
            // Dense (every key up to 2000), then sparse jumps, then a restart from a smaller key.
            let asks: Vec<u64> = (0..2000u64)
                .chain((2000..40_000).step_by(997))
                .chain([5, 9, 39_999])
                .collect();
            let mut c = KeyCursor::with_block(&q, 16, block).unwrap();
            for k in asks {
                let got = c.find(k).unwrap().map(|b| u64_at(b, 8));
                assert_eq!(
                    got,
                    set.contains(&k).then_some(k ^ 0xabc),
                    "key {k} block {block}"
                );
            }
        }
    }
}
