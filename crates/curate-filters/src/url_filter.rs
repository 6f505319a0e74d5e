//! `url_filter`: drops documents by their URL: blocked domains (and subdomains), blocked URLs,
//! banned words and sub-words, as datatrove 0.10.1's `URLFilter` does.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, AsArray};
use curate_core::{
    BuildEnv, Counters, DocBatch, Problems, Processor, Step, StepError, StepSpec, TaskContext,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Drops documents whose URL is on a block list: its registered domain (reason `domain`) or its
/// full host name (reason `subdomain`) is a blocked domain, the URL itself is blocked (`url`), a
/// banned word is one of the URL's words (`hard_blacklisted`), at least `soft_word_threshold`
/// soft-banned words are (`soft_blacklisted`), or a banned sub-word occurs in the URL stripped
/// to lowercase letters and digits (`blacklisted_subword`).
///
/// Why: FineWeb starts with this step; adult and spam domains are cheapest to remove by URL.
///
/// Lists come from files (one entry per line; lines starting with `#` are comments) and inline
/// options. URL words are the URL split on runs of characters other than ASCII letters and
/// digits (case kept, as datatrove does); list words are lowercased with those characters
/// removed. With `use_integrated_lists`, datatrove's own banned-word, sub-word and soft-word
/// lists (shipped in the binary) are added; its 18 MB UT1 domain list is not shipped: pass it
/// with `domains_files`. The registered domain comes from the Public Suffix List (crate `psl`,
/// which also knows the list's private suffixes such as `blogspot.com`; datatrove's tldextract
/// ignores those by default).
///
/// Example:
///
/// ```toml
/// [[steps]]
/// type = "url_filter"
/// domains_files = ["blocklists/adult/domains"]
/// extra_domains = ["spam.example"]
/// ```
///
/// Reasons: `domain`, `subdomain`, `url`, `hard_blacklisted`, `soft_blacklisted`,
/// `blacklisted_subword`, `missing_url`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UrlFilterConfig {
    /// Number of soft-banned words that make a URL blocked.
    #[serde(default = "d_soft_word_threshold")]
    pub soft_word_threshold: u64,
    /// Blocked domains, inline.
    #[serde(default)]
    pub extra_domains: Vec<String>,
    /// Blocked URLs, inline.
    #[serde(default)]
    pub extra_urls: Vec<String>,
    /// Banned URL words, inline.
    #[serde(default)]
    pub banned_words: Vec<String>,
    /// Banned sub-words (matched anywhere in the normalized URL), inline.
    #[serde(default)]
    pub banned_subwords: Vec<String>,
    /// Soft-banned URL words, inline.
    #[serde(default)]
    pub soft_banned_words: Vec<String>,
    /// Add datatrove's integrated word lists (banned words, sub-words, soft words).
    #[serde(default = "yes")]
    pub use_integrated_lists: bool,
    /// Files of blocked domains (relative paths resolve from the config file's directory).
    #[serde(default)]
    pub domains_files: Vec<PathBuf>,
    /// Files of blocked URLs.
    #[serde(default)]
    pub urls_files: Vec<PathBuf>,
    /// Files of banned words.
    #[serde(default)]
    pub banned_words_files: Vec<PathBuf>,
    /// Files of banned sub-words.
    #[serde(default)]
    pub banned_subwords_files: Vec<PathBuf>,
    /// Files of soft-banned words.
    #[serde(default)]
    pub soft_banned_words_files: Vec<PathBuf>,
    /// Column holding the URL.
    #[serde(default = "d_url_column")]
    pub url_column: String,
}

fn d_soft_word_threshold() -> u64 {
    2
}
fn yes() -> bool {
    true
}
fn d_url_column() -> String {
    "url".into()
}

crate::reasons! {
    DOMAIN = "domain",
    SUBDOMAIN = "subdomain",
    URL = "url",
    HARD_BLACKLISTED = "hard_blacklisted",
    SOFT_BLACKLISTED = "soft_blacklisted",
    BLACKLISTED_SUBWORD = "blacklisted_subword",
    MISSING_URL = "missing_url",
}

const BANNED_WORDS: &str = include_str!("../data/url/banned_words.txt");
const BANNED_SUBWORDS: &str = include_str!("../data/url/banned_subwords.txt");
const SOFT_BANNED_WORDS: &str = include_str!("../data/url/soft_banned_words.txt");

