//! [`DocBatch`]: a batch of documents and the decisions steps make about them.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;

/// A document's stable identity within one run's input: the input file's ordinal (inputs are
/// sorted) in the top 24 bits and the row index within that file in the low 40 bits. It does not
/// depend on how the input is split into tasks, so anything keyed on it (dedup survivors, sample
/// selection) is the same for every task size and thread count.
pub type DocKey = u64;

/// Number of low bits of a [`DocKey`] that hold the row index within a file.
pub const ROW_BITS: u32 = 40;

/// Builds a [`DocKey`] from a file ordinal and a row index within that file.
#[inline]
pub fn doc_key(file_ordinal: u32, row: u64) -> DocKey {
    ((file_ordinal as u64) << ROW_BITS) | (row & ((1u64 << ROW_BITS) - 1))
}

/// Splits a [`DocKey`] into (file ordinal, row index).
#[inline]
pub fn split_key(key: DocKey) -> (u32, u64) {
    ((key >> ROW_BITS) as u32, key & ((1u64 << ROW_BITS) - 1))
}

/// Verdict code meaning "keep".
pub const KEEP: u32 = 0;

/// A batch of documents flowing through the steps of one task.
///
/// Rows are documents that are still alive when the current step starts. A step may drop rows
/// (with one of its declared reasons), replace the text column, or add/replace columns. The
/// pipeline compacts dropped rows out between steps, routing them to the exclusion output.
#[derive(Debug, Clone)]
pub struct DocBatch {
    record: RecordBatch,
    text: usize,
    id: Option<usize>,
    keys: Arc<UInt64Array>,
    verdicts: Vec<u32>,
    dropped: usize,
}

impl DocBatch {
    /// Wraps a record batch. `text` must be a Utf8 column; `keys` holds one [`DocKey`] per row.
    pub fn new(record: RecordBatch, text: usize, id: Option<usize>, keys: UInt64Array) -> Self {
        assert_eq!(record.num_rows(), keys.len(), "one key per row");
        assert_eq!(
            record.column(text).data_type(),
            &DataType::Utf8,
            "text column is Utf8"
        );
        let rows = record.num_rows();
        Self {
            record,
            text,
            id,
            keys: Arc::new(keys),
            verdicts: vec![KEEP; rows],
            dropped: 0,
        }
    }

    /// Number of rows (documents) in the batch, dropped ones included.
    pub fn len(&self) -> usize {
        self.record.num_rows()
    }

    /// True when the batch has no rows.
    pub fn is_empty(&self) -> bool {
        self.record.num_rows() == 0
    }

    /// The text column.
    pub fn texts(&self) -> &StringArray {
        self.record.column(self.text).as_string::<i32>()
    }

    /// The text of row `i` (empty for a null text).
    #[inline]
    pub fn text(&self, i: usize) -> &str {
        let t = self.texts();
        if t.is_null(i) { "" } else { t.value(i) }
    }

    /// The id column, if the input has one.
    pub fn ids(&self) -> Option<&dyn Array> {
        self.id.map(|i| self.record.column(i).as_ref())
    }

    /// The id of row `i` rendered as a string (strings as-is, integers in decimal), or the
    /// document key in hex when the input has no id column.
    pub fn id_string(&self, i: usize) -> String {
        if let Some(col) = self.id {
            let a = self.record.column(col);
            if a.is_null(i) {
                return String::new();
            }
            if let Some(s) = a.as_string_opt::<i32>() {
                return s.value(i).to_string();
            }
            if let Some(s) = a.as_string_opt::<i64>() {
                return s.value(i).to_string();
            }
            if let Ok(s) = arrow::util::display::array_value_to_string(a, i) {
                return s;
            }
        }
        format!("{:016x}", self.keys.value(i))
    }

    /// Stable document keys, one per row.
    pub fn keys(&self) -> &UInt64Array {
        &self.keys
    }

    /// The underlying record batch (all columns, all rows of this batch).
    pub fn record(&self) -> &RecordBatch {
        &self.record
    }

    /// Index of the text column in [`record`](Self::record).
    pub fn text_index(&self) -> usize {
        self.text
    }

    /// Index of the id column, if any.
    pub fn id_index(&self) -> Option<usize> {
        self.id
    }

    /// A column by name.
    pub fn column(&self, name: &str) -> Option<&ArrayRef> {
        self.record
            .schema_ref()
            .index_of(name)
            .ok()
            .map(|i| self.record.column(i))
    }

    /// Marks row `i` as dropped with the step's reason number `reason` (an index into the
    /// step's [`reasons`](crate::Step::reasons)). The first drop of a row wins.
    #[inline]
    pub fn drop_row(&mut self, i: usize, reason: usize) {
        if self.verdicts[i] == KEEP {
            self.verdicts[i] = reason as u32 + 1;
            self.dropped += 1;
        }
    }

    /// True when row `i` has been dropped by the current step.
    #[inline]
    pub fn is_dropped(&self, i: usize) -> bool {
        self.verdicts[i] != KEEP
    }

    /// Per-row verdicts: 0 = keep, `r + 1` = dropped with reason `r`.
    pub fn verdicts(&self) -> &[u32] {
        &self.verdicts
    }

    /// Number of rows dropped by the current step.
    pub fn dropped(&self) -> usize {
        self.dropped
    }

    /// Replaces the text column (same length). Used by steps that rewrite documents.
    pub fn set_texts(&mut self, texts: StringArray) {
        assert_eq!(
            texts.len(),
            self.len(),
            "replacement text has one value per row"
        );
        let arr: ArrayRef = Arc::new(texts);
        self.replace_column_at(self.text, arr);
    }

