//! Input discovery: paths and globs → a sorted list of files with their shapes.
//!
//! Only footers are read here (parquet metadata), never document data, so planning a run over
//! terabytes is cheap. Inputs are sorted by path; a file's position in that list is its
//! *ordinal*, the top bits of every [`DocKey`](https://docs.rs/curate-core) it yields.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::{DataType, Schema, SchemaRef};
use parquet::arrow::arrow_reader::ArrowReaderMetadata;
use serde::Serialize;

use crate::error::IoError;
use crate::store::{self, ObjectUrl};

/// Compression of a JSONL file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JsonCompression {
    /// Plain text.
    None,
    /// `.gz`.
    Gzip,
    /// `.zst`.
    Zstd,
}

/// The format of an input file, from its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Apache Parquet.
    Parquet,
    /// JSON Lines, possibly compressed.
    Jsonl(JsonCompression),
}

impl Format {
    /// Detects the format from a file name: `.parquet`, `.jsonl`/`.json`/`.ndjson` with optional
    /// `.gz` / `.zst`.
    pub fn detect(path: &Path) -> Option<Format> {
        let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
        let (stem, comp) = if let Some(s) = name.strip_suffix(".gz") {
            (s.to_string(), JsonCompression::Gzip)
        } else if let Some(s) = name.strip_suffix(".zst") {
            (s.to_string(), JsonCompression::Zstd)
        } else {
            (name.clone(), JsonCompression::None)
        };
        if comp == JsonCompression::None && stem.ends_with(".parquet") {
            return Some(Format::Parquet);
        }
        if stem.ends_with(".jsonl") || stem.ends_with(".json") || stem.ends_with(".ndjson") {
            return Some(Format::Jsonl(comp));
        }
        None
    }
}

/// Shape of one parquet row group.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RowGroup {
    /// Rows in the group.
    pub rows: u64,
    /// Uncompressed bytes (for progress and planning).
    pub bytes: u64,
}

/// An input file, inspected.
#[derive(Debug, Clone)]
pub struct InputFile {
    /// Path as opened.
    pub path: PathBuf,
    /// Format.
    pub format: Format,
    /// Size in bytes.
    pub size: u64,
    /// Row groups (parquet) — a JSONL file is one unit with unknown row count.
    pub row_groups: Vec<RowGroup>,
    /// Arrow schema of the file (parquet: from the footer; JSONL: inferred from its first lines).
    pub schema: SchemaRef,
    /// Parquet metadata, loaded once and shared by every reader of this file.
    pub parquet: Option<ArrowReaderMetadata>,
}

impl InputFile {
    /// Total rows (parquet; 0 for JSONL, whose count is unknown until read).
    pub fn rows(&self) -> u64 {
        self.row_groups.iter().map(|r| r.rows).sum()
    }
}

/// What a pattern that matched nothing and holds a bracket adds to its error.
const BRACKET_HINT: &str = "; in a pattern `[...]` matches one of the characters inside: write \
                            `[[]` for a literal `[` (and `[]]` for `]`)";

