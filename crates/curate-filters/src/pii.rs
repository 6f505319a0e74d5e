//! `pii`: replaces email addresses and public IP addresses with placeholders, as datatrove
//! 0.10.1's `PIIFormatter` does.

use std::net::Ipv4Addr;

use curate_core::{BuildEnv, Problems, Step, StepError, StepSpec};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::filter::{Doc, FilterStep, TextFilter, Verdict};

/// Replaces email addresses and IPv4 addresses in the text with placeholder values.
///
/// Why: web text carries personal data; FineWeb ends its recipe with this step. The placeholders
/// are real-looking but inert (`example.com` / `example.org` addresses, IPs that did not answer
/// pings), so the text stays natural.
///
/// Matching follows datatrove 0.10.1's regular expressions; an IP is replaced only when it is a
/// valid dotted quad (no leading zeros) and, with `only_remove_public_ips`, globally routable
/// (Python 3.11's `ipaddress.is_global`). Replacements are used in turn from each list. Unlike
/// datatrove, whose turn counter runs across documents (so output depends on how documents are
/// split between workers), the turn restarts at every document: output is deterministic.
///
/// Example:
///
/// ```toml
/// [[steps]]
/// type = "pii"
/// email_replacement = ["<email>"]
/// ```
///
/// Never drops documents.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PiiConfig {
    /// Replace email addresses.
    #[serde(default = "yes")]
    pub remove_emails: bool,
    /// Replace IPv4 addresses.
    #[serde(default = "yes")]
    pub remove_ips: bool,
    /// Replace only globally routable IP addresses (private, loopback, documentation and
    /// reserved ranges are left alone).
    #[serde(default = "yes")]
    pub only_remove_public_ips: bool,
    /// Replacement values for emails, used in turn.
    #[serde(default = "d_email")]
    pub email_replacement: Vec<String>,
    /// Replacement values for IP addresses, used in turn.
    #[serde(default = "d_ip")]
    pub ip_replacement: Vec<String>,
}

fn yes() -> bool {
    true
}
fn d_email() -> Vec<String> {
    vec![
        "email@example.com".into(),
        "firstname.lastname@example.org".into(),
    ]
}
fn d_ip() -> Vec<String> {
    [
        "22.214.171.124",
        "126.96.36.199",
        "188.8.131.52",
        "184.108.40.206",
        "220.127.116.11",
        "18.104.22.168",
    ]
    .map(String::from)
    .to_vec()
}

impl Default for PiiConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults")
    }
}

const EMAIL: &str = r"\b[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@(?:(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?|\[(?:(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)\.){3}(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?|[A-Za-z0-9-]*[A-Za-z0-9]:)\])";
const IP: &str =
    r"(?:(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)\.){3}(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)";

impl StepSpec for PiiConfig {
    const TYPE: &'static str = "pii";

    fn validate(&self, problems: &mut Problems) {
        if self.remove_emails && self.email_replacement.is_empty() {
            problems.push(
                "email_replacement",
                "is empty; give at least one replacement",
            );
        }
        if self.remove_ips && self.ip_replacement.is_empty() {
            problems.push("ip_replacement", "is empty; give at least one replacement");
        }
    }

    fn build(&self, _env: &BuildEnv) -> Result<Box<dyn Step>, StepError> {
        Ok(FilterStep::boxed(Pii::new(self.clone())))
    }
}

/// The runtime formatter.
#[derive(Debug)]
pub struct Pii {
    cfg: PiiConfig,
    email: regex::Regex,
    ip: regex::Regex,
}

impl Pii {
    /// Builds the formatter from its config.
    pub fn new(cfg: PiiConfig) -> Self {
        Self {
            cfg,
            email: regex::Regex::new(EMAIL).expect("email regex"),
            ip: regex::Regex::new(IP).expect("ip regex"),
        }
    }
}

/// Python 3.11's `IPv4Address.is_global`.
pub fn is_global(ip: Ipv4Addr) -> bool {
    let v = u32::from(ip);
    let nets: [(u32, u32); 15] = [
        (0x0000_0000, 8),
        (0x0A00_0000, 8),
        (0x7F00_0000, 8),
        (0xA9FE_0000, 16),
        (0xAC10_0000, 12),
        (0xC000_0000, 29),
        (0xC000_00AA, 31),
        (0xC000_0200, 24),
        (0xC0A8_0000, 16),
        (0xC612_0000, 15),
        (0xC633_6400, 24),
        (0xCB00_7100, 24),
        (0xF000_0000, 4),
        (0xFFFF_FFFF, 32),
        (0x6440_0000, 10), // 100.64.0.0/10: shared address space, not global either
    ];
    !nets.iter().any(|&(net, len)| (v ^ net) >> (32 - len) == 0)
}

