//! Dedup provenance: the survivor every removed duplicate names in the exclusion output's
//! `duplicate_of` column, found with bounded memory.
//!
//! The processor of the pass after a dedup barrier knows a duplicate's survivor only by its
//! document key (`NodeRec::root`); the survivor's *id* is in another task's rows. So:
//!
//! 1. **observe**: when the input has an id column, each observer task also writes the
//!    `(key → id)` of the documents it observes ([`NamesWriter`]: a one-partition run of
//!    [`BlobRef`]s sorted by key, and a blob of the ids). Observer tasks hold ascending, disjoint
//!    key ranges, so the tasks' files together are one sorted table ([`NamesTable`]).
//! 2. **groups / cluster stage**: the `(survivor key, duplicate key)` pairs are sorted by survivor
//!    (external sort), the survivors' ids looked up in that table in ascending key order, each
//!    written once to the stage's name blob, and one [`ProvRec`] per duplicate (`key → name`)
//!    external-sorted by duplicate key ([`ProvBuilder`]). With `against`, the names of the
//!    earlier snapshots' survivors come from their published index the same way.
//! 3. **filter**: the processor walks the sorted provenance file with a forward cursor
//!    ([`ProvLookup`]), like the node file.
//!
//! Without an id column, an in-run duplicate names its survivor's key (16 hex digits, as
//! `DocBatch::id_string` renders keys), which the processor has already: no files are written.
//! A survivor whose id is null is named by its key the same way.

use std::io::Write;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray};
use arrow::datatypes::DataType;
use curate_core::{DocBatch, StepError};

use crate::runs::{
    BlobReader, BlobWriter, KeyCursor, PartReader, Record, RunStreamWriter, Source, u32_at, u64_at,
};

/// The `len` of a [`BlobRef`] or [`ProvRec`] that has no bytes: a null id, or a name an old
/// index cannot give.
pub(crate) const NULL_LEN: u32 = u32::MAX;

/// A key's byte string in a blob file: `(key, offset, length)`, sorted by key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct BlobRef {
    pub key: u64,
    pub off: u64,
    pub len: u32,
}

impl Record for BlobRef {
    const SIZE: usize = 20;
    fn encode(&self, out: &mut [u8]) {
        out[..8].copy_from_slice(&self.key.to_le_bytes());
        out[8..16].copy_from_slice(&self.off.to_le_bytes());
        out[16..20].copy_from_slice(&self.len.to_le_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        BlobRef {
            key: u64_at(b, 0),
            off: u64_at(b, 8),
            len: u32_at(b, 16),
        }
    }
}

/// A removed document and the name of what it duplicates: `snap` 0 for a survivor of this run,
/// `s + 1` for one of the `s`-th `against` snapshot; the name's bytes in the stage's blob
/// (`len` = [`NULL_LEN`]: unknown). Sorted by key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ProvRec {
    pub key: u64,
    pub snap: u32,
    pub off: u64,
    pub len: u32,
}

impl Record for ProvRec {
    const SIZE: usize = 24;
    fn encode(&self, out: &mut [u8]) {
        out[..8].copy_from_slice(&self.key.to_le_bytes());
        out[8..12].copy_from_slice(&self.snap.to_le_bytes());
        out[12..20].copy_from_slice(&self.off.to_le_bytes());
        out[20..24].copy_from_slice(&self.len.to_le_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        ProvRec {
            key: u64_at(b, 0),
            snap: u32_at(b, 8),
            off: u64_at(b, 12),
            len: u32_at(b, 20),
        }
    }
}

/// A duplicate and its survivor, sorted by survivor (then duplicate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct RootKey {
    pub root: u64,
    pub key: u64,
}

