//! The Message Batches endpoints: create, poll (with partly failed and expired entries) and
//! the JSONL results.

use super::*;

pub(super) fn create_batch(st: &State, v: &Value) -> Resp {
    let Some(obj) = v.as_object() else {
        return reject(st, bad("body must be an object".into()));
    };
    if let Some(k) = obj.keys().find(|k| *k != "requests") {
        return reject(st, bad(format!("{k}: Extra inputs are not permitted")));
    }
    let Some(reqs) = obj.get("requests").and_then(|r| r.as_array()) else {
        return reject(st, bad("requests: Field required".into()));
    };
    if reqs.is_empty() || reqs.len() > 100_000 {
        return reject(
            st,
            bad(format!(
                "requests: between 1 and 100000 requests allowed, got {}",
                reqs.len()
            )),
        );
    }
    let mut seen = std::collections::HashSet::new();
    let mut list = Vec::with_capacity(reqs.len());
    for (i, r) in reqs.iter().enumerate() {
        let id = r.get("custom_id").and_then(|c| c.as_str()).unwrap_or("");
        if !valid_custom_id(id) {
            return reject(
                st,
                bad(format!(
                    "requests.{i}.custom_id: must match ^[a-zA-Z0-9_-]{{1,64}}$"
                )),
            );
        }
        if !seen.insert(id.to_string()) {
            return reject(
                st,
                bad(format!(
                    "requests.{i}.custom_id: {id:?} is not unique within the batch"
                )),
            );
        }
        let Some(p) = r.get("params") else {
            return reject(st, bad(format!("requests.{i}.params: Field required")));
        };
        if p.get("max_tokens").and_then(|m| m.as_u64()) == Some(0) {
            return reject(
                st,
                bad(format!(
                    "requests.{i}.params.max_tokens: 0 is not allowed in a batch"
                )),
            );
        }
        list.push((id.to_string(), p.clone()));
    }
    let mut b = st.batches.lock().unwrap();
    let seq = b.len() as u64 + 1;
    let id = format!("msgbatch_fake{seq:012}");
    {
        let mut s = st.stats.lock().unwrap();
        s.batches_created += 1;
        s.batch_entries += list.len() as u64;
    }
    let bs = BatchState {
        seq,
        requests: list,
        polls: 0,
        created: now_unix(),
        canceled: false,
        results: None,
        counts: [0; 5],
    };
    let obj = batch_object(st, &bs, &id);
    b.insert(id, bs);
    json_resp(200, &obj)
}

pub(super) fn batch_object(st: &State, b: &BatchState, id: &str) -> Value {
    let ended = b.results.is_some();
    let addr = st.addr.lock().unwrap().expect("bound");
    let c = b.counts;
    json!({
        "id": id,
        "type": "message_batch",
        "processing_status": if ended { "ended" } else if b.canceled { "canceling" } else { "in_progress" },
        "request_counts": if ended {
            json!({"processing": 0, "succeeded": c[0], "errored": c[1], "canceled": c[2], "expired": c[3]})
        } else {
            json!({"processing": b.requests.len(), "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0})
        },
        "created_at": rfc3339(b.created),
        "expires_at": rfc3339(b.created + 86_400.0),
        "ended_at": if ended { json!(rfc3339(now_unix())) } else { Value::Null },
        "archived_at": null,
        "cancel_initiated_at": if b.canceled { json!(rfc3339(now_unix())) } else { Value::Null },
        "results_url": if ended { json!(format!("http://{addr}/v1/messages/batches/{id}/results")) } else { Value::Null },
    })
}

pub(super) fn poll_batch(st: &State, cfg: &FakeConfig, id: &str) -> Resp {
    let ready = {
        let mut b = st.batches.lock().unwrap();
        let Some(bs) = b.get_mut(id) else {
            return reject(st, error(404, "not_found_error", "batch not found"));
        };
        bs.polls += 1;
        bs.results.is_none() && (bs.canceled || bs.polls > cfg.batch.polls_until_end)
    };
    if ready {
        let (seq, requests, canceled) = {
            let b = st.batches.lock().unwrap();
            let bs = &b[id];
            (bs.seq, bs.requests.clone(), bs.canceled)
        };
        let mut lines = Vec::with_capacity(requests.len());
        let mut counts = [0u64; 5];
        for (cid, params) in &requests {
            let h = xxh3_64_with_seed(format!("{seq}\0{cid}").as_bytes(), cfg.faults.seed);
            let u = (h >> 11) as f64 / (1u64 << 53) as f64;
            let result = if canceled {
                counts[2] += 1;
                json!({"type": "canceled"})
            } else if u < cfg.batch.errored_rate {
                counts[1] += 1;
                json!({"type": "errored", "error": {"type": "error", "error": {"type": "api_error", "message": "Internal server error (injected)"}}})
            } else if u < cfg.batch.errored_rate + cfg.batch.expired_rate {
                counts[3] += 1;
                json!({"type": "expired"})
            } else if let Err(r) = validate_params(params, true) {
                let _ = r;
                counts[1] += 1;
                json!({"type": "errored", "error": {"type": "error", "error": {"type": "invalid_request_error", "message": "invalid params"}}})
            } else {
                counts[0] += 1;
                json!({"type": "succeeded", "message": answer(st, cfg, params, true)})
            };
            lines.push((h, json!({"custom_id": cid, "result": result}).to_string()));
        }
        // Arbitrary order, as the API warns.
        lines.sort();
        let mut b = st.batches.lock().unwrap();
        let bs = b.get_mut(id).expect("batch");
        bs.results = Some(lines.into_iter().map(|x| x.1).collect());
        bs.counts = counts;
    }
    let b = st.batches.lock().unwrap();
    json_resp(200, &batch_object(st, &b[id], id))
}
