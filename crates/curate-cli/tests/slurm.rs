//! The Slurm executor on a real cluster (`.ci/setup.d/30-slurm.sh` starts a single-node one):
//! a multi-stage pipeline (FineWeb filters → MinHash → sample → Claude labels, from a fake
//! teacher on localhost) run as chained job arrays gives the same bytes as the local executor;
//! array elements SIGKILLed inside the filter pass, the MinHash stages and labeling are
//! reported with their logs, and re-submitting resumes to the same bytes.
//!
//! What may legitimately differ between executors: nothing in `data/`, `excluded/` or
//! `manifest.json` (the manifest holds no executor, host, timing or path facts; those go to
//! `run.json`, which only the local executor writes, and `.curate/`, which holds logs and batch
//! scripts). So those files are compared whole.
//!
//! Under `CI=true` a missing Slurm is a failure; elsewhere these tests skip, saying why.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use curate_testkit::anthropic::FakeAnthropic;

const KEY: &str = "sk-ant-slurm-test";
/// 600 documents in row groups of 150: four tasks in every pass, so arrays have several
/// elements and two run side by side on a 2-CPU node.
const DOCS: usize = 600;
const ROW_GROUP: usize = 150;

/// Whether a Slurm cluster answers; under CI its absence fails the test.
fn slurm_ready() -> bool {
    let ok = Command::new("sinfo")
        .args(["--noheader", "--format=%T"])
        .output()
        .is_ok_and(|o| {
            o.status.success()
                && String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .any(|l| matches!(l.trim(), "idle" | "mixed" | "allocated" | "completing"))
        });
    if ok {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "no Slurm cluster answers `sinfo` under CI: .ci/setup.d/30-slurm.sh must install and start one"
        );
    }
    eprintln!("skipped: no Slurm cluster (run .ci/setup.d/30-slurm.sh as root to start one)");
    false
}

