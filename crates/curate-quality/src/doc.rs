//! Document-level properties the student reads beside its bag of words: length, line
//! structure, punctuation, word shape, vocabulary richness — the kind of things the heuristic
//! filters (Gopher, C4, FineWeb) compute. One pass over the bytes, no allocation.
//!
//! They are what a bag of words cannot see: whether a document is prose or a list, how long its
//! lines and sentences are, how much of it is digits, symbols or markup. The model turns each
//! into a learnt, non-linear shape function (quantile bins, see `model.rs`).

/// Number of document features ([`DocStats::features`]).
pub const N_DOC: usize = 20;

/// Names of the document features, in [`DocStats::features`] order (model files and
/// `model inspect` use them).
pub const DOC_FEATURE_NAMES: [&str; N_DOC] = [
    "log_bytes",
    "log_words",
    "mean_word_len",
    "prose_byte_share",
    "prose_line_share",
    "short_line_share",
    "bullet_line_share",
    "log_words_per_line",
    "log_words_per_sentence",
    "type_token_ratio",
    "digit_share",
    "symbol_share",
    "punct_share",
    "upper_share",
    "non_ascii_share",
    "blank_line_share",
    "log_lines",
    "punct_end_line_share",
    "long_word_share",
    "stop_word_share",
];

// Byte kinds (bit flags).
const WORD: u8 = 1;
const NL: u8 = 2;
const SPACE: u8 = 4;
const END: u8 = 8; // . ! ?
const DIGIT: u8 = 16;
const SYMBOL: u8 = 32; // code / markup symbols
const PUNCT: u8 = 64; // , ; : ' " ( ) and END
const UPPER: u8 = 128;

static KIND: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let mut k = 0u8;
        if b.is_ascii_alphanumeric() || b >= 0x80 {
            k |= WORD;
        }
        if b == b'\n' {
            k |= NL | SPACE;
        }
        if b == b' ' || b == b'\t' || b == b'\r' || b == 0x0b || b == 0x0c {
            k |= SPACE;
        }
        if b == b'.' || b == b'!' || b == b'?' {
            k |= END | PUNCT;
        }
        if b.is_ascii_digit() {
            k |= DIGIT;
        }
        if b.is_ascii_uppercase() {
            k |= UPPER;
        }
        if matches!(b, b',' | b';' | b':' | b'\'' | b'"' | b'(' | b')') {
            k |= PUNCT;
        }
        if matches!(
            b,
            b'{' | b'}'
                | b'['
                | b']'
                | b'<'
                | b'>'
                | b'='
                | b'/'
                | b'\\'
                | b'|'
                | b'_'
                | b'#'
                | b'$'
                | b'%'
                | b'^'
                | b'&'
                | b'*'
                | b'~'
                | b'`'
                | b'@'
                | b'+'
        ) {
            k |= SYMBOL;
        }
        t[i] = k;
        i += 1;
    }
    t
};

/// A few very common English function words: their share of words tells running English text
/// from lists, code and other languages. Packed as [`pack`] packs a word.
const STOP_WORDS: [u32; 12] = [
    pack(b"the"),
    pack(b"and"),
    pack(b"of"),
    pack(b"to"),
    pack(b"a"),
    pack(b"in"),
    pack(b"is"),
    pack(b"that"),
    pack(b"for"),
    pack(b"it"),
    pack(b"with"),
    pack(b"as"),
];

/// A word of at most 4 bytes as a u32: its bytes, ASCII-lowercased, big-endian. Word bytes are
/// never 0, so distinct words give distinct values.
const fn pack(w: &[u8]) -> u32 {
    let mut k = 0u32;
    let mut i = 0;
    while i < w.len() {
        k = (k << 8) | w[i].to_ascii_lowercase() as u32;
        i += 1;
    }
    k
}

const TTR_WINDOW: u32 = 256;
const TTR_BITS: usize = 2048;

