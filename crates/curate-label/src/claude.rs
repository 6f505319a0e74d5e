//! The `claude` annotator: labels documents through the Messages API (`mode = "online"`) or
//! the Message Batches API (`mode = "batch"`), within a hard budget, recording every label in
//! the [store](crate::store) the moment it is bought.

use std::collections::{BTreeMap, HashSet};
use std::fs::OpenOptions;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::LabelError;
use crate::client::{ApiError, ApiKey, Client, ClientConfig};
use crate::cost::{Budget, Prices, Usage, cost, worst_case, worst_case_counted};
use crate::rubric::{PRESENTATION_VERSION, Rubric};
use crate::store::{Pending, Record, Store, status};
use crate::util::truncate_utf8;

/// Resolved settings of the claude annotator.
#[derive(Debug, Clone)]
pub struct ClaudeSettings {
    /// Model id.
    pub model: String,
    /// Batches (true) or online requests.
    pub batch: bool,
    /// Prompt-cache TTL of the rubric: 1 hour (true) or 5 minutes.
    pub cache_ttl_1h: bool,
    /// `max_tokens` of each request.
    pub max_tokens: u32,
    /// `output_config.effort`, if any.
    pub effort: Option<String>,
    /// Documents are truncated to this many bytes (`max_doc_tokens × bytes_per_token`).
    pub max_doc_bytes: usize,
    /// Price table.
    pub prices: Prices,
    /// HTTP settings.
    pub client: ClientConfig,
    /// First poll interval of a batch.
    pub poll_interval: Duration,
    /// Poll interval cap.
    pub poll_max_interval: Duration,
    /// Give up waiting for batches after this long (they stay pending; a re-run resumes).
    pub max_batch_wait: Duration,
    /// Requests per batch.
    pub max_batch_requests: usize,
    /// How many times failed/expired batch entries are re-submitted.
    pub max_batch_rounds: u32,
}

impl ClaudeSettings {
    /// The hash of everything that decides what the teacher sees besides the document: rubric,
    /// schema, effort, truncation and presentation. Labels are keyed by it.
    pub fn prompt_hash(&self, rubric: &Rubric) -> String {
        let mut s = String::new();
        s.push_str(PRESENTATION_VERSION);
        s.push('\0');
        s.push_str(&rubric.prompt);
        s.push('\0');
        s.push_str(&serde_json::to_string(&rubric.schema).expect("schema JSON"));
        s.push('\0');
        s.push_str(self.effort.as_deref().unwrap_or("-"));
        s.push('\0');
        s.push_str(&self.max_doc_bytes.to_string());
        curate_core::hash::hex128(curate_core::hash::h128(s.as_bytes(), 0))[..24].to_string()
    }

    /// The document as sent: truncated, wrapped in `<document>` tags.
    pub fn user_content(&self, text: &str) -> String {
        format!(
            "<document>\n{}\n</document>",
            truncate_utf8(text, self.max_doc_bytes)
        )
    }

    /// The Messages params for one document (no sampling parameters, ever).
    pub fn params(&self, rubric: &Rubric, text: &str) -> Value {
        let mut cache = json!({"type": "ephemeral"});
        if self.cache_ttl_1h {
            cache["ttl"] = json!("1h");
        }
        let mut output_config = json!({"format": {"type": "json_schema", "schema": rubric.schema}});
        if let Some(e) = &self.effort {
            output_config["effort"] = json!(e);
        }
        json!({
            "model": self.model,
            "max_tokens": self.max_tokens,
            "system": [{"type": "text", "text": rubric.prompt, "cache_control": cache}],
            "messages": [{"role": "user", "content": self.user_content(text)}],
            "output_config": output_config,
        })
    }

    /// The `count_tokens` body of labeling `text`: its Messages params without `max_tokens`.
    pub fn count_body(&self, rubric: &Rubric, text: &str) -> Value {
        let mut body = self.params(rubric, text);
        body.as_object_mut().expect("object").remove("max_tokens");
        body
    }

    /// Worst-case (input tokens, USD) of a request whose input `count_tokens` counted at
    /// `counted` tokens ([`worst_case_counted`]).
    pub fn worst_case_counted(&self, counted: u64) -> (u64, f64) {
        worst_case_counted(
            &self.prices,
            counted,
            self.max_tokens,
            self.batch,
            self.cache_ttl_1h,
        )
    }

