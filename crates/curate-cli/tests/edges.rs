//! Trust at the edges, through the binary: the output directory's every spelling, one writer
//! per snapshot, column ownership, what `snapshot verify` guarantees, configs that validate but
//! make no sense, and messages that say what happened.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use common::*;

fn texts(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let words = 3 + (i * 7) % 20;
            (0..words)
                .map(|w| format!("word{}", (i + w) % 13))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

fn small_input(dir: &Path, n: usize, row_group: usize) -> PathBuf {
    let p = dir.join("in.parquet");
    let t = texts(n);
    write_texts(
        &p,
        &t.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        row_group,
    );
    p
}

fn length_config(dir: &Path, name: &str, input: &Path, min_words: usize, extra: &str) -> PathBuf {
    write_config(
        dir,
        name,
        &format!(
            "[input]\npaths = [{}]\n{extra}\n[[steps]]\ntype = \"length\"\nmin_words = {min_words}\n\n[output]\nexclusion = true\n",
            q(input)
        ),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

// ---- 1. the output directory, every spelling -------------------------------------------------

#[test]
fn an_empty_output_dir_is_a_config_problem_and_never_the_working_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let input = small_input(tmp.path(), 20, 10);
    let cfg = write_config(
        tmp.path(),
        "c.toml",
        &format!(
            "[input]\npaths = [{}]\n[[steps]]\ntype = \"length\"\nmin_words = 1\n[output]\ndir = \"  \"\n",
            q(&input)
        ),
    );
    let e = run_err(&["validate", "--config", s(&cfg)]);
    assert!(e.contains("output: `dir`: is empty"), "{e}");
    let e = run_err(&["run", "-q", "--config", s(&cfg)]);
    assert!(e.contains("`dir`: is empty"), "{e}");
    // `--output ""` from the command line is refused too, and nothing lands in the cwd
    let cwd = tmp.path().join("cwd");
    std::fs::create_dir(&cwd).unwrap();
    std::fs::write(cwd.join("README.md"), "mine").unwrap();
    let ok_cfg = length_config(tmp.path(), "ok.toml", &input, 1, "");
    let o = curate()
        .current_dir(&cwd)
        .args(["run", "-q", "--config", s(&ok_cfg), "--output", ""])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("a value is required for '--output"), "{e}");
    for out in [".", "./", ""] {
        let o = curate()
            .current_dir(&cwd)
            .args(["run", "-q", "--config", s(&ok_cfg), "--output", out])
            .output()
            .unwrap();
        assert!(
            !o.status.success(),
            "--output {out:?} wrote into a user's directory"
        );
    }
    assert_eq!(
        std::fs::read_to_string(cwd.join("README.md")).unwrap(),
        "mine"
    );
    let names: Vec<_> = std::fs::read_dir(&cwd)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
}

#[test]
fn a_non_empty_directory_through_a_symlink_is_refused_and_a_file_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let input = small_input(tmp.path(), 20, 10);
    let cfg = length_config(tmp.path(), "c.toml", &input, 1, "");
    let user = tmp.path().join("user");
    std::fs::create_dir(&user).unwrap();
    std::fs::write(user.join("manifest.json"), "{\"mine\": true}").unwrap();
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&user, &link).unwrap();
    for out in [
        link.clone(),
        link.join("."),
        tmp.path().join("user/../user"),
    ] {
        let e = run_err(&["run", "-q", "--config", s(&cfg), "--output", s(&out)]);
        assert!(e.contains("holds no curate run"), "{e}");
    }
    assert_eq!(
        std::fs::read_to_string(user.join("manifest.json")).unwrap(),
        "{\"mine\": true}"
    );
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let e = run_err(&["run", "-q", "--config", s(&cfg), "--output", s(&file)]);
    assert!(e.contains("is a file, not a directory"), "{e}");
}

#[test]
fn an_output_inside_the_inputs_is_refused_up_front() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("corpus");
    std::fs::create_dir(&corpus).unwrap();
    small_input(&corpus, 20, 10);
    let cfg = write_config(
        tmp.path(),
        "c.toml",
        &format!(
            "[input]\npaths = [\"{}/**/*.parquet\"]\n[[steps]]\ntype = \"length\"\nmin_words = 1\n",
            corpus.display()
        ),
    );
    let e = run_err(&[
        "run",
        "-q",
        "--config",
        s(&cfg),
        "--output",
        s(&corpus.join("out")),
    ]);
    assert!(e.contains("matches files the run writes"), "{e}");
    assert!(!corpus.join("out").exists());
}

// ---- 2. column ownership ---------------------------------------------------------------------

/// An input with two columns of one name is refused, naming the file and the column (steps
/// would read the first; the snapshot would hold both, which pyarrow refuses to read by name).
#[test]
fn an_input_with_two_columns_of_one_name_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("twice.parquet");
    let f = |n: &str| Field::new(n, DataType::Utf8, false);
    let schema = Arc::new(Schema::new(vec![f("text"), f("id"), f("id")]));
    let col = |v: &[&str]| -> ArrayRef { Arc::new(StringArray::from(v.to_vec())) };
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![col(&["a b c", "d e f"]), col(&["1", "2"]), col(&["x", "y"])],
    )
    .unwrap();
    let mut w =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&input).unwrap(), schema, None)
            .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let cfg = length_config(tmp.path(), "c.toml", &input, 1, "");
    let out = tmp.path().join("out");
    let e = run_err(&["run", "-q", "--config", s(&cfg), "--output", s(&out)]);
    assert!(
        e.contains("twice.parquet: more than one column named `id`"),
        "{e}"
    );
    assert!(!out.join("data").exists(), "nothing written");
}

