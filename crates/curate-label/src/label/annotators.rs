//! The teachers ("annotators") of the `label` step: `claude`, `file` and `reference`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use curate_core::hash::{h64, unit};

use super::config::LabelConfig;
use super::step::{Item, RUN_FILE, Row, Stats, file_name, text_hash};
use crate::LabelError;
use crate::claude::{self, ClaudeSettings, Ledger};
use crate::client::ApiKey;
use crate::cost::Budget;
use crate::rubric::Rubric;
use crate::store::Store;
use crate::util::{f64_value, read_jsonl, read_parquet, str_value, write_atomic};

pub(super) enum Annotator {
    Claude {
        settings: Box<ClaudeSettings>,
        rubric: Rubric,
        key: ApiKey,
        store: PathBuf,
    },
    File {
        path: PathBuf,
        by_text: bool,
        score_column: String,
    },
    Reference {
        path: PathBuf,
        text_column: String,
        holdout: f64,
        max_docs: Option<usize>,
        seed: u64,
    },
}

// The teacher, its store, the step config, its work dir, the earlier rounds' work dirs (their
// spend counts against the budget) and the documents: each is needed, none belongs to another.
#[allow(clippy::too_many_arguments)]
pub(super) fn label_claude(
    s: &ClaudeSettings,
    rubric: &Rubric,
    key: ApiKey,
    store_dir: &Path,
    cfg: &LabelConfig,
    work: &Path,
    earlier: &[PathBuf],
    items: &[Item],
) -> Result<(Vec<Row>, Stats), LabelError> {
    let prompt_hash = s.prompt_hash(rubric);
    let store = Store::open(store_dir, &s.model, &prompt_hash)?;
    let hashes: Vec<String> = items.iter().map(|it| text_hash(&it.text)).collect();
    let mut seen = HashSet::new();
    let mut missing = Vec::new();
    for (it, th) in items.iter().zip(&hashes) {
        if store.get(th).is_none() && seen.insert(th.clone()) {
            missing.push((th.clone(), it.text.clone()));
        }
    }
    let from_store = seen.len();
    let _ = from_store;
    let ledger = Ledger::new(work);
    let (spent_in, spent_usd) = ledger.load()?;
    let mut budget = Budget::new(cfg.max_usd, cfg.max_input_tokens);
    budget.settle(0, 0.0, spent_in, spent_usd);
    // Labeling in rounds: `max_usd` caps the spend of every round so far, so what earlier
    // `label` steps of the pipeline spent counts against this one's budget.
    let (mut before_in, mut before_usd) = (0u64, 0.0f64);
    for dir in earlier {
        let (i, u) = Ledger::new(dir).load()?;
        before_in += i;
        before_usd += u;
    }
    budget.settle(0, 0.0, before_in, before_usd);
    let need_api = !missing.is_empty() || !store.pending()?.is_empty();
    let n_missing = missing.len();
    let (mut store, outcome) = if need_api {
        tracing::info!(
            documents = n_missing,
            mode = if s.batch { "batch" } else { "online" },
            "labeling with claude"
        );
        claude::run(s, rubric, key, store, missing, budget, ledger)
    } else {
        (store, Ok(claude::Outcome::default()))
    };
    // Whatever happened, fold this run's labels into a segment (they are in the journal anyway).
    store.compact()?;
    let outcome = outcome?;
    let mut rows = Vec::with_capacity(items.len());
    let mut unique_cost = 0.0;
    let mut counted = HashSet::new();
    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    for (it, th) in items.iter().zip(hashes) {
        let mut r = Row {
            key: Some(it.key),
            id: it.id.clone(),
            split: it.split.clone(),
            model: s.model.clone(),
            ..Default::default()
        };
        match store.get(&th) {
            Some(rec) => {
                r.score = rec.score.map(|x| x as f32);
                r.reason = rec.reason.clone();
                r.status = rec.status.clone();
                r.input_tokens = rec.input_tokens;
                r.output_tokens = rec.output_tokens;
                r.cache_creation_input_tokens = rec.cache_creation_input_tokens;
                r.cache_read_input_tokens = rec.cache_read_input_tokens;
                r.cost_usd = rec.cost_usd;
                if counted.insert(th.clone()) {
                    unique_cost += rec.cost_usd;
                }
            }
            None => {
                r.status = if outcome.budget_skipped > 0 {
                    "budget"
                } else {
                    "failed"
                }
                .into();
                r.reason = "not labeled in this run".into();
            }
        }
        *by_status.entry(r.status.clone()).or_default() += 1;
        r.text_hash = th;
        r.text = it.text.clone();
        rows.push(r);
    }
    let mut st = Stats::new();
    st.insert("model".into(), s.model.clone().into());
    st.insert(
        "mode".into(),
        if s.batch { "batch" } else { "online" }.into(),
    );
    st.insert("prompt_hash".into(), prompt_hash.into());
    st.insert("rubric".into(), rubric.source.clone().into());
    // (Where the store lives is a fact of this machine, not of the data: it goes to the log.)
    st.insert(
        "status".into(),
        serde_json::to_value(&by_status).expect("JSON"),
    );
    st.insert("cost_usd_of_labels".into(), unique_cost.into());
    st.insert("distinct_texts".into(), counted.len().into());
    // What this particular run spent, retried and waited varies between a first run and a
    // re-run served from the store; it goes to the work dir and the log, not into the snapshot
    // (whose stats must be the same for the same inputs and config).
    let run = serde_json::to_value(&outcome).expect("JSON");
    write_atomic(
        &work.join(RUN_FILE),
        &serde_json::to_vec_pretty(&run).expect("JSON"),
    )?;
    tracing::info!(
        bought = outcome.bought,
        spent_usd = outcome.spent_usd,
        budget_skipped = outcome.budget_skipped,
        retries = outcome.retries,
        batches = outcome.batches,
        batches_resumed = outcome.batches_resumed,
        store = %store.dir().display(),
        "label run finished"
    );
    Ok((rows, st))
}

