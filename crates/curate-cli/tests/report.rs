//! The snapshot's report, dataset card, `curate snapshot diff` and `curate stats`, on real runs:
//! the quick start (filters, dedup, labels, student, score) and a corpus shard.
//!
//! The report is opened in a real browser (Debian's chromium, headless): it must load with no
//! console error, render every chart the run has data for, and take a screenshot. The snapshot
//! is read back with Hugging Face `datasets` (and pyarrow) and must hold the rows the manifest
//! says.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// The report's charts, in page order.
const CHARTS: &[&str] = curate_report::report::CHARTS;

/// Runs the quick start config (with `extra` appended) into `out`.
fn quickstart(out: &Path, extra: &str, threads: &str) {
    let root = curate_testkit::repo_root();
    let mut cfg = std::fs::read_to_string(root.join("configs/quickstart.toml")).unwrap();
    cfg = cfg
        .replace(
            "\"configs/quickstart/sample.parquet\"",
            &q(&root.join("configs/quickstart/sample.parquet")),
        )
        .replace(
            "\"configs/quickstart/reference.jsonl\"",
            &q(&root.join("configs/quickstart/reference.jsonl")),
        );
    cfg.push_str(extra);
    let dir = out.parent().unwrap();
    let name = format!(
        "{}.toml",
        out.file_name().unwrap().to_string_lossy().into_owned()
    );
    let c = write_config(dir, &name, &cfg);
    run_ok(&[
        "run",
        "--config",
        c.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--quiet",
        "--threads",
        threads,
    ]);
}

/// Debian's chromium, or `None` locally when absent (a failure under CI).
fn chromium() -> Option<PathBuf> {
    let p = std::env::var_os("CURATE_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if p.exists() {
        return Some(p);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "chromium missing at {} under CI: .ci/setup.d/40-report.sh must install it",
            p.display()
        );
    }
    eprintln!(
        "skipped: chromium not found at {} (apt-get install chromium)",
        p.display()
    );
    None
}

/// Runs headless chromium on `page` with `args`; returns (stdout, stderr).
fn browse(chrome: &Path, page: &Path, profile: &Path, args: &[&str]) -> (String, String) {
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    let o = Command::new(chrome)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-quic",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(&url)
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .output()
        .expect("spawn chromium");
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "chromium failed on {url}:\n{err}");
    (String::from_utf8_lossy(&o.stdout).into_owned(), err)
}

/// The `<figure data-chart=…>` element of `id` in `dom`.
fn figure<'a>(dom: &'a str, id: &str) -> &'a str {
    let start = dom
        .find(&format!("data-chart=\"{id}\""))
        .unwrap_or_else(|| panic!("chart {id} missing from the page"));
    let end = dom[start..].find("</figure>").expect("closed figure") + start;
    &dom[start..end]
}

/// Charts the page says are empty (`data-empty="true"`), checking every chart's SVG on the way:
/// present, titled, and (when not empty) holding bars or lines.
fn check_charts(dom: &str) -> Vec<String> {
    let mut empty = Vec::new();
    for id in CHARTS {
        let f = figure(dom, id);
        let svg_at = f
            .find("<svg")
            .unwrap_or_else(|| panic!("chart {id} has no <svg>"));
        let svg = &f[svg_at..f.find("</svg>").expect("closed svg")];
        assert!(svg.contains("role=\"img\""), "chart {id}: no role");
        assert!(svg.contains("<title"), "chart {id}: no title");
        if f.contains("data-empty=\"true\"") {
            assert!(
                svg.contains("No data: "),
                "empty chart {id} does not say why"
            );
            empty.push(id.to_string());
        } else {
            let marks =
                svg.matches("class=\"bar s").count() + svg.matches("class=\"series l").count();
            assert!(marks >= 2, "chart {id} has {marks} marks:\n{svg}");
            assert!(f.contains("<table>"), "chart {id}: no data table");
        }
    }
    empty
}

