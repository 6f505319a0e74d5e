//! `report.html`: one self-contained page (inline CSS and SVG, no scripts, no network) with the
//! snapshot's charts.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::charts::{self, Line, LineOpts, Meta, Series, WfRow, esc, int, num, sig};
use crate::labels::{LabelSummary, show_key};
use crate::profile::{Dist, Profile, length_labels};
use curate_snapshot::Manifest;

/// Everything a report is drawn from.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// The manifest.
    pub manifest: Manifest,
    /// Distributions measured from the files.
    pub profile: Profile,
    /// The teacher's labels, when the run labelled.
    pub labels: Option<LabelSummary>,
    /// `quality/metrics.json`, when the run trained a student.
    pub metrics: Option<serde_json::Value>,
    /// The dataset's display name.
    pub name: String,
}

/// Chart ids, in page order (the browser test checks each one).
pub const CHARTS: &[&str] = &[
    "waterfall-docs",
    "waterfall-words",
    "length",
    "language",
    "dedup-clusters",
    "teacher-labels",
    "labeling-cost",
    "student-scores",
    "quality-buckets",
    "reliability",
    "threshold-curve",
    "decontamination",
    "tokens",
];

const CSS: &str = r#"
:root { color-scheme: light dark; --bg:#ffffff; --fg:#1b1f24; --muted:#57606a; --grid:#d0d7de;
  --c0:#2f6db5; --c1:#c2571a; --c2:#2e8b57; --frame:#f6f8fa; }
@media (prefers-color-scheme: dark) {
  :root { --bg:#0d1117; --fg:#e6edf3; --muted:#9da7b3; --grid:#30363d;
    --c0:#6ea8fe; --c1:#f0883e; --c2:#56d364; --frame:#161b22; } }
body { background:var(--bg); color:var(--fg); font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;
  max-width:820px; margin:2em auto; padding:0 1em; }
h1 { font-size:1.6em; margin-bottom:0.2em; } h2 { margin-top:2em; border-bottom:1px solid var(--grid); }
.meta, figcaption, .note-text { color:var(--muted); }
table { border-collapse:collapse; margin:0.6em 0; font-variant-numeric:tabular-nums; }
th, td { border:1px solid var(--grid); padding:2px 8px; text-align:right; }
th:first-child, th[scope=row] { text-align:left; }
figure { margin:1.2em 0; } figcaption { margin-bottom:0.4em; } figcaption strong { color:var(--fg); }
svg { max-width:100%; height:auto; font-size:12px; }
svg text { fill:var(--fg); } svg .tick, svg .note { fill:var(--muted); } svg .note { font-size:14px; }
svg .grid { stroke:var(--grid); stroke-width:1; } svg .axis { stroke:var(--fg); }
svg .frame { fill:var(--frame); stroke:var(--grid); }
svg .bar { stroke:var(--fg); stroke-width:0.6; }
.s0 { fill:var(--c0); } .s1 { fill:url(#hatch); } .s2 { fill:url(#dots); }
.hatch-bg { fill:var(--c1); } .hatch-fg { stroke:var(--bg); stroke-width:2.5; }
.dots-bg { fill:var(--c2); } .dots-fg { fill:var(--bg); }
svg .series { fill:none; stroke-width:2; } .l0 { stroke:var(--c0); } .l1 { stroke:var(--c1); stroke-dasharray:7 4; }
.l2 { stroke:var(--c2); stroke-dasharray:2 3; }
.m0 { fill:var(--c0); } .m1 { fill:var(--c1); } .m2 { fill:var(--c2); } svg .marker { stroke:var(--bg); stroke-width:1; }
svg .reference { stroke:var(--muted); stroke-dasharray:4 4; stroke-width:1.2; }
details summary { cursor:pointer; color:var(--muted); }
.defs { position:absolute; }
code { font-size:0.95em; }
"#;

fn pct(n: u64, of: u64) -> f64 {
    if of == 0 {
        0.0
    } else {
        100.0 * n as f64 / of as f64
    }
}

fn waterfall_docs(m: &Manifest) -> String {
    let meta = Meta {
        id: "waterfall-docs",
        title: "Documents removed per step and reason",
        desc: "From the manifest's per-step counts: each bar is what one step removed for one reason, starting from every document read.",
    };
    let mut rows = vec![WfRow {
        label: "documents read".into(),
        from: m.totals.input_rows,
        to: m.totals.input_rows,
        total: true,
    }];
    let mut left = m.totals.input_rows;
    for s in &m.steps {
        for (reason, n) in &s.dropped {
            rows.push(WfRow {
                label: format!("[{}] {}: {reason}", s.index, s.kind),
                from: left,
                to: left.saturating_sub(*n),
                total: false,
            });
            left = left.saturating_sub(*n);
        }
    }
    rows.push(WfRow {
        label: "documents kept".into(),
        from: m.totals.kept_rows,
        to: m.totals.kept_rows,
        total: true,
    });
    charts::waterfall(&meta, "documents", &rows)
}

fn waterfall_words(m: &Manifest, p: &Profile) -> String {
    let meta = Meta {
        id: "waterfall-words",
        title: "Words removed per step and reason",
        desc: "Measured from the text in excluded/ and data/: whitespace-separated words (a tokenizer-free proxy for tokens; the threshold curve below counts real tokenizer tokens).",
    };
    let Some(before) = &p.before else {
        return charts::empty(
            &meta,
            "this run did not keep its dropped documents; set `exclusion = true` in [output] to measure them",
        );
    };
    let order = |kind: &str| {
        m.steps
            .iter()
            .find(|s| s.kind == kind)
            .map_or(usize::MAX, |s| s.index)
    };
    let mut removed: Vec<_> = p.removed.iter().collect();
    removed.sort_by(|a, b| {
        (order(&a.step), &a.step, &a.reason).cmp(&(order(&b.step), &b.step, &b.reason))
    });
    let mut rows = vec![WfRow {
        label: "words read".into(),
        from: before.words,
        to: before.words,
        total: true,
    }];
    let mut left = before.words;
    for r in removed {
        let idx = order(&r.step);
        let label = if idx == usize::MAX {
            format!("{}: {}", r.step, r.reason)
        } else {
            format!("[{idx}] {}: {}", r.step, r.reason)
        };
        rows.push(WfRow {
            label,
            from: left,
            to: left.saturating_sub(r.words),
            total: false,
        });
        left = left.saturating_sub(r.words);
    }
    rows.push(WfRow {
        label: "words kept".into(),
        from: p.after.words,
        to: p.after.words,
        total: true,
    });
    charts::waterfall(&meta, "words", &rows)
}

/// A bar series of `counts` as shares of `docs` documents, named `"{name} (docs docs)"`.
fn share_series(name: &str, docs: u64, counts: &[u64]) -> Series {
    Series {
        name: format!("{name} ({} docs)", int(docs)),
        values: counts.iter().map(|&n| pct(n, docs)).collect(),
        shown: counts
            .iter()
            .map(|&n| format!("{} ({:.1}%)", int(n), pct(n, docs)))
            .collect(),
    }
}

/// [`share_series`] of counts that cover every document.
fn total_share_series(name: &str, counts: &[u64]) -> Series {
    share_series(name, counts.iter().sum(), counts)
}

fn length_chart(p: &Profile) -> String {
    let meta = Meta {
        id: "length",
        title: "Document length before and after",
        desc: "Share of documents per length bin (characters), all documents read vs the documents kept.",
    };
    let mut series = Vec::new();
    if let Some(b) = &p.before {
        series.push(share_series("before", b.docs, &b.length));
    }
    if p.after.docs == 0 && p.before.is_none() {
        return charts::empty(&meta, "the snapshot keeps no documents");
    }
    series.push(share_series("after", p.after.docs, &p.after.length));
    charts::bars(&meta, "% of documents", &length_labels(), &series)
}

fn language_chart(p: &Profile) -> String {
    let meta = Meta {
        id: "language",
        title: "Languages before and after",
        desc: "Share of documents per value of the `language` column (the input's, or the language step's where it ran), the 12 most frequent.",
    };
    if !p.language_column {
        return charts::empty(&meta, "the documents have no `language` column");
    }
    let base = p.before.as_ref().unwrap_or(&p.after);
    if base.languages_overflow {
        return charts::empty(
            &meta,
            &format!(
                "the `language` column holds more than {} distinct values",
                crate::profile::MAX_LANGUAGES
            ),
        );
    }
    let mut langs: Vec<(&String, &u64)> = base.languages.iter().collect();
    langs.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let top: Vec<String> = langs.iter().take(12).map(|(k, _)| (*k).clone()).collect();
    let mut cats = top.clone();
    let rest = langs.len() > top.len();
    if rest {
        cats.push("all others".into());
    }
    let counts = |d: &Dist| -> Vec<u64> {
        let mut v: Vec<u64> = top
            .iter()
            .map(|k| d.languages.get(k).copied().unwrap_or(0))
            .collect();
        if rest {
            v.push(d.docs - v.iter().sum::<u64>());
        }
        v
    };
    let mut series = Vec::new();
    if let Some(b) = &p.before {
        series.push(share_series("before", b.docs, &counts(b)));
    }
    series.push(share_series("after", p.after.docs, &counts(&p.after)));
    charts::bars(&meta, "% of documents", &cats, &series)
}

fn dedup_chart(m: &Manifest) -> String {
    let meta = Meta {
        id: "dedup-clusters",
        title: "Duplicate cluster sizes",
        desc: "Number of duplicate clusters per cluster size (documents in the cluster, the survivor included), per dedup step, from the steps' published stats.",
    };
    let mut per: Vec<(String, BTreeMap<u64, u64>)> = Vec::new();
    for s in &m.steps {
        let key = match s.kind.as_str() {
            "exact_dedup" => "group_sizes",
            "minhash_dedup" => "cluster_sizes",
            _ => continue,
        };
        let mut sizes = BTreeMap::new();
        if let Some(obj) = s
            .stats
            .as_ref()
            .and_then(|v| v.get(key))
            .and_then(|v| v.as_object())
        {
            for (k, v) in obj {
                if let (Ok(size), Some(n)) = (k.parse::<u64>(), v.as_u64()) {
                    sizes.insert(size, n);
                }
            }
        }
        per.push((format!("[{}] {}", s.index, s.kind), sizes));
    }
    if per.is_empty() {
        return charts::empty(&meta, "this run has no dedup step");
    }
    let all: std::collections::BTreeSet<u64> =
        per.iter().flat_map(|(_, s)| s.keys().copied()).collect();
    if all.is_empty() {
        let names: Vec<&str> = per.iter().map(|(n, _)| n.as_str()).collect();
        return charts::empty(
            &meta,
            &format!("the dedup steps ({}) found no duplicates", names.join(", ")),
        );
    }
    let cats: Vec<String> = all.iter().map(|s| s.to_string()).collect();
    let series = per
        .iter()
        .map(|(name, sizes)| {
            let v: Vec<u64> = all
                .iter()
                .map(|k| sizes.get(k).copied().unwrap_or(0))
                .collect();
            Series {
                name: name.clone(),
                values: v.iter().map(|&n| n as f64).collect(),
                shown: v.iter().map(|&n| int(n)).collect(),
            }
        })
        .collect::<Vec<_>>();
    charts::bars(&meta, "clusters", &cats, &series)
}

fn teacher_chart(l: Option<&LabelSummary>) -> String {
    let meta = Meta {
        id: "teacher-labels",
        title: "Teacher label distribution",
        desc: "Labels per teacher score and split, from labels/labels.parquet (reference-corpus positives included when the annotator is `reference`).",
    };
    let Some(l) = l.filter(|l| l.rows > 0) else {
        return charts::empty(&meta, "this run has no label step");
    };
    let keys: std::collections::BTreeSet<&String> =
        l.scores.values().flat_map(|m| m.keys()).collect();
    let cats: Vec<String> = keys.iter().map(|k| show_key(k)).collect();
    let series: Vec<Series> = l
        .scores
        .iter()
        .map(|(split, m)| {
            let v: Vec<u64> = keys
                .iter()
                .map(|k| m.get(*k).copied().unwrap_or(0))
                .collect();
            Series {
                name: format!("split {split}"),
                values: v.iter().map(|&n| n as f64).collect(),
                shown: v.iter().map(|&n| int(n)).collect(),
            }
        })
        .collect();
    charts::bars(&meta, "labels", &cats, &series)
}

/// Labels per selection (how each labelled document was chosen: `random`,
/// `uncertainty-round-N`), when the labels file records it; empty otherwise.
fn selection_table(l: Option<&LabelSummary>) -> String {
    let Some(l) = l.filter(|l| !l.selections.is_empty()) else {
        return String::new();
    };
    let mut o = String::from(
        "<table class=\"selections\"><caption>Labels by how the documents were chosen (the <code>selection</code> column of labels/labels.parquet)</caption><thead><tr><th scope=\"col\">selection</th><th scope=\"col\">labelled</th><th scope=\"col\">unlabelled</th><th scope=\"col\">cost (USD)</th></tr></thead><tbody>",
    );
    for (sel, c) in &l.selections {
        let _ = write!(
            o,
            "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{:.4}</td></tr>",
            esc(sel),
            int(c.labeled),
            int(c.unlabeled),
            c.cost_usd
        );
    }
    o.push_str("</tbody></table>\n");
    o
}

fn cost_chart(l: Option<&LabelSummary>) -> String {
    let Some(l) = l.filter(|l| l.rows > 0) else {
        return charts::empty(
            &Meta {
                id: "labeling-cost",
                title: "Labeling cost",
                desc: "Tokens sent to and received from the teacher, and their price.",
            },
            "this run has no label step",
        );
    };
    let models: Vec<String> = l
        .models
        .iter()
        .map(|(k, v)| format!("{k} ({})", int(*v)))
        .collect();
    let desc = format!(
        "Tokens by kind over the {} labels in labels/labels.parquet; cost of these labels: ${:.4} (models: {}).",
        int(l.rows),
        l.cost_usd,
        models.join(", ")
    );
    let meta = Meta {
        id: "labeling-cost",
        title: "Labeling cost",
        desc: &desc,
    };
    let total = l.input_tokens
        + l.output_tokens
        + l.cache_creation_input_tokens
        + l.cache_read_input_tokens;
    if total == 0 {
        return charts::empty(
            &meta,
            &format!(
                "no tokens were paid for: {} labels by {} at ${:.2}",
                int(l.rows),
                models.join(", "),
                l.cost_usd
            ),
        );
    }
    let v = [
        l.input_tokens,
        l.output_tokens,
        l.cache_creation_input_tokens,
        l.cache_read_input_tokens,
    ];
    charts::bars(
        &meta,
        "tokens",
        &[
            "input".into(),
            "output".into(),
            "cache write".into(),
            "cache read".into(),
        ],
        &[Series {
            name: "tokens".into(),
            values: v.iter().map(|&n| n as f64).collect(),
            shown: v.iter().map(|&n| int(n)).collect(),
        }],
    )
}

/// Whether the quality metrics give the score scale ([`scale`] falls back to `[0, 1]`).
fn has_scale(metrics: Option<&serde_json::Value>) -> bool {
    metrics.and_then(|m| m.get("scale")).is_some()
}

fn scale(metrics: Option<&serde_json::Value>) -> (f64, f64) {
    let s = metrics
        .and_then(|m| m.get("scale"))
        .and_then(|s| s.as_array());
    match s.map(|a| {
        (
            a.first().and_then(|v| v.as_f64()),
            a.get(1).and_then(|v| v.as_f64()),
        )
    }) {
        Some((Some(lo), Some(hi))) if hi > lo => (lo, hi),
        _ => (0.0, 1.0),
    }
}

/// The score range the report bins quality scores over.
pub fn score_scale(metrics: Option<&serde_json::Value>) -> (f64, f64) {
    scale(metrics)
}

/// The score step's cut as a vertical marker: a fixed threshold, or the lowest kept score.
fn cut_marker(m: &Manifest, p: &Profile) -> Option<(f64, String)> {
    let s = m.step("score")?;
    let keep = m.step_config(s.index)?.get("keep")?;
    if let Some(t) = keep.get("threshold").and_then(|v| v.as_f64()) {
        return Some((t, format!("keep ≥ {}", sig(t))));
    }
    let f = keep.get("top_fraction").and_then(|v| v.as_f64())?;
    let min = p.kept_scores.as_ref()?.min?;
    Some((min, format!("top {}% cut: ≥ {}", num(f * 100.0), sig(min))))
}

fn scores_chart(m: &Manifest, p: &Profile, metrics: Option<&serde_json::Value>) -> String {
    let meta = Meta {
        id: "student-scores",
        title: "Student score histogram",
        desc: "Share of documents per quality_score bin: every scored document before the score step's cut (its score_hist counters), the kept documents (data/), and the held-out labelled documents the student was evaluated on (calibrated scores, quality/metrics.json).",
    };
    let Some(k) = &p.kept_scores else {
        return charts::empty(
            &meta,
            "the documents have no `quality_score` column (no score step)",
        );
    };
    let n = k.counts.len();
    let w = (k.hi - k.lo) / n as f64;
    let cats: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "{}–{}",
                num(k.lo + w * i as f64),
                num(k.lo + w * (i + 1) as f64)
            )
        })
        .collect();
    let mut series = Vec::new();
    // Every scored document, dropped ones included: the score step's `score_hist_*` counters,
    // binned as `kept_scores` over the scale of the model's metrics (`curate_quality::score::
    // score_hist_bin`); drawn only when that scale is known.
    let scored = m
        .step("score")
        .filter(|_| has_scale(metrics))
        .and_then(|s| {
            let counts: Option<Vec<u64>> = (0..n)
                .map(|b| {
                    s.counters
                        .0
                        .get(&format!("score_hist_{b:02}"))
                        .map(|&v| v as u64)
                })
                .collect();
            counts.filter(|c| c.iter().sum::<u64>() > 0)
        });
    if let Some(counts) = scored {
        series.push(total_share_series("scored, before the cut", &counts));
    }
    series.push(total_share_series("kept", &k.counts));
    let bins = metrics
        .and_then(|m| m.pointer("/reliability/calibrated"))
        .and_then(|v| v.as_array());
    if let Some(bins) = bins.filter(|b| b.len() == n) {
        let counts: Vec<u64> = bins
            .iter()
            .map(|b| b.get("n").and_then(|v| v.as_u64()).unwrap_or(0))
            .collect();
        series.push(total_share_series("held-out", &counts));
    }
    let mut out = charts::bars(&meta, "% of documents", &cats, &series);
    if let Some((_, label)) = cut_marker(m, p) {
        let note = format!("<p class=\"note-text\">Score step: {}.</p>\n", esc(&label));
        out = out.replacen("</figure>", &format!("{note}</figure>"), 1);
    }
    out
}

/// Documents and tokens per quality bucket, from the score step's `bucket_docs_NN` and
/// `bucket_tokens_NN` counters (every scored document, before the keep rule).
fn buckets_chart(m: &Manifest) -> String {
    let meta = Meta {
        id: "quality-buckets",
        title: "Quality buckets",
        desc: "Share of scored documents and of their tokens per quality bucket (0 = lowest scores), before the score step's keep rule, from its bucket counters: the mix's raw material.",
    };
    let Some(s) = m.step("score") else {
        return charts::empty(&meta, "no score step");
    };
    let get = |what: &str| -> Vec<u64> {
        (0..)
            .map_while(|b| s.counters.0.get(&format!("bucket_{what}_{b:02}")))
            .map(|v| *v as u64)
            .collect()
    };
    let (docs, tokens) = (get("docs"), get("tokens"));
    if docs.is_empty() {
        return charts::empty(
            &meta,
            "the score step defines no buckets (`buckets` or `bucket_edges`)",
        );
    }
    let cats: Vec<String> = (0..docs.len()).map(|b| b.to_string()).collect();
    let mut series = vec![total_share_series("documents", &docs)];
    if tokens.iter().sum::<u64>() > 0 {
        let total: u64 = tokens.iter().sum();
        series.push(Series {
            name: format!("tokens ({} in all)", int(total)),
            values: tokens.iter().map(|&n| pct(n, total)).collect(),
            shown: tokens
                .iter()
                .map(|&n| format!("{} ({:.1}%)", int(n), pct(n, total)))
                .collect(),
        });
    }
    charts::bars(&meta, "% of scored", &cats, &series)
}

fn reliability_chart(metrics: Option<&serde_json::Value>) -> String {
    let meta = Meta {
        id: "reliability",
        title: "Reliability diagram",
        desc: "Held-out labelled documents binned by predicted score: mean teacher label vs mean prediction, before (raw) and after calibration, from quality/metrics.json. On the diagonal is perfect calibration.",
    };
    let Some(rel) = metrics.and_then(|m| m.get("reliability")) else {
        return charts::empty(
            &meta,
            "this run trained no student (no quality/metrics.json)",
        );
    };
    let (lo, hi) = scale(metrics);
    let pts = |key: &str| -> Vec<(f64, f64)> {
        rel.get(key)
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter(|b| b.get("n").and_then(|v| v.as_u64()).unwrap_or(0) > 0)
                    .filter_map(|b| {
                        Some((
                            b.get("mean_pred")?.as_f64()?,
                            b.get("mean_label")?.as_f64()?,
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let ece = |k: &str| {
        metrics
            .and_then(|m| m.get(k))
            .and_then(|v| v.as_f64())
            .map_or("?".into(), |v| format!("{v:.3}"))
    };
    charts::lines(
        &meta,
        &LineOpts {
            x_label: "mean predicted score",
            y_label: "mean teacher label",
            x: (lo, hi),
            y: (lo, hi),
            diagonal: true,
            vline: None,
        },
        &[
            Line {
                name: format!("calibrated (ECE {})", ece("ece")),
                points: pts("calibrated"),
            },
            Line {
                name: format!("raw (ECE {})", ece("ece_raw")),
                points: pts("raw"),
            },
        ],
    )
}

fn threshold_chart(m: &Manifest, p: &Profile, metrics: Option<&serde_json::Value>) -> String {
    let meta = Meta {
        id: "threshold-curve",
        title: "Threshold → kept documents and tokens",
        desc: "Share of held-out documents and of their tokens (the student's tokenizer) kept at each score threshold, and the share of teacher positives among them, from quality/metrics.json.",
    };
    let Some(curve) = metrics
        .and_then(|m| m.get("threshold_curve"))
        .and_then(|v| v.as_array())
    else {
        return charts::empty(
            &meta,
            "this run trained no student (no quality/metrics.json)",
        );
    };
    let (lo, hi) = scale(metrics);
    let series_of = |key: &str| -> Vec<(f64, f64)> {
        curve
            .iter()
            .filter_map(|r| Some((r.get("threshold")?.as_f64()?, r.get(key)?.as_f64()?)))
            .collect()
    };
    let tokenizer = metrics
        .and_then(|m| m.get("tokenizer"))
        .and_then(|v| v.as_str())
        .unwrap_or("tokens");
    charts::lines(
        &meta,
        &LineOpts {
            x_label: "score threshold",
            y_label: "fraction",
            x: (lo, hi),
            y: (0.0, 1.0),
            diagonal: false,
            vline: cut_marker(m, p),
        },
        &[
            Line {
                name: "documents kept".into(),
                points: series_of("kept_docs_fraction"),
            },
            Line {
                name: format!("tokens kept ({tokenizer})"),
                points: series_of("kept_tokens_fraction"),
            },
            Line {
                name: "precision of kept".into(),
                points: series_of("precision_at_keep"),
            },
        ],
    )
}

fn steps_table(m: &Manifest) -> String {
    let mut o = String::from(
        "<table><thead><tr><th>#</th><th>step</th><th>in</th><th>out</th><th>dropped</th><th>counters</th></tr></thead><tbody>",
    );
    for s in &m.steps {
        let counters: Vec<String> = s
            .counters
            .0
            .iter()
            .map(|(k, v)| format!("{k} = {}", num(*v)))
            .collect();
        let _ = write!(
            o,
            "<tr><td>{}</td><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td><td style=\"text-align:left\">{}</td></tr>",
            s.index,
            esc(&s.kind),
            int(s.docs_in),
            int(s.docs_out),
            int(s.docs_in.saturating_sub(s.docs_out)),
            esc(&counters.join("; "))
        );
    }
    o.push_str("</tbody></table>\n");
    o
}

/// Renders the page.
pub fn render(i: &Inputs) -> String {
    let m = &i.manifest;
    let p = &i.profile;
    let metrics = i.metrics.as_ref();
    let t = &m.totals;
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<meta name=\"color-scheme\" content=\"light dark\">\n<title>{} — curate snapshot report</title>\n<style>{CSS}</style>\n</head>\n<body>\n{}\n",
        esc(&i.name),
        charts::defs()
    );
    let _ = write!(
        o,
        "<h1>{}</h1>\n<p class=\"meta\">curate {} · config fingerprint <code>{}</code> · seed {} · {} input file(s)</p>\n",
        esc(&i.name),
        esc(&m.curate_version),
        esc(&m.config_fingerprint),
        m.seed,
        m.inputs.len()
    );
    let words = |d: Option<&Dist>| d.map_or("not measured".to_string(), |d| int(d.words));
    let _ = writeln!(
        o,
        "<table><tbody><tr><th scope=\"row\">documents read</th><td>{}</td></tr><tr><th scope=\"row\">documents kept</th><td>{} ({:.1}%)</td></tr><tr><th scope=\"row\">documents dropped</th><td>{}</td></tr><tr><th scope=\"row\">documents in skipped shards</th><td>{}</td></tr><tr><th scope=\"row\">words read</th><td>{}</td></tr><tr><th scope=\"row\">words kept</th><td>{}</td></tr><tr><th scope=\"row\">data files</th><td>{}</td></tr></tbody></table>",
        int(t.input_rows),
        int(t.kept_rows),
        pct(t.kept_rows, t.input_rows),
        int(t.dropped_rows),
        int(t.skipped_rows),
        words(p.before.as_ref()),
        int(p.after.words),
        m.outputs.len()
    );
    o.push_str("<h2>What each step removed</h2>\n");
    o.push_str(&waterfall_docs(m));
    o.push_str(&waterfall_words(m, p));
    o.push_str("<h2>Before and after</h2>\n");
    o.push_str(&length_chart(p));
    o.push_str(&language_chart(p));
    o.push_str("<h2>Deduplication</h2>\n");
    o.push_str(&dedup_chart(m));
    o.push_str("<h2>Teacher</h2>\n");
    o.push_str(&teacher_chart(i.labels.as_ref()));
    o.push_str(&selection_table(i.labels.as_ref()));
    o.push_str(&cost_chart(i.labels.as_ref()));
    o.push_str("<h2>Student</h2>\n");
    if let Some(mt) = metrics {
        let g = |k: &str| {
            mt.get(k)
                .and_then(|v| v.as_f64())
                .map_or("—".into(), |v| format!("{v:.3}"))
        };
        let _ = writeln!(
            o,
            "<p>Held-out metrics ({} documents): AUC {}, F1 {}, Spearman {}, ECE {} (raw {}).</p>",
            mt.get("n_holdout").and_then(|v| v.as_u64()).unwrap_or(0),
            g("auc"),
            g("f1"),
            g("spearman"),
            g("ece"),
            g("ece_raw")
        );
    }
    if let Some(fm) = m
        .step("score")
        .and_then(|s| s.stats.as_ref())
        .and_then(|st| st.get("model"))
    {
        let mt = &fm["metrics"];
        let g = |k: &str| {
            mt.get(k)
                .and_then(|v| v.as_f64())
                .map_or("—".into(), |v| format!("{v:.3}"))
        };
        let _ = writeln!(
            o,
            "<p>Scored with a frozen model from <code>{}</code> (model/model.bin, xxh3-128 <code>{}</code>), trained in an earlier run; its held-out metrics there: AUC {}, F1 {}, Spearman {}, ECE {}.</p>",
            esc(fm["source"].as_str().unwrap_or("?")),
            esc(fm["model_hash"].as_str().unwrap_or("?")),
            g("auc"),
            g("f1"),
            g("spearman"),
            g("ece")
        );
    }
    o.push_str(&scores_chart(m, p, metrics));
    o.push_str(&buckets_chart(m));
    o.push_str(&reliability_chart(metrics));
    o.push_str(&threshold_chart(m, p, metrics));
    o.push_str("<h2>Training data</h2>\n");
    o.push_str(&crate::training::decontamination_chart(m));
    o.push_str(&crate::training::tokens_chart(m));
    o.push_str("<h2>Steps</h2>\n");
    o.push_str(&steps_table(m));
    o.push_str("<h2>Rebuild</h2>\n<p>The resolved config is in <code>manifest.json</code> (<code>config</code>), with every input's size and xxh3-128. Run it with <code>curate run --config &lt;config&gt;</code>; the same config and input give byte-identical data files and manifest. Check this snapshot with <code>curate snapshot verify &lt;dir&gt;</code>.</p>\n</body>\n</html>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Dist;

    fn manifest() -> Manifest {
        serde_json::from_value(serde_json::json!({
            "format": 2, "hash": "xxh3-128", "decision_hash_scheme": "x",
            "writer": {"zstd_level": 3, "row_group_rows": 1, "data_page_bytes": 1, "created_by": "t"},
            "curate_version": "0.1.0",
            "config": {"input": {"text_column": "text"}, "steps": [{"type": "length"}],
                       "output": {"exclusion": false}},
            "config_fingerprint": "f",
            "seed": 1,
            "inputs": [{"path": "in.parquet", "bytes": 10, "xxh3_128": "00"}],
            "totals": {"input_rows": 10, "kept_rows": 7, "dropped_rows": 3, "skipped_rows": 0},
            "steps": [{"index": 0, "type": "length", "docs_in": 10, "docs_out": 7,
                       "dropped": {"too_short": 3}, "counters": {}}],
            "outputs": [{"path": "data/part-00000.parquet", "rows": 7, "bytes": 1, "xxh3_128": "00"}]
        }))
        .unwrap()
    }

    /// Past the cap of distinct `language` values the chart says so instead of drawing a
    /// distribution that would depend on which values were met first.
    #[test]
    fn too_many_language_values_are_said_not_drawn() {
        let mut p = Profile {
            language_column: true,
            after: Dist {
                docs: 3,
                languages: [("en".to_string(), 2), ("fr".to_string(), 1)].into(),
                ..Default::default()
            },
            before: None,
            removed: vec![],
            kept_scores: None,
        };
        let drawn = language_chart(&p);
        assert!(
            drawn.contains("en") && !drawn.contains("distinct values"),
            "{drawn}"
        );
        p.after.languages.clear();
        p.after.languages_overflow = true;
        let said = language_chart(&p);
        assert!(said.contains("more than 65536 distinct values"), "{said}");
    }

    fn page(m: Manifest) -> String {
        let mut after = Dist {
            docs: 7,
            chars: 700,
            words: 140,
            length: vec![0; crate::profile::LENGTH_EDGES.len() + 1],
            ..Default::default()
        };
        after.length[1] = 7;
        render(&Inputs {
            manifest: m,
            profile: Profile {
                language_column: false,
                after,
                before: None,
                removed: vec![],
                kept_scores: None,
            },
            labels: None,
            metrics: None,
            name: "t <1>".into(),
        })
    }

    #[test]
    fn every_chart_is_on_the_page_in_order_and_missing_data_is_said() {
        let html = page(manifest());
        let mut at = 0;
        for id in CHARTS {
            let i = html[at..]
                .find(&format!("data-chart=\"{id}\""))
                .unwrap_or_else(|| panic!("{id} missing or out of order"))
                + at;
            at = i;
        }
        assert!(html.contains("<h1>t &lt;1&gt;</h1>"));
        assert!(html.contains("[0] length: too_short"));
        assert!(html.contains("−3 (30.0%)"));
        for (id, why) in [
            ("waterfall-words", "set `exclusion = true`"),
            ("language", "no `language` column"),
            ("dedup-clusters", "no dedup step"),
            ("teacher-labels", "no label step"),
            ("student-scores", "no `quality_score` column"),
            ("reliability", "trained no student"),
            ("decontamination", "no decontaminate step"),
            ("tokens", "no tokenize step"),
        ] {
            let f = &html[html.find(&format!("data-chart=\"{id}\"")).unwrap()..];
            let f = &f[..f.find("</figure>").unwrap()];
            assert!(f.contains("data-empty=\"true\""), "{id}");
            assert!(f.contains(why), "{id}: {f}");
        }
        assert!(!html.contains("<script"));
    }

    #[test]
    fn paid_labels_draw_the_cost_chart() {
        let l = LabelSummary {
            rows: 3,
            input_tokens: 600,
            output_tokens: 15,
            cache_read_input_tokens: 2000,
            cost_usd: 0.5,
            models: [("claude-x".to_string(), 3)].into(),
            ..Default::default()
        };
        let c = cost_chart(Some(&l));
        assert!(c.contains("data-empty=\"false\""), "{c}");
        assert!(c.contains("cost of these labels: $0.5000"));
        assert!(
            c.contains("<title>cache read — tokens: 2,000</title>"),
            "{c}"
        );
        assert!(cost_chart(None).contains("no label step"));
    }

    #[test]
    fn labels_per_selection_make_a_table() {
        let mut l = LabelSummary::default();
        assert_eq!(selection_table(Some(&l)), "");
        assert_eq!(selection_table(None), "");
        l.selections.insert(
            "uncertainty-round-2".into(),
            crate::labels::SelectionCount {
                labeled: 1234,
                unlabeled: 2,
                cost_usd: 0.25,
            },
        );
        let t = selection_table(Some(&l));
        assert!(
            t.contains(
                "<th scope=\"row\">uncertainty-round-2</th><td>1,234</td><td>2</td><td>0.2500</td>"
            ),
            "{t}"
        );
    }

    #[test]
    fn the_same_inputs_give_the_same_bytes() {
        assert_eq!(page(manifest()), page(manifest()));
    }
}
