//! curate dedup steps (being written).
