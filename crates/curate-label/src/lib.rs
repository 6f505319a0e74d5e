//! curate label steps (being written).
