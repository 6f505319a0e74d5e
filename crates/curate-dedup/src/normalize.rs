//! Text normalization before hashing, in the spirit of datatrove's `simplify_text`.
//!
//! datatrove (`src/datatrove/utils/text.py`) lowercases, collapses whitespace, deletes a fixed
//! punctuation set (which includes most control characters), strips combining marks after NFD
//! decomposition and replaces every run of digits with `0`, then tokenizes the result into words.
//! [`Normalizer`] does the same in one streaming pass into a reused byte buffer, producing UTF-8 words
//! separated by single spaces. ASCII bytes go through a 256-entry table; only non-ASCII characters
//! take the Unicode path.
//!
//! Known, documented differences from datatrove: non-ASCII digits (from U+0660 on) are recognised
//! with `char::is_numeric` (a superset of Python's `\d`: it also takes e.g. circled numbers), combining marks of every
//! kind (Mn, Mc, Me) are stripped where Python strips only Mn, and words are split on whitespace
//! where datatrove runs a language word tokenizer (nltk's) on the simplified text; after
//! punctuation removal the two agree on ordinary prose.

use serde::{Deserialize, Serialize};

/// Which normalizations to apply. `full()` is datatrove's default set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NormFlags {
    /// Lowercase every character.
    pub lowercase: bool,
    /// Delete punctuation and control characters (datatrove's `PUNCTUATION` set).
    pub remove_punctuation: bool,
    /// Strip diacritics: NFD-decompose and drop combining marks.
    pub strip_diacritics: bool,
    /// Replace every run of digits with a single `0`.
    pub normalize_digits: bool,
}

impl NormFlags {
    /// datatrove's `simplify_text` defaults: everything on.
    pub const fn full() -> Self {
        Self {
            lowercase: true,
            remove_punctuation: true,
            strip_diacritics: true,
            normalize_digits: true,
        }
    }

    /// Whitespace collapsing only.
    pub const fn whitespace() -> Self {
        Self {
            lowercase: false,
            remove_punctuation: false,
            strip_diacritics: false,
            normalize_digits: false,
        }
    }
}

/// Text normalization choices offered to users of `exact_dedup`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum TextNormalization {
    /// Hash the raw text bytes: only byte-identical documents are duplicates.
    None,
    /// Trim and collapse every run of whitespace to one space.
    Whitespace,
    /// Whitespace, plus lowercase.
    Lowercase,
    /// datatrove's `simplify_text`: lowercase, punctuation removed, diacritics stripped, digit runs
    /// replaced by `0`, whitespace collapsed.
    #[default]
    Full,
}

impl TextNormalization {
    /// The flags this choice stands for (`None` for raw bytes).
    pub fn flags(self) -> Option<NormFlags> {
        match self {
            TextNormalization::None => None,
            TextNormalization::Whitespace => Some(NormFlags::whitespace()),
            TextNormalization::Lowercase => Some(NormFlags {
                lowercase: true,
                ..NormFlags::whitespace()
            }),
            TextNormalization::Full => Some(NormFlags::full()),
        }
    }
}

/// datatrove's punctuation set (non-control part); control characters are handled by class.
const PUNCT_ASCII: &[u8] = b"!/:&(\\#%+^]~';{|[=-`*$,><)?@_.\"}";

/// Byte classes of the ASCII fast path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Letters and any other kept symbol.
    Keep,
    /// Uppercase letter (lowered when lowercasing).
    Upper,
    /// Decimal digit.
    Digit,
    /// Whitespace (Python's `\s` for ASCII: 9–13, 28–31, 32).
    Space,
    /// Punctuation or control character (deleted when removing punctuation).
    Punct,
    /// Control character that is not whitespace (deleted when removing punctuation).
    Control,
}

const fn ascii_table() -> [Class; 128] {
    let mut t = [Class::Keep; 128];
    let mut i = 0;
    while i < 128 {
        let b = i as u8;
        t[i] = if b.is_ascii_uppercase() {
            Class::Upper
        } else if b.is_ascii_digit() {
            Class::Digit
        } else if (b >= 9 && b <= 13) || (b >= 28 && b <= 32) {
            Class::Space
        } else if b < 32 || b == 127 {
            Class::Control
        } else {
            Class::Keep
        };
        i += 1;
    }
    let mut j = 0;
    while j < PUNCT_ASCII.len() {
        t[PUNCT_ASCII[j] as usize] = Class::Punct;
        j += 1;
    }
    t
}

static ASCII: [Class; 128] = ascii_table();

const SPACE: u8 = 0x80;
const DROP: u8 = 0x81;
const DIGIT: u8 = 0x82;
const UNICODE: u8 = 0x83;

