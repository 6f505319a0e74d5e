//! Reading files a step config names (a frozen model, a fastText model, a tokenizer.json,
//! benchmark files, another snapshot's manifest) wherever they live: a local path, or an
//! object-store URL such as `s3://bucket/key` (the user's own storage, as for inputs; nothing is
//! downloaded from the internet).
//!
//! Capability crates do not depend on the storage layer; the pipeline registers a
//! [`RemoteReader`] once per process ([`set_remote_reader`]) and steps call [`read`],
//! [`read_existing`] and [`glob`].

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

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
/// exist.
pub fn read(location: &str, base: &Path) -> Result<Option<Vec<u8>>, String> {
    if is_remote(location) {
        return remote(location)?.read(location);
    }
    let p = local_path(location, base);
    match std::fs::read(&p) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", p.display())),
    }
}

/// The bytes at `location`, which must exist: a missing file or object is an error naming it
/// (`<path>: No such file or directory (os error 2)`, `<url>: no such object`).
pub fn read_existing(location: &str, base: &Path) -> Result<Vec<u8>, String> {
    if is_remote(location) {
        return remote(location)?
            .read(location)?
            .ok_or_else(|| format!("{location}: no such object"));
    }
    let p = local_path(location, base);
    std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))
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
}
