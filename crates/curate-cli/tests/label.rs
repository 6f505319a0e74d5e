//! End to end through the `curate` binary: sample → label against the fake Anthropic server
//! (loopback), on a slice of the real corpus.

use crate::common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Float32Type, Schema};
use curate_testkit::anthropic::{
    BatchBehavior, FakeAnthropic, FakeConfig, Fault, Faults, fake_score,
};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

const KEY: &str = "sk-ant-e2e-SECRET-fedcba9876543210";
const HAIKU: [f64; 5] = [0.10, 0.50, 0.125, 0.20, 0.01];

fn curate() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_curate"));
    c.env_remove("ANTHROPIC_API_KEY").env("NO_COLOR", "1");
    c
}

/// The first `n` documents of the real corpus (or the bundled slice) with `text`, `id`, `url`
/// and `language`, as a small parquet input of one row group.
fn input(dir: &Path, n: usize) -> PathBuf {
    common::corpus_slice(dir, n, n).0
}

fn write_config(dir: &Path, input: &Path, size: usize, label: &str) -> PathBuf {
    let cfg = format!(
        r#"[input]
paths = ["{input}"]
text_column = "text"
id_column = "id"

[[steps]]
type = "sample"
size = {size}
strata = ["language", "url_domain"]
holdout = 0.2

[[steps]]
type = "label"
{label}

[output]
dir = "{out}"

[run]
seed = 7
"#,
        input = input.display(),
        out = dir.join("out").display(),
    );
    let p = dir.join("pipeline.toml");
    std::fs::write(&p, cfg).unwrap();
    p
}

fn claude_label(server: &FakeAnthropic, store: &Path, mode: &str, extra: &str) -> String {
    format!(
        r#"annotator = "claude"
model = "claude-haiku-5-5"
mode = "{mode}"
base_url = "{url}"
store = "{store}"
initial_retry_delay_s = 0.005
max_retry_delay_s = 0.05
max_retries = 12
poll_interval_s = 0.01
poll_max_interval_s = 0.05
timeout_s = 20
{extra}"#,
        url = server.base_url(),
        store = store.display()
    )
}

fn run(config: &Path, key: Option<&str>) -> Output {
    let mut c = curate();
    c.args(["run", "--quiet", "--config"]).arg(config);
    if let Some(k) = key {
        c.env("ANTHROPIC_API_KEY", k);
    }
    c.output().unwrap()
}

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "curate failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// (sampled rows, labeled rows) of the snapshot, checking each label against the fake's rule.
fn check_snapshot(out: &Path) -> (usize, usize) {
    let (mut sampled, mut labeled) = (0, 0);
    for e in std::fs::read_dir(out.join("data")).unwrap() {
        let p = e.unwrap().path();
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&p).unwrap())
            .unwrap()
            .build()
            .unwrap();
        for rb in reader {
            let rb = rb.unwrap();
            let text = rb
                .column_by_name("text")
                .unwrap()
                .as_string::<i32>()
                .clone();
            let split = rb
                .column_by_name("split")
                .unwrap()
                .as_string::<i32>()
                .clone();
            let score = rb
                .column_by_name("teacher_score")
                .unwrap()
                .as_primitive::<Float32Type>()
                .clone();
            for i in 0..rb.num_rows() {
                if split.is_null(i) {
                    assert!(score.is_null(i));
                    continue;
                }
                sampled += 1;
                if !score.is_null(i) {
                    labeled += 1;
                    // The fake sees the document truncated to max_doc_tokens × bytes_per_token.
                    let t = text.value(i);
                    let mut end = t.len().min(2048 * 3);
                    while !t.is_char_boundary(end) {
                        end -= 1;
                    }
                    assert_eq!(score.value(i), fake_score(&t[..end]) as f32);
                }
            }
        }
    }
    (sampled, labeled)
}

fn label_stats(out: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join("labels/stats.json")).unwrap()).unwrap()
}

fn server_cost(s: &FakeAnthropic) -> f64 {
    let st = s.stats();
    st.online.cost(HAIKU, 1.0) + st.batch.cost(HAIKU, 0.5)
}