/// Opens the report in chromium: no console errors, every chart rendered, a screenshot taken.
fn render_in_browser(snapshot: &Path) -> Option<Vec<String>> {
    let chrome = chromium()?;
    let page = snapshot.join("report.html");
    let html = std::fs::read_to_string(&page).unwrap();
    // Self-contained: nothing to fetch, nothing to run.
    for bad in [
        "<script",
        "<link",
        "src=\"http",
        "href=\"http",
        "@import",
        "url(http",
    ] {
        assert!(!html.contains(bad), "report.html contains {bad}");
    }
    let tmp = tempfile::tempdir().unwrap();
    let (dom, log) = browse(&chrome, &page, &tmp.path().join("p1"), &["--dump-dom"]);
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .collect();
    assert!(errors.is_empty(), "console errors:\n{}", errors.join("\n"));
    let empty = check_charts(&dom);
    let shot = tmp.path().join("report.png");
    browse(
        &chrome,
        &page,
        &tmp.path().join("p2"),
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=900,4000",
            "--hide-scrollbars",
        ],
    );
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(
        png.len() > 20_000,
        "screenshot of {} bytes is blank",
        png.len()
    );
    Some(empty)
}

#[test]
fn quickstart_report_renders_every_chart_in_a_real_browser() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("qs");
    quickstart(&out, "", "2");
    let m = manifest(&out);
    let listed: Vec<&str> = m["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["path"].as_str().unwrap())
        .collect();
    assert!(listed.contains(&"report.html") && listed.contains(&"README.md"));
    run_ok(&["snapshot", "verify", out.to_str().unwrap()]);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    // The waterfall lists every reason the manifest counts, with its count.
    for s in m["steps"].as_array().unwrap() {
        for (reason, n) in s["dropped"].as_object().unwrap() {
            let label = format!("[{}] {}: {reason}", s["index"], s["type"].as_str().unwrap());
            assert!(html.contains(&label), "waterfall lacks {label}");
            let shown = format!("−{} (", thousands(n.as_u64().unwrap()));
            assert!(html.contains(&shown), "waterfall lacks {shown} for {label}");
        }
    }
    if let Some(empty) = render_in_browser(&out) {
        // The reference annotator pays for nothing; every other chart has data in this run.
        // No buckets, no training-data steps in the quick start.
        assert_eq!(
            empty,
            [
                "labeling-cost",
                "quality-buckets",
                "decontamination",
                "tokens"
            ]
        );
    }
    // 402 labels: 126 sampled documents (all the survivors of the filters and dedup) + 276
    // reference positives. (473 = 197 + 276 while the language step used whatlang; lid.176,
    // FineWeb's model, keeps fewer of the slice's documents.)
    assert!(html.contains("No data: no tokens were paid for: 402 labels"));
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut o = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            o.push(',');
        }
        o.push(c);
    }
    o
}

