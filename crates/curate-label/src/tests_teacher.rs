//! The teacher end to end at library level: sample → label driven through the core traits, as
//! the executor does, against the fake Anthropic server.

use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray};
use arrow::datatypes::Float32Type;
use curate_core::{DocBatch, StepSpec};
use curate_testkit::anthropic::{BatchBehavior, FakeAnthropic, FakeConfig, Faults, fake_score};

use crate::client::ApiKey;
use crate::label::LabelConfig;
use crate::sample::SampleConfig;
use crate::testutil::{batch_of, env, run_barrier_in};

const KEY: &str = "sk-ant-fake-SECRET-0123456789abcdef";
const HAIKU: [f64; 5] = [0.10, 0.50, 0.125, 0.20, 0.01];

fn corpus(n: usize) -> Vec<(String, String, String)> {
    let words = curate_testkit::anthropic::TEACHING_WORDS;
    (0..n)
        .map(|i| {
            let mut t = format!("Document number {i}. ");
            for (b, w) in words.iter().enumerate() {
                if (i >> b) & 1 == 1 && b < 7 {
                    t.push_str(&format!("Here we {w} something. "));
                }
            }
            t.push_str(&"Filler words about nothing in particular. ".repeat(5 + i % 20));
            // A few exact duplicates (same text under another id) must be paid once.
            let text = if i % 10 == 9 {
                format!("Duplicate text {}", "same words ".repeat(30))
            } else {
                t
            };
            (
                format!("id-{i}"),
                text,
                if i % 3 == 0 { "de".into() } else { "en".into() },
            )
        })
        .collect()
}

struct Run {
    dir: tempfile::TempDir,
}

impl Run {
    fn new() -> Run {
        Run {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }
    fn sample_dir(&self) -> PathBuf {
        self.dir.path().join("sample")
    }
    fn label_dir(&self) -> PathBuf {
        self.dir.path().join("label")
    }
}

fn claude_cfg(server: &FakeAnthropic, run: &Run, mode: &str) -> LabelConfig {
    let mut c = LabelConfig::new("claude");
    c.mode = mode.into();
    c.base_url = server.base_url();
    c.store = Some(run.store().display().to_string());
    c.initial_retry_delay_s = 0.005;
    c.max_retry_delay_s = 0.05;
    c.max_retries = 12;
    c.poll_interval_s = 0.005;
    c.poll_max_interval_s = 0.02;
    c.timeout_s = 10.0;
    c.concurrency = 4;
    c
}

/// Runs sample (size docs) then label over `docs` split into `tasks` tasks.
fn sample_then_label(
    cfg: &LabelConfig,
    docs: &[(String, String, String)],
    size: usize,
    run: &Run,
    key: Option<&str>,
) -> Result<Vec<DocBatch>, String> {
    let tasks = 3;
    let chunk = docs.len().div_ceil(tasks);
    let batches: Vec<DocBatch> = docs
        .chunks(chunk)
        .enumerate()
        .map(|(t, c)| batch_of(c, (t * chunk) as u64))
        .collect();
    let sample = SampleConfig {
        size,
        strata: vec!["language".into()],
        allocation: "proportional".into(),
        holdout: 0.2,
        seed: Some(3),
        length_buckets: vec![500, 2000],
        column: "split".into(),
        strategy: "random".into(),
        selection_column: "selection".into(),
        per_bucket: 1,
    };
    std::fs::create_dir_all(run.sample_dir()).unwrap();
    std::fs::create_dir_all(run.label_dir()).unwrap();
    let s = sample.build(&env(&[])).unwrap();
    let sampled = run_barrier_in(s.as_ref(), batches, &run.sample_dir()).unwrap();
    let step = cfg
        .build_with_key(&env(&["sample"]), key.map(ApiKey::new))
        .map_err(|e| e.to_string())?;
    run_barrier_in(step.as_ref(), sampled, &run.label_dir()).map_err(|e| e.to_string())
}

/// The published stats, plus this run's figures (from the work dir) under `this_run`.
fn stats(run: &Run) -> serde_json::Value {
    let mut s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.label_dir().join("stats.json")).unwrap())
            .unwrap();
    if let Ok(b) = std::fs::read(run.label_dir().join(crate::label::RUN_FILE)) {
        s["this_run"] = serde_json::from_slice(&b).unwrap();
    }
    s
}

