//! Answering one Messages request: the deterministic label, token counts and billing with
//! the prompt-cache fields.

use super::*;

pub(super) fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(a) => a
            .iter()
            .filter_map(|b| b.get("text").and_then(|t| t.as_str()))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// (system tokens, message tokens).
pub(super) fn prompt_parts(v: &Value) -> (u64, u64) {
    let sys = match v.get("system") {
        Some(s) => fake_tokens(&text_of(s)),
        None => 0,
    };
    let user: u64 = v
        .get("messages")
        .and_then(|m| m.as_array())
        .map(|a| a.iter().map(|m| fake_tokens(&text_of(&m["content"]))).sum())
        .unwrap_or(0);
    (sys, user)
}

/// Produces a Message for valid params and bills it.
pub(super) fn answer(st: &State, cfg: &FakeConfig, v: &Value, batch: bool) -> Value {
    let (sys_tokens, user_tokens) = prompt_parts(v);
    let user = v["messages"]
        .as_array()
        .and_then(|a| a.last())
        .map(|m| text_of(&m["content"]))
        .unwrap_or_default();
    let doc = user
        .strip_prefix("<document>\n")
        .and_then(|s| s.strip_suffix("\n</document>"))
        .unwrap_or(&user)
        .to_string();
    // Prompt caching of the system prompt.
    let (mut w5, mut w1, mut read, mut input) = (0u64, 0u64, 0u64, user_tokens);
    let sys_blocks = v.get("system").and_then(|s| s.as_array());
    let cc = sys_blocks
        .and_then(|b| b.last())
        .and_then(|b| b.get("cache_control"));
    match cc {
        Some(cc) if sys_tokens >= cfg.cache_min_tokens => {
            let ttl = if cc.get("ttl").and_then(|t| t.as_str()) == Some("1h") {
                3600.0
            } else {
                300.0
            };
            let key = xxh3_64_with_seed(
                format!("{}\0{}", v["model"], text_of(&v["system"])).as_bytes(),
                0,
            );
            let now = now_unix();
            let mut cache = st.cache.lock().unwrap();
            match cache.get(&key) {
                Some(&exp) if exp > now => {
                    read = sys_tokens;
                    cache.insert(key, exp.max(now + ttl));
                }
                _ => {
                    if ttl > 300.0 {
                        w1 = sys_tokens
                    } else {
                        w5 = sys_tokens
                    }
                    cache.insert(key, now + ttl);
                }
            }
        }
        _ => input += sys_tokens,
    }
    let max_tokens = v.get("max_tokens").and_then(|m| m.as_u64()).unwrap_or(1);
    let thinking = if v.pointer("/output_config/effort").is_some() {
        12
    } else {
        0
    };
    let (score, reason) = cfg.teacher.judge(&doc);
    let answer = json!({"score": score, "reason": reason}).to_string();
    let (stop, content, out_tokens) = if doc.contains("FAKE-REFUSE") {
        ("refusal", json!([]), 3 + thinking)
    } else {
        let need = fake_tokens(&answer) + thinking;
        if doc.contains("FAKE-MAXTOKENS") || need > max_tokens {
            let cut: String = answer.chars().take(10).collect();
            (
                "max_tokens",
                json!([{"type": "text", "text": cut}]),
                max_tokens,
            )
        } else if thinking > 0 {
            (
                "end_turn",
                json!([{"type": "thinking", "thinking": "Scoring.", "signature": "sig"}, {"type": "text", "text": answer}]),
                need,
            )
        } else {
            ("end_turn", json!([{"type": "text", "text": answer}]), need)
        }
    };
    {
        let mut s = st.stats.lock().unwrap();
        let b = if batch { &mut s.batch } else { &mut s.online };
        b.messages += 1;
        b.input += input;
        b.output += out_tokens;
        b.cache_write_5m += w5;
        b.cache_write_1h += w1;
        b.cache_read += read;
        *s.billed_per_document
            .entry(xxh3_64_with_seed(doc.as_bytes(), 0))
            .or_default() += 1;
    }
    json!({
        "id": format!("msg_fake_{:016x}", xxh3_64_with_seed(doc.as_bytes(), 1)),
        "type": "message",
        "role": "assistant",
        "model": v["model"],
        "content": content,
        "stop_reason": stop,
        "stop_sequence": null,
        "usage": {
            "input_tokens": input,
            "output_tokens": out_tokens,
            "cache_creation_input_tokens": w5 + w1,
            "cache_read_input_tokens": read,
            "cache_creation": {"ephemeral_5m_input_tokens": w5, "ephemeral_1h_input_tokens": w1},
            "service_tier": if batch { "batch" } else { "standard" },
        }
    })
}
