//! Step configs, their documentation, and the list of problems validation collects.
//!
//! Configs are validated in layers (see `curate-pipeline`): TOML → raw structs (serde, with
//! `deny_unknown_fields`) → [`StepSpec::validate`], which pushes *every* semantic problem into a
//! [`Problems`] list instead of stopping at the first → [`StepSpec::build`].
//!
//! A step's documentation is its config struct's doc comments, read through its JSON schema
//! ([`StepDoc::of`]), so `curate explain` can never drift from the code.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::step::{BuildEnv, Step, StepError};

/// A step's config: deserialized from a `[[steps]]` table, validated, then built.
pub trait StepSpec: DeserializeOwned + Serialize + schemars::JsonSchema + Sized {
    /// The step's `type` in configs.
    const TYPE: &'static str;

    /// Options that cannot change the output (memory limits, concurrency, timeouts, cache
    /// locations): left out of the config fingerprint, so changing them never forces a fresh
    /// run. Everything else is part of it. Marked "does not change the output" in the docs.
    const RUN_ONLY: &'static [&'static str] = &[];

    /// Collects every problem with the values (ranges, consistency). Field names are the
    /// config's keys.
    fn validate(&self, _problems: &mut Problems) {}

    /// Step types of which at least one must come earlier in the pipeline (e.g. `label` needs a
    /// `sample`, `score` needs a `train`). Checked by the pipeline with the others problems.
    fn requires(&self) -> &'static [&'static str] {
        &[]
    }

    /// Whether the step must be the pipeline's last (e.g. `tokenize`, whose output describes the
    /// final documents). Checked by the pipeline with the other problems.
    fn must_be_last(&self) -> bool {
        false
    }

    /// Builds the runtime step.
    fn build(&self, env: &BuildEnv) -> Result<Box<dyn Step>, StepError>;
}

/// One configuration problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Where: `input`, `output`, `run`, or `steps[3] (gopher_quality)`.
    pub scope: String,
    /// The key concerned (may be empty for a whole-section problem).
    pub field: String,
    /// What is wrong, including the bad value and what is allowed.
    pub message: String,
    /// A suggestion, e.g. a did-you-mean.
    pub hint: Option<String>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.scope, self.message)?;
        } else {
            write!(f, "{}: `{}`: {}", self.scope, self.field, self.message)?;
        }
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

/// A list of problems being collected under a current scope.
#[derive(Debug, Clone, Default)]
pub struct Problems {
    scope: String,
    items: Vec<Problem>,
}

impl Problems {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the scope subsequent problems are reported under.
    pub fn set_scope(&mut self, scope: impl Into<String>) {
        self.scope = scope.into();
    }

    /// Records a problem with `field`.
    pub fn push(&mut self, field: &str, message: impl Into<String>) {
        self.items.push(Problem {
            scope: self.scope.clone(),
            field: field.to_string(),
            message: message.into(),
            hint: None,
        });
    }

    /// Records a problem with a hint.
    pub fn push_hint(&mut self, field: &str, message: impl Into<String>, hint: impl Into<String>) {
        self.items.push(Problem {
            scope: self.scope.clone(),
            field: field.to_string(),
            message: message.into(),
            hint: Some(hint.into()),
        });
    }

    /// Checks `lo <= v <= hi`.
    pub fn range<T: PartialOrd + fmt::Display>(&mut self, field: &str, v: T, lo: T, hi: T) {
        if !(v >= lo && v <= hi) {
            self.push(field, format!("{v} is out of range; allowed: {lo} to {hi}"));
        }
    }

    /// Checks a ratio lies in [0, 1].
    pub fn ratio(&mut self, field: &str, v: f64) {
        self.range(field, v, 0.0, 1.0);
    }