/// (sampled rows, labeled rows); every label equals the fake teacher's rule.
fn check_labels(out: &[DocBatch]) -> (usize, usize) {
    let (mut sampled, mut labeled) = (0, 0);
    for b in out {
        let split = b.column("split").unwrap().as_string::<i32>();
        let score = b
            .column("teacher_score")
            .unwrap()
            .as_primitive::<Float32Type>();
        for i in 0..b.len() {
            if split.is_null(i) {
                assert!(score.is_null(i), "unsampled rows stay unlabeled");
                continue;
            }
            sampled += 1;
            if !score.is_null(i) {
                labeled += 1;
                assert_eq!(
                    score.value(i),
                    fake_score(b.text(i)) as f32,
                    "label of {}",
                    b.id_string(i)
                );
            }
        }
    }
    (sampled, labeled)
}

fn server_cost(server: &FakeAnthropic) -> f64 {
    let s = server.stats();
    s.online.cost(HAIKU, 1.0) + s.batch.cost(HAIKU, 0.5)
}

fn assert_close(a: f64, b: f64) {
    assert!((a - b).abs() <= 1e-12 + 1e-9 * b.abs(), "{a} != {b}");
}

/// No file under `dir` contains the key.
fn assert_no_key(dir: &Path) {
    for e in walk(dir) {
        let bytes = std::fs::read(&e).unwrap();
        assert!(
            !bytes.windows(KEY.len()).any(|w| w == KEY.as_bytes()),
            "API key leaked into {}",
            e.display()
        );
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p))
            } else {
                out.push(p)
            }
        }
    }
    out
}

#[test]
fn online_under_30_percent_faults_labels_everything_with_exact_cost() {
    let mut fc = FakeConfig::new(KEY);
    fc.faults = Faults {
        seed: 11,
        ..Faults::all(0.3)
    };
    fc.faults.slow = std::time::Duration::from_millis(30);
    let server = FakeAnthropic::start(fc);
    let run = Run::new();
    let docs = corpus(120);
    let cfg = claude_cfg(&server, &run, "online");
    let out = sample_then_label(&cfg, &docs, 60, &run, Some(KEY)).unwrap();
    let (sampled, labeled) = check_labels(&out);
    assert_eq!((sampled, labeled), (60, 60));
    let st = server.stats();
    assert!(
        st.faults.values().sum::<u64>() >= 15,
        "faults were injected: {:?}",
        st.faults
    );
    assert!(
        st.rejected.is_empty(),
        "every request was well-formed: {:?}",
        st.rejected
    );
    assert_eq!(st.max_bills_per_document(), 1, "no document billed twice");
    assert!(
        st.online.cache_read > 0 && st.online.cache_write_5m > 0,
        "rubric cached: {:?}",
        st.online
    );
    let s = stats(&run);
    assert_close(
        s["this_run"]["spent_usd"].as_f64().unwrap(),
        server_cost(&server),
    );
    assert_close(
        s["cost_usd_of_labels"].as_f64().unwrap(),
        server_cost(&server),
    );
    assert_no_key(run.dir.path());

    // A second snapshot over the same documents buys nothing.
    let before = server.stats().http_requests;
    let run2 = Run::new();
    let mut cfg2 = cfg.clone();
    cfg2.store = Some(run.store().display().to_string());
    let out2 = sample_then_label(&cfg2, &docs, 60, &run2, Some(KEY)).unwrap();
    assert_eq!(check_labels(&out2), (60, 60));
    assert_eq!(
        server.stats().http_requests,
        before,
        "labels came from the store"
    );
    assert_eq!(stats(&run2)["this_run"]["spent_usd"].as_f64().unwrap(), 0.0);
}

