"""Shared by the peer scripts: the same first N documents of a corpus shard, and a union-find."""
import sys
import time

import pyarrow.parquet as pq


def load(path, n):
    t = pq.read_table(path, columns=["text"])
    texts = t.column("text").to_pylist()[:n]
    return texts, sum(len(s.encode()) for s in texts)


def shingles(text, n=5):
    # How users of datasketch / rensa typically shingle: lowercase words, n-grams joined.
    words = text.lower().split()
    return {" ".join(words[i : i + n]) for i in range(max(0, len(words) - n + 1))}


def find(parent, x):
    while parent.get(x, x) != x:
        parent[x] = parent.get(parent[x], parent[x])
        x = parent[x]
    return x


def union(parent, a, b):
    ra, rb = find(parent, a), find(parent, b)
    if ra != rb:
        lo, hi = min(ra, rb), max(ra, rb)
        parent[hi] = lo


def report(name, t0, mb, removed):
    dt = time.perf_counter() - t0
    print(f"{name}: {dt:.2f} s = {mb / dt:.2f} MB/s end to end; removed {removed}", flush=True)


def args():
    path = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/corpus/shard-00001.parquet"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 20089
    return path, n
