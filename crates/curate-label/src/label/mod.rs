//! `label`: scores the documents `sample` selected with a teacher and adds `teacher_score`.
//!
//! The step is a barrier. Before it, its observer copies the sampled rows (key, id, split, text)
//! to `observed-NNNNN.parquet` in the step's work dir. Its one global stage runs the annotator
//! and writes `labels.parquet` (every label, with text: the file the `train` step reads; for
//! the `reference` annotator it also holds the positive reference documents, with a null
//! `key`), `labels-snapshot.parquet` (the same without text, published under `labels/`) and
//! `stats.json`. After it, its processor adds the nullable Float32 `teacher_score` column.
//!
//! Split along its seams: [`config`] (the documented configuration, validation and `build`),
//! [`step`] (the runtime step: observer, barrier stage, processor, the labels files) and
//! [`annotators`] (the teachers: `claude`, `file`, `reference`).

mod annotators;
mod config;
mod step;

pub use annotators::read_texts;
pub use config::LabelConfig;
pub use step::{LABELS_FILE, LabelStep, RUN_FILE};
