//! No filter panics on any UTF-8 input, and every script is handled sensibly: CJK, Thai,
//! Arabic, combining marks, emoji, control characters.

use std::sync::Arc;

use curate_filters::c4_quality::{C4Quality, C4QualityConfig};
use curate_filters::filter::{FilterProcessor, TextFilter, Verdict};
use curate_filters::fineweb_quality::FineWebQuality;
use curate_filters::gopher_quality::GopherQuality;
use curate_filters::gopher_repetition::GopherRepetition;
use curate_filters::pii::Pii;
use curate_filters::words::WordSplitter;
use proptest::prelude::*;

struct All {
    gq: FilterProcessor<GopherQuality>,
    gr: FilterProcessor<GopherRepetition>,
    c4: FilterProcessor<C4Quality>,
    fw: FilterProcessor<FineWebQuality>,
    pii: FilterProcessor<Pii>,
    words: WordSplitter,
    spans: Vec<(u32, u32)>,
}

impl All {
    fn new() -> Self {
        Self {
            gq: FilterProcessor::new(Arc::new(GopherQuality::new(Default::default()))),
            gr: FilterProcessor::new(Arc::new(GopherRepetition::new(Default::default()))),
            c4: FilterProcessor::new(Arc::new(C4Quality::new(C4QualityConfig::default()))),
            fw: FilterProcessor::new(Arc::new(FineWebQuality::new(Default::default()))),
            pii: FilterProcessor::new(Arc::new(Pii::new(Default::default()))),
            words: WordSplitter::new(),
            spans: Vec::new(),
        }
    }

    /// Runs everything on `text`, checking invariants that hold for any input.
    fn run(&mut self, text: &str) {
        fn rewritten<F: TextFilter>(p: &mut FilterProcessor<F>, text: &str) -> Option<String> {
            match p.check(text, 7) {
                (Verdict::Rewrite, out) => Some(out.to_string()),
                _ => None,
            }
        }
        self.gq.check(text, 1);
        self.gr.check(text, 1);
        self.fw.check(text, 1);
        if let Some(out) = rewritten(&mut self.c4, text) {
            // Kept lines are a subset of the input's (citation markers aside).
            assert!(out.len() <= text.len());
        }
        rewritten(&mut self.pii, text);
        self.words.split(text, &mut self.spans);
        let mut last = 0u32;
        for &(a, b) in &self.spans {
            assert!(
                a >= last
                    && b > a
                    && text.is_char_boundary(a as usize)
                    && text.is_char_boundary(b as usize)
            );
            assert!(
                !text[a as usize..b as usize]
                    .chars()
                    .any(curate_filters::words::py_isspace)
            );
            last = b;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn no_panic_on_arbitrary_utf8(s in "\\PC{0,400}") {
        All::new().run(&s);
    }

    #[test]
    fn no_panic_on_punctuation_heavy_text(s in "[a-zA-Z0-9 .,;:!?'\"()\\[\\]{}<>/@#$%^&*+=_~`|\\\\\n\t…—–-]{0,300}") {
        All::new().run(&s);
    }

    #[test]
    fn no_panic_on_any_chars(v in proptest::collection::vec(any::<char>(), 0..200)) {
        let s: String = v.into_iter().collect();
        All::new().run(&s);
    }
}

fn words(text: &str) -> Vec<&str> {
    let mut w = WordSplitter::new();
    let mut spans = Vec::new();
    w.split(text, &mut spans);
    spans
        .iter()
        .map(|&(a, b)| &text[a as usize..b as usize])
        .collect()
}

#[test]
fn scripts_are_handled() {
    // Expected tokens recorded from spaCy 3.8 `spacy.blank("en")`.
    assert_eq!(
        words("日本語のテキストです。次の文"),
        ["日本語のテキストです。次の文"]
    );
    assert_eq!(words("日本語です。"), ["日本語です", "。"]);
    assert_eq!(words("ภาษาไทย ไม่มีช่องว่าง"), ["ภาษาไทย", "ไม่มีช่องว่าง"]);
    assert_eq!(
        words("مرحبا بالعالم، كيف حالك؟"),
        ["مرحبا", "بالعالم", "،", "كيف", "حالك", "؟"]
    );
    assert_eq!(
        words("cafe\u{301} nai\u{308}ve"),
        ["cafe\u{301}", "nai\u{308}ve"]
    );
    let mut all = All::new();
    for t in [
        "日本語のテキストです。\n\n日本語のテキストです。",
        "ภาษาไทย ไม่มีช่องว่าง\nภาษาไทย ไม่มีช่องว่าง",
        "مرحبا بالعالم، كيف حالك؟ ".repeat(30).as_str(),
        "e\u{301}\u{301}\u{301} \u{200d}\u{1f468}\u{200d}\u{1f469} \u{0}\u{1f}\u{85}\u{2028}",
    ] {
        all.run(t);
    }
}
