//! The explicit step registry: one line per step type.
//!
//! Each line maps a variant of [`StepConfig`] to a config struct implementing
//! [`StepSpec`](curate_core::StepSpec); the `type` written in configs is the struct's
//! `StepSpec::TYPE`. `curate list-steps` and `curate explain` read the same list, so the docs can
//! never drift from the code.

use curate_core::config::{Problems, StepDoc};
use curate_core::{BuildEnv, Step, StepError, StepSpec};

macro_rules! registry {
    ($($variant:ident => $spec:ty,)*) => {
        /// Every step type curate knows, with its typed config.
        #[derive(Debug, Clone, serde::Serialize)]
        #[serde(tag = "type", rename_all = "snake_case")]
        #[allow(clippy::large_enum_variant)] // configs, a few per run: not worth a Box each
        pub enum StepConfig {
            $(
                #[doc = concat!("`", stringify!($variant), "`")]
                $variant($spec),
            )*
        }

        impl StepConfig {
            /// The step's `type`.
            pub fn kind(&self) -> &'static str {
                match self { $(Self::$variant(_) => <$spec as StepSpec>::TYPE,)* }
            }

            /// Runs the step's own validation, plus its ordering requirements.
            pub fn validate(&self, p: &mut Problems, previous: &[String]) {
                let requires = match self { $(Self::$variant(s) => { s.validate(p); s.requires() })* };
                if !requires.is_empty() && !previous.iter().any(|x| requires.contains(&x.as_str())) {
                    p.push("type", format!(
                        "needs a `{}` step before it",
                        requires.join("` or `"),
                    ));
                }
            }

            /// Options of the step that cannot change the output (left out of the fingerprint).
            pub fn run_only(&self) -> &'static [&'static str] {
                match self { $(Self::$variant(_) => <$spec as StepSpec>::RUN_ONLY,)* }
            }

            /// Whether the step must be the pipeline's last.
            pub fn must_be_last(&self) -> bool {
                match self { $(Self::$variant(s) => s.must_be_last(),)* }
            }

            /// Builds the runtime step.
            pub fn build(&self, env: &BuildEnv) -> Result<Box<dyn Step>, StepError> {
                match self { $(Self::$variant(s) => s.build(env),)* }
            }
        }

        /// The run-only options of the step type `kind` (see [`StepSpec::RUN_ONLY`]).
        pub fn run_only_of(kind: &str) -> &'static [&'static str] {
            $(
                if kind == <$spec as StepSpec>::TYPE {
                    return <$spec as StepSpec>::RUN_ONLY;
                }
            )*
            &[]
        }

        /// Documentation of every step, in registry order.
        pub fn docs() -> Vec<StepDoc> {
            vec![$(StepDoc::of::<$spec>(),)*]
        }

        /// Deserializes the table of a step of type `kind`, collecting problems.
        pub(crate) fn parse_step(kind: &str, table: &toml::Table, keys: &[String], p: &mut Problems) -> Option<StepConfig> {
            $(
                if kind == <$spec as StepSpec>::TYPE {
                    return crate::check::check_step::<$spec>(table, keys, p).map(StepConfig::$variant);
                }
            )*
            None
        }
    };
}

registry! {
    Length => curate_filters::length::LengthConfig,
    SampleFraction => curate_filters::sample_fraction::SampleFractionConfig,
    GopherQuality => curate_filters::gopher_quality::GopherQualityConfig,
    GopherRepetition => curate_filters::gopher_repetition::GopherRepetitionConfig,
    C4Quality => curate_filters::c4_quality::C4QualityConfig,
    FinewebQuality => curate_filters::fineweb_quality::FineWebQualityConfig,
    C4Badwords => curate_filters::c4_badwords::C4BadWordsConfig,
    Language => curate_filters::language::LanguageConfig,
    UrlFilter => curate_filters::url_filter::UrlFilterConfig,
    Pii => curate_filters::pii::PiiConfig,
    Regex => curate_filters::regex_filter::RegexConfig,
    FasttextClassifier => curate_filters::fasttext_classifier::FastTextClassifierConfig,
    Sample => curate_label::sample::SampleConfig,
    Label => curate_label::label::LabelConfig,
    Train => curate_quality::train::TrainConfig,
    Score => curate_quality::score::ScoreConfig,
    QualityThreshold => curate_quality::threshold::QualityThresholdConfig,
    Combine => curate_quality::combine::CombineConfig,
    ExactDedup => curate_dedup::exact::ExactDedupConfig,
    MinhashDedup => curate_dedup::minhash::MinhashDedupConfig,
    Decontaminate => curate_tokens::decontaminate::DecontaminateConfig,
    Tokenize => curate_tokens::tokenize::TokenizeConfig,
}

/// A TOML table (a step entry).
pub type TomlTable = toml::Table;

/// Preset names `[[steps]] preset = "..."` accepts.
pub const PRESETS: [&str; 3] = ["fineweb", "gopher", "c4"];

/// The step tables a preset expands to, in published order.
pub fn preset(name: &str) -> Option<Vec<toml::Table>> {
    if !PRESETS.contains(&name) {
        return None;
    }
    presets::expand(name)
}

mod presets {
    /// Delegates to the filter library, which owns the published parameters.
    pub(super) fn expand(name: &str) -> Option<Vec<toml::Table>> {
        curate_filters::preset(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_only_options_are_real_options() {
        let mut marked = 0;
        for d in docs() {
            for k in run_only_of(&d.name) {
                assert!(
                    d.options.iter().any(|o| o.name == *k && o.run_only),
                    "{}: RUN_ONLY names `{k}`, which is not one of its options",
                    d.name
                );
                marked += 1;
            }
        }
        assert!(
            marked >= 3,
            "memory limits and the label step's transport options are run-only"
        );
    }

    #[test]
    fn every_step_documents_itself() {
        for d in docs() {
            assert!(
                !d.doc.trim().is_empty(),
                "step {} has no doc comment",
                d.name
            );
            for o in &d.options {
                assert!(
                    !o.doc.trim().is_empty(),
                    "option {}.{} has no doc comment",
                    d.name,
                    o.name
                );
            }
        }
    }
}
