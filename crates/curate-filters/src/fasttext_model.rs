//! What the fastText steps (`language`, `fasttext_classifier`) share: loading a model file named
//! in a config (errors name the step, field and file) and describing its labels.

use std::path::Path;
use std::sync::Arc;

use curate_core::StepError;
use curate_fasttext::Model;

/// Loads the model at `path` (relative paths from `base`, the working directory) for step
/// `step`'s `field`.
pub(crate) fn load(
    step: &str,
    field: &str,
    path: &str,
    base: &Path,
) -> Result<Arc<Model>, StepError> {
    let p = Path::new(path);
    let p = if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    };
    Model::open(&p)
        .map(Arc::new)
        .map_err(|e| StepError::Other(format!("{step}: {field} = \"{path}\": {e}")))
}

/// `s3://` models are not read yet: the check `validate` makes.
pub(crate) fn check_local(problems: &mut curate_core::Problems, field: &str, path: &str) {
    if path.is_empty() {
        problems.push(
            field,
            "is empty; give the path of a fastText .bin or .ftz model",
        );
    } else if path.contains("://") {
        problems.push_hint(
            field,
            format!("\"{path}\": only local model files can be read"),
            "copy the model to a local path (s3:// models are not supported yet)",
        );
    }
}

/// The model's labels for an error message: the first 20 and how many there are.
pub(crate) fn label_list(model: &Model) -> String {
    let labels = model.labels();
    let shown: Vec<&str> = labels.iter().take(20).map(String::as_str).collect();
    let more = if labels.len() > shown.len() {
        ", ..."
    } else {
        ""
    };
    format!("{}{more} ({} labels)", shown.join(", "), labels.len())
}

/// Python's `str.strip()`: removes leading and trailing characters for which `str.isspace()` is
/// true (Unicode whitespace, plus the ASCII separators 0x1C–0x1F).
pub(crate) fn py_strip(s: &str) -> &str {
    s.trim_matches(is_py_space)
}

fn is_py_space(c: char) -> bool {
    matches!(
        c,
        '\t'..='\r'
            | '\u{1c}'..='\u{20}'
            | '\u{85}'
            | '\u{a0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200a}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202f}'
            | '\u{205f}'
            | '\u{3000}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_like_python() {
        assert_eq!(py_strip(" \t\u{a0}a b\u{3000}\u{1f}\n"), "a b");
        assert_eq!(py_strip("\u{200b}a"), "\u{200b}a"); // zero-width space is not whitespace
        assert_eq!(py_strip(""), "");
    }
}