    /// Checks `v` is one of `allowed`.
    pub fn one_of(&mut self, field: &str, v: &str, allowed: &[&str]) {
        if !allowed.contains(&v) {
            let msg = format!("\"{v}\" is not allowed; allowed: {}", allowed.join(", "));
            match did_you_mean(v, allowed.iter().copied()) {
                Some(s) => self.push_hint(field, msg, format!("did you mean \"{s}\"?")),
                None => self.push(field, msg),
            }
        }
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The problems recorded.
    pub fn items(&self) -> &[Problem] {
        &self.items
    }

    /// Consumes the list.
    pub fn into_items(self) -> Vec<Problem> {
        self.items
    }

    /// Appends another list's problems.
    pub fn extend(&mut self, other: Problems) {
        self.items.extend(other.items);
    }
}

/// Parses a byte size such as `"512MiB"`, `"2GB"`, `"64k"` or `"1048576"` (the grammar of
/// [`ByteSize`]).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    ByteSize::parse(s).map(|b| b.0)
}

/// A byte size: an integer, or a string with a unit — decimal `B`, `KB`, `MB`, `GB`, `TB`
/// (also `k`, `m`, `g`, `t`) or binary `KiB`, `MiB`, `GiB`, `TiB` (case-insensitive; a
/// fraction such as `"1.5GB"` is allowed). The one grammar of every size in a config
/// (`[output] target_file_size`, steps' `memory_limit`). Serializes as the byte count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// Parses `"512MB"`, `"1GiB"`, `"1000"`.
    pub fn parse(s: &str) -> Result<ByteSize, String> {
        let t = s.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let v: f64 = num
            .parse()
            .map_err(|_| format!("\"{t}\" is not a size such as \"512MB\""))?;
        let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" => 1_000,
            "kib" => 1 << 10,
            "m" | "mb" => 1_000_000,
            "mib" => 1 << 20,
            "g" | "gb" => 1_000_000_000,
            "gib" => 1 << 30,
            "t" | "tb" => 1_000_000_000_000,
            "tib" => 1 << 40,
            u => {
                return Err(format!(
                    "unknown unit \"{u}\" in \"{t}\"; use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB"
                ));
            }
        };
        Ok(ByteSize((v * mult as f64) as u64))
    }
}

impl<'de> serde::Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte count or a size string such as \"512MB\"")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom(format!("{v} is negative")))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ByteSize, E> {
                ByteSize::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl schemars::JsonSchema for ByteSize {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ByteSize".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": ["integer", "string"], "description": "bytes, or a size such as \"512MB\"" })
    }
}

/// The closest candidate to `name`, if one is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let mut best: Option<(f64, &str)> = None;
    for c in candidates {
        let score = strsim::jaro_winkler(name, c);
        if score > 0.8 && best.is_none_or(|(b, _)| score > b) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| c)
}

/// The key every step accepts to replace existing columns of the same name as the columns it
/// adds (handled by the pipeline, not by each step's config struct).
pub const OVERWRITE_KEY: &str = "overwrite";

/// `overwrite`'s documentation.
pub const OVERWRITE_DOC: &str = "Replace input (or earlier steps') columns of the same name as the columns this step adds. Without it such a collision is a config problem: no column is ever overwritten silently.";

/// Documentation of one config option, from the schema.
#[derive(Debug, Clone, Serialize)]
pub struct OptionDoc {
    /// Key name.
    pub name: String,
    /// Type as shown to users.
    pub ty: String,
    /// Default value rendered as TOML-ish JSON, if any.
    pub default: Option<String>,
    /// The field's doc comment.
    pub doc: String,
    /// Whether the key must be given.
    pub required: bool,
    /// The option cannot change the output (left out of the config fingerprint).
    pub run_only: bool,
}

/// Documentation of one step type, from its config struct.
#[derive(Debug, Clone, Serialize)]
pub struct StepDoc {
    /// The `type` name.
    pub name: String,
    /// The struct's doc comment.
    pub doc: String,
    /// Its options in declaration order.
    pub options: Vec<OptionDoc>,
}

impl StepDoc {
    /// Reads a spec's docs from its JSON schema.
    pub fn of<S: StepSpec>() -> StepDoc {
        let schema = schemars::schema_for!(S);
        let v = schema.as_value();
        let mut options = options(v);
        for o in &mut options {
            o.run_only = S::RUN_ONLY.contains(&o.name.as_str());
        }
        StepDoc {
            name: S::TYPE.to_string(),
            doc: desc(v),
            options,
        }
    }

