//! The quality steps driven through the core traits, the way the executor drives them: observers
//! per task, the barrier's global stages, then processors.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arrow::array::{Array, ArrayRef, AsArray, Float32Array, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Float32Type, Schema};
use arrow::record_batch::RecordBatch;
use curate_core::hash::mix64;
use curate_core::{BuildEnv, Counters, DocBatch, StageContext, Step, StepSpec, TaskContext};
use curate_quality::model::Head;
use curate_quality::train::{CalibrationChoice, evaluate};
use curate_quality::{Keep, Model, QualityThresholdConfig, ScoreConfig, TrainConfig};

const GOOD: [&str; 6] = [
    "theorem",
    "proof",
    "lecture",
    "chapter",
    "experiment",
    "history",
];
const BAD: [&str; 6] = ["click", "buy", "casino", "sale", "cheap", "deal"];
const FILL: [&str; 5] = ["the", "a", "of", "and", "to"];

/// A document whose share of "good" words grows with its label (0–5), plus noise.
fn doc(i: u64, seed: u64) -> (String, f32) {
    let h = mix64(i, seed);
    let label = (h % 6) as f32;
    let mut t = String::new();
    for w in 0..40u64 {
        let r = mix64(w, h);
        let good = (r % 10) < 1 + (label as u64 * 8) / 5;
        let pool = if good { &GOOD } else { &BAD };
        t.push_str(pool[(r >> 8) as usize % 6]);
        t.push(' ');
        t.push_str(FILL[(r >> 16) as usize % 5]);
        t.push(' ');
    }
    (t, label)
}

/// `n` documents with labels on rows `i % 3 != 2` and a split on labelled rows.
fn batch(range: std::ops::Range<u64>, seed: u64, binary: bool) -> DocBatch {
    let mut texts = Vec::new();
    let mut labels = Vec::new();
    let mut splits = Vec::new();
    for i in range.clone() {
        let (t, l) = doc(i, seed);
        texts.push(t);
        let labelled = i % 3 != 2;
        let l = if binary { (l >= 3.0) as u8 as f32 } else { l };
        labels.push(labelled.then_some(l));
        splits.push(labelled.then_some(if mix64(i, 99).is_multiple_of(4) {
            "holdout"
        } else {
            "train"
        }));
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("text", DataType::Utf8, true),
        Field::new("teacher_score", DataType::Float32, true),
        Field::new("split", DataType::Utf8, true),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(texts)),
        Arc::new(Float32Array::from(labels)),
        Arc::new(StringArray::from(splits)),
    ];
    let rb = RecordBatch::try_new(schema, cols).unwrap();
    DocBatch::new(rb, 0, None, UInt64Array::from(range.collect::<Vec<_>>()))
}

fn env(index: usize, previous: &[&str]) -> BuildEnv {
    BuildEnv {
        seed: 42,
        index,
        text_column: "text".into(),
        id_column: None,
        previous: previous.iter().map(|s| s.to_string()).collect(),
        config_dir: PathBuf::from("."),
    }
}

/// Splits `0..n` into `tasks` contiguous ranges of batches of 100.
fn task_batches(n: u64, tasks: usize, seed: u64, binary: bool) -> Vec<Vec<DocBatch>> {
    let per = n.div_ceil(tasks as u64);
    (0..tasks as u64)
        .map(|t| {
            let (lo, hi) = (t * per, ((t + 1) * per).min(n));
            (lo..hi)
                .step_by(100)
                .map(|s| batch(s..(s + 100).min(hi), seed, binary))
                .collect()
        })
        .collect()
}