#[test]
fn batch_under_faults_with_errored_and_expired_entries() {
    let mut fc = FakeConfig::new(KEY);
    fc.faults = Faults {
        seed: 5,
        ..Faults::all(0.3)
    };
    fc.faults.slow = std::time::Duration::from_millis(20);
    fc.batch = BatchBehavior {
        polls_until_end: 2,
        errored_rate: 0.15,
        expired_rate: 0.1,
    };
    let server = FakeAnthropic::start(fc);
    let run = Run::new();
    let docs = corpus(150);
    let mut cfg = claude_cfg(&server, &run, "batch");
    cfg.max_batch_requests = 25;
    let out = sample_then_label(&cfg, &docs, 80, &run, Some(KEY)).unwrap();
    assert_eq!(check_labels(&out), (80, 80));
    let st = server.stats();
    assert!(
        st.batches_created >= 4,
        "split into batches and re-submitted: {}",
        st.batches_created
    );
    assert!(st.rejected.is_empty(), "{:?}", st.rejected);
    assert_eq!(st.max_bills_per_document(), 1);
    assert!(
        st.batch.cache_write_1h > 0,
        "batches use the 1-hour cache TTL"
    );
    assert_eq!(st.online.messages, 0);
    let s = stats(&run);
    assert_close(
        s["this_run"]["spent_usd"].as_f64().unwrap(),
        server_cost(&server),
    );
    assert!(server.open_batches().is_empty());
    assert!(
        std::fs::read_dir(run.store().join("pending"))
            .unwrap()
            .next()
            .is_none(),
        "no pending batch left"
    );
    assert_no_key(run.dir.path());
}

#[test]
fn budget_is_never_exceeded_online_and_batch() {
    for mode in ["online", "batch"] {
        let server = FakeAnthropic::start(FakeConfig::new(KEY));
        let run = Run::new();
        let docs = corpus(100);
        let mut cfg = claude_cfg(&server, &run, mode);
        cfg.max_usd = Some(0.0015);
        cfg.max_batch_requests = 10;
        let out = sample_then_label(&cfg, &docs, 100, &run, Some(KEY)).unwrap();
        let (sampled, labeled) = check_labels(&out);
        let spent = server_cost(&server);
        assert!(spent <= 0.0015, "{mode}: spent {spent} over the budget");
        assert!(
            labeled > 0 && labeled < sampled,
            "{mode}: the budget cut the run ({labeled}/{sampled})"
        );
        let s = stats(&run);
        assert_close(s["this_run"]["spent_usd"].as_f64().unwrap(), spent);
        assert!(s["this_run"]["budget_skipped"].as_u64().unwrap() > 0);
        assert!(s["status"]["budget"].as_u64().unwrap() > 0, "{s}");
    }
}

/// Sonnet 4.6's prices, in the order [`Billed::cost`](curate_testkit::anthropic::Billed::cost)
/// takes them.
const SONNET_4_6: [f64; 5] = [3.0, 15.0, 3.75, 6.0, 0.3];

