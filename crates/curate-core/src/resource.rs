//! Reading files a step config names (a frozen model, a fastText model, a tokenizer.json,
//! benchmark files, another snapshot's manifest) wherever they live: a local path, or an
//! object-store URL such as `s3://bucket/key` (the user's own storage, as for inputs; nothing is
//! downloaded from the internet).
//!
//! Capability crates do not depend on the storage layer; the pipeline registers a
//! [`RemoteReader`] once per process ([`set_remote_reader`]) and steps call [`read`],
//! [`read_existing`] and [`glob`].
//!
//! Every file a step reads this way while it is built is *recorded* ([`recording`]): its
//! location, size and content hash. The pipeline keeps these in the run state, so a resumed run
//! (or another task of it) whose model, tokenizer, benchmark or label file changed since the run
//! began is refused instead of mixing both versions, and lists them in the manifest. A step that
//! reads a file another way (a parquet reader, a directory of another snapshot) records it with
//! [`record_file`] when it is built.

use std::cell::RefCell;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// Reads whole objects from object storage.
pub trait RemoteReader: Send + Sync {
    /// The bytes of the object at `url` (`scheme://...`), `None` if there is none.
    fn read(&self, url: &str) -> Result<Option<Vec<u8>>, String>;
    /// The URLs of the objects matching the glob `pattern` (`scheme://bucket/prefix/*.jsonl`:
    /// `*`, `?`, `[…]` within one `/` level, `**` across), sorted; empty if none match.
    fn glob(&self, pattern: &str) -> Result<Vec<String>, String>;
}

/// The URL schemes [`read`] accepts besides local paths.
pub const SCHEMES: [&str; 1] = ["s3://"];

static REMOTE: OnceLock<Box<dyn RemoteReader>> = OnceLock::new();

/// Registers the process's remote reader (the first registration wins).
pub fn set_remote_reader(r: Box<dyn RemoteReader>) {
    let _ = REMOTE.set(r);
}

/// Whether `location` is a URL (`scheme://...`) rather than a local path.
pub fn is_remote(location: &str) -> bool {
    location.contains("://")
}

/// The validate-time check of a location a config names: a URL of a scheme that cannot be read
/// (`https://`, `gs://`) is a problem of `field`.
pub fn check_scheme(p: &mut crate::Problems, field: &str, location: &str) {
    if is_remote(location) && !SCHEMES.iter().any(|s| location.starts_with(s)) {
        p.push_hint(
            field,
            format!("\"{location}\": only local paths and s3:// URLs can be read"),
            "copy the file to a local path or your object storage (curate downloads nothing from the internet)",
        );
    }
}

/// `rel` below `location` (a directory or URL prefix).
pub fn join(location: &str, rel: &str) -> String {
    format!("{}/{rel}", location.trim_end_matches('/'))
}

/// A local location resolved against `base` (absolute paths stay as they are).
pub fn local_path(location: &str, base: &Path) -> PathBuf {
    let p = Path::new(location);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// How `location` is named in messages: the URL as given, or the local path resolved against
/// `base`.
pub fn display(location: &str, base: &Path) -> String {
    if is_remote(location) {
        location.to_string()
    } else {
        local_path(location, base).display().to_string()
    }
}

fn remote(location: &str) -> Result<&'static dyn RemoteReader, String> {
    REMOTE
        .get()
        .map(|r| r.as_ref())
        .ok_or_else(|| format!("{location}: no object-store reader in this process"))
}

/// The bytes at `location` (local paths resolved against `base`); `Ok(None)` if it does not
/// exist. Recorded ([`recording`]) when read.
pub fn read(location: &str, base: &Path) -> Result<Option<Vec<u8>>, String> {
    let bytes = if is_remote(location) {
        remote(location)?.read(location)?
    } else {
        let p = local_path(location, base);
        match std::fs::read(&p) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("{}: {e}", p.display())),
        }
    };
    if let Some(b) = &bytes {
        record_bytes(&display(location, base), b);
    }
    Ok(bytes)
}

/// The bytes at `location`, which must exist: a missing file or object is an error naming it
/// (`<path>: No such file or directory (os error 2)`, `<url>: no such object`). Recorded
/// ([`recording`]).
pub fn read_existing(location: &str, base: &Path) -> Result<Vec<u8>, String> {
    let bytes = if is_remote(location) {
        remote(location)?
            .read(location)?
            .ok_or_else(|| format!("{location}: no such object"))?
    } else {
        let p = local_path(location, base);
        std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?
    };
    record_bytes(&display(location, base), &bytes);
    Ok(bytes)
}

/// A file a step read while it was built: where, how large, and its content hash (xxh3-128, as
/// the inputs' hashes).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Resource {
    /// The local path (relative to the working directory when below it, else absolute), or the
    /// object URL.
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// xxh3-128 of the content, hex.
    pub xxh3_128: String,
}

thread_local! {
    static RECORDED: RefCell<Option<Vec<Resource>>> = const { RefCell::new(None) };
}