/// Runs a step's barrier (observers, then stages) like the executor does.
fn run_barrier(
    step: &dyn Step,
    tasks: &[Vec<DocBatch>],
    dir: &Path,
    step_dirs: &[PathBuf],
) -> Counters {
    let b = step.barrier().expect("a barrier");
    let mut counters = Counters::default();
    for (t, batches) in tasks.iter().enumerate() {
        let cx = TaskContext {
            task: t,
            tasks: tasks.len(),
            dir,
            step_dirs,
            seed: 42,
        };
        let mut obs = b.observer(&cx).unwrap();
        for batch in batches {
            obs.observe(batch, &mut counters).unwrap();
        }
        obs.finish(&mut counters).unwrap();
    }
    let stage_counters = Mutex::new(Counters::default());
    for (s, spec) in b.stages(tasks.len()).iter().enumerate() {
        for task in 0..spec.tasks {
            let cx = StageContext {
                stage: s,
                task,
                dir,
                step_dirs,
                observed_tasks: tasks.len(),
                seed: 42,
                counters: &stage_counters,
            };
            b.run_stage_task(&cx).unwrap();
        }
    }
    counters.merge(&stage_counters.lock().unwrap());
    counters
}

/// Trains with `tasks` observer tasks; returns (model bytes, metrics).
fn train(dir: &Path, tasks: usize, binary: bool) -> (Vec<u8>, serde_json::Value) {
    let cfg = TrainConfig::default();
    let step = cfg.build(&env(0, &[])).unwrap();
    let dirs = vec![dir.to_path_buf()];
    run_barrier(
        step.as_ref(),
        &task_batches(1500, tasks, 7, binary),
        dir,
        &dirs,
    );
    let published = step.publish(dir).unwrap();
    let files: Vec<&str> = published.files.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(
        files,
        vec![
            "model/model.bin",
            "model/model.json",
            "quality/metrics.json"
        ]
    );
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("metrics.json")).unwrap()).unwrap();
    (std::fs::read(dir.join("model.bin")).unwrap(), metrics)
}

#[test]
fn train_is_deterministic_across_task_splits_and_reports_metrics() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (m1, metrics) = train(a.path(), 1, false);
    let (m3, metrics3) = train(b.path(), 3, false);
    assert_eq!(
        m1, m3,
        "same labels and seed give the same model bytes whatever the task split"
    );
    assert_eq!(metrics, metrics3);
    for k in [
        "auc",
        "spearman",
        "f1",
        "accuracy",
        "ece",
        "n_holdout",
        "ece_raw",
        "reliability",
        "threshold_curve",
    ] {
        assert!(
            metrics.get(k).is_some_and(|v| !v.is_null()),
            "metrics lack {k}: {metrics}"
        );
    }
    // a 0–5 teacher: ordinal and linear heads compete on validation (these labels count cue
    // words, which the linear head fits)
    assert_eq!(metrics["head"], "linear");
    assert_eq!(metrics["threshold"], 3.0);
    // 1500 docs, 2/3 labelled, ~1/4 of those held out.
    let n_hold = metrics["n_holdout"].as_u64().unwrap();
    assert!((150..350).contains(&n_hold), "{n_hold}");
    assert!(metrics["auc"].as_f64().unwrap() > 0.9, "{}", metrics["auc"]);
    assert!(
        metrics["spearman"].as_f64().unwrap() > 0.8,
        "{}",
        metrics["spearman"]
    );
    // Token counts of held-out docs come from the tokenizer (80 words each, > 0).
    let curve = metrics["threshold_curve"].as_array().unwrap();
    assert!(curve[0]["kept_tokens"].as_u64().unwrap() > 80 * n_hold / 2);
    assert_eq!(curve[0]["kept_docs"].as_u64().unwrap(), n_hold);
    let model = Model::from_bytes(Path::new("model.bin"), &m1).unwrap();
    assert_eq!(
        model.header.calibration.is_some(),
        metrics["calibration"] == "isotonic_strict"
    );
    // The model describes itself: held-out metrics, the selection record and named features.
    assert_eq!(model.header.metrics["auc"], metrics["auc"]);
    let d = model.describe(10);
    let pos: Vec<&str> = d["strongest_positive"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["feature"].as_str().unwrap())
        .collect();
    assert!(
        pos.iter().any(|f| GOOD.iter().any(|g| f.contains(g))),
        "{pos:?}"
    );
    let neg: Vec<&str> = d["strongest_negative"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["feature"].as_str().unwrap())
        .collect();
    assert!(
        neg.iter().any(|f| BAD.iter().any(|b| f.contains(b))),
        "{neg:?}"
    );
    assert!(
        metrics["selection"].as_array().unwrap().len() >= 2,
        "{metrics}"
    );
    assert_eq!(
        curate_quality::model::content_hash(&m1),
        metrics["model_hash"].as_str().unwrap()
    );
}

