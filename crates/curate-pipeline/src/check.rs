//! Checking TOML tables against typed config structs, collecting every problem: the leaf the
//! config parser and the step registry share (it imports neither).

use curate_core::config::{OptionDoc, Problems, did_you_mean};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;

/// The keys of a section struct, from its schema.
pub(crate) fn section_doc<T: JsonSchema>(name: &str) -> Vec<OptionDoc> {
    let schema = schemars::schema_for!(T);
    let v = schema.as_value();
    let props = v
        .get("properties")
        .and_then(|p| p.as_object())
        .cloned()
        .unwrap_or_default();
    props
        .keys()
        .map(|k| OptionDoc {
            name: k.clone(),
            ty: String::new(),
            default: None,
            doc: format!("{name}.{k}"),
            required: false,
            run_only: false,
        })
        .collect()
}

/// Deserializes a table, reporting unknown keys (with did-you-mean), each bad value and each
/// missing required key as separate problems.
///
/// When some keys are bad, the rest are still deserialized (bad keys dropped, defaults in their
/// place) and returned with `false`, so semantic validation can report its problems too; such a
/// value is only for validation, never for running.
pub(crate) fn check_table<T: DeserializeOwned>(
    table: &toml::Table,
    keys: &[String],
    problems: &mut Problems,
) -> Option<(T, bool)> {
    let mut bad: Vec<String> = Vec::new();
    for k in table.keys() {
        if !keys.iter().any(|x| x == k) {
            bad.push(k.clone());
            let msg = format!("unknown key; allowed: {}", keys.join(", "));
            match did_you_mean(k, keys.iter().map(|s| s.as_str())) {
                Some(s) => problems.push_hint(k, msg, format!("did you mean `{s}`?")),
                None => problems.push(k, msg),
            }
        }
    }
    if bad.is_empty()
        && let Ok(v) = T::deserialize(toml::Value::Table(table.clone()))
    {
        return Some((v, true));
    }
    // Attribute errors to fields: deserialize each known key on its own.
    for (k, v) in table {
        if bad.contains(k) {
            continue;
        }
        let mut one = toml::Table::new();
        one.insert(k.clone(), v.clone());
        if let Err(e) = T::deserialize(toml::Value::Table(one)) {
            let m = e.message().trim_end().to_string();
            if !m.starts_with("missing field") {
                let shown = render_value(v);
                let msg = if m.contains(&shown) {
                    m
                } else {
                    format!("{m} (got {shown})")
                };
                problems.push(k, msg);
                bad.push(k.clone());
            }
        }
    }
    let mut repaired = table.clone();
    for k in &bad {
        repaired.remove(k);
    }
    match T::deserialize(toml::Value::Table(repaired)) {
        Ok(v) => Some((v, bad.is_empty())),
        Err(e) => {
            let m = e.message().to_string();
            match m
                .strip_prefix("missing field `")
                .and_then(|r| r.split('`').next())
            {
                Some(f) if !bad.iter().any(|b| b == f) => problems.push(f, "required but missing"),
                Some(_) => {}
                None if bad.is_empty() => problems.push("", m),
                None => {}
            }
            None
        }
    }
}

pub(crate) fn render_value(v: &toml::Value) -> String {
    let s = v.to_string();
    if s.len() > 60 {
        format!("{}…", &s[..s.floor_char_boundary(60)])
    } else {
        s
    }
}

/// The keys of a section struct.
pub(crate) fn keys_of<T: JsonSchema>() -> Vec<String> {
    section_doc::<T>("").into_iter().map(|o| o.name).collect()
}

/// Deserializes one step's table with problem collection (used by the registry macro).
pub(crate) fn check_step<T: DeserializeOwned>(
    table: &toml::Table,
    keys: &[String],
    p: &mut Problems,
) -> Option<T> {
    check_table(table, keys, p).map(|x| x.0)
}
