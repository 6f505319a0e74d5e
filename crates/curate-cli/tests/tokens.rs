//! Training-ready output through the binary: `tokenize` writes Megatron-LM indexed datasets
//! that an independent numpy reader (written from Megatron's published format) reads back as
//! the kept documents' token ids in order; the files are byte-identical for any thread count
//! and task size, with a seeded shuffle and one dataset per `split_by` value; a run killed
//! mid-tokenization resumes to the same bytes; `decontaminate` names the benchmark in the
//! exclusion rows and counts it in the manifest.

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use arrow::array::AsArray;
use common::{corpus_slice, manifest, q, read_dir_batches, run_ok, write_config};

fn config(input: &Path, tokenize: &str, task_size: usize) -> String {
    format!(
        r#"[input]
paths = [{input}]
text_column = "text"
id_column = "id"

[[steps]]
type = "length"
min_words = 30

[[steps]]
type = "tokenize"
tokenizer = "cl100k_base"
{tokenize}

[output]
dir = "unused"
exclusion = true

[run]
seed = 5
task_size = {task_size}
"#,
        input = q(input)
    )
}

fn run(cfg: &Path, out: &Path, threads: &str) {
    let args = vec![
        "run",
        "--quiet",
        "--config",
        cfg.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--threads",
        threads,
    ];
    run_ok(&args);
}

/// Every file under `dir/tokens`, relative path → bytes.
fn token_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, d: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&dir.join("tokens"), &dir.join("tokens"), &mut out);
    out
}

