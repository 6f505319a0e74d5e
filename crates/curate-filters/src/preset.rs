//! Presets: the published rule sets as lists of step tables, with datatrove 0.10.1's parameters.
//!
//! The pipeline expands a `[[steps]] preset = "fineweb"` entry into these tables (in order)
//! before validation, so a preset is exactly equivalent to writing its steps out; `curate
//! explain fineweb` prints the expansion.

/// Preset names.
pub const PRESETS: &[&str] = &["fineweb", "gopher", "c4"];

/// The step tables `name` expands to, in published order; `None` for an unknown name.
///
/// - `fineweb`: FineWeb's filtering (datatrove `examples/fineweb.py`): `url_filter` →
///   `language` (en, score > 0.65) → `gopher_repetition` → `gopher_quality` → `c4_quality` with
///   `filter_no_terminal_punct = false` → `fineweb_quality`. FineWeb then deduplicates each crawl
///   with MinHash and redacts PII (`pii`); add those steps after the preset. FineWeb-schema
///   inputs already carry `language` / `language_score` (from an earlier language ID), which
///   FineWeb recomputes: the preset's `language` step says `overwrite = true` (the pipeline's
///   generic option; no other column is ever replaced without it).
/// - `gopher`: MassiveWeb's heuristics: `gopher_quality` → `gopher_repetition`.
/// - `c4`: C4's cleaning: `c4_quality` (all rules, terminal punctuation included) →
///   `c4_badwords`.
pub fn preset(name: &str) -> Option<Vec<toml::Table>> {
    let src = match name {
        "fineweb" => {
            r#"
            [[steps]]
            type = "url_filter"
            [[steps]]
            type = "language"
            languages = ["en"]
            language_threshold = 0.65
            overwrite = true
            [[steps]]
            type = "gopher_repetition"
            [[steps]]
            type = "gopher_quality"
            [[steps]]
            type = "c4_quality"
            filter_no_terminal_punct = false
            [[steps]]
            type = "fineweb_quality"
            "#
        }
        "gopher" => {
            r#"
            [[steps]]
            type = "gopher_quality"
            [[steps]]
            type = "gopher_repetition"
            "#
        }
        "c4" => {
            r#"
            [[steps]]
            type = "c4_quality"
            [[steps]]
            type = "c4_badwords"
            "#
        }
        _ => return None,
    };
    let doc: toml::Table = toml::from_str(src).expect("preset TOML parses");
    let steps = doc.get("steps")?.as_array()?;
    Some(steps.iter().filter_map(|s| s.as_table().cloned()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use curate_core::{Problems, StepSpec};

    fn check<S: StepSpec>(t: &toml::Table) {
        let mut t = t.clone();
        t.remove("type");
        t.remove("overwrite");
        let s: S = t.try_into().unwrap_or_else(|e| panic!("{}: {e}", S::TYPE));
        let mut p = Problems::new();
        s.validate(&mut p);
        assert!(p.is_empty(), "{}: {:?}", S::TYPE, p.items());
    }

    #[test]
    fn every_preset_step_parses_and_validates() {
        for name in PRESETS {
            let steps = preset(name).unwrap();
            assert!(!steps.is_empty());
            for t in &steps {
                match t["type"].as_str().unwrap() {
                    "url_filter" => check::<crate::url_filter::UrlFilterConfig>(t),
                    "language" => check::<crate::language::LanguageConfig>(t),
                    "gopher_repetition" => {
                        check::<crate::gopher_repetition::GopherRepetitionConfig>(t)
                    }
                    "gopher_quality" => check::<crate::gopher_quality::GopherQualityConfig>(t),
                    "c4_quality" => check::<crate::c4_quality::C4QualityConfig>(t),
                    "c4_badwords" => check::<crate::c4_badwords::C4BadWordsConfig>(t),
                    "fineweb_quality" => check::<crate::fineweb_quality::FineWebQualityConfig>(t),
                    other => panic!("unknown step {other}"),
                }
            }
        }
        let fw: Vec<String> = preset("fineweb")
            .unwrap()
            .iter()
            .map(|t| t["type"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            fw,
            [
                "url_filter",
                "language",
                "gopher_repetition",
                "gopher_quality",
                "c4_quality",
                "fineweb_quality"
            ]
        );
        assert!(preset("dolma").is_none());
    }
}