/// Runs `f` (a step's build) and returns what it returned with every file it read through this
/// module or named to [`record_file`] on this thread, in the order first read (each once).
pub fn recording<T>(f: impl FnOnce() -> T) -> (T, Vec<Resource>) {
    let outer = RECORDED.with(|r| r.borrow_mut().replace(Vec::new()));
    let out = f();
    let got = RECORDED.with(|r| std::mem::replace(&mut *r.borrow_mut(), outer));
    (out, got.unwrap_or_default())
}

fn record(r: Resource) {
    RECORDED.with(|cell| {
        if let Some(v) = cell.borrow_mut().as_mut()
            && !v.iter().any(|x| x.path == r.path)
        {
            v.push(r);
        }
    });
}

/// How a local file is recorded: relative to the working directory when it lies below it (as
/// inputs are, so that a snapshot's manifest does not depend on where the project was checked
/// out), else absolute.
fn shown(p: &Path) -> String {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    std::env::current_dir()
        .ok()
        .and_then(|cwd| abs.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .filter(|rel| !rel.as_os_str().is_empty())
        .unwrap_or(abs)
        .display()
        .to_string()
}

fn recording_now() -> bool {
    RECORDED.with(|r| r.borrow().is_some())
}

fn record_bytes(path: &str, bytes: &[u8]) {
    if recording_now() {
        record(Resource {
            path: if is_remote(path) {
                path.to_string()
            } else {
                shown(Path::new(path))
            },
            bytes: bytes.len() as u64,
            xxh3_128: crate::hash::hex128(xxhash_rust::xxh3::xxh3_128(bytes)),
        });
    }
}

/// Hashes a local file a step reads by other means than [`read`] (streamed, not held in
/// memory) and records it ([`recording`]). An error names the file.
pub fn record_file(path: &Path) -> Result<Resource, String> {
    let err = |e: std::io::Error| format!("{}: {e}", path.display());
    let mut f = std::fs::File::open(path).map_err(err)?;
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(err)?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        h.update(&buf[..n]);
    }
    let r = Resource {
        path: shown(path),
        bytes,
        xxh3_128: crate::hash::hex128(h.digest128()),
    };
    record(r.clone());
    Ok(r)
}

/// The URLs of the objects matching the object-store glob `pattern` (see
/// [`RemoteReader::glob`]); local globs are expanded by the caller.
pub fn glob(pattern: &str) -> Result<Vec<String>, String> {
    remote(pattern)?.glob(pattern)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_reads_resolve_against_the_base() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("m.bin"), b"x").unwrap();
        assert_eq!(read("m.bin", d.path()).unwrap().as_deref(), Some(&b"x"[..]));
        assert_eq!(read("missing.bin", d.path()).unwrap(), None);
        let e = read_existing("missing.bin", d.path()).unwrap_err();
        assert!(e.contains("missing.bin: No such file"), "{e}");
        assert_eq!(read_existing("m.bin", d.path()).unwrap(), b"x");
        assert_eq!(
            display("m.bin", d.path()),
            d.path().join("m.bin").display().to_string()
        );
        assert_eq!(display("s3://b/m.bin", d.path()), "s3://b/m.bin");
        let mut p = crate::Problems::default();
        check_scheme(&mut p, "model", "s3://b/m.bin");
        check_scheme(&mut p, "model", "m.bin");
        assert!(p.is_empty());
        check_scheme(&mut p, "model", "https://example.com/m.bin");
        assert!(!p.is_empty());
        assert!(is_remote("s3://b/k") && !is_remote("/a/b"));
        assert_eq!(
            join("s3://b/snap/", "manifest.json"),
            "s3://b/snap/manifest.json"
        );
    }

    #[test]
    fn reads_while_recording_are_listed_once_with_their_hashes() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a.bin"), b"abc").unwrap();
        std::fs::write(d.path().join("b.bin"), b"defg").unwrap();
        // outside a recording nothing is kept
        read_existing("a.bin", d.path()).unwrap();
        let ((), got) = recording(|| {
            read_existing("b.bin", d.path()).unwrap();
            read("a.bin", d.path()).unwrap();
            assert_eq!(read("missing", d.path()).unwrap(), None);
            read_existing("b.bin", d.path()).unwrap();
            assert_eq!(record_file(&d.path().join("a.bin")).unwrap().bytes, 3);
            // a nested recording (a step building another) keeps its own list
            let ((), inner) = recording(|| {
                record_file(&d.path().join("b.bin")).unwrap();
            });
            assert_eq!(inner.len(), 1);
            assert!(
                record_file(&d.path().join("missing"))
                    .unwrap_err()
                    .contains("missing")
            );
        });
        let hex = |b: &[u8]| crate::hash::hex128(xxhash_rust::xxh3::xxh3_128(b));
        assert_eq!(
            got,
            vec![
                Resource {
                    path: d.path().join("b.bin").display().to_string(),
                    bytes: 4,
                    xxh3_128: hex(b"defg"),
                },
                Resource {
                    path: d.path().join("a.bin").display().to_string(),
                    bytes: 3,
                    xxh3_128: hex(b"abc"),
                },
            ]
        );
        let ((), none) = recording(|| ());
        assert!(none.is_empty());
    }
}
