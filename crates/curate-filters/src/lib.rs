//! curate's heuristic document filters: one step per file, each matching datatrove 0.10.1's
//! decisions, parameters and reason names.
//!
//! Every filter here is a per-document rule: it reads a document's text (and, for some, its key
//! or other columns), then keeps it, drops it with a named reason, or rewrites it. The shared
//! machinery lives in [`filter`]: a [`filter::TextFilter`] is wrapped into a curate
//! [`Step`](curate_core::Step) whose processor walks a batch with reused scratch buffers.
//!
//! | step | file | what it does |
//! |---|---|---|
//! | `length` | [`length`] | bounds on characters and words |
//! | `sample_fraction` | [`sample_fraction`] | keeps a seeded, stable fraction of documents |

pub mod filter;
pub mod length;
pub mod sample_fraction;
pub mod words;
