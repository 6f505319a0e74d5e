//! Evaluation benchmarks as item texts: JSONL (optionally `.gz`) or parquet files, local or in
//! object storage (`s3://`, through [`curate_core::resource`]), one benchmark per file, named by
//! its file stem; each row's configured fields joined form one item.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use arrow::array::Array;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use curate_core::{StepError, resource};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// One benchmark file's items.
#[derive(Debug, Clone)]
pub struct Benchmark {
    /// The file stem (`mmlu` for `evals/mmlu.jsonl`).
    pub name: String,
    /// The file (an object's URL as a path).
    pub path: PathBuf,
    /// xxh3-128 of the file's bytes, hex.
    pub xxh3_128: String,
    /// Rows read.
    pub rows: u64,
    /// One text per row that had at least one of the fields.
    pub items: Vec<String>,
}

/// The benchmark name of a file: its name without `.gz`, `.jsonl`, `.json` or `.parquet`.
pub fn benchmark_name(path: &Path) -> String {
    let mut name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    for ext in [".gz", ".jsonl", ".json", ".parquet"] {
        if let Some(s) = name.strip_suffix(ext) {
            name = s.to_string();
        }
    }
    name
}

/// Expands `patterns` (paths or globs, relative to `base`; or `s3://` URLs and globs, listed in
/// object storage) into benchmark files, sorted; every pattern must match a file. Object URLs
/// are carried as paths whose text is the URL.
pub fn resolve(patterns: &[String], base: &Path) -> Result<Vec<PathBuf>, StepError> {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for p in patterns {
        let is_glob = p.contains(['*', '?', '[']);
        if resource::is_remote(p) {
            if !is_glob {
                // existence is checked when the object is read
                files.push(PathBuf::from(p));
                continue;
            }
            match resource::glob(p) {
                Ok(v) if v.is_empty() => problems.push(format!("{p}: matches no object")),
                Ok(v) => files.extend(v.into_iter().map(PathBuf::from)),
                Err(e) => problems.push(e),
            }
            continue;
        }
        let full = resource::local_path(p, base);
        let pat = full.to_string_lossy().into_owned();
        let mut hits: Vec<PathBuf> = match glob::glob(&pat) {
            Ok(g) => g.filter_map(Result::ok).filter(|f| f.is_file()).collect(),
            Err(e) => {
                problems.push(format!("{p}: not a valid glob: {e}"));
                continue;
            }
        };
        if hits.is_empty() {
            problems.push(format!("{p}: matches no file"));
        }
        hits.sort();
        files.extend(hits);
    }
    files.sort();
    files.dedup();
    if !problems.is_empty() {
        return Err(StepError::Data(format!(
            "benchmarks: {}",
            problems.join("; ")
        )));
    }
    Ok(files)
}

/// Reads every benchmark file (local, or an object in object storage): each row's `fields`
/// (those present; strings as they are, numbers and lists rendered as text) joined by newlines
/// form its item.
pub fn load(files: &[PathBuf], fields: &[String]) -> Result<Vec<Benchmark>, StepError> {
    let mut out: Vec<Benchmark> = Vec::new();
    for f in files {
        let name = benchmark_name(f);
        if let Some(other) = out.iter().find(|b| b.name == name) {
            return Err(StepError::Data(format!(
                "{} and {} would both be benchmark \"{name}\"; rename one",
                other.path.display(),
                f.display()
            )));
        }
        let location = f.to_string_lossy();
        let bytes = resource::read_existing(&location, Path::new("")).map_err(StepError::Data)?;
        let xxh3_128 = format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&bytes));
        let lower = location.to_ascii_lowercase();
        let (rows, items) = if lower.ends_with(".parquet") {
            parquet_items(f, bytes, fields)?
        } else if lower.ends_with(".gz") {
            let mut s = Vec::new();
            flate2::read::MultiGzDecoder::new(&bytes[..])
                .read_to_end(&mut s)
                .map_err(|e| StepError::io(f, e))?;
            jsonl_items(f, &s, fields)?
        } else {
            jsonl_items(f, &bytes, fields)?
        };
        if items.is_empty() {
            return Err(StepError::Data(format!(
                "{}: none of its {rows} rows has any of the fields {}; set `fields` to the benchmark's text fields",
                f.display(),
                fields.join(", ")
            )));
        }
        out.push(Benchmark {
            name,
            path: f.clone(),
            xxh3_128,
            rows,
            items,
        });
    }
    Ok(out)
}

fn render_json(v: &serde_json::Value, out: &mut String) {
    match v {
        serde_json::Value::Null => {}
        serde_json::Value::String(s) => out.push_str(s),
        serde_json::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push('\n');
                }
                render_json(x, out);
            }
        }
        other => out.push_str(&other.to_string()),
    }
}