/// An input with `text`, `id` and extra columns named like the ones steps add.
fn input_with(dir: &Path, extra: &[&str]) -> PathBuf {
    let n = 40;
    let t = texts(n);
    let mut fields = vec![
        Field::new("text", DataType::Utf8, false),
        Field::new("id", DataType::Utf8, false),
    ];
    let mut cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(t.iter())),
        Arc::new(StringArray::from_iter_values(
            (0..n).map(|i| format!("doc-{i}")),
        )),
    ];
    for name in extra {
        fields.push(Field::new(*name, DataType::Utf8, true));
        cols.push(Arc::new(StringArray::from_iter_values(
            (0..n).map(|i| format!("{name}-{i}")),
        )));
    }
    let p = dir.join("cols.parquet");
    write_batch(
        &p,
        RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap(),
        20,
    );
    p
}

#[test]
fn a_step_never_overwrites_an_input_column_silently() {
    let tmp = tempfile::tempdir().unwrap();
    let input = input_with(tmp.path(), &["quality_score"]);
    let cfg = |name: &str, step: &str| {
        write_config(
            tmp.path(),
            name,
            &format!(
                "[input]\npaths = [{}]\nid_column = \"id\"\n[[steps]]\n{step}\n",
                q(&input)
            ),
        )
    };
    // minhash's cluster ids over the user's ids
    let c = cfg(
        "m.toml",
        "type = \"minhash_dedup\"\ncluster_id_column = \"id\"",
    );
    let e = run_err(&["validate", "--config", s(&c)]);
    assert!(
        e.contains("steps[0] (minhash_dedup): `cluster_id_column`: adds column `id`, which the input already has"),
        "{e}"
    );
    assert!(
        e.contains("rename it with `cluster_id_column = \"...\"`"),
        "{e}"
    );
    let out = tmp.path().join("out-m");
    let e = run_err(&["run", "-q", "--config", s(&c), "--output", s(&out)]);
    assert!(e.contains("adds column `id`"), "{e}");
    assert!(!out.join("data").exists(), "nothing is written");
    // the language step over an input column: refused, unless `overwrite = true`
    let input2 = input_with(tmp.path(), &["language"]);
    let c = write_config(
        tmp.path(),
        "l.toml",
        &format!(
            "[input]\npaths = [{}]\n[[steps]]\ntype = \"language\"\nlabel_only = true\n",
            q(&input2)
        ),
    );
    let e = run_err(&["validate", "--config", s(&c)]);
    assert!(
        e.contains("adds column `language`, which the input already has"),
        "{e}"
    );
    assert!(e.contains("set `overwrite = true`"), "{e}");
    let c = write_config(
        tmp.path(),
        "l2.toml",
        &format!(
            "[input]\npaths = [{}]\n[[steps]]\ntype = \"language\"\nlabel_only = true\noverwrite = true\n",
            q(&input2)
        ),
    );
    let out = tmp.path().join("out-l");
    run_ok(&["run", "-q", "--config", s(&c), "--output", s(&out)]);
    let b = read_dir_batches(&out.join("data"));
    let langs = b[0].column_by_name("language").unwrap().as_string::<i32>();
    assert!(
        !langs.value(0).starts_with("language-"),
        "replaced on request"
    );
}

#[test]
fn the_text_and_key_columns_can_never_be_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let input = input_with(tmp.path(), &["__curate_key"]);
    let c = write_config(
        tmp.path(),
        "k.toml",
        &format!(
            "[input]\npaths = [{}]\n[[steps]]\ntype = \"length\"\nmin_words = 1\n",
            q(&input)
        ),
    );
    let e = run_err(&["validate", "--config", s(&c)]);
    assert!(e.contains("a name curate reserves"), "{e}");
    assert!(e.contains("[input] columns"), "{e}");
    // leaving it out works
    let c = write_config(
        tmp.path(),
        "k2.toml",
        &format!(
            "[input]\npaths = [{}]\ncolumns = [\"text\", \"id\"]\n[[steps]]\ntype = \"length\"\nmin_words = 1\n",
            q(&input)
        ),
    );
    run_ok(&["validate", "--config", s(&c)]);
    // an exclusion column named like the input's
    let input = input_with(tmp.path(), &["reason"]);
    let c = write_config(
        tmp.path(),
        "r.toml",
        &format!(
            "[input]\npaths = [{}]\n[[steps]]\ntype = \"length\"\nmin_words = 1\n[output]\nexclusion = true\n",
            q(&input)
        ),
    );
    let e = run_err(&["validate", "--config", s(&c)]);
    assert!(
        e.contains("the exclusion files add a column `reason`"),
        "{e}"
    );
}

/// sample → label (the offline reference teacher) → train → score, over `input`.
fn quality_steps(extra: &str) -> String {
    let reference = curate_testkit::repo_root().join("configs/quickstart/reference.jsonl");
    format!(
        "[[steps]]\ntype = \"sample\"\nsize = 120\nholdout = 0.25\n{extra}\n\
         [[steps]]\ntype = \"label\"\nannotator = \"reference\"\nreference = {}\nmax_reference_docs = 80\n{extra}\n\
         [[steps]]\ntype = \"train\"\n\
         [[steps]]\ntype = \"score\"\n{extra}\n",
        q(&reference)
    )
}

