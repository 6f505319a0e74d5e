//! Content hashes: xxh3-128 of a file, an `s3://` object or bytes (the scheme of every hash in
//! a manifest).

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::error::IoError;

/// Streams a file (or an `s3://` object) through xxh3-128; returns (size in bytes, hash).
pub fn hash_file(path: &Path) -> Result<(u64, u128), IoError> {
    if let Some(url) = crate::store::ObjectUrl::from_path(path) {
        let url = url.map_err(|m| IoError::format(path, crate::error::Location::File, m))?;
        return crate::store::hash_object(&url);
    }
    let mut f = File::open(path).map_err(|e| IoError::os(path, e))?;
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(|e| IoError::os(path, e))?;
        if n == 0 {
            break;
        }
        size += n as u64;
        h.update(&buf[..n]);
    }
    Ok((size, h.digest128()))
}

/// Hash of a byte slice in the same scheme as [`hash_file`].
pub fn hash_bytes(bytes: &[u8]) -> u128 {
    xxhash_rust::xxh3::xxh3_128(bytes)
}
