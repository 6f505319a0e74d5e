"""rensa: RMinHash(num_perm=112) fed by Python shingling, RMinHashLSH(threshold=0.72, 14 bands)."""
import time

from rensa import RMinHash, RMinHashLSH

from common import args, load, report, shingles, union, find

path, n = args()
t0 = time.perf_counter()
texts, nbytes = load(path, n)
lsh = RMinHashLSH(threshold=0.72, num_perm=112, num_bands=14)
parent = {}
t_hash = 0.0
for i, text in enumerate(texts):
    sh = list(shingles(text))
    th = time.perf_counter()
    m = RMinHash(num_perm=112, seed=1)
    m.update(sh)
    t_hash += time.perf_counter() - th
    for j in lsh.query(m):
        union(parent, j, i)
    lsh.insert(i, m)
removed = sum(1 for i in range(len(texts)) if find(parent, i) != i)
report("rensa pipeline", t0, nbytes / 1e6, removed)
print(f"rensa RMinHash.update alone: {t_hash:.2f} s = {nbytes / 1e6 / t_hash:.1f} MB/s")