#[test]
fn binary_labels_use_a_logistic_head() {
    let d = tempfile::tempdir().unwrap();
    let (_, metrics) = train(d.path(), 2, true);
    assert_eq!(metrics["head"], "logistic");
    assert_eq!(metrics["threshold"], 0.5);
    assert!(metrics["auc"].as_f64().unwrap() > 0.9, "{metrics}");
}

#[test]
fn calibration_improves_ece_on_fresh_held_out_data() {
    // A linear head under a strong L2 penalty squeezes its scores toward the mean: it ranks
    // well but is badly calibrated.
    let dir = tempfile::tempdir().unwrap();
    let cfg = TrainConfig {
        head: curate_quality::train::HeadChoice::Linear,
        l2: 0.3,
        calibration: CalibrationChoice::Isotonic,
        ..TrainConfig::default()
    };
    let step = cfg.build(&env(0, &[])).unwrap();
    let dirs = vec![dir.path().to_path_buf()];
    run_barrier(
        step.as_ref(),
        &task_batches(1500, 2, 7, false),
        dir.path(),
        &dirs,
    );
    let model = Model::load(&dir.path().join("model.bin")).unwrap();
    assert!(model.header.calibration.is_some());
    // Fresh documents (another seed) never seen by training or calibration.
    let mut raw = Vec::new();
    let mut cal = Vec::new();
    let mut labels = Vec::new();
    let mut sc = model.scratch();
    for i in 0..3000 {
        let (t, l) = doc(i, 1234);
        let s = model.linear(t.as_bytes(), &mut sc);
        raw.push(model.raw_of(s));
        cal.push(model.calibrated_of(s));
        labels.push(l);
    }
    let ece = |p: &[f32]| {
        let t = curate_quality::metrics::reliability(p, &labels, 0.0, 5.0, 10);
        curate_quality::metrics::ece(&t, 0.0, 5.0).unwrap()
    };
    let (before, after) = (ece(&raw), ece(&cal));
    assert!(after < before * 0.7, "ECE before {before}, after {after}");
    // The held-out report (cross-fitted) agrees in direction.
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("metrics.json")).unwrap()).unwrap();
    assert!(
        m["ece"].as_f64().unwrap() < m["ece_raw"].as_f64().unwrap(),
        "{m}"
    );
}

#[test]
fn evaluate_without_calibration_keeps_raw_scores() {
    let labels = [0.0f32, 1.0, 0.0, 1.0];
    // Linear scores whose logistic is 0.2, 0.9, 0.4, 0.6.
    let s: Vec<f32> = [0.2f32, 0.9, 0.4, 0.6]
        .iter()
        .map(|p| (p / (1.0 - p)).ln())
        .collect();
    let ev = evaluate(
        &s,
        &labels,
        &[0, 1, 2, 3],
        &[10; 4],
        &Head::Logistic,
        1.0,
        0.5,
        CalibrationChoice::None,
        1,
    );
    assert!(ev.calibration.is_none());
    assert_eq!(ev.metrics["auc"], 1.0);
    assert_eq!(ev.metrics["accuracy"], 1.0);
    assert_eq!(ev.metrics["ece_raw"], ev.metrics["ece"]);
}

/// Trains in `dir/0`, returns the step dirs [train, score].
fn trained(root: &Path) -> Vec<PathBuf> {
    let dirs = vec![root.join("0"), root.join("1")];
    for d in &dirs {
        std::fs::create_dir_all(d).unwrap();
    }
    let step = TrainConfig::default().build(&env(0, &[])).unwrap();
    run_barrier(
        step.as_ref(),
        &task_batches(1500, 2, 7, false),
        &dirs[0],
        &dirs,
    );
    dirs
}

