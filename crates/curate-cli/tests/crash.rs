//! Crash safety, proven: SIGKILL a multi-stage run (filters → MinHash → sample → Claude labels
//! → student model) at seeded-random moments inside the filter pass, the MinHash stages and the
//! online labeling stage, resume it (sometimes killing the resume too), and require that every
//! time the snapshot's data files, exclusion files and manifest are byte-identical to an
//! uninterrupted run's, and that every input document ends up exactly once in `data/` or
//! `excluded/`.
//!
//! The Slurm trials (a killed array element, then a re-submission) live in `tests/slurm.rs`.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    assert_every_document_once, assert_same_snapshot, corpus_slice, q, slow_fake_claude,
    write_config,
};
use curate_testkit::anthropic::FakeAnthropic;

const KEY: &str = "sk-ant-crash-test";
/// Documents taken from the corpus (or the bundled slice) and their row-group size: 8 tasks per
/// pass, so a kill can land between, inside and across tasks.
const DOCS: usize = 1200;
const ROW_GROUP: usize = 150;

/// Where in the run a trial aims its kill.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// After the first task of the filter pass committed.
    FilterPass,
    /// After the first MinHash band-key task committed (inside the MinHash stages).
    MinHash,
    /// After the teacher has answered some of the sample (inside online labeling).
    Label,
}

/// A small deterministic generator (splitmix64) for the kill moments: the trials are random
/// but the same on every run, so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// One test fixture: the input, the fake teacher and the config every run shares.
struct Fixture {
    dir: tempfile::TempDir,
    server: FakeAnthropic,
    config: PathBuf,
    input_ids: Vec<String>,
}

impl Fixture {
    fn new() -> Fixture {
        // CURATE_TEST_KEEP=1 keeps the runs for a post-mortem.
        let dir = tempfile::Builder::new()
            .prefix("curate-crash-")
            .disable_cleanup(std::env::var_os("CURATE_TEST_KEEP").is_some())
            .tempdir()
            .unwrap();
        let server = slow_fake_claude(KEY, Duration::from_millis(8));
        let (input, input_ids) = corpus_slice(dir.path(), DOCS, ROW_GROUP);
        // One config for every run: the store path is relative (each run works in its own
        // directory), the output is given with --output.
        let body = format!(
            r#"[input]
paths = [{input}]
text_column = "text"
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
poll_interval_s = 0.01
timeout_s = 20

[[steps]]
type = "train"

[[steps]]
type = "score"
keep = {{ top_fraction = 0.5 }}

[output]
dir = "unused"
exclusion = true

[run]
seed = 11
"#,
            input = q(&input),
            url = server.base_url(),
        );
        let config = write_config(dir.path(), "crash.toml", &body);
        Fixture {
            dir,
            server,
            config,
            input_ids,
        }
    }

