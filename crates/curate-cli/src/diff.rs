//! `curate snapshot diff A B`: what changed between two snapshots, as text or JSON.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use curate_pipeline::PipelineError;
use curate_pipeline::remote::{Need, Readable};
use curate_report::charts::{int, num, sig};
use curate_report::diff::{Delta, Diff};

/// Arguments of `curate snapshot diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The earlier snapshot (a directory or an s3:// URL).
    pub a: PathBuf,
    /// The later snapshot (a directory or an s3:// URL).
    pub b: PathBuf,
    /// Print the comparison as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Added and removed documents to name (by id, or the start of their text).
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub examples: usize,
}

fn delta(d: &Delta) -> String {
    if d.delta == 0 {
        format!("{} (same)", int(d.a))
    } else {
        format!(
            "{} → {} ({}{})",
            int(d.a),
            int(d.b),
            if d.delta > 0 { "+" } else { "−" },
            int(d.delta.unsigned_abs())
        )
    }
}

fn value(v: &Option<serde_json::Value>) -> String {
    match v {
        None => "(absent)".into(),
        // A whole step: its type and option count, not every option.
        Some(serde_json::Value::Object(m)) if m.contains_key("type") && m.len() > 3 => {
            format!("{} ({} options)", m["type"], m.len() - 1)
        }
        Some(v) => v.to_string(),
    }
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or("—".into(), sig)
}