fn process(
    step: &dyn Step,
    tasks: &[Vec<DocBatch>],
    dir: &Path,
    dirs: &[PathBuf],
) -> (Vec<(u64, f32)>, usize) {
    let mut kept = Vec::new();
    let mut dropped = 0;
    for (t, batches) in tasks.iter().enumerate() {
        let cx = TaskContext {
            task: t,
            tasks: tasks.len(),
            dir,
            step_dirs: dirs,
            seed: 42,
        };
        let mut p = step.processor(&cx).unwrap();
        let mut c = Counters::default();
        for b in batches {
            let mut b = b.clone();
            p.process(&mut b, &mut c).unwrap();
            dropped += b.dropped();
            let s = b
                .column("quality_score")
                .unwrap()
                .as_primitive::<Float32Type>()
                .clone();
            assert_eq!(s.null_count(), 0);
            for i in 0..b.len() {
                if !b.is_dropped(i) {
                    kept.push((b.keys().value(i), s.value(i)));
                }
            }
        }
    }
    kept.sort_by_key(|k| k.0);
    (kept, dropped)
}

#[test]
fn score_threshold_adds_calibrated_column_and_drops_below() {
    let root = tempfile::tempdir().unwrap();
    let dirs = trained(root.path());
    let cfg: ScoreConfig =
        serde_json::from_value(serde_json::json!({"keep": {"threshold": 3.0}})).unwrap();
    let step = cfg.build(&env(1, &["train"])).unwrap();
    assert!(step.barrier().is_none());
    assert_eq!(step.reasons(), vec!["below_quality_threshold"]);
    let tasks = task_batches(600, 2, 11, false);
    let (kept, dropped) = process(step.as_ref(), &tasks, &dirs[1], &dirs);
    assert_eq!(kept.len() + dropped, 600);
    assert!(kept.iter().all(|k| k.1 >= 3.0));
    assert!(
        dropped > 100 && kept.len() > 100,
        "kept {} dropped {dropped}",
        kept.len()
    );
    // Same scores again (determinism), and the kept ones are mostly truly good documents.
    let (again, _) = process(step.as_ref(), &tasks, &dirs[1], &dirs);
    assert_eq!(kept, again);
    let good = kept.iter().filter(|(k, _)| doc(*k, 11).1 >= 3.0).count();
    assert!(
        good as f64 > 0.8 * kept.len() as f64,
        "{good} of {}",
        kept.len()
    );
}

#[test]
fn score_without_train_step_is_refused() {
    let cfg: ScoreConfig = serde_json::from_value(serde_json::json!({})).unwrap();
    let e = cfg
        .build(&env(2, &["sample", "label"]))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("no `train` step"), "{e}");
}

#[test]
fn top_fraction_is_exact_and_independent_of_tasks() {
    let root = tempfile::tempdir().unwrap();
    let dirs = trained(root.path());
    let cfg: ScoreConfig =
        serde_json::from_value(serde_json::json!({"keep": {"top_fraction": 0.1}})).unwrap();
    let step = cfg.build(&env(1, &["train"])).unwrap();
    let mut results = Vec::new();
    for tasks in [1usize, 3] {
        let sdir = root.path().join(format!("score-{tasks}"));
        std::fs::create_dir_all(&sdir).unwrap();
        let tb = task_batches(1000, tasks, 11, false);
        run_barrier(step.as_ref(), &tb, &sdir, &dirs);
        let (kept, dropped) = process(step.as_ref(), &tb, &sdir, &dirs);
        assert_eq!(kept.len(), 100);
        assert_eq!(dropped, 900);
        results.push(kept);
    }
    assert_eq!(results[0], results[1]);

    // Re-cutting the stored scores without the model: the 0.05 top of the kept set by score.
    let th: QualityThresholdConfig =
        serde_json::from_value(serde_json::json!({"keep": {"top_fraction": 0.5}})).unwrap();
    assert_eq!(th.keep, Keep::TopFraction(0.5));
    let tstep = th.build(&env(2, &["train", "score"])).unwrap();
    let tdir = root.path().join("threshold");
    std::fs::create_dir_all(&tdir).unwrap();
    let kept = &results[0];
    let scored = vec![vec![score_only_batch(kept)]];
    run_barrier(tstep.as_ref(), &scored, &tdir, &dirs);
    let cx = TaskContext {
        task: 0,
        tasks: 1,
        dir: &tdir,
        step_dirs: &dirs,
        seed: 42,
    };
    let mut p = tstep.processor(&cx).unwrap();
    let mut b = scored[0][0].clone();
    p.process(&mut b, &mut Counters::default()).unwrap();
    assert_eq!(b.len() - b.dropped(), 50);
}

