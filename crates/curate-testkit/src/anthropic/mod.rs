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

mod batches;
mod messages;
mod server;
mod validate;
use batches::*;
use messages::*;
use server::*;
use validate::*;

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
