//! Unit tests of the splitter, the sentencizer and the per-thread split cache.

use super::*;

fn words(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    WordSplitter::new().split(s, &mut out);
    out.iter()
        .map(|&(a, b)| &s[a as usize..b as usize])
        .collect()
}

#[test]
fn matches_spacy_on_known_cases() {
    // Expected outputs recorded from spacy 3.8 `spacy.blank("en")`.
    assert_eq!(words("don't stop"), ["do", "n't", "stop"]);
    assert_eq!(
        words(
            "well-known e.g. U.S.A. U.S. (hello), 3.5km $100 http://x.com/a-b.html foo@bar.com a--b ...yes... hi!!"
        ),
        [
            "well",
            "-",
            "known",
            "e.g.",
            "U.S.A.",
            "U.S.",
            "(",
            "hello",
            ")",
            ",",
            "3.5",
            "km",
            "$",
            "100",
            "http://x.com/a-b.html",
            "foo@bar.com",
            "a",
            "--",
            "b",
            "...",
            "yes",
            "...",
            "hi",
            "!",
            "!"
        ]
    );
    assert_eq!(words("a\n\n b  c\t d"), ["a", "b", "c", "d"]);
    assert_eq!(
        words("It’s 10am. Mr. Smith’s \"quote\""),
        [
            "It", "’s", "10", "am", ".", "Mr.", "Smith", "’s", "\"", "quote", "\""
        ]
    );
    assert_eq!(words("can\u{2019}t"), ["ca", "n’t"]);
    assert_eq!(words("the id. The"), ["the", "i", "d.", "The"]);
    assert_eq!(
        words("5-6 1/2 a/b 2+3 50% +4 #tag @user"),
        [
            "5", "-", "6", "1/2", "a", "/", "b", "2", "+", "3", "50", "%", "+4", "#", "tag",
            "@user"
        ]
    );
}

#[test]
fn hyphen_prefilter_covers_every_hyphen() {
    // `infix_at` tries the hyphen rules only after these first characters.
    for h in t::HYPHENS {
        let c = h.chars().next().unwrap();
        assert!(matches!(c, '-' | '\u{2013}' | '\u{2014}' | '~'), "{h:?}");
    }
}

#[test]
fn url_host_check_skips_captures_only_without_a_digit_before_a_dot() {
    let tb = &*TABLES;
    for (s, want) in [
        ("http://example.com/a.html", true),
        ("http://10.0.0.1/x", false),
        ("user@127.0.0.1", false),
        ("http://8.8.8.8/", true),
        ("www.172.20.1.1.com", true),
        ("172.20.1.1", false),
    ] {
        assert_eq!(is_url(tb, s), want, "{s}");
    }
}

#[test]
fn sentences() {
    let mut w = WordSplitter::new();
    let mut sc = Vec::new();
    assert_eq!(w.count_sentences("One. Two! Three? four", &mut sc), 4);
    assert_eq!(w.count_sentences("No end here", &mut sc), 1);
    assert_eq!(w.count_sentences("Wait... what?!", &mut sc), 1);
    assert_eq!(w.count_sentences("Hi.  !!", &mut sc), 2);
    assert_eq!(w.count_sentences("", &mut sc), 0);
}

#[test]
fn python_char_predicates() {
    assert!(py_isspace('\u{1f}') && py_isspace('\u{a0}') && !py_isspace('\u{200b}'));
    assert!(py_isalpha('é') && py_isalpha('中') && !py_isalpha('\u{93e}') && !py_isalpha('1'));
    assert!(is_punct_token("...") && !is_punct_token("$") && is_punct_token("«"));
    assert_eq!(char_len("naïve"), 5);
}
