//! Accuracy of the `language` step's embedded model against the corpus's own `language` column
//! (fastText lid.176 labels, which is what datatrove's LanguageFilter uses). Prints the
//! agreement and the most common confusions; asserts a floor so a regression cannot pass.

use std::collections::BTreeMap;
use std::fs::File;

use arrow::array::{Array, AsArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

#[test]
fn agrees_with_corpus_language_column() {
    let path = curate_testkit::corpus_shard_or_sample();
    let f = File::open(&path).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap()
        .build()
        .unwrap();
    let supported: Vec<&str> = curate_filters::language::supported().collect();
    let (mut n, mut same, mut en_n, mut en_same, mut en_kept_ref, mut en_kept_both) =
        (0, 0, 0, 0, 0, 0);
    let mut confusions: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut buf = String::new();
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
        for i in (0..b.num_rows()).step_by(7) {
            if lang.is_null(i) || !supported.contains(&lang.value(i)) {
                continue;
            }
            let want = lang.value(i);
            let got = curate_filters::language::detect(text.value(i), 4096, &mut buf);
            let label = got.map_or("-", |g| g.0);
            n += 1;
            if label == want {
                same += 1;
            } else {
                *confusions
                    .entry((want.to_string(), label.to_string()))
                    .or_default() += 1;
            }
            if want == "en" {
                en_n += 1;
                en_same += (label == "en") as usize;
                if score.value(i) > 0.65 {
                    en_kept_ref += 1;
                    en_kept_both += got.is_some_and(|(l, s)| l == "en" && s > 0.65) as usize;
                }
            }
            if n >= 3000 {
                break 'outer;
            }
        }
    }
    let pct = |a: usize, b: usize| 100.0 * a as f64 / b.max(1) as f64;
    eprintln!(
        "language: {same}/{n} agree with the corpus label ({:.2} %)",
        pct(same, n)
    );
    eprintln!(
        "  English: {en_same}/{en_n} ({:.2} %); kept by FineWeb's rule (en, score > 0.65) in both: {en_kept_both}/{en_kept_ref} ({:.2} %)",
        pct(en_same, en_n),
        pct(en_kept_both, en_kept_ref)
    );
    let mut top: Vec<_> = confusions.into_iter().collect();
    top.sort_by_key(|x| std::cmp::Reverse(x.1));
    for ((w, g), c) in top.iter().take(12) {
        eprintln!("  corpus {w} → ours {g}: {c}");
    }
    assert!(n >= 500, "too few labelled documents ({n})");
    assert!(
        pct(same, n) >= 85.0,
        "agreement {:.2} % below the 85 % floor",
        pct(same, n)
    );
    assert!(
        pct(en_same, en_n) >= 97.0,
        "English agreement {:.2} % below the 97 % floor",
        pct(en_same, en_n)
    );
}