/// The input, the fake teacher and the config every run of a test shares.
struct Fixture {
    dir: tempfile::TempDir,
    server: FakeAnthropic,
    config: PathBuf,
    /// This test's own link to the binary under test: the array elements run the binary that
    /// submitted them, and a rebuild of the shared target directory during the test must not
    /// swap it between the reference run and the Slurm runs.
    bin: PathBuf,
    input_ids: Vec<String>,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let server = slow_fake_claude(KEY, Duration::from_millis(10));
        let (input, input_ids) = corpus_slice(dir.path(), DOCS, ROW_GROUP);
        let body = format!(
            r#"[input]
paths = [{input}]
id_column = "id"

[[steps]]
preset = "fineweb"

[[steps]]
type = "minhash_dedup"

[[steps]]
type = "sample"
size = 80
holdout = 0.25

[[steps]]
type = "label"
annotator = "claude"
mode = "online"
concurrency = 2
base_url = "{url}"
store = "label-store"
initial_retry_delay_s = 0.005
max_retry_delay_s = 0.05
timeout_s = 20

[output]
exclusion = true
row_group_size = 100

[run]
seed = 5

[slurm]
cpus_per_task = 1
time = "10:00"
max_parallel = 4
"#,
            input = q(&input),
            url = server.base_url(),
        );
        let config = write_config(dir.path(), "slurm.toml", &body);
        let src = PathBuf::from(env!("CARGO_BIN_EXE_curate"));
        let bin = dir.path().join("curate");
        std::fs::hard_link(&src, &bin)
            .or_else(|_| std::fs::copy(&src, &bin).map(|_| ()))
            .unwrap();
        Fixture {
            dir,
            server,
            config,
            bin,
            input_ids,
        }
    }

    /// The pinned binary, with the environment every test run gets.
    fn curate(&self) -> Command {
        let mut c = Command::new(&self.bin);
        // the label step needs the key to be built, whatever the command
        c.env("NO_COLOR", "1")
            .env("ANTHROPIC_API_KEY", KEY)
            .env_remove("CURATE_LOG");
        c
    }

    /// Runs the pinned binary with `args`; asserts success and returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.curate().args(args).output().unwrap();
        assert!(
            o.status.success(),
            "curate {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// A fresh working directory (its label store lives there); the snapshot is `<it>/out`.
    fn workdir(&self, name: &str) -> PathBuf {
        let d = self.dir.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn command(&self, workdir: &Path, executor: &str) -> Command {
        let mut c = self.curate();
        c.args(["run", "--quiet", "--executor", executor, "--config"])
            .arg(&self.config)
            .args(["--output", "out"])
            .current_dir(workdir);
        if executor == "slurm" {
            c.arg("--wait");
        }
        c
    }

    fn run(&self, workdir: &Path, executor: &str) -> Output {
        self.command(workdir, executor).output().unwrap()
    }

    fn run_ok(&self, workdir: &Path, executor: &str) -> PathBuf {
        let o = self.run(workdir, executor);
        assert!(
            o.status.success(),
            "curate run --executor {executor} failed in {}:\n{}",
            workdir.display(),
            String::from_utf8_lossy(&o.stderr)
        );
        workdir.join("out")
    }
}

#[test]
fn slurm_run_is_byte_identical_to_the_local_run() {
    if !slurm_ready() {
        return;
    }
    let fx = Fixture::new();
    let local = fx.run_ok(&fx.workdir("local"), "local");
    assert_every_document_once(&local, &fx.input_ids);
    let wd = fx.workdir("slurm");
    // submit and return; then `--wait` follows the queued jobs instead of submitting again
    let o = fx
        .curate()
        .args([
            "run",
            "--quiet",
            "--executor",
            "slurm",
            "--output",
            "out",
            "--config",
        ])
        .arg(&fx.config)
        .current_dir(&wd)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("submitted") && err.contains("→"), "{err}");
    let o = fx.run(&wd, "slurm");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("still queued or running") && !err.contains("submitted"),
        "{err}"
    );
    let out = wd.join("out");
    assert_same_snapshot(&out, &local, "slurm vs local");
    // the artefacts the manifest lists (labels) verify too
    fx.ok(&["snapshot", "verify", out.to_str().unwrap()]);

    // one job per stage, chained; every task left a log; status reads the records alone
    let plan = fx
        .curate()
        .current_dir(&wd)
        .args(["plan", "--output", "out", "--config"])
        .arg(&fx.config)
        .output()
        .unwrap();
    assert!(
        plan.status.success(),
        "{}",
        String::from_utf8_lossy(&plan.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let stages = plan["stages"].as_array().unwrap();
    assert!(stages.len() >= 8, "{plan}");
    let st: serde_json::Value =
        serde_json::from_str(&fx.ok(&["status", out.to_str().unwrap(), "--json"])).unwrap();
    assert_eq!(st["complete"], true);
    let jobs = st["slurm"]["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), stages.len());
    for (job, stage) in jobs.iter().zip(stages) {
        assert_eq!(job["stage"], stage["name"]);
        let tasks = stage["tasks"].as_u64().unwrap() as usize;
        assert_eq!(job["indices"].as_array().unwrap().len(), tasks);
        for i in 0..tasks {
            let log = out.join(format!(
                ".curate/logs/{}/{i}.out",
                stage["name"].as_str().unwrap()
            ));
            let text = std::fs::read_to_string(&log).unwrap();
            assert!(text.starts_with("== curate task: stage"), "{text}");
        }
    }
    assert_eq!(stages[0]["tasks"], 4, "four tasks per pass");

    // submitting a finished run again submits nothing
    let o = fx.run(&wd, "slurm");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success() && err.contains("nothing to submit"),
        "{err}"
    );
    assert_same_snapshot(&out, &local, "after a no-op re-submission");
}

/// Where a trial aims its kill.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// A task of the filter pass.
    FilterPass,
    /// A task of a MinHash stage.
    MinHash,
    /// The labeling task, after the teacher answered some of the sample.
    Label,
}

impl Target {
    fn stage_matches(self, stage: &str) -> bool {
        match self {
            Target::FilterPass => stage == "pass-0",
            Target::MinHash => stage.contains("minhash_dedup"),
            Target::Label => stage.contains("-label-"),
        }
    }
}

