//! Pipeline configs: TOML → raw sections → every problem collected → a resolved config.
//!
//! Validation never stops at the first problem: each section and each step is checked on its
//! own, unknown keys get a did-you-mean, each bad value is reported with its field, and the
//! steps' own [`StepSpec::validate`](curate_core::StepSpec::validate) rules run too. No data is
//! read here.

use std::path::{Path, PathBuf};

use curate_core::config::{Problems, StepDoc, did_you_mean};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::check::{check_table, keys_of, render_value};
use crate::registry::{self, StepConfig};

/// What to do when an input shard cannot be read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// Stop the run with an error naming the file and row group (or line).
    #[default]
    Fail,
    /// Leave out what cannot be read (a file whose footer cannot be read, a row group, JSONL
    /// lines), listing each in the manifest with its error, and count it.
    Skip,
}

/// `[input]`: where documents come from.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InputConfig {
    /// Files or globs (relative to the working directory): parquet, jsonl, jsonl.gz, jsonl.zst.
    pub paths: Vec<String>,
    /// Column holding the document text.
    #[serde(default = "default_text_column")]
    pub text_column: String,
    /// Column holding the document id (optional; used to name documents in labels and diffs).
    #[serde(default)]
    pub id_column: Option<String>,
    /// Columns to read, in this order in the output (all, in the file's order, when absent).
    /// Must include the text column. Named as they are after `flatten`.
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// Struct columns (objects in JSONL) whose fields become top-level columns in their place,
    /// e.g. `["metadata"]` for datatrove's JSONL, where `url`, `dump` and the rest sit in a
    /// `metadata` object; steps and the snapshot then see `url` and the others as columns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flatten: Vec<String>,
    /// Rows per in-memory batch (default 256: each step of a chain walks the whole batch, so a
    /// batch of web text that stays in the CPU caches between steps runs faster than a larger
    /// one; outputs do not depend on it).
    #[serde(default = "default_batch_rows")]
    pub batch_rows: usize,
    /// `"fail"` or `"skip"`: what to do with an unreadable shard.
    #[serde(default)]
    pub on_error: OnError,
}

fn default_text_column() -> String {
    "text".into()
}
fn default_batch_rows() -> usize {
    256
}

/// `[output]`: the snapshot.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// Snapshot directory (overridden by `curate run --output`).
    #[serde(default)]
    pub dir: Option<String>,
    /// zstd level for data files, 1–22.
    #[serde(default = "default_zstd")]
    pub zstd_level: i32,
    /// Target size of each data file, measured on uncompressed column data (files on disk are
    /// usually 3–4× smaller). An integer in bytes or a string such as "512MB" or "1GiB".
    #[serde(default = "default_file_size")]
    pub target_file_size: ByteSize,
    /// Rows per parquet row group.
    #[serde(default = "default_rg")]
    pub row_group_size: usize,
    /// Write every dropped document under `excluded/` with `step` and `reason` columns.
    #[serde(default)]
    pub exclusion: bool,
    /// `[output.card]`: what the dataset card (`README.md` in the snapshot) says about the data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<CardConfig>,
}

/// `[output.card]`: the dataset card's name, description, license and languages (written into
/// its Hugging Face front matter). Every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CardConfig {
    /// Display name (`pretty_name`), e.g. "FineWeb sample, top 30 % by quality".
    #[serde(default)]
    pub name: Option<String>,
    /// A paragraph describing the dataset.
    #[serde(default)]
    pub description: Option<String>,
    /// License id as the Hugging Face hub spells it, e.g. "odc-by", "cc-by-4.0", "apache-2.0".
    #[serde(default)]
    pub license: Option<String>,
    /// Language codes (ISO 639-1 or 639-3, optionally with a region), e.g. ["en"].
    #[serde(default)]
    pub language: Vec<String>,
}