impl Record for RootKey {
    const SIZE: usize = 16;
    fn encode(&self, out: &mut [u8]) {
        out[..8].copy_from_slice(&self.root.to_le_bytes());
        out[8..16].copy_from_slice(&self.key.to_le_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        RootKey {
            root: u64_at(b, 0),
            key: u64_at(b, 8),
        }
    }
}

/// Renders row `i` of an id column into `out` (strings as-is, integers in decimal, anything
/// else as Arrow displays it); false for a null id.
pub(crate) fn render_id(col: &dyn Array, i: usize, out: &mut Vec<u8>) -> bool {
    out.clear();
    if col.is_null(i) {
        return false;
    }
    match col.data_type() {
        DataType::Utf8 => out.extend_from_slice(col.as_string::<i32>().value(i).as_bytes()),
        DataType::LargeUtf8 => out.extend_from_slice(col.as_string::<i64>().value(i).as_bytes()),
        DataType::Utf8View => out.extend_from_slice(col.as_string_view().value(i).as_bytes()),
        _ => match arrow::util::display::array_value_to_string(col, i) {
            Ok(s) => out.extend_from_slice(s.as_bytes()),
            Err(_) => return false,
        },
    }
    true
}

/// Renders a document key as `DocBatch::id_string` does without an id column: 16 hex digits.
pub(crate) fn render_key(key: u64, out: &mut Vec<u8>) {
    out.clear();
    let _ = write!(out, "{key:016x}");
}

/// Paths of an observer task's names: the sorted refs and the blob.
pub(crate) fn names_paths(dir: &Path, task: usize) -> (PathBuf, PathBuf) {
    let base = dir.join("observe");
    (
        base.join(format!("task-{task:05}-names.keys")),
        base.join(format!("task-{task:05}-names.bin")),
    )
}

/// The names of every observer task, in task order.
pub(crate) fn observer_names(dir: &Path, tasks: usize) -> Vec<(PathBuf, PathBuf)> {
    (0..tasks).map(|t| names_paths(dir, t)).collect()
}

/// An observer task's `(key → id)` table, written in ascending key order.
pub(crate) struct NamesWriter {
    refs: RunStreamWriter<BlobRef>,
    blob: BlobWriter,
    buf: Vec<u8>,
}

impl NamesWriter {
    /// Starts writing `keys` and `bin` (see [`names_paths`]).
    pub(crate) fn create(paths: &(PathBuf, PathBuf)) -> Result<Self, StepError> {
        Ok(Self {
            refs: RunStreamWriter::create(&paths.0)?,
            blob: BlobWriter::create(&paths.1)?,
            buf: Vec::new(),
        })
    }

    /// Records the id of row `i` of `batch` (keys must ascend across calls).
    pub(crate) fn push(&mut self, batch: &DocBatch, i: usize) -> Result<(), StepError> {
        let ids = batch.ids().ok_or_else(|| {
            StepError::Data(
                "the id column is missing from the batch (dedup provenance needs it)".into(),
            )
        })?;
        let key = batch.keys().value(i);
        let (off, len) = if render_id(ids, i, &mut self.buf) {
            (self.blob.append(&self.buf)?, self.buf.len() as u32)
        } else {
            (0, NULL_LEN)
        };
        self.refs.push(BlobRef { key, off, len })
    }

    /// Records every row of `batch`.
    pub(crate) fn push_all(&mut self, batch: &DocBatch) -> Result<(), StepError> {
        for i in 0..batch.len() {
            self.push(batch, i)?;
        }
        Ok(())
    }

    /// Renames both files into place.
    pub(crate) fn finish(self) -> Result<(), StepError> {
        self.refs.finish()?;
        self.blob.finish()
    }
}

/// Copies `(key → id)` entries into a new names table (the index's survivors).
pub(crate) struct NamesCopier {
    refs: RunStreamWriter<BlobRef>,
    blob: BlobWriter,
}

impl NamesCopier {
    pub(crate) fn create(paths: &(PathBuf, PathBuf)) -> Result<Self, StepError> {
        Ok(Self {
            refs: RunStreamWriter::create(&paths.0)?,
            blob: BlobWriter::create(&paths.1)?,
        })
    }

    /// Appends `key` with `name` (`None`: a null id).
    pub(crate) fn push(&mut self, key: u64, name: Option<&[u8]>) -> Result<(), StepError> {
        let (off, len) = match name {
            Some(b) => (self.blob.append(b)?, b.len() as u32),
            None => (0, NULL_LEN),
        };
        self.refs.push(BlobRef { key, off, len })
    }

    pub(crate) fn finish(self) -> Result<(), StepError> {
        self.refs.finish()?;
        self.blob.finish()
    }
}

/// Streams every entry of a list of names tables in order (they hold ascending key ranges).
pub(crate) struct NamesScan {
    files: std::vec::IntoIter<(PathBuf, PathBuf)>,
    cur: Option<(PartReader<BlobRef>, BlobReader)>,
}

impl NamesScan {
    pub(crate) fn new(files: Vec<(PathBuf, PathBuf)>) -> Self {
        Self {
            files: files.into_iter(),
            cur: None,
        }
    }

