//! curate filters steps (being written).