impl CardConfig {
    /// Reports every bad value.
    pub fn validate(&self, p: &mut Problems) {
        p.set_scope("output.card");
        if self.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
            p.push(
                "name",
                "is empty; omit it to name the snapshot \"curate snapshot\"",
            );
        }
        if let Some(l) = &self.license {
            let ok = !l.is_empty()
                && l.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ".-+_".contains(c));
            if !ok {
                p.push(
                    "license",
                    format!("\"{l}\" is not a license id; use the hub's lowercase ids such as \"odc-by\", \"cc-by-4.0\", \"apache-2.0\" or \"other\""),
                );
            }
        }
        for l in &self.language {
            let mut parts = l.split('-');
            let base = parts.next().unwrap_or_default();
            let ok = (2..=3).contains(&base.len())
                && base.chars().all(|c| c.is_ascii_lowercase())
                && parts.all(|s| {
                    !s.is_empty() && s.len() <= 8 && s.chars().all(|c| c.is_ascii_alphanumeric())
                });
            if !ok {
                p.push(
                    "language",
                    format!("\"{l}\" is not a language code; use ISO 639-1 or 639-3 codes such as \"en\", \"de\" or \"zh-Hans\""),
                );
            }
        }
    }
}

fn default_zstd() -> i32 {
    3
}
fn default_file_size() -> ByteSize {
    ByteSize(512 * 1024 * 1024)
}
fn default_rg() -> usize {
    8192
}

/// `[run]`: how to execute.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Worker threads; 0 = all cores. Does not change the output.
    #[serde(default)]
    pub threads: usize,
    /// Seed of every random choice (sampling, MinHash permutations, splits).
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Parquet row groups per task. Does not change the output.
    #[serde(default = "default_task_size")]
    pub task_size: usize,
    /// Keep intermediate part files after a successful run (for debugging).
    #[serde(default)]
    pub keep_work: bool,
    /// `"local"` (this machine) or `"slurm"` (one `sbatch --array` job per stage, see
    /// `[slurm]`); `curate run --executor` overrides it. Does not change the output.
    #[serde(default)]
    pub executor: Executor,
}

/// Largest `[run] threads` accepted.
pub const MAX_THREADS: usize = 1024;

/// Where `curate run` executes tasks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Executor {
    /// Every task on this machine, `threads` at a time.
    #[default]
    Local,
    /// Each stage as a Slurm job array, chained by dependencies.
    Slurm,
}

fn default_seed() -> u64 {
    42
}
fn default_task_size() -> usize {
    1
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            threads: 0,
            seed: default_seed(),
            task_size: default_task_size(),
            keep_work: false,
            executor: Executor::Local,
        }
    }
}

pub use curate_core::config::ByteSize;

/// One resolved step: its position and typed config.
#[derive(Debug, Clone, Serialize)]
pub struct StepEntry {
    /// Position in the pipeline.
    pub index: usize,
    /// The typed config (serializes with its `type`).
    #[serde(flatten)]
    pub config: StepConfig,
    /// `overwrite = true`: the columns the step adds may replace existing ones of the same name.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub overwrite: bool,
}

impl StepEntry {
    /// The step's options that can change the output, with its `type` (and `overwrite` when
    /// set): what the fingerprint and the manifest record.
    pub fn content_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(&self.config).expect("serializable");
        if let Some(o) = v.as_object_mut() {
            for k in self.config.run_only() {
                o.remove(*k);
            }
            if self.overwrite {
                o.insert("overwrite".into(), serde_json::Value::Bool(true));
            }
        }
        v
    }
}

/// A validated config, defaults applied.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// `[input]`.
    pub input: InputConfig,
    /// `[[steps]]`, presets expanded.
    pub steps: Vec<StepEntry>,
    /// `[output]`.
    pub output: OutputConfig,
    /// `[run]`.
    pub run: RunConfig,
    /// `[slurm]` (used by `--executor slurm`).
    pub slurm: SlurmConfig,
    /// The config file's path.
    #[serde(skip)]
    pub path: PathBuf,
}

