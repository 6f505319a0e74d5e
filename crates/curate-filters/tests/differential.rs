//! Differential test against datatrove 0.10.1 (the reference implementation).
//!
//! Writes ≥ 5,000 real documents from the corpus to JSONL, runs
//! `tests/reference/datatrove_filters.py` (two processes, half the documents each) in the
//! reference virtualenv, runs our filters on the same documents, and asserts, per filter,
//! decision agreement ≥ 99.5 %, the same reason on every agreeing drop, and (for `c4_quality`)
//! the same rewritten text on ≥ 99.5 % of agreeing keeps. Prints a table of the disagreements by
//! class and the word splitter's agreement with spaCy (run with `CURATE_SHOW_WORD_DIFFS=1` to
//! list differing documents).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use arrow::array::{Array, AsArray};
use curate_filters::c4_quality::{C4Quality, C4QualityConfig};
use curate_filters::filter::{FilterProcessor, TextFilter, Verdict};
use curate_filters::fineweb_quality::FineWebQuality;
use curate_filters::gopher_quality::GopherQuality;
use curate_filters::gopher_repetition::GopherRepetition;
use curate_filters::words::WordSplitter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

const WANT: usize = 5_000;
const MAX_CHARS: usize = 2_000;
const STRIDE: usize = 4;

struct Doc {
    id: String,
    text: String,
}

fn load_docs() -> Vec<Doc> {
    let shards = curate_testkit::corpus_shards()
        .unwrap_or_else(|| vec![curate_testkit::corpus_shard_or_sample()]);
    let mut docs = Vec::new();
    let mut row = 0usize;
    'outer: for shard in &shards {
        let f = File::open(shard).unwrap_or_else(|e| panic!("{}: {e}", shard.display()));
        let reader = ParquetRecordBatchReaderBuilder::try_new(f)
            .unwrap()
            .with_batch_size(4096)
            .build()
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let text = batch
                .column_by_name("text")
                .expect("text column")
                .as_string::<i32>()
                .clone();
            let ids = batch
                .column_by_name("id")
                .map(|c| c.as_string::<i32>().clone());
            for i in 0..batch.num_rows() {
                row += 1;
                if !row.is_multiple_of(STRIDE) || text.is_null(i) {
                    continue;
                }
                let t = text.value(i);
                if t.chars().count() > MAX_CHARS {
                    continue;
                }
                let id = ids
                    .as_ref()
                    .map_or_else(|| format!("row{row}"), |a| a.value(i).to_string());
                docs.push(Doc {
                    id,
                    text: t.to_string(),
                });
                if docs.len() >= WANT {
                    break 'outer;
                }
            }
        }
    }
    docs
}

/// Runs the reference script on `docs` in `procs` processes; returns its records by document.
fn run_reference(python: &Path, docs: &[Doc], dir: &Path, procs: usize) -> Vec<serde_json::Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/datatrove_filters.py");
    let chunk = docs.len().div_ceil(procs);
    let mut children = Vec::new();
    for (k, part) in docs.chunks(chunk.max(1)).enumerate() {
        let input = dir.join(format!("in{k}.jsonl"));
        let mut w = BufWriter::new(File::create(&input).unwrap());
        for d in part {
            serde_json::to_writer(&mut w, &serde_json::json!({"id": d.id, "text": d.text}))
                .unwrap();
            w.write_all(b"\n").unwrap();
        }
        w.flush().unwrap();
        let out = dir.join(format!("out{k}.jsonl"));
        let child = Command::new(python)
            .arg(&script)
            .arg(&input)
            .arg("--words")
            .stdout(File::create(&out).unwrap())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start reference python");
        children.push((child, out));
    }
    let mut recs = Vec::new();
    for (mut child, out) in children {
        let st = child.wait().unwrap();
        assert!(st.success(), "reference script failed: {st}");
        for line in BufReader::new(File::open(&out).unwrap()).lines() {
            recs.push(serde_json::from_str(&line.unwrap()).unwrap());
        }
    }
    recs
}

fn ours<F: TextFilter>(
    p: &mut FilterProcessor<F>,
    text: &str,
    reasons: &[&str],
) -> (bool, Option<String>, Option<String>) {
    let (v, out) = p.check(text, 0);
    match v {
        Verdict::Keep => (true, None, Some(text.to_string())),
        Verdict::Rewrite => (true, None, Some(out.to_string())),
        Verdict::Drop(r) => (false, Some(reasons[r].to_string()), None),
    }
}