/// A reusable normalizer: `normalize` writes words separated by single spaces into `out`.
#[derive(Debug, Clone)]
pub struct Normalizer {
    flags: NormFlags,
    /// Per byte: the byte to emit (< 0x80), or one of SPACE / DROP / DIGIT / UNICODE.
    table: [u8; 256],
    /// Direct-mapped cache of non-ASCII characters' output (lowercased, decomposed, marks and
    /// punctuation removed): (char, length, UTF-8 bytes). Characters whose output holds a digit
    /// or whitespace are never cached (they change the digit-run and spacing state).
    cache: Box<[(u32, u8, [u8; 15]); 256]>,
}

impl Normalizer {
    /// A normalizer applying `flags` (whitespace is always collapsed).
    pub fn new(flags: NormFlags) -> Self {
        let mut table = [UNICODE; 256];
        for (b, slot) in table.iter_mut().enumerate().take(128) {
            *slot = match ASCII[b] {
                Class::Space => SPACE,
                Class::Punct | Class::Control if flags.remove_punctuation => DROP,
                Class::Digit if flags.normalize_digits => DIGIT,
                Class::Upper if flags.lowercase => (b as u8).to_ascii_lowercase(),
                _ => b as u8,
            };
        }
        Self {
            flags,
            table,
            cache: Box::new([(0, 0, [0; 15]); 256]),
        }
    }

    /// Normalizes `text` into `out` (cleared first): UTF-8 words separated by single spaces, no
    /// leading or trailing space.
    pub fn normalize(&mut self, text: &str, out: &mut Vec<u8>) {
        out.clear();
        out.reserve(text.len());
        // State: whether a space is pending before the next kept character, and whether the last
        // kept character ended a digit run.
        let mut pending_space = false;
        let mut in_digits = false;
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            let act = self.table[b as usize];
            if act < 0x80 {
                if pending_space {
                    if !out.is_empty() {
                        out.push(b' ');
                    }
                    pending_space = false;
                }
                out.push(act);
                in_digits = false;
                i += 1;
                continue;
            }
            match act {
                SPACE => {
                    pending_space = true;
                    in_digits = false;
                    i += 1;
                }
                DROP => i += 1,
                DIGIT => {
                    if !in_digits || pending_space {
                        push_pending(out, &mut pending_space);
                        out.push(b'0');
                        in_digits = true;
                    }
                    i += 1;
                }
                _ => {
                    // Non-ASCII: decode one char (i is always on a char boundary here).
                    let c = text[i..].chars().next().expect("char boundary");
                    i += c.len_utf8();
                    let slot = c as usize & 255;
                    if self.cache[slot].0 != c as u32 {
                        match self.map_char(c) {
                            Some((bytes, len)) => self.cache[slot] = (c as u32, len, bytes),
                            None => {
                                self.push_unicode(c, out, &mut pending_space, &mut in_digits);
                                continue;
                            }
                        }
                    }
                    let (_, len, bytes) = &self.cache[slot];
                    if *len > 0 {
                        push_pending(out, &mut pending_space);
                        out.extend_from_slice(&bytes[..*len as usize]);
                        in_digits = false;
                    }
                }
            }
        }
    }

    /// [`normalize`](Self::normalize) into a `String` (convenience for tests and tools).
    pub fn normalize_to_string(&mut self, text: &str) -> String {
        let mut v = Vec::new();
        self.normalize(text, &mut v);
        String::from_utf8(v).expect("normalizer emits UTF-8")
    }

    /// The output of a non-ASCII character that is not whitespace and yields no digit, or `None`.
    fn map_char(&self, c: char) -> Option<([u8; 15], u8)> {
        let f = self.flags;
        let mut buf = [0u8; 15];
        let mut len = 0usize;
        let mut ok = true;
        {
            let mut one = |d: char| {
                if !ok || (f.remove_punctuation && is_punct_unicode(d)) {
                    return;
                }
                if f.strip_diacritics && unicode_normalization::char::is_combining_mark(d) {
                    return;
                }
                let digit = f.normalize_digits
                    && (d.is_ascii_digit() || (d as u32 >= 0x660 && d.is_numeric()));
                let n = d.len_utf8();
                if digit || d.is_whitespace() || len + n > buf.len() {
                    ok = false;
                    return;
                }
                d.encode_utf8(&mut buf[len..len + n]);
                len += n;
            };
            let mut emit = |d: char| {
                if f.strip_diacritics && !d.is_ascii() {
                    unicode_normalization::char::decompose_canonical(d, &mut one);
                } else {
                    one(d);
                }
            };
            if f.lowercase {
                for l in c.to_lowercase() {
                    emit(l);
                }
            } else {
                emit(c);
            }
        }
        ok.then_some((buf, len as u8))
    }

    #[cold]
    fn push_unicode(
        &self,
        c: char,
        out: &mut Vec<u8>,
        pending_space: &mut bool,
        in_digits: &mut bool,
    ) {
        let f = self.flags;
        if c.is_whitespace() {
            *pending_space = true;
            *in_digits = false;
            return;
        }
        if f.remove_punctuation && is_punct_unicode(c) {
            return;
        }
        let mut push_one = |d: char, out: &mut Vec<u8>| {
            if f.remove_punctuation && is_punct_unicode(d) {
                return;
            }
            if f.strip_diacritics && unicode_normalization::char::is_combining_mark(d) {
                return;
            }
            // No decimal digit (Python's `\d`) exists between ASCII and U+0660; skipping that range
            // also keeps `²` and `½` (numeric but not decimal) as Python does.
            if f.normalize_digits && (d.is_ascii_digit() || (d as u32 >= 0x660 && d.is_numeric())) {
                if *in_digits && !*pending_space {
                    return;
                }
                *in_digits = true;
                push_pending(out, pending_space);
                out.push(b'0');
                return;
            }
            *in_digits = false;
            push_pending(out, pending_space);
            let mut buf = [0u8; 4];
            out.extend_from_slice(d.encode_utf8(&mut buf).as_bytes());
        };
        let mut emit = |d: char, out: &mut Vec<u8>| {
            if f.strip_diacritics && !d.is_ascii() {
                unicode_normalization::char::decompose_canonical(d, |e| push_one(e, out));
            } else {
                push_one(d, out);
            }
        };
        if f.lowercase {
            for l in c.to_lowercase() {
                emit(l, out);
            }
        } else {
            emit(c, out);
        }
    }
}