/// datatrove's `normalize`: ASCII letters and digits only, lowercased.
pub fn normalize(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn parse_list<'a>(lines: impl Iterator<Item = &'a str>, norm: bool, out: &mut HashSet<String>) {
    for l in lines {
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        out.insert(if norm {
            normalize(l)
        } else {
            l.trim().to_string()
        });
    }
}

impl StepSpec for UrlFilterConfig {
    const TYPE: &'static str = "url_filter";

    fn validate(&self, problems: &mut Problems) {
        if self.url_column.is_empty() {
            problems.push("url_column", "is empty");
        }
    }

    fn build(&self, env: &BuildEnv) -> Result<Box<dyn Step>, StepError> {
        Ok(Box::new(UrlStep(Arc::new(UrlFilter::new(
            self,
            &env.config_dir,
        )?))))
    }
}

/// The runtime filter.
#[derive(Debug)]
pub struct UrlFilter {
    domains: HashSet<String>,
    urls: HashSet<String>,
    banned_words: HashSet<String>,
    soft_words: HashSet<String>,
    subwords: Option<aho_corasick::AhoCorasick>,
    soft_threshold: u64,
    url_column: String,
}

impl UrlFilter {
    /// Builds the filter, reading list files relative to `base`.
    pub fn new(cfg: &UrlFilterConfig, base: &Path) -> Result<Self, StepError> {
        let read =
            |files: &[PathBuf], norm: bool, out: &mut HashSet<String>| -> Result<(), StepError> {
                for f in files {
                    // through the resource reader: recorded for resumes and the manifest
                    let location = f.to_string_lossy();
                    let bytes = curate_core::resource::read_existing(&location, base)
                        .map_err(StepError::Data)?;
                    let text = String::from_utf8(bytes).map_err(|e| {
                        StepError::Data(format!(
                            "{}: not UTF-8 text ({e})",
                            curate_core::resource::display(&location, base)
                        ))
                    })?;
                    parse_list(text.lines(), norm, out);
                }
                Ok(())
            };
        let (mut domains, mut urls, mut banned, mut subwords, mut soft) = (
            HashSet::new(),
            HashSet::new(),
            HashSet::new(),
            HashSet::new(),
            HashSet::new(),
        );
        parse_list(
            cfg.extra_domains.iter().map(|s| s.as_str()),
            false,
            &mut domains,
        );
        parse_list(cfg.extra_urls.iter().map(|s| s.as_str()), false, &mut urls);
        parse_list(
            cfg.banned_words.iter().map(|s| s.as_str()),
            true,
            &mut banned,
        );
        parse_list(
            cfg.banned_subwords.iter().map(|s| s.as_str()),
            true,
            &mut subwords,
        );
        parse_list(
            cfg.soft_banned_words.iter().map(|s| s.as_str()),
            true,
            &mut soft,
        );
        read(&cfg.domains_files, false, &mut domains)?;
        read(&cfg.urls_files, false, &mut urls)?;
        read(&cfg.banned_words_files, true, &mut banned)?;
        read(&cfg.banned_subwords_files, true, &mut subwords)?;
        read(&cfg.soft_banned_words_files, true, &mut soft)?;
        if cfg.use_integrated_lists {
            parse_list(BANNED_WORDS.lines(), true, &mut banned);
            parse_list(BANNED_SUBWORDS.lines(), true, &mut subwords);
            parse_list(SOFT_BANNED_WORDS.lines(), true, &mut soft);
        }
        let mut sub: Vec<String> = subwords.into_iter().filter(|s| !s.is_empty()).collect();
        sub.sort();
        let subwords = if sub.is_empty() {
            None
        } else {
            Some(
                aho_corasick::AhoCorasick::new(&sub)
                    .map_err(|e| StepError::Other(format!("url_filter: {e}")))?,
            )
        };
        Ok(Self {
            domains,
            urls,
            banned_words: banned,
            soft_words: soft,
            subwords,
            soft_threshold: cfg.soft_word_threshold,
            url_column: cfg.url_column.clone(),
        })
    }

