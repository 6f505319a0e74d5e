//! How the `language` step's two backends compare with an independent classifier: the corpus's
//! own `language` / `language_score` columns, which come from langid.py 1.1.6 on each text's
//! first 3,000 characters (`../shared/corpus/README.md`) — not from fastText. (Agreement with
//! datatrove's own decisions is `tests/fasttext_rules.rs`: exact.) Prints the agreement and the
//! most common confusions; asserts floors so a regression cannot pass.

use std::collections::BTreeMap;
use std::fs::File;

use arrow::array::{Array, AsArray};
use curate_fasttext::{Newline, Predict, Scratch};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

#[derive(Default)]
struct Tally {
    n: usize,
    same: usize,
    en_n: usize,
    en_same: usize,
    /// langid says English with score > 0.65, and so does the backend.
    en_kept_ref: usize,
    en_kept_both: usize,
    confusions: BTreeMap<(String, String), usize>,
}

impl Tally {
    fn add(&mut self, want: &str, want_score: f64, got: Option<(&str, f64)>) {
        let label = got.map_or("-", |g| g.0);
        self.n += 1;
        if label == want {
            self.same += 1;
        } else {
            *self
                .confusions
                .entry((want.to_string(), label.to_string()))
                .or_default() += 1;
        }
        if want == "en" {
            self.en_n += 1;
            self.en_same += (label == "en") as usize;
            if want_score > 0.65 {
                self.en_kept_ref += 1;
                self.en_kept_both += got.is_some_and(|(l, s)| l == "en" && s > 0.65) as usize;
            }
        }
    }

    fn report(&self, name: &str) -> (f64, f64) {
        let pct = |a: usize, b: usize| 100.0 * a as f64 / b.max(1) as f64;
        eprintln!(
            "{name}: {}/{} agree with langid.py ({:.2} %); English {}/{} ({:.2} %); of the \
             documents langid.py calls English with score > 0.65, kept by the FineWeb rule \
             (en, > 0.65): {}/{} ({:.2} %)",
            self.same,
            self.n,
            pct(self.same, self.n),
            self.en_same,
            self.en_n,
            pct(self.en_same, self.en_n),
            self.en_kept_both,
            self.en_kept_ref,
            pct(self.en_kept_both, self.en_kept_ref)
        );
        let mut top: Vec<_> = self.confusions.iter().collect();
        top.sort_by_key(|x| std::cmp::Reverse(*x.1));
        for ((w, g), c) in top.iter().take(8) {
            eprintln!("  langid {w} → {name} {g}: {c}");
        }
        (pct(self.same, self.n), pct(self.en_same, self.en_n))
    }
}

#[test]
fn agrees_with_corpus_language_column() {
    let path = curate_testkit::corpus_shard_or_sample();
    // every 7th document of a corpus shard; every document of the (smaller) quick-start slice
    let stride = if curate_testkit::corpus_shards().is_some() {
        7
    } else {
        1
    };
    let f = File::open(&path).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap()
        .build()
        .unwrap();
    let whatlang_langs: Vec<&str> = curate_filters::language::supported().collect();
    let lid = curate_fasttext::lid176();
    let lid_langs: Vec<&str> = lid
        .labels()
        .iter()
        .map(|l| curate_filters::language::language_name(l).unwrap())
        .collect();
    let (mut ft, mut wl) = (Tally::default(), Tally::default());
    let mut buf = String::new();
    let mut scratch = Scratch::default();
    let mut preds = Vec::new();
    let top1 = Predict {
        k: 1,
        threshold: 0.0,
        newline: Newline::Space,
    };
    let mut seen = 0;
    'outer: for b in reader {
        let b = b.unwrap();
        let text = b.column_by_name("text").unwrap().as_string::<i32>().clone();
        let lang = b
            .column_by_name("language")
            .unwrap()
            .as_string::<i32>()
            .clone();
        let score = b
            .column_by_name("language_score")
            .unwrap()
            .as_primitive::<arrow::datatypes::Float64Type>()
            .clone();
        for i in (0..b.num_rows()).step_by(stride) {
            if lang.is_null(i) {
                continue;
            }
            let want = lang.value(i);
            if lid_langs.contains(&want) {
                lid.predict(text.value(i), &top1, &mut scratch, &mut preds);
                let got = preds.first().map(|p| (lid_langs[p.label], p.prob as f64));
                ft.add(want, score.value(i), got);
            }
            if whatlang_langs.contains(&want) {
                let got = curate_filters::language::detect(text.value(i), 4096, &mut buf);
                wl.add(want, score.value(i), got);
            }
            seen += 1;
            if seen >= 3000 {
                break 'outer;
            }
        }
    }
    let (ft_all, ft_en) = ft.report("fasttext (lid.176.ftz)");
    let (wl_all, wl_en) = wl.report("whatlang");
    assert!(ft.n >= 500 && wl.n >= 500, "too few labelled documents");
    assert!(
        ft_all >= 85.0,
        "lid.176 agreement {ft_all:.2} % below the 85 % floor"
    );
    assert!(
        ft_en >= 97.0,
        "lid.176 English agreement {ft_en:.2} % below 97 %"
    );
    assert!(
        wl_all >= 85.0,
        "whatlang agreement {wl_all:.2} % below the 85 % floor"
    );
    assert!(
        wl_en >= 97.0,
        "whatlang English agreement {wl_en:.2} % below 97 %"
    );
}