    /// A fresh working directory for one run (its label store lives there).
    fn workdir(&self, name: &str) -> PathBuf {
        let d = self.dir.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn spawn(&self, workdir: &Path) -> Child {
        self.spawn_with(workdir, &[])
    }

    fn spawn_with(&self, workdir: &Path, env: &[(&str, &str)]) -> Child {
        Command::new(env!("CARGO_BIN_EXE_curate"))
            .envs(env.iter().copied())
            .args(["run", "--quiet", "--threads", "2", "--config"])
            .arg(&self.config)
            .arg("--output")
            .arg(workdir.join("out"))
            .current_dir(workdir)
            .env("NO_COLOR", "1")
            .env("ANTHROPIC_API_KEY", KEY)
            .env_remove("CURATE_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Runs to completion and returns the snapshot directory.
    fn run_to_end(&self, workdir: &Path) -> PathBuf {
        let o = self.spawn(workdir).wait_with_output().unwrap();
        assert!(
            o.status.success(),
            "curate run failed in {}:\n{}",
            workdir.display(),
            String::from_utf8_lossy(&o.stderr)
        );
        workdir.join("out")
    }
}

/// Waits for the trial's moment, then SIGKILLs the run. Returns whether it was still running
/// (a kill after the run finished proves nothing and is not counted).
fn kill_at(fx: &Fixture, child: &mut Child, out: &Path, target: Target, rng: &mut Rng) -> bool {
    let t0 = Instant::now();
    let answered_before = fx.server.stats().messages_ok;
    let want_answers = 1 + rng.below(60);
    loop {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        let reached = match target {
            Target::FilterPass => common::committed(out, "pass-0") >= 1,
            // The only barrier stages before labeling are MinHash's (band keys, clusters, index).
            Target::MinHash => common::committed(out, "step-") >= 1,
            Target::Label => fx.server.stats().messages_ok - answered_before >= want_answers,
        };
        if reached {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(180),
            "{target:?} never reached"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(rng.below(40)));
    let running = child.try_wait().unwrap().is_none();
    let _ = Command::new("kill")
        .args(["-9", &child.id().to_string()])
        .status();
    child.wait().unwrap();
    running
}

/// The first stage with tasks left, as `curate status --json` reports it.
fn first_unfinished_stage(out: &Path) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_curate"))
        .args(["status", "--json"])
        .arg(out)
        .output()
        .unwrap();
    let st: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(st["complete"], false, "{st}");
    st["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["done"] != s["tasks"])
        .map(|s| s["stage"].as_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// Runs `trials` kill-and-resume trials aimed at `targets` (in turn) and checks each.
fn trials(name: &str, targets: &[Target], trials: usize, seed: u64) {
    let fx = Fixture::new();
    let reference = fx.run_to_end(&fx.workdir("reference"));
    assert_every_document_once(&reference, &fx.input_ids);
    let mut rng = Rng(seed);
    for t in 0..trials {
        let target = targets[t % targets.len()];
        let wd = fx.workdir(&format!("{name}-{t}"));
        let out = wd.join("out");
        // One kill, or (every third trial) a second kill during the resume.
        let kills = if t % 3 == 2 { 2 } else { 1 };
        for k in 0..kills {
            let mut child = fx.spawn(&wd);
            // The resume's kill lands anywhere in the rest of the run.
            let aim = if k == 0 { target } else { Target::FilterPass };
            let landed = kill_at(&fx, &mut child, &out, aim, &mut rng);
            // The first kill is aimed inside the run and must land there; the resume's may
            // come after it finished.
            assert!(
                landed || k > 0,
                "trial {t}: the run ended before the {target:?} kill"
            );
            if landed && k == 0 {
                assert!(
                    !out.join("manifest.json").exists(),
                    "trial {t}: a killed run left a manifest"
                );
                // The kill landed where it was aimed: the first unfinished stage (per
                // `curate status`, from the completion records) belongs to the target.
                let stage = first_unfinished_stage(&out);
                let aimed = match target {
                    Target::FilterPass => stage == "pass-0",
                    // the MinHash stages, or the pass that applies their result
                    Target::MinHash => stage.contains("minhash") || stage == "pass-1",
                    Target::Label => stage.contains("-label-"),
                };
                assert!(aimed, "trial {t}: {target:?} kill landed in {stage}");
            }
        }
        fx.run_to_end(&wd);
        assert_same_snapshot(&out, &reference, &format!("trial {t} ({target:?})"));
        assert_every_document_once(&out, &fx.input_ids);
        for sub in ["data", "excluded"] {
            for e in std::fs::read_dir(out.join(sub)).unwrap().flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                assert!(!n.starts_with('.') && !n.ends_with(".tmp"), "leftover {n}");
            }
        }
    }
}

#[test]
fn sigkill_inside_the_filter_pass_then_resume_is_identical() {
    trials("filter", &[Target::FilterPass], 4, 0xF1_17E2);
}

#[test]
fn sigkill_inside_the_minhash_stages_then_resume_is_identical() {
    trials("minhash", &[Target::MinHash], 4, 0x3141_5926);
}

#[test]
fn sigkill_inside_online_labeling_then_resume_is_identical() {
    trials("label", &[Target::Label], 4, 0x001A_BE15);
}

/// Killed inside finalize, after it wrote the manifest and before its record: the work
/// directory it finalizes from must still be there, so the resume finalizes again to the same
/// snapshot (the steps that publish files from it — MinHash, labels, the model, the score cut —
/// among them), and the work directory is gone once the run is complete.
#[test]
fn sigkill_inside_finalize_then_resume_is_identical() {
    let fx = Fixture::new();
    let reference = fx.run_to_end(&fx.workdir("reference"));
    let wd = fx.workdir("finalize");
    let out = wd.join("out");
    let mut child = fx.spawn_with(
        &wd,
        &[("CURATE_TEST_PAUSE_BEFORE_FINALIZE_COMMIT_MS", "60000")],
    );
    let t0 = Instant::now();
    while !out.join("manifest.json").exists() {
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        assert!(
            t0.elapsed() < Duration::from_secs(180),
            "finalize never reached"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // well inside the pause: whatever finalize does after its manifest is done
    std::thread::sleep(Duration::from_millis(500));
    assert!(child.try_wait().unwrap().is_none(), "the run ended early");
    let _ = Command::new("kill")
        .args(["-9", &child.id().to_string()])
        .status();
    child.wait().unwrap();
    assert!(
        out.join(".curate/work").is_dir(),
        "finalize removed its work directory before its record"
    );
    fx.run_to_end(&wd);
    assert_same_snapshot(&out, &reference, "killed inside finalize");
    assert!(
        !out.join(".curate/work").exists(),
        "the work directory outlived the finished run"
    );
}
