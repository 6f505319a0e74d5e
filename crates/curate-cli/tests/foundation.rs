//! End-to-end tests of the spine: runs, determinism, resume after SIGKILL, read-back by other
//! tools, and the errors bad input and bad configs get.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use arrow::array::AsArray;
use common::*;

fn repo() -> PathBuf {
    curate_testkit::repo_root()
}

/// Two inputs from the real corpus when present (else the bundled slice, said so).
fn corpus_inputs() -> Vec<PathBuf> {
    match curate_testkit::corpus_shards() {
        Some(s) => s,
        None => {
            eprintln!("note: ../shared/corpus not found; using the bundled quick-start slice");
            vec![curate_testkit::quickstart_sample()]
        }
    }
}

fn paths_toml(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| q(p)).collect::<Vec<_>>().join(", ")
}

fn spine_config(
    dir: &Path,
    name: &str,
    inputs: &[PathBuf],
    task_size: usize,
    batch_rows: usize,
) -> PathBuf {
    write_config(
        dir,
        name,
        &format!(
            r#"
[input]
paths = [{}]
id_column = "id"
batch_rows = {batch_rows}

[[steps]]
type = "length"
min_words = 50

[[steps]]
type = "sample_fraction"
fraction = 0.5

[output]
exclusion = true
row_group_size = 2000
target_file_size = "40MB"

[run]
seed = 7
task_size = {task_size}
"#,
            paths_toml(inputs)
        ),
    )
}

