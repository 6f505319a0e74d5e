"""The Python `fasttext` side of the prediction benchmark (benches/predict.rs): the same first
MB of documents of a corpus shard, `model.predict(text.replace("\n", " "), k)` on each, one
thread; prints documents, bytes, best-of-N seconds and MB/s (MiB/s, as criterion reports).

Usage: /opt/curate-venv/bin/python python_predict.py MODEL SHARD MB [K] [RUNS]
"""
import sys
import time

import pyarrow.parquet as pq
from fasttext.FastText import _FastText

model, shard, mb = sys.argv[1], sys.argv[2], int(sys.argv[3])
k = int(sys.argv[4]) if len(sys.argv) > 4 else -1
runs = int(sys.argv[5]) if len(sys.argv) > 5 else 5
docs, total = [], 0
for t in pq.read_table(shard, columns=["text"]).column("text").to_pylist():
    if total >= mb << 20:
        break
    total += len(t.encode())
    docs.append(t)
m = _FastText(model)
lines = [d.replace("\n", " ") for d in docs]  # datatrove's replacement, outside the timing
best = float("inf")
for _ in range(runs):
    t0 = time.process_time()
    for line in lines:
        m.predict(line, k=k)
    best = min(best, time.process_time() - t0)
print(f"python fasttext k={k}: {len(docs)} documents, {total} bytes, {best:.3f} s CPU (best of {runs}), "
      f"{total / best / 2**20:.1f} MiB/s")