#[inline]
fn push_pending(out: &mut Vec<u8>, pending_space: &mut bool) {
    if *pending_space {
        if !out.is_empty() {
            out.push(b' ');
        }
        *pending_space = false;
    }
}

/// datatrove's non-ASCII punctuation (and C1 controls), as a `match` the compiler turns into a
/// few range checks.
#[inline]
fn is_punct_unicode(c: char) -> bool {
    matches!(
        c,
        '\u{7f}'
            ..='\u{9f}'
                | '—'
                | '”'
                | '％'
                | '１'
                | '〈'
                | '、'
                | '━'
                | '【'
                | '「'
                | '」'
                | '，'
                | '】'
                | '；'
                | '“'
                | '《'
                | '„'
                | '’'
                | '∶'
                | '´'
                | '．'
                | '（'
                | '–'
                | '？'
                | '！'
                | '：'
                | '～'
                | '«'
                | '〉'
                | '》'
                | '）'
                | '。'
                | '…'
                | '►'
                | '»'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(s: &str) -> String {
        Normalizer::new(NormFlags::full()).normalize_to_string(s)
    }

    #[test]
    fn matches_datatrove_simplify_text() {
        // Expected values computed by hand from datatrove's simplify_text semantics.
        assert_eq!(full("  Hello,   World!  "), "hello world");
        assert_eq!(full("Café déjà vu"), "cafe deja vu");
        assert_eq!(full("It costs $1,000.50 in 2024"), "it costs 0 in 0");
        assert_eq!(full("a - b"), "a b");
        assert_eq!(full("e-mail co-op"), "email coop");
        assert_eq!(full("line\nbreak\ttab\r\n"), "line break tab");
        assert_eq!(full("「日本語」テキスト"), "日本語テキスト");
        assert_eq!(full("ÉCOLE Ñandú"), "ecole nandu");
        assert_eq!(full("abc123def 4 5"), "abc0def 0 0");
        assert_eq!(full("don’t can't"), "dont cant");
        assert_eq!(full("x² ½ ٣٤ ١٢a"), "x² ½ 0 0a");
        assert_eq!(full("“Quoted” — dash… «fr»"), "quoted dash fr");
        assert_eq!(full(""), "");
        assert_eq!(full(" !!! "), "");
    }

    #[test]
    fn cache_gives_the_slow_path_output() {
        let text = "Ça «marche» — Æsir ǅemal ﬁne İstanbul ß Ω ٣٤ x² 中文，日本語！ Ǆ ǆ café ÇA ﬁ";
        let cold = full(text);
        let mut warm = Normalizer::new(NormFlags::full());
        for _ in 0..3 {
            assert_eq!(warm.normalize_to_string(text), cold);
        }
        assert_eq!(
            cold,
            "ca marche æsir ǆemal ﬁne istanbul ß ω 0 x² 中文日本語 ǆ ǆ cafe ca ﬁ"
        );
    }

    #[test]
    fn whitespace_only_keeps_case_and_punctuation() {
        let out = Normalizer::new(NormFlags::whitespace()).normalize_to_string("  A,  b\n\nC. ");
        assert_eq!(out, "A, b C.");
    }
}
