//! Progress bars on stderr (indicatif): docs/s, MB/s and ETA per stage. Hidden when stderr is
//! not a terminal or with `--quiet`; counters are updated per batch, never per document.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// What a stage's bar counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Documents (passes).
    Docs,
    /// Tasks (global stages, assembly).
    Tasks,
}

#[derive(Debug)]
struct Meter {
    bar: ProgressBar,
    unit: Unit,
    docs: AtomicU64,
    bytes: AtomicU64,
    start: Instant,
}

/// The progress display of a run.
#[derive(Debug, Default)]
pub struct Progress {
    multi: Option<MultiProgress>,
    meters: Mutex<HashMap<String, Arc<Meter>>>,
}

/// A handle tasks use to report progress (cheap to clone; a no-op when hidden).
#[derive(Debug, Clone, Default)]
pub struct Bar(Option<Arc<Meter>>);

impl Progress {
    /// Bars drawn on stderr if `enabled` and stderr is a terminal.
    pub fn new(enabled: bool) -> Self {
        use std::io::IsTerminal;
        let show = enabled && std::io::stderr().is_terminal();
        let multi =
            show.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(4)));
        Self {
            multi,
            meters: Mutex::new(HashMap::new()),
        }
    }

    /// Starts the bar of a stage. `len` is documents (for [`Unit::Docs`], 0 if unknown) or tasks.
    pub fn start(&self, stage: &str, len: u64, unit: Unit) {
        let Some(multi) = &self.multi else { return };
        let bar = multi.add(if len == 0 {
            ProgressBar::new_spinner()
        } else {
            ProgressBar::new(len)
        });
        let template = match unit {
            Unit::Docs => "{prefix:>22} {wide_bar} {human_pos}/{human_len} docs {msg} ETA {eta}",
            Unit::Tasks => "{prefix:>22} {wide_bar} {pos}/{len} tasks {elapsed}",
        };
        bar.set_style(ProgressStyle::with_template(template).expect("template"));
        bar.set_prefix(stage.to_string());
        let m = Meter {
            bar,
            unit,
            docs: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            start: Instant::now(),
        };
        self.meters
            .lock()
            .expect("lock")
            .insert(stage.to_string(), Arc::new(m));
    }

    /// The bar of a stage (a no-op bar when hidden or not started).
    pub fn bar(&self, stage: &str) -> Bar {
        Bar(self.meters.lock().expect("lock").get(stage).cloned())
    }

    /// Ends a stage's bar.
    pub fn finish(&self, stage: &str) {
        if let Some(m) = self.meters.lock().expect("lock").get(stage) {
            m.bar.finish();
        }
    }
}

impl Bar {
    /// Reports a batch of `docs` documents and `bytes` bytes.
    pub fn add(&self, docs: u64, bytes: u64) {
        let Some(m) = &self.0 else { return };
        if m.unit != Unit::Docs {
            return;
        }
        let d = m.docs.fetch_add(docs, Ordering::Relaxed) + docs;
        let b = m.bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        let secs = m.start.elapsed().as_secs_f64().max(1e-3);
        m.bar.inc(docs);
        m.bar.set_message(format!(
            "{:.0} docs/s {:.1} MB/s",
            d as f64 / secs,
            b as f64 / secs / 1e6
        ));
    }

    /// Reports a finished task.
    pub fn task_done(&self) {
        if let Some(m) = &self.0
            && m.unit == Unit::Tasks
        {
            m.bar.inc(1);
        }
    }
}
