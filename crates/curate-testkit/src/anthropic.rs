//! A fake Anthropic API server for tests: loopback only, started in-process.
//!
//! It speaks the real wire format of the endpoints curate uses (`POST /v1/messages`,
//! `POST /v1/messages/count_tokens`, `POST /v1/messages/batches`, `GET …/batches/{id}`,
//! `GET …/batches/{id}/results` as JSONL, `POST …/batches/{id}/cancel`) and validates requests
//! strictly: the key header, `anthropic-version`, `content-type`, no sampling parameters,
//! no unknown fields, a well-formed `output_config.format` JSON schema, cache-control blocks, no
//! assistant prefill, batch `custom_id`s.
//!
//! It labels deterministically from a rule of the text ([`fake_score`]: how many of a fixed list
//! of teaching words the document contains, capped at 5; or, with [`FakeTeacher::Rubric`], the
//! rubric teacher of [`crate::rubric`]), reports `usage` with cache fields (the
//! system prompt is cached once it reaches `cache_min_tokens`), and counts every request and
//! every billed token by category, so tests can check cost accounting exactly. Faults are
//! injected on demand, deterministically from a seed: 429 with `retry-after`, 529, 500, a
//! malformed JSON body, slow responses, partly failed and expired batch entries, an outage after
//! N messages, the spend-cap 429.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// A fault the server can inject instead of (or, for `Slow`, before) a normal answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// 429 `rate_limit_error` with `retry-after` and `retry-after-ms`.
    RateLimited,
    /// 529 `overloaded_error` (no retry-after: the client backs off).
    Overloaded,
    /// 500 `api_error`.
    ServerError,
    /// 200 with a truncated JSON body (nothing is processed or billed).
    Malformed,
    /// The normal answer, after a delay.
    Slow,
}

/// Fault injection settings.
#[derive(Debug, Clone)]
pub struct Faults {
    /// Fraction of HTTP requests that get a fault.
    pub rate: f64,
    /// The faults to pick from (by hash).
    pub kinds: Vec<Fault>,
    /// Seed of the deterministic choice.
    pub seed: u64,
    /// `retry-after-ms` sent with 429s (`retry-after` is the same, rounded up to seconds).
    pub retry_after_ms: u64,
    /// Delay of a `Slow` response.
    pub slow: Duration,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            rate: 0.0,
            kinds: Vec::new(),
            seed: 1,
            retry_after_ms: 20,
            slow: Duration::from_millis(150),
        }
    }
}

impl Faults {
    /// Every fault kind at `rate`.
    pub fn all(rate: f64) -> Faults {
        Faults {
            rate,
            kinds: vec![
                Fault::RateLimited,
                Fault::Overloaded,
                Fault::ServerError,
                Fault::Malformed,
                Fault::Slow,
            ],
            ..Faults::default()
        }
    }
}

/// How batches behave.
#[derive(Debug, Clone)]
pub struct BatchBehavior {
    /// A batch ends at the poll after this many `GET`s of it (0: the first poll sees it ended).
    pub polls_until_end: u32,
    /// Fraction of entries that come back `errored` with a retryable `api_error`.
    pub errored_rate: f64,
    /// Fraction of entries that come back `expired`.
    pub expired_rate: f64,
}

impl Default for BatchBehavior {
    fn default() -> Self {
        BatchBehavior {
            polls_until_end: 1,
            errored_rate: 0.0,
            expired_rate: 0.0,
        }
    }
}

/// Server settings (changeable while it runs through [`FakeAnthropic::configure`]).
#[derive(Debug, Clone)]
pub struct FakeConfig {
    /// The only key accepted.
    pub api_key: String,
    /// Faults.
    pub faults: Faults,
    /// Batch lifecycle.
    pub batch: BatchBehavior,
    /// Minimum cacheable prefix in tokens (Haiku 5.5: 512).
    pub cache_min_tokens: u64,
    /// After this many successful messages (online + batch entries), every message request
    /// answers 500 (an outage).
    pub fail_after_messages: Option<u64>,
    /// After this many successful messages, answer the spend-cap 429
    /// (`enforced_spend_limit_reached`, no retry-after).
    pub spend_cap_after_messages: Option<u64>,
    /// The next this-many batch creations are carried out but answered with a 500 (the client
    /// cannot tell whether the batch exists).
    pub create_then_fail: u32,
    /// Requests allowed per rate-limit window (reported in `anthropic-ratelimit-requests-*`);
    /// past it, 429 with `retry-after` until the window resets.
    pub requests_per_window: u64,
    /// The rate-limit window.
    pub window: Duration,
    /// The rule the answers' scores come from.
    pub teacher: FakeTeacher,
}

