//! Bad input gets an error naming file and row group (or line); bad configs get every problem
//! at once, before any data is read (snapshot-tested messages).

use crate::common;

use std::path::{Path, PathBuf};

use common::*;

fn one_step_config(dir: &Path, input: &Path, extra: &str) -> std::path::PathBuf {
    write_config(
        dir,
        "c.toml",
        &format!(
            "[input]\npaths = [{}]\n{extra}\n[[steps]]\ntype = \"length\"\nmin_words = 1\n",
            q(input)
        ),
    )
}

fn run_on(dir: &Path, input: &Path, extra: &str) -> String {
    let cfg = one_step_config(dir, input, extra);
    let out = dir.join("out");
    let _ = std::fs::remove_dir_all(&out);
    run_config_err(&cfg, &out)
}

/// A 20-document input in two row groups, a one-step config over it and an output path.
fn small_run(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let input = dir.join("in.parquet");
    let t = texts(20);
    let refs: Vec<&str> = t.iter().map(String::as_str).collect();
    write_texts(&input, &refs, 10);
    let cfg = one_step_config(dir, &input, "");
    (input, cfg, dir.join("out"))
}

fn texts(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("text number {i} with a few words in it"))
        .collect()
}

#[test]
fn truncated_parquet_names_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("t.parquet");
    let t = texts(100);
    write_texts(&p, &t.iter().map(|s| s.as_str()).collect::<Vec<_>>(), 30);
    let b = std::fs::read(&p).unwrap();
    std::fs::write(&p, &b[..b.len() - 40]).unwrap();
    let err = run_on(tmp.path(), &p, "");
    assert!(
        err.contains("t.parquet") && err.contains("not a readable parquet file"),
        "{err}"
    );
}

#[test]
fn corrupt_row_group_names_file_and_row_group_and_skip_quarantines_it() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("c.parquet");
    let t = texts(300);
    write_texts(&p, &t.iter().map(|s| s.as_str()).collect::<Vec<_>>(), 100);
    // overwrite the pages of row group 1's text column, leaving the footer intact
    let meta =
        parquet::file::reader::SerializedFileReader::new(std::fs::File::open(&p).unwrap()).unwrap();
    let col = parquet::file::reader::FileReader::metadata(&meta)
        .row_group(1)
        .column(0)
        .clone();
    let (start, len) = col.byte_range();
    let mut b = std::fs::read(&p).unwrap();
    for x in &mut b[start as usize..(start + len) as usize] {
        *x = 0xA5;
    }
    std::fs::write(&p, &b).unwrap();
    let err = run_on(tmp.path(), &p, "");
    assert!(err.contains("c.parquet, row group 1"), "{err}");

    // on_error = "skip": the shard is quarantined, listed and counted; other shards are kept
    let cfg = write_config(
        tmp.path(),
        "skip.toml",
        &format!(
            "[input]\npaths = [{}]\non_error = \"skip\"\n[[steps]]\ntype = \"length\"\nmin_words = 1\n[run]\ntask_size = 1\n",
            q(&p)
        ),
    );
    let out = tmp.path().join("skip-out");
    run_config_ok(&cfg, &out);
    let m = manifest(&out);
    assert_eq!(m["totals"]["input_rows"], 200, "{m}");
    assert_eq!(m["totals"]["skipped_rows"], 100);
    let sk = &m["skipped"][0];
    assert_eq!(sk["row_groups"], serde_json::json!([1, 2]));
    assert!(sk["error"].as_str().unwrap().contains("row group 1"));

    // three row groups per task: still exactly row group 1 left out, and the same snapshot
    let cfg3 = tmp.path().join("skip3.toml");
    let body = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg3, body.replace("task_size = 1", "task_size = 3")).unwrap();
    let out3 = tmp.path().join("skip-out3");
    run_config_ok(&cfg3, &out3);
    let m3 = manifest(&out3);
    assert_eq!(m3["totals"], m["totals"], "{m3}");
    assert_eq!(m3["skipped"], m["skipped"]);
    assert_eq!(m3["outputs"], m["outputs"], "the same data files");
}