#[test]
fn a_curate_snapshot_can_be_curated_again() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, _) = corpus_slice(tmp.path(), 300, 150);
    let first = tmp.path().join("first");
    let c = write_config(
        tmp.path(),
        "a.toml",
        &format!("[input]\npaths = [{}]\n{}", q(&input), quality_steps("")),
    );
    run_ok(&["run", "-q", "--config", s(&c), "--output", s(&first)]);
    let data = format!("{}/data/*.parquet", first.display());
    // the same steps again: split, teacher_score and quality_score exist already
    let again = write_config(
        tmp.path(),
        "b.toml",
        &format!("[input]\npaths = [{data:?}]\n{}", quality_steps("")),
    );
    let e = run_err(&["validate", "--config", s(&again)]);
    for col in ["split", "teacher_score", "quality_score"] {
        assert!(
            e.contains(&format!("adds column `{col}`, which the input already has")),
            "{e}"
        );
    }
    // documented way out 1: overwrite them
    let over = write_config(
        tmp.path(),
        "c.toml",
        &format!(
            "[input]\npaths = [{data:?}]\n{}",
            quality_steps("overwrite = true")
        ),
    );
    let second = tmp.path().join("second");
    run_ok(&["run", "-q", "--config", s(&over), "--output", s(&second)]);
    assert_verifies(&second, "re-curated with overwrite");
    // documented way out 2: keep the old columns, write new ones under other names
    let reference = curate_testkit::repo_root().join("configs/quickstart/reference.jsonl");
    let renamed = write_config(
        tmp.path(),
        "d.toml",
        &format!(
            "[input]\npaths = [{data:?}]\n\
             [[steps]]\ntype = \"sample\"\nsize = 40\ncolumn = \"split2\"\n\
             [[steps]]\ntype = \"label\"\nannotator = \"reference\"\nreference = {}\nmax_reference_docs = 80\nsplit_column = \"split2\"\ncolumn = \"teacher2\"\n\
             [[steps]]\ntype = \"train\"\nlabel_column = \"teacher2\"\nsplit_column = \"split2\"\n\
             [[steps]]\ntype = \"score\"\ncolumn = \"quality2\"\n",
            q(&reference)
        ),
    );
    let third = tmp.path().join("third");
    run_ok(&["run", "-q", "--config", s(&renamed), "--output", s(&third)]);
    let b = read_dir_batches(&third.join("data"));
    let names: Vec<String> = b[0]
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    for col in [
        "split",
        "teacher_score",
        "quality_score",
        "split2",
        "teacher2",
        "quality2",
    ] {
        assert!(names.contains(&col.to_string()), "{col} in {names:?}");
    }
}

// ---- 3. one writer per snapshot --------------------------------------------------------------

/// A corpus large enough that a run lasts a moment (a few hundred ms).
fn busy_input(dir: &Path) -> (PathBuf, Vec<String>) {
    corpus_slice(dir, 3000, 250)
}

fn spawn(args: &[&str]) -> std::process::Child {
    curate()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Every kept document has at least `min_words` whitespace words.
fn all_have_min_words(out: &Path, min_words: usize) -> bool {
    read_dir_batches(&out.join("data")).iter().all(|b| {
        let t = b.column_by_name("text").unwrap().as_string::<i32>();
        (0..t.len()).all(|i| t.value(i).split_whitespace().count() >= min_words)
    })
}

#[test]
fn two_writers_never_produce_a_mixed_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, _) = busy_input(tmp.path());
    let a = write_config(
        tmp.path(),
        "a.toml",
        &format!(
            "[input]\npaths = [{}]\n[[steps]]\ntype = \"length\"\nmin_words = 10\n[[steps]]\ntype = \"exact_dedup\"\n[output]\nexclusion = true\n",
            q(&input)
        ),
    );
    let b = write_config(
        tmp.path(),
        "b.toml",
        &format!(
            "[input]\npaths = [{}]\n[[steps]]\ntype = \"length\"\nmin_words = 60\n[[steps]]\ntype = \"exact_dedup\"\n[output]\nexclusion = true\n",
            q(&input)
        ),
    );
    let mut refusals = 0;
    for (trial, delay_ms) in [0u64, 50, 150, 300, 600].into_iter().enumerate() {
        let out = tmp.path().join(format!("out-{trial}"));
        let mut first = spawn(&[
            "run",
            "-q",
            "-j",
            "1",
            "--config",
            s(&a),
            "--output",
            s(&out),
        ]);
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let second = curate().args(fresh_args(&b, &out)).output().unwrap();
        let first_ok = first.wait().unwrap().success();
        let err = String::from_utf8_lossy(&second.stderr);
        if !second.status.success() {
            assert!(
                err.contains("is in use by `curate run`"),
                "trial {trial}: {err}"
            );
            assert!(err.contains("pid "), "the holder is named: {err}");
            refusals += 1;
        }
        // whatever happened, what is there verifies and matches exactly one config
        if out.join("manifest.json").exists() {
            assert_verifies(&out, &format!("trial {trial}"));
            let m = manifest(&out);
            let min = m["config"]["steps"][0]["min_words"].as_u64().unwrap() as usize;
            assert!(
                all_have_min_words(&out, min),
                "trial {trial}: data of another config"
            );
            if second.status.success() {
                assert_eq!(min, 60, "trial {trial}: the later run's config");
            }
        } else {
            assert!(
                !first_ok || !second.status.success(),
                "trial {trial}: no snapshot"
            );
        }
    }
    assert!(
        refusals > 0,
        "the lock refused at least one overlapping writer"
    );
}

