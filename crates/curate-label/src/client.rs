//! A thin client of the Anthropic API over reqwest/tokio: Messages, count_tokens and Message
//! Batches, with the retry rules of ANTHROPIC-API.md §6 and a client-side limiter fed by the
//! `anthropic-ratelimit-*` headers.
//!
//! The API key lives in an [`ApiKey`], whose `Debug` is redacted; it is only ever put in the
//! `x-api-key` header, never in a message, a log line or a file.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::util::{now_unix, parse_http_date, parse_rfc3339};

/// The API key, read from `ANTHROPIC_API_KEY`. Never printed.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    /// A key given directly (tests, embedding).
    pub fn new(key: impl Into<String>) -> ApiKey {
        ApiKey(key.into())
    }

    /// Reads `ANTHROPIC_API_KEY`; `None` when unset or empty.
    pub fn from_env() -> Option<ApiKey> {
        std::env::var("ANTHROPIC_API_KEY")
            .ok()
            .filter(|k| !k.trim().is_empty())
            .map(|k| ApiKey(k.trim().to_string()))
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// How the client talks to the API.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Base URL, e.g. `https://api.anthropic.com`.
    pub base_url: String,
    /// `anthropic-version` header.
    pub api_version: String,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First backoff delay (doubles per retry).
    pub initial_retry_delay: Duration,
    /// Backoff cap.
    pub max_retry_delay: Duration,
    /// Requests in flight at once.
    pub concurrency: usize,
}

/// A failed API call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// An error the API says (or the rules say) must not be retried: 400, 401, 402, 403, 404,
    /// 413, the spend-limit 429, or `x-should-retry: false`.
    #[error("{method} {path}: HTTP {status} {kind}: {message}{}{}", request_id.as_ref().map(|r| format!(" (request-id {r})")).unwrap_or_default(), hint(*status, kind))]
    Fatal {
        method: &'static str,
        path: String,
        status: u16,
        kind: String,
        message: String,
        request_id: Option<String>,
    },
    /// A non-idempotent call (batch creation) failed in a way that leaves open whether the
    /// server acted on it (5xx, a timeout, an unreadable 2xx): the caller must check before
    /// trying again.
    #[error("{method} {path}: outcome unknown: {last}")]
    Ambiguous {
        method: &'static str,
        path: String,
        last: String,
    },
    /// Retries exhausted on retryable failures; the last one is described.
    #[error("{method} {path}: gave up after {attempts} attempts; last failure: {last}")]
    Exhausted {
        method: &'static str,
        path: String,
        attempts: u32,
        last: String,
    },
}

impl ApiError {
    /// True for errors that stop the whole run (as opposed to a document-specific 400).
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Fatal { status, .. } => Some(*status),
            ApiError::Exhausted { .. } | ApiError::Ambiguous { .. } => None,
        }
    }
}

fn hint(status: u16, kind: &str) -> String {
    match (status, kind) {
        (401, _) => "\n  hint: the API rejected the key in ANTHROPIC_API_KEY; check that it is set to a valid key".into(),
        (403, _) => "\n  hint: the key lacks permission for this model or endpoint".into(),
        (404, _) => "\n  hint: check `model` and `base_url`".into(),
        (413, _) => "\n  hint: the request is too large; lower `max_doc_tokens` or `max_batch_requests`".into(),
        (429, _) | (400, _) if kind.contains("spend") => "\n  hint: a spend limit of the organisation or workspace was reached".into(),
        (402, _) => "\n  hint: the account has a billing problem".into(),
        _ => String::new(),
    }
}

/// Client-side limiter state from the `anthropic-ratelimit-*` headers.
#[derive(Debug, Default)]
struct Limits {
    requests: Option<(u64, f64)>,
    input_tokens: Option<(u64, f64)>,
    output_tokens: Option<(u64, f64)>,
    tokens: Option<(u64, f64)>,
}

