//! The training-data charts: what `decontaminate` found per benchmark and what `tokenize`
//! wrote per dataset, both from the steps' published stats in the manifest.

use crate::charts::{self, Meta, Series, int};
use curate_snapshot::Manifest;

/// The stats of every step of type `kind`, with the step's label.
fn stats_of<'a>(m: &'a Manifest, kind: &str) -> Vec<(String, Option<&'a serde_json::Value>)> {
    m.steps
        .iter()
        .filter(|s| s.kind == kind)
        .map(|s| (format!("[{}] {}", s.index, s.kind), s.stats.as_ref()))
        .collect()
}

fn u(v: &serde_json::Value, k: &str) -> u64 {
    v.get(k).and_then(|x| x.as_u64()).unwrap_or(0)
}

/// Documents hit and items found per benchmark.
pub fn decontamination_chart(m: &Manifest) -> String {
    let meta = Meta {
        id: "decontamination",
        title: "Benchmark contamination",
        desc: "Per benchmark: documents that share an n-gram with one of its items, and how many of its items some document contained, from the decontaminate step's published stats.",
    };
    let steps = stats_of(m, "decontaminate");
    if steps.is_empty() {
        return charts::empty(&meta, "this run has no decontaminate step");
    }
    let mut cats = Vec::new();
    let (mut hit, mut found, mut hit_s, mut found_s) = (vec![], vec![], vec![], vec![]);
    for (label, stats) in &steps {
        let benches = stats
            .and_then(|s| s.get("benchmarks"))
            .and_then(|b| b.as_array())
            .cloned()
            .unwrap_or_default();
        for b in &benches {
            let name = b.get("name").and_then(|x| x.as_str()).unwrap_or("?");
            cats.push(if steps.len() > 1 {
                format!("{label} {name}")
            } else {
                name.to_string()
            });
            let (h, f, items) = (u(b, "documents_hit"), u(b, "items_found"), u(b, "items"));
            hit.push(h as f64);
            found.push(f as f64);
            hit_s.push(format!("{} documents", int(h)));
            found_s.push(format!("{} of {} items", int(f), int(items)));
        }
    }
    if cats.is_empty() {
        return charts::empty(
            &meta,
            "the decontaminate step published no benchmark counts",
        );
    }
    if hit.iter().chain(&found).all(|x| *x == 0.0) {
        return charts::empty(
            &meta,
            &format!(
                "no document contains an item of {} (checked against every benchmark)",
                cats.join(", ")
            ),
        );
    }
    let series = [
        Series {
            name: "documents hit".into(),
            values: hit,
            shown: hit_s,
        },
        Series {
            name: "items found".into(),
            values: found,
            shown: found_s,
        },
    ];
    charts::bars(&meta, "count", &cats, &series)
}

/// Tokens per dataset (one per `split_by` value) of the tokenize step.
pub fn tokens_chart(m: &Manifest) -> String {
    let meta = Meta {
        id: "tokens",
        title: "Training tokens per dataset",
        desc: "Tokens (end-of-text included) per Megatron dataset under tokens/ — one per split_by value — with its documents and files, from tokens/stats.json.",
    };
    let steps = stats_of(m, "tokenize");
    let Some((_, Some(stats))) = steps.first() else {
        return charts::empty(&meta, "this run has no tokenize step");
    };
    let datasets = stats
        .get("datasets")
        .and_then(|d| d.as_array())
        .cloned()
        .unwrap_or_default();
    let mut cats = Vec::new();
    let (mut vals, mut shown) = (Vec::new(), Vec::new());
    for d in &datasets {
        let name = d.get("name").and_then(|x| x.as_str()).unwrap_or("");
        cats.push(if name.is_empty() {
            "tokens/".to_string()
        } else {
            name.to_string()
        });
        let files = d
            .get("files")
            .and_then(|f| f.as_array())
            .map_or(0, Vec::len);
        vals.push(u(d, "tokens") as f64);
        shown.push(format!(
            "{} tokens, {} documents, {} file(s)",
            int(u(d, "tokens")),
            int(u(d, "documents")),
            files
        ));
    }
    if cats.is_empty() {
        return charts::empty(&meta, "the tokenize step kept no documents");
    }
    let tok = stats
        .get("tokenizer")
        .and_then(|t| t.get("name"))
        .and_then(|n| n.as_str());
    let series = [Series {
        name: format!("tokens ({})", tok.unwrap_or("tokenizer")),
        values: vals,
        shown,
    }];
    charts::bars(&meta, "tokens", &cats, &series)
}