    /// Worst-case (input tokens, USD) of labeling `text`, from its bytes alone.
    pub fn worst_case(&self, rubric: &Rubric, text: &str) -> (u64, f64) {
        let doc = truncate_utf8(text, self.max_doc_bytes).len() + "<document>\n\n</document>".len();
        worst_case(
            &self.prices,
            rubric.prompt.len(),
            doc,
            self.max_tokens,
            self.batch,
            self.cache_ttl_1h,
        )
    }

    /// Turns a Message into a stored record.
    pub fn record(
        &self,
        rubric: &Rubric,
        prompt_hash: &str,
        text_hash: &str,
        msg: &Value,
    ) -> Record {
        let usage = Usage::from_json(msg.get("usage").unwrap_or(&Value::Null), self.cache_ttl_1h);
        let usd = cost(&self.prices, &usage, self.batch);
        let stop = msg
            .get("stop_reason")
            .and_then(|s| s.as_str())
            .unwrap_or("");
        let (st, score, reason) = match stop {
            "refusal" => (status::REFUSAL, None, "the model refused".to_string()),
            "max_tokens" => (
                status::MAX_TOKENS,
                None,
                format!("answer cut at max_tokens = {}", self.max_tokens),
            ),
            _ => {
                // Select the answer block by type: thinking blocks may come first.
                let text = msg
                    .get("content")
                    .and_then(|c| c.as_array())
                    .and_then(|a| {
                        a.iter()
                            .find(|b| b.get("type").and_then(|t| t.as_str()) == Some("text"))
                    })
                    .and_then(|b| b.get("text"))
                    .and_then(|t| t.as_str());
                match text.map(|t| rubric.parse_answer(t)) {
                    Some(Ok((s, r))) => (status::OK, Some(s), r),
                    Some(Err(e)) => (status::INVALID_OUTPUT, None, e),
                    None => (
                        status::INVALID_OUTPUT,
                        None,
                        format!("no text block (stop_reason {stop:?})"),
                    ),
                }
            }
        };
        Record {
            model: self.model.clone(),
            prompt_hash: prompt_hash.into(),
            text_hash: text_hash.into(),
            status: st.into(),
            score,
            reason,
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            cache_creation_input_tokens: usage.cache_creation_input_tokens,
            cache_read_input_tokens: usage.cache_read_input_tokens,
            cost_usd: usd,
            mode: if self.batch { "batch" } else { "online" }.into(),
        }
    }
}

/// What is spent, persisted in the step's work dir so a resumed run counts what the
/// interrupted one spent against the same budget.
#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
}

impl Ledger {
    /// The ledger file `dir/ledger.jsonl`.
    pub fn new(dir: &Path) -> Ledger {
        Ledger {
            path: dir.join("ledger.jsonl"),
        }
    }

    /// The path, which also identifies the owner of pending batches.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sum of (input tokens, USD) spent so far.
    pub fn load(&self) -> Result<(u64, f64), LabelError> {
        let f = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, 0.0)),
            Err(e) => return Err(LabelError::io(&self.path, e)),
        };
        let (mut t, mut u) = (0u64, 0f64);
        for line in std::io::BufReader::new(f).lines() {
            let line = line.map_err(|e| LabelError::io(&self.path, e))?;
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                t += v["input"].as_u64().unwrap_or(0);
                u += v["usd"].as_f64().unwrap_or(0.0);
            }
        }
        Ok((t, u))
    }

    /// Appends a spend (fsynced).
    pub fn add(&self, input: u64, usd: f64) -> Result<(), LabelError> {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| LabelError::io(&self.path, e))?;
        let line = format!("{}\n", json!({"input": input, "usd": usd}));
        f.write_all(line.as_bytes())
            .map_err(|e| LabelError::io(&self.path, e))?;
        f.sync_data().map_err(|e| LabelError::io(&self.path, e))
    }
}

