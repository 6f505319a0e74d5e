//! A synthetic *rubric* teacher: a 0–5 score that depends non-linearly on document-level
//! properties — prose versus lists, length, vocabulary richness, sentence structure, code and
//! table density — plus an interaction (explanatory cue words count only in prose) and seeded
//! label noise. It stands in for an LLM grading against an educational-value rubric, which reads
//! the whole document rather than counting words, so a bag of words alone cannot separate it:
//! the line structure it rewards is invisible once a document is flattened to a word list, and
//! the same words score differently in prose and in a list.
//!
//! The rule is fixed and documented here (tests and benchmarks rely on its exact values):
//!
//! ```text
//! prose   = bytes of prose lines / bytes of non-empty lines
//!           (a prose line has ≥ 8 words and ends in . ! ? : ; or a closing quote/bracket after one)
//! ttr     = distinct lowercased words / words, over the first 256 words
//! wps     = words / sentences           (a sentence ends at . ! ? followed by a space or the end)
//! symbols = share of bytes in  { } [ ] < > = / \ | _ # $ % ^ & * ~ ` @ +
//! digits  = share of bytes that are ASCII digits
//! cues    = distinct explanatory cue words present (CUE_WORDS, whole words, ASCII case-folded)
//!
//! q  = 2 · smoothstep(0.25, 0.75, prose)
//!    + (−1 if words < 50; 0 if < 150; 1 if ≤ 2,500; 0.5 if ≤ 8,000; else 0)
//!    + (if ≥ 100 words: 0.75 if 0.40 ≤ ttr < 0.75; −0.5 if ttr > 0.85; else 0)
//!    + (0.5 if 8 ≤ wps ≤ 35)
//!    + (0.4 · min(cues, 4) if prose > 0.5)
//!    − (1 if symbols > 0.04) − (0.75 if digits > 0.12)
//! score = clamp(round(q), 0, 5), then with probability `noise` (decided by a seeded hash of the
//!         text) moved one step up or down (within 0–5)
//! ```

use std::collections::HashSet;

use xxhash_rust::xxh3::xxh3_64_with_seed;

/// Explanatory cue words the rubric rewards in prose.
pub const CUE_WORDS: [&str; 12] = [
    "because",
    "therefore",
    "however",
    "example",
    "explain",
    "means",
    "instance",
    "important",
    "understand",
    "why",
    "learn",
    "describes",
];

/// Words of the first part of a document that the vocabulary-richness ratio looks at.
pub const TTR_WINDOW: u32 = 256;

/// Document-level properties the rubric reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DocProperties {
    /// Bytes of text.
    pub bytes: usize,
    /// Words (maximal runs of ASCII letters/digits and non-ASCII bytes).
    pub words: u32,
    /// Non-empty lines.
    pub lines: u32,
    /// Bytes of non-empty lines.
    pub line_bytes: usize,
    /// Lines that read as prose (≥ 8 words, ending in sentence punctuation).
    pub prose_lines: u32,
    /// Bytes of those lines.
    pub prose_bytes: usize,
    /// Sentence ends.
    pub sentences: u32,
    /// Distinct words among the first [`TTR_WINDOW`].
    pub distinct_first: u32,
    /// Bytes that are code/markup symbols.
    pub symbol_bytes: usize,
    /// Bytes that are ASCII digits.
    pub digit_bytes: usize,
    /// Distinct [`CUE_WORDS`] present.
    pub cues: u32,
}

impl DocProperties {
    /// Measures a text.
    pub fn of(text: &str) -> DocProperties {
        let mut p = DocProperties {
            bytes: text.len(),
            ..DocProperties::default()
        };
        let mut seen: HashSet<String> = HashSet::new();
        let mut cues: HashSet<&'static str> = HashSet::new();
        for line in text.split('\n') {
            let t = line.trim();
            if t.is_empty() {
                continue;
            }
            p.lines += 1;
            p.line_bytes += t.len();
            let mut line_words = 0u32;
            for w in t
                .split(|c: char| c.is_ascii() && !c.is_ascii_alphanumeric())
                .filter(|w| !w.is_empty())
            {
                line_words += 1;
                if p.words < TTR_WINDOW {
                    seen.insert(w.to_ascii_lowercase());
                }
                p.words += 1;
                if w.len() <= 10 {
                    let lw = w.to_ascii_lowercase();
                    if let Some(c) = CUE_WORDS.iter().find(|c| **c == lw) {
                        cues.insert(c);
                    }
                }
            }
            let end = t.trim_end_matches(['"', '\'', ')', ']', '”', '’']);
            if line_words >= 8 && end.ends_with(['.', '!', '?', ':', ';']) {
                p.prose_lines += 1;
                p.prose_bytes += t.len();
            }
        }
        let b = text.as_bytes();
        for (i, &c) in b.iter().enumerate() {
            if matches!(c, b'.' | b'!' | b'?')
                && i > 0
                && b[i - 1].is_ascii_alphanumeric()
                && b.get(i + 1).is_none_or(|n| n.is_ascii_whitespace())
            {
                p.sentences += 1;
            }
            if c.is_ascii_digit() {
                p.digit_bytes += 1;
            }
            if b"{}[]<>=/\\|_#$%^&*~`@+".contains(&c) {
                p.symbol_bytes += 1;
            }
        }
        p.distinct_first = seen.len() as u32;
        p.cues = cues.len() as u32;
        p
    }

    /// Share of non-empty line bytes in prose lines.
    pub fn prose(&self) -> f64 {
        ratio(self.prose_bytes as f64, self.line_bytes as f64)
    }