/// The client.
pub struct Client {
    http: reqwest::Client,
    cfg: ClientConfig,
    key: ApiKey,
    sem: Arc<Semaphore>,
    limits: Mutex<Limits>,
    /// Seconds slept because of rate-limit headers (for stats).
    pub limiter_wait: Mutex<f64>,
    /// Retries done (for stats).
    pub retries: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.cfg.base_url)
            .finish_non_exhaustive()
    }
}

/// One parsed response.
#[derive(Debug)]
pub struct Response {
    /// The JSON body.
    pub body: Value,
}

impl Client {
    /// Builds a client.
    pub fn new(cfg: ClientConfig, key: ApiKey) -> Result<Client, String> {
        // rustls's `ring` provider (the build leaves out aws-lc-rs); a no-op once installed
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("curate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let sem = Arc::new(Semaphore::new(cfg.concurrency.max(1)));
        Ok(Client {
            http,
            cfg,
            key,
            sem,
            limits: Mutex::new(Limits::default()),
            limiter_wait: Mutex::new(0.0),
            retries: Default::default(),
        })
    }

    /// The configured base URL (without a trailing slash).
    pub fn base_url(&self) -> &str {
        self.cfg.base_url.trim_end_matches('/')
    }

    /// POST /v1/messages.
    pub async fn message(
        &self,
        body: &Value,
        est_input: u64,
        max_out: u64,
    ) -> Result<Value, ApiError> {
        self.call(
            reqwest::Method::POST,
            "/v1/messages",
            Some(body),
            est_input,
            max_out,
        )
        .await
    }

    /// POST /v1/messages/count_tokens → input tokens.
    pub async fn count_tokens(&self, body: &Value) -> Result<u64, ApiError> {
        let v = self
            .call(
                reqwest::Method::POST,
                "/v1/messages/count_tokens",
                Some(body),
                0,
                0,
            )
            .await?;
        v.get("input_tokens")
            .and_then(|x| x.as_u64())
            .ok_or_else(|| ApiError::Exhausted {
                method: "POST",
                path: "/v1/messages/count_tokens".into(),
                attempts: 1,
                last: "response has no input_tokens".into(),
            })
    }

    /// POST /v1/messages/batches.
    /// Retries only failures that prove the batch was not created (429, 529, connection
    /// refused); anything else that may have created it comes back as [`ApiError::Ambiguous`].
    pub async fn create_batch(&self, requests: &[Value]) -> Result<Value, ApiError> {
        let body = serde_json::json!({ "requests": requests });
        self.call_with(
            true,
            reqwest::Method::POST,
            "/v1/messages/batches",
            Some(&body),
            0,
            0,
        )
        .await
    }

    /// GET /v1/messages/batches?limit=N: the newest batches of the workspace.
    pub async fn list_batches(&self, limit: usize) -> Result<Value, ApiError> {
        self.call(
            reqwest::Method::GET,
            &format!("/v1/messages/batches?limit={limit}"),
            None,
            0,
            0,
        )
        .await
    }

    /// GET /v1/messages/batches/{id}.
    pub async fn get_batch(&self, id: &str) -> Result<Value, ApiError> {
        self.call(
            reqwest::Method::GET,
            &format!("/v1/messages/batches/{id}"),
            None,
            0,
            0,
        )
        .await
    }

    /// POST /v1/messages/batches/{id}/cancel.
    pub async fn cancel_batch(&self, id: &str) -> Result<Value, ApiError> {
        self.call(
            reqwest::Method::POST,
            &format!("/v1/messages/batches/{id}/cancel"),
            None,
            0,
            0,
        )
        .await
    }

    /// Streams a batch's JSONL results from `results_url` (absolute, or relative to the base
    /// URL), calling `f` per line. The whole download is retried on failure; `f` must therefore
    /// be idempotent per `custom_id`.
    pub async fn batch_results(
        &self,
        results_url: &str,
        mut f: impl FnMut(&str),
    ) -> Result<(), ApiError> {
        let url = if results_url.starts_with("http://") || results_url.starts_with("https://") {
            results_url.to_string()
        } else {
            format!("{}{}", self.base_url(), results_url)
        };
        let mut attempt = 0u32;
        loop {
            let _permit = self.sem.acquire().await.expect("semaphore open");
            let res = self.request(reqwest::Method::GET, &url).send().await;
            let failure = match res {
                Ok(mut r) if r.status().is_success() => {
                    self.observe_limits(r.headers());
                    let mut buf: Vec<u8> = Vec::new();
                    let mut ok = true;
                    let mut err = String::new();
                    loop {
                        match r.chunk().await {
                            Ok(Some(c)) => {
                                buf.extend_from_slice(&c);
                                while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
                                    let line: Vec<u8> = buf.drain(..=nl).collect();
                                    let s = String::from_utf8_lossy(&line);
                                    let s = s.trim();
                                    if !s.is_empty() {
                                        f(s);
                                    }
                                }
                            }
                            Ok(None) => break,
                            Err(e) => {
                                ok = false;
                                err = format!("reading the results stream: {e}");
                                break;
                            }
                        }
                    }
                    if ok {
                        let s = String::from_utf8_lossy(&buf);
                        if !s.trim().is_empty() {
                            f(s.trim());
                        }
                        return Ok(());
                    }
                    err
                }
                Ok(r) => {
                    let status = r.status().as_u16();
                    let headers = r.headers().clone();
                    let text = r.text().await.unwrap_or_default();
                    match self.classify(status, &headers, &text, "GET", "results") {
                        Err(e) => return Err(e),
                        Ok(msg) => msg,
                    }
                }
                Err(e) => format!("transport: {}", without_url(&e)),
            };
            drop(_permit);
            if attempt >= self.cfg.max_retries {
                return Err(ApiError::Exhausted {
                    method: "GET",
                    path: "results".into(),
                    attempts: attempt + 1,
                    last: failure,
                });
            }
            self.retries
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tokio::time::sleep(self.backoff(attempt, None)).await;
            attempt += 1;
        }
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, url)
            .header("x-api-key", &self.key.0)
            .header("anthropic-version", &self.cfg.api_version)
            .header("content-type", "application/json")
    }

    /// One API call with retries, the limiter and the concurrency bound.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        est_input: u64,
        max_out: u64,
    ) -> Result<Value, ApiError> {
        self.call_with(false, method, path, body, est_input, max_out)
            .await
    }

    /// [`call`](Self::call); with `not_idempotent`, failures after which the server may have
    /// acted are returned as [`ApiError::Ambiguous`] instead of retried.
    async fn call_with(
        &self,
        not_idempotent: bool,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        est_input: u64,
        max_out: u64,
    ) -> Result<Value, ApiError> {
        let m: &'static str = if method == reqwest::Method::GET {
            "GET"
        } else {
            "POST"
        };
        let url = format!("{}{}", self.base_url(), path);
        let bytes = body.map(|b| serde_json::to_vec(b).expect("JSON body"));
        let mut attempt = 0u32;
        loop {
            let permit = self.sem.acquire().await.expect("semaphore open");
            self.wait_for_limits(est_input, max_out).await;
            let mut rb = self.request(method.clone(), &url);
            if let Some(b) = &bytes {
                rb = rb.body(b.clone());
            }
            let failure = match rb.send().await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let headers = r.headers().clone();
                    self.observe_limits(&headers);
                    let text = match r.text().await {
                        Ok(t) => t,
                        Err(e) => {
                            drop(permit);
                            let last = format!("reading the body: {}", without_url(&e));
                            if not_idempotent {
                                return Err(ApiError::Ambiguous {
                                    method: m,
                                    path: path.into(),
                                    last,
                                });
                            }
                            if attempt >= self.cfg.max_retries {
                                return Err(ApiError::Exhausted {
                                    method: m,
                                    path: path.into(),
                                    attempts: attempt + 1,
                                    last,
                                });
                            }
                            self.retries
                                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            tokio::time::sleep(self.backoff(attempt, None)).await;
                            attempt += 1;
                            continue;
                        }
                    };
                    if (200..300).contains(&status) {
                        match serde_json::from_str::<Value>(&text) {
                            Ok(v) => return Ok(v),
                            Err(e) => (
                                format!("HTTP {status} with a malformed JSON body: {e}"),
                                None,
                                true,
                            ),
                        }
                    } else {
                        match self.classify(status, &headers, &text, m, path) {
                            Err(e) => return Err(e),
                            Ok(msg) => (
                                msg,
                                retry_after_of(&headers),
                                !(status == 429 || status == 529),
                            ),
                        }
                    }
                }
                Err(e) => (
                    format!("transport: {}", without_url(&e)),
                    None,
                    !e.is_connect(),
                ),
            };
            let (failure, retry_after, ambiguous) = failure;
            if not_idempotent && ambiguous {
                return Err(ApiError::Ambiguous {
                    method: m,
                    path: path.into(),
                    last: failure,
                });
            }
            drop(permit);
            if attempt >= self.cfg.max_retries {
                return Err(ApiError::Exhausted {
                    method: m,
                    path: path.into(),
                    attempts: attempt + 1,
                    last: failure,
                });
            }
            tracing::debug!(path, attempt, failure = %failure, "retrying");
            self.retries
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tokio::time::sleep(self.backoff(attempt, retry_after)).await;
            attempt += 1;
        }
    }

    /// Decides whether a non-2xx response is retryable (Ok(description)) or fatal (Err).
    fn classify(
        &self,
        status: u16,
        headers: &HeaderMap,
        text: &str,
        m: &'static str,
        path: &str,
    ) -> Result<String, ApiError> {
        let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        let kind = v
            .pointer("/error/type")
            .and_then(|x| x.as_str())
            .unwrap_or("unknown_error")
            .to_string();
        let message: String = v
            .pointer("/error/message")
            .and_then(|x| x.as_str())
            .unwrap_or("(no message)")
            .chars()
            .take(500)
            .collect();
        let request_id = headers
            .get("request-id")
            .and_then(|h| h.to_str().ok())
            .map(str::to_string)
            .or_else(|| {
                v.get("request_id")
                    .and_then(|x| x.as_str())
                    .map(str::to_string)
            });
        let spend_cap = v
            .pointer("/error/details/error_code")
            .and_then(|x| x.as_str())
            == Some("enforced_spend_limit_reached");
        let should = headers.get("x-should-retry").and_then(|h| h.to_str().ok());
        let retry = match should {
            Some("true") => true,
            Some("false") => false,
            _ => !spend_cap && (status == 408 || status == 409 || status == 429 || status >= 500),
        };
        let kind = if spend_cap {
            format!("{kind} (enforced_spend_limit_reached)")
        } else {
            kind
        };
        if retry {
            Ok(format!("HTTP {status} {kind}: {message}"))
        } else {
            Err(ApiError::Fatal {
                method: m,
                path: path.into(),
                status,
                kind,
                message,
                request_id,
            })
        }
    }

    /// The delay before retry `attempt` (0-based): the server's `retry-after-ms`/`retry-after`
    /// when in (0, 60] s, else `min(initial·2^n, cap) × (1 − 0.25·jitter)`.
    fn backoff(&self, attempt: u32, retry_after: Option<f64>) -> Duration {
        if let Some(s) = retry_after
            && s > 0.0
            && s <= 60.0
        {
            return Duration::from_secs_f64(s);
        }
        let base = self.cfg.initial_retry_delay.as_secs_f64() * 2f64.powi(attempt.min(30) as i32);
        let d = base.min(self.cfg.max_retry_delay.as_secs_f64());
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let jitter =
            curate_core::hash::unit(curate_core::hash::mix64(nanos as u64, attempt as u64));
        Duration::from_secs_f64(d * (1.0 - 0.25 * jitter))
    }

    fn observe_limits(&self, h: &HeaderMap) {
        let get = |name: &str| -> Option<(u64, f64)> {
            let rem = h
                .get(format!("anthropic-ratelimit-{name}-remaining"))?
                .to_str()
                .ok()?
                .parse()
                .ok()?;
            let reset = h
                .get(format!("anthropic-ratelimit-{name}-reset"))?
                .to_str()
                .ok()
                .and_then(parse_rfc3339)?;
            Some((rem, reset))
        };
        let mut l = self.limits.lock().expect("limits");
        if let Some(x) = get("requests") {
            l.requests = Some(x);
        }
        if let Some(x) = get("input-tokens") {
            l.input_tokens = Some(x);
        }
        if let Some(x) = get("output-tokens") {
            l.output_tokens = Some(x);
        }
        if let Some(x) = get("tokens") {
            l.tokens = Some(x);
        }
    }

    /// Sleeps until the rate-limit buckets the last responses reported can take this request,
    /// then counts it against them.
    async fn wait_for_limits(&self, est_input: u64, max_out: u64) {
        loop {
            let wait = {
                let mut guard = self.limits.lock().expect("limits");
                let l = &mut *guard;
                let now = now_unix();
                let mut wait: f64 = 0.0;
                let mut need = |slot: &mut Option<(u64, f64)>, n: u64| {
                    if let Some((rem, reset)) = *slot {
                        if reset <= now {
                            *slot = None;
                        } else if rem < n.max(1) {
                            wait = wait.max(reset - now);
                        }
                    }
                };
                need(&mut l.requests, 1);
                if est_input > 0 {
                    need(&mut l.input_tokens, est_input);
                    need(&mut l.tokens, est_input + max_out);
                }
                if max_out > 0 {
                    need(&mut l.output_tokens, max_out);
                }
                if wait <= 0.0 {
                    if let Some((rem, _)) = l.requests.as_mut() {
                        *rem = rem.saturating_sub(1);
                    }
                    if let Some((rem, _)) = l.input_tokens.as_mut() {
                        *rem = rem.saturating_sub(est_input);
                    }
                    if let Some((rem, _)) = l.output_tokens.as_mut() {
                        *rem = rem.saturating_sub(max_out);
                    }
                }
                wait.min(60.0)
            };
            if wait <= 0.0 {
                return;
            }
            *self.limiter_wait.lock().expect("wait") += wait;
            tracing::debug!(seconds = wait, "rate-limit headers say wait");
            tokio::time::sleep(Duration::from_secs_f64(wait)).await;
            // After the reset the bucket is refilled; forget the stale numbers.
            let mut guard = self.limits.lock().expect("limits");
            let l = &mut *guard;
            let now = now_unix();
            for slot in [
                &mut l.requests,
                &mut l.input_tokens,
                &mut l.output_tokens,
                &mut l.tokens,
            ] {
                if slot.is_some_and(|(_, r)| r <= now + 0.001) {
                    *slot = None;
                }
            }
        }
    }
}

/// The server's requested delay in seconds: `retry-after-ms`, else `retry-after` (seconds or an
/// HTTP date).
fn retry_after_of(h: &HeaderMap) -> Option<f64> {
    if let Some(ms) = h
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
    {
        return Some(ms / 1000.0);
    }
    let s = h.get("retry-after")?.to_str().ok()?.trim().to_string();
    if let Ok(secs) = s.parse::<f64>() {
        return Some(secs);
    }
    parse_http_date(&s).map(|t| t - now_unix())
}

/// A reqwest error rendered without anything but the error chain (reqwest never includes
/// headers, so the key cannot leak through it).
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(x) = src {
        s.push_str(": ");
        s.push_str(&x.to_string());
        src = x.source();
    }
    s
}