#[test]
fn missing_and_non_string_text_columns() {
    use arrow::array::{Int64Array, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("notext.parquet");
    let schema = Arc::new(Schema::new(vec![Field::new("body", DataType::Utf8, false)]));
    write_batch(
        &p,
        RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(vec!["a"]))]).unwrap(),
        10,
    );
    let err = run_on(tmp.path(), &p, "");
    assert!(
        err.contains("notext.parquet: column `text`: missing; the file has columns: body"),
        "{err}"
    );

    let p = tmp.path().join("inttext.parquet");
    let schema = Arc::new(Schema::new(vec![Field::new(
        "text",
        DataType::Int64,
        false,
    )]));
    write_batch(
        &p,
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1]))]).unwrap(),
        10,
    );
    let err = run_on(tmp.path(), &p, "");
    assert!(
        err.contains("inttext.parquet: column `text`: has type Int64, expected a string column"),
        "{err}"
    );
}

#[test]
fn non_utf8_and_bad_json_lines_name_the_line() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("bad.jsonl");
    let mut b = b"{\"text\": \"fine\"}\n{\"text\": \"also fine\"}\n".to_vec();
    b.extend_from_slice(b"{\"text\": \"bad \xff\xfe bytes\"}\n");
    std::fs::write(&p, &b).unwrap();
    let err = run_on(tmp.path(), &p, "");
    assert!(err.contains("bad.jsonl, line 3: not valid UTF-8"), "{err}");

    let p = tmp.path().join("broken.jsonl");
    let mut body = String::new();
    for i in 0..5 {
        body.push_str(&format!("{{\"text\": \"doc {i}\"}}\n"));
    }
    body.push_str("{\"text\": \"unterminated\n");
    std::fs::write(&p, body).unwrap();
    let err = run_on(tmp.path(), &p, "");
    assert!(err.contains("broken.jsonl, line 6"), "{err}");
}

#[test]
fn jsonl_errors_name_the_real_line_and_the_decompressor_and_a_bom_is_accepted() {
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let lines = |n: usize, bad: Option<(usize, &str)>| {
        let mut s = String::new();
        for i in 1..=n {
            match bad {
                Some((at, line)) if at == i => s.push_str(line),
                _ => s.push_str(&format!(
                    "{{\"text\": \"document {i} has words\", \"n\": {i}}}"
                )),
            }
            s.push('\n');
        }
        s
    };
    // a wrong-typed field past the lines the schema is inferred from, in the middle of a
    // 256-line batch: named at its own line (not at the batch's last, 1280)
    let p = tmp.path().join("typed.jsonl");
    std::fs::write(
        &p,
        lines(1300, Some((1101, "{\"text\": \"x\", \"n\": \"seven\"}"))),
    )
    .unwrap();
    let err = run_on(tmp.path(), &p, "");
    assert!(err.contains("typed.jsonl, line 1101: "), "{err}");
    assert!(!err.contains("line 1280"), "{err}");

    // a corrupt .zst names the decompressor, not the JSON
    let mut e = zstd::Encoder::new(Vec::new(), 3).unwrap();
    e.include_checksum(true).unwrap();
    e.write_all(lines(3000, None).as_bytes()).unwrap();
    let mut z = e.finish().unwrap();
    let m = z.len() / 10;
    for x in &mut z[m..m + 64] {
        *x ^= 0x5A;
    }
    let p = tmp.path().join("corrupt.jsonl.zst");
    std::fs::write(&p, &z).unwrap();
    let err = run_on(tmp.path(), &p, "");
    assert!(err.contains("corrupt.jsonl.zst, line "), "{err}");
    assert!(err.contains(": zstd: "), "{err}");
    assert!(!err.contains("not valid JSON"), "{err}");

    // a UTF-8 byte order mark at the start is accepted
    let p = tmp.path().join("bom.jsonl");
    std::fs::write(&p, format!("\u{feff}{}", lines(20, None))).unwrap();
    let cfg = one_step_config(tmp.path(), &p, "");
    let out = tmp.path().join("bom-out");
    run_config_ok(&cfg, &out);
    assert_eq!(manifest(&out)["totals"]["input_rows"], 20);
}

#[test]
fn a_regex_that_matches_every_document_is_a_config_problem() {
    let err = validate(
        "[input]\npaths = \"x.parquet\"\n[[steps]]\ntype = \"regex\"\npatterns = [\"spam\", \"\"]\n",
    );
    assert!(err.contains("patterns[1]"), "{err}");
    assert!(err.contains("matches every document"), "{err}");
}