#[test]
fn quickstart_runs_counts_add_up_and_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("snap");
    let o = curate()
        .current_dir(repo())
        .args([
            "run",
            "--config",
            "configs/quickstart.toml",
            "--output",
            out.to_str().unwrap(),
            "--quiet",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m = manifest(&out);
    let t = &m["totals"];
    let (input, kept, dropped) = (
        t["input_rows"].as_u64().unwrap(),
        t["kept_rows"].as_u64().unwrap(),
        t["dropped_rows"].as_u64().unwrap(),
    );
    assert!(input > 1000 && dropped > 0 && kept > 0, "{t}");
    assert_eq!(input, kept + dropped);
    // kept rows are in data/, dropped rows in excluded/ with their step and reason
    assert_eq!(rows(&read_dir_batches(&out.join("data"))) as u64, kept);
    let ex = read_dir_batches(&out.join("excluded"));
    assert_eq!(rows(&ex) as u64, dropped);
    // every dropped document is in excluded/ with its step and reason, and the per-step,
    // per-reason counts there are exactly the manifest's
    let mut by_reason = std::collections::BTreeMap::<(String, String), u64>::new();
    for b in &ex {
        let r = b.column_by_name("reason").unwrap().as_string::<i32>();
        let s = b.column_by_name("step").unwrap().as_string::<i32>();
        for i in 0..b.num_rows() {
            *by_reason
                .entry((s.value(i).to_string(), r.value(i).to_string()))
                .or_default() += 1;
        }
    }
    let mut from_manifest = std::collections::BTreeMap::<(String, String), u64>::new();
    for step in m["steps"].as_array().unwrap() {
        for (reason, n) in step["dropped"].as_object().unwrap() {
            *from_manifest
                .entry((step["type"].as_str().unwrap().to_string(), reason.clone()))
                .or_default() += n.as_u64().unwrap();
        }
    }
    assert_eq!(by_reason, from_manifest);
    // the quick start runs the whole loop: filters, dedup, teacher, student, scores
    for artefact in [
        "quality/metrics.json",
        "model/model.bin",
        "labels/labels.parquet",
    ] {
        assert!(
            m["artifacts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["path"] == artefact),
            "{artefact} missing"
        );
    }
    let data = read_dir_batches(&out.join("data"));
    assert!(data[0].column_by_name("quality_score").is_some());
    // the input path is recorded as written in the config, with its hash
    assert_eq!(m["inputs"][0]["path"], "configs/quickstart/sample.parquet");

    run_ok(&["snapshot", "verify", out.to_str().unwrap()]);
    // status and stats read the completion records and the manifest
    let st = run(&["status", out.to_str().unwrap(), "--json"]);
    let st: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!(st["complete"], true);
    for s in st["stages"].as_array().unwrap() {
        assert_eq!(s["done"], s["tasks"], "{s}");
    }
    let stats = run(&["stats", out.to_str().unwrap(), "--json"]);
    let stats: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert_eq!(stats["totals"], m["totals"]);
    // tamper with a data file: verify must fail loudly, naming it
    let data = out.join("data/part-00000.parquet");
    let mut bytes = std::fs::read(&data).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&data, &bytes).unwrap();
    let err = run_err(&["snapshot", "verify", out.to_str().unwrap()]);
    assert!(
        err.contains("data/part-00000.parquet: content hash"),
        "{err}"
    );
    std::fs::remove_file(&data).unwrap();
    let err = run_err(&["snapshot", "verify", out.to_str().unwrap()]);
    assert!(err.contains("missing"), "{err}");
}

#[test]
fn output_is_identical_for_any_thread_count_and_task_size() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = corpus_inputs();
    let a = spine_config(tmp.path(), "a.toml", &inputs, 1, 1024);
    let b = spine_config(tmp.path(), "b.toml", &inputs, 3, 300);
    // each snapshot is read into memory and its directory removed before the next run (the
    // suite's peak disk use: two whole-corpus snapshots fewer)
    let snapshot = |cfg: &Path, name: &str, threads: &str| {
        let out = tmp.path().join(name);
        run_config_threads_ok(cfg, &out, threads);
        let bytes = snapshot_bytes(&out);
        std::fs::remove_dir_all(&out).unwrap();
        bytes
    };
    let sa = snapshot(&a, "a", "1");
    let sb = snapshot(&b, "b", "2");
    let sc = snapshot(&a, "c", "2");
    assert!(
        sa.len() >= 3,
        "expected data, exclusion and manifest files: {:?}",
        sa.iter().map(|x| &x.0).collect::<Vec<_>>()
    );
    for (x, y) in sa.iter().zip(&sb).chain(sa.iter().zip(&sc)) {
        assert_eq!(x.0, y.0);
        assert!(
            x.1 == y.1,
            "{} differs between thread counts / task sizes",
            x.0
        );
    }
    assert_eq!(sa.len(), sb.len());
    // the plans really differed
    let plan = |c: &Path, o: &Path| -> serde_json::Value {
        let out = curate()
            .args([
                "plan",
                "--config",
                c.to_str().unwrap(),
                "--output",
                o.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let (pa, pb) = (
        plan(&a, &tmp.path().join("plan-a")),
        plan(&b, &tmp.path().join("plan-b")),
    );
    assert_ne!(pa["stages"][0]["tasks"], pb["stages"][0]["tasks"]);
}

#[test]
fn resumes_after_sigkill_with_identical_output() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = corpus_inputs();
    let cfg = spine_config(tmp.path(), "r.toml", &inputs, 1, 256);
    let reference = tmp.path().join("reference");
    run_config_threads_ok(&cfg, &reference, "1");
    // held in memory: one whole-corpus snapshot less on disk while the killed run goes on
    let want = snapshot_bytes(&reference);
    std::fs::remove_dir_all(&reference).unwrap();

    let out = tmp.path().join("killed");
    let mut child = curate()
        .args([
            "run",
            "-q",
            "--config",
            cfg.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
            "--threads",
            "1",
        ])
        .spawn()
        .unwrap();
    // wait until at least one task has committed, then SIGKILL mid-run
    let start = Instant::now();
    while common::committed(&out, "pass-0") == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no task finished"
        );
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let killed_mid_run = child.try_wait().unwrap().is_none();
    unsafe_kill(child.id());
    child.wait().unwrap();
    if killed_mid_run {
        assert!(
            !out.join("manifest.json").exists(),
            "a killed run must not have a manifest"
        );
        let st = run(&["status", out.to_str().unwrap(), "--json"]);
        let st: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
        assert_eq!(st["complete"], false);
        assert!(st["stages"][0]["done"].as_u64().unwrap() >= 1, "{st}");
    }
    let err = run_config_threads_ok(&cfg, &out, "2");
    if killed_mid_run && inputs.len() > 1 {
        assert!(err.contains("resumed past"), "{err}");
    }
    let (a, b) = (want, snapshot_bytes(&out));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert!(x.0 == y.0 && x.1 == y.1, "{} differs after resume", x.0);
    }
    // no temp files left behind in the snapshot
    for sub in ["data", "excluded"] {
        for e in std::fs::read_dir(out.join(sub)).unwrap().flatten() {
            assert!(!e.file_name().to_string_lossy().ends_with(".tmp"));
        }
    }
}

