//! What the fastText steps (`language`, `fasttext_classifier`) share: loading a model file named
//! in a config, local or `s3://` (errors name the step, field and file or URL), and describing
//! its labels.

use std::path::Path;
use std::sync::Arc;

use curate_core::{StepError, resource};
use curate_fasttext::Model;

/// Loads the model at `path` (a local file, relative paths from `base`, the working directory;
/// or an `s3://` object) for step `step`'s `field`. Errors name the step, the field and the
/// file or URL.
pub(crate) fn load(
    step: &str,
    field: &str,
    path: &str,
    base: &Path,
) -> Result<Arc<Model>, StepError> {
    let err = |m: String| StepError::Other(format!("{step}: {field} = \"{path}\": {m}"));
    let bytes = resource::read_existing(path, base).map_err(err)?;
    Model::from_bytes(&bytes)
        .map(Arc::new)
        .map_err(|e| err(format!("{}: {e}", resource::display(path, base))))
}

/// The check `validate` makes (the model itself is read when the step is built).
pub(crate) fn check_path(problems: &mut curate_core::Problems, field: &str, path: &str) {
    if path.is_empty() {
        problems.push(
            field,
            "is empty; give the path or s3:// URL of a fastText .bin or .ftz model",
        );
    }
    resource::check_scheme(problems, field, path);
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