/// The rule the fake server labels with.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub enum FakeTeacher {
    /// [`fake_score`]: how many of [`TEACHING_WORDS`] occur, capped at 5 (the default).
    #[default]
    TeachingWords,
    /// A rubric over document-level properties with seeded label noise
    /// ([`crate::rubric::RubricTeacher`]).
    Rubric(crate::rubric::RubricTeacher),
}

impl FakeTeacher {
    /// The teacher's score of a document and the reason it gives.
    pub fn judge(&self, doc: &str) -> (u32, String) {
        match self {
            FakeTeacher::TeachingWords => {
                let s = fake_score(doc);
                (s, format!("found {s} teaching words"))
            }
            FakeTeacher::Rubric(t) => {
                let p = crate::rubric::DocProperties::of(doc);
                (
                    t.score(doc),
                    format!(
                        "prose {:.2}, {} words, richness {:.2}, {} cue words",
                        p.prose(),
                        p.words,
                        p.ttr(),
                        p.cues
                    ),
                )
            }
        }
    }
}

impl FakeConfig {
    /// Defaults with the given key.
    pub fn new(api_key: &str) -> FakeConfig {
        FakeConfig {
            api_key: api_key.into(),
            faults: Faults::default(),
            batch: BatchBehavior::default(),
            cache_min_tokens: 512,
            fail_after_messages: None,
            spend_cap_after_messages: None,
            create_then_fail: 0,
            requests_per_window: 1_000_000,
            window: Duration::from_secs(60),
            teacher: FakeTeacher::TeachingWords,
        }
    }
}

/// Tokens billed in one mode.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Billed {
    /// Messages billed.
    pub messages: u64,
    /// Uncached input tokens.
    pub input: u64,
    /// Output tokens.
    pub output: u64,
    /// 5-minute cache writes.
    pub cache_write_5m: u64,
    /// 1-hour cache writes.
    pub cache_write_1h: u64,
    /// Cache reads.
    pub cache_read: u64,
}

impl Billed {
    /// USD at prices `[input, output, cache_write_5m, cache_write_1h, cache_read]` per million
    /// tokens, times `factor` (0.5 for batches).
    pub fn cost(&self, p: [f64; 5], factor: f64) -> f64 {
        (self.input as f64 * p[0]
            + self.output as f64 * p[1]
            + self.cache_write_5m as f64 * p[2]
            + self.cache_write_1h as f64 * p[3]
            + self.cache_read as f64 * p[4])
            / 1e6
            * factor
    }
}

/// What the server saw and billed.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Every HTTP request.
    pub http_requests: u64,
    /// `POST /v1/messages` answered with a message.
    pub messages_ok: u64,
    /// `count_tokens` answered.
    pub count_tokens: u64,
    /// Batches created.
    pub batches_created: u64,
    /// Entries in created batches.
    pub batch_entries: u64,
    /// Batch polls.
    pub batch_polls: u64,
    /// Results downloads.
    pub results_downloads: u64,
    /// Cancels.
    pub cancels: u64,
    /// Faults injected, by kind.
    pub faults: BTreeMap<String, u64>,
    /// Requests rejected by validation, by HTTP status and error type.
    pub rejected: BTreeMap<String, u64>,
    /// Billing of online messages.
    pub online: Billed,
    /// Billing of batch entries (before the batch discount).
    pub batch: Billed,
    /// How many times each document (hash of the user content) was billed.
    pub billed_per_document: HashMap<u64, u64>,
}

impl Stats {
    /// The largest number of times any one document was billed.
    pub fn max_bills_per_document(&self) -> u64 {
        self.billed_per_document
            .values()
            .copied()
            .max()
            .unwrap_or(0)
    }
}

struct BatchState {
    seq: u64,
    requests: Vec<(String, Value)>,
    polls: u32,
    created: f64,
    canceled: bool,
    results: Option<Vec<String>>,
    counts: [u64; 5],
}

struct State {
    cfg: Mutex<FakeConfig>,
    stats: Mutex<Stats>,
    batches: Mutex<BTreeMap<String, BatchState>>,
    cache: Mutex<HashMap<u64, f64>>,
    counter: AtomicU64,
    window: Mutex<(Instant, u64)>,
    addr: Mutex<Option<SocketAddr>>,
}

/// A running fake server; stops when dropped.
pub struct FakeAnthropic {
    addr: SocketAddr,
    state: Arc<State>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for FakeAnthropic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeAnthropic")
            .field("addr", &self.addr)
            .finish()
    }
}

