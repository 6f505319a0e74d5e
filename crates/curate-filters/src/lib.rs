//! curate's heuristic document filters: one step per file, each matching datatrove 0.10.1's
//! decisions, parameters and reason names.
//!
//! Every filter here is a per-document rule: it reads a document's text (and, for some, its key
//! or other columns), then keeps it, drops it with a named reason, or rewrites it. The shared
//! machinery lives in [`filter`]: a [`filter::TextFilter`] is wrapped into a curate
//! [`Step`](curate_core::Step) whose processor walks a batch with reused scratch buffers.
//! Word-based rules use [`words`], a spaCy-compatible English word splitter.
//!
//! | step | file | what it does |
//! |---|---|---|
//! | `length` | [`length`] | bounds on characters and words |
//! | `sample_fraction` | [`sample_fraction`] | keeps a seeded, stable fraction of documents |
//! | `gopher_quality` | [`gopher_quality`] | Gopher's quality rules |
//! | `gopher_repetition` | [`gopher_repetition`] | Gopher's repetition rules |
//! | `c4_badwords` | [`c4_badwords`] | LDNOOBW bad-words lists (shipped) |
//! | `c4_quality` | [`c4_quality`] | C4's line and document rules, rewriting the text |
//! | `fineweb_quality` | [`fineweb_quality`] | FineWeb's line rules |
//! | `language` | [`language`] | language ID (fastText lid.176 built in, or whatlang), `language` / `language_score` columns |
//! | `fasttext_classifier` | [`fasttext_classifier`] | any fastText classifier's label score as a column, kept above a threshold |
//! | `pii` | [`pii`] | email and IP redaction |
//! | `regex` | [`regex_filter`] | drop documents or remove lines matching patterns |
//! | `url_filter` | [`url_filter`] | domain, URL and word block lists |

pub mod c4_badwords;
pub mod c4_quality;
mod datatrove_tables;
pub mod fasttext_classifier;
mod fasttext_model;
pub mod filter;
pub mod fineweb_quality;
pub mod gopher_quality;
pub mod gopher_repetition;
mod idhash;
pub mod language;
pub mod length;
pub mod pii;
pub mod preset;
pub mod regex_filter;
pub mod sample_fraction;
pub mod text;
pub mod url_filter;
pub mod words;

pub use preset::preset;
