//! spaCy's sentencizer, counting sentences over the splitter's tokens or over given words.

use super::*;

/// [`WordSplitter::count_sentences`] of the text spanned by `words`, from its words alone:
/// `words` are the consecutive words ([`WordSplitter::split`]) of a stretch of `text` that
/// starts at the first word and ends at the last one (e.g. a stripped line; tokens never cross
/// whitespace, so a line's words are the text's words inside it).
///
/// The whitespace tokens `count_sentences` also sees are the gaps between two words other than
/// none or a single `' '` (spaCy absorbs one space after a token); they are replayed from the
/// gaps.
pub fn count_sentences_in_words(text: &str, words: &[Span]) -> usize {
    let tb = &*TABLES;
    let b = text.as_bytes();
    let mut st = Sentencizer::default();
    let mut prev_end = None;
    for &(s, e) in words {
        let (s, e) = (s as usize, e as usize);
        if let Some(p) = prev_end
            && s > p
            && !(s == p + 1 && b[p] == b' ')
        {
            st.space();
        }
        st.word(tb, &text[s..e]);
        prev_end = Some(e);
    }
    st.finish()
}

/// spaCy's sentencizer as a counter over tokens: a sentence ends before the first token after
/// a sentence-final punctuation token that is neither such a token nor punctuation; sentences
/// of whitespace tokens only are not counted.
#[derive(Default)]
pub(super) struct Sentencizer {
    sentences: usize,
    seen_period: bool,
    /// The current sentence has a non-space token.
    content: bool,
}

impl Sentencizer {
    /// A whitespace token (never sentence-final punctuation nor punctuation).
    #[inline]
    pub(super) fn space(&mut self) {
        if self.seen_period {
            self.sentences += self.content as usize;
            self.content = false;
            self.seen_period = false;
        }
    }

    /// A token with a non-space character.
    #[inline]
    pub(super) fn word(&mut self, tb: &Tables, tok: &str) {
        let in_punct = is_single_in(tok, &tb.sent_punct);
        if self.seen_period && !in_punct && !is_punct_token(tok) {
            self.sentences += self.content as usize;
            self.seen_period = false;
        } else if in_punct {
            self.seen_period = true;
        }
        self.content = true;
    }

    pub(super) fn finish(self) -> usize {
        self.sentences + self.content as usize
    }
}