#[test]
fn corpus_report_without_exclusions_says_what_it_cannot_show() {
    let tmp = tempfile::tempdir().unwrap();
    let shard = curate_testkit::corpus_shard_or_sample();
    let cfg = write_config(
        tmp.path(),
        "c.toml",
        &format!(
            "[input]\npaths = [{}]\nid_column = \"id\"\n\n[[steps]]\ntype = \"length\"\nmin_words = 100\n\n[[steps]]\ntype = \"exact_dedup\"\n\n[output]\nrow_group_size = 4096\n\n[output.card]\nname = \"FineWeb slice, 100+ words\"\nlicense = \"odc-by\"\nlanguage = [\"en\"]\ndescription = \"Documents of at least 100 words, exact duplicates removed.\"\n",
            q(&shard)
        ),
    );
    let out = tmp.path().join("out");
    run_ok(&[
        "run",
        "--config",
        cfg.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("<title>FineWeb slice, 100+ words — curate snapshot report</title>"));
    let card = std::fs::read_to_string(out.join("README.md")).unwrap();
    assert!(card.starts_with("---\npretty_name: \"FineWeb slice, 100+ words\"\nlicense: \"odc-by\"\nlanguage:\n- \"en\"\n"), "{card}");
    assert!(card.contains("Documents of at least 100 words, exact duplicates removed."));
    if let Some(empty) = render_in_browser(&out) {
        // No exclusions: the words waterfall cannot be measured and says so; no labels, no
        // student. Documents, lengths and languages (the corpus has a language column) are drawn;
        // exact dedup found duplicates in the corpus shard, or says it found none.
        let mut expect = vec![
            "waterfall-words",
            "teacher-labels",
            "labeling-cost",
            "student-scores",
            "quality-buckets",
            "reliability",
            "threshold-curve",
            "decontamination",
            "tokens",
        ];
        let m = manifest(&out);
        let dups = m["steps"][1]["dropped"]
            .as_object()
            .map_or(0, |d| d.values().map(|v| v.as_u64().unwrap()).sum::<u64>());
        if dups == 0 {
            expect.insert(1, "dedup-clusters");
        }
        assert_eq!(empty, expect);
    }
    assert!(html.contains("set `exclusion = true` in [output]"));
    assert_counted_profile_is_measured_profile(&out);
}

#[test]
fn report_and_card_are_byte_identical_across_thread_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    quickstart(&a, "", "1");
    quickstart(&b, "", "2");
    for f in ["report.html", "README.md", "manifest.json"] {
        assert!(
            std::fs::read(a.join(f)).unwrap() == std::fs::read(b.join(f)).unwrap(),
            "{f} differs between 1 and 2 threads"
        );
    }
    assert_counted_profile_is_measured_profile(&b);
}

#[test]
fn finalize_measures_the_files_when_records_have_no_counters() {
    // Records written before the counters existed (or by an older version that a resumed run
    // picks up) carry none: finalize then measures the data and exclusion files, to the same
    // bytes. `keep_work` keeps the step directories finalize publishes from.
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("q");
    quickstart(&out, "keep_work = true\n", "2");
    let want = std::fs::read(out.join("report.html")).unwrap();
    let card = std::fs::read(out.join("README.md")).unwrap();
    let digest = manifest(&out)["content_hash"].clone();
    let done = done_dir(&out);
    let mut stripped = 0;
    for stage in std::fs::read_dir(&done).unwrap() {
        let stage = stage.unwrap().path();
        for t in std::fs::read_dir(&stage).unwrap() {
            let t = t.unwrap().path();
            if stage.ends_with("finalize") {
                std::fs::remove_file(&t).unwrap();
                continue;
            }
            let mut r: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&t).unwrap()).unwrap();
            if r.as_object_mut().unwrap().remove("profile").is_some() {
                stripped += 1;
                std::fs::write(&t, serde_json::to_vec_pretty(&r).unwrap()).unwrap();
            }
        }
    }
    assert!(stripped > 0);
    for f in ["manifest.json", "report.html", "README.md", "stats.json"] {
        std::fs::remove_file(out.join(f)).unwrap();
    }
    quickstart(&out, "keep_work = true\n", "2");
    assert!(std::fs::read(out.join("report.html")).unwrap() == want);
    assert!(std::fs::read(out.join("README.md")).unwrap() == card);
    assert_eq!(manifest(&out)["content_hash"], digest);
}

/// The profile finalize drew from the counters of the pass tasks' completion records is the
/// one measured from the snapshot's data and exclusion files.
fn assert_counted_profile_is_measured_profile(dir: &Path) {
    let m: curate_report::Manifest =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let measured = curate_report::gather(dir, &m).unwrap().profile;
    let done = done_dir(dir);
    let mut counts = curate_report::profile::Counts::default();
    for pass in 0.. {
        let stage = done.join(format!("pass-{pass}"));
        if !stage.exists() {
            assert!(pass > 0, "no pass records in {}", done.display());
            break;
        }
        let mut tasks: Vec<PathBuf> = std::fs::read_dir(&stage)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        tasks.sort();
        for t in tasks {
            let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&t).unwrap()).unwrap();
            let c: curate_report::profile::Counts =
                serde_json::from_value(r["profile"].clone()).unwrap();
            counts.merge(&c);
        }
    }
    let counted = counts.into_profile(m.exclusion());
    assert!(counted.after.docs > 0 && counted.after.words > 0);
    assert_eq!(counted, measured);
}

