//! Offline token counting for the threshold curve, with tiktoken's BPE vocabularies (shipped
//! inside the `tiktoken-rs` crate, so nothing is downloaded).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A tokenizer whose token counts the threshold curve reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Tokenizer {
    /// OpenAI `cl100k_base` (GPT-4 era; close to Llama-3's counts on English).
    #[default]
    Cl100kBase,
    /// OpenAI `o200k_base`.
    O200kBase,
    /// Do not count tokens (the curve reports documents only).
    None,
}

impl Tokenizer {
    /// Name as written in metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Tokenizer::Cl100kBase => "cl100k_base",
            Tokenizer::O200kBase => "o200k_base",
            Tokenizer::None => "none",
        }
    }

    /// Number of tokens of `text` (0 with [`Tokenizer::None`]). Special-token text is counted as
    /// ordinary text.
    pub fn count(&self, text: &str) -> u32 {
        let n = match self {
            Tokenizer::Cl100kBase => tiktoken_rs::cl100k_base_singleton()
                .encode_ordinary(text)
                .len(),
            Tokenizer::O200kBase => tiktoken_rs::o200k_base_singleton()
                .encode_ordinary(text)
                .len(),
            Tokenizer::None => 0,
        };
        n.min(u32::MAX as usize) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_known_strings() {
        // "hello world" is two cl100k tokens; the empty string none.
        assert_eq!(Tokenizer::Cl100kBase.count("hello world"), 2);
        assert_eq!(Tokenizer::Cl100kBase.count(""), 0);
        assert!(Tokenizer::O200kBase.count("The quick brown fox jumps over the lazy dog.") >= 9);
        assert_eq!(Tokenizer::None.count("anything"), 0);
    }
}