#[test]
fn a_tight_budget_buys_labels_on_a_sonnet_class_model_and_never_overspends() {
    // $0.01 is less than one request's byte bound on Sonnet (the rubric alone, counted as one
    // token per byte at the cache-write price), so every label here is bought on the API's
    // count; with and without injected faults, online and in batches
    for (mode, faults) in [
        ("online", 0.0),
        ("batch", 0.0),
        ("online", 0.3),
        ("batch", 0.3),
    ] {
        let mut fc = FakeConfig::new(KEY);
        fc.faults = Faults {
            seed: 7,
            ..Faults::all(faults)
        };
        fc.faults.slow = std::time::Duration::from_millis(10);
        let server = FakeAnthropic::start(fc);
        let run = Run::new();
        let docs = corpus(40);
        let mut cfg = claude_cfg(&server, &run, mode);
        cfg.model = "claude-sonnet-4-6".into();
        cfg.max_usd = Some(0.01);
        cfg.max_batch_requests = 10;
        let out = sample_then_label(&cfg, &docs, 40, &run, Some(KEY)).unwrap();
        let (sampled, labeled) = check_labels(&out);
        let st = server.stats();
        let spent = st.online.cost(SONNET_4_6, 1.0) + st.batch.cost(SONNET_4_6, 0.5);
        assert!(
            spent <= 0.01,
            "{mode} {faults}: spent {spent} over the budget"
        );
        assert!(
            labeled > 0 && labeled < sampled,
            "{mode} {faults}: a tight budget buys some labels ({labeled}/{sampled})"
        );
        assert!(st.count_tokens > 0, "{mode}: the count decided");
        assert_eq!(st.max_bills_per_document(), 1, "no document billed twice");
        let s = stats(&run);
        assert_close(s["this_run"]["spent_usd"].as_f64().unwrap(), spent);
        assert!(s["this_run"]["budget_skipped"].as_u64().unwrap() > 0);
    }
}

#[test]
fn input_token_budget_is_never_exceeded() {
    let server = FakeAnthropic::start(FakeConfig::new(KEY));
    let run = Run::new();
    let mut cfg = claude_cfg(&server, &run, "online");
    cfg.max_input_tokens = Some(20_000);
    let out = sample_then_label(&cfg, &corpus(60), 60, &run, Some(KEY)).unwrap();
    let (_, labeled) = check_labels(&out);
    let st = server.stats();
    let total = st.online.input + st.online.cache_write_5m + st.online.cache_read;
    assert!(
        total <= 20_000 && labeled > 0,
        "input tokens {total}, labeled {labeled}"
    );
}

#[test]
fn killed_mid_batch_resumes_without_paying_twice() {
    let mut fc = FakeConfig::new(KEY);
    fc.batch.polls_until_end = 1_000_000;
    let server = FakeAnthropic::start(fc);
    let run = Run::new();
    let docs = corpus(60);
    let mut cfg = claude_cfg(&server, &run, "batch");
    cfg.max_batch_wait_s = 0.2;
    let err = sample_then_label(&cfg, &docs, 40, &run, Some(KEY)).unwrap_err();
    assert!(
        err.contains("still in progress") && err.contains("resumes"),
        "{err}"
    );
    assert_eq!(server.stats().batches_created, 1);
    assert_eq!(server.stats().batch.messages, 0);
    // The batch finishes while nobody watches; the re-run attaches to it.
    server.configure(|c| c.batch.polls_until_end = 0);
    let out = sample_then_label(&cfg, &docs, 40, &run, Some(KEY)).unwrap();
    assert_eq!(check_labels(&out), (40, 40));
    let st = server.stats();
    assert_eq!(
        st.batches_created, 1,
        "the interrupted batch was resumed, not bought again"
    );
    assert_eq!(st.max_bills_per_document(), 1);
    let s = stats(&run);
    assert_eq!(s["this_run"]["batches_resumed"].as_u64(), Some(1));
    assert_close(
        s["cost_usd_of_labels"].as_f64().unwrap(),
        server_cost(&server),
    );
}

