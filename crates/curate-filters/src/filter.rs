//! The machinery every per-document filter shares: a [`TextFilter`] decides about one text;
//! [`FilterStep`] turns it into a curate [`Step`] whose [`Processor`] walks a batch with one
//! reused scratch value per task (no allocation per document or per word).
//!
//! # Documents beyond [`PREFIX_BYTES`]
//!
//! A filter whose working memory grows with the document (the n-gram tables of
//! `gopher_repetition`, the word spans every word-based rule needs) opts in to deciding a
//! document longer than [`PREFIX_BYTES`] on its prefix ([`TextFilter::prefix_bytes`]): the
//! processor hands it [`decision_prefix`] of the text instead of the text, and counts the
//! document in the step's `decided_on_prefix` counter. Documents within the limit are decided
//! exactly as before; the document itself is kept or dropped whole (these filters never rewrite).

use std::ops::Range;
use std::sync::Arc;

use arrow::array::{Array, StringBuilder};
use curate_core::{Counters, DocBatch, DocKey, Processor, Step, StepError, TaskContext};

/// What a filter decided about one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Keep the document unchanged.
    Keep,
    /// Drop it with reason number `r` (an index into [`TextFilter::reasons`]; filters name
    /// their reasons with constants declared by [`reasons!`](crate::reasons), never by a bare
    /// number).
    Drop(usize),
    /// Keep it with the text the filter wrote into the output buffer.
    Rewrite,
}

/// Declares a filter's drop reasons: one `const NAME: usize` reason number per reason (its
/// position) and `pub const REASONS: &[&str]`, the reason texts in that order, so
/// `Verdict::Drop(NAME)` and `REASONS[NAME]` can never disagree.
///
/// ```ignore
/// reasons! {
///     TOO_SHORT = "too_short_chars",
///     TOO_LONG = "too_long_chars",
/// }
/// ```
#[macro_export]
macro_rules! reasons {
    ($($name:ident = $text:literal),+ $(,)?) => {
        $crate::reasons!(@number 0usize; $($name,)+);
        /// The drop reasons, in reason-number order (each number is a constant above).
        pub const REASONS: &[&str] = &[$($text,)+];
    };
    (@number $n:expr; $first:ident, $($rest:ident,)*) => {
        #[doc = concat!("Reason number `", stringify!($first), "` (an index into `REASONS`).")]
        pub const $first: usize = $n;
        $crate::reasons!(@number $n + 1; $($rest,)*);
    };
    (@number $n:expr;) => {};
}

/// One document as a filter sees it.
#[derive(Debug, Clone, Copy)]
pub struct Doc<'a> {
    /// The text (empty for a null).
    pub text: &'a str,
    /// The stable document key.
    pub key: DocKey,
}

/// The size beyond which the filters that opt in decide a document on its prefix: 1 MiB of
/// UTF-8 text. Common Crawl truncates records at 1 MiB of HTML, so web text this long is rare;
/// `gopher_repetition` needs about 20 bytes of working memory per byte it decides on.
pub const PREFIX_BYTES: usize = 1 << 20;

/// The part of `text` a filter with limit `limit` decides on: all of it when it is at most
/// `limit` bytes, else its first `limit` bytes cut back to the last line break in them (the
/// `\n` left out), or to a character boundary when they hold no line break.
pub fn decision_prefix(text: &str, limit: usize) -> &str {
    if text.len() <= limit {
        return text;
    }
    let mut cut = limit;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    match memchr::memrchr(b'\n', &text.as_bytes()[..cut]) {
        Some(nl) => &text[..nl],
        None => &text[..cut],
    }
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

    /// `Some(limit)`: a document longer than `limit` bytes is decided on its
    /// [`decision_prefix`] (the filter must then never return [`Verdict::Rewrite`]). `None`
    /// (the default): every document is decided whole.
    fn prefix_bytes(&self) -> Option<usize> {
        None
    }
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
        let v = self.decide(text, key).0;
        (v, &self.out)
    }

    /// The filter's verdict on `text` (or on its [`decision_prefix`], when the filter decides
    /// long documents on one: then also `true`).
    #[inline]
    fn decide(&mut self, text: &str, key: DocKey) -> (Verdict, bool) {
        let (text, on_prefix) = match self.filter.prefix_bytes() {
            Some(limit) if text.len() > limit => (decision_prefix(text, limit), true),
            _ => (text, false),
        };
        let v = self
            .filter
            .check(Doc { text, key }, &mut self.scratch, &mut self.out);
        debug_assert!(
            !(on_prefix && v == Verdict::Rewrite),
            "a prefix is never rewritten"
        );
        (v, on_prefix)
    }
}

impl<F: TextFilter> Processor for FilterProcessor<F> {
    fn process(&mut self, batch: &mut DocBatch, counters: &mut Counters) -> Result<(), StepError> {
        self.rewritten.clear();
        self.spans.clear();
        let n = batch.len();
        let mut drops: Vec<(usize, usize)> = Vec::new();
        let mut on_prefix = 0usize;
        {
            let texts = batch.texts();
            let keys = batch.keys();
            for i in 0..n {
                if batch.is_dropped(i) {
                    continue;
                }
                let text = if texts.is_null(i) { "" } else { texts.value(i) };
                self.out.clear();
                let (verdict, prefix) = self.decide(text, keys.value(i));
                on_prefix += prefix as usize;
                match verdict {
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
        if on_prefix > 0 {
            counters.add("decided_on_prefix", on_prefix as f64);
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
mod tests {
    use super::decision_prefix;

    #[test]
    fn prefixes_end_at_a_line_break_or_a_character_boundary() {
        assert_eq!(decision_prefix("short", 10), "short");
        assert_eq!(decision_prefix("exactly10!", 10), "exactly10!");
        assert_eq!(decision_prefix("one\ntwo\nthree", 10), "one\ntwo");
        assert_eq!(decision_prefix("no line breaks here", 10), "no line br");
        // 'é' is two bytes: a cut inside it goes back before it
        assert_eq!(decision_prefix("abcdefghié and more", 10), "abcdefghi");
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

    /// Runs a filter over `texts` through its processor; returns per-text `None` (kept) or
    /// `Some(reason)`, and the `decided_on_prefix` counter.
    pub fn run_filter<F: crate::filter::TextFilter>(
        f: F,
        texts: &[&str],
    ) -> (Vec<Option<&'static str>>, f64) {
        use curate_core::Processor;
        let reasons = f.reasons().to_vec();
        let mut p = crate::filter::FilterProcessor::new(Arc::new(f));
        let mut b = batch(texts);
        let mut c = Counters::default();
        p.process(&mut b, &mut c).unwrap();
        let got = b
            .verdicts()
            .iter()
            .map(|v| (*v != 0).then(|| reasons[*v as usize - 1]))
            .collect();
        (got, c.0.get("decided_on_prefix").copied().unwrap_or(0.0))
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
