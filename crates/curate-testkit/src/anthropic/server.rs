//! The HTTP side: the connection handler, routing by method and path, the headers every
//! response carries, error bodies in the API's shape, and the injected outages.

use super::*;

pub(super) type Resp = Response<Full<Bytes>>;

pub(super) fn json_resp(status: u16, v: &Value) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(v.to_string())));
    *r.status_mut() = StatusCode::from_u16(status).expect("status");
    r.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    r
}

pub(super) fn error(status: u16, kind: &str, message: &str) -> Resp {
    json_resp(
        status,
        &json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_fake"}),
    )
}

pub(super) async fn handle(st: Arc<State>, req: Request<Incoming>) -> Result<Resp, Infallible> {
    let n = st.counter.fetch_add(1, Ordering::SeqCst);
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let headers = req.headers().clone();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let cfg = st.cfg.lock().unwrap().clone();
    st.stats.lock().unwrap().http_requests += 1;
    let mut resp = route(&st, &cfg, n, &method, &path, &headers, &body).await;
    // Headers every response carries.
    let (limit, remaining, reset) = {
        let w = st.window.lock().unwrap();
        let reset = now_unix() + cfg.window.saturating_sub(w.0.elapsed()).as_secs_f64();
        (
            cfg.requests_per_window,
            cfg.requests_per_window.saturating_sub(w.1),
            reset,
        )
    };
    let h = resp.headers_mut();
    h.insert("request-id", format!("req_fake_{n:08}").parse().unwrap());
    h.insert(
        "anthropic-ratelimit-requests-limit",
        limit.to_string().parse().unwrap(),
    );
    h.insert(
        "anthropic-ratelimit-requests-remaining",
        remaining.to_string().parse().unwrap(),
    );
    h.insert(
        "anthropic-ratelimit-requests-reset",
        rfc3339(reset).parse().unwrap(),
    );
    for k in ["input-tokens", "output-tokens", "tokens"] {
        h.insert(
            format!("anthropic-ratelimit-{k}-limit")
                .as_str()
                .parse::<hyper::header::HeaderName>()
                .unwrap(),
            "100000000".parse().unwrap(),
        );
        h.insert(
            format!("anthropic-ratelimit-{k}-remaining")
                .as_str()
                .parse::<hyper::header::HeaderName>()
                .unwrap(),
            "100000000".parse().unwrap(),
        );
        h.insert(
            format!("anthropic-ratelimit-{k}-reset")
                .as_str()
                .parse::<hyper::header::HeaderName>()
                .unwrap(),
            rfc3339(reset).parse().unwrap(),
        );
    }
    Ok(resp)
}

pub(super) fn reject(st: &State, r: Resp) -> Resp {
    let key = format!(
        "{} {}",
        r.status().as_u16(),
        String::from_utf8_lossy(&error_type(&r))
    );
    *st.stats.lock().unwrap().rejected.entry(key).or_default() += 1;
    r
}

