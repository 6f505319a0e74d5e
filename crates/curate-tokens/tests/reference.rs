//! Token ids against the reference implementations, on the same documents (corpus text plus
//! edge cases): OpenAI's Python `tiktoken` for `cl100k_base` and `o200k_base` (loaded offline
//! from the very rank files the Rust crate embeds, checked by tiktoken against the SHA-256 it
//! pins for OpenAI's published files), and Hugging Face's Python `tokenizers` for a byte-level
//! BPE tokenizer.json the test trains on corpus text.

use std::path::{Path, PathBuf};
use std::process::Command;

use arrow::array::{Array, AsArray};
use curate_tokens::encoder::Encoder;

/// Documents: the first `n` corpus texts (trimmed to keep the test quick) and edge cases.
fn documents(n: usize) -> Vec<String> {
    let src = curate_testkit::corpus_shard_or_sample();
    let r = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(&src).unwrap(),
    )
    .unwrap()
    .with_batch_size(n)
    .build()
    .unwrap();
    let mut docs = Vec::new();
    for b in r {
        let b = b.unwrap();
        let t = b.column_by_name("text").unwrap().as_string::<i32>();
        for i in 0..t.len() {
            if docs.len() < n {
                let s = t.value(i);
                let cut = s.char_indices().nth(6000).map_or(s.len(), |(i, _)| i);
                docs.push(s[..cut].to_string());
            }
        }
        if docs.len() >= n {
            break;
        }
    }
    docs.extend(
        [
            "",
            " ",
            "<|endoftext|> is text here",
            "tabs\tand\r\nnewlines\n\n\n  indented",
            "Ünïcödé — emoji 🎉🎉 and 中文字符 and العربية",
            "numbers 1234567 3.14159 1e10 0x1F",
            "   leading and trailing spaces   ",
            "don't won't I'll they've we're she'd",
            &"a".repeat(3000),
        ]
        .map(String::from),
    );
    docs
}

fn python(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Option<serde_json::Value> {
    let py = curate_testkit::reference_python()?;
    let mut c = Command::new(py);
    for a in args {
        c.arg(a);
    }
    let o = c.output().expect("run the reference python");
    assert!(
        o.status.success(),
        "reference script failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    if o.stdout.is_empty() {
        return Some(serde_json::Value::Null);
    }
    Some(serde_json::from_slice(&o.stdout).expect("reference output is JSON"))
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/reference")
        .join(name)
}

fn ids_of(v: &serde_json::Value) -> Vec<Vec<u32>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|d| {
            d.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
                .collect()
        })
        .collect()
}

fn compare(ours: &[Vec<u32>], theirs: &[Vec<u32>], docs: &[String], what: &str) {
    assert_eq!(ours.len(), theirs.len());
    let mut tokens = 0;
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        assert!(
            a == b,
            "{what}: document {i} differs ({} vs {} ids): {:?}",
            a.len(),
            b.len(),
            docs[i].chars().take(200).collect::<String>()
        );
        tokens += a.len();
    }
    eprintln!(
        "{what}: {} documents, {tokens} tokens identical",
        ours.len()
    );
}

