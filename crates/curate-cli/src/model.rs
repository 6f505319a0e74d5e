//! `curate model inspect`: what a quality model is, for people (or `--json`).

use std::path::PathBuf;
use std::process::ExitCode;

use curate_pipeline::PipelineError;

/// Arguments of `curate model inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// A snapshot (directory or `s3://` prefix), its `model/` directory, or a `model.bin` file.
    pub model: String,
    /// How many of the strongest positive and negative features to list.
    #[arg(long, default_value_t = 15)]
    pub top: usize,
    /// Print the whole description as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn inspect(a: &InspectArgs) -> Result<ExitCode, PipelineError> {
    curate_pipeline::plan::register_object_store();
    let base = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let f =
        curate_quality::score::Frozen::open(&a.model, &base).map_err(|e| PipelineError::Step {
            step: "model inspect".into(),
            context: "loading".into(),
            source: e,
        })?;
    let d = f.model.describe(a.top);
    if a.json {
        let mut d = d;
        d["file"] = f.path.display().to_string().into();
        d["model_hash"] = f.hash.clone().into();
        println!("{}", serde_json::to_string_pretty(&d).expect("json"));
        return Ok(ExitCode::SUCCESS);
    }
    let num = |v: &serde_json::Value| match v.as_f64() {
        Some(x) => format!("{x:.4}"),
        None => "–".into(),
    };
    println!("model    {} (xxh3-128 {})", f.path.display(), f.hash);
    println!(
        "format   v{}, feature scheme {}, head {}, scale 0–{}, keep threshold {}",
        d["format_version"],
        d["feature_scheme"],
        d["head"]["kind"]
            .as_str()
            .or(d["head"].as_str())
            .unwrap_or("?"),
        d["scale"][1],
        d["keep_threshold"]
    );
    println!("features {}", d["features"]);
    let m = &d["metrics"];
    println!(
        "held-out {} rows: AUC {}, Spearman {}, F1 {}, ECE {} (raw {})",
        m["n_holdout"],
        num(&m["auc"]),
        num(&m["spearman"]),
        num(&m["f1"]),
        num(&m["ece"]),
        num(&m["ece_raw"])
    );
    match d["calibration"].as_object() {
        Some(c) => println!(
            "calibration: {} knots",
            c.get("knots")
                .and_then(|k| k.as_array())
                .map_or(0, |k| k.len())
        ),
        None => println!("calibration: none (the head's raw score)"),
    }
    for (title, key) in [
        ("strongest positive features", "strongest_positive"),
        ("strongest negative features", "strongest_negative"),
    ] {
        println!("{title}:");
        for f in d[key].as_array().into_iter().flatten() {
            println!(
                "  {:>9}  {}",
                num(&f["weight"]),
                f["feature"].as_str().unwrap_or("?")
            );
        }
    }
    if let Some(shapes) = d["document_features"]["shape_functions"].as_array() {
        println!("document properties, by the span of their learnt shape function:");
        for s in shapes.iter().take(a.top) {
            println!(
                "  {:>9}  {}",
                num(&s["span"]),
                s["feature"].as_str().unwrap_or("?")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