fn jsonl_items(
    path: &Path,
    bytes: &[u8],
    fields: &[String],
) -> Result<(u64, Vec<String>), StepError> {
    let mut items = Vec::new();
    let mut rows = 0u64;
    for (n, line) in BufReader::new(bytes).lines().enumerate() {
        let line =
            line.map_err(|e| StepError::Data(format!("{}:{}: {e}", path.display(), n + 1)))?;
        let line = line.trim_start_matches('\u{feff}');
        if line.trim().is_empty() {
            continue;
        }
        rows += 1;
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| {
            StepError::Data(format!("{}:{}: not valid JSON: {e}", path.display(), n + 1))
        })?;
        let mut item = String::new();
        for f in fields {
            if let Some(x) = v.get(f).filter(|x| !x.is_null()) {
                if !item.is_empty() {
                    item.push('\n');
                }
                render_json(x, &mut item);
            }
        }
        if !item.trim().is_empty() {
            items.push(item);
        }
    }
    Ok((rows, items))
}

fn parquet_items(
    path: &Path,
    bytes: Vec<u8>,
    fields: &[String],
) -> Result<(u64, Vec<String>), StepError> {
    let perr = |e: &dyn std::fmt::Display| StepError::Data(format!("{}: {e}", path.display()));
    let b = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
        .map_err(|e| perr(&e))?;
    let schema = b.schema().clone();
    let idx: Vec<usize> = fields
        .iter()
        .filter_map(|f| schema.index_of(f).ok())
        .collect();
    if idx.is_empty() {
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        return Err(perr(&format!(
            "none of the fields {} is a column (columns: {})",
            fields.join(", "),
            names.join(", ")
        )));
    }
    let mask = parquet::arrow::ProjectionMask::roots(b.parquet_schema(), idx);
    let reader = b
        .with_projection(mask)
        .with_batch_size(4096)
        .build()
        .map_err(|e| perr(&e))?;
    let mut items = Vec::new();
    let mut rows = 0u64;
    let opts = FormatOptions::default();
    for (bi, rb) in reader.enumerate() {
        let rb = rb.map_err(|e| perr(&format!("batch {bi}: {e}")))?;
        let cols: Vec<_> = fields.iter().filter_map(|f| rb.column_by_name(f)).collect();
        let fmts = cols
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts).map_err(|e| perr(&e)))
            .collect::<Result<Vec<_>, _>>()?;
        for r in 0..rb.num_rows() {
            rows += 1;
            let mut item = String::new();
            for (c, f) in cols.iter().zip(&fmts) {
                if c.is_null(r) {
                    continue;
                }
                if !item.is_empty() {
                    item.push('\n');
                }
                use std::fmt::Write as _;
                let _ = write!(item, "{}", f.value(r));
            }
            if !item.trim().is_empty() {
                items.push(item);
            }
        }
    }
    Ok((rows, items))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_fields_join_and_missing_fields_are_named() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("gsm.jsonl");
        std::fs::write(
            &p,
            "{\"question\": \"Q1?\", \"answer\": 42}\n\n{\"question\": \"Q2\", \"choices\": [\"a\", \"b\"]}\n",
        )
        .unwrap();
        let fields = vec!["question".to_string(), "answer".into(), "choices".into()];
        let b = load(std::slice::from_ref(&p), &fields).unwrap();
        assert_eq!(b[0].name, "gsm");
        assert_eq!(b[0].rows, 2);
        assert_eq!(b[0].items, ["Q1?\n42", "Q2\na\nb"]);
        let e = load(&[p], &["text".to_string()]).unwrap_err().to_string();
        assert!(
            e.contains("none of its 2 rows has any of the fields text"),
            "{e}"
        );
        let bad = d.path().join("bad.jsonl");
        std::fs::write(&bad, "{\"text\": \"x\"}\n{oops\n").unwrap();
        let e = load(&[bad], &["text".to_string()]).unwrap_err().to_string();
        assert!(e.contains("bad.jsonl:2: not valid JSON"), "{e}");
    }

    #[test]
    fn globs_must_match_and_names_must_differ() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("a")).unwrap();
        std::fs::create_dir_all(d.path().join("b")).unwrap();
        std::fs::write(d.path().join("a/x.jsonl"), "{\"text\":\"t\"}\n").unwrap();
        std::fs::write(d.path().join("b/x.jsonl.gz"), "").unwrap();
        let e = resolve(&["none/*.jsonl".into()], d.path())
            .unwrap_err()
            .to_string();
        assert!(e.contains("none/*.jsonl: matches no file"), "{e}");
        let files = resolve(&["*/x.jsonl*".into()], d.path()).unwrap();
        assert_eq!(files.len(), 2);
        let e = load(&files, &["text".into()]).unwrap_err().to_string();
        assert!(e.contains("would both be benchmark \"x\""), "{e}");
        assert_eq!(benchmark_name(Path::new("e/mmlu.parquet")), "mmlu");
    }
}