#[test]
fn datasets_and_pyarrow_read_back_the_rows_the_manifest_lists() {
    let Some(py) = curate_testkit::reference_python() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("qs");
    quickstart(
        &out,
        "\n[output.card]\nlicense = \"apache-2.0\"\nlanguage = [\"en\"]\n",
        "2",
    );
    let script = r#"
import glob, json, os, sys
import pyarrow.parquet as pq
import yaml
from datasets import load_dataset
root = sys.argv[1]
m = json.load(open(os.path.join(root, "manifest.json")))
card = open(os.path.join(root, "README.md")).read()
front = yaml.safe_load(card.split("---\n")[1])
files = front["configs"][0]["data_files"][0]["path"]
ds = load_dataset("parquet", data_files=os.path.join(root, files), split="train",
                  cache_dir=os.path.join(root, "..", "hf-cache"))
per_file = {os.path.relpath(f, root): pq.ParquetFile(f).metadata.num_rows
            for f in sorted(glob.glob(os.path.join(root, files)))}
print(json.dumps({"datasets_rows": ds.num_rows, "columns": ds.column_names,
                  "per_file": per_file, "license": front.get("license"),
                  "language": front.get("language"), "ids": ds[:3]["id"]}))
"#;
    let o = Command::new(py)
        .arg("-c")
        .arg(script)
        .arg(&out)
        .env("HF_DATASETS_OFFLINE", "1")
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_HOME", tmp.path().join("hf-home"))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let m = manifest(&out);
    let kept = m["totals"]["kept_rows"].as_u64().unwrap();
    assert!(kept > 0);
    assert_eq!(got["datasets_rows"].as_u64().unwrap(), kept);
    for f in m["outputs"].as_array().unwrap() {
        assert_eq!(got["per_file"][f["path"].as_str().unwrap()], f["rows"]);
    }
    assert_eq!(
        got["per_file"].as_object().unwrap().len(),
        m["outputs"].as_array().unwrap().len()
    );
    assert_eq!(got["license"], "apache-2.0");
    assert_eq!(got["language"], serde_json::json!(["en"]));
    assert!(
        got["columns"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "quality_score")
    );
    // The same rows as the data files, in order.
    let batches = read_dir_batches(&out.join("data"));
    let ids = batches[0]
        .column_by_name("id")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow::array::StringArray>()
        .unwrap();
    for (i, id) in got["ids"].as_array().unwrap().iter().enumerate() {
        assert_eq!(id.as_str().unwrap(), ids.value(i));
    }
}

