//! `curate label --dry-run --config F`: what the config's `label` step would cost, before
//! anything is spent. Needs no API key and sends nothing.

use std::path::Path;
use std::process::ExitCode;

use curate_pipeline::PipelineError;
use curate_pipeline::registry::StepConfig;

/// Prices the config's claude `label` step over a draw of its sample from the inputs.
pub fn dry_run(
    config: &Path,
    json: bool,
    calibrate: Option<usize>,
) -> Result<ExitCode, PipelineError> {
    let cfg = curate_pipeline::config::load(config).map_err(PipelineError::Config)?;
    let label = cfg.steps.iter().find_map(|s| match &s.config {
        StepConfig::Label(l) => Some(l.clone()),
        _ => None,
    });
    let Some(label) = label else {
        return Err(PipelineError::Usage(format!(
            "{} has no `label` step to estimate",
            config.display()
        )));
    };
    let sample = cfg.steps.iter().find_map(|s| match &s.config {
        StepConfig::Sample(x) => Some(x.clone()),
        _ => None,
    });
    let base = std::env::current_dir().unwrap_or_default();
    let paths =
        curate_io::input::resolve(&cfg.input.paths, &base).map_err(PipelineError::Inputs)?;
    let input = curate_label::DryRunInput {
        paths: &paths,
        text_column: &cfg.input.text_column,
        id_column: cfg.input.id_column.as_deref(),
        sample: sample.as_ref(),
        run_seed: cfg.run.seed,
    };
    let other = |e: curate_label::LabelError| PipelineError::Other(format!("label dry run: {e}"));
    let docs = curate_label::draw_documents(&input).map_err(other)?;
    let texts: Vec<&str> = docs.iter().map(String::as_str).collect();
    // relative paths in a config resolve from the working directory, as in `curate run`
    let config_dir = std::env::current_dir().unwrap_or_default();
    let ratio = match calibrate {
        None | Some(0) => label.bytes_per_token,
        Some(n) => {
            let key = curate_label::client::ApiKey::from_env().ok_or_else(|| {
                PipelineError::Other(
                    "label dry run: --calibrate calls count_tokens and needs ANTHROPIC_API_KEY"
                        .into(),
                )
            })?;
            let r = curate_label::calibrate(&label, &config_dir, &texts[..n.min(texts.len())], key)
                .map_err(other)?;
            eprintln!(
                "calibrated with count_tokens on {} document(s): {r:.2} bytes per token",
                n.min(texts.len())
            );
            r
        }
    };
    let e = curate_label::estimate_with_ratio(&label, &config_dir, &texts, ratio).map_err(other)?;
    // Later rounds (`strategy = "uncertainty"`) pick documents with a model this run has not
    // trained yet: each is priced over a stand-in, `size` documents drawn at random (seeded).
    let mut rounds = Vec::new();
    let mut n_sample = 0usize;
    for s in &cfg.steps {
        let StepConfig::Sample(x) = &s.config else {
            continue;
        };
        n_sample += 1;
        if x.strategy != "uncertainty" {
            continue;
        }
        let mut stand_in = x.clone();
        stand_in.strategy = "random".into();
        stand_in.holdout = 0.0;
        stand_in.seed = Some(curate_core::hash::derive_seed(
            cfg.run.seed,
            &format!("dry-run-round-{n_sample}"),
        ));
        let docs = curate_label::draw_documents(&curate_label::DryRunInput {
            sample: Some(&stand_in),
            ..input
        })
        .map_err(other)?;
        let t: Vec<&str> = docs.iter().map(String::as_str).collect();
        let r = curate_label::estimate_with_ratio(&label, &config_dir, &t, ratio).map_err(other)?;
        rounds.push((n_sample, r));
    }
    if json {
        let mut v = serde_json::to_value(&e).expect("json");
        if !rounds.is_empty() {
            v["rounds"] = rounds
                .iter()
                .map(|(n, r)| {
                    let mut x = serde_json::to_value(r).expect("json");
                    x["round"] = (*n).into();
                    x["stand_in"] = true.into();
                    x
                })
                .collect();
        }
        outln!("{}", serde_json::to_string_pretty(&v).expect("json"));
    } else {
        print!("{}", e.render());
        for (n, r) in &rounds {
            println!(
                "\nround {n} (strategy = \"uncertainty\"): its picks need the model the round before trains; \
                 priced over a stand-in of {} randomly drawn document(s)",
                r.documents
            );
            print!("{}", r.render());
        }
        eprintln!(
            "note: priced over the {} document(s) the sample step selects from the inputs as if no earlier step \
             removed any; nothing was sent",
            e.documents
        );
    }
    Ok(ExitCode::SUCCESS)
}