#[test]
fn the_stored_scores_reproduce_the_score_steps_cut() {
    // Score every document without a cut, then cut the top 10 % in the score step: the kept set
    // is exactly what `quality_threshold` keeps from the stored column alone (same order, same
    // tie-break by key), and the stored scores spread (no flat calibration steps).
    let root = tempfile::tempdir().unwrap();
    let dirs = trained(root.path());
    let tb = task_batches(1000, 2, 11, false);
    let all_step = serde_json::from_value::<ScoreConfig>(serde_json::json!({}))
        .unwrap()
        .build(&env(1, &["train"]))
        .unwrap();
    let (all, _) = process(all_step.as_ref(), &tb, &dirs[1], &dirs);
    assert_eq!(all.len(), 1000);
    let mut distinct: Vec<u32> = all.iter().map(|k| k.1.to_bits()).collect();
    distinct.sort_unstable();
    distinct.dedup();
    assert!(
        distinct.len() > 950,
        "{} distinct scores of 1000",
        distinct.len()
    );
    let cfg: ScoreConfig =
        serde_json::from_value(serde_json::json!({"keep": {"top_fraction": 0.1}})).unwrap();
    let step = cfg.build(&env(1, &["train"])).unwrap();
    let sdir = root.path().join("cut");
    std::fs::create_dir_all(&sdir).unwrap();
    run_barrier(step.as_ref(), &tb, &sdir, &dirs);
    let (kept, _) = process(step.as_ref(), &tb, &sdir, &dirs);
    let stats = step.publish(&sdir).unwrap().stats.unwrap();
    assert_eq!(stats["cut_column"], "quality_score");
    let min_kept = kept.iter().map(|k| k.1).fold(f32::MAX, f32::min);
    assert_eq!(
        stats["keep"]["min_kept_score"].as_f64().unwrap() as f32,
        min_kept
    );
    // The same rule over the stored column.
    let th: QualityThresholdConfig =
        serde_json::from_value(serde_json::json!({"keep": {"top_fraction": 0.1}})).unwrap();
    let tstep = th.build(&env(2, &["train", "score"])).unwrap();
    let tdir = root.path().join("recut");
    std::fs::create_dir_all(&tdir).unwrap();
    let scored = vec![vec![score_only_batch(&all)]];
    run_barrier(tstep.as_ref(), &scored, &tdir, &dirs);
    let cx = TaskContext {
        task: 0,
        tasks: 1,
        dir: &tdir,
        step_dirs: &dirs,
        seed: 42,
    };
    let mut p = tstep.processor(&cx).unwrap();
    let mut b = scored[0][0].clone();
    p.process(&mut b, &mut Counters::default()).unwrap();
    let recut: Vec<(u64, f32)> = (0..b.len())
        .filter(|&i| !b.is_dropped(i))
        .map(|i| (b.keys().value(i), all[i].1))
        .collect();
    assert_eq!(recut, kept);
    // And a threshold at the lowest kept score keeps the same set.
    let by_threshold: Vec<(u64, f32)> = all.iter().filter(|k| k.1 >= min_kept).copied().collect();
    assert_eq!(by_threshold, kept);
}

fn score_only_batch(kept: &[(u64, f32)]) -> DocBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("text", DataType::Utf8, true),
        Field::new("quality_score", DataType::Float32, true),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![""; kept.len()])),
        Arc::new(Float32Array::from(
            kept.iter().map(|k| k.1).collect::<Vec<_>>(),
        )),
    ];
    let rb = RecordBatch::try_new(schema, cols).unwrap();
    DocBatch::new(
        rb,
        0,
        None,
        UInt64Array::from(kept.iter().map(|k| k.0).collect::<Vec<_>>()),
    )
}

