//! The fastText steps through the real binary: a classifier's score column and drops on real
//! documents, and bad model files refused when the steps are built, before any data is read,
//! with messages that name the step, the file and what is wrong.

use crate::common;

use std::path::{Path, PathBuf};

use arrow::array::AsArray;
use arrow::datatypes::Float32Type;
use common::*;

fn lid176() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../curate-fasttext/models/lid.176.ftz")
}

#[test]
fn classifier_scores_and_filters() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, _) = corpus_slice(tmp.path(), 300, 100);
    // lid.176 as a classifier of "English": a real fastText model with a real label
    let cfg = write_config(
        tmp.path(),
        "cls.toml",
        &format!(
            "[input]\npaths = [{}]\nid_column = \"id\"\n\n[[steps]]\ntype = \"fasttext_classifier\"\n\
             model = {}\nlabel = \"en\"\nthreshold = 0.5\ncolumn = \"en_score\"\n\n[output]\nexclusion = true\n",
            q(&input),
            q(&lid176())
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
    let t = &m["totals"];
    let (kept, dropped) = (
        t["kept_rows"].as_u64().unwrap(),
        t["dropped_rows"].as_u64().unwrap(),
    );
    assert_eq!(kept + dropped, 300, "{t}");
    assert!(kept > 0 && dropped > 0, "{t}");
    for b in read_dir_batches(&out.join("data")) {
        let s = b
            .column_by_name("en_score")
            .unwrap()
            .as_primitive::<Float32Type>();
        assert!(s.values().iter().all(|&v| v >= 0.5), "{s:?}");
    }
    for b in read_dir_batches(&out.join("excluded")) {
        let r = b.column_by_name("reason").unwrap().as_string::<i32>();
        assert!(
            r.iter()
                .all(|r| matches!(r, Some("fasttext_classifier" | "empty")))
        );
    }
}

#[test]
fn bad_models_fail_at_build_with_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, _) = corpus_slice(tmp.path(), 20, 20);
    let good = std::fs::read(lid176()).unwrap();
    let truncated = tmp.path().join("truncated.ftz");
    std::fs::write(&truncated, &good[..good.len() / 2]).unwrap();
    let magic = tmp.path().join("magic.bin");
    std::fs::write(&magic, b"PK\x03\x04 this is a zip, not a model").unwrap();
    let version = tmp.path().join("version.bin");
    let mut v = good.clone();
    v[4..8].copy_from_slice(&99i32.to_le_bytes());
    std::fs::write(&version, v).unwrap();
    let cases: [(String, &[&str]); 5] = [
        (
            format!("type = \"language\"\nmodel = {}", q(&truncated)),
            &[
                "steps[0] (language)",
                "truncated.ftz",
                "truncated model",
                "the input matrix",
            ],
        ),
        (
            format!("type = \"language\"\nmodel = {}", q(&magic)),
            &["steps[0] (language)", "magic.bin", "not a fastText model"],
        ),
        (
            format!(
                "type = \"fasttext_classifier\"\nmodel = {}\nlabel = \"hq\"\nthreshold = 0.5",
                q(&version)
            ),
            &[
                "steps[0] (fasttext_classifier)",
                "version.bin",
                "version 99 is not supported",
            ],
        ),
        (
            // a language model used as a classifier without the named label
            format!(
                "type = \"fasttext_classifier\"\nmodel = {}\nlabel = \"hq\"\nthreshold = 0.5",
                q(&lid176())
            ),
            &[
                "steps[0] (fasttext_classifier)",
                "label = \"hq\" is not a label of model",
                "__label__en",
            ],
        ),
        (
            format!(
                "type = \"fasttext_classifier\"\nmodel = {}\nlabel = \"hq\"\nthreshold = 0.5",
                q(&tmp.path().join("absent.bin"))
            ),
            &[
                "steps[0] (fasttext_classifier)",
                "absent.bin",
                "No such file",
            ],
        ),
    ];
    for (step, needles) in cases {
        let cfg = write_config(
            tmp.path(),
            "bad.toml",
            &format!("[input]\npaths = [{}]\n\n[[steps]]\n{step}\n", q(&input)),
        );
        let out = tmp.path().join("out");
        let err = run_err(&[
            "run",
            "--config",
            cfg.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
            "--quiet",
        ]);
        for n in needles {
            assert!(err.contains(n), "missing {n:?} in:\n{err}");
        }
        // refused before anything was written
        assert!(!out.join("data").exists(), "{err}");
    }
    // config-level problems are collected by `validate`, which reads no model
    let cfg = write_config(
        tmp.path(),
        "invalid.toml",
        &format!(
            "[input]\npaths = [{}]\n\n[[steps]]\ntype = \"fasttext_classifier\"\nmodel = \"https://example.com/m.bin\"\nlabel = \"hq\"\n\n\
             [[steps]]\ntype = \"language\"\nlanguages = [\"english\"]\n",
            q(&input)
        ),
    );
    let err = run_err(&["validate", "--config", cfg.to_str().unwrap()]);
    for n in [
        "model",
        "only local paths and s3:// URLs",
        "threshold",
        "languages",
        "\"english\"",
    ] {
        assert!(err.contains(n), "missing {n:?} in:\n{err}");
    }
}
