//! Decontamination accuracy on real text: benchmark items (sentences from held-out corpus
//! documents, as question + answer fields) are planted into corpus documents with their
//! formatting changed — line breaks, casing, punctuation, surrounding text — and must be found
//! (recall ≥ 0.95). Documents flagged by mistake must stay ≤ 1 % of all flagged documents: a
//! flag is a mistake when a brute-force reference (its own normalization, 13-word windows as
//! strings in a `HashSet`, no hashing of ours) finds no window the document shares with an item.
//! Web text repeats boilerplate, so some unplanted documents really do contain a held-out
//! sentence; those are true matches, counted and printed, not mistakes.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema};
use curate_core::{BuildEnv, Counters, DocBatch, StepSpec, TaskContext};
use curate_tokens::decontaminate::{CONTAMINATED_BY, CONTAMINATION_NGRAM, DecontaminateConfig};

/// A splitmix64 generator: the perturbations are random but the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn corpus(n: usize) -> Vec<String> {
    let src = curate_testkit::corpus_shard_or_sample();
    let r = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(&src).unwrap(),
    )
    .unwrap()
    .with_batch_size(1024)
    .build()
    .unwrap();
    let mut docs = Vec::new();
    for b in r {
        let b = b.unwrap();
        let t = b.column_by_name("text").unwrap().as_string::<i32>();
        docs.extend((0..t.len()).map(|i| t.value(i).to_string()));
        if docs.len() >= n {
            break;
        }
    }
    docs.truncate(n);
    docs
}

/// The reference normalization, written independently of the crate's: case-folded (final
/// sigma, sharp s), only letters, digits and whitespace kept, split on whitespace.
fn words(t: &str) -> Vec<String> {
    let lower = t.to_lowercase().replace('ς', "σ").replace('ß', "ss");
    let kept: String = lower
        .chars()
        .filter(|c| c.is_alphanumeric() || c.is_whitespace())
        .collect();
    kept.split_whitespace().map(String::from).collect()
}

/// Sentences of 18–40 words (of letters or digits) from `docs`, one per document at most.
fn sentences(docs: &[String], want: usize) -> Vec<String> {
    let mut out = Vec::new();
    for d in docs {
        if let Some(s) = d.split(['.', '?', '!', '\n']).map(str::trim).find(|s| {
            (18..=40).contains(&s.split_whitespace().count())
                && words(s).len() == s.split_whitespace().count()
        }) {
            out.push(s.to_string());
        }
        if out.len() == want {
            break;
        }
    }
    out
}

/// The item's words with their formatting changed.
fn perturb(item: &str, rng: &mut Rng) -> String {
    let mut out = String::new();
    for (i, w) in item.split_whitespace().enumerate() {
        if i > 0 {
            out.push_str(match rng.below(10) {
                0 => "\n",
                1 => "  ",
                2 => "\n\n",
                3 => "\t",
                _ => " ",
            });
        }
        // punctuation removed from the word's edges, or added
        let w = match rng.below(6) {
            0 => w
                .trim_matches(|c: char| c.is_ascii_punctuation())
                .to_string(),
            1 => format!("{w},"),
            2 => format!("\"{w}\""),
            3 => format!("({w})"),
            _ => w.to_string(),
        };
        let w = match rng.below(5) {
            0 => w.to_uppercase(),
            1 => w.to_lowercase(),
            2 => {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                    .unwrap_or_default()
            }
            _ => w,
        };
        out.push_str(&w);
    }
    match rng.below(3) {
        0 => format!("Q: {out}?"),
        1 => format!("{out}!!"),
        _ => out,
    }
}

fn batch(texts: &[String]) -> DocBatch {
    let schema = Arc::new(Schema::new(vec![Field::new("text", DataType::Utf8, true)]));
    let col: ArrayRef = Arc::new(StringArray::from_iter_values(texts));
    let rb = RecordBatch::try_new(schema, vec![col]).unwrap();
    let keys = UInt64Array::from_iter_values(0..texts.len() as u64);
    DocBatch::new(rb, 0, None, keys)
}