    /// The next entry, its name read into `out` (`Some(false)`: a null id).
    pub(crate) fn next_entry(
        &mut self,
        out: &mut Vec<u8>,
    ) -> Result<Option<(u64, bool)>, StepError> {
        loop {
            if let Some((refs, blob)) = self.cur.as_mut()
                && let Some(r) = refs.next_record()?
            {
                if r.len == NULL_LEN {
                    out.clear();
                    return Ok(Some((r.key, false)));
                }
                blob.read(r.off, r.len, out)?;
                return Ok(Some((r.key, true)));
            }
            let Some((keys, bin)) = self.files.next() else {
                return Ok(None);
            };
            self.cur = Some((
                PartReader::open(&keys, 0, 1 << 16)?,
                BlobReader::open(&bin)?,
            ));
        }
    }
}

/// Looks up ids by key in names tables holding ascending key ranges (one per observer task, or
/// one published with an index), for keys asked in ascending order. Holds one table's cursor
/// (a block of 64 records) at a time and each table's first key.
pub(crate) struct NamesTable {
    files: Vec<(PathBuf, PathBuf)>,
    /// First key of each non-empty table (same order as `files`).
    firsts: Vec<u64>,
    cur: Option<(usize, KeyCursor, BlobReader)>,
}

impl NamesTable {
    pub(crate) fn open(files: Vec<(PathBuf, PathBuf)>) -> Result<Self, StepError> {
        let mut kept = Vec::new();
        let mut firsts = Vec::new();
        for (keys, bin) in files {
            let mut c = KeyCursor::with_block(&keys, BlobRef::SIZE, 1)?;
            if c.is_empty() {
                continue;
            }
            c.seek(0)?;
            let first = c.peek()?.map(|b| u64_at(b, 0)).unwrap_or(0);
            firsts.push(first);
            kept.push((keys, bin));
        }
        Ok(Self {
            files: kept,
            firsts,
            cur: None,
        })
    }

    /// The id of `key` into `out`: `Some(true)`; `Some(false)` for a null id; `None` when no
    /// table has the key.
    pub(crate) fn get(&mut self, key: u64, out: &mut Vec<u8>) -> Result<Option<bool>, StepError> {
        // The table whose range holds the key: the last one starting at or before it.
        let t = self.firsts.partition_point(|&f| f <= key);
        if t == 0 {
            return Ok(None);
        }
        let t = t - 1;
        if self.cur.as_ref().is_none_or(|(i, _, _)| *i != t) {
            let (keys, bin) = &self.files[t];
            self.cur = Some((
                t,
                KeyCursor::with_block(keys, BlobRef::SIZE, 64)?,
                BlobReader::open(bin)?,
            ));
        }
        let (_, cursor, blob) = self.cur.as_mut().expect("cursor");
        let Some(b) = cursor.find(key)? else {
            return Ok(None);
        };
        let r = BlobRef::decode(b);
        if r.len == NULL_LEN {
            out.clear();
            return Ok(Some(false));
        }
        blob.read(r.off, r.len, out)?;
        Ok(Some(true))
    }
}

/// Builds a stage's provenance: the name blob (each name written once, in the order names are
/// added) and the [`ProvRec`]s, external-sorted by duplicate key.
pub(crate) struct ProvBuilder {
    blob: BlobWriter,
    sorter: crate::runs::ExternalSorter<ProvRec>,
}

impl ProvBuilder {
    /// Writes the blob to `blob`; sorts under `budget` bytes with spills in `tmp`.
    pub(crate) fn create(tmp: &Path, blob: &Path, budget: usize) -> Result<Self, StepError> {
        Ok(Self {
            blob: BlobWriter::create(blob)?,
            sorter: crate::runs::ExternalSorter::new(tmp, "prov", budget),
        })
    }

    /// Stores a name; returns its `(offset, length)` for [`ProvRec`]s (`None`: unknown).
    pub(crate) fn name(&mut self, name: Option<&[u8]>) -> Result<(u64, u32), StepError> {
        match name {
            Some(b) => Ok((self.blob.append(b)?, b.len() as u32)),
            None => Ok((0, NULL_LEN)),
        }
    }

    pub(crate) fn push(&mut self, r: ProvRec) -> Result<(), StepError> {
        self.sorter.push(r)
    }

    /// Sorted runs spilled so far.
    pub(crate) fn spills(&self) -> usize {
        self.sorter.spills()
    }

    /// Writes the sorted records to `path` and renames the blob into place.
    pub(crate) fn finish(self, path: &Path) -> Result<(), StepError> {
        let mut w = RunStreamWriter::<ProvRec>::create(path)?;
        let mut sorted = self.sorter.finish()?;
        while let Some(r) = sorted.next_record()? {
            w.push(r)?;
        }
        sorted.cleanup();
        w.finish()?;
        self.blob.finish()
    }
}

/// Names the survivors of in-run duplicates: `pairs` sorted by survivor, each survivor's id
/// looked up once in `names` (its key when the id is null), one [`ProvRec`] per duplicate.
pub(crate) fn name_survivors(
    pairs: &mut dyn Source<RootKey>,
    names: &mut NamesTable,
    prov: &mut ProvBuilder,
) -> Result<(), StepError> {
    let mut buf = Vec::new();
    let mut cur: Option<(u64, (u64, u32))> = None;
    while let Some(p) = pairs.next_record()? {
        let at = match cur {
            Some((root, at)) if root == p.root => at,
            _ => {
                match names.get(p.root, &mut buf)? {
                    Some(true) => {}
                    Some(false) => render_key(p.root, &mut buf),
                    None => {
                        return Err(StepError::Other(format!(
                            "survivor {:016x} has no entry in the observers' names (observe/task-*-names.keys)",
                            p.root
                        )));
                    }
                }
                let at = prov.name(Some(&buf))?;
                cur = Some((p.root, at));
                at
            }
        };
        prov.push(ProvRec {
            key: p.key,
            snap: 0,
            off: at.0,
            len: at.1,
        })?;
    }
    Ok(())
}

/// The processor's view of a stage's provenance: a forward cursor over the sorted records and
/// random reads of the names.
pub(crate) struct ProvLookup {
    cursor: KeyCursor,
    blob: BlobReader,
    path: PathBuf,
}

impl ProvLookup {
    pub(crate) fn open(run: &Path, blob: &Path) -> Result<Self, StepError> {
        for p in [run, blob] {
            if !p.exists() {
                return Err(StepError::Other(format!(
                    "{}: missing dedup stage output (did the barrier stages run?)",
                    p.display()
                )));
            }
        }
        Ok(Self {
            cursor: KeyCursor::open(run, ProvRec::SIZE)?,
            blob: BlobReader::open(blob)?,
            path: run.to_path_buf(),
        })
    }

