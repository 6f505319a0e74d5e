//! Peak memory of the per-document filters on one huge document (docs/BENCHMARKS.md, "Memory
//! per document").
//!
//! Run: `cargo run --release -p curate-filters --example doc_memory -- FILTER MB`, where FILTER
//! is `gopher_repetition`, `gopher_quality`, `c4_quality`, `fineweb_quality` or `chain` (the
//! FineWeb chain as the filter benchmark runs it). The document is corpus text (the first
//! corpus shard's documents, newlines made spaces so that no line or paragraph repeats and every
//! rule runs to the end) up to MB megabytes. Prints the peak resident
//! set before and after the filter, and the growth. `CURATE_PREFIX=off` decides the whole
//! document (no prefix limit), as curate did before the limit existed.

use std::sync::Arc;

use arrow::array::{Array, AsArray};
use curate_filters::c4_quality::{C4Quality, C4QualityConfig};
use curate_filters::filter::{FilterProcessor, TextFilter, Verdict};
use curate_filters::fineweb_quality::FineWebQuality;
use curate_filters::gopher_quality::GopherQuality;
use curate_filters::gopher_repetition::GopherRepetition;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// Peak resident set (since the last reset), in MB.
fn peak_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Corpus text on one line, `bytes` long (cut at a character boundary).
fn document(bytes: usize) -> String {
    let path = curate_testkit::corpus_shard_or_sample();
    let mut doc = String::with_capacity(bytes + (1 << 20));
    'fill: loop {
        let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&path).unwrap())
            .unwrap()
            .build()
            .unwrap();
        for b in reader {
            let b = b.unwrap();
            let t = b.column_by_name("text").unwrap().as_string::<i32>().clone();
            for i in 0..t.len() {
                if doc.len() >= bytes {
                    break 'fill;
                }
                doc.extend(t.value(i).chars().map(|c| if c == '\n' { ' ' } else { c }));
                doc.push(' ');
            }
        }
    }
    let mut cut = bytes.min(doc.len());
    while !doc.is_char_boundary(cut) {
        cut -= 1;
    }
    doc.truncate(cut);
    doc.shrink_to_fit();
    doc
}

fn check<F: TextFilter>(f: F, doc: &str) -> String {
    let mut p = FilterProcessor::new(Arc::new(f));
    let (v, out) = p.check(doc, 0);
    match v {
        Verdict::Rewrite => format!("rewrite ({} bytes)", out.len()),
        v => format!("{v:?}"),
    }
}

/// The prefix limit of the filters that have one (`CURATE_PREFIX=off`: none).
fn limit() -> usize {
    match std::env::var("CURATE_PREFIX").as_deref() {
        Ok("off") => usize::MAX,
        _ => curate_filters::filter::PREFIX_BYTES,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let filter = args.get(1).map_or("chain", String::as_str);
    let mb: f64 = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(50.0);
    curate_filters::words::warm_up();
    let doc = document((mb * 1e6) as usize);
    // reset the peak to the current resident set (Linux: clear_refs 5), so that the peak after
    // is what the filter added to what is already there
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = peak_mb();
    let fw_c4 = C4QualityConfig {
        filter_no_terminal_punct: false,
        ..C4QualityConfig::default()
    };
    let verdict = match filter {
        "gopher_repetition" => check(
            GopherRepetition::new(Default::default()).with_prefix_bytes(limit()),
            &doc,
        ),
        "gopher_quality" => check(
            GopherQuality::new(Default::default()).with_prefix_bytes(limit()),
            &doc,
        ),
        "c4_quality" => check(C4Quality::new(fw_c4).with_whole_split_bytes(limit()), &doc),
        "fineweb_quality" => check(
            FineWebQuality::new(Default::default()).with_prefix_bytes(limit()),
            &doc,
        ),
        "chain" => {
            // every step on the document (the verdicts are not chained, so that every step
            // runs), fineweb_quality on c4_quality's rewrite; as in a pipeline task, each
            // step's processor (and its working memory) lives until the end
            let mut gr = FilterProcessor::new(Arc::new(
                GopherRepetition::new(Default::default()).with_prefix_bytes(limit()),
            ));
            let mut gq = FilterProcessor::new(Arc::new(
                GopherQuality::new(Default::default()).with_prefix_bytes(limit()),
            ));
            let mut c4 = FilterProcessor::new(Arc::new(
                C4Quality::new(fw_c4).with_whole_split_bytes(limit()),
            ));
            let mut fw = FilterProcessor::new(Arc::new(
                FineWebQuality::new(Default::default()).with_prefix_bytes(limit()),
            ));
            let mut v = vec![format!("{:?}", gr.check(&doc, 0).0)];
            v.push(format!("{:?}", gq.check(&doc, 0).0));
            let (c, out) = c4.check(&doc, 0);
            v.push(format!("{c:?}"));
            let text = if c == Verdict::Rewrite {
                out.to_string()
            } else {
                doc.clone()
            };
            v.push(format!("{:?}", fw.check(&text, 0).0));
            v.join(", ")
        }
        other => panic!("unknown filter {other}"),
    };
    let after = peak_mb();
    println!(
        "{filter} on one {:.1} MB document: {verdict}; peak RSS {before:.0} MB before, {after:.0} MB after (+{:.0} MB, {:.1}x the document)",
        doc.len() as f64 / 1e6,
        after - before,
        (after - before) * 1048576.0 / doc.len() as f64
    );
}