#[test]
fn empty_and_unreadable_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("empty.parquet");
    std::fs::write(&p, b"").unwrap();
    let err = run_on(tmp.path(), &p, "");
    assert!(
        err.contains("empty.parquet: file is empty (0 bytes)"),
        "{err}"
    );

    let p = tmp.path().join("empty.jsonl");
    std::fs::write(&p, b"\n\n").unwrap();
    let err = run_on(tmp.path(), &p, "");
    assert!(err.contains("empty.jsonl: no JSON records"), "{err}");

    let missing = tmp.path().join("nope.parquet");
    let err = run_on(tmp.path(), &missing, "");
    assert!(
        err.contains("nope.parquet: No such file or directory"),
        "{err}"
    );

    let glob = tmp.path().join("none-*.parquet");
    let err = run_on(tmp.path(), &glob, "");
    assert!(err.contains("matches no file"), "{err}");

    let err = run_on(tmp.path(), tmp.path(), "");
    assert!(err.contains("is a directory"), "{err}");

    // an empty string among the paths is a config problem, not an unknown format
    let err = validate(
        "[input]\npaths = [\"a.parquet\", \"\"]\n[[steps]]\ntype = \"length\"\nmin_words = 1\n",
    );
    assert!(err.contains("`paths[1]`: is an empty string"), "{err}");

    // a file whose name holds glob characters is read under that name
    let odd = tmp.path().join("data [2024].parquet");
    std::fs::copy(curate_testkit::quickstart_sample(), &odd).unwrap();
    let out = tmp.path().join("odd-out");
    let cfg = write_config(
        tmp.path(),
        "odd.toml",
        &format!(
            "[input]\npaths = [{}]\n[[steps]]\ntype = \"length\"\nmin_words = 1\n",
            q(&odd)
        ),
    );
    common::run_config_threads_ok(&cfg, &out, "1");
}

/// The text `curate validate` prints for a config, with the temp dir path normalised.
fn validate(body: &str) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(tmp.path(), "bad.toml", body);
    let o = run(&["validate", "--config", cfg.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "validate must exit 2 on a bad config"
    );
    String::from_utf8_lossy(&o.stderr).replace(&tmp.path().display().to_string(), "<tmp>")
}

#[test]
fn bad_configs_report_every_problem_at_once() {
    insta::assert_snapshot!(
        "many_problems",
        validate(
            r#"
[input]
paths = ["/nonexistent/data/*.parquet"]
text_colum = "text"
batch_rows = 0

[[steps]]
type = "lenght"
min_words = 50

[[steps]]
type = "length"
min_words = "fifty"
max_wrds = 10
min_chars = 100
max_chars = 10

[[steps]]
min_words = 3

[output]
zstd_level = 40
target_file_size = "12 parsecs"

[run]
threads = -1
seeed = 1

[extra]
x = 1
"#
        )
    );
}

#[test]
fn bad_config_cases() {
    insta::assert_snapshot!("not_toml", validate("[input\npaths = 1"));
    insta::assert_snapshot!("missing_input", validate("[[steps]]\ntype = \"length\"\n"));
    insta::assert_snapshot!(
        "bad_preset",
        validate("[input]\npaths = [\"x\"]\n[[steps]]\npreset = \"finewbe\"\n")
    );
    insta::assert_snapshot!(
        "wrong_types",
        validate(
            "[input]\npaths = \"x.parquet\"\non_error = \"ignore\"\n[output]\nexclusion = \"yes\"\n"
        )
    );
}

#[test]
fn validate_reads_no_data() {
    // a config naming files that do not exist is still structurally valid: validate reads only
    // footers, and inputs it cannot reach are the run's to report (it says it did not check)
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(
        tmp.path(),
        "ok.toml",
        "[input]\npaths = [\"/nonexistent/*.parquet\"]\n[[steps]]\ntype = \"length\"\nmin_words = 5\n",
    );
    let err = run_ok(&["validate", "--config", cfg.to_str().unwrap()]);
    assert!(err.contains("valid (1 step(s)"), "{err}");
    assert!(err.contains("the inputs were not checked"), "{err}");

    // files steps read that are not there yet: every one is named, by validate and by the run
    let input = tmp.path().join("in.parquet");
    std::fs::copy(curate_testkit::quickstart_sample(), &input).unwrap();
    let cfg = write_config(
        tmp.path(),
        "steps.toml",
        &format!(
            "[input]\npaths = [{}]\n[[steps]]\ntype = \"decontaminate\"\nbenchmarks = [\"/nonexistent/evals/*.jsonl\"]\n[[steps]]\ntype = \"fasttext_classifier\"\nmodel = \"/nonexistent/model.bin\"\nlabel = \"hq\"\nthreshold = 0.5\n",
            q(&input)
        ),
    );
    let err = run_ok(&["validate", "--config", cfg.to_str().unwrap()]);
    assert!(
        err.contains("cannot be built yet")
            && err.contains("steps[0] (decontaminate), build: ")
            && err.contains("steps[1] (fasttext_classifier), build: "),
        "{err}"
    );
    let err = run_config_err(&cfg, &tmp.path().join("out"));
    assert!(
        err.contains("steps[0] (decontaminate)") && err.contains("steps[1] (fasttext_classifier)"),
        "{err}"
    );
}