/// The datasets' file prefixes from `tokens/stats.json`, in order.
fn prefixes(dir: &Path) -> Vec<(String, Vec<String>)> {
    let stats: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("tokens/stats.json")).unwrap()).unwrap();
    stats["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["name"].as_str().unwrap().to_string(),
                d["files"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|f| f["prefix"].as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect()
}

/// Reads Megatron files with the independent numpy reader; `None` without the venv.
fn numpy_read(dir: &Path, prefixes: &[String]) -> Option<Vec<Vec<u32>>> {
    read_with("megatron_read.py", dir, prefixes)
}

/// Reads Megatron files with a reader script of `curate-tokens/tests/reference`.
fn read_with(script: &str, dir: &Path, prefixes: &[String]) -> Option<Vec<Vec<u32>>> {
    let py = curate_testkit::reference_python()?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../curate-tokens/tests/reference")
        .join(script);
    let full: Vec<PathBuf> = prefixes
        .iter()
        .map(|p| dir.join("tokens").join(p))
        .collect();
    let o = Command::new(py).arg(script).args(&full).output().unwrap();
    assert!(
        o.status.success(),
        "numpy reader failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut docs = Vec::new();
    for p in &full {
        let f = &v[p.to_str().unwrap()];
        for d in f["documents"].as_array().unwrap() {
            docs.push(
                d.as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_u64().unwrap() as u32)
                    .collect(),
            );
        }
        assert_eq!(f["dtype"], "int32", "cl100k needs int32 tokens");
    }
    Some(docs)
}

/// The kept documents' texts in `data/` order, with their `language`.
fn kept(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for b in read_dir_batches(&dir.join("data")) {
        let t = b.column_by_name("text").unwrap().as_string::<i32>();
        let l = b.column_by_name("language").unwrap().as_string::<i32>();
        for i in 0..b.num_rows() {
            out.push((t.value(i).to_string(), l.value(i).to_string()));
        }
    }
    out
}

fn expected_ids(texts: &[&str]) -> Vec<Vec<u32>> {
    let enc =
        curate_tokens::encoder::Encoder::load("cl100k_base", None, true, false, Path::new("."))
            .unwrap();
    texts
        .iter()
        .map(|t| {
            let mut v = Vec::new();
            enc.encode_into(t, &mut v).unwrap();
            v.push(100_257);
            v
        })
        .collect()
}

#[test]
fn megatron_files_read_back_as_the_kept_documents_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let (input, _) = corpus_slice(dir.path(), 400, 100);
    let cfg = write_config(
        dir.path(),
        "t.toml",
        &config(&input, "shuffle = false\nmax_tokens_per_file = 150_000", 1),
    );
    let out = dir.path().join("out");
    run(&cfg, &out, "2");
    run_ok(&["snapshot", "verify", out.to_str().unwrap()]);

    let kept = kept(&out);
    let texts: Vec<&str> = kept.iter().map(|k| k.0.as_str()).collect();
    let want = expected_ids(&texts);
    let total: u64 = want.iter().map(|d| d.len() as u64).sum();
    let ds = prefixes(&out);
    assert_eq!(ds.len(), 1);
    assert_eq!(ds[0].0, "");
    assert!(ds[0].1.len() >= 2, "150k-token files: {:?}", ds[0].1);

    // stats: per file and in total; every file within the limit
    let stats: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("tokens/stats.json")).unwrap()).unwrap();
    assert_eq!(stats["documents"].as_u64().unwrap(), kept.len() as u64);
    assert_eq!(stats["tokens"].as_u64().unwrap(), total);
    assert_eq!(stats["dtype"], "int32");
    assert_eq!(stats["tokenizer"]["eos_id"], 100_257);
    for f in stats["datasets"][0]["files"].as_array().unwrap() {
        assert!(f["tokens"].as_u64().unwrap() <= 150_000, "{f}");
    }
    // the manifest hashes every token file and carries the stats
    let m = manifest(&out);
    let arts: Vec<&str> = m["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["path"].as_str().unwrap())
        .collect();
    for p in &ds[0].1 {
        assert!(
            arts.contains(&format!("tokens/{p}.bin").as_str()),
            "{arts:?}"
        );
        assert!(arts.contains(&format!("tokens/{p}.idx").as_str()));
    }
    assert!(arts.contains(&"tokens/stats.json"));
    let step = m["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["type"] == "tokenize")
        .unwrap();
    assert_eq!(step["stats"]["tokens"].as_u64().unwrap(), total);
    assert_eq!(step["counters"]["tokens"].as_f64().unwrap() as u64, total);

    // the independent reader sees exactly the kept documents' ids, in order, each + EOS
    let Some(got) = numpy_read(&out, &ds[0].1) else {
        return;
    };
    assert_eq!(got.len(), want.len());
    assert!(got == want, "token ids differ from the kept documents'");
    // and Megatron-LM's own IndexedDataset (megatron-core) reads the same
    let mega = read_with("megatron_core_read.py", &out, &ds[0].1).unwrap();
    assert!(mega == want, "Megatron's IndexedDataset reads other ids");
}

#[test]
fn shuffled_split_datasets_are_identical_for_any_threads_and_task_size() {
    let dir = tempfile::tempdir().unwrap();
    let (input, _) = corpus_slice(dir.path(), 600, 50);
    let tok = "split_by = \"language\"\nmax_tokens_per_file = 100_000\nmemory_limit = \"4MiB\"";
    let ca = write_config(dir.path(), "a.toml", &config(&input, tok, 1));
    let cb = write_config(dir.path(), "b.toml", &config(&input, tok, 5));
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    run(&ca, &a, "1");
    run(&cb, &b, "2");
    let (fa, fb) = (token_files(&a), token_files(&b));
    assert!(fa.len() > 3, "{:?}", fa.keys().collect::<Vec<_>>());
    assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>());
    for (k, v) in &fa {
        assert!(
            v == &fb[k],
            "tokens/{k} differs between thread counts / task sizes"
        );
    }
    common::assert_same_snapshot(&a, &b, "threads 1 task_size 1 vs threads 2 task_size 5");

    // one dataset per language; each holds that language's documents, shuffled
    let kept = kept(&a);
    let ds = prefixes(&a);
    let Some(_) = curate_testkit::reference_python() else {
        return;
    };
    let mut seen = 0;
    for (name, files) in &ds {
        let lang = name.strip_prefix("language=").unwrap();
        let texts: Vec<&str> = kept
            .iter()
            .filter(|k| k.1 == lang)
            .map(|k| k.0.as_str())
            .collect();
        let want = expected_ids(&texts);
        let got = numpy_read(&a, files).unwrap();
        assert_eq!(got.len(), want.len(), "{name}");
        if want.len() > 20 {
            assert!(got != want, "{name}: not shuffled");
        }
        let (mut g, mut w) = (got.clone(), want.clone());
        g.sort();
        w.sort();
        assert!(g == w, "{name}: not the same documents");
        seen += got.len();
    }
    assert_eq!(seen, kept.len());
}