pub(super) fn label_file(
    path: &Path,
    by_text: bool,
    score_column: &str,
    items: &[Item],
) -> Result<(Vec<Row>, Stats), LabelError> {
    let key_col = if by_text { "text" } else { "id" };
    // key → (score, reason, where it was read)
    let mut map: HashMap<String, (Option<f64>, String, String)> = HashMap::new();
    let mut rows_in = 0usize;
    let mut add =
        |k: Option<String>, s: Option<f64>, r: String, where_: String| -> Result<(), LabelError> {
            let k = k.ok_or_else(|| LabelError::Input {
                path: path.to_path_buf(),
                message: format!("{where_}: no `{key_col}`"),
            })?;
            rows_in += 1;
            let (k, text) = if by_text {
                (text_hash(&k), Some(k))
            } else {
                (k, None)
            };
            match map.entry(k) {
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert((s, r, where_));
                }
                // the same label twice is harmless; two different ones are a choice curate
                // will not make for the user
                std::collections::hash_map::Entry::Occupied(o) => {
                    let (s0, r0, w0) = o.get();
                    if *s0 != s || *r0 != r {
                        let who = match &text {
                            Some(t) => format!("text \"{}\"", snippet(t)),
                            None => format!("id \"{}\"", o.key()),
                        };
                        let show = |s: &Option<f64>, r: &str| {
                            let s = s.map_or("null".to_string(), |x| x.to_string());
                            if r.is_empty() {
                                format!("score {s}")
                            } else {
                                format!("score {s}, reason \"{}\"", snippet(r))
                            }
                        };
                        return Err(LabelError::Input {
                            path: path.to_path_buf(),
                            message: format!(
                                "conflicting labels for {who}: {w0} has {}, {where_} has {}; \
                                 keep one label per {key_col} (identical repeats are accepted)",
                                show(s0, r0),
                                show(&s, &r)
                            ),
                        });
                    }
                }
            }
            Ok(())
        };
    if is_parquet(path) {
        let mut row = 0usize;
        for rb in read_parquet(path, None)?.iter() {
            let kc = crate::util::column(rb, key_col, path)?;
            let sc = crate::util::column(rb, score_column, path)?;
            let rc = rb.column_by_name("reason");
            for i in 0..rb.num_rows() {
                let reason = rc
                    .and_then(|c| str_value(c.as_ref(), i))
                    .unwrap_or_default();
                add(
                    str_value(kc.as_ref(), i),
                    f64_value(sc.as_ref(), i),
                    reason,
                    format!("row {row}"),
                )?;
                row += 1;
            }
        }
    } else {
        read_jsonl(path, |n, m| {
            let k = m.get(key_col).map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            });
            let s = match m.get(score_column) {
                None | Some(serde_json::Value::Null) => None,
                Some(v) => Some(v.as_f64().ok_or_else(|| LabelError::Input {
                    path: path.to_path_buf(),
                    message: format!("line {n}: `{score_column}` is not a number"),
                })?),
            };
            let r = m
                .get("reason")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string();
            add(k, s, r, format!("line {n}"))
        })?;
    }
    let model = format!(
        "file:{}",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    let mut matched = 0usize;
    let rows = items
        .iter()
        .map(|it| {
            let th = text_hash(&it.text);
            let k = if by_text { th.clone() } else { it.id.clone() };
            let hit = map.get(&k);
            if hit.is_some() {
                matched += 1;
            }
            Row {
                key: Some(it.key),
                id: it.id.clone(),
                split: it.split.clone(),
                score: hit.and_then(|h| h.0).map(|x| x as f32),
                reason: hit.map(|h| h.1.clone()).unwrap_or_default(),
                status: if hit.is_some_and(|h| h.0.is_some()) {
                    "ok"
                } else {
                    "missing"
                }
                .into(),
                model: model.clone(),
                text_hash: th,
                text: it.text.clone(),
                ..Default::default()
            }
        })
        .collect();
    let mut st = Stats::new();
    st.insert("file".into(), file_name(path).into());
    st.insert("file_rows".into(), rows_in.into());
    st.insert("matched".into(), matched.into());
    st.insert("match_on".into(), key_col.into());
    Ok((rows, st))
}