/// How the element is killed.
#[derive(Debug, Clone, Copy)]
enum Kill {
    /// `scancel --signal=KILL <job>_<index>`: Slurm delivers the SIGKILL.
    Scancel,
    /// SIGKILL straight to the `curate task` process.
    Process,
}

/// A live `curate task` process of `out`: (pid, stage, index).
fn task_processes(out: &Path) -> Vec<(u32, String, usize)> {
    let want = out.canonicalize().unwrap_or_else(|_| out.to_path_buf());
    let mut found = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return found;
    };
    for p in procs.flatten() {
        let Ok(pid) = p.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(p.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmd
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let value = |flag: &str| {
            args.iter()
                .position(|a| a == flag)
                .and_then(|i| args.get(i + 1))
        };
        if args.get(1).map(String::as_str) != Some("task")
            || value("--output").map(PathBuf::from) != Some(want.clone())
            || !alive(pid)
        {
            continue;
        }
        if let (Some(stage), Some(index)) = (value("--stage"), value("--index"))
            && let Ok(i) = index.parse()
        {
            found.push((pid, stage.clone(), i));
        }
    }
    found
}

/// The process exists and is not a zombie (read from /proc, as a zombie still "exists").
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
        !s.lines()
            .any(|l| l.starts_with("State:") && l.contains('Z'))
    })
}

/// The Slurm job id of `stage` in the last submission to `out`.
fn job_of(out: &Path, stage: &str) -> Option<String> {
    let sub: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join(".curate/slurm/submission.json")).ok()?)
            .ok()?;
    sub["jobs"]
        .as_array()?
        .iter()
        .find(|j| j["stage"] == stage)
        .and_then(|j| j["job_id"].as_str().map(String::from))
}

/// Waits for a live task of the target stage, then kills it. Returns the killed (stage,
/// index), or `None` when the run ended first.
fn kill_inside(
    fx: &Fixture,
    run: &mut Child,
    out: &Path,
    target: Target,
    how: Kill,
    delay_ms: u64,
    answers: u64,
) -> Option<(String, usize)> {
    let t0 = Instant::now();
    let answered_before = fx.server.stats().messages_ok;
    loop {
        if run.try_wait().unwrap().is_some() {
            return None;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "{target:?}: no task reached"
        );
        let victim = task_processes(out)
            .into_iter()
            .find(|(_, s, _)| target.stage_matches(s));
        let Some((pid, stage, index)) = victim else {
            std::thread::sleep(Duration::from_millis(2));
            continue;
        };
        if matches!(target, Target::Label) {
            // inside labeling: some answers are already in the label store
            while fx.server.stats().messages_ok - answered_before < answers && alive(pid) {
                std::thread::sleep(Duration::from_millis(1));
            }
        } else {
            std::thread::sleep(Duration::from_millis(delay_ms));
        }
        if !alive(pid) {
            continue; // it finished first: aim at the next one
        }
        match how {
            Kill::Process => {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
            Kill::Scancel => {
                // the submission is recorded job by job, possibly after the task started
                let t = Instant::now();
                let job = loop {
                    if let Some(j) = job_of(out, &stage) {
                        break j;
                    }
                    assert!(
                        t.elapsed() < Duration::from_secs(30),
                        "no job id for {stage}"
                    );
                    std::thread::sleep(Duration::from_millis(2));
                };
                // a task that has just finished makes scancel fail: that kill missed
                let _ = Command::new("scancel")
                    .args(["--signal=KILL", &format!("{job}_{index}")])
                    .output()
                    .unwrap();
            }
        }
        // the kill landed if the task is gone without a completion record
        let t = Instant::now();
        while alive(pid) && t.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(2));
        }
        assert!(!alive(pid), "{stage} task {index} survived SIGKILL");
        // `.curate/done/<run id>/<stage>/<index>.json`
        let recorded = std::fs::read_dir(out.join(".curate/done"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|r| r.path().join(format!("{stage}/{index:06}.json")).exists());
        if recorded {
            continue; // it finished just before the signal: aim at the next one
        }
        return Some((stage, index));
    }
}