/// Expands `patterns` (files or globs; relative ones stay relative to the working directory,
/// `base`, which is named in messages) into a sorted, de-duplicated list.
/// Every pattern that matches nothing is an error; all such errors are returned together.
pub fn resolve(patterns: &[String], base: &Path) -> Result<Vec<PathBuf>, Vec<String>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for pat in patterns {
        if let Some(url) = ObjectUrl::parse(pat) {
            match url {
                Err(m) => errors.push(format!("input {m}")),
                // an object that exists under exactly this key is that object, as for files
                Ok(u)
                    if pat.contains(['*', '?', '[']) && !matches!(store::head(&u), Ok(Some(_))) =>
                {
                    match store::glob(&u) {
                        Ok(v) if v.is_empty() => {
                            let mut msg = format!("input pattern \"{pat}\" matches no object");
                            if pat.contains('[') {
                                msg.push_str(BRACKET_HINT);
                            }
                            errors.push(msg)
                        }
                        Ok(v) => out.extend(v.iter().map(ObjectUrl::to_path)),
                        Err(m) => errors.push(format!("input {m}")),
                    }
                }
                // existence is checked when the object's footer is read
                Ok(u) => out.push(u.to_path()),
            }
            continue;
        }
        // Relative patterns stay relative (to the working directory), so manifests record
        // paths as the user wrote them and are the same from any checkout.
        let full = PathBuf::from(pat);
        let full_s = pat.clone();
        // a file that exists under exactly this name is that file, even if its name holds a
        // glob character (`data [2024].parquet`)
        if pat.contains(['*', '?', '[']) && !full.is_file() {
            // a trailing `**` means every file below (as in shells with globstar and in
            // object-store globs); the glob crate's `**` alone matches only directories
            let full_s = if full_s == "**" || full_s.ends_with("/**") {
                format!("{full_s}/*")
            } else {
                full_s
            };
            match glob::glob(&full_s) {
                Ok(paths) => {
                    let before = out.len();
                    for p in paths {
                        match p {
                            Ok(p) if p.is_file() => out.push(p),
                            // a link to nothing matched: say so rather than read less
                            Ok(p) if p.is_symlink() && !p.exists() => errors.push(format!(
                                "{}: matched by \"{pat}\", a symbolic link to a file that does not exist",
                                p.display()
                            )),
                            Ok(_) => {}
                            Err(e) => errors.push(format!("{}: {}", e.path().display(), e.error())),
                        }
                    }
                    if out.len() == before {
                        let mut msg = format!("input pattern \"{pat}\" matches no file");
                        if full.is_relative() {
                            msg.push_str(&format!(" (looked in {})", base.display()));
                        }
                        if pat.contains('[') {
                            msg.push_str(BRACKET_HINT);
                        }
                        errors.push(msg);
                    }
                }
                Err(e) => errors.push(format!("input pattern \"{pat}\" is not a valid glob: {e}")),
            }
        } else if full.is_dir() {
            errors.push(format!(
                "input path {} is a directory; use a glob such as \"{}/*.parquet\"",
                full.display(),
                pat.trim_end_matches('/')
            ));
        } else {
            out.push(full);
        }
    }
    out.sort();
    out.dedup();
    // One file under two spellings (`a.parquet`, `./a.parquet`, a symbolic link to it) would be
    // read twice: every document duplicated.
    let mut seen: std::collections::BTreeMap<PathBuf, &PathBuf> = std::collections::BTreeMap::new();
    for p in &out {
        if store::is_remote(p) {
            continue;
        }
        if let Ok(real) = std::fs::canonicalize(p) {
            match seen.get(&real) {
                Some(first) => errors.push(format!(
                    "inputs {} and {} are the same file ({}); list it once",
                    first.display(),
                    p.display(),
                    real.display()
                )),
                None => {
                    seen.insert(real, p);
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Checks `schema` has a string column named `text_column`.
pub fn check_text_column(path: &Path, schema: &Schema, text_column: &str) -> Result<(), IoError> {
    match schema.field_with_name(text_column) {
        Err(_) => {
            let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            Err(IoError::Column {
                path: path.to_path_buf(),
                column: text_column.to_string(),
                message: format!("missing; the file has columns: {}", names.join(", ")),
            })
        }
        Ok(f) => match f.data_type() {
            t if is_string(t) => Ok(()),
            other => Err(IoError::Column {
                path: path.to_path_buf(),
                column: text_column.to_string(),
                message: format!("has type {other}, expected a string column"),
            }),
        },
    }
}

/// The schema with each struct column `flatten` names replaced, where it stands, by its fields
/// (top-level columns of the same names and types): how `[input] flatten` reads datatrove's
/// JSONL, whose `metadata` object holds `url`, `dump` and the rest. A name that is not a struct
/// column here is left alone ([`flatten_problems`] says so).
pub fn flattened_schema(schema: &Schema, flatten: &[String]) -> Schema {
    if flatten.is_empty() {
        return schema.clone();
    }
    let mut fields = Vec::with_capacity(schema.fields().len());
    for f in schema.fields() {
        match f.data_type() {
            DataType::Struct(children) if flatten.contains(f.name()) => {
                // a child of a nullable struct is null where the struct is
                fields.extend(children.iter().map(|c| {
                    Arc::new(
                        c.as_ref()
                            .clone()
                            .with_nullable(c.is_nullable() || f.is_nullable()),
                    )
                }));
            }
            _ => fields.push(f.clone()),
        }
    }
    Schema::new(fields)
}

/// What is wrong with `[input] flatten` for a file of this schema: a name that is not a struct
/// column of it, and a column name the flattening would give twice (a struct's field beside a
/// top-level column, or in two flattened structs).
pub fn flatten_problems(schema: &Schema, flatten: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for name in flatten {
        match schema.field_with_name(name) {
            Err(_) => out.push(format!("column `{name}` is missing")),
            Ok(f) if !matches!(f.data_type(), DataType::Struct(_)) => out.push(format!(
                "column `{name}` is {}, not a struct (an object in JSONL) whose fields could become columns",
                f.data_type()
            )),
            Ok(_) => {}
        }
    }
    let mut seen = std::collections::BTreeMap::<&str, &str>::new();
    let mut twice = Vec::new();
    for f in schema.fields() {
        let (from, names): (&str, Vec<&str>) = match f.data_type() {
            DataType::Struct(children) if flatten.contains(f.name()) => (
                f.name(),
                children.iter().map(|c| c.name().as_str()).collect(),
            ),
            _ => ("", vec![f.name().as_str()]),
        };
        for n in names {
            if let Some(was) = seen.insert(n, from) {
                let place = |s: &str| {
                    if s.is_empty() {
                        "a top-level column".to_string()
                    } else {
                        format!("a field of `{s}`")
                    }
                };
                twice.push(format!(
                    "flattening gives two columns named `{n}` ({} and {})",
                    place(was),
                    place(from)
                ));
            }
        }
    }
    out.extend(twice);
    out
}

pub use curate_core::columns::is_string;

/// The schema documents have once read: the file schema with every top-level string column
/// (the text column, and any other of a string type [`is_string`] names) as plain Utf8, the one
/// string type steps and writers handle.
pub fn normalized_schema(schema: &Schema) -> SchemaRef {
    let fields: Vec<_> = schema
        .fields()
        .iter()
        .map(|f| {
            if is_string(f.data_type()) && f.data_type() != &DataType::Utf8 {
                Arc::new(f.as_ref().clone().with_data_type(DataType::Utf8))
            } else {
                f.clone()
            }
        })
        .collect();
    Arc::new(Schema::new(fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A glob that matches a symbolic link to nothing is an error naming it (the run read the
    /// other files and said nothing); directories it matches are not inputs.
    #[test]
    fn a_glob_matching_a_dangling_link_says_so() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::write(d.join("a.parquet"), b"x").unwrap();
        std::os::unix::fs::symlink(d.join("gone.bin"), d.join("b.parquet")).unwrap();
        std::fs::create_dir(d.join("c.parquet")).unwrap();
        let pat = format!("{}/*.parquet", d.display());
        let errors = resolve(&[pat], d).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].contains("b.parquet") && errors[0].contains("does not exist"),
            "{errors:?}"
        );
        std::fs::remove_file(d.join("b.parquet")).unwrap();
        let pat = format!("{}/*.parquet", d.display());
        assert_eq!(resolve(&[pat], d).unwrap(), vec![d.join("a.parquet")]);
    }

    /// One file listed under two spellings is an error naming both (it was read twice: every
    /// document duplicated).
    #[test]
    fn one_file_under_two_spellings_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::create_dir(d.join("sub")).unwrap();
        std::fs::write(d.join("a.parquet"), b"x").unwrap();
        std::os::unix::fs::symlink(d.join("a.parquet"), d.join("link.parquet")).unwrap();
        let a = d.join("a.parquet").display().to_string();
        let again = d.join("sub/../a.parquet").display().to_string();
        let link = d.join("link.parquet").display().to_string();
        for other in [again, link] {
            let errors = resolve(&[a.clone(), other.clone()], d).unwrap_err();
            assert!(
                errors.len() == 1
                    && errors[0].contains("are the same file")
                    && errors[0].contains(&other),
                "{errors:?}"
            );
        }
        assert_eq!(
            resolve(&[a.clone(), a.clone()], d).unwrap().len(),
            1,
            "one spelling twice"
        );
        let e = resolve(&[format!("{}/sub/", d.display())], d).unwrap_err();
        assert!(e[0].ends_with("sub/*.parquet\""), "{e:?}");
    }

    /// A trailing `**` takes every file below the directory, at any depth (the glob crate's
    /// `**` alone matched only directories: "matches no file").
    #[test]
    fn a_trailing_double_star_takes_every_file_below() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::create_dir_all(d.join("in/x/y")).unwrap();
        for f in ["in/a.parquet", "in/x/b.parquet", "in/x/y/c.jsonl"] {
            std::fs::write(d.join(f), b"x").unwrap();
        }
        let want = vec![
            d.join("in/a.parquet"),
            d.join("in/x/b.parquet"),
            d.join("in/x/y/c.jsonl"),
        ];
        assert_eq!(
            resolve(&[format!("{}/in/**", d.display())], d).unwrap(),
            want
        );
        assert_eq!(
            resolve(&[format!("{}/in/**/*.parquet", d.display())], d).unwrap(),
            want[..2]
        );
    }

    /// A file whose name holds a glob character is found under that exact name; a pattern that
    /// matches nothing because of a bracket says how to write a literal one.
    #[test]
    fn a_file_named_with_glob_characters_is_found_by_its_name() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::create_dir(d.join("ünï [x]")).unwrap();
        let f = d.join("ünï [x]/data [2024] *.parquet");
        std::fs::write(&f, b"x").unwrap();
        assert_eq!(
            resolve(&[f.display().to_string()], d).unwrap(),
            vec![f.clone()]
        );
        let pat = format!("{}/ünï [x]/*.parquet", d.display());
        let e = resolve(&[pat], d).unwrap_err();
        assert!(
            e[0].contains("write `[[]` for a literal `[`") && !e[0].contains("looked in"),
            "{e:?}"
        );
        let escaped = format!("{}/ünï [[]x]/*.parquet", d.display());
        assert_eq!(resolve(&[escaped], d).unwrap(), vec![f]);
    }
}
