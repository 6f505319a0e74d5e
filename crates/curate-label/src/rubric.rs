//! The rubric: the system prompt that tells the teacher how to score, and the JSON schema its
//! answer must follow.
//!
//! The default is our own 0–5 educational-value scale in the spirit of FineWeb-Edu
//! (`configs/rubrics/edu-0-5.md`). Users give their own prompt file (`rubric = "FILE"`) and,
//! optionally, their own schema (`schema = "FILE.json"`). Both are checked before any request:
//! the schema must be an object with `additionalProperties: false`, a numeric `score` and a
//! string `reason`, both required.

use std::path::Path;

use serde_json::Value;

use crate::LabelError;

/// The default rubric prompt.
pub const DEFAULT_PROMPT: &str = include_str!("rubrics/edu-0-5.md");
/// The default answer schema.
pub const DEFAULT_SCHEMA: &str = include_str!("rubrics/edu-0-5.schema.json");

/// Version of how a document is presented to the teacher (the `<document>` wrapper and the
/// truncation rule). Part of the prompt hash: changing either re-labels.
pub const PRESENTATION_VERSION: &str = "document-tag-v1";

/// A loaded, checked rubric.
#[derive(Debug, Clone)]
pub struct Rubric {
    /// Where it came from: `default`, or the prompt file's name (not its path, which depends on
    /// where the run was started; the prompt's content is in the prompt hash).
    pub source: String,
    /// The system prompt.
    pub prompt: String,
    /// The answer schema.
    pub schema: Value,
    /// Lowest allowed score, when the schema says.
    pub score_min: Option<f64>,
    /// Highest allowed score, when the schema says.
    pub score_max: Option<f64>,
}

impl Rubric {
    /// The built-in rubric.
    pub fn default_rubric() -> Rubric {
        let schema: Value = serde_json::from_str(DEFAULT_SCHEMA).expect("default schema is JSON");
        let (lo, hi) = check_schema(&schema).expect("default schema is valid");
        Rubric {
            source: "default".into(),
            prompt: DEFAULT_PROMPT.to_string(),
            schema,
            score_min: lo,
            score_max: hi,
        }
    }

    /// Loads a rubric: the prompt from `prompt_file` (default rubric when `None`) and the schema
    /// from `schema_file` (default schema when `None`). Every problem names the file.
    pub fn load(
        prompt_file: Option<&Path>,
        schema_file: Option<&Path>,
    ) -> Result<Rubric, LabelError> {
        let mut r = Rubric::default_rubric();
        if let Some(p) = prompt_file {
            let text = std::fs::read_to_string(p).map_err(|e| LabelError::Rubric {
                path: p.to_path_buf(),
                message: format!("cannot read the rubric file: {e}"),
            })?;
            check_prompt(&text).map_err(|m| LabelError::Rubric {
                path: p.to_path_buf(),
                message: m,
            })?;
            r.prompt = text;
            r.source = p.file_name().map_or_else(
                || p.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
        }
        if let Some(p) = schema_file {
            let text = std::fs::read_to_string(p).map_err(|e| LabelError::Schema {
                path: p.to_path_buf(),
                message: format!("cannot read the schema file: {e}"),
            })?;
            let v: Value = serde_json::from_str(&text).map_err(|e| LabelError::Schema {
                path: p.to_path_buf(),
                message: format!("not valid JSON: {e}"),
            })?;
            let (lo, hi) = check_schema(&v).map_err(|m| LabelError::Schema {
                path: p.to_path_buf(),
                message: m,
            })?;
            r.schema = v;
            r.score_min = lo;
            r.score_max = hi;
        }
        Ok(r)
    }

    /// Parses the teacher's answer text into (score, reason), checking the score range.
    pub fn parse_answer(&self, text: &str) -> Result<(f64, String), String> {
        let v: Value =
            serde_json::from_str(text.trim()).map_err(|e| format!("answer is not JSON: {e}"))?;
        let score = v
            .get("score")
            .and_then(|s| s.as_f64())
            .ok_or("answer has no numeric `score`")?;
        if self.score_min.is_some_and(|m| score < m) || self.score_max.is_some_and(|m| score > m) {
            return Err(format!("score {score} is outside the schema's range"));
        }
        let reason = v
            .get("reason")
            .and_then(|s| s.as_str())
            .unwrap_or("")
            .to_string();
        Ok((score, reason))
    }
}

/// Checks a rubric prompt: not empty, not absurdly large, and not carrying the document slot of
/// another tool (the document goes in the user message, never in the rubric).
pub fn check_prompt(text: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err("the rubric is empty".into());
    }
    if text.len() > 200_000 {
        return Err(format!(
            "the rubric is {} bytes; at most 200000 are allowed",
            text.len()
        ));
    }
    if text.contains("<document>") && text.contains("</document>") && text.contains("{text}") {
        return Err("the rubric contains a `{text}` placeholder; curate sends the document in the user message, \
                    so write the rubric without it"
            .into());
    }
    Ok(())
}

