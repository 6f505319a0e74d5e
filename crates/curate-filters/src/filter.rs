//! The machinery every per-document filter shares: a [`TextFilter`] decides about one text;
//! [`FilterStep`] turns it into a curate [`Step`] whose [`Processor`] walks a batch with one
//! reused scratch value per task (no allocation per document or per word).

use std::ops::Range;
use std::sync::Arc;

use arrow::array::{Array, StringBuilder};
use curate_core::{Counters, DocBatch, DocKey, Processor, Step, StepError, TaskContext};

/// What a filter decided about one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Keep the document unchanged.
    Keep,
    /// Drop it with reason number `r` (an index into [`TextFilter::reasons`]).
    Drop(usize),
    /// Keep it with the text the filter wrote into the output buffer.
    Rewrite,
}

/// One document as a filter sees it.
#[derive(Debug, Clone, Copy)]
pub struct Doc<'a> {
    /// The text (empty for a null).
    pub text: &'a str,
    /// The stable document key.
    pub key: DocKey,
}

/// A per-document rule.
pub trait TextFilter: Send + Sync + 'static {
    /// Reusable per-task working memory.
    type Scratch: Default + Send + 'static;

    /// The step's `type`.
    fn kind(&self) -> &'static str;

    /// The reasons, in reason-number order.
    fn reasons(&self) -> &[&'static str];

    /// Decides about `doc`. A filter that returns [`Verdict::Rewrite`] must have written the
    /// new text into `out` (which is empty on entry).
    fn check(&self, doc: Doc<'_>, scratch: &mut Self::Scratch, out: &mut String) -> Verdict;
}

/// A [`TextFilter`] as a pipeline step.
pub struct FilterStep<F: TextFilter>(pub Arc<F>);

impl<F: TextFilter> FilterStep<F> {
    /// Wraps a filter, boxed as a step.
    pub fn boxed(filter: F) -> Box<dyn Step> {
        Box::new(FilterStep(Arc::new(filter)))
    }
}

impl<F: TextFilter> Step for FilterStep<F> {
    fn kind(&self) -> &'static str {
        self.0.kind()
    }

    fn reasons(&self) -> Vec<String> {
        self.0.reasons().iter().map(|r| r.to_string()).collect()
    }

    fn processor(&self, _cx: &TaskContext<'_>) -> Result<Box<dyn Processor>, StepError> {
        Ok(Box::new(FilterProcessor::new(self.0.clone())))
    }
}

/// Applies a [`TextFilter`] to batches, reusing its scratch and output buffers.
pub struct FilterProcessor<F: TextFilter> {
    filter: Arc<F>,
    scratch: F::Scratch,
    out: String,
    /// Rewritten texts of the current batch, concatenated.
    rewritten: String,
    /// (row, byte range in `rewritten`) for each rewritten row of the current batch.
    spans: Vec<(usize, Range<usize>)>,
}

impl<F: TextFilter> FilterProcessor<F> {
    /// A processor with fresh buffers.
    pub fn new(filter: Arc<F>) -> Self {
        Self {
            filter,
            scratch: F::Scratch::default(),
            out: String::new(),
            rewritten: String::new(),
            spans: Vec::new(),
        }
    }

    /// Runs the filter on one text (tests and benches use this directly).
    pub fn check(&mut self, text: &str, key: DocKey) -> (Verdict, &str) {
        self.out.clear();
        let v = self
            .filter
            .check(Doc { text, key }, &mut self.scratch, &mut self.out);
        (v, &self.out)
    }
}

impl<F: TextFilter> Processor for FilterProcessor<F> {
    fn process(&mut self, batch: &mut DocBatch, counters: &mut Counters) -> Result<(), StepError> {
        self.rewritten.clear();
        self.spans.clear();
        let n = batch.len();
        let mut drops: Vec<(usize, usize)> = Vec::new();
        {
            let texts = batch.texts();
            let keys = batch.keys();
            for i in 0..n {
                if batch.is_dropped(i) {
                    continue;
                }
                let text = if texts.is_null(i) { "" } else { texts.value(i) };
                self.out.clear();
                let doc = Doc {
                    text,
                    key: keys.value(i),
                };
                match self.filter.check(doc, &mut self.scratch, &mut self.out) {
                    Verdict::Keep => {}
                    Verdict::Drop(r) => drops.push((i, r)),
                    Verdict::Rewrite => {
                        if self.out != text {
                            let start = self.rewritten.len();
                            self.rewritten.push_str(&self.out);
                            self.spans.push((i, start..self.rewritten.len()));
                        }
                    }
                }
            }
        }
        for &(i, r) in &drops {
            batch.drop_row(i, r);
        }
        if !self.spans.is_empty() {
            counters.add("rewritten", self.spans.len() as f64);
            let texts = batch.texts();
            let mut b = StringBuilder::with_capacity(n, texts.value_data().len());
            let mut next = self.spans.iter().peekable();
            for i in 0..n {
                match next.peek() {
                    Some((row, range)) if *row == i => {
                        b.append_value(&self.rewritten[range.clone()]);
                        next.next();
                    }
                    _ if texts.is_null(i) => b.append_null(),
                    _ => b.append_value(texts.value(i)),
                }
            }
            batch.set_texts(b.finish());
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers for unit tests: build a batch, run a step over it.
    use std::sync::Arc;

    use arrow::array::{ArrayRef, StringArray, UInt64Array};
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow::record_batch::RecordBatch;
    use curate_core::{BuildEnv, Counters, DocBatch, StepSpec, TaskContext};

    /// A batch of the given texts with keys 0..n.
    pub fn batch(texts: &[&str]) -> DocBatch {
        let t: ArrayRef = Arc::new(StringArray::from(texts.to_vec()));
        let schema = Arc::new(Schema::new(vec![Field::new("text", DataType::Utf8, true)]));
        let rb = RecordBatch::try_new(schema, vec![t]).unwrap();
        let keys = UInt64Array::from((0..texts.len() as u64).collect::<Vec<_>>());
        DocBatch::new(rb, 0, None, keys)
    }

    /// A build environment with the given seed.
    pub fn env(seed: u64) -> BuildEnv {
        BuildEnv {
            seed,
            index: 0,
            text_column: "text".into(),
            id_column: None,
            previous: vec![],
            config_dir: std::env::temp_dir(),
        }
    }

    /// Runs a spec over one batch; returns per-row `None` (kept) or `Some(reason)`.
    pub fn run<S: StepSpec>(spec: &S, batch: &mut DocBatch, seed: u64) -> Vec<Option<String>> {
        let mut problems = curate_core::Problems::new();
        spec.validate(&mut problems);
        assert!(problems.is_empty(), "{:?}", problems.items());
        let step = spec.build(&env(seed)).unwrap();
        let dir = std::env::temp_dir();
        let cx = TaskContext {
            task: 0,
            tasks: 1,
            dir: &dir,
            step_dirs: &[],
            seed,
        };
        let mut p = step.processor(&cx).unwrap();
        let mut c = Counters::default();
        p.process(batch, &mut c).unwrap();
        let reasons = step.reasons();
        batch
            .verdicts()
            .iter()
            .map(|v| (*v != 0).then(|| reasons[*v as usize - 1].clone()))
            .collect()
    }
}