#[test]
fn cluster_tasks_share_the_directory_but_not_with_a_run() {
    let tmp = tempfile::tempdir().unwrap();
    let input = small_input(tmp.path(), 50, 10);
    let cfg = length_config(tmp.path(), "c.toml", &input, 3, "");
    let out = tmp.path().join("out");
    // a task before the run was started is refused with the way to start it
    let e = run_err(&[
        "task",
        "--config",
        s(&cfg),
        "--output",
        s(&out),
        "--stage",
        "pass-0",
        "--index",
        "0",
    ]);
    assert!(
        e.contains("no run was started here") && e.contains("curate plan"),
        "{e}"
    );
    run_ok(&["plan", "--config", s(&cfg), "--output", s(&out)]);
    let plan: serde_json::Value = serde_json::from_slice(
        &curate()
            .args(["plan", "--config", s(&cfg), "--output", s(&out)])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    for st in plan["stages"].as_array().unwrap() {
        let name = st["name"].as_str().unwrap();
        for i in 0..st["tasks"].as_u64().unwrap() {
            run_ok(&[
                "task",
                "--config",
                s(&cfg),
                "--output",
                s(&out),
                "--stage",
                name,
                "--index",
                &i.to_string(),
            ]);
        }
    }
    assert_verifies(&out, "tasks one by one");
}

// ---- 4. a kill in assemble leaves temp files: resume removes them ---------------------------

#[test]
fn a_resumed_run_removes_the_temp_files_a_kill_left_and_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let input = small_input(tmp.path(), 60, 10);
    let cfg = length_config(tmp.path(), "c.toml", &input, 8, "[run]\nkeep_work = true\n");
    let out = tmp.path().join("out");
    run_ok(&["run", "-q", "--config", s(&cfg), "--output", s(&out)]);
    // the state SIGKILL in assemble leaves: temp files beside the outputs, no finalize
    let done = done_dir(&out);
    std::fs::remove_dir_all(done.join("finalize")).unwrap();
    std::fs::remove_dir_all(done.join("assemble")).unwrap();
    std::fs::remove_file(out.join("manifest.json")).unwrap();
    std::fs::write(out.join("data/.part-00000.parquet.999999-0.tmp"), b"half").unwrap();
    std::fs::write(
        out.join("excluded/.part-00000.parquet.999999-0.tmp"),
        b"half",
    )
    .unwrap();
    run_ok(&["run", "-q", "--config", s(&cfg), "--output", s(&out)]);
    assert!(!out.join("data/.part-00000.parquet.999999-0.tmp").exists());
    assert!(
        !out.join("excluded/.part-00000.parquet.999999-0.tmp")
            .exists()
    );
    assert_verifies(&out, "after resume");
}

// ---- 7. never write through a link -----------------------------------------------------------

/// `--fresh` deletes only what a run writes: files a user added next to a snapshot (or a
/// directory that merely has a `.curate/` in it) make it refuse, naming them, and touch nothing.
#[test]
fn fresh_never_deletes_what_curate_did_not_write() {
    let tmp = tempfile::tempdir().unwrap();
    let input = small_input(tmp.path(), 40, 10);
    let cfg = length_config(tmp.path(), "c.toml", &input, 3, "");
    let out = tmp.path().join("out");
    let fresh = fresh_args(&cfg, &out);
    run_ok(&["run", "-q", "--config", s(&cfg), "--output", s(&out)]);
    let digest = std::fs::read(out.join("manifest.json")).unwrap();
    std::fs::write(out.join("NOTES.md"), b"mine").unwrap();
    std::fs::create_dir(out.join("evals")).unwrap();
    std::fs::write(out.join("evals/results.json"), b"{}").unwrap();
    let e = run_err(&fresh);
    assert!(
        e.contains("--fresh would delete what curate did not write")
            && e.contains("NOTES.md, evals"),
        "{e}"
    );
    assert_eq!(std::fs::read(out.join("NOTES.md")).unwrap(), b"mine");
    assert!(out.join("evals/results.json").exists());
    assert_eq!(
        std::fs::read(out.join("manifest.json")).unwrap(),
        digest,
        "snapshot untouched"
    );
    // moved away, --fresh starts over
    std::fs::remove_file(out.join("NOTES.md")).unwrap();
    std::fs::remove_dir_all(out.join("evals")).unwrap();
    run_ok(&fresh);
    assert!(!out.join(".curate/clearing").exists());
    // a --fresh killed while it cleared (its marker left): a plain run refuses, --fresh redoes it
    std::fs::write(out.join(".curate/clearing"), b"").unwrap();
    std::fs::remove_file(out.join(".curate/state.json")).unwrap();
    let e = run_err(&["run", "-q", "--config", s(&cfg), "--output", s(&out)]);
    assert!(e.contains("--fresh` was interrupted"), "{e}");
    run_ok(&fresh);
    run_ok(&["snapshot", "verify", s(&out)]);
    // a project directory that only has a `.curate/` in it
    let proj = tmp.path().join("proj");
    std::fs::create_dir_all(proj.join(".curate")).unwrap();
    std::fs::create_dir_all(proj.join("src")).unwrap();
    std::fs::write(proj.join("src/main.rs"), b"fn main() {}").unwrap();
    let e = run_err(&fresh_args(&cfg, &proj));
    assert!(e.contains(": src;"), "{e}");
    assert!(proj.join("src/main.rs").exists());
}

#[test]
fn a_symlinked_directory_inside_a_run_is_never_written_through() {
    let tmp = tempfile::tempdir().unwrap();
    let input = small_input(tmp.path(), 40, 10);
    let cfg = length_config(tmp.path(), "c.toml", &input, 3, "");
    let out = tmp.path().join("out");
    run_ok(&["run", "-q", "--config", s(&cfg), "--output", s(&out)]);
    let elsewhere = tmp.path().join("precious");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("part-00000.parquet"), b"precious").unwrap();
    std::fs::remove_dir_all(out.join("data")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, out.join("data")).unwrap();
    let e = run_err(&fresh_args(&cfg, &out));
    assert!(e.contains("symbolic link inside the run directory"), "{e}");
    assert_eq!(
        std::fs::read(elsewhere.join("part-00000.parquet")).unwrap(),
        b"precious"
    );
}

