//! `sample_fraction`: keeps a seeded, stable fraction of documents.

use curate_core::hash::{derive_seed, mix64, unit};
use curate_core::{BuildEnv, Problems, Step, StepError, StepSpec};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::filter::{Doc, FilterStep, TextFilter, Verdict};

/// Keeps a random-looking but fully deterministic fraction of the documents.
///
/// Why: to try a pipeline on a slice of a corpus, or to down-sample a source, with a selection
/// that is the same on every re-run, whatever the task split or thread count.
///
/// A document is kept iff `unit(mix64(key, derive_seed(run_seed, "sample_fraction"))) <
/// fraction`, where `key` is its stable document key (input file ordinal and row): changing the
/// run seed changes the sample; nothing else does.
///
/// Example:
///
/// ```toml
/// [[steps]]
/// type = "sample_fraction"
/// fraction = 0.1
/// ```
///
/// Reason: `not_sampled`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SampleFractionConfig {
    /// Fraction of documents to keep, from 0 (none) to 1 (all).
    pub fraction: f64,
}

crate::reasons! {
    NOT_SAMPLED = "not_sampled",
}

impl StepSpec for SampleFractionConfig {
    const TYPE: &'static str = "sample_fraction";

    fn validate(&self, problems: &mut Problems) {
        problems.ratio("fraction", self.fraction);
    }

    fn build(&self, env: &BuildEnv) -> Result<Box<dyn Step>, StepError> {
        Ok(FilterStep::boxed(SampleFraction {
            fraction: self.fraction,
            seed: derive_seed(env.seed, "sample_fraction"),
        }))
    }
}

/// The runtime filter.
#[derive(Debug)]
pub struct SampleFraction {
    fraction: f64,
    seed: u64,
}

impl TextFilter for SampleFraction {
    type Scratch = ();

    fn kind(&self) -> &'static str {
        SampleFractionConfig::TYPE
    }

    fn reasons(&self) -> &[&'static str] {
        REASONS
    }

    fn check(&self, doc: Doc<'_>, _: &mut (), _: &mut String) -> Verdict {
        if unit(mix64(doc.key, self.seed)) < self.fraction {
            Verdict::Keep
        } else {
            Verdict::Drop(NOT_SAMPLED)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::testing::{batch, run};

    fn kept(fraction: f64, seed: u64, n: usize) -> Vec<bool> {
        let texts: Vec<String> = (0..n).map(|i| format!("doc {i}")).collect();
        let refs: Vec<&str> = texts.iter().map(|s| s.as_str()).collect();
        run(&SampleFractionConfig { fraction }, &mut batch(&refs), seed)
            .iter()
            .map(|r| r.is_none())
            .collect()
    }

    #[test]
    fn keeps_about_the_fraction_deterministically() {
        let a = kept(0.3, 7, 20_000);
        let share = a.iter().filter(|k| **k).count() as f64 / a.len() as f64;
        assert!((share - 0.3).abs() < 0.015, "{share}");
        assert_eq!(a, kept(0.3, 7, 20_000));
        assert_ne!(a, kept(0.3, 8, 20_000));
    }

    #[test]
    fn nested_fractions_are_subsets() {
        let small = kept(0.1, 1, 5_000);
        let big = kept(0.5, 1, 5_000);
        assert!(small.iter().zip(&big).all(|(s, b)| !*s || *b));
        assert!(kept(0.0, 1, 100).iter().all(|k| !k));
        assert!(kept(1.0, 1, 100).iter().all(|k| *k));
    }

    #[test]
    fn validate_rejects_out_of_range() {
        let mut p = Problems::new();
        SampleFractionConfig { fraction: 1.5 }.validate(&mut p);
        assert_eq!(p.items().len(), 1);
        assert_eq!(p.items()[0].field, "fraction");
    }
}