impl FakeAnthropic {
    /// Starts a server on 127.0.0.1 (a free port) in a thread with its own runtime.
    pub fn start(cfg: FakeConfig) -> FakeAnthropic {
        let state = Arc::new(State {
            cfg: Mutex::new(cfg),
            stats: Mutex::new(Stats::default()),
            batches: Mutex::new(BTreeMap::new()),
            cache: Mutex::new(HashMap::new()),
            counter: AtomicU64::new(0),
            window: Mutex::new((Instant::now(), 0)),
            addr: Mutex::new(None),
        });
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
                let addr = listener.local_addr().expect("addr");
                *st.addr.lock().unwrap() = Some(addr);
                addr_tx.send(addr).expect("send addr");
                loop {
                    tokio::select! {
                        _ = &mut stop_rx => break,
                        acc = listener.accept() => {
                            let Ok((stream, _)) = acc else { continue };
                            let st = st.clone();
                            tokio::spawn(async move {
                                let svc = service_fn(move |req| handle(st.clone(), req));
                                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                            });
                        }
                    }
                }
            });
        });
        let addr = addr_rx.recv().expect("fake server started");
        FakeAnthropic {
            addr,
            state,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.state.stats.lock().unwrap().clone()
    }

    /// Changes the settings while running.
    pub fn configure(&self, f: impl FnOnce(&mut FakeConfig)) {
        f(&mut self.state.cfg.lock().unwrap());
    }

    /// Ids of batches not yet ended.
    pub fn open_batches(&self) -> Vec<String> {
        self.state
            .batches
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, b)| b.results.is_none())
            .map(|(k, _)| k.clone())
            .collect()
    }
}

impl Drop for FakeAnthropic {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The words the fake teacher looks for.
pub const TEACHING_WORDS: [&str; 10] = [
    "learn", "student", "science", "history", "example", "explain", "research", "theory", "lesson",
    "study",
];

/// The fake teacher's score of a document: how many of [`TEACHING_WORDS`] occur in it
/// (case-insensitive), capped at 5.
pub fn fake_score(text: &str) -> u32 {
    let lower = text.to_lowercase();
    (TEACHING_WORDS.iter().filter(|w| lower.contains(*w)).count() as u32).min(5)
}

/// Fake token count of a text: one token per 3 bytes, rounded up, plus 4 for framing.
pub fn fake_tokens(text: &str) -> u64 {
    (text.len() as u64).div_ceil(3) + 4
}

fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn rfc3339(t: f64) -> String {
    // Rounded *up* to the millisecond: a reset time is a promise that the bucket is refilled by
    // then, so a client that waits exactly until it must not arrive early (rounding down made
    // the pacing test flaky under load).
    let ms = (t * 1000.0).ceil() as i64;
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

type Resp = Response<Full<Bytes>>;

fn json_resp(status: u16, v: &Value) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(v.to_string())));
    *r.status_mut() = StatusCode::from_u16(status).expect("status");
    r.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    r
}

fn error(status: u16, kind: &str, message: &str) -> Resp {
    json_resp(
        status,
        &json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_fake"}),
    )
}

async fn handle(st: Arc<State>, req: Request<Incoming>) -> Result<Resp, Infallible> {
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

fn reject(st: &State, r: Resp) -> Resp {
    let key = format!(
        "{} {}",
        r.status().as_u16(),
        String::from_utf8_lossy(&error_type(&r))
    );
    *st.stats.lock().unwrap().rejected.entry(key).or_default() += 1;
    r
}

fn error_type(r: &Resp) -> Vec<u8> {
    // The body of our own error responses is small; re-derive the type from the status.
    match r.status().as_u16() {
        401 => b"authentication_error".to_vec(),
        404 => b"not_found_error".to_vec(),
        _ => b"invalid_request_error".to_vec(),
    }
}

#[allow(clippy::too_many_arguments)]
async fn route(
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

fn outage(st: &State, cfg: &FakeConfig) -> Option<Resp> {
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

const ALLOWED: [&str; 12] = [
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

fn bad(msg: String) -> Resp {
    error(400, "invalid_request_error", &msg)
}

/// Validates Messages params (`with_max_tokens`: a messages request rather than count_tokens).
#[allow(clippy::result_large_err)] // the error is the HTTP response to send
fn validate_params(v: &Value, with_max_tokens: bool) -> Result<(), Resp> {
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

fn text_of(content: &Value) -> String {
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
fn prompt_parts(v: &Value) -> (u64, u64) {
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
fn answer(st: &State, cfg: &FakeConfig, v: &Value, batch: bool) -> Value {
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

fn valid_custom_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn create_batch(st: &State, v: &Value) -> Resp {
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

fn batch_object(st: &State, b: &BatchState, id: &str) -> Value {
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

fn poll_batch(st: &State, cfg: &FakeConfig, id: &str) -> Resp {
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