#[test]
fn killed_array_tasks_are_reported_and_resubmission_resumes_identically() {
    if !slurm_ready() {
        return;
    }
    let fx = Fixture::new();
    let reference = fx.run_ok(&fx.workdir("reference"), "local");
    assert_every_document_once(&reference, &fx.input_ids);
    let trials = [
        (Target::FilterPass, Kill::Scancel, 15, 0),
        (Target::MinHash, Kill::Process, 0, 0),
        (Target::Label, Kill::Scancel, 0, 25),
    ];
    for (t, &(target, how, delay_ms, answers)) in trials.iter().enumerate() {
        let what = format!("trial {t} ({target:?}, {how:?})");
        let wd = fx.workdir(&format!("trial-{t}"));
        let out = wd.join("out");
        let mut run = fx
            .command(&wd, "slurm")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let killed = kill_inside(&fx, &mut run, &out, target, how, delay_ms, answers);
        let o = run.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        let (stage, index) = killed.unwrap_or_else(|| panic!("{what}: the run ended first"));
        // a killed element that still committed its record would not stop the run: this one did
        assert!(!o.status.success(), "{what}: the run finished anyway");
        assert!(!out.join("manifest.json").exists(), "{what}: a manifest");
        let log = out.join(format!(".curate/logs/{stage}/{index}.out"));
        assert!(
            err.contains(&format!("stage {stage} task {index}"))
                && err.contains(&log.canonicalize().unwrap().display().to_string()),
            "{what}: the failure report names the task and its log:\n{err}"
        );
        assert!(err.contains("never started"), "{what}: {err}");
        // status shows the progress and the killed task's log, without asking Slurm
        let st = fx.ok(&["status", out.to_str().unwrap()]);
        assert!(
            st.contains(&format!("task {index} started, no completion record")),
            "{what}: {st}"
        );
        // re-submitting resumes: only unfinished tasks are submitted
        let o = fx.run(&wd, "slurm");
        let err2 = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{what}: resume failed:\n{err2}");
        let sub: serde_json::Value = serde_json::from_slice(
            &std::fs::read(out.join(".curate/slurm/submission.json")).unwrap(),
        )
        .unwrap();
        let first = &sub["jobs"][0];
        if stage != "pass-0" {
            assert_ne!(first["stage"], "pass-0", "{what}: finished stages re-run");
        } else {
            assert!(
                first["indices"].as_array().unwrap().len() < 4,
                "{what}: finished pass-0 tasks re-run: {sub}"
            );
        }
        assert_same_snapshot(&out, &reference, &what);
        assert_every_document_once(&out, &fx.input_ids);
    }
}

#[test]
fn slurm_config_problems_are_all_reported_and_a_missing_sbatch_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.parquet");
    write_texts(&input, &["one two three", "four five six"], 1);
    let cfg = write_config(
        tmp.path(),
        "c.toml",
        &format!(
            r#"[input]
paths = [{}]
[run]
executor = "slrum"
[slurm]
partiton = "cpu"
time = "2 hours"
mem = "4GB"
max_parallel = 0
extra_args = ["--array=0-9"]
"#,
            q(&input)
        ),
    );
    let err = run_err(&["validate", "--config", cfg.to_str().unwrap()]);
    for want in [
        "run: `executor`: unknown variant `slrum`, expected `local` or `slurm`",
        "slurm: `partiton`: unknown key",
        "did you mean `partition`?",
        "slurm: `time`: \"2 hours\" is not a Slurm time",
        "slurm: `mem`: \"4GB\" is not a Slurm memory size",
        "slurm: `max_parallel`: 0 is out of range",
        "slurm: `extra_args[0]`: \"--array\" is set by curate itself",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    // without the Slurm client commands, --executor slurm says so before touching anything
    let cfg = write_config(
        tmp.path(),
        "ok.toml",
        &format!("[input]\npaths = [{}]\n", q(&input)),
    );
    let empty = tmp.path().join("empty-path");
    std::fs::create_dir(&empty).unwrap();
    let o = curate()
        .env("PATH", &empty)
        .args(["run", "--executor", "slurm", "--config"])
        .arg(&cfg)
        .arg("--output")
        .arg(tmp.path().join("o"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("`sbatch` not found"), "{err}");
    assert!(!tmp.path().join("o").exists(), "nothing may be written");
}
