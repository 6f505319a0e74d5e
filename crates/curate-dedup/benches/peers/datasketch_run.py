"""datasketch: MinHash(num_perm=112) + MinHashLSH(params=(14, 8)), union-find over query results."""
import time

from datasketch import MinHash, MinHashLSH

from common import args, load, report, shingles, union, find

path, n = args()
t0 = time.perf_counter()
texts, nbytes = load(path, n)
lsh = MinHashLSH(num_perm=112, params=(14, 8))
parent = {}
for i, text in enumerate(texts):
    m = MinHash(num_perm=112, seed=1)
    m.update_batch([s.encode("utf8") for s in shingles(text)])
    for j in lsh.query(m):
        union(parent, j, i)
    lsh.insert(i, m)
removed = sum(1 for i in range(len(texts)) if find(parent, i) != i)
report("datasketch", t0, nbytes / 1e6, removed)