#[test]
fn interrupted_online_run_resumes_without_paying_twice() {
    let mut fc = FakeConfig::new(KEY);
    fc.fail_after_messages = Some(15);
    let server = FakeAnthropic::start(fc);
    let run = Run::new();
    let docs = corpus(60);
    let mut cfg = claude_cfg(&server, &run, "online");
    cfg.max_retries = 2;
    let err = sample_then_label(&cfg, &docs, 40, &run, Some(KEY)).unwrap_err();
    assert!(err.contains("gave up after 3 attempts"), "{err}");
    assert_eq!(server.stats().messages_ok, 15);
    server.configure(|c| c.fail_after_messages = None);
    let out = sample_then_label(&cfg, &docs, 40, &run, Some(KEY)).unwrap();
    assert_eq!(check_labels(&out), (40, 40));
    let st = server.stats();
    assert_eq!(
        st.max_bills_per_document(),
        1,
        "labels bought before the outage were kept"
    );
    let unique = stats(&run)["status"]["ok"].as_u64().unwrap();
    assert!(
        st.messages_ok <= unique && st.messages_ok >= 36,
        "{} messages for {unique} rows",
        st.messages_ok
    );
}

#[test]
fn fatal_errors_stop_at_once_with_a_clear_message() {
    // A wrong key: 401, not retried, and the message never echoes the key.
    let server = FakeAnthropic::start(FakeConfig::new("sk-ant-the-right-one"));
    let run = Run::new();
    let cfg = claude_cfg(&server, &run, "online");
    let err = sample_then_label(&cfg, &corpus(30), 20, &run, Some(KEY)).unwrap_err();
    assert!(
        err.contains("401")
            && err.contains("authentication_error")
            && err.contains("ANTHROPIC_API_KEY"),
        "{err}"
    );
    assert!(!err.contains(KEY));
    assert!(
        server.stats().http_requests <= 8,
        "no retries of a 401: {}",
        server.stats().http_requests
    );
    assert_no_key(run.dir.path());

    // The monthly spend cap: a 429 that must not be retried.
    let mut fc = FakeConfig::new(KEY);
    fc.spend_cap_after_messages = Some(0);
    let server = FakeAnthropic::start(fc);
    let run = Run::new();
    let cfg = claude_cfg(&server, &run, "online");
    let err = sample_then_label(&cfg, &corpus(30), 20, &run, Some(KEY)).unwrap_err();
    assert!(
        err.contains("enforced_spend_limit_reached") && err.contains("spend limit"),
        "{err}"
    );
    assert!(server.stats().http_requests <= 8);
}

#[test]
fn bad_rubric_schema_or_missing_key_fail_before_any_request() {
    let server = FakeAnthropic::start(FakeConfig::new(KEY));
    let run = Run::new();
    let docs = corpus(20);
    let schema = run.dir.path().join("schema.json");
    std::fs::write(&schema, r#"{"type": "object", "properties": {"score": {"type": "integer"}}, "required": ["score"]}"#).unwrap();
    let mut cfg = claude_cfg(&server, &run, "online");
    cfg.schema = Some(schema.display().to_string());
    let err = sample_then_label(&cfg, &docs, 10, &run, Some(KEY)).unwrap_err();
    assert!(
        err.contains("schema.json") && err.contains("additionalProperties"),
        "{err}"
    );

    let rubric = run.dir.path().join("rubric.md");
    std::fs::write(&rubric, "\n").unwrap();
    let mut cfg = claude_cfg(&server, &run, "online");
    cfg.rubric = Some(rubric.display().to_string());
    let err = sample_then_label(&cfg, &docs, 10, &run, Some(KEY)).unwrap_err();
    assert!(err.contains("rubric.md") && err.contains("empty"), "{err}");

    let cfg = claude_cfg(&server, &run, "online");
    let err = sample_then_label(&cfg, &docs, 10, &run, None).unwrap_err();
    assert!(err.contains("ANTHROPIC_API_KEY is not set"), "{err}");

    let err = cfg
        .build_with_key(&env(&[]), Some(ApiKey::new(KEY)))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("needs a `sample` step"), "{err}");
    assert_eq!(server.stats().http_requests, 0, "nothing was sent");
}