/// Runs the command.
pub fn run(a: &DiffArgs) -> Result<ExitCode, PipelineError> {
    // A local directory, or an s3:// snapshot fetched into a temp directory.
    let (la, lb) = (
        Readable::open(&a.a, Need::Snapshot)?,
        Readable::open(&a.b, Need::Snapshot)?,
    );
    for dir in [la.path(), lb.path()] {
        // Same message as every other command that needs a finished snapshot.
        curate_pipeline::manifest::load(dir)?;
    }
    let d = curate_report::diff::diff(la.path(), lb.path(), a.examples)
        .map_err(|e| PipelineError::Other(format!("comparing snapshots: {e}")))?;
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&d).expect("json"));
    } else {
        print_human(&d, &a.a, &a.b);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_human(d: &Diff, a: &Path, b: &Path) {
    outln!("A: {}\nB: {}", a.display(), b.display());
    if d.identical {
        outln!(
            "identical: same config, inputs, counts, data files and artefacts ({} documents)",
            int(d.totals.kept_rows.a)
        );
        return;
    }
    outln!(
        "\nconfig: {}",
        if d.config.is_empty() {
            "same".to_string()
        } else {
            format!("{} difference(s)", d.config.len())
        }
    );
    for c in &d.config {
        outln!("  {}: {} → {}", c.path, value(&c.a), value(&c.b));
    }
    let i = &d.inputs;
    if i.added.is_empty() && i.removed.is_empty() && i.changed.is_empty() {
        outln!("inputs: same");
    } else {
        outln!("inputs:");
        for x in &i.added {
            outln!("  + {} ({} bytes)", x.path, int(x.bytes));
        }
        for x in &i.removed {
            outln!("  - {} ({} bytes)", x.path, int(x.bytes));
        }
        for [x, y] in &i.changed {
            outln!(
                "  ~ {}: {} → {} bytes, xxh3 {} → {}",
                x.path,
                int(x.bytes),
                int(y.bytes),
                &x.xxh3_128[..12],
                &y.xxh3_128[..12]
            );
        }
    }
    let t = &d.totals;
    outln!("\ntotals:");
    outln!("  read     {}", delta(&t.input_rows));
    outln!("  kept     {}", delta(&t.kept_rows));
    outln!("  dropped  {}", delta(&t.dropped_rows));
    if t.skipped_rows.a + t.skipped_rows.b > 0 {
        outln!("  skipped  {}", delta(&t.skipped_rows));
    }
    let changed: Vec<_> = d.steps.iter().filter(|s| s.changed()).collect();
    outln!(
        "\nsteps: {}",
        if changed.is_empty() {
            "same counts".to_string()
        } else {
            format!("{} of {} changed", changed.len(), d.steps.len())
        }
    );
    for s in changed {
        let kind = match (&s.type_a, &s.type_b) {
            (Some(x), Some(y)) if x == y => x.clone(),
            (x, y) => format!(
                "{} → {}",
                x.as_deref().unwrap_or("(none)"),
                y.as_deref().unwrap_or("(none)")
            ),
        };
        outln!(
            "  [{}] {kind}: in {}, out {}",
            s.index,
            delta(&s.docs_in),
            delta(&s.docs_out)
        );
        for (r, dd) in s.dropped.iter().filter(|(_, dd)| dd.delta != 0) {
            outln!("        {r}: {}", delta(dd));
        }
    }
    let docs = &d.documents;
    outln!(
        "\ndocuments (kept, matched by {}): {} in A, {} in B, {} in both, +{} added, −{} removed",
        docs.key,
        int(docs.in_a),
        int(docs.in_b),
        int(docs.common),
        int(docs.added),
        int(docs.removed)
    );
    if docs.keys_repeat() {
        let side = |n: &str, docs_n: u64, distinct: u64, unkeyed: u64| {
            let keyed = docs_n - unkeyed;
            if distinct < keyed {
                outln!(
                    "  note: keys are not unique in {n}: {} documents share {} distinct keys; \
                     a key's documents are matched in file order, as many as both sides have",
                    int(keyed),
                    int(distinct)
                );
            }
        };
        side("A", docs.in_a, docs.distinct_a, docs.unkeyed_a);
        side("B", docs.in_b, docs.distinct_b, docs.unkeyed_b);
    }
    for (n, unkeyed) in [("A", docs.unkeyed_a), ("B", docs.unkeyed_b)] {
        if unkeyed > 0 {
            outln!(
                "  note: {} document(s) of {n} have no key (null) and are not matched",
                int(unkeyed)
            );
        }
    }
    for e in &docs.added_examples {
        outln!("  + {e}");
    }
    if docs.added > docs.added_examples.len() as u64 && !docs.added_examples.is_empty() {
        outln!(
            "  + … {} more",
            int(docs.added - docs.added_examples.len() as u64)
        );
    }
    for e in &docs.removed_examples {
        outln!("  - {e}");
    }
    if docs.removed > docs.removed_examples.len() as u64 && !docs.removed_examples.is_empty() {
        outln!(
            "  - … {} more",
            int(docs.removed - docs.removed_examples.len() as u64)
        );
    }
    if let Some(s) = &d.scores {
        outln!("\nquality_score of kept documents:");
        for (name, x) in [("A", &s.a), ("B", &s.b)] {
            match x {
                Some(x) => outln!(
                    "  {name}: n {}, mean {}, p10 {}, median {}, p90 {} (min {}, max {})",
                    int(x.n),
                    sig(x.mean),
                    sig(x.p10),
                    sig(x.p50),
                    sig(x.p90),
                    sig(x.min),
                    sig(x.max)
                ),
                None => outln!("  {name}: no scores"),
            }
        }
        if let Some(ks) = s.ks {
            outln!("  shift: Kolmogorov–Smirnov statistic {ks:.4}");
        }
        let edges: Vec<String> = s.edges.iter().map(|e| num(*e)).collect();
        outln!("  bins  {}", edges.join(" | "));
        outln!(
            "  A     {}",
            s.hist_a
                .iter()
                .map(|n| int(*n))
                .collect::<Vec<_>>()
                .join(" ")
        );
        outln!(
            "  B     {}",
            s.hist_b
                .iter()
                .map(|n| int(*n))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    if !d.student.is_empty() {
        outln!("\nstudent (held-out):");
        for (k, [x, y]) in &d.student {
            outln!("  {k}: {} → {}", fmt_opt(*x), fmt_opt(*y));
        }
    }
    if d.same_data {
        outln!("\ndata files: identical");
    }
}
