//! Object storage end to end, against a real S3-compatible server (moto's server mode) on
//! loopback, started by the test: inputs, outputs and the work directory on `s3://`, compared
//! with a local run of the same config.
//!
//! What legitimately differs between the two manifests is where the inputs were: the recorded
//! input paths (`inputs[].path`, `config.input.paths`). Everything else — data and exclusion
//! file bytes, input content hashes, counters, every output hash — must be identical.
//!
//! moto comes from `.ci/setup.d/35-s3.sh` (`/opt/curate-venv/bin/moto_server`). Under
//! `CI=true` a missing moto fails the tests; elsewhere they skip with a reason.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use arrow::array::Array;
use common::{q, write_config};
use curate_io::store::{self, ObjectUrl, Put};

/// The moto server of this test process: its endpoint, and the watcher shell that stops it
/// when this process is gone (never waited for: it outlives every test of the process).
struct Moto {
    endpoint: String,
    _watcher: Child,
}

fn moto_binary() -> Option<PathBuf> {
    let p = std::env::var_os("CURATE_MOTO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/curate-venv/bin/moto_server"));
    if p.exists() {
        return Some(p);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "moto_server missing at {} under CI: .ci/setup.d/35-s3.sh must install it",
            p.display()
        );
    }
    eprintln!(
        "skipped: moto_server not found at {} (run .ci/setup.d/35-s3.sh)",
        p.display()
    );
    None
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts moto once per test process (a watcher shell stops it when this process is gone) and
/// points the AWS environment variables at it, for this process and the `curate` it runs.
fn moto() -> Option<&'static Moto> {
    static MOTO: OnceLock<Option<Moto>> = OnceLock::new();
    MOTO.get_or_init(|| {
        let bin = moto_binary()?;
        let port = free_port();
        let script = format!(
            "{} -H 127.0.0.1 -p {port} >/dev/null 2>&1 & m=$!; while kill -0 {} 2>/dev/null && kill -0 $m 2>/dev/null; do sleep 1; done; kill $m 2>/dev/null",
            bin.display(),
            std::process::id()
        );
        let watcher = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto");
        let t0 = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "moto_server did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let endpoint = format!("http://127.0.0.1:{port}");
        // Set once, before any test of this process spawns a child or builds a client (every
        // test waits on this OnceLock first), to the same values for all of them.
        #[allow(unsafe_code)]
        // SAFETY: no other thread reads the environment while it is set (see above).
        unsafe {
            for (k, v) in [
                ("AWS_ACCESS_KEY_ID", "testing"),
                ("AWS_SECRET_ACCESS_KEY", "testing"),
                ("AWS_REGION", "us-east-1"),
                ("AWS_ENDPOINT_URL", endpoint.as_str()),
                ("AWS_ALLOW_HTTP", "true"),
            ] {
                std::env::set_var(k, v);
            }
        }
        Some(Moto {
            endpoint,
            _watcher: watcher,
        })
    })
    .as_ref()
}

/// Creates a bucket (a plain path-style PUT; moto does not check signatures).
fn create_bucket(m: &Moto, name: &str) {
    let addr = m.endpoint.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "PUT /{name} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "create bucket: {resp}");
}

fn url(s: &str) -> ObjectUrl {
    ObjectUrl::parse(s).unwrap().unwrap()
}

fn upload(local: &Path, to: &str) {
    store::upload(local, &url(to)).unwrap();
}

/// Every object under `prefix`, relative key → bytes.
fn objects(prefix: &str) -> Vec<(String, Vec<u8>)> {
    let p = url(prefix);
    store::list(&p)
        .unwrap()
        .into_iter()
        .map(|o| {
            let rel = o.url.key[p.key.len()..].trim_start_matches('/').to_string();
            let bytes = store::get_bytes(&o.url).unwrap().unwrap().to_vec();
            (rel, bytes)
        })
        .collect()
}

/// Local files under `dir` (relative path → bytes), skipping `.curate/` and `run.json`.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, d: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.retain(|(r, _)| !r.starts_with(".curate/") && r != "run.json");
    out.sort();
    out
}

/// The manifest with the input locations blanked (the only thing allowed to differ).
fn normalized_manifest(bytes: &[u8]) -> serde_json::Value {
    let mut m: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    for i in m["inputs"].as_array_mut().unwrap() {
        i["path"] = serde_json::Value::Null;
    }
    m["config"]["input"]["paths"] = serde_json::Value::Null;
    m["config_fingerprint"] = serde_json::Value::Null;
    // the content hash covers all of the above (each snapshot's own is checked by `verify`)
    m["content_hash"] = serde_json::Value::Null;
    // the dataset card and report name the inputs and the fingerprint (compared separately)
    for a in m["artifacts"].as_array_mut().unwrap() {
        if a["path"] == "README.md" || a["path"] == "report.html" {
            a["bytes"] = serde_json::Value::Null;
            a["xxh3_128"] = serde_json::Value::Null;
        }
    }
    m
}

/// A pipeline with filters, both dedups (global stages with work files), sampling, reference
/// labels, a student model and top-fraction scoring: every kind of step work file.
fn pipeline(input: &str, output: &str, repo: &Path) -> String {
    format!(
        r#"[input]
paths = [{input:?}]
text_column = "text"
id_column = "id"

[[steps]]
preset = "fineweb"

[[steps]]
type = "exact_dedup"

[[steps]]
type = "minhash_dedup"

[[steps]]
type = "sample"
size = 400
holdout = 0.25

[[steps]]
type = "label"
annotator = "reference"
reference = {reference}

[[steps]]
type = "train"

[[steps]]
type = "score"
keep = {{ top_fraction = 0.3 }}

[output]
dir = {output:?}
exclusion = true

[run]
seed = 42
threads = 2
"#,
        reference = q(&repo.join("configs/quickstart/reference.jsonl")),
    )
}