/// Checks an answer schema; returns the score range it allows, if it states one.
pub fn check_schema(v: &Value) -> Result<(Option<f64>, Option<f64>), String> {
    let obj = v.as_object().ok_or("the schema must be a JSON object")?;
    if obj.get("type").and_then(|t| t.as_str()) != Some("object") {
        return Err("the schema's `type` must be \"object\"".into());
    }
    if obj.get("additionalProperties") != Some(&Value::Bool(false)) {
        return Err(
            "the schema must set `additionalProperties: false` (required by structured outputs)"
                .into(),
        );
    }
    let props = obj
        .get("properties")
        .and_then(|p| p.as_object())
        .ok_or("the schema has no `properties` object")?;
    let required: Vec<&str> = obj
        .get("required")
        .and_then(|r| r.as_array())
        .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default();
    for k in ["score", "reason"] {
        if !props.contains_key(k) {
            return Err(format!(
                "the schema has no `{k}` property; curate needs `score` (number) and `reason` (string)"
            ));
        }
        if !required.contains(&k) {
            return Err(format!("`{k}` must be listed in the schema's `required`"));
        }
    }
    for r in &required {
        if !props.contains_key(*r) {
            return Err(format!(
                "`required` names `{r}`, which is not in `properties`"
            ));
        }
    }
    let score = &props["score"];
    let ty = score.get("type").and_then(|t| t.as_str());
    if !matches!(ty, Some("integer" | "number")) {
        return Err(format!(
            "`score` must have type \"integer\" or \"number\", not {}",
            score.get("type").unwrap_or(&Value::Null)
        ));
    }
    if props["reason"].get("type").and_then(|t| t.as_str()) != Some("string") {
        return Err("`reason` must have type \"string\"".into());
    }
    let (mut lo, mut hi) = (
        score.get("minimum").and_then(|x| x.as_f64()),
        score.get("maximum").and_then(|x| x.as_f64()),
    );
    if let Some(e) = score.get("enum") {
        let vals: Vec<f64> = e
            .as_array()
            .ok_or("`score.enum` must be an array")?
            .iter()
            .filter_map(|x| x.as_f64())
            .collect();
        if vals.is_empty() {
            return Err("`score.enum` must list numbers".into());
        }
        lo = vals.iter().copied().reduce(f64::min);
        hi = vals.iter().copied().reduce(f64::max);
    }
    Ok((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_custom_rubric_is_recorded_by_file_name_not_path() {
        let shipped = curate_testkit::repo_root().join("configs/rubrics/edu-0-5.md");
        let r = Rubric::load(Some(&shipped), None).unwrap();
        assert_eq!(r.source, "edu-0-5.md");
    }

    #[test]
    fn default_rubric_is_valid_and_shipped() {
        let r = Rubric::default_rubric();
        assert_eq!((r.score_min, r.score_max), (Some(0.0), Some(5.0)));
        let shipped = curate_testkit::repo_root().join("configs/rubrics/edu-0-5.md");
        assert_eq!(
            std::fs::read_to_string(shipped).unwrap(),
            DEFAULT_PROMPT,
            "configs/rubrics copy drifted"
        );
        assert_eq!(
            r.parse_answer(r#"{"score": 3, "reason": "ok"}"#).unwrap(),
            (3.0, "ok".to_string())
        );
        assert!(r.parse_answer(r#"{"score": 9, "reason": "x"}"#).is_err());
        assert!(r.parse_answer(r#"{"score": 2"#).is_err());
    }

    #[test]
    fn bad_schemas_are_explained() {
        let bad = [
            (serde_json::json!([1]), "JSON object"),
            (
                serde_json::json!({"type": "object", "properties": {}}),
                "additionalProperties",
            ),
            (
                serde_json::json!({"type": "object", "additionalProperties": false, "properties": {"score": {"type": "integer"}}, "required": ["score"]}),
                "no `reason`",
            ),
            (
                serde_json::json!({"type": "object", "additionalProperties": false, "properties": {"score": {"type": "string"}, "reason": {"type": "string"}}, "required": ["score", "reason"]}),
                "\"integer\" or \"number\"",
            ),
            (
                serde_json::json!({"type": "object", "additionalProperties": false, "properties": {"score": {"type": "number"}, "reason": {"type": "string"}}, "required": ["score"]}),
                "`reason` must be listed",
            ),
        ];
        for (v, want) in bad {
            let e = check_schema(&v).unwrap_err();
            assert!(e.contains(want), "{e} should mention {want}");
        }
    }

    #[test]
    fn bad_rubric_files_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.md");
        std::fs::write(&p, "  \n").unwrap();
        let e = Rubric::load(Some(&p), None).unwrap_err().to_string();
        assert!(e.contains("r.md") && e.contains("empty"), "{e}");
        let s = dir.path().join("s.json");
        std::fs::write(&s, "{not json").unwrap();
        let e = Rubric::load(None, Some(&s)).unwrap_err().to_string();
        assert!(e.contains("s.json") && e.contains("not valid JSON"), "{e}");
        let e = Rubric::load(Some(&dir.path().join("missing.md")), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.md"), "{e}");
    }
}
