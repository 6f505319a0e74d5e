//! The dataset card: the snapshot's `README.md`, with Hugging Face datasets front matter
//! (`configs` pointing at `data/*.parquet`, and `license`, `language`, `pretty_name` from the
//! config's `[output.card]`).

use std::fmt::Write as _;

use crate::charts::int;
use crate::profile::Profile;
use curate_snapshot::Manifest;

/// `[output.card]` as the manifest's resolved config records it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CardFields {
    /// Display name.
    pub name: Option<String>,
    /// A paragraph describing the dataset.
    pub description: Option<String>,
    /// License identifier (Hugging Face's list, e.g. `odc-by`, `cc-by-4.0`, `apache-2.0`).
    pub license: Option<String>,
    /// Language codes (ISO 639-1 or 639-3).
    pub language: Vec<String>,
}

impl CardFields {
    /// Reads `config.output.card` from a manifest.
    pub fn from_manifest(m: &Manifest) -> CardFields {
        let c = m.config.pointer("/output/card");
        let s = |k: &str| {
            c.and_then(|c| c.get(k))
                .and_then(|v| v.as_str())
                .map(String::from)
        };
        CardFields {
            name: s("name"),
            description: s("description"),
            license: s("license"),
            language: c
                .and_then(|c| c.get("language"))
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// A YAML scalar, double-quoted (JSON string syntax is valid YAML).
fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).expect("string")
}

/// Hugging Face's size category for a row count.
fn size_category(n: u64) -> &'static str {
    match n {
        0..1_000 => "n<1K",
        1_000..10_000 => "1K<n<10K",
        10_000..100_000 => "10K<n<100K",
        100_000..1_000_000 => "100K<n<1M",
        1_000_000..10_000_000 => "1M<n<10M",
        10_000_000..100_000_000 => "10M<n<100M",
        100_000_000..1_000_000_000 => "100M<n<1B",
        1_000_000_000..10_000_000_000 => "1B<n<10B",
        10_000_000_000..100_000_000_000 => "10B<n<100B",
        100_000_000_000..1_000_000_000_000 => "100B<n<1T",
        _ => "n>1T",
    }
}

/// Markdown table cell text.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Renders `README.md`.
pub fn render(m: &Manifest, p: &Profile, name: &str, columns: &[String]) -> String {
    let f = CardFields::from_manifest(m);
    let t = &m.totals;
    let mut o = String::from("---\n");
    let _ = writeln!(o, "pretty_name: {}", yaml_str(name));
    if let Some(l) = &f.license {
        let _ = writeln!(o, "license: {}", yaml_str(l));
    }
    if !f.language.is_empty() {
        o.push_str("language:\n");
        for l in &f.language {
            let _ = writeln!(o, "- {}", yaml_str(l));
        }
    }
    let _ = writeln!(
        o,
        "size_categories:\n- {}",
        yaml_str(size_category(t.kept_rows))
    );
    o.push_str("tags:\n- curate\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n    path: data/*.parquet\n---\n\n");
    let _ = writeln!(o, "# {name}\n");
    if let Some(d) = &f.description {
        let _ = writeln!(o, "{}\n", d.trim());
    }
    let _ = writeln!(
        o,
        "A snapshot written by curate {}: {} documents kept of {} read ({} data file(s) under `data/`). `report.html` beside this card has the charts; `manifest.json` has every count, the resolved config and the hash of every file.\n",
        m.curate_version,
        int(t.kept_rows),
        int(t.input_rows),
        m.outputs.len()
    );
    o.push_str("## Load it\n\n```python\nfrom datasets import load_dataset\nds = load_dataset(\"parquet\", data_files=\"data/*.parquet\", split=\"train\")\n```\n\n");
    if !columns.is_empty() {
        let _ = writeln!(
            o,
            "Columns: {}.\n",
            columns
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    o.push_str("## Counts\n\n| | documents | words |\n|---|---:|---:|\n");
    let words = |w: Option<u64>| w.map_or("—".to_string(), int);
    let _ = writeln!(
        o,
        "| read | {} | {} |",
        int(t.input_rows),
        words(p.before.as_ref().map(|d| d.words))
    );
    let _ = writeln!(
        o,
        "| kept | {} | {} |",
        int(t.kept_rows),
        int(p.after.words)
    );
    let _ = writeln!(o, "| dropped | {} | |", int(t.dropped_rows));
    if t.skipped_rows > 0 {
        let _ = writeln!(o, "| in skipped shards | {} | |", int(t.skipped_rows));
    }
    o.push_str(
        "\n## Pipeline\n\n| # | step | in | out | dropped, by reason |\n|---:|---|---:|---:|---|\n",
    );
    for s in &m.steps {
        let reasons: Vec<String> = s
            .dropped
            .iter()
            .map(|(r, n)| format!("{} {}", cell(r), int(*n)))
            .collect();
        let _ = writeln!(
            o,
            "| {} | `{}` | {} | {} | {} |",
            s.index,
            cell(&s.kind),
            int(s.docs_in),
            int(s.docs_out),
            reasons.join(", ")
        );
    }
    if let Some(train) = m.step("train").and_then(|s| s.stats.as_ref()) {
        let g = |k: &str| {
            train
                .get(k)
                .and_then(|v| v.as_f64())
                .map_or("—".into(), |v| format!("{v:.3}"))
        };
        let _ = writeln!(
            o,
            "\nQuality student (held-out, {} documents): AUC {}, F1 {}, Spearman {}, ECE {}.",
            train.get("n_holdout").and_then(|v| v.as_u64()).unwrap_or(0),
            g("auc"),
            g("f1"),
            g("spearman"),
            g("ece")
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
            "\nScored with a frozen quality model from `{}` (`model/model.bin`, xxh3-128 `{}`); held-out in its own run: AUC {}, F1 {}, Spearman {}, ECE {}.",
            cell(fm["source"].as_str().unwrap_or("?")),
            fm["model_hash"].as_str().unwrap_or("?"),
            g("auc"),
            g("f1"),
            g("spearman"),
            g("ece")
        );
    }
    o.push_str("\n## Inputs\n\n| file | bytes | xxh3-128 |\n|---|---:|---|\n");
    for i in &m.inputs {
        let _ = writeln!(
            o,
            "| `{}` | {} | `{}` |",
            cell(&i.path),
            int(i.bytes),
            i.xxh3_128
        );
    }
    let _ = write!(
        o,
        "\n## Rebuild\n\nThe resolved config is `config` in `manifest.json` (fingerprint `{}`, seed {}). Write it back as TOML, point `[input] paths` at the same files (their hashes are above) and run\n\n```sh\ncurate run --config snapshot.toml\ncurate snapshot verify <dir>\n```\n\nThe same config and input give byte-identical data files and manifest, for any thread count.\n",
        m.config_fingerprint, m.seed
    );
    if let Some(l) = &f.license {
        let _ = writeln!(
            o,
            "\n## License\n\n`{l}` (as configured in `[output.card]`)."
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_categories_follow_the_hub() {
        assert_eq!(size_category(0), "n<1K");
        assert_eq!(size_category(60), "n<1K");
        assert_eq!(size_category(1_000), "1K<n<10K");
        assert_eq!(size_category(59_999), "10K<n<100K");
    }

    #[test]
    fn yaml_strings_are_quoted() {
        assert_eq!(yaml_str("a: b"), "\"a: b\"");
        assert_eq!(cell("a|b\nc"), "a\\|b c");
    }
}
