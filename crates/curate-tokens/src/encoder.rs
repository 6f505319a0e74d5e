//! Text → token ids, offline: OpenAI's tiktoken encodings (their rank files are embedded in the
//! `tiktoken-rs` crate) or any Hugging Face `tokenizer.json` (through the `tokenizers` crate,
//! built without C code).

use std::path::Path;

use curate_core::StepError;
use serde::Serialize;
use tiktoken_rs::CoreBPE;

/// The tiktoken encodings curate ships.
pub const TIKTOKEN_ENCODINGS: [&str; 2] = ["cl100k_base", "o200k_base"];

/// The end-of-text token's name in tiktoken encodings and the default `eos_token`.
pub const ENDOFTEXT: &str = "<|endoftext|>";

/// How token ids are stored in a Megatron `.bin`: Megatron's rule (`DType.optimal_dtype`):
/// `uint16` when the vocabulary has fewer than 65,500 ids, else `int32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    /// 2 bytes per token (Megatron dtype code 8).
    Uint16,
    /// 4 bytes per token (Megatron dtype code 4).
    Int32,
}

impl Dtype {
    /// The dtype for a vocabulary of `n` ids (the largest id + 1).
    pub fn for_vocab(n: u64) -> Dtype {
        if n < 65_500 {
            Dtype::Uint16
        } else {
            Dtype::Int32
        }
    }

    /// Bytes per token.
    pub fn width(self) -> usize {
        match self {
            Dtype::Uint16 => 2,
            Dtype::Int32 => 4,
        }
    }

    /// Megatron's numeric dtype code in the `.idx` header.
    pub fn code(self) -> u8 {
        match self {
            Dtype::Uint16 => 8,
            Dtype::Int32 => 4,
        }
    }

    /// Appends `ids` in this dtype, little-endian.
    #[inline]
    pub fn put(self, ids: &[u32], out: &mut Vec<u8>) {
        match self {
            Dtype::Uint16 => {
                out.reserve(ids.len() * 2);
                for &t in ids {
                    out.extend_from_slice(&(t as u16).to_le_bytes());
                }
            }
            Dtype::Int32 => {
                out.reserve(ids.len() * 4);
                for &t in ids {
                    out.extend_from_slice(&(t as i32).to_le_bytes());
                }
            }
        }
    }
}

/// What a tokenizer is, for stats and the manifest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EncoderInfo {
    /// `cl100k_base`, `o200k_base`, or the tokenizer.json path as configured.
    pub name: String,
    /// `tiktoken` or `tokenizer.json`.
    pub kind: &'static str,
    /// Largest token id + 1 (special tokens included).
    pub vocab_size: u64,
    /// The end-of-text id appended to documents (when `eos = true`).
    pub eos_id: Option<u32>,
    /// The end-of-text token's text.
    pub eos_token: Option<String>,
    /// xxh3-128 of the tokenizer.json's bytes (hex), so a snapshot names the exact vocabulary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_xxh3_128: Option<String>,
    /// Whether the tokenizer.json's post-processor runs (`add_special_tokens`).
    pub add_special_tokens: bool,
}

enum Backend {
    Tiktoken(&'static CoreBPE),
    /// Plain byte-level BPE tokenizer.json: ids only ([`crate::bytebpe`]).
    ByteBpe(Box<crate::bytebpe::ByteBpe>),
    HuggingFace(Box<tokenizers::Tokenizer>),
}

/// A loaded tokenizer: encodes text into ids, shared by all tasks (thread-safe).
pub struct Encoder {
    backend: Backend,
    add_special_tokens: bool,
    info: EncoderInfo,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder").field("info", &self.info).finish()
    }
}

/// Whether `spec` names a tiktoken encoding rather than a file.
pub fn is_tiktoken(spec: &str) -> bool {
    TIKTOKEN_ENCODINGS.contains(&spec)
}