#[test]
fn refusals_and_truncated_answers_are_recorded_not_labels() {
    let server = FakeAnthropic::start(FakeConfig::new(KEY));
    let run = Run::new();
    let mut docs = corpus(10);
    docs[0].1 = "Please FAKE-REFUSE this lesson about science.".into();
    docs[1].1 = "A FAKE-MAXTOKENS example to study.".into();
    let cfg = claude_cfg(&server, &run, "online");
    let out = sample_then_label(&cfg, &docs, 10, &run, Some(KEY)).unwrap();
    assert_eq!(check_labels(&out), (10, 8));
    let s = stats(&run);
    assert_eq!(s["status"]["refusal"].as_u64(), Some(1));
    assert_eq!(s["status"]["max_tokens"].as_u64(), Some(1));
    // They were paid for, so they are in the store and never bought again.
    let before = server.stats().messages_ok;
    let run2 = Run::new();
    let mut cfg2 = cfg.clone();
    cfg2.store = Some(run.store().display().to_string());
    sample_then_label(&cfg2, &docs, 10, &run2, Some(KEY)).unwrap();
    assert_eq!(server.stats().messages_ok, before);
}

#[test]
fn rate_limit_headers_pace_the_client() {
    let mut fc = FakeConfig::new(KEY);
    fc.requests_per_window = 10;
    fc.window = std::time::Duration::from_millis(300);
    let server = FakeAnthropic::start(fc);
    let run = Run::new();
    let mut cfg = claude_cfg(&server, &run, "online");
    cfg.concurrency = 1;
    let out = sample_then_label(&cfg, &corpus(40), 25, &run, Some(KEY)).unwrap();
    assert_eq!(check_labels(&out).1, 25);
    let s = stats(&run);
    assert!(
        s["this_run"]["limiter_wait_s"].as_f64().unwrap() > 0.0,
        "the limiter waited for the window: {s}"
    );
    // Sequential requests paced by the headers never hit the window's 429.
    assert_eq!(
        server.stats().faults.get("window_429"),
        None,
        "{:?}",
        server.stats().faults
    );
}

#[test]
fn file_annotator_imports_by_id_and_text() {
    let run = Run::new();
    let docs = corpus(30);
    let jsonl = run.dir.path().join("labels.jsonl");
    let mut s = String::new();
    for (i, (id, _, _)) in docs.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
        s.push_str(
            &serde_json::json!({"id": id, "score": (i % 6) as f64, "reason": "imported"})
                .to_string(),
        );
        s.push('\n');
    }
    std::fs::write(&jsonl, s).unwrap();
    let mut cfg = LabelConfig::new("file");
    cfg.path = Some(jsonl.display().to_string());
    let out = sample_then_label(&cfg, &docs, 30, &run, None).unwrap();
    for b in &out {
        let sc = b
            .column("teacher_score")
            .unwrap()
            .as_primitive::<Float32Type>();
        for i in 0..b.len() {
            let n: usize = b.id_string(i).trim_start_matches("id-").parse().unwrap();
            if n.is_multiple_of(2) {
                assert_eq!(sc.value(i), (n % 6) as f32)
            } else {
                assert!(sc.is_null(i))
            }
        }
    }
    let st = stats(&run);
    assert_eq!(st["matched"].as_u64(), Some(15));
}

#[test]
fn file_annotator_refuses_conflicting_labels_and_accepts_identical_repeats() {
    let run = Run::new();
    let docs = corpus(30);
    let jsonl = run.dir.path().join("labels.jsonl");
    let line = |id: &str, score: f64| {
        serde_json::json!({"id": id, "score": score, "reason": "imported"}).to_string() + "\n"
    };
    let (a, b) = (&docs[0].0, &docs[1].0);
    // an identical repeat is accepted
    std::fs::write(&jsonl, line(a, 3.0) + &line(b, 1.0) + &line(a, 3.0)).unwrap();
    let mut cfg = LabelConfig::new("file");
    cfg.path = Some(jsonl.display().to_string());
    sample_then_label(&cfg, &docs, 30, &run, None).unwrap();
    assert_eq!(stats(&run)["matched"].as_u64(), Some(2));
    // two different labels for one id name the file, the id and both lines
    let run = Run::new();
    let jsonl = run.dir.path().join("labels.jsonl");
    std::fs::write(&jsonl, line(a, 3.0) + &line(b, 1.0) + &line(a, 4.0)).unwrap();
    cfg.path = Some(jsonl.display().to_string());
    let err = sample_then_label(&cfg, &docs, 30, &run, None).unwrap_err();
    assert!(err.contains("labels.jsonl"), "{err}");
    assert!(
        err.contains(&format!(
            "conflicting labels for id \"{a}\": line 1 has score 3, reason \"imported\", \
             line 3 has score 4, reason \"imported\""
        )),
        "{err}"
    );
}