/// `[slurm]`: how `--executor slurm` submits jobs. Every key is optional; what is left out is
/// the cluster's default.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SlurmConfig {
    /// Partition (`sbatch --partition`).
    #[serde(default)]
    pub partition: Option<String>,
    /// Account to charge (`sbatch --account`).
    #[serde(default)]
    pub account: Option<String>,
    /// Time limit of each task, in a Slurm time format: "30" (minutes), "MM:SS", "HH:MM:SS",
    /// "D-HH", "D-HH:MM" or "D-HH:MM:SS" (`sbatch --time`).
    #[serde(default)]
    pub time: Option<String>,
    /// CPUs per task (`sbatch --cpus-per-task`); a task uses that many threads.
    #[serde(default)]
    pub cpus_per_task: Option<u32>,
    /// Memory per task, such as "4G" or "500M" (`sbatch --mem`).
    #[serde(default)]
    pub mem: Option<String>,
    /// At most this many tasks of a stage run at once (the array's `%N` limit).
    #[serde(default)]
    pub max_parallel: Option<u32>,
    /// Prefix of job names; a stage's job is named `<job_name>-<stage>`.
    #[serde(default = "default_job_name")]
    pub job_name: String,
    /// The `curate` binary the tasks run (default: the binary that submits). It must be
    /// reachable at this path on every compute node.
    #[serde(default)]
    pub binary: Option<String>,
    /// More `sbatch` options, passed as given (e.g. ["--qos=low", "--constraint=ssd"]).
    #[serde(default)]
    pub extra_args: Vec<String>,
}

fn default_job_name() -> String {
    "curate".into()
}

/// Parses and validates a config file; returns every problem found.
pub fn load(path: &Path) -> Result<Config, Vec<curate_core::Problem>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![curate_core::Problem {
            scope: path.display().to_string(),
            field: String::new(),
            message: format!("cannot read the config: {e}"),
            hint: None,
        }]
    })?;
    parse(&text, path)
}

/// The `[input]` section of the config file at `path` alone, if it parses, whatever the rest of
/// the file holds (see [`crate::input_column_problems`]).
pub fn input_section(path: &Path) -> Option<InputConfig> {
    let text = std::fs::read_to_string(path).ok()?;
    let doc: toml::Table = text.parse().ok()?;
    doc.get("input")?.clone().try_into().ok()
}

/// Parses and validates config text (`path` is used for messages and relative files).
pub fn parse(text: &str, path: &Path) -> Result<Config, Vec<curate_core::Problem>> {
    let mut p = Problems::new();
    let doc: toml::Table = match text.parse() {
        Ok(t) => t,
        Err(e) => {
            p.set_scope(path.display().to_string());
            p.push("", format!("not valid TOML: {}", e.to_string().trim_end()));
            return Err(p.into_items());
        }
    };
    p.set_scope("config");
    let sections = ["input", "steps", "output", "run", "slurm"];
    for k in doc.keys() {
        if !sections.contains(&k.as_str()) {
            let msg = "unknown section; allowed: [input], [[steps]], [output], [run], [slurm]"
                .to_string();
            match did_you_mean(k, sections) {
                Some(s) => p.push_hint(k, msg, format!("did you mean `{s}`?")),
                None => p.push(k, msg),
            }
        }
    }
    let table = |name: &str, p: &mut Problems| -> Option<toml::Table> {
        match doc.get(name) {
            None => Some(toml::Table::new()),
            Some(toml::Value::Table(t)) => Some(t.clone()),
            Some(_) => {
                p.push(name, format!("must be a table: [{name}]"));
                None
            }
        }
    };

    p.set_scope("input");
    let input: Option<InputConfig> = match doc.get("input") {
        None => {
            p.push("", "missing section [input] (with at least `paths`)");
            None
        }
        Some(_) => table("input", &mut p)
            .and_then(|t| check_table(&t, &keys_of::<InputConfig>(), &mut p))
            .map(|x| x.0),
    };
    if let Some(i) = &input {
        if i.paths.is_empty() {
            p.push("paths", "is empty; give at least one file or glob");
        }
        for (k, path) in i.paths.iter().enumerate() {
            if path.trim().is_empty() {
                p.push(
                    &format!("paths[{k}]"),
                    "is an empty string; give a file or glob",
                );
            }
        }
        if i.batch_rows == 0 {
            p.push("batch_rows", "0 is out of range; allowed: 1 or more");
        }
        if let Some(cols) = &i.columns {
            if !cols.contains(&i.text_column) {
                p.push(
                    "columns",
                    format!("must include the text column \"{}\"", i.text_column),
                );
            }
            if let Some(id) = &i.id_column
                && !cols.contains(id)
            {
                p.push("columns", format!("must include the id column \"{id}\""));
            }
        }
    }
    p.set_scope("output");
    let output: Option<OutputConfig> = table("output", &mut p)
        .and_then(|t| check_table(&t, &keys_of::<OutputConfig>(), &mut p))
        .map(|x| x.0);
    if let Some(o) = &output {
        if o.dir.as_deref().is_some_and(|d| d.trim().is_empty()) {
            p.push(
                "dir",
                "is empty; name the snapshot directory (\".\" for the working directory), or leave `dir` out and pass --output",
            );
        }
        p.range("zstd_level", o.zstd_level, 1, 22);
        if o.row_group_size == 0 {
            p.push(
                "row_group_size",
                "0 is out of range; allowed: 1 or more rows",
            );
        }
        if o.target_file_size.0 < 1024 {
            p.push(
                "target_file_size",
                format!(
                    "{} bytes is too small; allowed: 1KiB or more",
                    o.target_file_size.0
                ),
            );
        }
        if let Some(c) = &o.card {
            c.validate(&mut p);
        }
    }
    p.set_scope("run");
    let run: Option<RunConfig> = table("run", &mut p)
        .and_then(|t| check_table(&t, &keys_of::<RunConfig>(), &mut p))
        .map(|x| x.0);
    if let Some(r) = &run {
        if r.threads > MAX_THREADS {
            p.push(
                "threads",
                format!("{} is out of range; allowed: 0 (one per core) to {MAX_THREADS} (a run uses at most 4 per core)", r.threads),
            );
        }
        if r.task_size == 0 {
            p.push(
                "task_size",
                "0 is out of range; allowed: 1 or more row groups",
            );
        }
    }

    p.set_scope("slurm");
    let slurm: Option<SlurmConfig> = table("slurm", &mut p)
        .and_then(|t| check_table(&t, &keys_of::<SlurmConfig>(), &mut p))
        .map(|x| x.0);
    if let Some(s) = &slurm {
        s.validate(&mut p);
    }

    let steps = parse_steps(doc.get("steps"), &mut p);
    if p.is_empty() {
        Ok(Config {
            input: input.expect("valid"),
            steps: steps.expect("valid"),
            output: output.expect("valid"),
            run: run.expect("valid"),
            slurm: slurm.expect("valid"),
            path: path.to_path_buf(),
        })
    } else {
        Err(p.into_items())
    }
}