/// The same config run locally: its snapshot directory.
fn local_run(dir: &Path, body: &str) -> PathBuf {
    let cfg = write_config(dir, "local.toml", body);
    common::run_ok(&["run", "--quiet", "--config", cfg.to_str().unwrap()]);
    dir.join("local-out")
}

/// Compares a local snapshot with a remote one. `inputs` are the (local, remote) locations of the
/// input, the one thing the dataset card and report may name differently.
fn assert_same_snapshot(local: &Path, remote_prefix: &str, inputs: (&str, &str)) {
    common::assert_verifies(Path::new(remote_prefix), remote_prefix);
    let l = files(local);
    let mut r = objects(remote_prefix);
    r.retain(|(k, _)| !k.starts_with(".curate/") && k != "run.json");
    r.sort();
    let names = |v: &[(String, Vec<u8>)]| v.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    assert_eq!(names(&l), names(&r), "same files");
    // the config fingerprint covers the input paths, so it differs too
    let fingerprint = |v: &[(String, Vec<u8>)]| {
        let m = &v.iter().find(|(k, _)| k == "manifest.json").unwrap().1;
        let m: serde_json::Value = serde_json::from_slice(m).unwrap();
        m["config_fingerprint"].as_str().unwrap().to_string()
    };
    let (fl, fr) = (fingerprint(&l), fingerprint(&r));
    for ((name, a), (_, b)) in l.iter().zip(&r) {
        if name == "manifest.json" {
            assert_eq!(
                normalized_manifest(a),
                normalized_manifest(b),
                "manifests differ beyond input paths"
            );
        } else if name.ends_with(".md") || name.ends_with(".html") {
            let a = String::from_utf8_lossy(a)
                .replace(inputs.0, "<input>")
                .replace(&fl, "<fingerprint>");
            let b = String::from_utf8_lossy(b)
                .replace(inputs.1, "<input>")
                .replace(&fr, "<fingerprint>");
            assert_eq!(a, b, "{name} differs beyond the input location");
        } else {
            assert!(
                a == b,
                "{name}: bytes differ between the local and the S3 run"
            );
        }
    }
}