#[test]
fn planted_items_are_found_and_the_rest_is_rarely_flagged() {
    let all = corpus(4500);
    let (held_out, docs) = all.split_at(1500);
    let items = sentences(held_out, 300);
    assert!(
        items.len() >= 200,
        "only {} benchmark sentences",
        items.len()
    );
    let dir = tempfile::tempdir().unwrap();
    // question = the sentence but its last three words, answer = those three words
    let mut jsonl = String::new();
    for s in &items {
        let w: Vec<&str> = s.split_whitespace().collect();
        let (q, a) = w.split_at(w.len() - 3);
        jsonl.push_str(
            &serde_json::json!({"question": q.join(" "), "answer": a.join(" ")}).to_string(),
        );
        jsonl.push('\n');
    }
    std::fs::write(dir.path().join("heldout_qa.jsonl"), jsonl).unwrap();

    let mut rng = Rng(0xDEC0_17A7);
    let mut texts: Vec<String> = docs.to_vec();
    let mut planted = vec![false; texts.len()];
    let mut planted_text: Vec<Vec<String>> = vec![Vec::new(); texts.len()];
    for item in &items {
        // into a random document, between two of its lines or words
        let d = rng.below(texts.len());
        let t = &texts[d];
        let cuts: Vec<usize> = t.match_indices(' ').map(|(i, _)| i).collect();
        let at = if cuts.is_empty() {
            t.len()
        } else {
            cuts[rng.below(cuts.len())]
        };
        let p = perturb(item, &mut rng);
        texts[d] = format!("{} {} {}", &t[..at], p, &t[at..]);
        planted_text[d].push(p);
        planted[d] = true;
    }

    let cfg: DecontaminateConfig = toml::from_str(&format!(
        "benchmarks = [\"{}/*.jsonl\"]\nfields = [\"question\", \"answer\"]\n",
        dir.path().display()
    ))
    .unwrap();
    let env = BuildEnv {
        seed: 1,
        index: 0,
        text_column: "text".into(),
        id_column: None,
        previous: vec![],
        config_dir: dir.path().to_path_buf(),
    };
    let step = cfg.build(&env).unwrap();
    let work = dir.path().join("work");
    let cx = TaskContext {
        task: 0,
        tasks: 1,
        dir: &work,
        step_dirs: &[],
        seed: 1,
    };
    let mut p = step.processor(&cx).unwrap();
    let mut b = batch(&texts);
    let mut c = Counters::default();
    p.process(&mut b, &mut c).unwrap();
    p.finish(&mut c).unwrap();

    let flagged: Vec<bool> = (0..b.len()).map(|i| b.is_dropped(i)).collect();
    // the brute-force truth: does the document share a 13-word window with an item?
    let mut grams = std::collections::HashSet::new();
    for it in &items {
        for w in words(it).windows(13) {
            grams.insert(w.join(" "));
        }
    }
    let truth: Vec<bool> = texts
        .iter()
        .map(|t| words(t).windows(13).any(|w| grams.contains(&w.join(" "))))
        .collect();
    let count = |f: &dyn Fn(usize) -> bool| (0..b.len()).filter(|&i| f(i)).count();
    let planted_n = count(&|i| planted[i]);
    let found = count(&|i| planted[i] && flagged[i]);
    let total_flags = count(&|i| flagged[i]);
    let mistakes = count(&|i| flagged[i] && !truth[i]);
    let missed_truth = count(&|i| truth[i] && !flagged[i]);
    let unplanted_true = count(&|i| !planted[i] && flagged[i] && truth[i]);
    let recall = found as f64 / planted_n as f64;
    let mistake_share = mistakes as f64 / total_flags.max(1) as f64;
    eprintln!(
        "{} items, {planted_n} planted documents among {}: recall {recall:.4}; {total_flags} flagged, {mistakes} by mistake ({:.2}%), {missed_truth} true matches missed; {unplanted_true} unplanted documents really contain a held-out sentence",
        items.len(),
        texts.len(),
        100.0 * mistake_share
    );
    for i in (0..b.len()).filter(|&i| planted[i] && !flagged[i]) {
        eprintln!("  missed: {:?}", planted_text[i]);
    }
    let g = b.column(CONTAMINATION_NGRAM).unwrap().as_string::<i32>();
    for i in (0..b.len()).filter(|&i| !planted[i] && flagged[i]).take(3) {
        eprintln!("  unplanted true match: {:?}", g.value(i));
    }
    assert!(recall >= 0.95, "recall {recall}");
    assert!(
        mistake_share <= 0.01,
        "{mistakes} of {total_flags} flags are mistakes"
    );
    assert_eq!(
        missed_truth, 0,
        "documents sharing a window with an item were not flagged"
    );

    // every flagged row names the benchmark and a normalized n-gram of 13 words
    let by = b.column(CONTAMINATED_BY).unwrap().as_string::<i32>();
    let g = b.column(CONTAMINATION_NGRAM).unwrap().as_string::<i32>();
    for (i, &f) in flagged.iter().enumerate() {
        assert_eq!(f, !by.is_null(i));
        if f {
            assert_eq!(by.value(i), "heldout_qa");
            assert_eq!(g.value(i).split(' ').count(), 13, "{}", g.value(i));
            assert_eq!(g.value(i), g.value(i).to_lowercase());
        }
    }
    // the published stats count the benchmark's items and hits
    let stats = step.publish(&work).unwrap().stats.unwrap();
    let bench = &stats["benchmarks"][0];
    assert_eq!(bench["name"], "heldout_qa");
    assert_eq!(bench["items"].as_u64().unwrap() as usize, items.len());
    assert_eq!(
        bench["documents_hit"].as_u64().unwrap() as usize,
        total_flags
    );
    let items_found = bench["items_found"].as_u64().unwrap() as f64;
    assert!(items_found >= 0.95 * items.len() as f64, "{stats}");
    assert_eq!(
        stats["contaminated"].as_u64().unwrap() as usize,
        total_flags
    );
    eprintln!(
        "index: {} distinct 13-grams in {} bytes",
        stats["distinct_keys"], stats["index_bytes"]
    );
}