    /// Checks one URL: `None` to keep, or the reason number.
    pub fn check(&self, url: &str) -> Option<usize> {
        let host = host_of(url);
        if !self.domains.is_empty() {
            if let Some(d) = psl::domain_str(host)
                && self.domains.contains(d)
            {
                return Some(DOMAIN);
            }
            if self.domains.contains(host) {
                return Some(SUBDOMAIN);
            }
        }
        if self.urls.contains(url) {
            return Some(URL);
        }
        let words = || url.split(|c: char| !c.is_ascii_alphanumeric());
        if !self.banned_words.is_empty() && words().any(|w| self.banned_words.contains(w)) {
            return Some(HARD_BLACKLISTED);
        }
        if !self.soft_words.is_empty() {
            let mut seen: Vec<&str> = words().filter(|w| self.soft_words.contains(*w)).collect();
            seen.sort_unstable();
            seen.dedup();
            if seen.len() as u64 >= self.soft_threshold {
                return Some(SOFT_BLACKLISTED);
            }
        }
        if let Some(ac) = &self.subwords
            && ac.is_match(&normalize(url))
        {
            return Some(BLACKLISTED_SUBWORD);
        }
        None
    }
}

/// The host of a URL (lowercased by the caller's data; scheme, user info, port and path cut).
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.split(['/', '?', '#']).next().unwrap_or("");
    let rest = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let host = rest.split(':').next().unwrap_or("");
    host.trim_end_matches('.')
}

struct UrlStep(Arc<UrlFilter>);

impl Step for UrlStep {
    fn columns(&self, c: &mut curate_core::columns::Columns<'_>) {
        c.need(
            "url_column",
            &self.0.url_column,
            curate_core::columns::Want::String,
        );
    }

    fn kind(&self) -> &'static str {
        UrlFilterConfig::TYPE
    }

    fn reasons(&self) -> Vec<String> {
        REASONS.iter().map(|s| s.to_string()).collect()
    }

    fn processor(&self, _cx: &TaskContext<'_>) -> Result<Box<dyn Processor>, StepError> {
        Ok(Box::new(UrlProcessor(self.0.clone())))
    }
}

struct UrlProcessor(Arc<UrlFilter>);

impl Processor for UrlProcessor {
    fn process(&mut self, batch: &mut DocBatch, _counters: &mut Counters) -> Result<(), StepError> {
        let f = &self.0;
        let Some(col) = batch.column(&f.url_column) else {
            return Err(StepError::Data(format!(
                "url_filter: the input has no `{}` column (set url_column to the column holding URLs)",
                f.url_column
            )));
        };
        let Some(urls) = col.as_string_opt::<i32>().cloned() else {
            return Err(StepError::Data(format!(
                "url_filter: column `{}` is not a string column",
                f.url_column
            )));
        };
        for i in 0..batch.len() {
            let verdict = if urls.is_null(i) || urls.value(i).is_empty() {
                Some(MISSING_URL)
            } else {
                f.check(urls.value(i))
            };
            if let Some(r) = verdict {
                batch.drop_row(i, r);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(toml_src: &str) -> UrlFilter {
        let cfg: UrlFilterConfig = toml::from_str(toml_src).unwrap();
        UrlFilter::new(&cfg, Path::new(".")).unwrap()
    }

    #[test]
    fn reasons_in_order() {
        let f = filter(
            "extra_domains = ['bad.com', 'sub.example.org']\nextra_urls = ['https://ok.org/x']\n\
             banned_words = ['Casino']\nsoft_banned_words = ['cheap', 'pills']\nbanned_subwords = ['xyzzy']\n\
             use_integrated_lists = false",
        );
        assert_eq!(f.check("https://www.bad.com/page"), Some(0));
        assert_eq!(f.check("http://sub.example.org/a"), Some(1));
        assert_eq!(f.check("http://other.example.org/a"), None);
        assert_eq!(f.check("https://ok.org/x"), Some(2));
        assert_eq!(f.check("https://ok.org/casino-night"), Some(3));
        assert_eq!(
            f.check("https://ok.org/Casino-night"),
            None,
            "URL words keep their case"
        );
        assert_eq!(f.check("https://ok.org/cheap/pills"), Some(4));
        assert_eq!(f.check("https://ok.org/cheap"), None);
        assert_eq!(f.check("https://ok.org/a-XyZzY-b"), Some(5));
        assert_eq!(f.check("https://user@www.bad.com:8080/"), Some(0));
    }

    #[test]
    fn integrated_lists_load() {
        let f = filter("");
        assert!(f.banned_words.len() > 50 && f.soft_words.len() > 10);
        assert_eq!(f.check("https://en.wikipedia.org/wiki/Rust"), None);
    }

    #[test]
    fn missing_list_file_names_the_file() {
        let cfg: UrlFilterConfig = toml::from_str("domains_files = ['nope/domains.txt']").unwrap();
        let err = UrlFilter::new(&cfg, Path::new("/tmp")).unwrap_err();
        assert!(err.to_string().contains("/tmp/nope/domains.txt"), "{err}");
    }
}
