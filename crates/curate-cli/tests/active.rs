//! Labeling in rounds through the `curate` binary against the fake Anthropic server: `sample`
//! (random) → `label` → `train` → `sample` (`strategy = "uncertainty"`) → `label` → `train`.

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use arrow::array::{Array, AsArray};
use arrow::datatypes::Float32Type;
use curate_testkit::anthropic::{FakeAnthropic, FakeConfig};

const KEY: &str = "sk-ant-active-e2e-0123456789";
const ONLINE: &str = "mode = \"online\"";
const HAIKU: [f64; 5] = [0.10, 0.50, 0.125, 0.20, 0.01];

fn label_table(server: &FakeAnthropic, store: &Path, extra: &str) -> String {
    format!(
        r#"[[steps]]
type = "label"
annotator = "claude"
model = "claude-haiku-5-5"
base_url = "{url}"
store = "{store}"
initial_retry_delay_s = 0.005
max_retry_delay_s = 0.05
max_retries = 12
poll_interval_s = 0.01
poll_max_interval_s = 0.05
timeout_s = 20
{extra}
"#,
        url = server.base_url(),
        store = store.display()
    )
}

/// A two-round pipeline (three when `third`): the first round random with its holdout.
fn config(
    dir: &Path,
    input: &Path,
    server: &FakeAnthropic,
    out: &Path,
    threads: usize,
    extra_label: &str,
    third: bool,
) -> PathBuf {
    let store = dir.join("store");
    let round = |n: usize| {
        format!(
            "[[steps]]\ntype = \"sample\"\nstrategy = \"uncertainty\"\nsize = {n}\nstrata = [\"language\"]\noverwrite = true\n\n{}\n[[steps]]\ntype = \"train\"\noverwrite = true\n\n",
            label_table(server, &store, &format!("overwrite = true\n{extra_label}"))
        )
    };
    let body = format!(
        r#"[input]
paths = ["{input}"]
text_column = "text"
id_column = "id"

[[steps]]
type = "sample"
size = 60
strata = ["language"]
holdout = 0.25

{label}
[[steps]]
type = "train"

{r2}{r3}[output]
dir = "{out}"

[run]
seed = 11
threads = {threads}
"#,
        input = input.display(),
        label = label_table(server, &store, extra_label),
        r2 = round(30),
        r3 = if third { round(30) } else { String::new() },
        out = out.display(),
    );
    let p = dir.join(format!("pipeline-{threads}-{third}.toml"));
    std::fs::write(&p, body).unwrap();
    p
}

fn run(config: &Path) -> Output {
    let mut c = common::curate();
    c.args(["run", "--quiet", "--config"]).arg(config);
    c.env("ANTHROPIC_API_KEY", KEY);
    c.output().unwrap()
}

