//! The CLI's integration tests, one binary (each module was its own test binary before):
//! one link instead of fourteen, and shared fixtures in `common`.

mod active;
mod common;
mod crash;
mod dedup;
mod edges;
mod errors;
mod fasttext;
mod filters;
mod foundation;
mod label;
mod quality;
mod readback;
mod report;
mod s3;
mod slurm;
mod tokens;
