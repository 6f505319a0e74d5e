//! Checking a snapshot directory against its manifest, and the snapshot's digest.

use std::collections::BTreeSet;
use std::path::Path;

use curate_io::hash::hash_file;

use crate::error::SnapshotError;
use crate::layout::{self, Layout};
use crate::manifest::Manifest;

/// Checks a snapshot against its manifest; returns every problem (empty = verified):
///
/// - the manifest itself: its `content_hash` over the file's very bytes (any edit shows: a
///   changed value, an added field, reformatting) and its arithmetic
///   ([`Manifest::consistency`]);
/// - every file it lists: a regular file inside the snapshot (no symbolic link on its way),
///   present, same size, same xxh3-128, and for parquet files the same row count;
/// - every other file under the snapshot is reported as not listed, except `manifest.json`
///   itself, `run.json` (timings, informational) and the run's state under `.curate/`.
pub fn verify(dir: &Path) -> Result<(Manifest, Vec<String>), SnapshotError> {
    let path = Layout::new(dir).manifest();
    let bytes = std::fs::read(&path).map_err(|source| SnapshotError::NotASnapshot {
        path: path.clone(),
        source,
    })?;
    let m: Manifest = serde_json::from_slice(&bytes)
        .map_err(|source| SnapshotError::InvalidManifest { path, source })?;
    let mut problems = Vec::new();
    if m.format >= 2 {
        match raw_content_hash(&bytes) {
            Some(h) if h == m.content_hash => {}
            Some(h) => problems.push(format!(
                "manifest.json: its content does not match its content_hash ({h} vs {}): it was edited",
                m.content_hash
            )),
            None => problems.push(
                "manifest.json: no top-level content_hash where curate writes it: it was edited"
                    .into(),
            ),
        }
    } else {
        problems.push(format!(
            "manifest.json: format {} (an older curate) has no content hash; the manifest itself cannot be checked (re-run the pipeline to upgrade it)",
            m.format
        ));
    }
    for c in m.consistency() {
        problems.push(format!("manifest.json: {c}"));
    }
    let all = m.outputs.iter().chain(&m.excluded).chain(&m.artifacts);
    for f in all {
        let p = dir.join(&f.path);
        if let Some(link) = symlink_on_the_way(dir, &f.path) {
            problems.push(format!(
                "{}: {link} is a symbolic link (a snapshot holds its files itself)",
                f.path
            ));
            continue;
        }
        match hash_file(&p) {
            Err(e) => problems.push(format!("{}: missing or unreadable: {e}", f.path)),
            Ok((bytes, h)) => {
                if bytes != f.bytes {
                    problems.push(format!(
                        "{}: size {bytes} bytes, manifest says {}",
                        f.path, f.bytes
                    ));
                }
                let h = curate_core::hash::hex128(h);
                if h != f.xxh3_128 {
                    problems.push(format!(
                        "{}: content hash {h}, manifest says {}",
                        f.path, f.xxh3_128
                    ));
                }
                if let Some(rows) = f.rows {
                    match parquet_rows(&p) {
                        Ok(n) if n == rows => {}
                        Ok(n) => {
                            problems.push(format!("{}: {n} rows, manifest says {rows}", f.path))
                        }
                        Err(e) => problems.push(format!("{}: unreadable parquet: {e}", f.path)),
                    }
                }
            }
        }
    }
    let listed: BTreeSet<&str> = m
        .outputs
        .iter()
        .chain(&m.excluded)
        .chain(&m.artifacts)
        .map(|f| f.path.as_str())
        .collect();
    let mut files = Vec::new();
    snapshot_files(dir, dir, &mut files);
    for rel in files {
        if !listed.contains(rel.as_str()) {
            problems.push(format!("{rel}: not listed in the manifest"));
        }
    }
    Ok((m, problems))
}

/// The content hash of a manifest file's very bytes: xxh3-128 of the bytes with the value of
/// the top-level `content_hash` emptied — what [`Manifest::compute_content_hash`] hashed when
/// the run wrote it, for an unedited file. `None` if the field is not where curate writes it
/// (one top-level line, after the fields the file holds).
fn raw_content_hash(bytes: &[u8]) -> Option<String> {
    const KEY: &[u8] = b"\n  \"content_hash\": \"";
    let mut hits = bytes
        .windows(KEY.len())
        .enumerate()
        .filter(|(_, w)| *w == KEY);
    let (at, _) = hits.next()?;
    if hits.next().is_some() {
        return None;
    }
    let start = at + KEY.len();
    let len = bytes[start..].iter().position(|&b| b == b'"')?;
    let mut blanked = Vec::with_capacity(bytes.len());
    blanked.extend_from_slice(&bytes[..start]);
    blanked.extend_from_slice(&bytes[start + len..]);
    Some(curate_core::hash::hex128(xxhash_rust::xxh3::xxh3_128(
        &blanked,
    )))
}

/// The first symbolic link on the way from `root` to its file `rel` (`rel` itself included),
/// as a path relative to `root`.
fn symlink_on_the_way(root: &Path, rel: &str) -> Option<String> {
    let mut p = root.to_path_buf();
    let mut seen = Vec::new();
    for part in rel.split('/') {
        p.push(part);
        seen.push(part);
        if std::fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink()) {
            return Some(seen.join("/"));
        }
    }
    None
}

/// Files under a snapshot that the manifest must list: everything but `manifest.json`,
/// `run.json` and `.curate/` (symbolic links are listed too, never followed).
fn snapshot_files(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        let rel = p
            .strip_prefix(root)
            .unwrap_or(&p)
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        if dir == root && layout::is_unlisted(&rel) {
            continue;
        }
        match e.file_type() {
            Ok(t) if t.is_dir() => snapshot_files(root, &p, out),
            _ => out.push(rel),
        }
    }
}

fn parquet_rows(p: &Path) -> Result<u64, String> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let f = std::fs::File::open(p).map_err(|e| e.to_string())?;
    let r = SerializedFileReader::new(f).map_err(|e| e.to_string())?;
    Ok(r.metadata().file_metadata().num_rows() as u64)
}

/// xxh3-128 of the manifest file, hex: one digest for the whole snapshot.
pub fn digest(dir: &Path) -> Result<String, SnapshotError> {
    let (_, h) = hash_file(&Layout::new(dir).manifest()).map_err(|source| SnapshotError::Io {
        context: "hashing the manifest".into(),
        source,
    })?;
    Ok(curate_core::hash::hex128(h))
}
