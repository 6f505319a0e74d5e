//! Optional live smoke test against the real Anthropic API. Runs only when
//! `ANTHROPIC_API_KEY` is set (never in CI, which has no key); costs well under one cent
//! (two short documents on Haiku 5.5, budget capped at $0.01).
//!
//! Checks what the fake server cannot: the real API accepts our request shape, answers in the
//! schema, and caches the rubric (the usage cache counters, ANTHROPIC-API.md §4).

use curate_label::LabelConfig;
use curate_label::claude::{self, Ledger};
use curate_label::client::ApiKey;
use curate_label::cost::Budget;
use curate_label::store::Store;

#[test]
fn live_labels_two_documents_and_caches_the_rubric() {
    let Some(key) = ApiKey::from_env() else {
        eprintln!("skipped: ANTHROPIC_API_KEY is not set (live smoke test)");
        return;
    };
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        eprintln!("skipped: never call the live API under CI");
        return;
    }
    let mut cfg = LabelConfig::new("claude");
    cfg.mode = "online".into();
    cfg.concurrency = 1;
    if let Ok(m) = std::env::var("CURATE_LIVE_MODEL") {
        cfg.model = m;
    }
    let s = cfg.claude_settings().unwrap();
    let rubric = curate_label::rubric::Rubric::default_rubric();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store"), &s.model, &s.prompt_hash(&rubric)).unwrap();
    let docs = vec![
        ("a".repeat(32), "Photosynthesis is the process by which green plants use light energy to turn water and carbon dioxide into glucose and oxygen. It happens in the chloroplasts...".to_string()),
        ("b".repeat(32), "BUY CHEAP WATCHES NOW!!! best prices click here click here free shipping".to_string()),
    ];
    let (store, out) = claude::run(
        &s,
        &rubric,
        key,
        store,
        docs,
        Budget::new(Some(0.01), None),
        Ledger::new(dir.path()),
    );
    let out = out.unwrap();
    assert_eq!(out.bought, 2);
    let a = store.get(&"a".repeat(32)).unwrap();
    let b = store.get(&"b".repeat(32)).unwrap();
    eprintln!("live: {a:?}\n{b:?}\n{out:?}");
    assert_eq!(a.status, "ok");
    assert!(
        a.score.unwrap() > b.score.unwrap_or(0.0),
        "an explanation outscores spam"
    );
    assert!(out.spent_usd <= 0.01);
    assert!(
        b.cache_read_input_tokens > 0 || b.cache_creation_input_tokens > 0,
        "the rubric is at least {} bytes and should be cached: {b:?}",
        rubric.prompt.len()
    );
}