/// Parses a dotted quad as Python's `ipaddress.ip_address` does (no leading zeros).
fn parse_ipv4(s: &str) -> Option<Ipv4Addr> {
    let mut o = [0u8; 4];
    let mut parts = s.split('.');
    for x in &mut o {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 3 || (p.len() > 1 && p.starts_with('0')) {
            return None;
        }
        *x = p.parse().ok()?;
    }
    parts.next().is_none().then(|| Ipv4Addr::from(o))
}

/// Reusable working memory.
#[derive(Debug, Default)]
pub struct Scratch {
    buf: String,
}

impl TextFilter for Pii {
    type Scratch = Scratch;

    fn kind(&self) -> &'static str {
        PiiConfig::TYPE
    }

    fn reasons(&self) -> &[&'static str] {
        &[]
    }

    fn check(&self, doc: Doc<'_>, sc: &mut Scratch, out: &mut String) -> Verdict {
        let c = &self.cfg;
        let mut text = doc.text;
        let mut changed = false;
        if c.remove_emails && memchr::memchr(b'@', text.as_bytes()).is_some() {
            let mut last = 0usize;
            for (turn, m) in self.email.find_iter(text).enumerate() {
                if last == 0 && !changed {
                    out.clear();
                }
                out.push_str(&text[last..m.start()]);
                out.push_str(&c.email_replacement[turn % c.email_replacement.len()]);
                last = m.end();
                changed = true;
            }
            if changed {
                out.push_str(&text[last..]);
                std::mem::swap(&mut sc.buf, out);
                text = &sc.buf;
            }
        }
        if c.remove_ips
            && text
                .as_bytes()
                .windows(2)
                .any(|w| w[0] == b'.' && w[1].is_ascii_digit())
        {
            let mut turn = 0usize;
            let mut last = 0usize;
            let mut any = false;
            out.clear();
            for m in self.ip.find_iter(text) {
                let valid = parse_ipv4(m.as_str())
                    .is_some_and(|ip| !c.only_remove_public_ips || is_global(ip));
                if !valid {
                    continue;
                }
                out.push_str(&text[last..m.start()]);
                out.push_str(&c.ip_replacement[turn % c.ip_replacement.len()]);
                turn += 1;
                last = m.end();
                any = true;
            }
            if any {
                out.push_str(&text[last..]);
                return Verdict::Rewrite;
            }
        }
        if changed {
            out.clear();
            out.push_str(&sc.buf);
            return Verdict::Rewrite;
        }
        Verdict::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::FilterProcessor;
    use std::sync::Arc;

    fn redact(cfg: PiiConfig, text: &str) -> String {
        let mut p = FilterProcessor::new(Arc::new(Pii::new(cfg)));
        let (v, out) = p.check(text, 0);
        if v == Verdict::Rewrite {
            out.to_string()
        } else {
            text.to_string()
        }
    }

    #[test]
    fn emails_and_public_ips() {
        let t = "Mail jane.doe@corp.example.net or bob@x.io; server 8.8.8.8, lan 192.168.1.20, odd 010.1.1.1.";
        assert_eq!(
            redact(PiiConfig::default(), t),
            "Mail email@example.com or firstname.lastname@example.org; server 22.214.171.124, lan 192.168.1.20, odd 010.1.1.1."
        );
        let all = PiiConfig {
            only_remove_public_ips: false,
            ..PiiConfig::default()
        };
        assert!(redact(all, "lan 192.168.1.20").contains("22.214.171.124"));
        let none = PiiConfig {
            remove_emails: false,
            remove_ips: false,
            ..PiiConfig::default()
        };
        assert_eq!(redact(none, t), t);
    }

    #[test]
    fn global_ranges() {
        assert!(is_global(Ipv4Addr::new(8, 8, 8, 8)));
        assert!(!is_global(Ipv4Addr::new(100, 64, 0, 1)));
        assert!(!is_global(Ipv4Addr::new(172, 31, 255, 255)));
        assert!(is_global(Ipv4Addr::new(172, 32, 0, 1)));
        assert!(!is_global(Ipv4Addr::new(255, 255, 255, 255)));
        assert_eq!(parse_ipv4("01.2.3.4"), None);
    }
}