/// Starts the run in the background.
fn spawn(config: &Path) -> std::process::Child {
    common::curate()
        .args(["run", "--quiet", "--config"])
        .arg(config)
        .env("ANTHROPIC_API_KEY", KEY)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// SIGKILLs `child` once `reached()` holds (polled every millisecond, for at most a minute);
/// panics if the run ended first.
fn kill_when(child: &mut std::process::Child, what: &str, mut reached: impl FnMut() -> bool) {
    let t0 = std::time::Instant::now();
    while !reached() && t0.elapsed().as_secs() < 60 {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let alive = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    assert!(alive, "the run ended before {what}");
}

/// A fake teacher that caches no prompt, so every run is billed (and its labels record
/// tokens) the same whatever the timing: two runs' label files can be compared byte for byte.
fn uncached_server() -> FakeAnthropic {
    let mut fc = FakeConfig::new(KEY);
    fc.cache_min_tokens = u64::MAX / 4;
    FakeAnthropic::start(fc)
}

/// An uninterrupted two-round online run in `dir/clean` (its own teacher), for the expected
/// snapshot.
fn clean_online_run(dir: &Path, input: &Path) -> PathBuf {
    let sub = dir.join("clean");
    std::fs::create_dir_all(&sub).unwrap();
    let server = uncached_server();
    let out = sub.join("out");
    ok(&run(&config(&sub, input, &server, &out, 2, ONLINE, false)));
    assert_eq!(server.stats().billed_per_document.len(), 90);
    common::assert_verifies(&out, "the uninterrupted run");
    out
}

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "curate failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// id → (split, selection, teacher score) of every sampled row of a snapshot.
fn selections(out: &Path) -> BTreeMap<String, (String, String, Option<f32>)> {
    let mut m = BTreeMap::new();
    for rb in common::read_dir_batches(&out.join("data")) {
        let id = rb.column_by_name("id").unwrap().as_string::<i32>().clone();
        let split = rb
            .column_by_name("split")
            .unwrap()
            .as_string::<i32>()
            .clone();
        let sel = rb
            .column_by_name("selection")
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
                assert!(sel.is_null(i), "an unsampled row has a selection");
                continue;
            }
            let s = (!score.is_null(i)).then(|| score.value(i));
            m.insert(
                id.value(i).to_string(),
                (split.value(i).to_string(), sel.value(i).to_string(), s),
            );
        }
    }
    m
}

fn count(m: &BTreeMap<String, (String, String, Option<f32>)>, split: &str, sel: &str) -> usize {
    m.values().filter(|v| v.0 == split && v.1 == sel).count()
}

#[test]
fn rounds_run_keep_the_holdout_and_are_identical_for_1_and_2_threads() {
    let dir = tempfile::tempdir().unwrap();
    let (input, _) = common::corpus_slice(dir.path(), 400, 100);
    let server = FakeAnthropic::start(FakeConfig::new(KEY));
    let out1 = dir.path().join("out1");
    let c1 = config(dir.path(), &input, &server, &out1, 1, ONLINE, true);
    ok(&run(&c1));
    let m = selections(&out1);
    // Round 1: 60 random rows, a quarter held out; rounds 2 and 3: 30 `train` rows each.
    assert_eq!(count(&m, "holdout", "random"), 15, "{m:?}");
    assert_eq!(count(&m, "train", "random"), 45);
    assert_eq!(count(&m, "train", "uncertainty-round-2"), 30);
    assert_eq!(count(&m, "train", "uncertainty-round-3"), 30);
    assert_eq!(m.len(), 120);
    assert!(
        m.values().all(|v| v.2.is_some()),
        "every sampled row is labelled"
    );
    // The snapshot verifies (each round's labels and model are published to one path: the
    // manifest lists the last round's once), and its label store says how every label was
    // chosen, as the data does.
    common::assert_verifies(&out1, "three rounds");
    let mut stored = BTreeMap::new();
    for rb in common::read_files(&[out1.join("labels/labels.parquet")]) {
        let id = rb.column_by_name("id").unwrap().as_string::<i32>();
        let sel = rb.column_by_name("selection").unwrap().as_string::<i32>();
        for i in 0..rb.num_rows() {
            stored.insert(id.value(i).to_string(), sel.value(i).to_string());
        }
    }
    let want: BTreeMap<String, String> = m.iter().map(|(k, v)| (k.clone(), v.1.clone())).collect();
    assert_eq!(stored, want, "labels.parquet's selections");
    let html = std::fs::read_to_string(out1.join("report.html")).unwrap();
    for (sel, n) in [
        ("random", 60),
        ("uncertainty-round-2", 30),
        ("uncertainty-round-3", 30),
    ] {
        let row = format!("<th scope=\"row\">{sel}</th><td>{n}</td><td>0</td>");
        assert!(html.contains(&row), "the report lacks {row}");
    }
    // The label store never pays twice: one bill per document over all rounds.
    let st = server.stats();
    assert_eq!(st.max_bills_per_document(), 1);
    assert_eq!(st.billed_per_document.len(), 120);
    assert_eq!(st.messages_ok, 120);
    // The same run with 2 threads: the same selections, labels and model bytes.
    let server2 = FakeAnthropic::start(FakeConfig::new(KEY));
    let dir2 = tempfile::tempdir().unwrap();
    let out2 = dir2.path().join("out2");
    let c2 = config(dir2.path(), &input, &server2, &out2, 2, ONLINE, true);
    ok(&run(&c2));
    assert_eq!(
        selections(&out2),
        m,
        "selections differ between 1 and 2 threads"
    );
    assert_eq!(
        std::fs::read(out1.join("model/model.bin")).unwrap(),
        std::fs::read(out2.join("model/model.bin")).unwrap(),
        "model bytes differ between 1 and 2 threads"
    );
}