    /// Adds a column at the end, or replaces an existing column of the same name. The field is
    /// nullable.
    pub fn set_column(&mut self, name: &str, values: ArrayRef) {
        assert_eq!(values.len(), self.len(), "new column has one value per row");
        match self.record.schema_ref().index_of(name) {
            Ok(i) => self.replace_column_at(i, values),
            Err(_) => {
                let schema = self.record.schema();
                let mut fields: Vec<Arc<Field>> = schema.fields().iter().cloned().collect();
                fields.push(Arc::new(Field::new(name, values.data_type().clone(), true)));
                let mut cols = self.record.columns().to_vec();
                cols.push(values);
                let schema = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
                self.record = RecordBatch::try_new(schema, cols).expect("valid column");
            }
        }
    }

    /// Removes the column `name`, if present (never the text or id column).
    pub fn remove_column(&mut self, name: &str) {
        let Ok(i) = self.record.schema_ref().index_of(name) else {
            return;
        };
        assert!(
            i != self.text && Some(i) != self.id,
            "the text and id columns stay"
        );
        self.record.remove_column(i);
        if self.text > i {
            self.text -= 1;
        }
        if let Some(id) = self.id.as_mut()
            && *id > i
        {
            *id -= 1;
        }
    }

    fn replace_column_at(&mut self, i: usize, values: ArrayRef) {
        let schema = self.record.schema();
        let mut fields: Vec<Arc<Field>> = schema.fields().iter().cloned().collect();
        let old = &fields[i];
        fields[i] = Arc::new(Field::new(old.name(), values.data_type().clone(), true));
        let mut cols = self.record.columns().to_vec();
        cols[i] = values;
        let schema = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
        self.record = RecordBatch::try_new(schema, cols).expect("valid column");
    }

    /// Splits the batch after a step has run: the kept rows (verdicts reset), the reason number of
    /// each dropped row and, `with_dropped`, the dropped rows themselves (`None` when no row was
    /// dropped; runs that do not write exclusions skip copying them).
    pub fn split(self, with_dropped: bool) -> (DocBatch, Vec<u32>, Option<DocBatch>) {
        if self.dropped == 0 {
            let kept = DocBatch {
                verdicts: vec![KEEP; self.len()],
                dropped: 0,
                ..self
            };
            return (kept, Vec::new(), None);
        }
        let keep_mask: arrow::array::BooleanArray =
            self.verdicts.iter().map(|v| Some(*v == KEEP)).collect();
        let reasons: Vec<u32> = self
            .verdicts
            .iter()
            .filter(|v| **v != KEEP)
            .map(|v| v - 1)
            .collect();
        let take = |mask: &arrow::array::BooleanArray| {
            let record = arrow::compute::filter_record_batch(&self.record, mask).expect("filter");
            let keys = arrow::compute::filter(self.keys.as_ref(), mask).expect("filter");
            let keys = keys.as_primitive::<arrow::datatypes::UInt64Type>().clone();
            DocBatch::new(record, self.text, self.id, keys)
        };
        let dropped = with_dropped.then(|| take(&arrow::compute::not(&keep_mask).expect("not")));
        (take(&keep_mask), reasons, dropped)
    }

    /// Consumes the batch, returning its record batch and keys.
    pub fn into_parts(self) -> (RecordBatch, UInt64Array) {
        let keys = Arc::try_unwrap(self.keys).unwrap_or_else(|a| (*a).clone());
        (self.record, keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(texts: &[&str]) -> DocBatch {
        let t: ArrayRef = Arc::new(StringArray::from(texts.to_vec()));
        let schema = Arc::new(Schema::new(vec![Field::new("text", DataType::Utf8, true)]));
        let rb = RecordBatch::try_new(schema, vec![t]).unwrap();
        let keys = UInt64Array::from((0..texts.len() as u64).collect::<Vec<_>>());
        DocBatch::new(rb, 0, None, keys)
    }

    #[test]
    fn drop_and_split() {
        let mut b = batch(&["a", "b", "c"]);
        b.drop_row(1, 2);
        b.drop_row(1, 0); // first drop wins
        assert_eq!(b.dropped(), 1);
        let (kept, reasons, dropped) = b.split(true);
        assert_eq!(kept.len(), 2);
        assert_eq!(kept.keys().values().to_vec(), vec![0, 2]);
        let d = dropped.unwrap();
        assert_eq!(d.text(0), "b");
        assert_eq!(reasons, vec![2]);
    }

    #[test]
    fn set_column_adds_then_replaces() {
        let mut b = batch(&["a", "b"]);
        b.set_column(
            "score",
            Arc::new(arrow::array::Float32Array::from(vec![1.0, 2.0])),
        );
        assert_eq!(b.record().num_columns(), 2);
        b.set_column(
            "score",
            Arc::new(arrow::array::Float32Array::from(vec![3.0, 4.0])),
        );
        assert_eq!(b.record().num_columns(), 2);
        b.set_texts(StringArray::from(vec!["x", "y"]));
        assert_eq!(b.text(1), "y");
        b.remove_column("score");
        b.remove_column("absent");
        assert_eq!(b.record().num_columns(), 1);
        assert_eq!(b.text(0), "x");
    }

    #[test]
    fn keys_roundtrip() {
        let k = doc_key(7, 123_456);
        assert_eq!(split_key(k), (7, 123_456));
    }
}