fn tiktoken_matches(name: &str) {
    let docs = documents(300);
    let enc = Encoder::load(name, None, true, false, Path::new(".")).unwrap();
    let eos = enc.info().eos_id.unwrap();
    // the encoding's ordinary tokens, exported from the Rust crate's embedded rank file
    let bpe = match name {
        "cl100k_base" => tiktoken_rs::cl100k_base_singleton(),
        _ => tiktoken_rs::o200k_base_singleton(),
    };
    let mut ranks = String::new();
    for r in 0..eos {
        match bpe.decode_bytes(&[r]) {
            Ok(b) => {
                for x in b {
                    ranks.push_str(&format!("{x:02x}"));
                }
                ranks.push('\n');
            }
            Err(_) => break,
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let ranks_path = dir.path().join("ranks.hex");
    std::fs::write(&ranks_path, ranks).unwrap();
    let docs_path = dir.path().join("docs.json");
    std::fs::write(&docs_path, serde_json::to_vec(&docs).unwrap()).unwrap();
    let cache = dir.path().join("tiktoken-cache");
    let Some(out) = python(&[
        &script("tiktoken_encode.py"),
        &name,
        &ranks_path,
        &docs_path,
        &cache,
    ]) else {
        return;
    };
    assert_eq!(out["eot_token"].as_u64(), Some(eos as u64));
    assert_eq!(out["n_vocab"].as_u64(), Some(enc.info().vocab_size));
    let theirs: Vec<Vec<u32>> = ids_of(&out["ids"])
        .into_iter()
        .map(|mut d| {
            d.push(eos);
            d
        })
        .collect();
    let ours: Vec<Vec<u32>> = docs
        .iter()
        .map(|d| {
            let mut v = Vec::new();
            enc.encode_into(d, &mut v).unwrap();
            v.push(eos);
            v
        })
        .collect();
    compare(&ours, &theirs, &docs, name);
}

#[test]
fn cl100k_ids_are_tiktokens() {
    tiktoken_matches("cl100k_base");
}

#[test]
fn o200k_ids_are_tiktokens() {
    tiktoken_matches("o200k_base");
}

#[test]
fn tokenizer_json_ids_are_hugging_faces() {
    let dir = tempfile::tempdir().unwrap();
    let texts = documents(400);
    let (train, docs) = texts.split_at(250);
    let train_path = dir.path().join("train.json");
    std::fs::write(&train_path, serde_json::to_vec(&train).unwrap()).unwrap();
    let docs_path = dir.path().join("docs.json");
    std::fs::write(&docs_path, serde_json::to_vec(&docs).unwrap()).unwrap();
    for style in ["gpt2", "llama3"] {
        let tok = dir.path().join(format!("{style}.json"));
        let trained = python(&[
            &script("hf_tokenizer.py"),
            &"train",
            &train_path,
            &"4000",
            &tok,
            &style,
        ]);
        if trained.is_none() {
            return;
        }
        for add in [false, true] {
            let out = python(&[
                &script("hf_tokenizer.py"),
                &"encode",
                &tok,
                &docs_path,
                &if add { "1" } else { "0" },
            ])
            .unwrap();
            let eos = out["eos"].as_u64().unwrap() as u32;
            let theirs: Vec<Vec<u32>> = ids_of(&out["ids"])
                .into_iter()
                .map(|mut d| {
                    d.push(eos);
                    d
                })
                .collect();
            // curate's byte-level BPE and Hugging Face's crate, both against Python
            for fast in [true, false] {
                let enc = Encoder::load_with(
                    tok.to_str().unwrap(),
                    None,
                    true,
                    add,
                    Path::new("."),
                    fast,
                )
                .unwrap();
                assert_eq!(enc.engine(), if fast { "byte_bpe" } else { "tokenizers" });
                assert_eq!(enc.info().eos_id, Some(eos));
                assert_eq!(enc.info().vocab_size, 4000);
                assert_eq!(enc.dtype(), curate_tokens::encoder::Dtype::Uint16);
                let ours: Vec<Vec<u32>> = docs
                    .iter()
                    .map(|d| {
                        let mut v = Vec::new();
                        enc.encode_into(d, &mut v).unwrap();
                        v.push(eos);
                        v
                    })
                    .collect();
                compare(
                    &ours,
                    &theirs,
                    docs,
                    &format!(
                        "{style} tokenizer.json via {} (add_special_tokens={add})",
                        enc.engine()
                    ),
                );
            }
        }
        // a vocabulary without the end-of-text token is an error when eos is wanted
        let e = Encoder::load(
            tok.to_str().unwrap(),
            Some("</s>"),
            true,
            false,
            Path::new("."),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("has no token \"</s>\""), "{e}");
    }
}