#[test]
fn reference_annotator_is_binary_and_offline() {
    let run = Run::new();
    let docs = corpus(30);
    let refs = run.dir.path().join("ref.jsonl");
    std::fs::write(&refs, "{\"text\": \"A careful explanation of photosynthesis.\"}\n{\"text\": \"How to prove a theorem.\"}\n").unwrap();
    let mut cfg = LabelConfig::new("reference");
    cfg.reference = Some(refs.display().to_string());
    let out = sample_then_label(&cfg, &docs, 20, &run, None).unwrap();
    let (sampled, labeled) = check_labels_any(&out);
    assert_eq!((sampled, labeled), (20, 20));
    let rbs =
        crate::util::read_parquet(&run.label_dir().join(crate::label::LABELS_FILE), None).unwrap();
    let rows: usize = rbs.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 22, "20 negatives + 2 positives");
    let st = stats(&run);
    assert_eq!(
        (st["positives"].as_u64(), st["negatives"].as_u64()),
        (Some(2), Some(20))
    );
}

fn check_labels_any(out: &[DocBatch]) -> (usize, usize) {
    let (mut sampled, mut labeled) = (0, 0);
    for b in out {
        let split = b.column("split").unwrap().as_string::<i32>();
        let score = b
            .column("teacher_score")
            .unwrap()
            .as_primitive::<Float32Type>();
        for i in 0..b.len() {
            if !split.is_null(i) {
                sampled += 1;
                labeled += (!score.is_null(i)) as usize;
                assert_eq!(score.value(i), 0.0);
            }
        }
    }
    (sampled, labeled)
}

#[test]
fn dry_run_estimate_matches_the_fake_bill_roughly_and_sends_nothing() {
    let server = FakeAnthropic::start(FakeConfig::new(KEY));
    let run = Run::new();
    let docs = corpus(50);
    let mut cfg = claude_cfg(&server, &run, "online");
    cfg.max_usd = Some(1.0);
    let texts: Vec<&str> = docs.iter().map(|d| d.1.as_str()).collect();
    let e = crate::estimate(&cfg, run.dir.path(), &texts).unwrap();
    assert_eq!(server.stats().http_requests, 0);
    assert_eq!(e.documents, 50);
    assert_eq!(e.unique_texts, e.to_label);
    assert!(e.worst_case_usd > e.expected_usd);
    // Label everything, then compare the estimate with the bill.
    sample_then_label(&cfg, &docs, 50, &run, Some(KEY)).unwrap();
    let billed = server_cost(&server);
    assert!(
        e.expected_usd > billed * 0.5 && e.expected_usd < billed * 2.0,
        "estimate {} vs billed {billed}",
        e.expected_usd
    );
    assert!(e.worst_case_usd >= billed);
    let again = crate::estimate(&cfg, run.dir.path(), &texts).unwrap();
    assert_eq!((again.in_store, again.to_label), (e.unique_texts, 0));
    assert!(e.render().contains("to label"));
}