fn diff_json(a: &Path, b: &Path) -> serde_json::Value {
    let o = run(&[
        "snapshot",
        "diff",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--json",
        "--examples",
        "5",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn data_ids(dir: &Path) -> std::collections::BTreeSet<String> {
    let mut ids = std::collections::BTreeSet::new();
    for b in read_dir_batches(&dir.join("data")) {
        let a = b
            .column_by_name("id")
            .unwrap()
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .unwrap()
            .clone();
        ids.extend(a.iter().map(|s| s.unwrap().to_string()));
    }
    ids
}

#[test]
fn snapshot_diff_of_identical_and_of_differing_snapshots() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, a2, b) = (
        tmp.path().join("a"),
        tmp.path().join("a2"),
        tmp.path().join("b"),
    );
    quickstart(&a, "", "2");
    quickstart(&a2, "", "1");
    // B keeps the top half instead of the top 30 %.
    let root = curate_testkit::repo_root();
    let cfg = std::fs::read_to_string(root.join("configs/quickstart.toml"))
        .unwrap()
        .replace("top_fraction = 0.3", "top_fraction = 0.5");
    assert!(cfg.contains("top_fraction = 0.5"));
    {
        let mut c = cfg
            .replace(
                "\"configs/quickstart/sample.parquet\"",
                &q(&root.join("configs/quickstart/sample.parquet")),
            )
            .replace(
                "\"configs/quickstart/reference.jsonl\"",
                &q(&root.join("configs/quickstart/reference.jsonl")),
            );
        c.push('\n');
        let p = write_config(tmp.path(), "b.toml", &c);
        run_ok(&[
            "run",
            "--config",
            p.to_str().unwrap(),
            "--output",
            b.to_str().unwrap(),
            "--quiet",
        ]);
    }

    let same = diff_json(&a, &a2);
    assert_eq!(same["identical"], true, "{same:#}");
    assert_eq!(same["same_data"], true);
    assert_eq!(same["config"], serde_json::json!([]));
    assert_eq!(same["documents"]["added"], 0);
    assert_eq!(same["documents"]["removed"], 0);
    let human = run(&[
        "snapshot",
        "diff",
        a.to_str().unwrap(),
        a2.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&human.stdout).contains("identical: same config"));

    let d = diff_json(&a, &b);
    assert_eq!(d["identical"], false);
    assert_eq!(d["same_data"], false);
    let paths: Vec<&str> = d["config"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["steps[11].keep.top_fraction"]);
    assert_eq!(d["config"][0]["a"], 0.3);
    assert_eq!(d["config"][0]["b"], 0.5);
    let (ma, mb) = (manifest(&a), manifest(&b));
    let (ka, kb) = (
        ma["totals"]["kept_rows"].as_i64().unwrap(),
        mb["totals"]["kept_rows"].as_i64().unwrap(),
    );
    assert!(kb > ka);
    assert_eq!(d["totals"]["kept_rows"]["delta"], kb - ka);
    // Only the score step's counts move.
    let changed: Vec<i64> = d["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| {
            s["docs_out"]["delta"] != 0
                || s["dropped"]
                    .as_object()
                    .unwrap()
                    .values()
                    .any(|x| x["delta"] != 0)
        })
        .map(|s| s["index"].as_i64().unwrap())
        .collect();
    assert_eq!(changed, [11]);
    assert_eq!(
        d["steps"][11]["dropped"]["below_quality_threshold"]["delta"],
        ka - kb
    );
    // Added and removed documents, checked against the data files' ids.
    let (ia, ib) = (data_ids(&a), data_ids(&b));
    let added: Vec<&String> = ib.difference(&ia).collect();
    let removed: Vec<&String> = ia.difference(&ib).collect();
    assert_eq!(d["documents"]["key"], "id column \"id\"");
    assert_eq!(d["documents"]["added"], added.len() as u64);
    assert_eq!(d["documents"]["removed"], removed.len() as u64);
    assert_eq!(
        d["documents"]["common"],
        ia.intersection(&ib).count() as u64
    );
    for e in d["documents"]["added_examples"].as_array().unwrap() {
        assert!(added.contains(&&e.as_str().unwrap().to_string()));
    }
    assert_eq!(
        d["documents"]["added_examples"].as_array().unwrap().len(),
        added.len().min(5)
    );
    let s = &d["scores"];
    assert_eq!(s["a"]["n"], ka);
    assert_eq!(s["b"]["n"], kb);
    assert_eq!(
        s["hist_b"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .sum::<i64>(),
        kb
    );
    let human = String::from_utf8_lossy(
        &run(&["snapshot", "diff", a.to_str().unwrap(), b.to_str().unwrap()]).stdout,
    )
    .into_owned();
    assert!(
        human.contains("steps[11].keep.top_fraction: 0.3 → 0.5"),
        "{human}"
    );
    assert!(
        human.contains(&format!("kept     {ka} → {kb} (+{})", kb - ka)),
        "{human}"
    );
}

#[test]
fn snapshot_diff_counts_documents_not_distinct_ids() {
    use arrow::array::{ArrayRef, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;
    let tmp = tempfile::tempdir().unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("text", DataType::Utf8, false),
        Field::new("id", DataType::Utf8, false),
    ]));
    // A: 60 documents sharing 6 ids; B: the 6 ids once each
    let snap = |name: &str, n: usize| {
        let texts: Vec<String> = (0..n)
            .map(|i| format!("document number {i} here"))
            .collect();
        let ids: Vec<String> = (0..n).map(|i| format!("id-{}", i % 6)).collect();
        let cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(texts)),
            Arc::new(StringArray::from(ids)),
        ];
        let input = tmp.path().join(format!("{name}.parquet"));
        write_batch(
            &input,
            RecordBatch::try_new(schema.clone(), cols).unwrap(),
            100,
        );
        let cfg = write_config(
            tmp.path(),
            &format!("{name}.toml"),
            &format!(
                "[input]\npaths = [{}]\nid_column = \"id\"\n[[steps]]\ntype = \"length\"\nmin_words = 1\n",
                q(&input)
            ),
        );
        let out = tmp.path().join(name);
        run_config_ok(&cfg, &out);
        out
    };
    let (a, b) = (snap("a", 60), snap("b", 6));
    let d = diff_json(&a, &b);
    let docs = &d["documents"];
    assert_eq!(
        (docs["in_a"].as_u64(), docs["in_b"].as_u64()),
        (Some(60), Some(6)),
        "{d:#}"
    );
    assert_eq!(docs["distinct_a"], 6);
    assert_eq!(
        (docs["common"].as_u64(), docs["removed"].as_u64()),
        (Some(6), Some(54))
    );
    assert_eq!(docs["added"], 0);
    let human = String::from_utf8_lossy(
        &run(&["snapshot", "diff", a.to_str().unwrap(), b.to_str().unwrap()]).stdout,
    )
    .into_owned();
    assert!(
        human.contains("60 in A, 6 in B, 6 in both, +0 added, −54 removed"),
        "{human}"
    );
    assert!(
        human.contains("keys are not unique in A: 60 documents share 6 distinct keys"),
        "{human}"
    );
    assert!(!human.contains("not unique in B"), "{human}");
}