#[test]
fn list_steps_and_explain_come_from_the_code() {
    let o = run(&["list-steps"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.lines().any(|l| l.starts_with("length ")), "{out}");
    let o = run(&["explain", "length"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("min_words") && out.contains("Options:"),
        "{out}"
    );
    let err = run_err(&["explain", "lenght"]);
    assert!(err.contains("did you mean `length`?"), "{err}");
}

/// Exit codes say whose mistake it was: 2 when the config or the command line is wrong and
/// nothing was touched (an unknown stage, an index out of range, `--fresh` for one task), 1 when
/// the run itself failed or was refused.
#[test]
fn usage_mistakes_exit_2_and_run_failures_exit_1() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, cfg, out) = small_run(tmp.path());
    let (c, o) = (cfg.to_str().unwrap(), out.to_str().unwrap());
    run_ok(&["plan", "--config", c, "--output", o]);
    let code = |args: &[&str]| {
        let r = run(args);
        (
            r.status.code(),
            String::from_utf8_lossy(&r.stderr).into_owned(),
        )
    };
    let task = |stage: &str, index: &str| {
        code(&[
            "task", "--config", c, "--output", o, "--stage", stage, "--index", index,
        ])
    };
    let (st, err) = task("no-such-stage", "0");
    assert_eq!(st, Some(2), "{err}");
    assert!(err.contains("no stage `no-such-stage`"), "{err}");
    let (st, err) = task("pass-0", "999");
    assert_eq!(st, Some(2), "{err}");
    assert!(err.contains("out of range"), "{err}");
    // the run's own failure: its output is a file
    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let (st, err) = code(&[
        "run",
        "-q",
        "--config",
        c,
        "--output",
        file.to_str().unwrap(),
    ]);
    assert_eq!(st, Some(1), "{err}");
    assert!(err.contains("is a file"), "{err}");
}

/// An input rewritten while a run reads it: finalize refuses to write a manifest that would
/// record the hash taken when the run started (the data may come from either version), and the
/// same command then refuses the run as a different one. The run is driven stage by stage so
/// the rewrite lands between the passes and finalize.
#[test]
fn an_input_changed_during_the_run_is_refused_at_finalize() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, cfg, out) = small_run(tmp.path());
    let (c, o) = (cfg.to_str().unwrap(), out.to_str().unwrap());
    let plan: serde_json::Value =
        serde_json::from_slice(&run(&["plan", "--config", c, "--output", o]).stdout).unwrap();
    let stages = plan["stages"].as_array().unwrap();
    for st in stages {
        let name = st["name"].as_str().unwrap();
        if name == "finalize" {
            // the same bytes, written again: a new modification time
            std::thread::sleep(std::time::Duration::from_millis(20));
            std::fs::write(&input, std::fs::read(&input).unwrap()).unwrap();
        }
        for i in 0..st["tasks"].as_u64().unwrap() {
            let r = run(&[
                "task",
                "--config",
                c,
                "--output",
                o,
                "--stage",
                name,
                "--index",
                &i.to_string(),
            ]);
            let err = String::from_utf8_lossy(&r.stderr);
            if name == "finalize" {
                assert_eq!(r.status.code(), Some(1), "{err}");
                assert!(
                    err.contains("changed while the run read them") && err.contains("in.parquet"),
                    "{err}"
                );
            } else {
                assert!(r.status.success(), "{name} {i}: {err}");
            }
        }
    }
    assert!(!out.join("manifest.json").exists());
}

