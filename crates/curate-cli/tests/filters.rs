//! End-to-end tests of the filter steps through the real binary on real corpus data: the FineWeb
//! preset, per-step per-reason counts in the manifest matching the exclusion output, C4's text
//! rewrite reaching the output, PII redaction and the regex line mode.

use crate::common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use arrow::array::AsArray;
use common::*;

fn input() -> PathBuf {
    curate_testkit::corpus_shard_or_sample()
}

#[test]
fn fineweb_preset_counts_reasons_and_rewrites() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(
        tmp.path(),
        "fineweb.toml",
        &format!(
            r#"
[input]
paths = [{}]
id_column = "id"

[[steps]]
type = "sample_fraction"
fraction = 0.1

[[steps]]
preset = "fineweb"

[[steps]]
type = "pii"

[output]
exclusion = true

[run]
seed = 3
"#,
            q(&input())
        ),
    );
    let out = tmp.path().join("snap");
    run_ok(&[
        "run",
        "--config",
        cfg.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    let m = manifest(&out);
    let steps = m["steps"].as_array().unwrap();
    let kinds: Vec<&str> = steps
        .iter()
        .map(|s| s["type"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        kinds,
        [
            "sample_fraction",
            "url_filter",
            "language",
            "gopher_repetition",
            "gopher_quality",
            "c4_quality",
            "fineweb_quality",
            "pii"
        ],
        "{m}"
    );
    // Every drop in excluded/ carries its step and one of that step's reasons, and the counts
    // per step and reason equal the manifest's.
    let mut seen: BTreeMap<(String, String), u64> = BTreeMap::new();
    for b in read_dir_batches(&out.join("excluded")) {
        let r = b.column_by_name("reason").unwrap().as_string::<i32>();
        let s = b.column_by_name("step").unwrap().as_string::<i32>();
        for i in 0..b.num_rows() {
            *seen
                .entry((s.value(i).to_string(), r.value(i).to_string()))
                .or_default() += 1;
        }
    }
    let mut from_manifest: BTreeMap<(String, String), u64> = BTreeMap::new();
    for s in steps {
        if let Some(d) = s["dropped"].as_object() {
            for (reason, n) in d {
                if n.as_u64().unwrap() > 0 {
                    from_manifest.insert(
                        (s["type"].as_str().unwrap().to_string(), reason.clone()),
                        n.as_u64().unwrap(),
                    );
                }
            }
        }
    }
    assert_eq!(seen, from_manifest);
    // The quality steps do drop documents on real data, with datatrove's reason names.
    let step_drops = |t: &str| {
        seen.iter()
            .filter(|((s, _), _)| s == t)
            .map(|(_, n)| n)
            .sum::<u64>()
    };
    assert!(
        step_drops("gopher_quality") > 0
            && step_drops("fineweb_quality") + step_drops("c4_quality") > 0,
        "{seen:?}"
    );
    assert!(
        seen.keys()
            .all(|(s, r)| s != "gopher_quality" || r.starts_with("gopher_")),
        "{seen:?}"
    );
    // Kept documents are English (language column written) and carry C4's rewrite: no kept line
    // mentions javascript, and no text has leading or trailing whitespace.
    let data = read_dir_batches(&out.join("data"));
    assert!(rows(&data) > 0);
    for b in &data {
        let t = b.column_by_name("text").unwrap().as_string::<i32>();
        let l = b.column_by_name("language").unwrap().as_string::<i32>();
        for i in 0..b.num_rows() {
            assert_eq!(l.value(i), "en");
            let text = t.value(i);
            assert_eq!(text, text.trim(), "C4 strips the rewritten text");
            assert!(
                !text
                    .lines()
                    .any(|x| x.to_lowercase().contains("javascript"))
            );
        }
    }
}

#[test]
fn regex_removes_lines_and_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.parquet");
    write_texts(
        &input,
        &[
            "keep this\nShare this page\nand this",
            "Share this",
            "untouched text",
        ],
        10,
    );
    let cfg = write_config(
        tmp.path(),
        "regex.toml",
        &format!(
            r#"
[input]
paths = [{}]
id_column = "id"

[[steps]]
type = "regex"
patterns = ["^Share this"]
mode = "remove_lines"

[output]
exclusion = true
"#,
            q(&input)
        ),
    );
    let out = tmp.path().join("snap");
    run_ok(&[
        "run",
        "--config",
        cfg.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    let data = read_dir_batches(&out.join("data"));
    let mut texts = Vec::new();
    for b in &data {
        let t = b.column_by_name("text").unwrap().as_string::<i32>();
        texts.extend((0..b.num_rows()).map(|i| t.value(i).to_string()));
    }
    assert_eq!(texts, ["keep this\nand this", "untouched text"]);
    assert_eq!(manifest(&out)["steps"][0]["dropped"]["regex_empty"], 1);
}

#[test]
fn bad_filter_config_reports_every_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(
        tmp.path(),
        "bad.toml",
        &format!(
            r#"
[input]
paths = [{}]

[[steps]]
type = "gopher_quality"
min_doc_words = 100
max_doc_words = 10
language = "fr"

[[steps]]
type = "regex"
patterns = ["("]
mode = "remove_line"
"#,
            q(&input())
        ),
    );
    let err = run_err(&["validate", "--config", cfg.to_str().unwrap()]);
    for needle in ["min_doc_words", "language", "patterns[0]", "remove_lines"] {
        assert!(err.contains(needle), "missing {needle} in:\n{err}");
    }
}