/// Raw counts of one document.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DocStats {
    bytes: u32,
    words: u32,
    word_bytes: u32,
    long_words: u32,
    stop_words: u32,
    lines: u32,
    blank_lines: u32,
    line_bytes: u32,
    prose_lines: u32,
    prose_bytes: u32,
    short_lines: u32,
    bullet_lines: u32,
    punct_end_lines: u32,
    sentences: u32,
    digits: u32,
    symbols: u32,
    puncts: u32,
    uppers: u32,
    non_ascii: u32,
    ttr_words: u32,
    ttr_zero_bits: u32,
}

#[inline(always)]
fn is_stop(word: &[u8]) -> bool {
    word.len() <= 4 && {
        let k = pack(word);
        STOP_WORDS.iter().fold(false, |acc, s| acc | (*s == k))
    }
}

impl DocStats {
    /// Measures `text` in one pass.
    pub fn of(text: &[u8]) -> DocStats {
        let mut s = DocStats {
            bytes: text.len().min(u32::MAX as usize) as u32,
            ..DocStats::default()
        };
        let mut seen = [0u64; TTR_BITS / 64];
        // Line state.
        let (mut line_start, mut line_words, mut first_ns, mut last_ns) = (0usize, 0u32, 0u8, 0u8);
        let mut line_first_ns_pos = usize::MAX;
        // Word state.
        let mut word_start = usize::MAX;
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut prev_kind = 0u8;
        // Byte counts: the digit, symbol, punctuation, uppercase and non-ASCII shares are read
        // from them at the end (one increment per byte instead of five).
        let mut hist = [0u32; 256];
        let end_line = |s: &mut DocStats, i: usize, lw: u32, first: u8, last: u8, fpos| {
            if lw == 0 && first == 0 {
                s.blank_lines += 1;
                return;
            }
            let len = (i - fpos) as u32;
            s.lines += 1;
            s.line_bytes += len;
            let ends =
                KIND[last as usize] & END != 0 || matches!(last, b':' | b';' | b'"' | b'\'' | b')');
            if ends {
                s.punct_end_lines += 1;
            }
            if lw >= 8 && ends {
                s.prose_lines += 1;
                s.prose_bytes += len;
            }
            if lw <= 3 {
                s.short_lines += 1;
            }
            if matches!(first, b'-' | b'*' | b'+' | b'#' | b'|' | b'>') || first == 0xe2 {
                // 0xe2: the lead byte of • ‣ – — and friends.
                s.bullet_lines += 1;
            }
        };
        for (i, &b) in text.iter().enumerate() {
            let k = KIND[b as usize];
            hist[b as usize] += 1;
            if k & WORD != 0 {
                if word_start == usize::MAX {
                    word_start = i;
                    h = 0xcbf2_9ce4_8422_2325;
                }
                // only the first TTR_WINDOW words are hashed (for the type-token ratio)
                if s.ttr_words < TTR_WINDOW {
                    h = (h ^ b.to_ascii_lowercase() as u64).wrapping_mul(0x100_0000_01b3);
                }
            } else if word_start != usize::MAX {
                s.end_word(&text[word_start..i], h, &mut seen);
                line_words += 1;
                word_start = usize::MAX;
                if k & END != 0 && prev_kind & WORD != 0 {
                    let next = text.get(i + 1).copied().unwrap_or(b' ');
                    s.sentences += (KIND[next as usize] & SPACE != 0) as u32;
                }
            }
            if k & SPACE == 0 {
                if first_ns == 0 {
                    first_ns = b;
                    line_first_ns_pos = i;
                }
                last_ns = b;
            }
            if k & NL != 0 {
                let fpos = if line_first_ns_pos == usize::MAX {
                    i
                } else {
                    line_first_ns_pos
                };
                end_line(&mut s, i, line_words, first_ns, last_ns, fpos);
                line_start = i + 1;
                line_words = 0;
                first_ns = 0;
                last_ns = 0;
                line_first_ns_pos = usize::MAX;
            }
            prev_kind = k;
        }
        if word_start != usize::MAX {
            s.end_word(&text[word_start..], h, &mut seen);
            line_words += 1;
            if prev_kind & WORD != 0 {
                // a final word with no punctuation after it: no sentence end
            }
        }
        if line_start < text.len() {
            let fpos = if line_first_ns_pos == usize::MAX {
                text.len()
            } else {
                line_first_ns_pos
            };
            end_line(&mut s, text.len(), line_words, first_ns, last_ns, fpos);
        }
        for (b, &n) in hist.iter().enumerate() {
            let k = KIND[b];
            s.digits += n * (k & DIGIT != 0) as u32;
            s.symbols += n * (k & SYMBOL != 0) as u32;
            s.puncts += n * (k & PUNCT != 0) as u32;
            s.uppers += n * (k & UPPER != 0) as u32;
            s.non_ascii += n * (b >= 0x80) as u32;
        }
        s.ttr_zero_bits = seen.iter().map(|w| w.count_zeros()).sum();
        s
    }