#[test]
fn filters_agree_with_datatrove() {
    let Some(python) = curate_testkit::reference_python() else {
        return;
    };
    let docs = load_docs();
    eprintln!(
        "{} documents, {} bytes of text",
        docs.len(),
        docs.iter().map(|d| d.text.len()).sum::<usize>()
    );
    let dir = tempfile::tempdir().unwrap();
    let t0 = std::time::Instant::now();
    let recs = run_reference(&python, &docs, dir.path(), 2);
    eprintln!("reference ran in {:.1}s", t0.elapsed().as_secs_f64());
    assert_eq!(recs.len(), docs.len());

    let gr = GopherRepetition::new(Default::default());
    let gr_reasons: Vec<&str> = gr.reasons().to_vec();
    let mut p_gr = FilterProcessor::new(Arc::new(gr));
    let mut p_gq = FilterProcessor::new(Arc::new(GopherQuality::new(Default::default())));
    let c4 = C4QualityConfig::default();
    let c4fw = C4QualityConfig {
        filter_no_terminal_punct: false,
        ..C4QualityConfig::default()
    };
    let mut p_c4 = FilterProcessor::new(Arc::new(c4_filter(c4)));
    let mut p_c4fw = FilterProcessor::new(Arc::new(c4_filter(c4fw)));
    let mut p_fw = FilterProcessor::new(Arc::new(FineWebQuality::new(Default::default())));

    // filter -> (agree, total, agreeing drops with a different reason, text mismatches)
    let mut stats: BTreeMap<&str, (usize, usize, usize, usize)> = BTreeMap::new();
    let mut classes: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    let mut examples: BTreeMap<(String, String, String), String> = BTreeMap::new();
    let (mut words_same, mut words_docs, mut words_total, mut words_diff) =
        (0usize, 0usize, 0usize, 0usize);
    let mut splitter = WordSplitter::new();
    let mut spans = Vec::new();
    for (doc, rec) in docs.iter().zip(&recs) {
        assert_eq!(rec["id"].as_str(), Some(doc.id.as_str()));
        let results = [
            ("gopher_repetition", ours(&mut p_gr, &doc.text, &gr_reasons)),
            (
                "gopher_quality",
                ours(
                    &mut p_gq,
                    &doc.text,
                    curate_filters::gopher_quality::REASONS,
                ),
            ),
            (
                "c4_quality",
                ours(&mut p_c4, &doc.text, curate_filters::c4_quality::REASONS),
            ),
            (
                "c4_quality_fineweb",
                ours(&mut p_c4fw, &doc.text, curate_filters::c4_quality::REASONS),
            ),
            (
                "fineweb_quality",
                ours(
                    &mut p_fw,
                    &doc.text,
                    curate_filters::fineweb_quality::REASONS,
                ),
            ),
        ];
        for (name, (kept, reason, text)) in results {
            let d = &rec["decisions"][name];
            let ref_kept = d[0].as_bool().unwrap();
            let ref_reason = d[1].as_str().map(str::to_string);
            let s = stats.entry(name).or_default();
            s.1 += 1;
            let mut class = None;
            if kept == ref_kept {
                s.0 += 1;
                if !kept && reason != ref_reason {
                    s.2 += 1;
                    class = Some("same drop, other reason");
                }
                if kept
                    && name.starts_with("c4_quality")
                    && rec["c4_text"][name].as_str() != text.as_deref()
                {
                    s.3 += 1;
                    class = Some("same keep, other text");
                }
            } else {
                class = Some(if kept {
                    "we keep, datatrove drops"
                } else {
                    "we drop, datatrove keeps"
                });
            }
            if let Some(class) = class {
                let key = (
                    name.to_string(),
                    class.to_string(),
                    format!(
                        "{} / {}",
                        reason.as_deref().unwrap_or("-"),
                        ref_reason.as_deref().unwrap_or("-")
                    ),
                );
                *classes.entry(key.clone()).or_default() += 1;
                examples.entry(key).or_insert_with(|| doc.id.clone());
            }
        }
        // Word splitter agreement.
        let theirs: Vec<&str> = rec["words"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_str().unwrap())
            .collect();
        splitter.split(&doc.text, &mut spans);
        let mine: Vec<&str> = spans
            .iter()
            .map(|&(a, b)| &doc.text[a as usize..b as usize])
            .collect();
        words_docs += 1;
        words_total += theirs.len();
        if mine == theirs {
            words_same += 1;
        } else {
            words_diff += mine.len().abs_diff(theirs.len()).max(1);
            if std::env::var_os("CURATE_SHOW_WORD_DIFFS").is_some() {
                let k = mine
                    .iter()
                    .zip(&theirs)
                    .position(|(a, b)| a != b)
                    .unwrap_or(mine.len().min(theirs.len()));
                let lo = k.saturating_sub(3);
                eprintln!(
                    "words differ in {}: ours {:?} / spaCy {:?}",
                    doc.id,
                    &mine[lo..(k + 4).min(mine.len())],
                    &theirs[lo..(k + 4).min(theirs.len())]
                );
            }
        }
    }

    eprintln!(
        "\nword splitter: {words_same}/{words_docs} documents with identical word lists ({:.3} %); \
               {words_total} spaCy words, ≈{words_diff} differing",
        100.0 * words_same as f64 / words_docs as f64
    );
    eprintln!(
        "\n{:<20} {:>9} {:>8} {:>12} {:>12}",
        "filter", "agree", "of", "reason diff", "text diff"
    );
    for (name, (agree, total, rdiff, tdiff)) in &stats {
        eprintln!(
            "{name:<20} {:>8.3}% {total:>8} {rdiff:>12} {tdiff:>12}",
            100.0 * *agree as f64 / *total as f64
        );
    }
    eprintln!(
        "\ndisagreements by class (filter, class, ours / datatrove reason): count, example id"
    );
    for (k, n) in &classes {
        eprintln!(
            "  {:<20} {:<26} {:<50} {n:>5}  {}",
            k.0, k.1, k.2, examples[k]
        );
    }
    for (name, (agree, total, rdiff, tdiff)) in &stats {
        let rate = *agree as f64 / *total as f64;
        assert!(
            rate >= 0.995,
            "{name}: decision agreement {:.3} % < 99.5 %",
            rate * 100.0
        );
        assert_eq!(*rdiff, 0, "{name}: agreeing drops with a different reason");
        let trate = 1.0 - *tdiff as f64 / *total as f64;
        assert!(
            trate >= 0.995,
            "{name}: rewritten-text agreement {:.3} % < 99.5 %",
            trate * 100.0
        );
    }
}

fn c4_filter(cfg: C4QualityConfig) -> C4Quality {
    C4Quality::new(cfg)
}
