#!/bin/bash
# Prediction throughput, ours vs the Python `fasttext` package, same documents, same run
# (docs/BENCHMARKS.md, "fastText"). Trains a two-label classifier with the Python package on
# corpus text (English or not, by the corpus's `language` column) for the classifier figures.
#
# Usage: crates/curate-fasttext/benches/compare.sh [MB]   (from the repository root)
set -euo pipefail
mb=${1:-8}
py=${CURATE_PYTHON:-/opt/curate-venv/bin/python}
shard=$(ls ../shared/corpus/*.parquet | head -1)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp crates/curate-fasttext/models/lid.176.ftz "$tmp/"
"$py" - "$shard" "$tmp" <<'PY'
import sys, pyarrow.parquet as pq, fasttext
t = pq.read_table(sys.argv[1], columns=["text", "language"]).slice(10000, 5000)
with open(sys.argv[2] + "/train.txt", "w") as f:
    for x, l in zip(t.column("text").to_pylist(), t.column("language").to_pylist()):
        f.write(("__label__hq " if l == "en" else "__label__lq ") + " ".join(x.split()[:400]) + "\n")
m = fasttext.train_supervised(input=sys.argv[2] + "/train.txt", dim=256, wordNgrams=2, epoch=3, verbose=0, thread=2, bucket=200000)
m.save_model(sys.argv[2] + "/classifier.bin")
PY
cargo build -q --release -p curate-fasttext --example cpu_throughput
# CPU time on both sides (best of 3), back to back
for k in -1 1; do
  target/release/examples/cpu_throughput lid176 "$shard" "$mb" $k 3
  "$py" crates/curate-fasttext/benches/python_predict.py "$tmp/lid.176.ftz" "$shard" "$mb" $k 3
  target/release/examples/cpu_throughput "$tmp/classifier.bin" "$shard" "$mb" $k 3
  "$py" crates/curate-fasttext/benches/python_predict.py "$tmp/classifier.bin" "$shard" "$mb" $k 3
done
# criterion (wall time: on a loaded machine it counts time the thread waits for a core)
CURATE_BENCH_MB=$mb CURATE_BENCH_FT_MODEL="$tmp/classifier.bin" \
  cargo bench -q -p curate-fasttext --bench predict -- --warm-up-time 1 --measurement-time 5 2>&1 \
  | grep -E "^(lid176|model)/|thrpt"