/// The files steps read (here a `decontaminate` benchmark) are hashed into the run state when
/// the run starts and listed in the manifest. Changed between two tasks of the run, the file is
/// refused, naming it and its step (before, a resume read the new version and the snapshot
/// mixed both); put back and run again, the run finishes to the snapshot an uninterrupted run
/// makes. A finished run whose file changed is refused too (before, "ran 0" and exit 0).
#[test]
fn files_steps_read_are_recorded_and_a_changed_one_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.parquet");
    let t = texts(20);
    write_texts(
        &input,
        &t.iter().map(String::as_str).collect::<Vec<_>>(),
        10,
    );
    let bench = tmp.path().join("bench.jsonl");
    let original = format!("{}\n", serde_json::json!({ "question": t[3] }));
    std::fs::write(&bench, &original).unwrap();
    let cfg = write_config(
        tmp.path(),
        "d.toml",
        &format!(
            "[input]\npaths = [{}]\n\n[[steps]]\ntype = \"decontaminate\"\nbenchmarks = [{}]\nfields = [\"question\"]\nmin_item_words = 1\n\n[output]\nexclusion = true\n\n[run]\ntask_size = 1\n",
            q(&input),
            q(&bench)
        ),
    );
    let (c, out) = (cfg.to_str().unwrap(), tmp.path().join("out"));
    let o = out.to_str().unwrap();
    let task = |stage: &str, i: &str| {
        run(&[
            "task", "--config", c, "--output", o, "--stage", stage, "--index", i,
        ])
    };
    run_ok(&["plan", "--config", c, "--output", o]);
    assert!(task("pass-0", "0").status.success());
    std::fs::write(
        &bench,
        format!("{original}{}\n", serde_json::json!({ "question": t[7] })),
    )
    .unwrap();
    let refused = task("pass-0", "1");
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "{} of steps[0] (decontaminate) changed since the run began",
            bench.display()
        )),
        "{err}"
    );
    let err = run_config_err(&cfg, &out);
    assert!(err.contains("changed since the run began"), "{err}");
    // put back: the same command finishes the run
    std::fs::write(&bench, &original).unwrap();
    run_config_ok(&cfg, &out);
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(
        m["resources"],
        serde_json::json!([{
            "step": 0,
            "type": "decontaminate",
            "path": bench.display().to_string(),
            "bytes": original.len(),
            "xxh3_128": curate_core::hash::hex128(curate_io::hash::hash_bytes(original.as_bytes())),
        }])
    );
    run_ok(&["snapshot", "verify", o]);
    let whole = tmp.path().join("whole");
    run_config_ok(&cfg, &whole);
    common::assert_same_snapshot(
        &out,
        &whole,
        "resumed after the file was put back vs uninterrupted",
    );
    // a finished run whose file changed is not reported done
    std::fs::write(&bench, format!("{original}{original}")).unwrap();
    let err = run_config_err(&cfg, &out);
    assert!(
        err.contains("bench.jsonl of steps[0] (decontaminate) changed since the run began"),
        "{err}"
    );
}

/// An input that can be read but whose columns do not fit the config (the text column missing,
/// a listed column or the id column missing) is a config problem: `curate validate` fails on it
/// (exit 2) naming file, column and the columns there are, every such problem at once, and the
/// run refuses the same way before touching anything. An input that cannot be reached is still
/// the run's to report (`validate_reads_no_data`).
#[test]
fn columns_the_input_lacks_are_config_problems() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, _, out) = small_run(tmp.path());
    let cfg = write_config(
        tmp.path(),
        "cols.toml",
        &format!(
            "[input]\npaths = [{}]\ntext_column = \"body\"\nid_column = \"doc_id\"\n\n[[steps]]\ntype = \"length\"\nmin_words = 1\n",
            q(&input)
        ),
    );
    let o = run(&["validate", "--config", cfg.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("`text_column`")
            && err.contains("in.parquet: column `body`: missing; the file has columns: text"),
        "{err}"
    );
    let err = run_config_err(&cfg, &out);
    assert!(err.contains("column `body`: missing"), "{err}");
    assert!(!out.exists(), "a refused run leaves no directory behind");
    // a directory that was there stays
    std::fs::create_dir(&out).unwrap();
    run_config_err(&cfg, &out);
    assert!(out.is_dir());
    let body = format!(
        "[input]\npaths = [{}]\ncolumns = [\"text\", \"url\", \"doc_id\"]\nid_column = \"doc_id\"\n\n[[steps]]\ntype = \"length\"\nmin_words = 1\n",
        q(&input)
    );
    let err = validate(&body);
    assert!(
        err.contains("`columns`: ")
            && err.contains("column `url` is missing")
            && err.contains("`id_column`: ")
            && err.contains("id column `doc_id` is missing"),
        "{err}"
    );
    // with problems of its own elsewhere in the config, the columns are still checked: every
    // problem at once, before any data is read
    let cfg3_body = format!(
        "[input]\npaths = [{}]\ntext_column = \"body\"\n\n[[steps]]\ntype = \"length\"\nmin_words = \"x\"\n",
        q(&input)
    );
    let err = validate(&cfg3_body);
    assert!(
        err.contains("2 problem(s)")
            && err.contains("`min_words`: invalid type")
            && err.contains("in.parquet: column `body`: missing"),
        "{err}"
    );
    let cfg = write_config(tmp.path(), "cols3.toml", &cfg3_body);
    let err = run_config_err(&cfg, &out);
    assert!(
        err.contains("`min_words`") && err.contains("column `body`: missing"),
        "{err}"
    );
}