// ---- 8. verify covers the whole snapshot -----------------------------------------------------

#[test]
fn verify_checks_the_manifest_itself_and_every_file() {
    let tmp = tempfile::tempdir().unwrap();
    let input = small_input(tmp.path(), 60, 10);
    let cfg = length_config(tmp.path(), "c.toml", &input, 8, "");
    let out = tmp.path().join("out");
    let ran = run_ok(&["run", "-q", "--config", s(&cfg), "--output", s(&out)]);
    let digest = ran.split("manifest ").nth(1).unwrap()[..16].to_string();
    let v = run_ok(&["snapshot", "verify", s(&out)]);
    assert!(
        v.contains(&format!("manifest {digest}")),
        "verify prints run's digest: {v}"
    );
    let copy = |name: &str| {
        let d = tmp.path().join(name);
        let o = Command::new("cp")
            .args(["-a"])
            .arg(&out)
            .arg(&d)
            .status()
            .unwrap();
        assert!(o.success());
        d
    };
    // an edited count (the manifest's own hash no longer matches; the counts do not add up)
    let d = copy("edited");
    let m = std::fs::read_to_string(d.join("manifest.json")).unwrap();
    let kept = manifest(&out)["totals"]["kept_rows"].as_u64().unwrap();
    let edited = m.replacen(
        &format!("\"kept_rows\": {kept}"),
        &format!("\"kept_rows\": {}", kept + 1),
        1,
    );
    assert_ne!(m, edited);
    std::fs::write(d.join("manifest.json"), edited).unwrap();
    let e = run_err(&["snapshot", "verify", s(&d)]);
    assert!(e.contains("it was edited"), "{e}");
    assert!(e.contains("do not add up") || e.contains("!="), "{e}");
    let e = run_err(&["stats", s(&d)]);
    assert!(e.contains("do not add up"), "{e}");
    // a field added, or only the formatting changed: the hash is over the file's bytes
    for (name, edit) in [
        (
            "added",
            m.replacen("{\n", "{\n  \"note\": \"hand-made\",\n", 1),
        ),
        ("newline", format!("{m}\n")),
        (
            "indent",
            m.replacen("\n  \"format\"", "\n    \"format\"", 1),
        ),
    ] {
        assert_ne!(m, edit, "{name}");
        let d = copy(name);
        std::fs::write(d.join("manifest.json"), edit).unwrap();
        let e = run_err(&["snapshot", "verify", s(&d)]);
        assert!(e.contains("it was edited"), "{name}: {e}");
    }
    // a listed file, or a directory on its way, replaced by a symbolic link to the same bytes
    let part = manifest(&out)["outputs"][0]["path"]
        .as_str()
        .unwrap()
        .to_string();
    let d = copy("linked-file");
    let away = tmp.path().join("away.parquet");
    std::fs::rename(d.join(&part), &away).unwrap();
    std::os::unix::fs::symlink(&away, d.join(&part)).unwrap();
    let e = run_err(&["snapshot", "verify", s(&d)]);
    assert!(e.contains(&format!("{part} is a symbolic link")), "{e}");
    let d = copy("linked-dir");
    let away = tmp.path().join("away-data");
    std::fs::rename(d.join("data"), &away).unwrap();
    std::os::unix::fs::symlink(&away, d.join("data")).unwrap();
    let e = run_err(&["snapshot", "verify", s(&d)]);
    assert!(e.contains("data is a symbolic link"), "{e}");
    // an edited stats.json
    let d = copy("stats");
    std::fs::write(d.join("stats.json"), "{}").unwrap();
    let e = run_err(&["snapshot", "verify", s(&d)]);
    assert!(e.contains("stats.json"), "{e}");
    // an extra file anywhere
    let d = copy("extra");
    std::fs::create_dir_all(d.join("model")).unwrap();
    std::fs::write(d.join("model/extra.bin"), b"x").unwrap();
    let e = run_err(&["snapshot", "verify", s(&d)]);
    assert!(
        e.contains("model/extra.bin: not listed in the manifest"),
        "{e}"
    );
}

// ---- 9. configs that validate but make no sense ---------------------------------------------

#[test]
fn thresholds_outside_their_scale_and_scores_of_the_wrong_type_are_config_problems() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, _) = corpus_slice(tmp.path(), 100, 100);
    let reference = curate_testkit::repo_root().join("configs/quickstart/reference.jsonl");
    let c = write_config(
        tmp.path(),
        "t.toml",
        &format!(
            "[input]\npaths = [{}]\n[[steps]]\ntype = \"sample\"\nsize = 50\n\
             [[steps]]\ntype = \"label\"\nannotator = \"reference\"\nreference = {}\n\
             [[steps]]\ntype = \"train\"\n[[steps]]\ntype = \"score\"\nkeep = {{ threshold = 10 }}\n",
            q(&input),
            q(&reference)
        ),
    );
    let e = run_err(&["validate", "--config", s(&c)]);
    assert!(
        e.contains("threshold 10 is outside the model's score scale 0–1"),
        "{e}"
    );
    // quality_threshold and minhash keep = "highest" on a string column
    let input = input_with(tmp.path(), &["quality_score"]);
    let c = write_config(
        tmp.path(),
        "s.toml",
        &format!(
            "[input]\npaths = [{}]\n[[steps]]\ntype = \"quality_threshold\"\nkeep = {{ threshold = 0.5 }}\n\
             [[steps]]\ntype = \"minhash_dedup\"\nkeep = \"highest\"\nscore_column = \"quality_score\"\n",
            q(&input)
        ),
    );
    let e = run_err(&["validate", "--config", s(&c)]);
    assert!(
        e.contains("steps[0] (quality_threshold): `column`: needs a numeric column"),
        "{e}"
    );
    assert!(
        e.contains("steps[1] (minhash_dedup): `score_column`: needs a numeric column"),
        "{e}"
    );
}

