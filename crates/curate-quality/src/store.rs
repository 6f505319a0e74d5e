//! Work files of the `train` step's observers: one per task, holding each labelled row (its key,
//! label, split, token count and text), so memory stays bounded while the pass runs. The fit
//! stage derives every candidate model's features from the stored text (model selection tries
//! several feature settings, and the features of a document are larger than its text).
//!
//! Layout: magic `CQOBS002`, then records `key u64, label f32, holdout u8, tokens u32, n u32,
//! n bytes of UTF-8 text`, little-endian.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crate::Error;

const MAGIC: &[u8; 8] = b"CQOBS002";

/// Path of task `task`'s observation file in the step directory.
pub(crate) fn obs_path(dir: &Path, task: usize) -> PathBuf {
    dir.join(format!("observed-{task:06}.bin"))
}

/// Path of the observation file of labelled rows from outside the input (see
/// `TrainConfig::external_labels`).
pub(crate) fn external_path(dir: &Path) -> PathBuf {
    dir.join("observed-external.bin")
}

/// Every observation file of a step: one per observed task, plus the external one if present.
pub(crate) fn obs_files(dir: &Path, tasks: usize) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = (0..tasks).map(|t| obs_path(dir, t)).collect();
    let ext = external_path(dir);
    if ext.exists() {
        v.push(ext);
    }
    v
}

/// Reads the rows of a `label` step's `labels.parquet` whose `key` is null (labelled documents
/// from outside the input), calling `f(score, holdout, text)` for each with a non-null score.
pub(crate) fn read_external_labels(
    path: &Path,
    mut f: impl FnMut(f32, bool, &str) -> Result<(), Error>,
) -> Result<(), Error> {
    use arrow::array::{Array, AsArray};
    use parquet::arrow::ProjectionMask;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let corrupt = |m: String| Error::Corrupt {
        path: path.to_path_buf(),
        message: m,
    };
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let b = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| corrupt(e.to_string()))?;
    let schema = b.parquet_schema();
    let mut idx = Vec::new();
    for name in ["key", "split", "score", "text"] {
        let i = (0..schema.num_columns())
            .find(|&i| schema.column(i).name() == name)
            .ok_or_else(|| corrupt(format!("column `{name}` is missing")))?;
        idx.push(i);
    }
    let mask = ProjectionMask::leaves(schema, idx);
    let reader = b
        .with_projection(mask)
        .with_batch_size(1024)
        .build()
        .map_err(|e| corrupt(e.to_string()))?;
    for (rg, batch) in reader.enumerate() {
        let batch = batch.map_err(|e| corrupt(format!("batch {rg}: {e}")))?;
        let col = |n: &str| {
            batch
                .column_by_name(n)
                .ok_or_else(|| corrupt(format!("column `{n}` is missing")))
        };
        let key = col("key")?;
        let split = arrow::compute::cast(col("split")?, &arrow::datatypes::DataType::Utf8)
            .map_err(|e| corrupt(e.to_string()))?;
        let score = arrow::compute::cast(col("score")?, &arrow::datatypes::DataType::Float32)
            .map_err(|e| corrupt(e.to_string()))?;
        let text = arrow::compute::cast(col("text")?, &arrow::datatypes::DataType::Utf8)
            .map_err(|e| corrupt(e.to_string()))?;
        let (split, score, text) = (
            split.as_string::<i32>(),
            score.as_primitive::<arrow::datatypes::Float32Type>(),
            text.as_string::<i32>(),
        );
        for i in 0..batch.num_rows() {
            if !key.is_null(i) || score.is_null(i) || text.is_null(i) || score.value(i).is_nan() {
                continue;
            }
            let holdout = !split.is_null(i) && split.value(i) == "holdout";
            f(score.value(i), holdout, text.value(i))?;
        }
    }
    Ok(())
}

/// Streams records into a temp file; [`ObsWriter::finish`] renames it into place.
pub(crate) struct ObsWriter {
    out: curate_io::atomic::AtomicWriter,
}

impl ObsWriter {
    pub(crate) fn create(path: PathBuf) -> Result<Self, Error> {
        let mut out = curate_io::atomic::AtomicWriter::create(&path, 1 << 20)?;
        out.append(MAGIC)?;
        Ok(ObsWriter { out })
    }

    pub(crate) fn write(
        &mut self,
        key: u64,
        label: f32,
        holdout: bool,
        tokens: u32,
        text: &[u8],
    ) -> Result<(), Error> {
        let mut head = [0u8; 21];
        head[..8].copy_from_slice(&key.to_le_bytes());
        head[8..12].copy_from_slice(&label.to_le_bytes());
        head[12] = holdout as u8;
        head[13..17].copy_from_slice(&tokens.to_le_bytes());
        let n = u32::try_from(text.len()).map_err(|_| Error::Corrupt {
            path: self.out.tmp_path().to_path_buf(),
            message: format!("document {key} is over 4 GiB"),
        })?;
        head[17..21].copy_from_slice(&n.to_le_bytes());
        self.out.append(&head)?;
        Ok(self.out.append(text)?)
    }