impl Encoder {
    /// Loads `spec`: a tiktoken encoding name, or a `tokenizer.json`: a local path (relative
    /// paths resolve against `base`) or an object-store URL ([`curate_core::resource`]).
    /// `eos_token` names the end-of-text token of a tokenizer.json
    /// (default `<|endoftext|>`); `need_eos` makes its absence an error.
    pub fn load(
        spec: &str,
        eos_token: Option<&str>,
        need_eos: bool,
        add_special_tokens: bool,
        base: &Path,
    ) -> Result<Encoder, StepError> {
        Self::load_with(spec, eos_token, need_eos, add_special_tokens, base, true)
    }

    /// [`load`](Self::load), choosing whether a plain byte-level BPE tokenizer.json may use
    /// curate's own encoder ([`crate::bytebpe`]) or always goes through Hugging Face's crate
    /// (the ids are the same; tests and benchmarks compare the two).
    pub fn load_with(
        spec: &str,
        eos_token: Option<&str>,
        need_eos: bool,
        add_special_tokens: bool,
        base: &Path,
        fast: bool,
    ) -> Result<Encoder, StepError> {
        if is_tiktoken(spec) {
            let bpe = match spec {
                "cl100k_base" => tiktoken_rs::cl100k_base_singleton(),
                _ => tiktoken_rs::o200k_base_singleton(),
            };
            let special = |name: &str| {
                bpe.encode_with_special_tokens(name)
                    .first()
                    .copied()
                    .filter(|_| bpe.special_tokens().contains(name))
            };
            let vocab = bpe
                .special_tokens()
                .iter()
                .filter_map(|s| special(s))
                .max()
                .map_or(0, |m| m as u64 + 1);
            let eos_name = eos_token.unwrap_or(ENDOFTEXT);
            let eos_id = special(eos_name);
            if need_eos && eos_id.is_none() {
                return Err(StepError::Other(format!(
                    "tokenizer {spec} has no special token \"{eos_name}\" for `eos`"
                )));
            }
            return Ok(Encoder {
                backend: Backend::Tiktoken(bpe),
                add_special_tokens: false,
                info: EncoderInfo {
                    name: spec.to_string(),
                    kind: "tiktoken",
                    vocab_size: vocab,
                    eos_id,
                    eos_token: eos_id.map(|_| eos_name.to_string()),
                    file_xxh3_128: None,
                    add_special_tokens: false,
                },
            });
        }
        // messages name the file (resolved) or the URL
        let path = curate_core::resource::display(spec, base);
        let bytes = curate_core::resource::read_existing(spec, base).map_err(StepError::Data)?;
        let mut tok = tokenizers::Tokenizer::from_bytes(&bytes).map_err(|e| {
            StepError::Data(format!("{path}: not a Hugging Face tokenizer.json: {e}"))
        })?;
        // documents are never cut or padded
        tok.with_truncation(None)
            .map_err(|e| StepError::Data(format!("{path}: {e}")))?;
        tok.with_padding(None);
        let vocab = tok
            .get_vocab(true)
            .values()
            .max()
            .map_or(0, |m| *m as u64 + 1);
        let eos_name = eos_token.unwrap_or(ENDOFTEXT);
        let eos_id = tok.token_to_id(eos_name);
        if need_eos && eos_id.is_none() {
            return Err(StepError::Data(format!(
                "{path}: the vocabulary has no token \"{eos_name}\" to end documents with; name its end-of-text token with `eos_token`, or set `eos = false`"
            )));
        }
        if vocab > i32::MAX as u64 {
            return Err(StepError::Data(format!(
                "{path}: {vocab} token ids do not fit Megatron's int32 tokens"
            )));
        }
        let byte_bpe = fast
            .then(|| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
            .flatten()
            .and_then(|j| crate::bytebpe::ByteBpe::from_json(&j, add_special_tokens));
        let backend = match byte_bpe {
            Some(f) => Backend::ByteBpe(Box::new(f)),
            None => Backend::HuggingFace(Box::new(tok)),
        };
        Ok(Encoder {
            backend,
            add_special_tokens,
            info: EncoderInfo {
                name: spec.to_string(),
                kind: "tokenizer.json",
                vocab_size: vocab,
                eos_id,
                eos_token: eos_id.map(|_| eos_name.to_string()),
                file_xxh3_128: Some(format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&bytes))),
                add_special_tokens,
            },
        })
    }

    /// Which implementation encodes: `tiktoken`, `byte_bpe` (curate's byte-level BPE) or
    /// `tokenizers` (Hugging Face's crate).
    pub fn engine(&self) -> &'static str {
        match self.backend {
            Backend::Tiktoken(_) => "tiktoken",
            Backend::ByteBpe(_) => "byte_bpe",
            Backend::HuggingFace(_) => "tokenizers",
        }
    }

    /// What this tokenizer is.
    pub fn info(&self) -> &EncoderInfo {
        &self.info
    }

    /// The token dtype of its Megatron files.
    pub fn dtype(&self) -> Dtype {
        Dtype::for_vocab(self.info.vocab_size)
    }

    /// Appends the ids of `text` to `out`. Special-token text in documents is encoded as
    /// ordinary text (tiktoken's `encode_ordinary`; for a tokenizer.json, the added tokens its
    /// own pre-tokenization recognizes, as Hugging Face's `encode` does).
    pub fn encode_into(&self, text: &str, out: &mut Vec<u32>) -> Result<(), StepError> {
        match &self.backend {
            Backend::Tiktoken(bpe) => out.extend(bpe.encode_ordinary(text)),
            Backend::ByteBpe(b) => b
                .encode(text, out)
                .map_err(|e| StepError::Other(format!("tokenizer.json failed: {e}")))?,
            Backend::HuggingFace(tok) => {
                let enc = tok
                    .encode_fast(text, self.add_special_tokens)
                    .map_err(|e| StepError::Other(format!("tokenizer.json failed: {e}")))?;
                out.extend_from_slice(enc.get_ids());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiktoken_vocabularies_and_eos() {
        let e = Encoder::load("cl100k_base", None, true, false, Path::new(".")).unwrap();
        assert_eq!(e.info().eos_id, Some(100_257));
        assert_eq!(e.info().vocab_size, 100_277);
        assert_eq!(e.dtype(), Dtype::Int32);
        let mut ids = Vec::new();
        e.encode_into("hello world", &mut ids).unwrap();
        assert_eq!(ids, vec![15339, 1917]);
        // special-token text is ordinary text
        ids.clear();
        e.encode_into("<|endoftext|>", &mut ids).unwrap();
        assert!(ids.len() > 1 && !ids.contains(&100_257), "{ids:?}");
        let o = Encoder::load("o200k_base", None, true, false, Path::new(".")).unwrap();
        assert_eq!(o.info().eos_id, Some(199_999));
        assert_eq!(o.info().vocab_size, 200_019);
        assert!(
            Encoder::load("cl100k_base", Some("<|eot|>"), true, false, Path::new(".")).is_err()
        );
    }

    #[test]
    fn megatron_dtype_rule() {
        assert_eq!(Dtype::for_vocab(50_257), Dtype::Uint16);
        assert_eq!(Dtype::for_vocab(65_499), Dtype::Uint16);
        assert_eq!(Dtype::for_vocab(65_500), Dtype::Int32);
        let mut b = Vec::new();
        Dtype::Uint16.put(&[1, 258], &mut b);
        Dtype::Int32.put(&[7], &mut b);
        assert_eq!(b, [1, 0, 2, 1, 7, 0, 0, 0]);
    }

    #[test]
    fn missing_tokenizer_file_names_the_file() {
        let e = Encoder::load(
            "no/such/tokenizer.json",
            None,
            true,
            false,
            Path::new("/tmp"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("/tmp/no/such/tokenizer.json"), "{e}");
    }
}