#[test]
fn stats_prints_the_manifest_counters_as_text_and_json() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("qs");
    quickstart(&out, "", "2");
    let m = manifest(&out);
    let o = run(&["stats", out.to_str().unwrap(), "--json"]);
    assert!(o.status.success());
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["totals"], m["totals"]);
    assert_eq!(j["steps"], m["steps"]);
    let text = String::from_utf8_lossy(&run(&["stats", out.to_str().unwrap()]).stdout).into_owned();
    let t = &m["totals"];
    assert!(text.starts_with(&format!(
        "{} documents read, {} kept, {} dropped",
        t["input_rows"], t["kept_rows"], t["dropped_rows"]
    )));
    let clusters = m["steps"][7]["counters"]["minhash_clusters"]
        .as_f64()
        .unwrap();
    assert!(
        text.contains(&format!("minhash_clusters = {clusters}")),
        "{text}"
    );
}

#[test]
fn bad_card_config_reports_every_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(
        tmp.path(),
        "c.toml",
        &format!(
            "[input]\npaths = [{}]\n\n[output.card]\nlicense = \"Apache 2.0\"\nlanguage = [\"english\", \"en\"]\n",
            q(&curate_testkit::quickstart_sample())
        ),
    );
    let err = run_err(&["validate", "--config", cfg.to_str().unwrap()]);
    assert!(err.contains("output.card"), "{err}");
    assert!(err.contains("\"Apache 2.0\" is not a license id"), "{err}");
    assert!(err.contains("\"english\" is not a language code"), "{err}");
    assert!(!err.contains("\"en\" is not"), "{err}");
    let cfg = write_config(
        tmp.path(),
        "d.toml",
        &format!(
            "[input]\npaths = [{}]\n\n[output.card]\nlicence = \"mit\"\n",
            q(&curate_testkit::quickstart_sample())
        ),
    );
    let err = run_err(&["validate", "--config", cfg.to_str().unwrap()]);
    assert!(err.contains("licence"), "{err}");
}
