#!/usr/bin/env bash
# Pass-through (read → write zstd parquet) of one corpus shard: curate vs pyarrow, same machine,
# same input, same run. Prints wall time and peak RSS of each.
#   usage: bash benches/whole/passthrough.sh [shard.parquet]
set -euo pipefail
cd "$(dirname "$0")/../.."
SHARD=${1:-../shared/corpus/shard-00001.parquet}
PY=${CURATE_PYTHON:-/opt/curate-venv/bin/python}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cargo build --release -q -p curate-cli
cat > "$WORK/pass.toml" <<TOML
[input]
paths = ["$(realpath "$SHARD")"]
[output]
zstd_level = 3
TOML
cat > "$WORK/pyarrow_pass.py" <<'PY'
import sys, pyarrow.parquet as pq
t = pq.read_table(sys.argv[1])
pq.write_table(t, sys.argv[2], compression="zstd", compression_level=3)
PY
echo "pyarrow $("$PY" -c 'import pyarrow; print(pyarrow.__version__)'), curate $(./target/release/curate --version)"
cat "$SHARD" > /dev/null   # warm the page cache for both
for threads in 1 2; do
  rm -rf "$WORK/out"
  /usr/bin/time -f "curate threads=$threads: %e s wall, %M KB peak RSS" \
    ./target/release/curate run -q --config "$WORK/pass.toml" --output "$WORK/out" --threads $threads
done
/usr/bin/time -f "pyarrow read_table+write_table: %e s wall, %M KB peak RSS" \
  "$PY" "$WORK/pyarrow_pass.py" "$SHARD" "$WORK/py.parquet"
ls -l "$WORK"/out/data/*.parquet "$WORK/py.parquet" | awk '{print $5, $9}'