#[test]
fn external_reference_positives_are_learnt_from() {
    // A `label` step's labels.parquet holding positives from outside the input (null key), as
    // the `reference` teacher writes; the input rows are all negatives.
    let root = tempfile::tempdir().unwrap();
    let dirs = vec![root.path().join("label"), root.path().join("train")];
    for d in &dirs {
        std::fs::create_dir_all(d).unwrap();
    }
    let n_ref = 400;
    let good: Vec<String> = (0..4000u64)
        .map(|i| doc(i, 5))
        .filter(|d| d.1 >= 4.0)
        .map(|d| d.0)
        .take(n_ref as usize)
        .collect();
    assert_eq!(good.len(), n_ref as usize);
    let schema = Arc::new(Schema::new(vec![
        Field::new("key", DataType::UInt64, true),
        Field::new("split", DataType::Utf8, false),
        Field::new("score", DataType::Float32, true),
        Field::new("text", DataType::Utf8, false),
    ]));
    let rb = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(UInt64Array::from(vec![None::<u64>; good.len()])),
            Arc::new(StringArray::from(
                (0..good.len())
                    .map(|i| if i % 4 == 0 { "holdout" } else { "train" })
                    .collect::<Vec<_>>(),
            )),
            Arc::new(Float32Array::from(vec![1.0f32; good.len()])),
            Arc::new(StringArray::from(good.clone())),
        ],
    )
    .unwrap();
    let f = std::fs::File::create(dirs[0].join("labels.parquet")).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(f, schema, None).unwrap();
    w.write(&rb).unwrap();
    w.close().unwrap();
    // Input: bad documents (label ≤ 1) labelled 0.
    let neg: Vec<DocBatch> = {
        let mut b = batch(0..1200, 8, false);
        let labels = b
            .column("teacher_score")
            .unwrap()
            .as_primitive::<Float32Type>()
            .clone();
        let keep: arrow::array::BooleanArray = labels
            .iter()
            .map(|l| Some(l.is_some_and(|l| l <= 1.0)))
            .collect();
        let rec = arrow::compute::filter_record_batch(b.record(), &keep).unwrap();
        let keys = arrow::compute::filter(b.keys(), &keep)
            .unwrap()
            .as_primitive::<arrow::datatypes::UInt64Type>()
            .clone();
        b = DocBatch::new(rec, 0, None, keys);
        let n = b.len();
        b.set_column(
            "teacher_score",
            Arc::new(Float32Array::from(vec![0.0f32; n])),
        );
        vec![b]
    };
    let step = TrainConfig::default().build(&env(1, &["label"])).unwrap();
    let c = run_barrier(step.as_ref(), &[neg], &dirs[1], &dirs);
    assert_eq!(c.get("external_labelled_rows"), n_ref as f64);
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dirs[1].join("metrics.json")).unwrap()).unwrap();
    assert_eq!(m["head"], "logistic");
    assert!(m["n_positive"].as_u64().unwrap() >= 80, "{m}");
    assert!(m["auc"].as_f64().unwrap() > 0.95, "{m}");
}

#[test]
fn auto_calibration_is_rejected_when_raw_scores_are_already_calibrated() {
    // Raw scores of 0.5 (linear score 0 under a logistic head) for a 50/50 mix are perfectly
    // calibrated (ECE 0): nothing to gain.
    let labels: Vec<f32> = (0..40u64).map(|i| (i % 2) as f32).collect();
    let keys: Vec<u64> = (0..40).collect();
    let s = vec![0.0f32; 40];
    let run = |c| {
        evaluate(
            &s,
            &labels,
            &keys,
            &[1; 40],
            &Head::Logistic,
            1.0,
            0.5,
            c,
            3,
        )
    };
    let ev = run(CalibrationChoice::Auto);
    assert!(ev.calibration.is_none());
    assert_eq!(ev.metrics["calibration_rejected"], true);
    assert_eq!(ev.metrics["ece_raw"], 0.0);
    assert!(run(CalibrationChoice::Isotonic).calibration.is_some());
}