#[test]
fn absurd_thread_counts_are_refused_or_capped() {
    let tmp = tempfile::tempdir().unwrap();
    let input = small_input(tmp.path(), 30, 10);
    let cfg = length_config(tmp.path(), "c.toml", &input, 3, "[run]\nthreads = 100000\n");
    let e = run_err(&["validate", "--config", s(&cfg)]);
    assert!(e.contains("run: `threads`: 100000 is out of range"), "{e}");
    let cfg = length_config(tmp.path(), "d.toml", &input, 3, "");
    let out = tmp.path().join("out");
    let o = curate()
        .args([
            "run",
            "-q",
            "--threads",
            "100000",
            "--config",
            s(&cfg),
            "--output",
            s(&out),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("lowered to"));
}

// ---- 10. only what changes output bytes is in the fingerprint -------------------------------

#[test]
fn changing_a_memory_limit_resumes_without_fresh() {
    let tmp = tempfile::tempdir().unwrap();
    let input = small_input(tmp.path(), 60, 10);
    let cfg = |limit: &str| {
        write_config(
            tmp.path(),
            "c.toml",
            &format!(
                "[input]\npaths = [{}]\n[[steps]]\ntype = \"minhash_dedup\"\nmemory_limit = \"{limit}\"\n",
                q(&input)
            ),
        )
    };
    let out = tmp.path().join("out");
    run_ok(&[
        "run",
        "-q",
        "--config",
        s(&cfg("64MiB")),
        "--output",
        s(&out),
    ]);
    let before = std::fs::read(out.join("manifest.json")).unwrap();
    let e = run_ok(&[
        "run",
        "-q",
        "--config",
        s(&cfg("1GiB")),
        "--output",
        s(&out),
    ]);
    assert!(e.contains("resumed past"), "{e}");
    assert_eq!(std::fs::read(out.join("manifest.json")).unwrap(), before);
}

// ---- 12. messages that say what happened -----------------------------------------------------

#[test]
fn a_config_change_refusal_names_the_fields_that_changed() {
    let tmp = tempfile::tempdir().unwrap();
    let input = small_input(tmp.path(), 30, 10);
    let out = tmp.path().join("out");
    let a = length_config(tmp.path(), "a.toml", &input, 3, "");
    run_ok(&["run", "-q", "--config", s(&a), "--output", s(&out)]);
    let b = length_config(tmp.path(), "b.toml", &input, 5, "[run]\nseed = 9\n");
    let e = run_err(&["run", "-q", "--config", s(&b), "--output", s(&out)]);
    assert!(e.contains("steps[0] (length).min_words: 3 → 5"), "{e}");
    assert!(e.contains("run.seed: 42 → 9"), "{e}");
}

#[test]
fn a_damaged_state_file_is_named_and_cleared_by_fresh() {
    let tmp = tempfile::tempdir().unwrap();
    let input = small_input(tmp.path(), 30, 10);
    let out = tmp.path().join("out");
    let a = length_config(tmp.path(), "a.toml", &input, 3, "");
    run_ok(&["run", "-q", "--config", s(&a), "--output", s(&out)]);
    std::fs::write(out.join(".curate/state.json"), b"{ not json").unwrap();
    let e = run_err(&["run", "-q", "--config", s(&a), "--output", s(&out)]);
    assert!(
        e.contains("damaged run state") && e.contains("--fresh"),
        "{e}"
    );
    run_ok(&fresh_args(&a, &out));
    assert_verifies(&out, "after --fresh");
}

#[test]
fn a_missing_column_is_reported_once_at_plan_time() {
    let tmp = tempfile::tempdir().unwrap();
    let input = small_input(tmp.path(), 30, 10);
    let c = write_config(
        tmp.path(),
        "u.toml",
        &format!(
            "[input]\npaths = [{}]\n[[steps]]\ntype = \"url_filter\"\n[[steps]]\ntype = \"sample\"\nsize = 5\nstrata = [\"domain\"]\n",
            q(&input)
        ),
    );
    let out = tmp.path().join("out");
    let e = run_err(&["run", "-q", "--config", s(&c), "--output", s(&out)]);
    assert_eq!(e.matches("`url`").count(), 1, "{e}");
    assert!(
        e.contains("steps[0] (url_filter): `url_column`: needs a string column `url`"),
        "{e}"
    );
    assert!(
        e.contains("steps[1] (sample): `strata`: needs a string or integer column `domain`"),
        "{e}"
    );
    assert!(!e.contains("task 0"), "not per task: {e}");
    assert!(!out.join("data").exists());
}

// ---- 16. the id column ---------------------------------------------------------------------

#[test]
fn an_id_column_is_found_and_said() {
    let tmp = tempfile::tempdir().unwrap();
    let input = small_input(tmp.path(), 30, 10);
    let c = length_config(tmp.path(), "c.toml", &input, 3, "");
    let e = run_ok(&["validate", "--config", s(&c)]);
    assert!(e.contains("id column: `id` (found in the input"), "{e}");
    let out = tmp.path().join("out");
    run_ok(&["run", "-q", "--config", s(&c), "--output", s(&out)]);
    assert_eq!(manifest(&out)["config"]["input"]["id_column"], "id");
}

// ---- 17. a full disk --------------------------------------------------------------------------

/// The quick start on a file system that fills up: a tmpfs (mounted in a private user and mount
/// namespace, so no privilege is needed) grown from 5 to 11, 13 and 16 MB fails at different
/// points of the run (the first pass, exact dedup's groups, the student's training pass, its
/// fit), each time naming the files it could not write, each task once, with a hint; it leaves
/// no temp file behind; grown to 64 MB, the same command resumes to the snapshot a run with room
/// makes, byte for byte.
#[test]
fn a_full_disk_fails_cleanly_and_the_same_command_resumes() {
    let probe = Command::new("unshare")
        .args(["-rm", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /tmp"])
        .output();
    if !probe.as_ref().is_ok_and(|o| o.status.success()) {
        eprintln!(
            "SKIPPED a_full_disk_fails_cleanly_and_the_same_command_resumes: cannot mount a tmpfs in a user namespace here ({})",
            probe.map_or_else(
                |e| e.to_string(),
                |o| String::from_utf8_lossy(&o.stderr).into_owned()
            )
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let repo = curate_testkit::repo_root();
    let want = tmp.path().join("want");
    let o = curate()
        .current_dir(&repo)
        .args([
            "run",
            "-q",
            "--config",
            "configs/quickstart.toml",
            "--output",
            s(&want),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mnt = tmp.path().join("mnt");
    let got = tmp.path().join("got");
    std::fs::create_dir(&mnt).unwrap();
    // each attempt: its exit code, its stderr and the files it left, between markers
    let script = r#"
set -u
mount -t tmpfs -o size=1m tmpfs "$MNT" || exit 90
for sz in 5m 11m 13m 16m 64m; do
  mount -o remount,size=$sz "$MNT" || exit 91
  "$CURATE" run -q --config configs/quickstart.toml --output "$MNT/out" >/dev/null 2>"$MNT/../err"
  echo "=== $sz rc=$?"
  cat "$MNT/../err"
  echo "--- files"
  (cd "$MNT/out" && find . -type f)
done
cp -a "$MNT/out" "$GOT"
"#;
    let o = Command::new("unshare")
        .args(["-rm", "sh", "-c", script])
        .current_dir(&repo)
        .env("MNT", &mnt)
        .env("GOT", &got)
        .env("CURATE", env!("CARGO_BIN_EXE_curate"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let attempts: Vec<&str> = out.split("=== ").skip(1).collect();
    assert_eq!(attempts.len(), 5, "{out}");
    for a in &attempts {
        let (head, files) = a.split_once("--- files").unwrap();
        let size = head.split_whitespace().next().unwrap();
        for f in files.lines().filter(|l| !l.is_empty()) {
            let name = f.rsplit('/').next().unwrap();
            assert!(
                !curate_io::atomic::is_temp_name(name),
                "{size}: a temp file was left: {f}"
            );
        }
        if size == "64m" {
            assert!(head.contains("rc=0"), "{a}");
            continue;
        }
        assert!(head.contains("rc=1"), "{size}: {a}");
        assert!(head.contains("No space left on device"), "{size}: {a}");
        assert!(
            head.contains(&format!("{}", mnt.join("out").display())),
            "{size}: names the file: {a}"
        );
        assert!(head.contains("hint: a file system is full"), "{size}: {a}");
        let mut tasks = 0;
        for line in head.lines().filter(|l| l.contains(" task ")) {
            let from = line.find("stage ").unwrap();
            let at = &line[from..from + line[from..].find(':').unwrap()];
            assert_eq!(
                line.matches(at).count(),
                1,
                "{size}: the task said twice: {line}"
            );
            tasks += 1;
        }
        assert!(tasks > 0, "{size}: {a}");
    }
    // the attempts failed at different points
    let points: std::collections::BTreeSet<String> = attempts[..4]
        .iter()
        .map(|a| {
            let l = a.lines().find(|l| l.contains(" task ")).unwrap();
            l[l.find("stage ").unwrap()..]
                .split(" task ")
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(points.len() >= 3, "failed in {points:?}");
    assert_same_snapshot(&got, &want, "resumed after a full disk");
}

// ---- 18. every Arrow string type ------------------------------------------------------------

/// A column of any Arrow string type — `large_string`, `string_view`, dictionary-encoded, as
/// pyarrow writes them — is read as the plain strings it holds: every step that reads it (here
/// `url_filter` on a `large_string` URL, the id as a dictionary, the text as a view) runs, and
/// the snapshot's data and exclusions are byte-identical to those of the same documents written
/// with plain strings. (`url_filter` accepted such a column when planning, then failed every task
/// with "column `url` is not a string column".)
#[test]
fn every_arrow_string_type_reads_as_plain_strings() {
    let tmp = tempfile::tempdir().unwrap();
    let plain_dir = tmp.path().join("plain");
    let odd_dir = tmp.path().join("odd");
    std::fs::create_dir_all(&plain_dir).unwrap();
    std::fs::create_dir_all(&odd_dir).unwrap();
    let (plain, _) = corpus_slice(&plain_dir, 80, 25);
    let batches = read_files(std::slice::from_ref(&plain));
    let b = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
    let dict = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    let odd_types = [
        ("text", DataType::Utf8View),
        ("id", dict.clone()),
        ("url", DataType::LargeUtf8),
        ("language", dict),
    ];
    let (fields, cols): (Vec<Field>, Vec<ArrayRef>) = odd_types
        .iter()
        .map(|(name, t)| {
            let c = arrow::compute::cast(b.column_by_name(name).unwrap(), t).unwrap();
            (Field::new(*name, t.clone(), false), c)
        })
        .unzip();
    let odd = odd_dir.join("input.parquet");
    write_batch(
        &odd,
        RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap(),
        25,
    );
    let steps = "[[steps]]\ntype = \"url_filter\"\n[[steps]]\ntype = \"length\"\nmin_words = 30\n\
                 [[steps]]\ntype = \"exact_dedup\"\n[output]\nexclusion = true\n";
    let mut outs = Vec::new();
    for (dir, input) in [(&plain_dir, &plain), (&odd_dir, &odd)] {
        let c = write_config(
            dir,
            "c.toml",
            &format!(
                "[input]\npaths = [{}]\nid_column = \"id\"\n{steps}",
                q(input)
            ),
        );
        let out = dir.join("out");
        run_config_ok(&c, &out);
        outs.push(out);
    }
    let data = assert_same_data(&outs[1], &outs[0], "string types");
    assert!(
        data.iter().any(|n| n.starts_with("excluded/")),
        "nothing excluded: {data:?}"
    );
    let m = manifest(&outs[1]);
    assert_eq!(m["totals"]["input_rows"], 80, "{m}");
    assert_verifies(&outs[1], "odd string types");
}

/// `[input] flatten`: datatrove's JSONL (`text`, `id`, `media`, and a `metadata` object holding
/// `url`, `language` and the rest) runs through the FineWeb preset — whose `url_filter` needs a
/// `url` column — with `flatten = ["metadata"]`, and gives the very data and exclusion files of
/// the same documents as a flat parquet file. What cannot be flattened is a config problem, all
/// of it at once, before any data is read.
#[test]
fn datatrove_jsonl_metadata_flattens_into_columns() {
    let tmp = tempfile::tempdir().unwrap();
    let flat_dir = tmp.path().join("flat");
    std::fs::create_dir_all(&flat_dir).unwrap();
    let (slice, _) = corpus_slice(&flat_dir, 120, 40);
    let batches = read_files(std::slice::from_ref(&slice));
    // the flat file as JSONL's columns are: nullable
    let nullable = Arc::new(Schema::new(
        batches[0]
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<_>>(),
    ));
    let flat = flat_dir.join("flat.parquet");
    let all = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
    write_batch(
        &flat,
        RecordBatch::try_new(nullable, all.columns().to_vec()).unwrap(),
        40,
    );
    let mut jsonl = String::new();
    for b in &batches {
        let col = |n: &str| b.column_by_name(n).unwrap().as_string::<i32>().clone();
        let (text, id, url, lang) = (col("text"), col("id"), col("url"), col("language"));
        for i in 0..b.num_rows() {
            let doc = serde_json::json!({
                "text": text.value(i),
                "id": id.value(i),
                "media": [],
                "metadata": { "url": url.value(i), "language": lang.value(i) },
            });
            jsonl.push_str(&doc.to_string());
            jsonl.push('\n');
        }
    }
    let dt = tmp.path().join("datatrove.jsonl");
    std::fs::write(&dt, jsonl).unwrap();
    let steps = "[[steps]]\npreset = \"fineweb\"\n[[steps]]\ntype = \"exact_dedup\"\n\
                 [output]\nexclusion = true\n";
    let flat_cfg = write_config(
        tmp.path(),
        "flat.toml",
        &format!("[input]\npaths = [{}]\n{steps}", q(&flat)),
    );
    let dt_cfg = write_config(
        tmp.path(),
        "dt.toml",
        &format!(
            "[input]\npaths = [{}]\nflatten = [\"metadata\"]\n\
             columns = [\"text\", \"id\", \"url\", \"language\"]\n{steps}",
            q(&dt)
        ),
    );
    let (flat_out, dt_out) = (tmp.path().join("flat_out"), tmp.path().join("dt_out"));
    run_config_ok(&flat_cfg, &flat_out);
    run_config_ok(&dt_cfg, &dt_out);
    assert_same_data(&dt_out, &flat_out, "flattened datatrove JSONL");
    assert_eq!(
        manifest(&dt_out)["config"]["input"]["flatten"][0],
        "metadata"
    );
    assert_verifies(&dt_out, "flattened");

    // without `flatten` the preset cannot find `url`; with a bad one, every problem is said
    let no_flatten = write_config(
        tmp.path(),
        "none.toml",
        &format!("[input]\npaths = [{}]\n{steps}", q(&dt)),
    );
    let e = run_err(&["validate", "--config", s(&no_flatten)]);
    assert!(e.contains("needs a string column `url`"), "{e}");
    let bad = write_config(
        tmp.path(),
        "bad.toml",
        &format!(
            "[input]\npaths = [{}]\nflatten = [\"metadata\", \"media\", \"nope\"]\n\
             [[steps]]\ntype = \"length\"\nmin_words = 1\n",
            q(&dt)
        ),
    );
    let e = run_err(&["validate", "--config", s(&bad)]);
    assert!(e.contains("`flatten`"), "{e}");
    assert!(e.contains("column `media` is"), "{e}");
    assert!(e.contains("not a struct"), "{e}");
    assert!(e.contains("column `nope` is missing"), "{e}");
    let clash = tmp.path().join("clash.jsonl");
    std::fs::write(
        &clash,
        "{\"text\":\"a b c\",\"url\":\"http://x\",\"metadata\":{\"url\":\"http://y\"}}\n",
    )
    .unwrap();
    let c = write_config(
        tmp.path(),
        "clash.toml",
        &format!(
            "[input]\npaths = [{}]\nflatten = [\"metadata\"]\n[[steps]]\ntype = \"length\"\nmin_words = 1\n",
            q(&clash)
        ),
    );
    let out = tmp.path().join("clash_out");
    let e = run_config_err(&c, &out);
    assert!(e.contains("two columns named `url`"), "{e}");
    assert!(!out.join("data").exists());
}
