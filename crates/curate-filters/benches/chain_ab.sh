#!/bin/bash
# Whole-run A/B timing for the filter benchmark (docs/BENCHMARKS.md, Filters): runs each variant
# N times, interleaved (A B A B ...) so that load from other jobs hits every variant alike, and
# prints the median, quartiles and minimum of the CPU time (perf's task-clock, in ms) per variant.
#
# Usage: chain_ab.sh N LABEL:BINARY:CONFIG [LABEL:BINARY:CONFIG ...]
# e.g.   chain_ab.sh 20 now:target/release/curate:/tmp/bench_curate/chain.toml
set -euo pipefail
n=$1
shift
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for _ in $(seq 1 "$n"); do
  for v in "$@"; do
    IFS=: read -r label bin cfg <<<"$v"
    rm -rf "$tmp/out"
    perf stat -x, -e task-clock -o "$tmp/stat" "$bin" run --config "$cfg" --output "$tmp/out" --quiet -j 1 2>/dev/null
    echo "$label $(grep task-clock "$tmp/stat" | cut -d, -f1)"
  done
done | sort -k1,1 -k2n | awk '
  { v[$1] = v[$1] " " $2; n[$1]++ }
  END {
    for (k in v) {
      split(v[k], a, " "); m = n[k]
      med = (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
      printf "%-12s median %.1f ms  q1 %.1f  q3 %.1f  min %.1f  (n=%d)\n", k, med, a[int(m / 4) + 1], a[int(3 * m / 4)], a[1], m
    }
  }'