fn assert_no_key_anywhere(dirs: &[&Path], outputs: &[&Output]) {
    for o in outputs {
        assert!(
            !String::from_utf8_lossy(&o.stdout).contains(KEY)
                && !String::from_utf8_lossy(&o.stderr).contains(KEY),
            "key in output"
        );
    }
    for d in dirs {
        for f in walk(d) {
            let b = std::fs::read(&f).unwrap();
            assert!(
                !b.windows(KEY.len()).any(|w| w == KEY.as_bytes()),
                "API key leaked into {}",
                f.display()
            );
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p))
        } else {
            out.push(p)
        }
    }
    out
}

#[test]
fn batch_labeling_under_30_percent_faults_is_complete_exact_and_in_budget() {
    let dir = tempfile::tempdir().unwrap();
    let mut fc = FakeConfig::new(KEY);
    fc.faults = Faults {
        seed: 3,
        slow: Duration::from_millis(20),
        ..Faults::all(0.3)
    };
    fc.batch = BatchBehavior {
        polls_until_end: 2,
        errored_rate: 0.1,
        expired_rate: 0.1,
    };
    let server = FakeAnthropic::start(fc);
    let store = dir.path().join("store");
    let input = input(dir.path(), 400);
    let cfg = write_config(
        dir.path(),
        &input,
        120,
        &claude_label(
            &server,
            &store,
            "batch",
            "max_usd = 1.0\nmax_batch_requests = 40",
        ),
    );
    let o = run(&cfg, Some(KEY));
    ok(&o);
    let out = dir.path().join("out");
    assert_eq!(check_snapshot(&out), (120, 120));
    let st = server.stats();
    assert!(
        st.faults.values().sum::<u64>() > 0 && st.rejected.is_empty(),
        "{:?} {:?}",
        st.faults,
        st.rejected
    );
    assert_eq!(st.max_bills_per_document(), 1);
    let s = label_stats(&out);
    let billed = server_cost(&server);
    assert!(
        (s["cost_usd_of_labels"].as_f64().unwrap() - billed).abs() < 1e-12 + 1e-9 * billed,
        "{s}"
    );
    assert!(billed <= 1.0);
    // The labels table the snapshot published.
    let labels = out.join("labels/labels.parquet");
    let rb = ParquetRecordBatchReaderBuilder::try_new(File::open(&labels).unwrap())
        .unwrap()
        .build()
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    for c in [
        "id",
        "split",
        "selection",
        "score",
        "reason",
        "model",
        "input_tokens",
        "output_tokens",
        "cost_usd",
    ] {
        assert!(rb.column_by_name(c).is_some(), "labels.parquet lacks {c}");
    }
    // One random round: a random `sample` step writes no selection column, so the labels
    // record none (rounds: tests/active.rs).
    let sel = rb.column_by_name("selection").unwrap();
    assert_eq!(sel.null_count(), sel.len());
    let manifest = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    assert!(manifest.contains("labels_hash") && manifest.contains("cost_usd_of_labels"));
    assert_no_key_anywhere(&[dir.path()], &[&o]);

    // Same config again: everything comes from the store (or the completed run), nothing is sent.
    let before = server.stats().http_requests;
    let first = dir.path().join("out-first");
    std::fs::rename(&out, &first).unwrap();
    ok(&run(&cfg, Some(KEY)));
    assert_eq!(
        server.stats().http_requests,
        before,
        "a re-run never pays twice"
    );
    assert_eq!(check_snapshot(&out), (120, 120));
    // The snapshot served from the store is identical to the one that bought the labels.
    for f in [
        "labels/labels.parquet",
        "labels/stats.json",
        "data/part-00000.parquet",
    ] {
        assert!(
            std::fs::read(first.join(f)).unwrap() == std::fs::read(out.join(f)).unwrap(),
            "{f} differs between runs"
        );
    }
}