#[test]
fn sigkill_mid_tokenization_resumes_to_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (input, _) = corpus_slice(dir.path(), 1600, 50);
    let cfg = write_config(
        dir.path(),
        "t.toml",
        &config(
            &input,
            "split_by = \"language\"\nmax_tokens_per_file = 60_000\nmemory_limit = \"4MiB\"",
            1,
        ),
    );
    let reference = dir.path().join("reference");
    run(&cfg, &reference, "2");
    let want = token_files(&reference);
    // kill inside the tokenizing pass (after its first tasks), then just as the write stage
    // may be running, then once more during the resume
    for (trial, (stage, tasks, delay_ms)) in [("pass-0", 2, 0), ("pass-0", 32, 5), ("pass-0", 8, 0)]
        .into_iter()
        .enumerate()
    {
        let out = dir.path().join(format!("trial-{trial}"));
        let kills = if trial == 2 { 2 } else { 1 };
        for k in 0..kills {
            let mut child = Command::new(env!("CARGO_BIN_EXE_curate"))
                .args(["run", "--quiet", "--threads", "2", "--config"])
                .arg(&cfg)
                .arg("--output")
                .arg(&out)
                .env("NO_COLOR", "1")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let t0 = Instant::now();
            let need = if k == 0 { tasks } else { tasks + 8 };
            while common::committed(&out, stage) < need && child.try_wait().unwrap().is_none() {
                assert!(t0.elapsed() < Duration::from_secs(120), "never reached");
                std::thread::sleep(Duration::from_millis(1));
            }
            std::thread::sleep(Duration::from_millis(delay_ms));
            let landed = child.try_wait().unwrap().is_none();
            let _ = Command::new("kill")
                .args(["-9", &child.id().to_string()])
                .status();
            child.wait().unwrap();
            if k == 0 {
                assert!(landed, "trial {trial}: the run ended before the kill");
                assert!(!out.join("manifest.json").exists());
            }
        }
        run(&cfg, &out, "2");
        run_ok(&["snapshot", "verify", out.to_str().unwrap()]);
        let got = token_files(&out);
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "trial {trial}: files"
        );
        for (name, bytes) in &want {
            assert!(&got[name] == bytes, "trial {trial}: tokens/{name} differs");
        }
        common::assert_same_snapshot(&out, &reference, &format!("trial {trial}"));
    }
}

#[test]
fn contaminated_documents_are_excluded_with_their_benchmark() {
    let dir = tempfile::tempdir().unwrap();
    let (input, input_ids) = corpus_slice(dir.path(), 300, 100);
    // two benchmark items: words of documents 10 and 200, reformatted
    let docs = common::texts_of(&input);
    let item = common::benchmark_item;
    let evals = dir.path().join("evals");
    std::fs::create_dir_all(&evals).unwrap();
    std::fs::write(
        evals.join("trivia.jsonl"),
        format!(
            "{}\n{}\n{}\n",
            serde_json::json!({"question": item(&docs[10]), "answer": "x"}),
            serde_json::json!({"question": item(&docs[200]), "answer": "y"}),
            serde_json::json!({"question": "an item that is in no document of this corpus at all, surely"}),
        ),
    )
    .unwrap();
    let body = format!(
        r#"[input]
paths = [{input}]
text_column = "text"
id_column = "id"

[[steps]]
type = "decontaminate"
benchmarks = [{evals}]
fields = ["question", "answer"]

[output]
dir = "unused"
exclusion = true
"#,
        input = q(&input),
        evals = q(&evals.join("*.jsonl"))
    );
    let cfg = write_config(dir.path(), "d.toml", &body);
    let out = dir.path().join("out");
    run(&cfg, &out, "2");
    run_ok(&["snapshot", "verify", out.to_str().unwrap()]);
    let ex = read_dir_batches(&out.join("excluded"));
    let mut ids = Vec::new();
    for b in &ex {
        let id = b.column_by_name("id").unwrap().as_string::<i32>();
        let by = b
            .column_by_name("contaminated_by")
            .unwrap()
            .as_string::<i32>();
        let g = b
            .column_by_name("contamination_ngram")
            .unwrap()
            .as_string::<i32>();
        let r = b.column_by_name("reason").unwrap().as_string::<i32>();
        for i in 0..b.num_rows() {
            assert_eq!(r.value(i), "contaminated");
            assert_eq!(by.value(i), "trivia");
            assert_eq!(g.value(i).split(' ').count(), 13);
            ids.push(id.value(i).to_string());
        }
    }
    assert!(
        ids.contains(&input_ids[10]) && ids.contains(&input_ids[200]),
        "{ids:?}"
    );
    // the kept documents do not carry the explanation columns
    for b in read_dir_batches(&out.join("data")) {
        assert!(b.column_by_name("contaminated_by").is_none());
    }
    let m = manifest(&out);
    let step = &m["steps"][0];
    assert_eq!(
        step["dropped"]["contaminated"].as_u64().unwrap() as usize,
        ids.len()
    );
    let bench = &step["stats"]["benchmarks"][0];
    assert_eq!(bench["name"], "trivia");
    assert_eq!(bench["items"], 3);
    assert_eq!(bench["items_found"], 2);
    assert_eq!(bench["documents_hit"].as_u64().unwrap() as usize, ids.len());
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("data-chart=\"decontamination\""));
}
