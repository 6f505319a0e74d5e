//! curate quality steps (being written).