/// What one labeling run did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Outcome {
    /// Labels bought now (ok or not).
    pub bought: usize,
    /// Documents left unlabeled because the budget would have been exceeded.
    pub budget_skipped: usize,
    /// Documents that failed for good (batch `invalid_request_error`, rounds exhausted).
    pub failed: usize,
    /// Messages requests sent (online) or batches created.
    pub requests: usize,
    /// Batches created.
    pub batches: usize,
    /// Batches resumed from an interrupted run.
    pub batches_resumed: usize,
    /// Batches whose create call failed ambiguously and that were found and adopted.
    pub batches_adopted: usize,
    /// Retries of HTTP calls.
    pub retries: u64,
    /// Seconds the rate-limit limiter waited.
    pub limiter_wait_s: f64,
    /// USD spent now.
    pub spent_usd: f64,
    /// Total input tokens spent now.
    pub spent_input_tokens: u64,
    /// Usage summed over what was bought now.
    pub usage: Usage,
    /// Why documents failed, by reason (counts).
    pub failures: BTreeMap<String, usize>,
}

/// Labels `docs` (text hash, text) that the store lacks. Returns what happened; labels are in the
/// store when it returns. A fatal API error stops the run (labels bought so far are kept).
#[allow(clippy::too_many_arguments)]
pub fn run(
    s: &ClaudeSettings,
    rubric: &Rubric,
    key: ApiKey,
    store: Store,
    docs: Vec<(String, String)>,
    budget: Budget,
    ledger: Ledger,
) -> (Store, Result<Outcome, LabelError>) {
    let prompt_hash = s.prompt_hash(rubric);
    let client = match Client::new(s.client.clone(), key) {
        Ok(c) => Arc::new(c),
        Err(m) => return (store, Err(LabelError::Other(m))),
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return (
                store,
                Err(LabelError::Other(format!(
                    "cannot start the async runtime: {e}"
                ))),
            );
        }
    };
    let sh = Arc::new(Mutex::new(Shared {
        store,
        budget,
        ledger,
        out: Outcome::default(),
        batches: HashSet::new(),
    }));
    let res = rt.block_on(async {
        if s.batch {
            run_batches(s, rubric, &prompt_hash, &client, &sh, docs).await
        } else {
            run_online(s, rubric, &prompt_hash, &client, &sh, docs).await
        }
    });
    drop(rt);
    let sh = Arc::try_unwrap(sh)
        .map_err(|_| ())
        .expect("no tasks left")
        .into_inner()
        .expect("lock");
    let mut out = sh.out;
    out.retries = client.retries.load(std::sync::atomic::Ordering::Relaxed);
    out.limiter_wait_s = *client.limiter_wait.lock().expect("wait");
    (sh.store, res.map(|()| out))
}

struct Shared {
    store: Store,
    budget: Budget,
    ledger: Ledger,
    out: Outcome,
    /// Batches this run created, adopted or resumed (never adopted again).
    batches: HashSet<String>,
}

impl Shared {
    fn bought(&mut self, rec: Record, reserved: (u64, f64)) -> Result<(), LabelError> {
        let input =
            rec.input_tokens + rec.cache_creation_input_tokens + rec.cache_read_input_tokens;
        self.budget
            .settle(reserved.0, reserved.1, input, rec.cost_usd);
        self.ledger.add(input, rec.cost_usd)?;
        self.out.bought += 1;
        self.out.spent_usd += rec.cost_usd;
        self.out.spent_input_tokens += input;
        self.out.usage.add(&Usage {
            input_tokens: rec.input_tokens,
            output_tokens: rec.output_tokens,
            cache_creation_input_tokens: rec.cache_creation_input_tokens,
            cache_read_input_tokens: rec.cache_read_input_tokens,
            ..Default::default()
        });
        self.store.put(rec)
    }

    fn fail(&mut self, why: &str) {
        self.out.failed += 1;
        *self.out.failures.entry(why.to_string()).or_default() += 1;
    }
}