fn parse_steps(value: Option<&toml::Value>, p: &mut Problems) -> Option<Vec<StepEntry>> {
    p.set_scope("steps");
    let raw: Vec<toml::Table> = match value {
        None => Vec::new(),
        Some(toml::Value::Array(a)) => {
            let mut out = Vec::new();
            for (i, v) in a.iter().enumerate() {
                match v {
                    toml::Value::Table(t) => out.push(t.clone()),
                    _ => {
                        p.set_scope(format!("steps[{i}]"));
                        p.push("", "must be a table: [[steps]]");
                    }
                }
            }
            out
        }
        Some(_) => {
            p.push("", "must be an array of tables: [[steps]]");
            return None;
        }
    };
    // Expand presets first so indices in messages match the resolved pipeline; once a preset
    // has shifted them, a step the config lists itself also says which table it is there.
    let has_preset = raw.iter().any(|t| t.contains_key("preset"));
    let mut expanded: Vec<(String, toml::Table)> = Vec::new();
    for (i, t) in raw.into_iter().enumerate() {
        if let Some(preset) = t.get("preset") {
            p.set_scope(format!("steps[{i}] (preset)"));
            let name = preset.as_str().unwrap_or_default();
            if t.len() > 1 {
                p.push(
                    "preset",
                    "a preset entry takes no other keys; add steps after it to customise",
                );
            }
            match registry::preset(name) {
                Some(tables) => {
                    for st in tables {
                        expanded.push((format!("preset \"{name}\""), st));
                    }
                }
                None => p.one_of("preset", name, &registry::PRESETS),
            }
        } else if has_preset {
            expanded.push((format!("[[steps]] table {} of the config", i + 1), t));
        } else {
            expanded.push((String::new(), t));
        }
    }
    let docs = registry::docs();
    let names: Vec<&str> = docs.iter().map(|d| d.name.as_str()).collect();
    let mut out = Vec::new();
    let mut previous: Vec<String> = Vec::new();
    for (i, (origin, mut t)) in expanded.into_iter().enumerate() {
        let kind = match t.remove("type") {
            Some(toml::Value::String(s)) => s,
            Some(other) => {
                p.set_scope(format!("steps[{i}]"));
                p.push(
                    "type",
                    format!(
                        "must be a string naming a step (got {})",
                        render_value(&other)
                    ),
                );
                continue;
            }
            None => {
                p.set_scope(format!("steps[{i}]"));
                p.push(
                    "type",
                    "missing; every step needs `type = \"...\"` (see `curate list-steps`)",
                );
                continue;
            }
        };
        let scope = if origin.is_empty() {
            format!("steps[{i}] ({kind})")
        } else {
            format!("steps[{i}] ({kind}, from {origin})")
        };
        p.set_scope(scope);
        let Some(doc) = docs.iter().find(|d| d.name == kind) else {
            let msg = format!("\"{kind}\" is not a step type (`curate list-steps` lists them)");
            match did_you_mean(&kind, names.iter().copied()) {
                Some(s) => p.push_hint("type", msg, format!("did you mean \"{s}\"?")),
                None => p.push("type", msg),
            }
            continue;
        };
        let overwrite = match t.remove(curate_core::config::OVERWRITE_KEY) {
            None => false,
            Some(toml::Value::Boolean(b)) => b,
            Some(other) => {
                p.push(
                    curate_core::config::OVERWRITE_KEY,
                    format!("must be true or false (got {})", render_value(&other)),
                );
                false
            }
        };
        let mut keys: Vec<String> = doc.keys().map(String::from).collect();
        keys.push(curate_core::config::OVERWRITE_KEY.to_string());
        if let Some(cfg) = registry::parse_step(&kind, &t, &keys, p) {
            cfg.validate(p, &previous);
            previous.push(kind.clone());
            out.push(StepEntry {
                index: out.len(),
                config: cfg,
                overwrite,
            });
        } else {
            previous.push(kind.clone());
        }
    }
    if let Some((last, rest)) = out.split_last() {
        for s in rest.iter().filter(|s| s.config.must_be_last()) {
            p.set_scope(format!("steps[{}] ({})", s.index, s.config.kind()));
            p.push(
                "type",
                format!(
                    "must be the last step (steps[{}] ({}) comes after it)",
                    last.index,
                    last.config.kind()
                ),
            );
        }
    }
    Some(out)
}

