//! Reading files a step config names (a frozen model, another snapshot's manifest) wherever
//! they live: a local path, or an object-store URL such as `s3://bucket/key`.
//!
//! Capability crates do not depend on the storage layer; the pipeline registers a
//! [`RemoteReader`] once per process ([`set_remote_reader`]) and steps call [`read`].

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Reads whole objects from object storage.
pub trait RemoteReader: Send + Sync {
    /// The bytes of the object at `url` (`scheme://...`), `None` if there is none.
    fn read(&self, url: &str) -> Result<Option<Vec<u8>>, String>;
}

static REMOTE: OnceLock<Box<dyn RemoteReader>> = OnceLock::new();

/// Registers the process's remote reader (the first registration wins).
pub fn set_remote_reader(r: Box<dyn RemoteReader>) {
    let _ = REMOTE.set(r);
}

/// Whether `location` is a URL (`scheme://...`) rather than a local path.
pub fn is_remote(location: &str) -> bool {
    location.contains("://")
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

/// The bytes at `location` (local paths resolved against `base`); `Ok(None)` if it does not
/// exist.
pub fn read(location: &str, base: &Path) -> Result<Option<Vec<u8>>, String> {
    if is_remote(location) {
        let r = REMOTE
            .get()
            .ok_or_else(|| format!("{location}: no object-store reader in this process"))?;
        return r.read(location);
    }
    let p = local_path(location, base);
    match std::fs::read(&p) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", p.display())),
    }
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
        assert!(is_remote("s3://b/k") && !is_remote("/a/b"));
        assert_eq!(
            join("s3://b/snap/", "manifest.json"),
            "s3://b/snap/manifest.json"
        );
    }
}