#[test]
fn a_run_killed_mid_batch_resumes_without_paying_twice() {
    let dir = tempfile::tempdir().unwrap();
    let mut fc = FakeConfig::new(KEY);
    fc.batch.polls_until_end = 1_000_000;
    let server = FakeAnthropic::start(fc);
    let store = dir.path().join("store");
    let input = input(dir.path(), 200);
    let cfg = write_config(
        dir.path(),
        &input,
        60,
        &claude_label(&server, &store, "batch", ""),
    );
    let mut child = curate()
        .args(["run", "--quiet", "--config"])
        .arg(&cfg)
        .env("ANTHROPIC_API_KEY", KEY)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the batch id is persisted, then SIGKILL.
    let t0 = Instant::now();
    // (Only a renamed record counts: the temp file of an atomic write is not yet persisted.)
    let persisted = |d: &Path| {
        std::fs::read_dir(d)
            .map(|d| {
                d.flatten()
                    .filter(|e| {
                        let n = e.file_name().to_string_lossy().into_owned();
                        n.ends_with(".json") && !n.starts_with('.')
                    })
                    .count()
            })
            .unwrap_or(0)
    };
    while persisted(&store.join("pending")) == 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "no batch was submitted"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(server.stats().batches_created, 1);
    server.configure(|c| c.batch.polls_until_end = 0);
    let o = run(&cfg, Some(KEY));
    ok(&o);
    assert_eq!(check_snapshot(&dir.path().join("out")), (60, 60));
    let st = server.stats();
    assert_eq!(
        st.batches_created, 1,
        "the killed run's batch was resumed, not bought again"
    );
    assert_eq!(st.max_bills_per_document(), 1);
    assert_no_key_anywhere(&[dir.path()], &[&o]);
}

#[test]
fn an_interrupted_online_run_resumes_and_keeps_what_it_paid_for() {
    let dir = tempfile::tempdir().unwrap();
    let mut fc = FakeConfig::new(KEY);
    fc.faults = Faults {
        rate: 1.0,
        kinds: vec![Fault::Slow],
        slow: Duration::from_millis(25),
        ..Faults::default()
    };
    let server = FakeAnthropic::start(fc);
    let store = dir.path().join("store");
    let input = input(dir.path(), 200);
    let cfg = write_config(
        dir.path(),
        &input,
        60,
        &claude_label(&server, &store, "online", "concurrency = 1"),
    );
    let mut child = curate()
        .args(["run", "--quiet", "--config"])
        .arg(&cfg)
        .env("ANTHROPIC_API_KEY", KEY)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while server.stats().messages_ok < 15 {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "labeling did not start"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let bought_before = server.stats().messages_ok;
    assert!(bought_before < 60, "killed mid-run");
    server.configure(|c| c.faults.rate = 0.0);
    ok(&run(&cfg, Some(KEY)));
    assert_eq!(check_snapshot(&dir.path().join("out")), (60, 60));
    let st = server.stats();
    // Labels journaled before the kill are never bought again. What a SIGKILL can lose is what
    // was on the wire: with concurrency = 1, the request in flight and at most one answer that
    // had arrived but was not yet fsynced to the journal.
    let twice = st.billed_per_document.values().filter(|&&n| n > 1).count();
    assert!(
        twice <= 2 && st.max_bills_per_document() <= 2,
        "{twice} documents paid twice"
    );
    let unique = st.billed_per_document.len() as u64;
    assert!(st.messages_ok <= unique + 2);
}

#[test]
fn bad_rubric_schema_or_missing_key_fail_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let server = FakeAnthropic::start(FakeConfig::new(KEY));
    let store = dir.path().join("store");
    let input = input(dir.path(), 50);

    let schema = dir.path().join("schema.json");
    std::fs::write(&schema, r#"{"type": "object", "properties": {"score": {"type": "string"}, "reason": {"type": "string"}}, "required": ["score", "reason"], "additionalProperties": false}"#).unwrap();
    let cfg = write_config(
        dir.path(),
        &input,
        20,
        &claude_label(
            &server,
            &store,
            "online",
            &format!("schema = \"{}\"", schema.display()),
        ),
    );
    let o = run(&cfg, Some(KEY));
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("schema.json") && err.contains("\"integer\" or \"number\""),
        "{err}"
    );

    let rubric = dir.path().join("rubric.md");
    std::fs::write(&rubric, "   ").unwrap();
    let cfg = write_config(
        dir.path(),
        &input,
        20,
        &claude_label(
            &server,
            &store,
            "online",
            &format!("rubric = \"{}\"", rubric.display()),
        ),
    );
    let o = run(&cfg, Some(KEY));
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("rubric.md") && err.contains("empty"), "{err}");

    let cfg = write_config(
        dir.path(),
        &input,
        20,
        &claude_label(&server, &store, "online", ""),
    );
    let o = run(&cfg, None);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("ANTHROPIC_API_KEY is not set"), "{err}");

    // A wrong key: one clear fatal error, and the key it was given appears nowhere.
    let o = run(&cfg, Some("sk-ant-wrong-key-000"));
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("401")
            && err.contains("authentication_error")
            && !err.contains("sk-ant-wrong-key-000"),
        "{err}"
    );
    assert_eq!(server.stats().messages_ok, 0);
    let before_401 = server.stats().rejected.values().sum::<u64>();
    assert!(
        (1..=16).contains(&before_401),
        "401s are not retried: {before_401}"
    );
    assert_eq!(
        server.stats().http_requests,
        before_401,
        "nothing but the rejected calls was sent"
    );
}