    /// Type-token ratio over the first [`TTR_WINDOW`] words.
    pub fn ttr(&self) -> f64 {
        ratio(
            self.distinct_first as f64,
            self.words.min(TTR_WINDOW) as f64,
        )
    }

    /// Words per sentence (all words when there is no sentence end).
    pub fn words_per_sentence(&self) -> f64 {
        self.words as f64 / self.sentences.max(1) as f64
    }

    /// The rubric's score before rounding and noise.
    pub fn quality(&self) -> f64 {
        let prose = self.prose();
        let mut q = 2.0 * smoothstep(0.25, 0.75, prose);
        q += match self.words {
            0..50 => -1.0,
            50..150 => 0.0,
            150..=2500 => 1.0,
            2501..=8000 => 0.5,
            _ => 0.0,
        };
        if self.words >= 100 {
            let ttr = self.ttr();
            q += if (0.40..0.75).contains(&ttr) {
                0.75
            } else if ttr > 0.85 {
                -0.5
            } else {
                0.0
            };
        }
        if (8.0..=35.0).contains(&self.words_per_sentence()) {
            q += 0.5;
        }
        if prose > 0.5 {
            q += 0.4 * self.cues.min(4) as f64;
        }
        let bytes = self.bytes.max(1) as f64;
        if self.symbol_bytes as f64 / bytes > 0.04 {
            q -= 1.0;
        }
        if self.digit_bytes as f64 / bytes > 0.12 {
            q -= 0.75;
        }
        q
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

fn smoothstep(lo: f64, hi: f64, x: f64) -> f64 {
    let t = ((x - lo) / (hi - lo)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// The rubric teacher with its label noise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RubricTeacher {
    /// Probability that a label is moved one step up or down.
    pub noise: f64,
    /// Seed of the hash that decides which labels are noisy (and in which direction).
    pub seed: u64,
}

impl Default for RubricTeacher {
    /// 12 % label noise, seed 15.
    fn default() -> Self {
        RubricTeacher {
            noise: 0.12,
            seed: 15,
        }
    }
}

impl RubricTeacher {
    /// The 0–5 score of a text.
    pub fn score(&self, text: &str) -> u32 {
        let clean = DocProperties::of(text).quality().round().clamp(0.0, 5.0) as i64;
        let h = xxh3_64_with_seed(text.as_bytes(), self.seed);
        let u = (h >> 11) as f64 / (1u64 << 53) as f64;
        let noisy = if u < self.noise {
            if h & 1 == 0 { clean + 1 } else { clean - 1 }
        } else {
            clean
        };
        noisy.clamp(0, 5) as u32
    }
}

/// The default rubric teacher's score of a text (12 % label noise): what the fake Anthropic
/// server answers with under [`crate::anthropic::FakeTeacher::Rubric`].
pub fn rubric_score(text: &str) -> u32 {
    RubricTeacher::default().score(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROSE: &str = "Rust is a language that helps you write faster, more reliable software. \
        High-level ergonomics and low-level control are often at odds in programming language design; \
        Rust challenges that conflict. Because it balances powerful technical capacity with a great \
        developer experience, it gives you the option to control low-level details without the hassle. \
        For example, memory usage is explicit, which is important when you want to understand why a \
        program is slow. This chapter describes the ideas you need to learn before you start.\n\n";

    #[test]
    fn prose_outscores_the_same_words_as_a_list() {
        let prose = PROSE.repeat(4);
        let list: String = prose
            .split_whitespace()
            .collect::<Vec<_>>()
            .chunks(3)
            .map(|c| format!("- {}\n", c.join(" ").trim_end_matches('.')))
            .collect();
        let (p, l) = (DocProperties::of(&prose), DocProperties::of(&list));
        assert_eq!(p.words, l.words, "same words");
        assert!(p.prose() > 0.9 && l.prose() == 0.0, "{p:?} {l:?}");
        assert!(p.cues >= 4, "{p:?}");
        let clean = RubricTeacher {
            noise: 0.0,
            seed: 0,
        };
        assert_eq!(clean.score(&prose), 5);
        assert!(clean.score(&list) <= 2, "{}", clean.score(&list));
    }

    #[test]
    fn properties_hand_checked() {
        let p = DocProperties::of("One two three four five six seven eight.\n\n- a\n- b = c{}\n");
        assert_eq!(
            (p.lines, p.prose_lines, p.words, p.sentences),
            (3, 1, 11, 1)
        );
        assert_eq!(p.symbol_bytes, 3);
        assert_eq!(p.distinct_first, 11);
        assert!((p.prose() - 40.0 / 52.0).abs() < 1e-12, "{}", p.prose());
    }

    #[test]
    fn noise_is_seeded_and_bounded() {
        let texts: Vec<String> = (0..2000).map(|i| format!("{PROSE} {i}")).collect();
        let t = RubricTeacher::default();
        let changed = texts
            .iter()
            .filter(|x| t.score(x) != RubricTeacher { noise: 0.0, ..t }.score(x))
            .count();
        // 12 % of labels move (binomial: 240 ± 15 of 2,000; the clean label here is inside 1–4,
        // so every noisy label moves).
        assert!((190..=290).contains(&changed), "{changed}");
        assert_eq!(
            texts.iter().map(|x| t.score(x)).collect::<Vec<_>>(),
            texts.iter().map(|x| rubric_score(x)).collect::<Vec<_>>()
        );
    }
}