    #[inline(always)]
    fn end_word(&mut self, w: &[u8], h: u64, seen: &mut [u64; TTR_BITS / 64]) {
        self.words += 1;
        self.word_bytes += w.len() as u32;
        self.long_words += (w.len() >= 15) as u32;
        self.stop_words += is_stop(w) as u32;
        if self.ttr_words < TTR_WINDOW {
            self.ttr_words += 1;
            let x = h.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 53; // 11 bits
            seen[(x >> 6) as usize] |= 1 << (x & 63);
        }
    }

    /// The document features, in [`DOC_FEATURE_NAMES`] order.
    pub fn features(&self) -> [f32; N_DOC] {
        let r = |a: u32, b: u32| if b > 0 { a as f32 / b as f32 } else { 0.0 };
        let ln1 = |x: f32| (1.0 + x).ln();
        // Linear counting: distinct words among the first TTR_WINDOW from the zero bits.
        let distinct = if self.ttr_words == 0 {
            0.0
        } else {
            let zero = (self.ttr_zero_bits.max(1)) as f32 / TTR_BITS as f32;
            -(TTR_BITS as f32) * zero.ln()
        };
        let letters_ish = self.word_bytes.max(1);
        [
            ln1(self.bytes as f32),
            ln1(self.words as f32),
            r(self.word_bytes, self.words),
            r(self.prose_bytes, self.line_bytes),
            r(self.prose_lines, self.lines),
            r(self.short_lines, self.lines),
            r(self.bullet_lines, self.lines),
            ln1(r(self.words, self.lines)),
            ln1(self.words as f32 / self.sentences.max(1) as f32),
            if self.ttr_words > 0 {
                (distinct / self.ttr_words as f32).min(1.0)
            } else {
                0.0
            },
            r(self.digits, self.bytes),
            r(self.symbols, self.bytes),
            r(self.puncts, self.bytes),
            r(self.uppers, letters_ish),
            r(self.non_ascii, self.bytes),
            r(self.blank_lines, self.lines + self.blank_lines),
            ln1(self.lines as f32),
            r(self.punct_end_lines, self.lines),
            r(self.long_words, self.words),
            r(self.stop_words, self.words),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_checked_counts() {
        let s = DocStats::of(b"The cat sat on the mat and then it slept.\n\n- one\n- two = 2\n");
        assert_eq!(s.lines, 3);
        assert_eq!(s.blank_lines, 1);
        assert_eq!(s.prose_lines, 1);
        assert_eq!(s.bullet_lines, 2);
        assert_eq!(s.short_lines, 2);
        assert_eq!(s.words, 13);
        assert_eq!(s.sentences, 1);
        assert_eq!(s.stop_words, 4); // The, the, and, it
        assert_eq!(s.digits, 1);
        assert_eq!(s.symbols, 1);
        let f = s.features();
        assert_eq!(f.len(), N_DOC);
        assert!((f[4] - 1.0 / 3.0).abs() < 1e-6);
        // 12 distinct words of 13 ("the" twice): linear counting is close.
        assert!((f[9] - 12.0 / 13.0).abs() < 0.03, "{}", f[9]);
        assert_eq!(DocStats::of(b"").features()[0], 0.0);
    }
}