#[test]
fn the_budget_holds_across_rounds() {
    let dir = tempfile::tempdir().unwrap();
    let (input, _) = common::corpus_slice(dir.path(), 400, 100);
    let server = FakeAnthropic::start(FakeConfig::new(KEY));
    let out = dir.path().join("out");
    // Round 1 (60 labels) costs well under the cap; round 2 must stop at it.
    let cap = 0.0105;
    let c = config(
        dir.path(),
        &input,
        &server,
        &out,
        2,
        &format!("{ONLINE}\nmax_usd = {cap}"),
        false,
    );
    ok(&run(&c));
    let st = server.stats();
    let billed = st.online.cost(HAIKU, 1.0) + st.batch.cost(HAIKU, 0.5);
    assert!(billed <= cap, "billed {billed} over the budget {cap}");
    assert_eq!(st.max_bills_per_document(), 1);
    let m = selections(&out);
    let labelled = m.values().filter(|v| v.2.is_some()).count() as u64;
    assert_eq!(labelled, st.messages_ok);
    assert!(
        (61..90).contains(&labelled),
        "round 2 should be cut by the budget: {labelled} labels, {billed} USD"
    );
}

#[test]
fn a_run_killed_inside_round_two_resumes_in_batch_mode_without_paying_twice() {
    let dir = tempfile::tempdir().unwrap();
    let (input, _) = common::corpus_slice(dir.path(), 400, 100);
    // The uninterrupted run, for the expected selections.
    let clean_server = FakeAnthropic::start(FakeConfig::new(KEY));
    let clean = dir.path().join("clean");
    let c = config(dir.path(), &input, &clean_server, &clean, 2, "", false);
    ok(&run(&c));
    let want = selections(&clean);
    // The same run, SIGKILLed once round 2's batch exists (batch mode: the batch id is saved
    // in the label store before it is created, so a resumed run fetches its results instead
    // of buying them again), then resumed.
    let sub = dir.path().join("killed");
    std::fs::create_dir_all(&sub).unwrap();
    let server = FakeAnthropic::start(FakeConfig::new(KEY));
    let out = sub.join("out");
    let c = config(&sub, &input, &server, &out, 2, "", false);
    let mut child = spawn(&c);
    kill_when(&mut child, "round 2's batch was created", || {
        server.stats().batches_created >= 2
    });
    assert_eq!(server.stats().batches_created, 2, "killed inside round 2");
    ok(&run(&c));
    let st = server.stats();
    assert_eq!(
        st.max_bills_per_document(),
        1,
        "a document was billed twice"
    );
    assert_eq!(st.billed_per_document.len(), 90);
    assert_eq!(
        selections(&out),
        want,
        "the resumed run selected differently"
    );
}

/// The resumed run: no document billed twice over both runs, 90 documents billed in all, and
/// the same snapshot (data, manifest) as the uninterrupted run.
fn resume_and_compare(config: &Path, server: &FakeAnthropic, out: &Path, clean: &Path) {
    ok(&run(config));
    let st = server.stats();
    assert_eq!(
        st.max_bills_per_document(),
        1,
        "a document was billed twice"
    );
    assert_eq!(st.billed_per_document.len(), 90);
    assert_eq!(st.messages_ok, 90);
    common::assert_same_snapshot(out, clean, "the resumed run");
    assert_eq!(
        std::fs::read(out.join("labels/labels.parquet")).unwrap(),
        std::fs::read(clean.join("labels/labels.parquet")).unwrap(),
        "labels differ after the resume"
    );
}

