//! Planning: inputs → tasks → an ordered list of stages.
//!
//! The steps are cut at every step with a [`Barrier`](curate_core::Barrier). Pass 0 reads the
//! input; pass *k* > 0 reads pass *k−1*'s part files, task by task (same task index = same key
//! range). Between passes run the barrier's global stages. After the last pass, `assemble`
//! writes the data (and exclusion) files and `finalize` the manifest.
//!
//! The plan depends only on the config and the input footers — never on thread count — so any
//! executor (local, Slurm, any indexed-array engine) runs the same stages with the same task
//! counts.

use std::ops::Range;
use std::path::PathBuf;

use curate_core::{BuildEnv, StageSpec, Step};
use curate_io::input::{self, Format, InputFile};
use serde::Serialize;

use crate::config::Config;
use crate::error::PipelineError;

/// One task's share of the input: a row-group range of one file.
#[derive(Debug, Clone, Serialize)]
pub struct Share {
    /// Input ordinal.
    pub file: usize,
    /// Row groups (parquet); `0..1` for a whole JSONL file.
    pub row_groups: Range<usize>,
    /// Rows (0 when unknown, for JSONL).
    pub rows: u64,
    /// Uncompressed bytes (parquet footer estimate; file size for JSONL).
    pub bytes: u64,
}

/// A pass over the documents.
#[derive(Debug, Clone, Serialize)]
pub struct Pass {
    /// Steps whose processors run in this pass.
    pub steps: Range<usize>,
    /// The step whose observer runs at the end of this pass, if any.
    pub barrier: Option<usize>,
}

/// What a stage does.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StageKind {
    /// A pass over documents (one task per input share).
    Pass {
        /// Pass number.
        pass: usize,
    },
    /// A global stage of a barrier step.
    Barrier {
        /// The step.
        step: usize,
        /// Index into the step's stages.
        stage: usize,
    },
    /// Writing data and exclusion files.
    Assemble,
    /// Writing the manifest.
    Finalize,
}

/// A stage: a name, a kind and a task count.
#[derive(Debug, Clone, Serialize)]
pub struct Stage {
    /// Unique name, used for completion records and `curate task --stage`.
    pub name: String,
    /// What it does.
    #[serde(flatten)]
    pub kind: StageKind,
    /// Number of independent tasks.
    pub tasks: usize,
}

/// The column taken as the document id when `[input] id_column` is not set and the input has
/// a string column of this name.
pub const DEFAULT_ID_COLUMN: &str = "id";

/// Upper bound on assemble tasks (each writes every A-th output file).
const MAX_ASSEMBLE_TASKS: usize = 64;

/// A run's plan.
pub struct Plan {
    /// Inputs, sorted; index = ordinal.
    pub inputs: Vec<InputFile>,
    /// Pass tasks (the same shares in every pass).
    pub shares: Vec<Share>,
    /// Passes.
    pub passes: Vec<Pass>,
    /// Stages in execution order.
    pub stages: Vec<Stage>,
    /// The built steps.
    pub steps: Vec<Box<dyn Step>>,
    /// Work directory of each step.
    pub step_dirs: Vec<PathBuf>,
    /// Inputs whose footer (or first lines) could not be read, left out whole under
    /// `on_error = "skip"`, with their errors; sorted by path.
    pub unreadable: Vec<curate_snapshot::Skipped>,
    /// The files the steps read when they were built, by step.
    pub resources: Vec<curate_snapshot::ResourceEntry>,
    /// The input schema and the schemas of the files the run writes.
    pub schemas: crate::schema::Schemas,
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("shares", &self.shares.len())
            .field("stages", &self.stages)
            .finish()
    }
}

/// Gives curate-core's resource reader (through which steps read files their configs name, such
/// as a frozen model) object storage. Idempotent.
pub fn register_object_store() {
    curate_core::resource::set_remote_reader(Box::new(ObjectStoreReader));
}

/// Object storage for [`curate_core::resource`] (`s3://` URLs).
struct ObjectStoreReader;

fn object_url(url: &str) -> Result<curate_io::store::ObjectUrl, String> {
    curate_io::store::ObjectUrl::parse(url)
        .ok_or_else(|| format!("{url}: not an object-store URL (only s3:// is)"))?
}

impl curate_core::resource::RemoteReader for ObjectStoreReader {
    fn read(&self, url: &str) -> Result<Option<Vec<u8>>, String> {
        use curate_io::store;
        let u = object_url(url)?;
        match store::get_bytes(&u).map_err(|e| e.to_string())? {
            Some(b) => Ok(Some(b.to_vec())),
            // a GET answers 404 for a missing bucket too: a listing (under the key, so cheap)
            // tells the two apart and names the bucket
            None => store::list(&u).map(|_| None).map_err(|e| e.to_string()),
        }
    }

