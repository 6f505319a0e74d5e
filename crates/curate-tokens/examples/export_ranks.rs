//! Prints a tiktoken encoding's ordinary tokens, one hex line per rank in rank order, from the
//! rank file the `tiktoken-rs` crate embeds — what `tests/reference/tiktoken_encode.py` and
//! `benches/whole/tokenize.sh` turn back into OpenAI's `.tiktoken` file for Python tiktoken,
//! offline.
//!
//! `cargo run --release -p curate-tokens --example export_ranks -- cl100k_base > ranks.hex`

use std::io::Write;

fn main() {
    let name = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "cl100k_base".into());
    let (bpe, eos) = match name.as_str() {
        "cl100k_base" => (tiktoken_rs::cl100k_base_singleton(), 100_257),
        "o200k_base" => (tiktoken_rs::o200k_base_singleton(), 199_999),
        other => {
            eprintln!("unknown encoding {other}; use cl100k_base or o200k_base");
            std::process::exit(2);
        }
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for r in 0..eos {
        let Ok(b) = bpe.decode_bytes(&[r]) else { break };
        for x in b {
            write!(out, "{x:02x}").unwrap();
        }
        writeln!(out).unwrap();
    }
}