/// Starts the two-round online run in `dir/killed` against a teacher that has an outage (every
/// message answers 500, nothing billed) after `answers` answers: (server, output, config, child).
fn start_with_outage(
    dir: &Path,
    input: &Path,
    answers: u64,
) -> (FakeAnthropic, PathBuf, PathBuf, std::process::Child) {
    let sub = dir.join("killed");
    std::fs::create_dir_all(&sub).unwrap();
    let server = uncached_server();
    server.configure(|c| c.fail_after_messages = Some(answers));
    let out = sub.join("out");
    let c = config(&sub, input, &server, &out, 2, ONLINE, false);
    let child = spawn(&c);
    (server, out, c, child)
}

#[test]
fn a_run_killed_inside_round_two_resumes_in_online_mode_without_paying_twice() {
    let dir = tempfile::tempdir().unwrap();
    let (input, _) = common::corpus_slice(dir.path(), 400, 100);
    let clean = clean_online_run(dir.path(), &input);
    // The same run against a teacher that has an outage (every message answers 500, nothing
    // billed) after 70 answers: 10 into round 2. The client retries; the run is SIGKILLed
    // while it does, so no request that will be billed is in flight (a Messages API request
    // cut off mid-answer would be billed without the client ever seeing its label).
    let (server, out, c, mut child) = start_with_outage(dir.path(), &input, 70);
    let mut seen = None;
    kill_when(&mut child, "the outage in round 2", || {
        // 50 ms after the first 500: answers sent before the outage are journaled by then,
        // while the client's retries (12, backing off up to 50 ms) go on for longer.
        let now = std::time::Instant::now();
        server.stats().faults.contains_key("outage")
            && now.duration_since(*seen.get_or_insert(now)).as_millis() >= 50
    });
    // Requests that reached the server before the 70th answer was counted may still have been
    // answered: at least 70, and fewer than the 90 of a finished round 2.
    let answered = server.stats().messages_ok;
    assert!(
        (70..90).contains(&answered),
        "killed inside round 2: {answered}"
    );
    assert!(
        !out.join("manifest.json").exists(),
        "a killed run left a manifest"
    );
    // Round 1's labels are committed, round 2's are not.
    assert_eq!(common::committed(&out, "step-01-label-"), 1);
    assert_eq!(common::committed(&out, "step-04-label-"), 0);
    server.configure(|c| c.fail_after_messages = None);
    resume_and_compare(&c, &server, &out, &clean);
}

#[test]
fn a_run_killed_between_rounds_resumes_without_paying_twice() {
    let dir = tempfile::tempdir().unwrap();
    let (input, _) = common::corpus_slice(dir.path(), 400, 100);
    let clean = clean_online_run(dir.path(), &input);
    // Killed once round 1's label stage has committed its completion record (its 60 labels
    // are bought), while round 1's `train` or round 2's `sample` runs. The teacher has an
    // outage after those 60 answers, so a kill that came late would show as a 500 (and could
    // not buy a round-2 label).
    let (server, out, c, mut child) = start_with_outage(dir.path(), &input, 60);
    kill_when(&mut child, "round 1's labels were committed", || {
        common::committed(&out, "step-01-label-") >= 1
    });
    let st = server.stats();
    assert_eq!(st.messages_ok, 60);
    assert!(
        !st.faults.contains_key("outage"),
        "the kill landed inside round 2's labeling, not between the rounds"
    );
    assert_eq!(common::committed(&out, "step-04-label-"), 0);
    server.configure(|c| c.fail_after_messages = None);
    resume_and_compare(&c, &server, &out, &clean);
}