#[test]
fn reference_teacher_runs_offline_on_the_quickstart_reference() {
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path(), 300);
    let reference = curate_testkit::repo_root().join("configs/quickstart/reference.jsonl");
    let cfg = write_config(
        dir.path(),
        &input,
        100,
        &format!(
            "annotator = \"reference\"\nreference = \"{}\"",
            reference.display()
        ),
    );
    let o = run(&cfg, None);
    ok(&o);
    let s = label_stats(&dir.path().join("out"));
    assert_eq!(s["negatives"].as_u64(), Some(100));
    assert!(s["positives"].as_u64().unwrap() > 200);
}

#[test]
fn dry_run_prices_the_label_step_without_a_key_or_a_request() {
    let dir = tempfile::tempdir().unwrap();
    let server = FakeAnthropic::start(FakeConfig::new(KEY));
    let store = dir.path().join("store");
    let input = input(dir.path(), 120);
    let cfg = write_config(
        dir.path(),
        &input,
        50,
        &claude_label(&server, &store, "batch", "max_usd = 0.5"),
    );
    let o = curate()
        .args(["label", "--dry-run", "--json", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    ok(&o);
    let e: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (e["documents"].as_u64(), e["to_label"].as_u64()),
        (Some(50), Some(50))
    );
    assert!(e["expected_usd"].as_f64().unwrap() > 0.0);
    assert!(e["worst_case_usd"].as_f64().unwrap() >= e["expected_usd"].as_f64().unwrap());
    assert_eq!(server.stats().http_requests, 0, "a dry run sends nothing");

    // After a real run the same documents are in the store and cost nothing.
    ok(&run(&cfg, Some(KEY)));
    let billed = server_cost(&server);
    let o = curate()
        .args(["label", "--dry-run", "--json", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let again: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // The draw ignores strata, so it overlaps the stratified sample mostly, not wholly.
    assert!(again["to_label"].as_u64().unwrap() < 10, "{again}");
    assert_eq!(
        again["in_store"].as_u64().unwrap() + again["to_label"].as_u64().unwrap(),
        50
    );
    let expected = e["expected_usd"].as_f64().unwrap();
    assert!(
        expected > billed * 0.3 && expected < billed * 3.0,
        "estimate {expected} vs billed {billed}"
    );
}

#[test]
fn dry_run_calibrates_with_count_tokens_and_buys_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = FakeAnthropic::start(FakeConfig::new(KEY));
    let store = dir.path().join("store");
    let input = input(dir.path(), 80);
    let cfg = write_config(
        dir.path(),
        &input,
        30,
        &claude_label(&server, &store, "online", ""),
    );
    let o = curate()
        .args([
            "label",
            "--dry-run",
            "--json",
            "--calibrate",
            "5",
            "--config",
        ])
        .arg(&cfg)
        .env("ANTHROPIC_API_KEY", KEY)
        .output()
        .unwrap();
    ok(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bytes per token"), "{err}");
    let st = server.stats();
    assert_eq!((st.count_tokens, st.messages_ok), (6, 0));
    assert_no_key_anywhere(&[dir.path()], &[&o]);
    // Without a key, calibration refuses clearly.
    let o = curate()
        .args(["label", "--dry-run", "--calibrate", "5", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        !o.status.success()
            && String::from_utf8_lossy(&o.stderr).contains("needs ANTHROPIC_API_KEY")
    );
}

#[test]
fn validate_reports_every_label_and_sample_problem_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path(), 10);
    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"[input]
paths = ["{}"]

[[steps]]
type = "label"
annotator = "claude"
mode = "bach"
effort = "lowest"
max_usd = -1.0
model = "claude-unknown-9"
path = "labels.jsonl"

[[steps]]
type = "sample"
size = 0
holdout = 2.0
allocation = "equl"
"#,
            input.display()
        ),
    )
    .unwrap();
    let o = curate()
        .args(["validate", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    for want in [
        "needs a `sample` step before it",
        "`mode`",
        "did you mean \"batch\"",
        "`effort`",
        "`max_usd`",
        "no built-in prices",
        "`path`: only applies to annotator = \"file\"",
        "`size`",
        "`holdout`",
        "did you mean \"equal\"",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
}

#[test]
fn file_teacher_imports_parquet_labels_by_text() {
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path(), 60);
    // Label every input text with its length bucket, in a parquet file keyed by text.
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&input).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let mut texts = Vec::new();
    for rb in reader {
        let rb = rb.unwrap();
        let t = rb
            .column_by_name("text")
            .unwrap()
            .as_string::<i32>()
            .clone();
        texts.extend((0..t.len()).map(|i| t.value(i).to_string()));
    }
    let score = |t: &str| (t.len() % 6) as f64;
    let schema = Arc::new(Schema::new(vec![
        Field::new("text", DataType::Utf8, false),
        Field::new("score", DataType::Float64, false),
    ]));
    let rb = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from_iter_values(texts.iter())) as ArrayRef,
            Arc::new(arrow::array::Float64Array::from_iter_values(
                texts.iter().map(|t| score(t)),
            )) as ArrayRef,
        ],
    )
    .unwrap();
    let labels = dir.path().join("gold.parquet");
    let mut w = ArrowWriter::try_new(File::create(&labels).unwrap(), schema, None).unwrap();
    w.write(&rb).unwrap();
    w.close().unwrap();
    let cfg = write_config(
        dir.path(),
        &input,
        25,
        &format!(
            "annotator = \"file\"\npath = \"{}\"\nmatch_on = \"text\"",
            labels.display()
        ),
    );
    ok(&run(&cfg, None));
    let mut n = 0;
    for e in std::fs::read_dir(dir.path().join("out/data")).unwrap() {
        let reader =
            ParquetRecordBatchReaderBuilder::try_new(File::open(e.unwrap().path()).unwrap())
                .unwrap()
                .build()
                .unwrap();
        for rb in reader {
            let rb = rb.unwrap();
            let t = rb
                .column_by_name("text")
                .unwrap()
                .as_string::<i32>()
                .clone();
            let s = rb
                .column_by_name("teacher_score")
                .unwrap()
                .as_primitive::<Float32Type>()
                .clone();
            for i in 0..rb.num_rows() {
                if !s.is_null(i) {
                    assert_eq!(s.value(i) as f64, score(t.value(i)));
                    n += 1;
                }
            }
        }
    }
    assert_eq!(n, 25);
    assert_eq!(
        label_stats(&dir.path().join("out"))["matched"].as_u64(),
        Some(25)
    );
}

#[test]
fn a_selection_column_that_is_not_strings_is_refused_at_validate() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.parquet");
    let schema = Arc::new(Schema::new(vec![
        Field::new("text", DataType::Utf8, false),
        Field::new("id", DataType::Utf8, false),
        Field::new("pick", DataType::Int64, false),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec!["one two three", "four five six"])),
        Arc::new(StringArray::from(vec!["a", "b"])),
        Arc::new(arrow::array::Int64Array::from(vec![1, 2])),
    ];
    common::write_batch(&input, RecordBatch::try_new(schema, cols).unwrap(), 2);
    let cfg = common::write_config(
        dir.path(),
        "c.toml",
        &format!(
            "[input]\npaths = [{}]\nid_column = \"id\"\n\n[[steps]]\ntype = \"sample\"\nsize = 1\n\n[[steps]]\ntype = \"label\"\nannotator = \"reference\"\nreference = {}\nselection_column = \"pick\"\n",
            common::q(&input),
            common::q(&input)
        ),
    );
    let err = common::run_err(&["validate", "--config", cfg.to_str().unwrap()]);
    assert!(
        err.contains("steps[1] (label): `selection_column`: needs a string column but `pick` (from the input) is Int64"),
        "{err}"
    );
}
