//! `curate rethreshold`: what a new quality cut would keep, from the stored `quality_score`
//! column only (no model, no text).

use std::path::PathBuf;
use std::process::ExitCode;

use curate_pipeline::PipelineError;
use curate_quality::Keep;

/// Arguments of `curate rethreshold`.
#[derive(Debug, clap::Args)]
pub struct RethresholdArgs {
    /// The snapshot directory (its `data/*.parquet` hold the scores).
    pub dir: PathBuf,
    /// Keep documents whose score is at least this.
    #[arg(
        long,
        conflicts_with = "top_fraction",
        required_unless_present = "top_fraction"
    )]
    pub threshold: Option<f64>,
    /// Keep this share of documents, the best-scored (exact; ties by position).
    #[arg(long)]
    pub top_fraction: Option<f64>,
    /// The score column.
    #[arg(long, default_value = "quality_score")]
    pub column: String,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Runs the command.
pub fn run(a: RethresholdArgs) -> Result<ExitCode, PipelineError> {
    let keep = match (a.threshold, a.top_fraction) {
        (Some(t), _) => Keep::Threshold(t),
        (None, Some(f)) if (0.0..=1.0).contains(&f) => Keep::TopFraction(f),
        (None, Some(f)) => {
            return Err(PipelineError::Usage(format!(
                "--top-fraction {f} is out of range; allowed: 0 to 1"
            )));
        }
        (None, None) => unreachable!("clap requires one"),
    };
    let cut = curate_quality::threshold::rethreshold_snapshot(&a.dir, keep, &a.column)
        .map_err(|e| PipelineError::Other(e.to_string()))?;
    if a.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&cut).expect("serialises")
        );
    } else {
        let min = cut
            .min_kept_score
            .map_or("-".to_string(), |m| format!("{m}"));
        outln!(
            "{} of {} documents kept ({:.2} %), lowest kept score {min}; {} without a score",
            cut.kept,
            cut.total,
            100.0 * cut.kept_fraction,
            cut.missing
        );
        eprintln!(
            "hint: to write the re-cut snapshot, run a pipeline over {}/data with a `quality_threshold` step",
            a.dir.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