#[test]
fn dry_run_draws_the_same_documents_as_the_sample_step() {
    let run = Run::new();
    let docs = corpus(200);
    let jsonl = run.dir.path().join("in.jsonl");
    let mut s = String::new();
    for (id, text, lang) in &docs {
        s.push_str(&serde_json::json!({"id": id, "text": text, "language": lang}).to_string());
        s.push('\n');
    }
    std::fs::write(&jsonl, s).unwrap();
    let paths = vec![jsonl];
    let cfg = SampleConfig {
        size: 30,
        strata: vec!["language".into(), "length_bucket".into()],
        allocation: "equal".into(),
        holdout: 0.0,
        seed: Some(3),
        length_buckets: vec![600, 900],
        column: "split".into(),
        strategy: "random".into(),
        selection_column: "selection".into(),
        per_bucket: 1,
    };
    let input = crate::estimate::DryRunInput {
        paths: &paths,
        text_column: "text",
        id_column: Some("id"),
        sample: Some(&cfg),
        run_seed: 1,
    };
    let drawn = crate::estimate::draw_documents(&input).unwrap();
    assert_eq!(drawn.len(), 30);
    // The sample step itself, run as the executor runs it, selects exactly these texts.
    std::fs::create_dir_all(run.sample_dir()).unwrap();
    let step = cfg.build(&env(&[])).unwrap();
    let out = run_barrier_in(step.as_ref(), vec![batch_of(&docs, 0)], &run.sample_dir()).unwrap();
    let split = out[0].column("split").unwrap().as_string::<i32>();
    let mut picked: Vec<String> = (0..out[0].len())
        .filter(|&i| !split.is_null(i))
        .map(|i| out[0].text(i).to_string())
        .collect();
    let mut drawn_sorted = drawn.clone();
    picked.sort();
    drawn_sorted.sort();
    assert_eq!(picked, drawn_sorted);
}

#[test]
fn calibration_measures_bytes_per_token_with_count_tokens_only() {
    let server = FakeAnthropic::start(FakeConfig::new(KEY));
    let run = Run::new();
    let docs = corpus(12);
    let cfg = claude_cfg(&server, &run, "batch");
    let texts: Vec<&str> = docs.iter().map(|d| d.1.as_str()).collect();
    let ratio = crate::calibrate(&cfg, run.dir.path(), &texts, ApiKey::new(KEY)).unwrap();
    // The fake counts one token per 3 bytes (plus the wrapper's few).
    assert!(ratio > 2.7 && ratio < 3.1, "{ratio}");
    let st = server.stats();
    assert_eq!(
        (st.count_tokens, st.messages_ok, st.batches_created),
        (13, 0, 0)
    );
    assert!(
        st.rejected.is_empty(),
        "count_tokens bodies are valid: {:?}",
        st.rejected
    );
    let e = crate::estimate_with_ratio(&cfg, run.dir.path(), &texts, ratio).unwrap();
    assert!(e.document_tokens > 0);
}

#[test]
fn a_batch_created_behind_a_failed_answer_is_adopted_not_bought_twice() {
    let mut fc = FakeConfig::new(KEY);
    fc.create_then_fail = 1;
    fc.faults = Faults {
        seed: 9,
        kinds: vec![
            curate_testkit::anthropic::Fault::Malformed,
            curate_testkit::anthropic::Fault::ServerError,
        ],
        ..Faults::all(0.2)
    };
    let server = FakeAnthropic::start(fc);
    let run = Run::new();
    let docs = corpus(60);
    let mut cfg = claude_cfg(&server, &run, "batch");
    cfg.max_batch_requests = 20;
    let out = sample_then_label(&cfg, &docs, 40, &run, Some(KEY)).unwrap();
    assert_eq!(check_labels(&out), (40, 40));
    let st = server.stats();
    assert_eq!(st.faults.get("create_then_fail"), Some(&1));
    assert_eq!(
        st.batches_created, 2,
        "two batches of 20, none created twice"
    );
    assert_eq!(st.max_bills_per_document(), 1);
    assert_eq!(stats(&run)["this_run"]["batches_adopted"].as_u64(), Some(1));
}