/// The start of a text for a message: one line, at most 60 characters.
pub(super) fn snippet(s: &str) -> String {
    let one: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match one.char_indices().nth(60) {
        Some((i, _)) => format!("{}…", &one[..i]),
        None => one,
    }
}

pub(super) fn is_parquet(p: &Path) -> bool {
    p.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
}

/// Reads the texts (and ids, when present) of a parquet or JSONL corpus file.
pub fn read_texts(
    path: &Path,
    text_column: &str,
) -> Result<Vec<(Option<String>, String)>, LabelError> {
    let mut out = Vec::new();
    if is_parquet(path) {
        for rb in read_parquet(path, None)? {
            let t = crate::util::column(&rb, text_column, path)?;
            let id = rb.column_by_name("id");
            for i in 0..rb.num_rows() {
                if let Some(text) = str_value(t.as_ref(), i) {
                    out.push((id.and_then(|c| str_value(c.as_ref(), i)), text));
                }
            }
        }
    } else {
        read_jsonl(path, |n, m| {
            let text =
                m.get(text_column)
                    .and_then(|v| v.as_str())
                    .ok_or_else(|| LabelError::Input {
                        path: path.to_path_buf(),
                        message: format!("line {n}: no string field `{text_column}`"),
                    })?;
            let id = m.get("id").map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            });
            out.push((id, text.to_string()));
            Ok(())
        })?;
    }
    Ok(out)
}

pub(super) fn label_reference(
    path: &Path,
    text_column: &str,
    holdout: f64,
    max_docs: Option<usize>,
    seed: u64,
    items: &[Item],
) -> Result<(Vec<Row>, Stats), LabelError> {
    let mut refs = read_texts(path, text_column)?;
    if let Some(m) = max_docs {
        refs.truncate(m);
    }
    let model = format!(
        "reference:{}",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    let mut rows: Vec<Row> = items
        .iter()
        .map(|it| Row {
            key: Some(it.key),
            id: it.id.clone(),
            split: it.split.clone(),
            score: Some(0.0),
            reason: "negative: sampled from the input".into(),
            status: "ok".into(),
            model: model.clone(),
            text_hash: text_hash(&it.text),
            text: it.text.clone(),
            ..Default::default()
        })
        .collect();
    let mut pos_hold = 0usize;
    for (n, (id, text)) in refs.into_iter().enumerate() {
        let hold = unit(h64(text.as_bytes(), seed)) < holdout;
        pos_hold += hold as usize;
        rows.push(Row {
            key: None,
            id: id.unwrap_or_else(|| format!("ref-{n}")),
            split: if hold { "holdout" } else { "train" }.into(),
            score: Some(1.0),
            reason: "positive: reference corpus".into(),
            status: "ok".into(),
            model: model.clone(),
            text_hash: text_hash(&text),
            text,
            ..Default::default()
        });
    }
    let mut st = Stats::new();
    // the file's name, not its path: a snapshot must not depend on where the checkout lives
    st.insert("reference".into(), file_name(path).into());
    st.insert("positives".into(), (rows.len() - items.len()).into());
    st.insert("positives_holdout".into(), pos_hold.into());
    st.insert("negatives".into(), items.len().into());
    Ok((rows, st))
}