fn unsafe_kill(pid: u32) {
    // SIGKILL through the kill(1) command: no unsafe code in the tests.
    let _ = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status();
}

#[test]
fn rerun_of_a_finished_run_is_a_no_op_and_changes_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.parquet");
    let texts: Vec<String> = (0..50)
        .map(|i| format!("document {i} {}", "word ".repeat(i)))
        .collect();
    let refs: Vec<&str> = texts.iter().map(|s| s.as_str()).collect();
    write_texts(&input, &refs, 10);
    let body = |min: u32| {
        format!(
            "[input]\npaths = [{}]\n[[steps]]\ntype = \"length\"\nmin_words = {min}\n",
            q(&input)
        )
    };
    let cfg = write_config(tmp.path(), "c.toml", &body(10));
    let out = tmp.path().join("o");
    run_ok(&[
        "run",
        "-q",
        "--config",
        cfg.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    let before = snapshot_bytes(&out);
    let err = run_ok(&[
        "run",
        "-q",
        "--config",
        cfg.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(err.contains("resumed past"), "{err}");
    assert_eq!(before, snapshot_bytes(&out));

    // a finished run whose data file was cut short since is not reported as a finished run
    let part = out.join("data/part-00000.parquet");
    let whole = std::fs::read(&part).unwrap();
    std::fs::write(&part, &whole[..whole.len() / 2]).unwrap();
    let err = run_config_err(&cfg, &out);
    assert!(
        err.contains("data/part-00000.parquet is missing or changed size")
            && err.contains("verify"),
        "{err}"
    );
    std::fs::write(&part, &whole).unwrap();

    // a changed config is refused, with a hint
    write_config(tmp.path(), "c.toml", &body(20));
    let err = run_err(&[
        "run",
        "-q",
        "--config",
        cfg.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(
        err.contains("the config changed") && err.contains("--fresh"),
        "{err}"
    );
    // a changed input is refused too
    write_config(tmp.path(), "c.toml", &body(10));
    write_texts(&input, &refs[..40], 10);
    let err = run_err(&[
        "run",
        "-q",
        "--config",
        cfg.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(err.contains("changed"), "{err}");
    // --fresh starts over
    run_ok(&fresh_args(&cfg, &out));
    assert_eq!(manifest(&out)["totals"]["input_rows"], 40);
    // a non-curate directory is never written into
    let other = tmp.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("precious.txt"), "x").unwrap();
    let err = run_err(&[
        "run",
        "-q",
        "--config",
        cfg.to_str().unwrap(),
        "--output",
        other.to_str().unwrap(),
    ]);
    assert!(err.contains("holds no curate run"), "{err}");
}

#[test]
fn columns_pass_through_unchanged_and_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let sample = curate_testkit::quickstart_sample();
    let cfg = write_config(
        tmp.path(),
        "c.toml",
        &format!("[input]\npaths = [{}]\n", q(&sample)),
    );
    let out = tmp.path().join("o");
    run_ok(&[
        "run",
        "-q",
        "--config",
        cfg.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    let input = read_files(std::slice::from_ref(&sample));
    let output = read_dir_batches(&out.join("data"));
    let schema = input[0].schema();
    let a = arrow::compute::concat_batches(&schema, &input).unwrap();
    let b = arrow::compute::concat_batches(&output[0].schema(), &output).unwrap();
    assert_eq!(
        a.schema()
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect::<Vec<_>>(),
        b.schema()
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        a.columns(),
        b.columns(),
        "a pass-through run must return the input rows unchanged"
    );
}

#[test]
fn jsonl_inputs_plain_gzip_and_zstd() {
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let lines: Vec<String> = (0..30)
        .map(|i| serde_json::json!({"id": format!("j{i}"), "text": format!("line {i} {}", "x ".repeat(i)), "n": i}).to_string())
        .collect();
    let body = lines.join("\n") + "\n";
    std::fs::write(tmp.path().join("a.jsonl"), &body).unwrap();
    let mut gz = flate2_writer(&tmp.path().join("b.jsonl.gz"));
    gz.write_all(body.as_bytes()).unwrap();
    drop(gz);
    std::fs::write(tmp.path().join("c.jsonl.zst"), zstd_bytes(body.as_bytes())).unwrap();
    let cfg = write_config(
        tmp.path(),
        "c.toml",
        &format!(
            "[input]\npaths = [{}]\nid_column = \"id\"\n[[steps]]\ntype = \"length\"\nmin_words = 5\n",
            q(&tmp.path().join("*.jsonl*"))
        ),
    );
    let out = tmp.path().join("o");
    run_ok(&[
        "run",
        "-q",
        "--config",
        cfg.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    let m = manifest(&out);
    assert_eq!(m["totals"]["input_rows"], 90);
    assert_eq!(m["inputs"].as_array().unwrap().len(), 3);
    let kept = m["totals"]["kept_rows"].as_u64().unwrap();
    assert_eq!(kept, 3 * 27, "{m}");
}

fn flate2_writer(p: &Path) -> impl std::io::Write + use<> {
    flate2::write::GzEncoder::new(
        std::fs::File::create(p).unwrap(),
        flate2::Compression::default(),
    )
}

fn zstd_bytes(b: &[u8]) -> Vec<u8> {
    zstd::encode_all(b, 3).unwrap()
}

/// Parquet and JSONL inputs with the same columns in another order (JSONL's come out sorted by
/// name): refused without `[input] columns`, with the list that fixes it in the message; with
/// it, every file's columns come out in the order listed, parquet and JSONL rows alike.
#[test]
fn input_columns_select_and_order_the_columns_of_every_file() {
    let tmp = tempfile::tempdir().unwrap();
    let parquet = tmp.path().join("a.parquet");
    write_texts(&parquet, &["one two three", "four five six"], 10);
    let jsonl = tmp.path().join("b.jsonl");
    std::fs::write(
        &jsonl,
        "{\"text\": \"seven eight nine\", \"id\": \"j0\", \"extra\": 1}\n",
    )
    .unwrap();
    let config = |name: &str, columns: &str| {
        write_config(
            tmp.path(),
            name,
            &format!(
                "[input]\npaths = [{}, {}]\nid_column = \"id\"\n{columns}\n[[steps]]\ntype = \"length\"\nmin_words = 1\n",
                q(&parquet),
                q(&jsonl)
            ),
        )
    };
    let err = run_config_err(&config("a.toml", ""), &tmp.path().join("a"));
    assert!(
        err.contains("differ from") && err.contains("`[input] columns = [\"text\", \"id\"]`"),
        "{err}"
    );
    let out = tmp.path().join("b");
    run_config_ok(&config("b.toml", "columns = [\"id\", \"text\"]"), &out);
    let batches = read_dir_batches(&out.join("data"));
    let names: Vec<String> = batches[0]
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names, ["id", "text"]);
    let ids: Vec<String> = batches
        .iter()
        .flat_map(|b| {
            let c = b.column(0).as_string::<i32>();
            (0..b.num_rows())
                .map(|i| c.value(i).to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(ids, ["doc-0", "doc-1", "j0"]);
}