    /// The provenance of removed document `key` (keys asked in ascending order): its snapshot
    /// number (0: this run) and whether a name was read into `out`.
    pub(crate) fn get(&mut self, key: u64, out: &mut Vec<u8>) -> Result<(u32, bool), StepError> {
        let Some(b) = self.cursor.find(key)? else {
            return Err(StepError::Other(format!(
                "{}: no provenance record for removed document {key:016x}",
                self.path.display()
            )));
        };
        let r = ProvRec::decode(b);
        if r.len == NULL_LEN {
            out.clear();
            return Ok((r.snap, false));
        }
        self.blob.read(r.off, r.len, out)?;
        Ok((r.snap, true))
    }
}

/// A named dropped row: (row, snapshot number, byte range of the name in [`DropNames`]'s bytes,
/// or None for a null name).
type DropName = (usize, u32, Option<(usize, usize)>);

/// The exclusion columns of one batch: `duplicate_of` (and, with snapshots, the snapshot of a
/// match), filled only for the rows the step drops. Reused across batches.
#[derive(Default)]
pub(crate) struct DropNames {
    rows: Vec<DropName>,
    bytes: Vec<u8>,
}

impl DropNames {
    pub(crate) fn clear(&mut self) {
        self.rows.clear();
        self.bytes.clear();
    }

    /// Names the dropped row `row`: `name` (None: unknown), of snapshot `snap` (0: this run).
    pub(crate) fn push(&mut self, row: usize, snap: u32, name: Option<&[u8]>) {
        let range = name.map(|b| {
            let at = self.bytes.len();
            self.bytes.extend_from_slice(b);
            (at, self.bytes.len())
        });
        self.rows.push((row, snap, range));
    }

    /// Sets `duplicate_of` (and, given `snapshots`, `duplicate_of_snapshot`: the `against`
    /// entry of a match, null for a survivor of this run) on `batch`, null on kept rows. Nothing
    /// when no row was named.
    pub(crate) fn apply(&self, batch: &mut DocBatch, snapshots: Option<&[String]>) {
        if self.rows.is_empty() {
            return;
        }
        let n = batch.len();
        let mut dup = arrow::array::StringBuilder::with_capacity(n, self.bytes.len());
        let mut snap = snapshots.map(|_| arrow::array::StringBuilder::with_capacity(n, 0));
        let mut next = self.rows.iter().peekable();
        for i in 0..n {
            match next.next_if(|r| r.0 == i) {
                Some(&(_, s, range)) => {
                    match range {
                        Some((a, b)) => {
                            dup.append_value(String::from_utf8_lossy(&self.bytes[a..b]))
                        }
                        None => dup.append_null(),
                    }
                    if let (Some(b), Some(names)) = (snap.as_mut(), snapshots) {
                        match s.checked_sub(1).and_then(|s| names.get(s as usize)) {
                            Some(name) => b.append_value(name),
                            None => b.append_null(),
                        }
                    }
                }
                None => {
                    dup.append_null();
                    if let Some(b) = snap.as_mut() {
                        b.append_null();
                    }
                }
            }
        }
        batch.set_column(DUPLICATE_OF, std::sync::Arc::new(dup.finish()));
        if let Some(mut b) = snap {
            batch.set_column(DUPLICATE_OF_SNAPSHOT, std::sync::Arc::new(b.finish()));
        }
    }
}

/// The exclusion column naming a duplicate's survivor.
pub const DUPLICATE_OF: &str = "duplicate_of";
/// The exclusion column naming the earlier snapshot (`against` entry) of a MinHash match.
pub const DUPLICATE_OF_SNAPSHOT: &str = "duplicate_of_snapshot";
