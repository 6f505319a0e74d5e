//! `curate list-steps` and `curate explain`: step documentation, from the code.

use std::process::ExitCode;

use curate_pipeline::{PipelineError, config};

/// `curate list-steps`.
pub fn list_steps() -> Result<ExitCode, PipelineError> {
    let docs = config::step_docs();
    let w = docs.iter().map(|d| d.name.len()).max().unwrap_or(0);
    for d in docs {
        outln!("{:w$}  {}", d.name, d.summary());
    }
    Ok(ExitCode::SUCCESS)
}

/// `curate explain NAME`: a step's documentation and options, or a preset's expansion.
pub fn explain(name: String) -> Result<ExitCode, PipelineError> {
    if let Some(d) = config::step_docs().into_iter().find(|d| d.name == name) {
        print!("{}", d.render());
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(tables) = curate_pipeline::registry::preset(&name) {
        outln!("preset \"{name}\" expands to these steps, in order:\n");
        for t in tables {
            outln!("[[steps]]\n{}", toml_string(&t));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let docs = config::step_docs();
    let names: Vec<&str> = docs
        .iter()
        .map(|d| d.name.as_str())
        .chain(curate_pipeline::registry::PRESETS)
        .collect();
    let e = PipelineError::Other(format!(
        "no step or preset named `{name}` (see `curate list-steps`)"
    ));
    Err(
        match curate_core::config::did_you_mean(&name, names.iter().copied()) {
            Some(s) => e.with_hint(format!("did you mean `{s}`?")),
            None => e,
        },
    )
}

fn toml_string(t: &curate_pipeline::registry::TomlTable) -> String {
    t.to_string()
}