    pub(crate) fn finish(self) -> Result<(), Error> {
        Ok(self.out.commit()?)
    }
}

/// One record's header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ObsHead {
    pub key: u64,
    pub label: f32,
    pub holdout: bool,
    pub tokens: u32,
}

/// Reads every record of `path`, calling `f` with its header and text; `want` decides from the
/// header whether the text is needed (skipped ones are read past).
pub(crate) fn read_obs(
    path: &Path,
    mut want: impl FnMut(&ObsHead) -> bool,
    mut f: impl FnMut(&ObsHead, &[u8]),
) -> Result<(), Error> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut r = BufReader::with_capacity(1 << 20, file);
    let corrupt = |m: &str| Error::Corrupt {
        path: path.to_path_buf(),
        message: m.to_string(),
    };
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic)
        .map_err(|_| corrupt("missing header"))?;
    if &magic != MAGIC {
        return Err(corrupt("not a train observation file (bad magic)"));
    }
    let mut head = [0u8; 21];
    let mut text = Vec::new();
    loop {
        match read_full(&mut r, &mut head).map_err(|e| Error::io(path, e))? {
            0 => return Ok(()),
            21 => {}
            _ => return Err(corrupt("truncated record")),
        }
        let h = ObsHead {
            key: u64::from_le_bytes(head[..8].try_into().unwrap()),
            label: f32::from_le_bytes(head[8..12].try_into().unwrap()),
            holdout: head[12] != 0,
            tokens: u32::from_le_bytes(head[13..17].try_into().unwrap()),
        };
        let n = u32::from_le_bytes(head[17..21].try_into().unwrap()) as usize;
        text.resize(n, 0);
        r.read_exact(&mut text)
            .map_err(|_| corrupt("truncated record text"))?;
        if want(&h) {
            f(&h, &text);
        }
    }
}

/// Reads until `buf` is full or EOF; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Labelled documents: parallel arrays, texts in one buffer.
#[derive(Debug, Clone, Default)]
pub struct Labelled {
    /// Document keys.
    pub keys: Vec<u64>,
    /// Teacher labels.
    pub labels: Vec<f32>,
    /// Whether each row is held out.
    pub holdout: Vec<bool>,
    /// Token counts (held-out rows only; 0 otherwise).
    pub tokens: Vec<u32>,
    /// `offsets[i]..offsets[i + 1]` is row i's text in `bytes`.
    pub offsets: Vec<usize>,
    /// All texts.
    pub bytes: Vec<u8>,
}

impl Labelled {
    /// No rows.
    pub fn new() -> Self {
        Labelled {
            offsets: vec![0],
            ..Default::default()
        }
    }

    /// Adds a row.
    pub fn push(&mut self, key: u64, label: f32, holdout: bool, tokens: u32, text: &[u8]) {
        self.keys.push(key);
        self.labels.push(label);
        self.holdout.push(holdout);
        self.tokens.push(tokens);
        self.bytes.extend_from_slice(text);
        self.offsets.push(self.bytes.len());
    }

    /// Rows.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True without rows.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Row i's text.
    #[inline]
    pub fn text(&self, i: usize) -> &[u8] {
        &self.bytes[self.offsets[i]..self.offsets[i + 1]]
    }

    /// The rows reordered by key (so the result does not depend on how tasks split the input).
    pub fn sorted_by_key(self) -> Labelled {
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.sort_by_key(|&i| self.keys[i]);
        let mut out = Labelled::new();
        out.bytes.reserve(self.bytes.len());
        for i in order {
            out.push(
                self.keys[i],
                self.labels[i],
                self.holdout[i],
                self.tokens[i],
                self.text(i),
            );
        }
        out
    }
}

/// Loads the rows of every task's observation file that `select` accepts, sorted by key.
pub(crate) fn load_labelled(
    dir: &Path,
    tasks: usize,
    mut select: impl FnMut(&ObsHead) -> bool,
) -> Result<Labelled, Error> {
    let mut d = Labelled::new();
    for p in obs_files(dir, tasks) {
        read_obs(&p, &mut select, |h, t| {
            d.push(h.key, h.label, h.holdout, h.tokens, t)
        })?;
    }
    Ok(d.sorted_by_key())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let p = obs_path(dir.path(), 0);
        let mut w = ObsWriter::create(p.clone()).unwrap();
        w.write(7, 4.0, true, 12, b"some text").unwrap();
        w.write(2, 1.0, false, 0, b"").unwrap();
        w.finish().unwrap();
        let mut got = Vec::new();
        read_obs(
            &p,
            |_| true,
            |h, t| got.push((h.key, h.label, h.holdout, h.tokens, t.to_vec())),
        )
        .unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], (7, 4.0, true, 12, b"some text".to_vec()));
        let d = load_labelled(dir.path(), 1, |_| true).unwrap();
        assert_eq!(d.keys, vec![2, 7]);
        assert_eq!(d.text(1), b"some text");
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 3]).unwrap();
        let e = read_obs(&p, |_| true, |_, _| {}).unwrap_err().to_string();
        assert!(
            e.contains("observed-000000.bin") && e.contains("truncated"),
            "{e}"
        );
    }
}