    fn glob(&self, pattern: &str) -> Result<Vec<String>, String> {
        let u = object_url(pattern)?;
        let found = curate_io::store::glob(&u)?;
        Ok(found.iter().map(ToString::to_string).collect())
    }
}

/// The inputs as read from their footers (never their data): the readable files, those left
/// out as unreadable (`on_error = "skip"`), errors reading the others, and the problems of the
/// config's input columns (the text column missing or not strings, a listed or id column
/// missing), which are config problems.
pub(crate) struct Inspected {
    pub inputs: Vec<InputFile>,
    pub unreadable: Vec<curate_snapshot::Skipped>,
    pub errors: Vec<String>,
    pub columns: curate_core::Problems,
}

/// Resolves `[input] paths` and reads every input's footer: what [`Plan::new`] starts from, and
/// what `curate validate` checks when the rest of the config has problems of its own.
pub(crate) fn inspect_inputs(cfg: &crate::config::InputConfig) -> Result<Inspected, PipelineError> {
    let base = std::env::current_dir().unwrap_or_default();
    let paths = input::resolve(&cfg.paths, &base).map_err(PipelineError::Inputs)?;
    let mut inputs = Vec::with_capacity(paths.len());
    let mut errors = Vec::new();
    // A file read whose columns do not fit the config (the text column missing or not
    // strings, a listed or id column missing) is a config problem (`curate validate` fails
    // on it); a file that cannot be read is the run's to report.
    let mut columns = curate_core::Problems::new();
    columns.set_scope("input");
    // under on_error = "skip", a file that cannot be read at all (its footer, its first
    // lines) is left out whole and listed, as an unreadable row group is
    let skip = cfg.on_error == crate::config::OnError::Skip;
    let mut unreadable = Vec::new();
    for p in &paths {
        match curate_io::inspect::inspect(p, &cfg.text_column) {
            Ok(f) => inputs.push(f),
            Err(e @ curate_io::IoError::Column { .. }) => {
                columns.push("text_column", e.to_string());
            }
            Err(e) if skip && !e.is_transport() && !not_found(&e) => {
                tracing::warn!(file = %p.display(), error = %e, "skipping an unreadable input (on_error = \"skip\")");
                unreadable.push(curate_snapshot::Skipped {
                    path: p.display().to_string(),
                    row_groups: [0, 0],
                    rows: 0,
                    error: e.to_string(),
                });
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    if inputs.is_empty() && !unreadable.is_empty() && errors.is_empty() && columns.is_empty() {
        errors.extend(unreadable.iter().map(|u| u.error.clone()));
        errors.push("every input is unreadable: nothing to run on".into());
    }
    // the columns as steps will see them: `flatten` applied
    let visible: Vec<arrow::datatypes::Schema> = inputs
        .iter()
        .map(|f| curate_io::input::flattened_schema(&f.schema, &cfg.flatten))
        .collect();
    if !cfg.flatten.is_empty() {
        for f in &inputs {
            for p in curate_io::input::flatten_problems(&f.schema, &cfg.flatten) {
                columns.push("flatten", format!("{}: {p}", f.path.display()));
            }
        }
    }
    if let Some(cols) = &cfg.columns {
        for (f, schema) in inputs.iter().zip(&visible) {
            for c in cols {
                if schema.field_with_name(c).is_err() {
                    columns.push(
                        "columns",
                        format!("{}: column `{c}` is missing", f.path.display()),
                    );
                }
            }
        }
    }
    if let Some(id) = &cfg.id_column {
        for (f, schema) in inputs.iter().zip(&visible) {
            if schema.field_with_name(id).is_err() {
                columns.push(
                    "id_column",
                    format!("{}: id column `{id}` is missing", f.path.display()),
                );
            }
        }
    }
    Ok(Inspected {
        inputs,
        unreadable,
        errors,
        columns,
    })
}

/// Whether `e` says the file is not there (a listed input that vanished is never skipped).
fn not_found(e: &curate_io::IoError) -> bool {
    matches!(e, curate_io::IoError::Os { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
}

/// The runtime steps, their work directories (in config order) and the files they read when
/// built.
pub struct BuiltSteps {
    /// The runtime steps.
    pub steps: Vec<Box<dyn Step>>,
    /// Work directory of each step.
    pub dirs: Vec<PathBuf>,
    /// Every file a step read while it was built ([`curate_core::resource::recording`]).
    pub resources: Vec<curate_snapshot::ResourceEntry>,
}

impl Plan {
    /// Builds the steps (no data read; the files a step names, such as a model, are), recording
    /// the files each reads.
    pub fn build_steps(
        config: &Config,
        work: &std::path::Path,
    ) -> Result<BuiltSteps, PipelineError> {
        register_object_store();
        let mut steps = Vec::new();
        let mut dirs = Vec::new();
        let mut resources = Vec::new();
        let mut previous = Vec::new();
        let mut errors = Vec::new();
        // one rule for every relative path in a config: the working directory
        let config_dir = std::env::current_dir().unwrap_or_default();
        for s in &config.steps {
            let env = BuildEnv {
                seed: config.run.seed,
                index: s.index,
                text_column: config.input.text_column.clone(),
                id_column: config.input.id_column.clone(),
                previous: previous.clone(),
                config_dir: config_dir.clone(),
            };
            let (step, read) = curate_core::resource::recording(|| s.config.build(&env));
            // every step is built, so that all that is wrong is said at once
            let step = match step {
                Ok(step) => step,
                Err(e) => {
                    errors.push(PipelineError::Step {
                        step: format!("steps[{}] ({})", s.index, s.config.kind()),
                        context: "build".into(),
                        source: e,
                    });
                    previous.push(s.config.kind().to_string());
                    continue;
                }
            };
            resources.extend(read.into_iter().map(|r| curate_snapshot::ResourceEntry {
                step: s.index,
                kind: s.config.kind().to_string(),
                path: r.path,
                bytes: r.bytes,
                xxh3_128: r.xxh3_128,
            }));
            previous.push(s.config.kind().to_string());
            dirs.push(
                work.join("steps")
                    .join(format!("{:02}-{}", s.index, s.config.kind())),
            );
            steps.push(step);
        }
        match errors.len() {
            0 => {}
            1 => return Err(errors.remove(0)),
            _ => return Err(PipelineError::Steps(errors)),
        }
        Ok(BuiltSteps {
            steps,
            dirs,
            resources,
        })
    }

    /// Resolves inputs (reading only footers), splits them into shares and lays out stages.
    ///
    /// Reads the footers of every input, then resolves what only they can tell: with no
    /// `[input] id_column` and a string column `id` in the input, `id` becomes the id column
    /// (`config` is updated, so the fingerprint and the manifest record it); then every step's
    /// columns are checked ([`crate::schema`]).
    pub fn new(config: &mut Config, work: &std::path::Path) -> Result<Plan, PipelineError> {
        let Inspected {
            inputs,
            unreadable,
            errors,
            mut columns,
        } = inspect_inputs(&config.input)?;
        if !columns.is_empty() {
            for e in errors {
                columns.push("paths", e);
            }
            return Err(PipelineError::Config(columns.into_items()));
        }
        if !errors.is_empty() {
            return Err(PipelineError::Inputs(errors));
        }
        let input_schema = common_schema(&inputs, config)?;
        if config.input.id_column.is_none()
            && input_schema
                .field_with_name(DEFAULT_ID_COLUMN)
                .is_ok_and(|f| curate_core::columns::Want::String.accepts(f.data_type()))
        {
            config.input.id_column = Some(DEFAULT_ID_COLUMN.to_string());
        }
        let BuiltSteps {
            steps,
            dirs: step_dirs,
            resources,
        } = Self::build_steps(config, work)?;
        let schemas =
            crate::schema::check(&input_schema, &steps, config).map_err(PipelineError::Config)?;
        let shares = make_shares(&inputs, config.run.task_size);
        let (passes, stages) = layout(&steps, shares.len());
        Ok(Plan {
            inputs,
            shares,
            passes,
            stages,
            steps,
            step_dirs,
            unreadable,
            resources,
            schemas,
        })
    }

    /// An upper estimate of the disk the run needs at its peak, in bytes (before it ends and
    /// removes its work files): the kept parts of two consecutive passes (a pass's part is
    /// removed once the next pass has read it) plus every excluded part, Arrow IPC at about the
    /// inputs' uncompressed size; the finished data and exclusion files (zstd parquet, about the
    /// inputs' size on disk); and per document a few hundred bytes of dedup and sampling work
    /// files. Measured against real runs in docs/BENCHMARKS.md ("Scratch space").
    pub fn scratch_estimate(&self, config: &Config) -> u64 {
        let uncompressed: u64 = self.shares.iter().map(|s| s.bytes).sum();
        let on_disk: u64 = self.inputs.iter().map(|f| f.size).sum();
        let docs: u64 = self.shares.iter().map(|s| s.rows).sum();
        let parts = if self.passes.len() > 1 {
            2 * uncompressed
        } else {
            uncompressed
        };
        let per_doc = 64
            + 256
                * config
                    .steps
                    .iter()
                    .filter(|s| matches!(s.config.kind(), "minhash_dedup" | "exact_dedup"))
                    .count() as u64;
        parts + on_disk + docs * per_doc
    }

    /// The stage with this name.
    pub fn stage(&self, name: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.name == name)
    }
}

/// The schema every input yields (they must agree).
fn common_schema(
    inputs: &[InputFile],
    config: &Config,
) -> Result<arrow::datatypes::SchemaRef, PipelineError> {
    let spec = curate_io::read::ReadSpec {
        text_column: config.input.text_column.clone(),
        batch_rows: 1,
        columns: config.input.columns.clone(),
        flatten: config.input.flatten.clone(),
    };
    let Some(first) = inputs.first() else {
        return Err(PipelineError::Inputs(vec!["no input files".into()]));
    };
    let schema = curate_io::read::output_schema(first, &spec);
    let mut errors = Vec::new();
    for (k, f) in inputs.iter().enumerate() {
        let s = curate_io::read::output_schema(f, &spec);
        // Two columns of one name: steps would read the first, and the snapshot's files would
        // hold both (which pyarrow and `datasets` refuse to read by name).
        let mut seen = std::collections::BTreeSet::new();
        let mut twice = std::collections::BTreeSet::new();
        for field in s.fields() {
            if !seen.insert(field.name().as_str()) {
                twice.insert(field.name().as_str());
            }
        }
        if !twice.is_empty() {
            errors.push(format!(
                "{}: more than one column named {}; rename them in the file (or leave them all out with [input] columns)",
                f.path.display(),
                twice.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
            ));
        }
        if k == 0 {
            continue;
        }
        let names = |s: &arrow::datatypes::Schema| {
            s.fields()
                .iter()
                .map(|f| format!("{}: {}", f.name(), f.data_type()))
                .collect::<Vec<_>>()
        };
        if names(&s) != names(&schema) {
            // the columns both have, in the first file's order: what `[input] columns` would
            // select and order alike in every file
            let common: Vec<String> = schema
                .fields()
                .iter()
                .filter(|x| s.field_with_name(x.name()).is_ok())
                .map(|x| format!("{:?}", x.name()))
                .collect();
            errors.push(format!(
                "{}: its columns ({}) differ from {}'s ({}); all inputs of a run must share one schema: select and order the columns they share with `[input] columns = [{}]`",
                f.path.display(),
                names(&s).join(", "),
                first.path.display(),
                names(&schema).join(", "),
                common.join(", ")
            ));
        }
    }
    if errors.is_empty() {
        Ok(schema)
    } else {
        Err(PipelineError::Inputs(errors))
    }
}

/// Splits inputs into shares of `task_size` row groups (a JSONL file is one share).
pub fn make_shares(inputs: &[InputFile], task_size: usize) -> Vec<Share> {
    let mut shares = Vec::new();
    for (i, f) in inputs.iter().enumerate() {
        match f.format {
            Format::Parquet => {
                let n = f.row_groups.len();
                let mut start = 0;
                while start < n {
                    let end = (start + task_size).min(n);
                    let rgs = &f.row_groups[start..end];
                    shares.push(Share {
                        file: i,
                        row_groups: start..end,
                        rows: rgs.iter().map(|r| r.rows).sum(),
                        bytes: rgs.iter().map(|r| r.bytes).sum(),
                    });
                    start = end;
                }
            }
            Format::Jsonl(_) => shares.push(Share {
                file: i,
                row_groups: 0..1,
                rows: 0,
                bytes: f.size,
            }),
        }
    }
    shares
}

/// Cuts the steps at barriers into passes and stages.
pub fn layout(steps: &[Box<dyn Step>], tasks: usize) -> (Vec<Pass>, Vec<Stage>) {
    let mut passes = Vec::new();
    let mut stages = Vec::new();
    let mut start = 0;
    for (i, s) in steps.iter().enumerate() {
        if let Some(b) = s.barrier() {
            passes.push(Pass {
                steps: start..i,
                barrier: Some(i),
            });
            let pass = passes.len() - 1;
            stages.push(Stage {
                name: format!("pass-{pass}"),
                kind: StageKind::Pass { pass },
                tasks,
            });
            for (j, StageSpec { name, tasks: n }) in b.stages(tasks).into_iter().enumerate() {
                stages.push(Stage {
                    name: format!("step-{i:02}-{}-{name}", s.kind()),
                    kind: StageKind::Barrier { step: i, stage: j },
                    tasks: n,
                });
            }
            start = i;
        }
    }
    passes.push(Pass {
        steps: start..steps.len(),
        barrier: None,
    });
    let pass = passes.len() - 1;
    stages.push(Stage {
        name: format!("pass-{pass}"),
        kind: StageKind::Pass { pass },
        tasks,
    });
    stages.push(Stage {
        name: "assemble".into(),
        kind: StageKind::Assemble,
        tasks: tasks.clamp(1, MAX_ASSEMBLE_TASKS),
    });
    stages.push(Stage {
        name: "finalize".into(),
        kind: StageKind::Finalize,
        tasks: 1,
    });
    (passes, stages)
}
