//! Hash containers keyed by 64-bit hashes that are already good hashes (no rehashing): a leaf
//! shared by [`crate::text`] and [`crate::words`].

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// A hasher that passes a u64 through (keys are already good hashes).
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | b as u64;
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// A set of 64-bit hashes.
pub type HashSet64 = HashSet<u64, BuildHasherDefault<IdHasher>>;
/// A map keyed by 64-bit hashes.
pub type HashMap64<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;
