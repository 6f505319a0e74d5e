//! Strict request validation: the Messages parameters curate may send and the batch
//! `custom_id` rule.

use super::*;

pub(super) const ALLOWED: [&str; 12] = [
    "model",
    "max_tokens",
    "messages",
    "system",
    "stop_sequences",
    "metadata",
    "tools",
    "tool_choice",
    "output_config",
    "thinking",
    "cache_control",
    "service_tier",
];

pub(super) fn bad(msg: String) -> Resp {
    error(400, "invalid_request_error", &msg)
}

/// Validates Messages params (`with_max_tokens`: a messages request rather than count_tokens).
#[allow(clippy::result_large_err)] // the error is the HTTP response to send
pub(super) fn validate_params(v: &Value, with_max_tokens: bool) -> Result<(), Resp> {
    let obj = v
        .as_object()
        .ok_or_else(|| bad("body must be a JSON object".into()))?;
    for k in obj.keys() {
        let allowed = ALLOWED.contains(&k.as_str()) && (with_max_tokens || k != "max_tokens");
        if !allowed {
            return Err(bad(format!("{k}: Extra inputs are not permitted")));
        }
    }
    let model = obj
        .get("model")
        .and_then(|m| m.as_str())
        .ok_or_else(|| bad("model: Field required".into()))?;
    if !model.starts_with("claude-") {
        return Err(error(404, "not_found_error", &format!("model: {model}")));
    }
    if with_max_tokens {
        match obj.get("max_tokens").and_then(|m| m.as_u64()) {
            Some(m) if m >= 1 => {}
            _ => return Err(bad("max_tokens: Field required (an integer ≥ 1)".into())),
        }
    }
    let msgs = obj
        .get("messages")
        .and_then(|m| m.as_array())
        .ok_or_else(|| bad("messages: Field required".into()))?;
    if msgs.is_empty() {
        return Err(bad("messages: at least one message is required".into()));
    }
    let mut breakpoints = 0;
    for (i, m) in msgs.iter().enumerate() {
        let role = m.get("role").and_then(|r| r.as_str()).unwrap_or("");
        if role != "user" && role != "assistant" {
            return Err(bad(format!(
                "messages.{i}.role: Input should be 'user' or 'assistant'"
            )));
        }
        match m.get("content") {
            Some(Value::String(_)) => {}
            Some(Value::Array(blocks)) => {
                for b in blocks {
                    if b.get("cache_control").is_some() {
                        breakpoints += 1;
                    }
                }
            }
            _ => return Err(bad(format!("messages.{i}.content: Field required"))),
        }
    }
    if msgs
        .last()
        .and_then(|m| m.get("role"))
        .and_then(|r| r.as_str())
        != Some("user")
    {
        return Err(bad("This model does not support assistant message prefill. The conversation must end with a user message.".into()));
    }
    match obj.get("system") {
        None | Some(Value::String(_)) => {}
        Some(Value::Array(blocks)) => {
            for (i, b) in blocks.iter().enumerate() {
                if b.get("type").and_then(|t| t.as_str()) != Some("text")
                    || !b.get("text").is_some_and(|t| t.is_string())
                {
                    return Err(bad(format!("system.{i}: must be a text block")));
                }
                if let Some(cc) = b.get("cache_control") {
                    breakpoints += 1;
                    if cc.get("type").and_then(|t| t.as_str()) != Some("ephemeral") {
                        return Err(bad(format!(
                            "system.{i}.cache_control.type: Input should be 'ephemeral'"
                        )));
                    }
                    if let Some(ttl) = cc.get("ttl")
                        && ttl != "5m"
                        && ttl != "1h"
                    {
                        return Err(bad(format!(
                            "system.{i}.cache_control.ttl: Input should be '5m' or '1h'"
                        )));
                    }
                }
            }
        }
        Some(_) => {
            return Err(bad(
                "system: must be a string or a list of text blocks".into()
            ));
        }
    }
    if breakpoints > 4 {
        return Err(bad(
            "A maximum of 4 blocks with cache_control may be provided".into(),
        ));
    }
    if let Some(oc) = obj.get("output_config") {
        let oc = oc
            .as_object()
            .ok_or_else(|| bad("output_config: must be an object".into()))?;
        for k in oc.keys() {
            if k != "format" && k != "effort" {
                return Err(bad(format!(
                    "output_config.{k}: Extra inputs are not permitted"
                )));
            }
        }
        if let Some(e) = oc.get("effort")
            && !["low", "medium", "high", "xhigh", "max"].contains(&e.as_str().unwrap_or(""))
        {
            return Err(bad(format!("output_config.effort: unknown effort {e}")));
        }
        if let Some(f) = oc.get("format") {
            if f.get("type").and_then(|t| t.as_str()) != Some("json_schema") {
                return Err(bad(
                    "output_config.format.type: Input should be 'json_schema'".into(),
                ));
            }
            let schema = f
                .get("schema")
                .and_then(|s| s.as_object())
                .ok_or_else(|| bad("output_config.format.schema: Field required".into()))?;
            if schema.get("type").and_then(|t| t.as_str()) != Some("object") {
                return Err(bad(
                    "output_config.format.schema: the root must have type 'object'".into(),
                ));
            }
            if schema.get("additionalProperties") != Some(&Value::Bool(false)) {
                return Err(bad(
                    "output_config.format.schema: objects must set additionalProperties to false"
                        .into(),
                ));
            }
            let props = schema
                .get("properties")
                .and_then(|p| p.as_object())
                .ok_or_else(|| {
                    bad("output_config.format.schema.properties: Field required".into())
                })?;
            if let Some(req) = schema.get("required").and_then(|r| r.as_array()) {
                for r in req {
                    if !r.as_str().is_some_and(|r| props.contains_key(r)) {
                        return Err(bad(format!(
                            "output_config.format.schema.required: {r} is not a property"
                        )));
                    }
                }
            }
        }
    }
    if let Some(t) = obj.get("thinking")
        && t.get("budget_tokens").is_some()
        && model.starts_with("claude-haiku-5")
    {
        return Err(bad(
            "thinking.budget_tokens: not supported on this model; use adaptive thinking".into(),
        ));
    }
    Ok(())
}

pub(super) fn valid_custom_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}