async fn run_online(
    s: &ClaudeSettings,
    rubric: &Rubric,
    prompt_hash: &str,
    client: &Arc<Client>,
    sh: &Arc<Mutex<Shared>>,
    docs: Vec<(String, String)>,
) -> Result<(), LabelError> {
    let mut set = tokio::task::JoinSet::new();
    let mut queue = docs.into_iter().peekable();
    let mut fatal: Option<LabelError> = None;
    let limit = s.client.concurrency.max(1) * 2;
    let shared_s = Arc::new(s.clone());
    let shared_rubric = Arc::new(rubric.clone());
    let shared_hash: Arc<str> = Arc::from(prompt_hash);
    // count_tokens' answer for the document at the head of the queue
    let mut counted = None;
    loop {
        while fatal.is_none() && set.len() < limit {
            let Some((_, text)) = queue.peek() else { break };
            let reserved = match reserve(s, rubric, client, sh, text, &mut counted).await {
                Ok(r) => r,
                Err(e) => {
                    fatal = Some(e);
                    break;
                }
            };
            let Some((wi, wu)) = reserved else {
                if set.is_empty() {
                    // Nothing in flight can free budget: the rest stays unlabeled.
                    let n = queue.len();
                    sh.lock().expect("lock").out.budget_skipped += n;
                    tracing::warn!(
                        skipped = n,
                        "label budget reached; the remaining documents stay unlabeled"
                    );
                    queue = Vec::new().into_iter().peekable();
                }
                break; // wait for a request in flight to settle, then try again
            };
            counted = None;
            let (th, text) = queue.next().expect("peeked");
            let body = s.params(rubric, &text);
            let c = client.clone();
            let (s2, r2, h2, sh2) = (
                shared_s.clone(),
                shared_rubric.clone(),
                shared_hash.clone(),
                sh.clone(),
            );
            sh.lock().expect("lock").out.requests += 1;
            // The label is journaled by the task itself, the moment the answer arrives, so a
            // crash can lose at most the answers on the wire.
            set.spawn(async move {
                let r = c.message(&body, wi, 0).await;
                let mut g = sh2.lock().expect("lock");
                match r {
                    Ok(msg) => {
                        let rec = s2.record(&r2, &h2, &th, &msg);
                        g.bought(rec, (wi, wu)).err()
                    }
                    Err(e) => {
                        // Nothing known to be billed: release the reservation.
                        g.budget.settle(wi, wu, 0, 0.0);
                        Some(LabelError::Api(e))
                    }
                }
            });
        }
        let Some(joined) = set.join_next().await else {
            break;
        };
        let failed = joined.map_err(|e| LabelError::Other(format!("labeling task failed: {e}")))?;
        // On a failure, stop sending; requests in flight finish (and are kept).
        if let Some(e) = failed
            && fatal.is_none()
        {
            fatal = Some(e);
        }
    }
    match fatal {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Reserves room in the budget for labeling `text`: its byte bound ([`ClaudeSettings::worst_case`])
/// when that fits; otherwise (near the cap) the bound from the API's own count of the request
/// (`count_tokens`, free; kept in `counted` while the same document waits for room). `None`:
/// neither fits now.
async fn reserve(
    s: &ClaudeSettings,
    rubric: &Rubric,
    client: &Client,
    sh: &Arc<Mutex<Shared>>,
    text: &str,
    counted: &mut Option<u64>,
) -> Result<Option<(u64, f64)>, LabelError> {
    let (wi, wu) = s.worst_case(rubric, text);
    if sh.lock().expect("lock").budget.try_reserve(wi, wu) {
        return Ok(Some((wi, wu)));
    }
    let tokens = match *counted {
        Some(t) => t,
        None => {
            let t = client
                .count_tokens(&s.count_body(rubric, text))
                .await
                .map_err(LabelError::Api)?;
            *counted = Some(t);
            t
        }
    };
    let (ci, cu) = s.worst_case_counted(tokens);
    Ok(sh
        .lock()
        .expect("lock")
        .budget
        .try_reserve(ci, cu)
        .then_some((ci, cu)))
}

fn custom_id(text_hash: &str) -> String {
    format!("t{text_hash}")
}

async fn run_batches(
    s: &ClaudeSettings,
    rubric: &Rubric,
    prompt_hash: &str,
    client: &Arc<Client>,
    sh: &Arc<Mutex<Shared>>,
    docs: Vec<(String, String)>,
) -> Result<(), LabelError> {
    let owner = sh.lock().expect("lock").ledger.path().display().to_string();
    let texts: BTreeMap<String, String> = docs.into_iter().collect();
    // 1. Batches an interrupted run submitted: wait for them and harvest, never re-buy.
    let pending = sh.lock().expect("lock").store.pending()?;
    for p in pending {
        {
            let mut g = sh.lock().expect("lock");
            if p.owner == owner {
                g.budget.force_reserve(p.reserved_input, p.reserved_usd);
            }
            g.out.batches_resumed += 1;
            g.batches.insert(p.batch_id.clone());
        }
        tracing::info!(batch = %p.batch_id, "resuming a batch submitted by an interrupted run");
        let reserved = if p.owner == owner {
            (p.reserved_input, p.reserved_usd)
        } else {
            (0, 0.0)
        };
        let info = wait_for(s, client, &p.batch_id).await?;
        harvest(s, rubric, prompt_hash, client, sh, &p, &info, reserved).await?;
    }
    // 2. What is still missing.
    let mut todo: Vec<String> = {
        let g = sh.lock().expect("lock");
        texts
            .keys()
            .filter(|th| g.store.get(th).is_none())
            .cloned()
            .collect()
    };
    let mut round = 0u32;
    while !todo.is_empty() {
        if round > s.max_batch_rounds {
            let mut g = sh.lock().expect("lock");
            for _ in &todo {
                g.fail("batch re-submission rounds exhausted");
            }
            break;
        }
        // Build batches that fit the budget (worst case reserved up front).
        let mut batches: Vec<(Vec<Value>, Vec<String>, u64, f64)> = Vec::new();
        let mut cur = (Vec::new(), Vec::new(), 0u64, 0f64, 0usize);
        let mut stopped_at = None;
        for (i, th) in todo.iter().enumerate() {
            let text = &texts[th];
            let reserved = match reserve(s, rubric, client, sh, text, &mut None).await {
                Ok(r) => r,
                Err(e) => {
                    // nothing was sent: release what the batches built so far reserved
                    let mut g = sh.lock().expect("lock");
                    for (_, _, ri, ru) in &batches {
                        g.budget.settle(*ri, *ru, 0, 0.0);
                    }
                    g.budget.settle(cur.2, cur.3, 0, 0.0);
                    return Err(e);
                }
            };
            let Some((wi, wu)) = reserved else {
                stopped_at = Some(i);
                break;
            };
            let req = json!({"custom_id": custom_id(th), "params": s.params(rubric, text)});
            let bytes = req.to_string().len();
            if !cur.0.is_empty()
                && (cur.0.len() >= s.max_batch_requests || cur.4 + bytes > 200 << 20)
            {
                let full = std::mem::take(&mut cur);
                batches.push((full.0, full.1, full.2, full.3));
            }
            cur.0.push(req);
            cur.1.push(th.clone());
            cur.2 += wi;
            cur.3 += wu;
            cur.4 += bytes;
        }
        if !cur.0.is_empty() {
            batches.push((cur.0, cur.1, cur.2, cur.3));
        }
        if batches.is_empty() {
            // Nothing fits even with no batch in flight: the rest stays unlabeled.
            let n = todo.len();
            sh.lock().expect("lock").out.budget_skipped += n;
            tracing::warn!(
                skipped = n,
                "label budget reached; the remaining documents stay unlabeled"
            );
            break;
        }
        if stopped_at.is_none() {
            round += 1;
        }
        let unsent: Vec<String> = stopped_at.map(|i| todo[i..].to_vec()).unwrap_or_default();
        let mut active = Vec::new();
        for (reqs, ths, ri, ru) in batches {
            let created = match create_once(s, client, sh, &reqs).await {
                Ok(v) => v,
                Err(e) => {
                    // Not created: release this reservation.
                    let mut g = sh.lock().expect("lock");
                    g.budget.settle(ri, ru, 0, 0.0);
                    return Err(e);
                }
            };
            let id = created
                .get("id")
                .and_then(|x| x.as_str())
                .unwrap_or("")
                .to_string();
            if id.is_empty() {
                return Err(LabelError::Other("batch create returned no id".into()));
            }
            let p = Pending {
                batch_id: id.clone(),
                model: s.model.clone(),
                prompt_hash: prompt_hash.to_string(),
                custom_ids: ths.iter().map(|t| custom_id(t)).collect(),
                reserved_input: ri,
                reserved_usd: ru,
                owner: owner.clone(),
            };
            {
                let mut g = sh.lock().expect("lock");
                g.store.add_pending(&p)?;
                g.batches.insert(id.clone());
                g.out.batches += 1;
                g.out.requests += reqs.len();
            }
            tracing::info!(batch = %id, requests = reqs.len(), "batch submitted");
            active.push(p);
        }
        let mut next: Vec<String> = unsent;
        for p in &active {
            let info = wait_for(s, client, &p.batch_id).await?;
            next.extend(
                harvest(
                    s,
                    rubric,
                    prompt_hash,
                    client,
                    sh,
                    p,
                    &info,
                    (p.reserved_input, p.reserved_usd),
                )
                .await?,
            );
        }
        let g = sh.lock().expect("lock");
        let mut seen = HashSet::new();
        todo = next
            .into_iter()
            .filter(|th| g.store.get(th).is_none() && seen.insert(th.clone()))
            .collect();
    }
    Ok(())
}

/// Creates a batch exactly once. A create whose outcome is unknown (a 5xx, a timeout, an
/// unreadable answer) is never simply retried, which could buy the batch twice: the newest
/// batches are listed first, and one created since the attempt with the same number of requests
/// that no pending record claims is adopted. (Adopting a stranger's batch is harmless: its
/// results carry none of our `custom_id`s, so our requests are re-submitted.)
async fn create_once(
    s: &ClaudeSettings,
    client: &Client,
    sh: &Arc<Mutex<Shared>>,
    reqs: &[Value],
) -> Result<Value, LabelError> {
    let mut attempt = 0u32;
    loop {
        let started = crate::util::now_unix();
        match client.create_batch(reqs).await {
            Ok(v) => return Ok(v),
            Err(crate::client::ApiError::Ambiguous { last, .. }) => {
                tracing::warn!(failure = %last, "batch create failed ambiguously; checking whether it was created");
                let known: HashSet<String> = {
                    let g = sh.lock().expect("lock");
                    let mut k: HashSet<String> =
                        g.store.pending()?.into_iter().map(|p| p.batch_id).collect();
                    k.extend(g.batches.iter().cloned());
                    k
                };
                let list = client.list_batches(20).await.map_err(LabelError::Api)?;
                let found = list.get("data").and_then(|d| d.as_array()).and_then(|a| {
                    a.iter()
                        .find(|b| {
                            let id = b.get("id").and_then(|x| x.as_str()).unwrap_or("");
                            let created = b
                                .get("created_at")
                                .and_then(|x| x.as_str())
                                .and_then(crate::util::parse_rfc3339)
                                .unwrap_or(0.0);
                            let total: u64 = b
                                .get("request_counts")
                                .and_then(|c| c.as_object())
                                .map(|c| c.values().filter_map(|v| v.as_u64()).sum())
                                .unwrap_or(0);
                            !id.is_empty()
                                && !known.contains(id)
                                && created >= started - 120.0
                                && total == reqs.len() as u64
                        })
                        .cloned()
                });
                if let Some(b) = found {
                    tracing::info!(batch = ?b.get("id"), "adopting the batch the failed create made");
                    sh.lock().expect("lock").out.batches_adopted += 1;
                    return Ok(b);
                }
                if attempt >= s.client.max_retries {
                    return Err(LabelError::Other(format!(
                        "POST /v1/messages/batches: gave up after {} attempts; last failure: {last}",
                        attempt + 1
                    )));
                }
                attempt += 1;
                let d = s
                    .client
                    .initial_retry_delay
                    .mul_f64(2f64.powi(attempt as i32))
                    .min(s.client.max_retry_delay);
                tokio::time::sleep(d).await;
            }
            Err(e) => return Err(LabelError::Api(e)),
        }
    }
}

/// Polls a batch with backoff until it has ended.
async fn wait_for(s: &ClaudeSettings, client: &Client, id: &str) -> Result<Value, LabelError> {
    let start = Instant::now();
    let mut interval = s.poll_interval;
    loop {
        let v = client.get_batch(id).await.map_err(LabelError::Api)?;
        if v.get("processing_status").and_then(|x| x.as_str()) == Some("ended") {
            return Ok(v);
        }
        if start.elapsed() >= s.max_batch_wait {
            return Err(LabelError::BatchWait {
                batch_id: id.to_string(),
                waited_s: start.elapsed().as_secs_f64(),
            });
        }
        tokio::time::sleep(interval).await;
        interval = (interval.mul_f64(1.5)).min(s.poll_max_interval);
    }
}

/// Streams an ended batch's results into the store; returns the text hashes to re-submit.
#[allow(clippy::too_many_arguments)]
async fn harvest(
    s: &ClaudeSettings,
    rubric: &Rubric,
    prompt_hash: &str,
    client: &Client,
    sh: &Arc<Mutex<Shared>>,
    p: &Pending,
    info: &Value,
    reserved: (u64, f64),
) -> Result<Vec<String>, LabelError> {
    let url = info
        .get("results_url")
        .and_then(|x| x.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| format!("/v1/messages/batches/{}/results", p.batch_id));
    let expected: HashSet<&str> = p.custom_ids.iter().map(String::as_str).collect();
    // A results stream that is cut or garbled in transit is downloaded again: re-submitting its
    // entries would buy them twice.
    let mut lines: BTreeMap<String, Value> = BTreeMap::new();
    let mut attempt = 0u32;
    loop {
        let mut bad_lines = 0usize;
        client
            .batch_results(&url, |line| match serde_json::from_str::<Value>(line) {
                Ok(v) => {
                    if let Some(id) = v.get("custom_id").and_then(|x| x.as_str())
                        && expected.contains(id)
                    {
                        lines.insert(id.to_string(), v);
                    } else {
                        bad_lines += 1;
                    }
                }
                Err(_) => bad_lines += 1,
            })
            .await
            .map_err(LabelError::Api)?;
        let complete = lines.len() == expected.len();
        if complete && bad_lines == 0 {
            break;
        }
        if attempt >= s.client.max_retries {
            tracing::warn!(batch = %p.batch_id, bad_lines, missing = expected.len() - lines.len(),
                "batch results still incomplete; the missing requests are re-submitted");
            break;
        }
        attempt += 1;
        let d = s
            .client
            .initial_retry_delay
            .mul_f64(2f64.powi(attempt as i32))
            .min(s.client.max_retry_delay);
        tokio::time::sleep(d).await;
    }
    let mut retry = Vec::new();
    let mut g = sh.lock().expect("lock");
    g.budget.settle(reserved.0, reserved.1, 0, 0.0);
    for cid in &p.custom_ids {
        let th = cid.trim_start_matches('t').to_string();
        let Some(v) = lines.get(cid) else {
            retry.push(th);
            continue;
        };
        let kind = v
            .pointer("/result/type")
            .and_then(|x| x.as_str())
            .unwrap_or("");
        match kind {
            "succeeded" => {
                let msg = v.pointer("/result/message").cloned().unwrap_or(Value::Null);
                let rec = s.record(rubric, prompt_hash, &th, &msg);
                g.bought(rec, (0, 0.0))?;
            }
            "errored" => {
                let et = v
                    .pointer("/result/error/error/type")
                    .and_then(|x| x.as_str())
                    .unwrap_or("");
                if et == "invalid_request_error" {
                    let m = v
                        .pointer("/result/error/error/message")
                        .and_then(|x| x.as_str())
                        .unwrap_or("");
                    tracing::warn!(batch = %p.batch_id, custom_id = %cid, message = m, "request rejected in batch; not re-submitted");
                    g.fail("invalid_request_error");
                } else {
                    retry.push(th);
                }
            }
            _ => retry.push(th), // expired, canceled, or an unknown new result type
        }
    }
    g.store.remove_pending(&p.batch_id)?;
    Ok(retry)
}

/// Calls `count_tokens` for one document (free; an estimate). Used by the dry run's
/// calibration.
pub fn count_tokens(
    s: &ClaudeSettings,
    rubric: &Rubric,
    key: ApiKey,
    texts: &[&str],
) -> Result<Vec<u64>, LabelError> {
    let client = Client::new(s.client.clone(), key).map_err(LabelError::Other)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| LabelError::Other(format!("cannot start the async runtime: {e}")))?;
    rt.block_on(async {
        let mut out = Vec::new();
        for t in texts {
            out.push(
                client
                    .count_tokens(&s.count_body(rubric, t))
                    .await
                    .map_err(|e: ApiError| LabelError::Api(e))?,
            );
        }
        Ok(out)
    })
}