/// Documentation of every step, for `curate list-steps` / `explain`.
pub fn step_docs() -> Vec<StepDoc> {
    registry::docs()
}

impl Config {
    /// The snapshot directory, with an optional override.
    pub fn output_dir(&self, override_dir: Option<&Path>) -> Option<PathBuf> {
        override_dir
            .map(Path::to_path_buf)
            .or_else(|| self.output.dir.as_ref().map(PathBuf::from))
    }

    /// Canonical JSON of everything that can change the output (not threads, task size, batch
    /// size, output location or keep_work).
    pub fn content_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "input": {
                "paths": self.input.paths,
                "text_column": self.input.text_column,
                "id_column": self.input.id_column,
                "columns": self.input.columns,
                "on_error": self.input.on_error,
            },
            "steps": self.steps.iter().map(StepEntry::content_json).collect::<Vec<_>>(),
            "output": {
                "zstd_level": self.output.zstd_level,
                "target_file_size": self.output.target_file_size.0,
                "row_group_size": self.output.row_group_size,
                "exclusion": self.output.exclusion,
            },
            "run": { "seed": self.run.seed },
        });
        // Present only when configured, so configs without it keep their fingerprint.
        if !self.input.flatten.is_empty() {
            v["input"]["flatten"] = serde_json::json!(self.input.flatten);
        }
        // Present only when configured, so configs without a card keep their fingerprint.
        if let Some(c) = &self.output.card {
            v["output"]["card"] = serde_json::to_value(c).expect("serializable");
        }
        v
    }

    /// xxh3-128 of [`content_json`](Self::content_json).
    pub fn fingerprint(&self) -> String {
        let s = serde_json::to_string(&self.content_json()).expect("json");
        curate_core::hash::hex128(xxhash_rust::xxh3::xxh3_128(s.as_bytes()))
    }
}