/// `on_error = "skip"` covers files that cannot be read at all, found while planning (a
/// truncated parquet footer, an empty `.jsonl.gz`): each is left out whole, listed in the
/// manifest's `skipped` with its error and among its hashed inputs; the readable inputs run as
/// they would alone. Without `skip` the same run fails naming both files.
#[test]
fn skip_leaves_out_inputs_unreadable_at_plan_time_and_lists_them() {
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("a-good.parquet");
    let t = texts(30);
    write_texts(&good, &t.iter().map(String::as_str).collect::<Vec<_>>(), 10);
    let cut = tmp.path().join("b-cut.parquet");
    let b = std::fs::read(&good).unwrap();
    std::fs::write(&cut, &b[..b.len() - 40]).unwrap();
    let empty = tmp.path().join("c-empty.jsonl.gz");
    std::fs::write(&empty, b"").unwrap();
    let config = |name: &str, skip: bool| {
        write_config(
            tmp.path(),
            name,
            &format!(
                "[input]\npaths = [{}, {}, {}]\n{}\n[[steps]]\ntype = \"length\"\nmin_words = 1\n",
                q(&good),
                q(&cut),
                q(&empty),
                if skip { "on_error = \"skip\"\n" } else { "" }
            ),
        )
    };
    let err = run_config_err(&config("fail.toml", false), &tmp.path().join("fail"));
    assert!(
        err.contains("b-cut.parquet") && err.contains("c-empty.jsonl.gz"),
        "{err}"
    );
    let out = tmp.path().join("out");
    run_config_ok(&config("skip.toml", true), &out);
    run_ok(&["snapshot", "verify", out.to_str().unwrap()]);
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["totals"]["input_rows"], 30, "{}", m["totals"]);
    assert_eq!(m["totals"]["kept_rows"], 30);
    let skipped = m["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert!(
        skipped[0]["path"]
            .as_str()
            .unwrap()
            .ends_with("b-cut.parquet")
    );
    assert!(
        skipped[0]["error"]
            .as_str()
            .unwrap()
            .contains("not a readable parquet file"),
        "{skipped:?}"
    );
    assert!(
        skipped[1]["path"]
            .as_str()
            .unwrap()
            .ends_with("c-empty.jsonl.gz")
    );
    let inputs: Vec<&str> = m["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["path"].as_str().unwrap())
        .collect();
    assert_eq!(inputs.len(), 3, "{inputs:?}");
    // the readable input alone gives the same data
    let alone = tmp.path().join("alone");
    let cfg = write_config(
        tmp.path(),
        "alone.toml",
        &format!(
            "[input]\npaths = [{}]\n\n[[steps]]\ntype = \"length\"\nmin_words = 1\n",
            q(&good)
        ),
    );
    run_config_ok(&cfg, &alone);
    assert_eq!(
        std::fs::read(out.join("data/part-00000.parquet")).unwrap(),
        std::fs::read(alone.join("data/part-00000.parquet")).unwrap()
    );
}

/// After a preset, steps are numbered in the expanded pipeline (as every later message and the
/// manifest number them); a step the config lists itself also says which `[[steps]]` table of
/// the config it is, and a preset's steps say which preset they come from.
#[test]
fn steps_after_a_preset_name_their_table_in_the_config() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(
        tmp.path(),
        "p.toml",
        "[input]\npaths = [\"x.parquet\"]\n\n[[steps]]\npreset = \"fineweb\"\n\n[[steps]]\ntype = \"length\"\nmin_word = 5\n",
    );
    let o = run(&["validate", "--config", cfg.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains(
            "steps[6] (length, from [[steps]] table 2 of the config): `min_word`: unknown key"
        ),
        "{err}"
    );
}