#[test]
fn run_with_inputs_outputs_and_work_on_s3_matches_a_local_run() {
    let Some(m) = moto() else { return };
    create_bucket(m, "run");
    let repo = curate_testkit::repo_root();
    let sample = curate_testkit::quickstart_sample();
    upload(&sample, "s3://run/in/sample.parquet");
    let dir = tempfile::tempdir().unwrap();

    let local = local_run(
        dir.path(),
        &pipeline(
            sample.to_str().unwrap(),
            dir.path().join("local-out").to_str().unwrap(),
            &repo,
        ),
    );
    let cfg = write_config(
        dir.path(),
        "s3.toml",
        &pipeline("s3://run/in/*.parquet", "s3://run/snap", &repo),
    );
    let err = common::run_ok(&["run", "--quiet", "--config", cfg.to_str().unwrap()]);
    assert!(err.contains("→ s3://run/snap"), "{err}");
    assert_same_snapshot(
        &local,
        "s3://run/snap",
        (sample.to_str().unwrap(), "s3://run/in/sample.parquet"),
    );
    // intermediate parts are gone, records and state stay
    let keys: Vec<String> = store::list(&url("s3://run/snap/.curate"))
        .unwrap()
        .into_iter()
        .map(|o| o.url.key)
        .collect();
    assert!(
        !keys.iter().any(|k| k.contains(".curate/work/")),
        "{keys:?}"
    );
    assert!(keys.iter().any(|k| k.ends_with("/finalize/000000.json")));
    assert!(keys.iter().any(|k| k.ends_with(".curate/state.json")));

    // read-only commands on the URL
    let err = common::run_ok(&["snapshot", "verify", "s3://run/snap"]);
    assert!(err.contains("verified"), "{err}");
    let status = common::run(&["status", "s3://run/snap"]);
    let out = String::from_utf8_lossy(&status.stdout);
    assert!(out.contains("complete: manifest.json written"), "{out}");
    let stats_s3 = common::run(&["stats", "--json", "s3://run/snap"]);
    let stats_local = common::run(&["stats", "--json", local.to_str().unwrap()]);
    assert!(stats_s3.status.success());
    assert_eq!(stats_s3.stdout, stats_local.stdout);

    // resuming a finished run does nothing and rewrites no record
    let before = objects("s3://run/snap/.curate/done");
    let err = common::run_ok(&["run", "--quiet", "--config", cfg.to_str().unwrap()]);
    assert!(err.contains("resumed past"), "{err}");
    assert_eq!(before, objects("s3://run/snap/.curate/done"));

    // a tampered data object is caught by verify
    store::put_bytes(
        &url("s3://run/snap/data/part-00000.parquet"),
        b"not parquet".to_vec(),
        false,
    )
    .unwrap();
    let o = common::run(&["snapshot", "verify", "s3://run/snap"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("data/part-00000.parquet"), "{err}");
}

#[test]
fn completion_records_are_create_only() {
    let Some(m) = moto() else { return };
    create_bucket(m, "records");
    let rec = url("s3://records/snap/.curate/done/pass-0/000000.json");
    assert_eq!(
        store::put_bytes(&rec, b"first".to_vec(), true).unwrap(),
        Put::Written
    );
    assert_eq!(
        store::put_bytes(&rec, b"second".to_vec(), true).unwrap(),
        Put::AlreadyExists
    );
    assert_eq!(&store::get_bytes(&rec).unwrap().unwrap()[..], b"first");
}

/// Splits the bundled sample into row groups of 100 rows (20 tasks per pass) and uploads it.
fn upload_small_row_groups(dir: &Path, to: &str) -> PathBuf {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let f = std::fs::File::open(curate_testkit::quickstart_sample()).unwrap();
    let batches: Vec<_> = ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap()
        .build()
        .unwrap()
        .map(|b| b.unwrap())
        .collect();
    let all = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
    let p = dir.join("small-rg.parquet");
    common::write_batch(&p, all, 100);
    upload(&p, to);
    p
}

/// A light pipeline with one global step (exact dedup: 16 group tasks reading every pass
/// task's run files), so tests with many processes stay fast.
fn filters_and_dedup(input: &str, output: &str) -> String {
    format!(
        r#"[input]
paths = [{input:?}]
text_column = "text"
id_column = "id"

[[steps]]
type = "length"
min_words = 100

[[steps]]
type = "exact_dedup"

[output]
dir = {output:?}
exclusion = true

[run]
seed = 7
threads = 1
"#
    )
}

#[test]
fn a_killed_s3_run_resumes_to_the_same_snapshot() {
    let Some(m) = moto() else { return };
    create_bucket(m, "resume");
    let dir = tempfile::tempdir().unwrap();
    let local_input = upload_small_row_groups(dir.path(), "s3://resume/in/docs.parquet");
    let local = local_run(
        dir.path(),
        &filters_and_dedup(
            local_input.to_str().unwrap(),
            dir.path().join("local-out").to_str().unwrap(),
        ),
    );
    let cfg = write_config(
        dir.path(),
        "s3.toml",
        &filters_and_dedup("s3://resume/in/docs.parquet", "s3://resume/snap"),
    );
    // the killed process cannot remove its scratch directory: keep it in the test's temp dir
    let mut child: Child = common::curate()
        .env("CURATE_SCRATCH", dir.path())
        .args(["run", "--quiet", "--config", cfg.to_str().unwrap()])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // kill once a few pass-0 records are committed in the bucket
    let t0 = Instant::now();
    loop {
        // `.curate/done/<run id>/pass-0/<task>.json`
        let n = store::list(&url("s3://resume/snap/.curate/done"))
            .map(|v| v.iter().filter(|o| o.url.key.contains("/pass-0/")).count())
            .unwrap_or(0);
        if n >= 3 {
            break;
        }
        if let Ok(Some(_)) = child.try_wait() {
            panic!("the run finished before it could be killed");
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no records appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        store::head(&url("s3://resume/snap/manifest.json"))
            .unwrap()
            .is_none()
    );
    let status = common::run(&["status", "s3://resume/snap"]);
    assert!(String::from_utf8_lossy(&status.stdout).contains("incomplete"));

    let err = common::run_ok(&["run", "--quiet", "--config", cfg.to_str().unwrap()]);
    assert!(err.contains("resumed past"), "{err}");
    assert_same_snapshot(
        &local,
        "s3://resume/snap",
        (local_input.to_str().unwrap(), "s3://resume/in/docs.parquet"),
    );
}

#[test]
fn tasks_in_separate_processes_share_only_the_bucket() {
    let Some(m) = moto() else { return };
    create_bucket(m, "tasks");
    let dir = tempfile::tempdir().unwrap();
    let sample = curate_testkit::quickstart_sample();
    upload(&sample, "s3://tasks/in/sample.parquet");
    let local = local_run(
        dir.path(),
        &filters_and_dedup(
            sample.to_str().unwrap(),
            dir.path().join("local-out").to_str().unwrap(),
        ),
    );
    let cfg = write_config(
        dir.path(),
        "s3.toml",
        &filters_and_dedup("s3://tasks/in/sample.parquet", "s3://tasks/snap"),
    );
    let plan = common::run(&["plan", "--config", cfg.to_str().unwrap()]);
    assert!(
        plan.status.success(),
        "{}",
        String::from_utf8_lossy(&plan.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(plan["output"], "s3://tasks/snap");
    // every task in its own process, with its own scratch directory, like array elements on
    // different machines; the tasks of a stage run concurrently, four at a time
    for stage in plan["stages"].as_array().unwrap() {
        let name = stage["name"].as_str().unwrap();
        let tasks: Vec<u64> = (0..stage["tasks"].as_u64().unwrap()).collect();
        for chunk in tasks.chunks(4) {
            let children: Vec<(u64, PathBuf, Child)> = chunk
                .iter()
                .map(|t| {
                    let scratch = dir.path().join(format!("scratch-{name}-{t}"));
                    std::fs::create_dir_all(&scratch).unwrap();
                    let child = common::curate()
                        .env("CURATE_SCRATCH", &scratch)
                        .args(["task", "--config", cfg.to_str().unwrap(), "--stage", name])
                        .args(["--index", &t.to_string()])
                        .stdout(Stdio::null())
                        .stderr(Stdio::piped())
                        .spawn()
                        .unwrap();
                    (*t, scratch, child)
                })
                .collect();
            for (t, scratch, child) in children {
                let o = child.wait_with_output().unwrap();
                assert!(
                    o.status.success(),
                    "task {name} {t}: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
                assert_eq!(
                    std::fs::read_dir(&scratch).unwrap().count(),
                    0,
                    "scratch directory left behind"
                );
            }
        }
    }
    assert_same_snapshot(
        &local,
        "s3://tasks/snap",
        (sample.to_str().unwrap(), "s3://tasks/in/sample.parquet"),
    );
}

#[test]
fn missing_buckets_objects_and_endpoints_are_named() {
    let Some(m) = moto() else { return };
    create_bucket(m, "errors");
    let dir = tempfile::tempdir().unwrap();
    let sample = curate_testkit::quickstart_sample();
    // a run of the filters over `input` into `output`, which must fail: its error
    let run_err_on = |input: &str, output: &str| {
        let cfg = write_config(dir.path(), "run.toml", &filters_and_dedup(input, output));
        common::run_err(&["run", "--quiet", "--config", cfg.to_str().unwrap()])
    };

    // output bucket that does not exist
    let err = run_err_on(sample.to_str().unwrap(), "s3://no-such-bucket/snap");
    assert!(
        err.contains("s3://no-such-bucket") && err.contains("does not exist"),
        "{err}"
    );

    // input glob that matches nothing, and a missing input object
    let err = run_err_on("s3://errors/in/*.parquet", "s3://errors/snap");
    assert!(
        err.contains("\"s3://errors/in/*.parquet\" matches no object"),
        "{err}"
    );
    let err = run_err_on("s3://errors/in/gone.parquet", "s3://errors/snap");
    assert!(
        err.contains("s3://errors/in/gone.parquet: no such object"),
        "{err}"
    );

    // a corrupt input object: the error names the URL
    store::put_bytes(
        &url("s3://errors/bad/x.parquet"),
        b"PAR1 garbage".to_vec(),
        false,
    )
    .unwrap();
    let err = run_err_on("s3://errors/bad/x.parquet", "s3://errors/snap2");
    assert!(err.contains("s3://errors/bad/x.parquet"), "{err}");

    // a text column of the wrong type: the error names the object and the column
    let p = dir.path().join("ints.parquet");
    let schema = std::sync::Arc::new(arrow::datatypes::Schema::new(vec![
        arrow::datatypes::Field::new("text", arrow::datatypes::DataType::Int64, false),
        arrow::datatypes::Field::new("id", arrow::datatypes::DataType::Utf8, false),
    ]));
    let batch = arrow::array::RecordBatch::try_new(
        schema,
        vec![
            std::sync::Arc::new(arrow::array::Int64Array::from(vec![1, 2])),
            std::sync::Arc::new(arrow::array::StringArray::from(vec!["a", "b"])),
        ],
    )
    .unwrap();
    common::write_batch(&p, batch, 1);
    upload(&p, "s3://errors/ints/x.parquet");
    let err = run_err_on("s3://errors/ints/x.parquet", "s3://errors/snap3");
    assert!(
        err.contains("s3://errors/ints/x.parquet: column `text`: has type Int64"),
        "{err}"
    );

    // a damaged column chunk under a good footer: the error names the object, the row group
    // and the column (read again alone to find it)
    let p = dir.path().join("damaged.parquet");
    let texts: Vec<String> = (0..200)
        .map(|i| format!("document {i} ").repeat(40))
        .collect();
    common::write_texts(
        &p,
        &texts.iter().map(String::as_str).collect::<Vec<_>>(),
        200,
    );
    let (start, len) = {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let r = SerializedFileReader::new(std::fs::File::open(&p).unwrap()).unwrap();
        r.metadata().row_group(0).column(0).byte_range()
    };
    let mut bytes = std::fs::read(&p).unwrap();
    for b in &mut bytes[start as usize + 16..(start + len) as usize] {
        *b ^= 0xA5;
    }
    store::put_bytes(&url("s3://errors/damaged/x.parquet"), bytes, false).unwrap();
    let err = run_err_on("s3://errors/damaged/x.parquet", "s3://errors/snap4");
    assert!(
        err.contains("s3://errors/damaged/x.parquet, row group 0: column `text`: "),
        "{err}"
    );

    // an object whose key holds glob characters is read under that key; a pattern that matches
    // nothing because of a bracket says how to write a literal one
    upload(&p, "s3://errors/odd/x [1].parquet");
    let cfg = write_config(
        dir.path(),
        "g.toml",
        &filters_and_dedup("s3://errors/odd/x [1].parquet", "s3://errors/snap5"),
    );
    common::run_ok(&["run", "--quiet", "--config", cfg.to_str().unwrap()]);
    let err = run_err_on("s3://errors/odd/x [2].parquet", "s3://errors/snap6");
    assert!(
        err.contains("matches no object") && err.contains("write `[[]` for a literal `[`"),
        "{err}"
    );

    // an endpoint nobody listens on
    let port = free_port();
    let o = common::curate()
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))
        .args(["status", "s3://errors/snap"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("s3://errors/snap") && err.contains("AWS_ENDPOINT_URL"),
        "{err}"
    );
}

/// Writes the bundled sample's `text` and `id` as gzipped JSON lines (plus `extra` raw lines).
fn sample_jsonl_gz(path: &Path, extra: &str) {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let f = std::fs::File::open(curate_testkit::quickstart_sample()).unwrap();
    let mut buf = Vec::new();
    {
        let mut w = arrow::json::LineDelimitedWriter::new(&mut buf);
        for b in ParquetRecordBatchReaderBuilder::try_new(f)
            .unwrap()
            .build()
            .unwrap()
        {
            let b = b.unwrap();
            let cols = [
                b.schema().index_of("text").unwrap(),
                b.schema().index_of("id").unwrap(),
            ];
            w.write(&b.project(&cols).unwrap()).unwrap();
        }
        w.finish().unwrap();
    }
    buf.extend_from_slice(extra.as_bytes());
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(path).unwrap(),
        flate2::Compression::fast(),
    );
    gz.write_all(&buf).unwrap();
    gz.finish().unwrap();
}

#[test]
fn jsonl_inputs_on_s3_match_a_local_run_and_errors_name_url_and_line() {
    let Some(m) = moto() else { return };
    create_bucket(m, "jsonl");
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("docs.jsonl.gz");
    sample_jsonl_gz(&good, "");
    upload(&good, "s3://jsonl/in/docs.jsonl.gz");
    let local = local_run(
        dir.path(),
        &filters_and_dedup(
            good.to_str().unwrap(),
            dir.path().join("local-out").to_str().unwrap(),
        ),
    );
    let cfg = write_config(
        dir.path(),
        "s3.toml",
        &filters_and_dedup("s3://jsonl/in/*.jsonl.gz", "s3://jsonl/snap"),
    );
    common::run_ok(&["run", "--quiet", "--config", cfg.to_str().unwrap()]);
    assert_same_snapshot(
        &local,
        "s3://jsonl/snap",
        (good.to_str().unwrap(), "s3://jsonl/in/docs.jsonl.gz"),
    );

    // a broken line: the error names the object and the line (local output this time)
    let bad = dir.path().join("bad.jsonl.gz");
    sample_jsonl_gz(&bad, "{\"text\": \"fine\", \"id\": \"x\"}\n{not json\n");
    upload(&bad, "s3://jsonl/bad/bad.jsonl.gz");
    let cfg = write_config(
        dir.path(),
        "bad.toml",
        &filters_and_dedup(
            "s3://jsonl/bad/bad.jsonl.gz",
            dir.path().join("bad-out").to_str().unwrap(),
        ),
    );
    let err = common::run_err(&["run", "--quiet", "--config", cfg.to_str().unwrap()]);
    assert!(
        err.contains("s3://jsonl/bad/bad.jsonl.gz, line 1985"),
        "{err}"
    );
}

#[test]
fn the_slurm_executor_refuses_an_s3_output_with_a_reason() {
    let Some(m) = moto() else { return };
    create_bucket(m, "slurm");
    let dir = tempfile::tempdir().unwrap();
    let sample = curate_testkit::quickstart_sample();
    let cfg = write_config(
        dir.path(),
        "s3.toml",
        &filters_and_dedup(sample.to_str().unwrap(), "s3://slurm/snap"),
    );
    let err = common::run_err(&[
        "run",
        "--quiet",
        "--executor",
        "slurm",
        "--config",
        cfg.to_str().unwrap(),
    ]);
    assert!(
        err.contains("s3://slurm/snap") && err.contains("--executor slurm needs"),
        "{err}"
    );
    assert!(
        store::list(&url("s3://slurm/snap/.curate/done"))
            .unwrap()
            .is_empty()
    );
}

/// Two `curate run`s into one `s3://` snapshot, the second `--fresh` with another config,
/// started at several offsets: each outcome is a refusal naming the lock's holder, or a snapshot
/// that verifies and matches one config exactly.
#[test]
fn two_writers_on_s3_never_produce_a_mixed_snapshot() {
    let Some(m) = moto() else { return };
    create_bucket(m, "race");
    let dir = tempfile::tempdir().unwrap();
    let input = upload_small_row_groups(dir.path(), "s3://race/in/docs.parquet");
    let _ = input;
    let a = write_config(
        dir.path(),
        "a.toml",
        &filters_and_dedup("s3://race/in/docs.parquet", "s3://race/snap")
            .replace("min_words = 100", "min_words = 20"),
    );
    let b = write_config(
        dir.path(),
        "b.toml",
        &filters_and_dedup("s3://race/in/docs.parquet", "s3://race/snap"),
    );
    let mut refused = 0;
    for (trial, delay) in [0u64, 200, 500, 1500].into_iter().enumerate() {
        let first = common::curate()
            .args(["run", "--quiet", "--fresh", "--config", a.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        let second = common::run(&["run", "--quiet", "--fresh", "--config", b.to_str().unwrap()]);
        let first = first.wait_with_output().unwrap();
        let e2 = String::from_utf8_lossy(&second.stderr);
        if !second.status.success() {
            assert!(
                e2.contains("is in use by `curate run`"),
                "trial {trial}: {e2}"
            );
            refused += 1;
        }
        let e1 = String::from_utf8_lossy(&first.stderr);
        if !first.status.success() {
            assert!(
                e1.contains("is in use by") || e1.contains("replaced"),
                "trial {trial}: {e1}"
            );
        }
        let snap = Path::new("s3://race/snap");
        if store::head(&url("s3://race/snap/manifest.json"))
            .unwrap()
            .is_some()
        {
            common::assert_verifies(snap, &format!("trial {trial}"));
            let m: serde_json::Value = serde_json::from_slice(
                &store::get_bytes(&url("s3://race/snap/manifest.json"))
                    .unwrap()
                    .unwrap(),
            )
            .unwrap();
            let min = m["config"]["steps"][0]["min_words"].as_u64().unwrap();
            // every kept document has the config's minimum
            for o in store::list(&url("s3://race/snap/data")).unwrap() {
                let k = o.url.to_string();
                let bytes = store::get_bytes(&o.url).unwrap().unwrap();
                let rows =
                    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
                        .unwrap()
                        .build()
                        .unwrap();
                for rb in rows {
                    let rb = rb.unwrap();
                    let t = rb.column_by_name("text").unwrap();
                    let t = arrow::array::AsArray::as_string::<i32>(t);
                    for i in 0..t.len() {
                        assert!(
                            t.value(i).split_whitespace().count() as u64 >= min,
                            "trial {trial}: {k} holds a document of another config"
                        );
                    }
                }
            }
        }
    }
    assert!(refused > 0, "overlapping writers were refused");
    // no lock is left behind by runs that ended
    assert!(
        store::head(&url("s3://race/snap/.curate/lock"))
            .unwrap()
            .is_none()
    );
}

/// A cluster task of a run that another writer replaced (`--fresh` with another config) gives
/// up instead of committing, and the replacing run's snapshot verifies.
#[test]
fn a_straggling_task_of_a_replaced_s3_run_commits_nothing() {
    let Some(m) = moto() else { return };
    create_bucket(m, "straggle");
    let dir = tempfile::tempdir().unwrap();
    upload_small_row_groups(dir.path(), "s3://straggle/in/docs.parquet");
    let a = write_config(
        dir.path(),
        "a.toml",
        &filters_and_dedup("s3://straggle/in/docs.parquet", "s3://straggle/snap")
            .replace("min_words = 100", "min_words = 20"),
    );
    let b = write_config(
        dir.path(),
        "b.toml",
        &filters_and_dedup("s3://straggle/in/docs.parquet", "s3://straggle/snap"),
    );
    common::run_ok(&["plan", "--config", a.to_str().unwrap()]);
    let task = |cfg: &Path, stage: &str, i: usize| {
        common::run(&[
            "task",
            "--config",
            cfg.to_str().unwrap(),
            "--stage",
            stage,
            "--index",
            &i.to_string(),
        ])
    };
    let o = task(&a, "pass-0", 0);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // a task of A that is still working when another writer starts over with config B
    let straggler = common::curate()
        .env("CURATE_TEST_PAUSE_BEFORE_COMMIT_MS", "8000")
        .args([
            "task",
            "--config",
            a.to_str().unwrap(),
            "--stage",
            "pass-0",
            "--index",
            "1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    common::run_ok(&["run", "--quiet", "--fresh", "--config", b.to_str().unwrap()]);
    let o = straggler.wait_with_output().unwrap();
    assert!(!o.status.success(), "the straggler committed");
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("was replaced by another"), "{e}");
    common::assert_verifies(Path::new("s3://straggle/snap"), "after the straggler");
    // a task of A started after B took over refuses before touching anything
    let o = task(&a, "pass-0", 1);
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("different pipeline"), "{e}");
}

/// The kept and excluded data files of a local snapshot (relative path → bytes).
fn data_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v = files(dir);
    v.retain(|(k, _)| k.starts_with("data/") || k.starts_with("excluded/"));
    assert!(!v.is_empty(), "{} has no data files", dir.display());
    v
}

/// A config of `steps` over `input`, written to `dir/<name>.toml` and run into `dir/<name>`;
/// `Ok(snapshot)` or `Err(stderr)`.
fn run_steps(dir: &Path, name: &str, input: &str, steps: &str) -> Result<PathBuf, String> {
    let out = dir.join(name);
    let body = format!(
        "[input]\npaths = [{input:?}]\ntext_column = \"text\"\nid_column = \"id\"\n\n{steps}\n\
         [output]\ndir = {:?}\nexclusion = true\n\n[run]\nseed = 11\nthreads = 2\n",
        out.to_str().unwrap()
    );
    let cfg = write_config(dir, &format!("{name}.toml"), &body);
    let o = common::run(&["run", "--quiet", "--config", cfg.to_str().unwrap()]);
    if o.status.success() {
        Ok(out)
    } else {
        Err(String::from_utf8_lossy(&o.stderr).into_owned())
    }
}

#[test]
fn fasttext_models_on_s3_give_the_output_of_the_built_in_model() {
    let Some(m) = moto() else { return };
    create_bucket(m, "models");
    let dir = tempfile::tempdir().unwrap();
    let (input, _) = common::corpus_slice(dir.path(), 200, 100);
    let input = input.to_str().unwrap();
    let lid = curate_testkit::repo_root().join("crates/curate-fasttext/models/lid.176.ftz");
    upload(&lid, "s3://models/lid/lid.176.ftz");
    let language = |model: &str| {
        format!(
            "[[steps]]\ntype = \"language\"\noverwrite = true\nlanguages = [\"en\", \"de\"]\nlanguage_threshold = 0.65\n{model}\n"
        )
    };
    let builtin = run_steps(dir.path(), "builtin", input, &language("")).unwrap();
    let s3 = run_steps(
        dir.path(),
        "s3",
        input,
        &language("model = \"s3://models/lid/lid.176.ftz\""),
    )
    .unwrap();
    let kept_and_dropped = data_files(&builtin);
    assert!(
        kept_and_dropped
            .iter()
            .any(|(k, _)| k.starts_with("excluded/")),
        "the language rule drops some documents"
    );
    assert_eq!(kept_and_dropped, data_files(&s3));
    common::assert_verifies(&s3, "language with an s3 model");
    // the classifier step reads the same object (lid.176 as an "English" classifier)
    let classifier = |model: &str| {
        format!(
            "[[steps]]\ntype = \"fasttext_classifier\"\nmodel = {model:?}\nlabel = \"en\"\nthreshold = 0.5\n"
        )
    };
    let local = run_steps(
        dir.path(),
        "cls-local",
        input,
        &classifier(lid.to_str().unwrap()),
    )
    .unwrap();
    let remote = run_steps(
        dir.path(),
        "cls-s3",
        input,
        &classifier("s3://models/lid/lid.176.ftz"),
    )
    .unwrap();
    assert_eq!(data_files(&local), data_files(&remote));

    // a missing object, a missing bucket and a corrupt object are named, before any data
    for (model, needle) in [
        (
            "s3://models/lid/gone.ftz",
            "s3://models/lid/gone.ftz: no such object",
        ),
        (
            "s3://no-such-bucket/lid.176.ftz",
            "bucket `no-such-bucket` does not exist",
        ),
        (
            "s3://models/lid/bad.ftz",
            "s3://models/lid/bad.ftz: not a fastText model",
        ),
    ] {
        store::put_bytes(
            &url("s3://models/lid/bad.ftz"),
            b"PK\x03\x04 a zip".to_vec(),
            false,
        )
        .unwrap();
        let err = run_steps(dir.path(), "bad", input, &classifier(model)).unwrap_err();
        assert!(
            err.contains("steps[0] (fasttext_classifier)") && err.contains(needle),
            "{model}: {err}"
        );
        assert!(!dir.path().join("bad/data").exists(), "{err}");
    }
    // validation accepts s3:// and still refuses what cannot be read
    let err = run_steps(
        dir.path(),
        "https",
        input,
        &classifier("https://example.com/lid.176.ftz"),
    )
    .unwrap_err();
    assert!(
        err.contains("only local paths and s3:// URLs can be read"),
        "{err}"
    );
}

#[test]
fn tokenize_reads_a_tokenizer_json_from_s3() {
    let Some(m) = moto() else { return };
    create_bucket(m, "tok");
    let dir = tempfile::tempdir().unwrap();
    let (input, _) = common::corpus_slice(dir.path(), 150, 50);
    let input = input.to_str().unwrap();
    let tok = dir.path().join("tokenizer.json");
    common::byte_level_tokenizer_json(&tok);
    upload(&tok, "s3://tok/tokenizers/small/tokenizer.json");
    let tokenize = |t: &str| format!("[[steps]]\ntype = \"tokenize\"\ntokenizer = {t:?}\n");
    let local = run_steps(dir.path(), "local", input, &tokenize(tok.to_str().unwrap())).unwrap();
    let s3 = run_steps(
        dir.path(),
        "s3",
        input,
        &tokenize("s3://tok/tokenizers/small/tokenizer.json"),
    )
    .unwrap();
    let tokens = |d: &Path| {
        let mut v = files(d);
        v.retain(|(k, _)| k.starts_with("tokens/") && !k.ends_with(".json"));
        v
    };
    let (a, b) = (tokens(&local), tokens(&s3));
    assert!(a.iter().any(|(k, _)| k.ends_with(".bin")), "{:?}", a.len());
    assert_eq!(a, b, "the same token files");
    // the manifest names the exact vocabulary either way
    let info = |d: &Path| {
        let m = common::manifest(d);
        m["steps"][0]["stats"]["tokenizer"].clone()
    };
    let (ia, ib) = (info(&local), info(&s3));
    assert_eq!(
        ib["name"], "s3://tok/tokenizers/small/tokenizer.json",
        "{ib}"
    );
    assert_eq!(ia["file_xxh3_128"], ib["file_xxh3_128"]);
    assert!(ia["file_xxh3_128"].is_string(), "{ia}");
    common::assert_verifies(&s3, "tokenize with an s3 tokenizer");

    let err = run_steps(
        dir.path(),
        "gone",
        input,
        &tokenize("s3://tok/tokenizers/gone/tokenizer.json"),
    )
    .unwrap_err();
    assert!(
        err.contains("s3://tok/tokenizers/gone/tokenizer.json: no such object"),
        "{err}"
    );
}

/// Benchmark items made from the words of input documents 10 and 120 (reformatted, so only the
/// normalized n-grams match), as one JSONL and one parquet benchmark in `dir/evals`.
fn benchmark_files(dir: &Path, input: &Path) -> Vec<PathBuf> {
    let docs = common::texts_of(input);
    let item = common::benchmark_item;
    let evals = dir.join("evals");
    std::fs::create_dir_all(&evals).unwrap();
    let jsonl = evals.join("trivia.jsonl");
    std::fs::write(
        &jsonl,
        format!(
            "{}\n{}\n",
            serde_json::json!({"question": item(&docs[10]), "answer": "x"}),
            serde_json::json!({"question": "an item that is in no document of this corpus at all, surely"}),
        ),
    )
    .unwrap();
    let pq = evals.join("quiz.parquet");
    common::write_texts(&pq, &[&item(&docs[120])], 10);
    vec![jsonl, pq]
}

#[test]
fn decontaminate_reads_benchmark_globs_from_s3() {
    let Some(m) = moto() else { return };
    create_bucket(m, "evals");
    let dir = tempfile::tempdir().unwrap();
    let (input, ids) = common::corpus_slice(dir.path(), 200, 100);
    for f in benchmark_files(dir.path(), &input) {
        let name = f.file_name().unwrap().to_str().unwrap();
        upload(&f, &format!("s3://evals/bench/{name}"));
    }
    // an object beside the benchmarks the glob does not match, and one a level deeper
    store::put_bytes(&url("s3://evals/bench/README.md"), b"notes".to_vec(), false).unwrap();
    store::put_bytes(
        &url("s3://evals/bench/old/stale.jsonl"),
        b"{\"text\": \"stale\"}\n".to_vec(),
        false,
    )
    .unwrap();
    let input = input.to_str().unwrap();
    let decontaminate = |globs: &[&str]| {
        format!(
            "[[steps]]\ntype = \"decontaminate\"\nbenchmarks = {globs:?}\nfields = [\"question\", \"answer\", \"text\"]\n"
        )
    };
    let evals = dir.path().join("evals");
    let local_globs = [
        format!("{}/*.jsonl", evals.display()),
        format!("{}/*.parquet", evals.display()),
    ];
    let local = run_steps(
        dir.path(),
        "local",
        input,
        &decontaminate(&[&local_globs[0], &local_globs[1]]),
    )
    .unwrap();
    let s3 = run_steps(
        dir.path(),
        "s3",
        input,
        &decontaminate(&["s3://evals/bench/*.jsonl", "s3://evals/bench/*.parquet"]),
    )
    .unwrap();
    assert_eq!(data_files(&local), data_files(&s3), "the same exclusions");
    let stats = |d: &Path| common::manifest(d)["steps"][0]["stats"]["benchmarks"].clone();
    let (a, b) = (stats(&local), stats(&s3));
    assert_eq!(a.as_array().unwrap().len(), 2, "{a}");
    for (x, y) in a.as_array().unwrap().iter().zip(b.as_array().unwrap()) {
        assert_eq!(x["name"], y["name"]);
        assert_eq!(x["xxh3_128"], y["xxh3_128"]);
        assert_eq!(x["documents_hit"], y["documents_hit"]);
        assert_eq!(x["items_found"], 1, "{x}");
    }
    let files: Vec<&str> = b
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["file"].as_str().unwrap())
        .collect();
    assert_eq!(
        files,
        [
            "s3://evals/bench/quiz.parquet",
            "s3://evals/bench/trivia.jsonl"
        ]
    );
    // the planted documents are the ones excluded
    let m = common::manifest(&s3);
    assert!(m["steps"][0]["dropped"]["contaminated"].as_u64().unwrap() >= 2);
    let excluded: Vec<String> = common::read_dir_batches(&s3.join("excluded"))
        .iter()
        .flat_map(|b| {
            let id = arrow::array::AsArray::as_string::<i32>(b.column_by_name("id").unwrap());
            (0..b.num_rows())
                .map(|i| id.value(i).to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        excluded.contains(&ids[10]) && excluded.contains(&ids[120]),
        "{excluded:?}"
    );

    // a glob matching nothing, a missing object and a missing bucket are named
    for (glob, needle) in [
        (
            "s3://evals/none/*.jsonl",
            "s3://evals/none/*.jsonl: matches no object",
        ),
        (
            "s3://evals/bench/gone.jsonl",
            "s3://evals/bench/gone.jsonl: no such object",
        ),
        (
            "s3://no-such-bucket/*.jsonl",
            "bucket `no-such-bucket` does not exist",
        ),
    ] {
        let err = run_steps(dir.path(), "bad", input, &decontaminate(&[glob])).unwrap_err();
        assert!(
            err.contains("steps[0] (decontaminate)") && err.contains(needle),
            "{glob}: {err}"
        );
    }
}

/// The score step with `model = "s3://…"`: a snapshot whose manifest and `model/` are in the
/// bucket scores exactly as the same snapshot on local disk; a tampered model object is refused.
#[test]
fn score_with_a_model_on_s3_scores_as_the_local_model() {
    let Some(m) = moto() else { return };
    create_bucket(m, "frozen");
    let dir = tempfile::tempdir().unwrap();
    let repo = curate_testkit::repo_root();
    let sample = curate_testkit::quickstart_sample();
    // snapshot A trains the student
    let train = format!(
        "[[steps]]\ntype = \"sample\"\nsize = 400\nholdout = 0.25\n\n[[steps]]\ntype = \"label\"\n\
         annotator = \"reference\"\nreference = {}\n\n[[steps]]\ntype = \"train\"\n\n\
         [[steps]]\ntype = \"score\"\n",
        q(&repo.join("configs/quickstart/reference.jsonl"))
    );
    let a = run_steps(dir.path(), "a", sample.to_str().unwrap(), &train).unwrap();
    for f in ["manifest.json", "model/model.bin", "model/model.json"] {
        upload(&a.join(f), &format!("s3://frozen/runs/a/{f}"));
    }
    // its documents scored again with A's model, from disk and from the bucket
    let data = format!("{}/data/*.parquet", a.display());
    let score = |model: &str| {
        format!(
            "[[steps]]\ntype = \"score\"\ncolumn = \"frozen_score\"\nmodel = {model:?}\nkeep = {{ top_fraction = 0.5 }}\n"
        )
    };
    let local = run_steps(dir.path(), "local", &data, &score(a.to_str().unwrap())).unwrap();
    let s3 = run_steps(dir.path(), "s3", &data, &score("s3://frozen/runs/a")).unwrap();
    assert_eq!(
        data_files(&local),
        data_files(&s3),
        "the same scores and cut"
    );
    assert_eq!(
        std::fs::read(a.join("model/model.bin")).unwrap(),
        std::fs::read(s3.join("model/model.bin")).unwrap(),
        "the model travels with the snapshot"
    );
    let stats = common::manifest(&s3)["steps"][0]["stats"]["model"].clone();
    assert_eq!(stats["source"], "s3://frozen/runs/a");
    assert_eq!(
        stats["model_hash"],
        common::manifest(&local)["steps"][0]["stats"]["model"]["model_hash"]
    );
    common::assert_verifies(&s3, "score with an s3 model");
    // the model object itself
    let file = run_steps(
        dir.path(),
        "file",
        &data,
        &score("s3://frozen/runs/a/model/model.bin"),
    )
    .unwrap();
    assert_eq!(data_files(&local), data_files(&file));

    // a model object changed after its run is refused before any data is written
    let mut bin = std::fs::read(a.join("model/model.bin")).unwrap();
    let last = bin.len() - 1;
    bin[last] ^= 1;
    upload(&a.join("manifest.json"), "s3://frozen/runs/t/manifest.json");
    store::put_bytes(&url("s3://frozen/runs/t/model/model.bin"), bin, false).unwrap();
    let err = run_steps(dir.path(), "tampered", &data, &score("s3://frozen/runs/t")).unwrap_err();
    assert!(
        err.contains("s3://frozen/runs/t/model/model.bin hashes to")
            && err.contains("the model changed after that run"),
        "{err}"
    );
    assert!(!dir.path().join("tampered/data").exists());
    // a prefix that holds no snapshot
    let err = run_steps(dir.path(), "none", &data, &score("s3://frozen/runs/none")).unwrap_err();
    assert!(
        err.contains("s3://frozen/runs/none/manifest.json does not exist"),
        "{err}"
    );
}
