//! curate dedup steps: exact and MinHash near-duplicate removal that scale past memory.
//!
//! Both steps are barriers (see `curate_core::step`): per-task observers hash documents and
//! spill sorted, partitioned run files; global stages merge them (one task per partition) and
//! decide the survivors; the filter pass after the barrier drops the duplicates, reading only the
//! sorted node files. Everything persisted is keyed by stable document keys and fixed seeded
//! hashes, so the survivors do not depend on task or thread counts.
//!
//! - [`exact::ExactDedupConfig`] (`exact_dedup`): xxh3-128 of normalized text.
//! - [`minhash::MinhashDedupConfig`] (`minhash_dedup`): MinHash LSH over word n-grams, connected
//!   components, optional true-Jaccard verification, cross-snapshot indexes.

pub mod common;
mod components;
pub mod exact;
pub mod local;
pub mod minhash;
pub mod normalize;
pub mod provenance;
pub mod runs;
pub mod signature;

pub use exact::ExactDedupConfig;
pub use minhash::MinhashDedupConfig;