    /// The first line of the description.
    pub fn summary(&self) -> &str {
        self.doc.lines().next().unwrap_or("")
    }

    /// Names of all keys this step accepts (besides `type`).
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.options.iter().map(|o| o.name.as_str())
    }

    /// Renders the docs for a terminal.
    pub fn render(&self) -> String {
        let mut s = format!("{}\n\n{}\n", self.name, self.doc.trim());
        if !self.options.is_empty() {
            s.push_str("\nOptions:\n");
            for o in &self.options {
                let dflt = match (&o.default, o.required) {
                    (_, true) => " (required)".to_string(),
                    (Some(d), _) => format!(" (default: {d})"),
                    _ => String::new(),
                };
                s.push_str(&format!("  {} : {}{}\n", o.name, o.ty, dflt));
                for line in o.doc.lines() {
                    s.push_str(&format!("      {line}\n"));
                }
                if o.run_only {
                    s.push_str(
                        "      Does not change the output (not part of the config fingerprint).\n",
                    );
                }
            }
        }
        s.push_str(&format!(
            "\nOptions every step takes:\n  {OVERWRITE_KEY} : boolean (default: false)\n      {OVERWRITE_DOC}\n"
        ));
        s
    }
}

fn desc(v: &serde_json::Value) -> String {
    v.get("description")
        .and_then(|d| d.as_str())
        .unwrap_or("")
        .to_string()
}

fn options(v: &serde_json::Value) -> Vec<OptionDoc> {
    let Some(props) = v.get("properties").and_then(|p| p.as_object()) else {
        return vec![];
    };
    let required: Vec<&str> = v
        .get("required")
        .and_then(|r| r.as_array())
        .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default();
    props
        .iter()
        .filter(|(k, _)| k.as_str() != "type")
        .map(|(k, p)| OptionDoc {
            name: k.clone(),
            ty: type_name(p),
            default: p.get("default").map(|d| d.to_string()),
            doc: desc(p),
            required: required.contains(&k.as_str()),
            run_only: false,
        })
        .collect()
}

fn type_name(p: &serde_json::Value) -> String {
    if let Some(t) = p.get("type") {
        return match t {
            serde_json::Value::String(s) => match (s.as_str(), p.get("items")) {
                ("array", Some(items)) => format!("array of {}", type_name(items)),
                _ => s.clone(),
            },
            serde_json::Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str())
                .filter(|x| *x != "null")
                .collect::<Vec<_>>()
                .join(" | "),
            _ => t.to_string(),
        };
    }
    if let Some(e) = p.get("enum").and_then(|e| e.as_array()) {
        return e
            .iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(" | ");
    }
    if let Some(r) = p.get("$ref").and_then(|r| r.as_str()) {
        return r.rsplit('/').next().unwrap_or(r).to_string();
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(a) = p.get(key).and_then(|a| a.as_array()) {
            return a
                .iter()
                .map(type_name)
                .filter(|t| t != "null")
                .collect::<Vec<_>>()
                .join(" | ");
        }
    }
    if p.get("const").is_some() {
        return p["const"].to_string();
    }
    "value".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_bytes("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("2GB").unwrap(), 2_000_000_000);
        assert_eq!(parse_bytes("1024").unwrap(), 1024);
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("5 parsecs").is_err());
    }

    #[test]
    fn did_you_mean_finds_typos() {
        assert_eq!(
            did_you_mean("min_wrods", ["min_words", "max_words"]),
            Some("min_words")
        );
        assert_eq!(did_you_mean("zzz", ["min_words"]), None);
    }

    #[test]
    fn problems_render() {
        let mut p = Problems::new();
        p.set_scope("steps[0] (length)");
        p.range("min_words", -1i64, 0, 100);
        p.one_of("mode", "bach", &["batch", "online"]);
        let s: Vec<String> = p.items().iter().map(|x| x.to_string()).collect();
        assert_eq!(
            s[0],
            "steps[0] (length): `min_words`: -1 is out of range; allowed: 0 to 100"
        );
        assert!(s[1].contains("did you mean \"batch\"?"), "{}", s[1]);
    }
}