pub(super) fn error_type(r: &Resp) -> Vec<u8> {
    // The body of our own error responses is small; re-derive the type from the status.
    match r.status().as_u16() {
        401 => b"authentication_error".to_vec(),
        404 => b"not_found_error".to_vec(),
        _ => b"invalid_request_error".to_vec(),
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn route(
    st: &State,
    cfg: &FakeConfig,
    n: u64,
    method: &hyper::Method,
    path: &str,
    headers: &hyper::HeaderMap,
    body: &Bytes,
) -> Resp {
    // Authentication and version first, as the real API does.
    let key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| {
            headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::to_string)
        });
    if key.as_deref() != Some(cfg.api_key.as_str()) {
        return reject(st, error(401, "authentication_error", "invalid x-api-key"));
    }
    match headers
        .get("anthropic-version")
        .and_then(|v| v.to_str().ok())
    {
        Some("2026-10-21" | "2023-06-01") => {}
        Some(v) => {
            return reject(
                st,
                error(
                    400,
                    "invalid_request_error",
                    &format!("anthropic-version: unknown version {v:?}"),
                ),
            );
        }
        None => {
            return reject(
                st,
                error(
                    400,
                    "invalid_request_error",
                    "anthropic-version: header is required",
                ),
            );
        }
    }
    // Rate-limit window.
    {
        let mut w = st.window.lock().unwrap();
        if w.0.elapsed() >= cfg.window {
            *w = (Instant::now(), 0);
        }
        if w.1 >= cfg.requests_per_window {
            let left = cfg.window.saturating_sub(w.0.elapsed());
            *st.stats
                .lock()
                .unwrap()
                .faults
                .entry("window_429".into())
                .or_default() += 1;
            let mut r = error(
                429,
                "rate_limit_error",
                "Number of requests has exceeded your rate limit",
            );
            r.headers_mut().insert(
                "retry-after",
                left.as_secs().max(1).to_string().parse().unwrap(),
            );
            r.headers_mut().insert(
                "retry-after-ms",
                left.as_millis().max(1).to_string().parse().unwrap(),
            );
            return r;
        }
        w.1 += 1;
    }
    // Injected faults.
    let h = xxh3_64_with_seed(&n.to_le_bytes(), cfg.faults.seed);
    if !cfg.faults.kinds.is_empty() && ((h >> 11) as f64 / (1u64 << 53) as f64) < cfg.faults.rate {
        let f = cfg.faults.kinds[(h % cfg.faults.kinds.len() as u64) as usize];
        *st.stats
            .lock()
            .unwrap()
            .faults
            .entry(format!("{f:?}"))
            .or_default() += 1;
        match f {
            Fault::RateLimited => {
                let mut r = error(429, "rate_limit_error", "rate limited (injected)");
                let ms = cfg.faults.retry_after_ms;
                r.headers_mut().insert(
                    "retry-after",
                    ms.div_ceil(1000).max(1).to_string().parse().unwrap(),
                );
                r.headers_mut()
                    .insert("retry-after-ms", ms.to_string().parse().unwrap());
                return r;
            }
            Fault::Overloaded => return error(529, "overloaded_error", "Overloaded (injected)"),
            Fault::ServerError => {
                return error(500, "api_error", "Internal server error (injected)");
            }
            Fault::Malformed => {
                let mut r = Response::new(Full::new(Bytes::from_static(
                    b"{\"id\":\"msg_broken\",\"type\":\"mess",
                )));
                r.headers_mut()
                    .insert("content-type", "application/json".parse().unwrap());
                return r;
            }
            Fault::Slow => tokio::time::sleep(cfg.faults.slow).await,
        }
    }
    #[allow(clippy::result_large_err)]
    let parse_body = || -> Result<Value, Resp> {
        if headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_none_or(|c| !c.starts_with("application/json"))
        {
            return Err(error(
                400,
                "invalid_request_error",
                "content-type must be application/json",
            ));
        }
        serde_json::from_slice::<Value>(body).map_err(|e| {
            error(
                400,
                "invalid_request_error",
                &format!("malformed JSON body: {e}"),
            )
        })
    };
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method.as_str(), segs.as_slice()) {
        ("POST", ["v1", "messages"]) => {
            let v = match parse_body() {
                Ok(v) => v,
                Err(r) => return reject(st, r),
            };
            if let Err(r) = validate_params(&v, true) {
                return reject(st, r);
            }
            if let Some(r) = outage(st, cfg) {
                return r;
            }
            let msg = answer(st, cfg, &v, false);
            st.stats.lock().unwrap().messages_ok += 1;
            json_resp(200, &msg)
        }
        ("POST", ["v1", "messages", "count_tokens"]) => {
            let v = match parse_body() {
                Ok(v) => v,
                Err(r) => return reject(st, r),
            };
            if let Err(r) = validate_params(&v, false) {
                return reject(st, r);
            }
            st.stats.lock().unwrap().count_tokens += 1;
            let (sys, user) = prompt_parts(&v);
            json_resp(200, &json!({"input_tokens": sys + user}))
        }
        ("POST", ["v1", "messages", "batches"]) => {
            let v = match parse_body() {
                Ok(v) => v,
                Err(r) => return reject(st, r),
            };
            let r = create_batch(st, &v);
            let mut c = st.cfg.lock().unwrap();
            if r.status() == StatusCode::OK && c.create_then_fail > 0 {
                c.create_then_fail -= 1;
                *st.stats
                    .lock()
                    .unwrap()
                    .faults
                    .entry("create_then_fail".into())
                    .or_default() += 1;
                return error(
                    500,
                    "api_error",
                    "Internal server error (after creating the batch)",
                );
            }
            r
        }
        ("GET", ["v1", "messages", "batches"]) => {
            let b = st.batches.lock().unwrap();
            let mut data: Vec<(u64, Value)> = b
                .iter()
                .map(|(id, bs)| (bs.seq, batch_object(st, bs, id)))
                .collect();
            data.sort_by_key(|x| std::cmp::Reverse(x.0));
            let data: Vec<Value> = data.into_iter().map(|x| x.1).collect();
            json_resp(
                200,
                &json!({"data": data, "has_more": false,
                "first_id": data.first().map(|d| d["id"].clone()), "last_id": data.last().map(|d| d["id"].clone())}),
            )
        }
        ("GET", ["v1", "messages", "batches", id]) => {
            st.stats.lock().unwrap().batch_polls += 1;
            poll_batch(st, cfg, id)
        }
        ("GET", ["v1", "messages", "batches", id, "results"]) => {
            let b = st.batches.lock().unwrap();
            match b.get(*id) {
                None => reject(st, error(404, "not_found_error", "batch not found")),
                Some(bs) => match &bs.results {
                    None => reject(
                        st,
                        error(400, "invalid_request_error", "batch has not ended"),
                    ),
                    Some(lines) => {
                        st.stats.lock().unwrap().results_downloads += 1;
                        let mut body = lines.join("\n");
                        body.push('\n');
                        let mut r = Response::new(Full::new(Bytes::from(body)));
                        r.headers_mut()
                            .insert("content-type", "application/x-jsonl".parse().unwrap());
                        r
                    }
                },
            }
        }
        ("POST", ["v1", "messages", "batches", id, "cancel"]) => {
            st.stats.lock().unwrap().cancels += 1;
            {
                let mut b = st.batches.lock().unwrap();
                match b.get_mut(*id) {
                    None => return reject(st, error(404, "not_found_error", "batch not found")),
                    Some(bs) => bs.canceled = true,
                }
            }
            let b = st.batches.lock().unwrap();
            json_resp(200, &batch_object(st, &b[*id], id))
        }
        _ => reject(
            st,
            error(404, "not_found_error", &format!("no route {method} {path}")),
        ),
    }
}

pub(super) fn outage(st: &State, cfg: &FakeConfig) -> Option<Resp> {
    let ok = {
        let s = st.stats.lock().unwrap();
        s.messages_ok + s.batch.messages
    };
    if cfg.spend_cap_after_messages.is_some_and(|m| ok >= m) {
        return Some(json_resp(
            429,
            &json!({"type": "error", "error": {"type": "rate_limit_error", "message": "You have reached your specified API usage limits.",
                    "details": {"error_code": "enforced_spend_limit_reached"}}, "request_id": "req_fake"}),
        ));
    }
    if cfg.fail_after_messages.is_some_and(|m| ok >= m) {
        *st.stats
            .lock()
            .unwrap()
            .faults
            .entry("outage".into())
            .or_default() += 1;
        return Some(error(500, "api_error", "Internal server error (outage)"));
    }
    None
}
