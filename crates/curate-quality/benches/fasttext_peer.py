#!/usr/bin/env python3
"""fastText grid for the student benchmark (not part of CI).

Reads the label sets `examples/student_bench.rs` wrote (OUT_DIR/sets.json and
OUT_DIR/<set>/{train,holdout}.txt in fastText's format, the same rows our student trains and is
evaluated on) and trains fastText over the whole grid

    wordNgrams 1, 2, 3  x  epoch 5, 25, 50  x  lr 0.1, 0.5, 1.0  x  dim 100
    x  formulation "binary" (label >= keep threshold, score = P(1))
       and "classes" (one class per teacher label 0..scale, score = expected label)

on one thread each (binary teachers have one formulation: 27 trainings; 0-5 teachers 54). For
every configuration it reports held-out AUC (label >= threshold, and the alternative threshold),
Spearman rho (score vs teacher label), F1 and accuracy at the threshold (predicted positive:
P(label >= threshold) >= 0.5), ECE of the score on its own scale (10 equal-width bins, divided
by the scale width, as ours), training seconds and scoring MB/s (one thread,
`model.predict(texts, k=-1)` over OUT_DIR/score.txt; newlines replaced outside the timing).

    /opt/peers-venv/bin/python crates/curate-quality/benches/fasttext_peer.py OUT_DIR [--jobs N]

Results are appended to OUT_DIR/fasttext_grid.jsonl as each training ends (a rerun skips the
configurations already there), then OUT_DIR/summary.md compares the grid's best configuration
per metric with our student (OUT_DIR/ours.json).
"""
import argparse
import json
import os
import sys
import time
from multiprocessing import Pool

import fasttext
import numpy as np

NGRAMS = (1, 2, 3)
EPOCHS = (5, 25, 50)
LRS = (0.1, 0.5, 1.0)
DIM = 100


def ranks(v):
    v = np.asarray(v, dtype=np.float64)
    order = np.argsort(v, kind="mergesort")
    sv = v[order]
    r = np.empty(len(v))
    # mid-ranks of tied runs
    bounds = np.flatnonzero(np.diff(sv)) + 1
    starts = np.concatenate(([0], bounds))
    ends = np.concatenate((bounds, [len(v)]))
    for s, e in zip(starts, ends):
        r[order[s:e]] = (s + e + 1) / 2.0
    return r


def auc(scores, pos):
    pos = np.asarray(pos, dtype=bool)
    n_p, n_n = int(pos.sum()), int((~pos).sum())
    if n_p == 0 or n_n == 0:
        return None
    r = ranks(scores)
    return float((r[pos].sum() - n_p * (n_p + 1) / 2) / (n_p * n_n))


def spearman(a, b):
    return float(np.corrcoef(ranks(a), ranks(b))[0, 1])


def ece(pred, labels, hi, bins=10):
    pred = np.asarray(pred, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    width = hi / bins
    b = np.minimum(np.maximum(np.floor(pred / width), 0), bins - 1).astype(int)
    total = 0.0
    for k in range(bins):
        m = b == k
        if m.any():
            total += m.sum() * abs(labels[m].mean() - pred[m].mean())
    return total / len(pred) / hi


def read(path):
    labels, texts = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            lab, _, text = line.rstrip("\n").partition(" ")
            labels.append(int(lab[len("__label__"):]))
            texts.append(text)
    return labels, texts


def binary_file(d, threshold):
    """train.txt with labels turned into label >= threshold (written once)."""
    out = os.path.join(d, "train_binary.txt")
    if not os.path.exists(out):
        tmp = out + ".tmp"
        with open(os.path.join(d, "train.txt"), encoding="utf-8") as f, open(tmp, "w", encoding="utf-8") as g:
            for line in f:
                lab, _, text = line.partition(" ")
                g.write(f"__label__{int(int(lab[len('__label__'):]) >= threshold)} {text}")
        os.replace(tmp, out)
    return out


def one(job):
    out, s, formulation, ngrams, epoch, lr = job
    d = os.path.join(out, s["name"])
    scale = int(s["scale_max"])
    t = s["threshold"]
    if formulation == "binary":
        train = binary_file(d, t) if scale > 1 else os.path.join(d, "train.txt")
        classes = [0, 1]
    else:
        train = os.path.join(d, "train.txt")
        classes = list(range(scale + 1))
    labels, texts = read(os.path.join(d, "holdout.txt"))
    t0 = time.perf_counter()
    model = fasttext.train_supervised(
        input=train, wordNgrams=ngrams, epoch=epoch, lr=lr, dim=DIM, thread=1, seed=1, verbose=0
    )
    train_s = time.perf_counter() - t0
    pl, pp = model.predict(texts, k=-1)
    dist = np.zeros((len(texts), len(classes)))
    for i, (ls, ps) in enumerate(zip(pl, pp)):
        for l, p in zip(ls, ps):
            dist[i, classes.index(int(l[len("__label__"):]))] = p
    score = dist @ np.asarray(classes, dtype=np.float64)
    labels = np.asarray(labels)

    def at(th):
        truth = labels >= th
        if formulation == "binary":
            if th != t:
                return None
            p_keep = dist[:, 1]
        else:
            p_keep = dist[:, int(np.ceil(th)):].sum(axis=1)
        pred = p_keep >= 0.5
        tp = int((truth & pred).sum())
        fp = int((~truth & pred).sum())
        fn = int((truth & ~pred).sum())
        f1 = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else None
        return {"threshold": th, "auc": auc(score, truth), "f1": f1, "accuracy": float((truth == pred).mean())}

    main = at(t)
    alt = at(s["alt_threshold"]) if s.get("alt_threshold") is not None else None
    if formulation == "binary":
        ece_v = ece(score, (labels >= t).astype(float), 1.0)
    else:
        ece_v = ece(score, labels, float(scale))
    with open(os.path.join(out, "score.txt"), encoding="utf-8") as f:
        all_texts = [l.rstrip("\n") for l in f]
    nbytes = sum(len(x.encode("utf-8")) for x in all_texts)
    t1 = time.perf_counter()
    model.predict(all_texts, k=-1)
    score_s = time.perf_counter() - t1
    return {
        "label_set": s["name"], "formulation": formulation, "wordNgrams": ngrams, "epoch": epoch, "lr": lr, "dim": DIM,
        "n_holdout": len(labels), "auc": main["auc"], "spearman": spearman(score, labels), "f1": main["f1"],
        "accuracy": main["accuracy"], "ece": ece_v, "alt": alt, "train_seconds": train_s,
        "score_bytes": nbytes, "score_seconds": score_s, "mb_per_s": nbytes / score_s / 1e6,
    }


def key(r):
    return (r["label_set"], r["formulation"], r["wordNgrams"], r["epoch"], r["lr"])


def fmt(x, d=4):
    return "" if x is None else f"{x:.{d}f}"


def summary(out):
    sets = json.load(open(os.path.join(out, "sets.json")))
    grid = [json.loads(l) for l in open(os.path.join(out, "fasttext_grid.jsonl"))]
    ours = {r["label_set"]: r for r in json.load(open(os.path.join(out, "ours.json")))["results"]}
    lines = []
    for s in sets:
        rows = [r for r in grid if r["label_set"] == s["name"]]
        if not rows:
            continue
        o = ours.get(s["name"])
        lines.append(f"\n### {s['name']} ({len(rows)} fastText trainings)\n")
        lines.append("| model | AUC | Spearman | F1 | ECE | train s | MB/s |")
        lines.append("|---|---|---|---|---|---|---|")
        if o:
            lines.append(f"| curate student | {fmt(o['auc'])} | {fmt(o['spearman'])} | {fmt(o['f1'], 3)} | {fmt(o['ece'], 3)} | {o['train_seconds']:.1f} | {o['mb_per_s']:.0f} |")
        for metric in ("auc", "spearman", "f1"):
            best = max(rows, key=lambda r: -1 if r[metric] is None else r[metric])
            lines.append(
                f"| fastText best {metric}: {best['formulation']}, wordNgrams {best['wordNgrams']}, epoch {best['epoch']}, lr {best['lr']} "
                f"| {fmt(best['auc'])} | {fmt(best['spearman'])} | {fmt(best['f1'], 3)} | {fmt(best['ece'], 3)} | {best['train_seconds']:.1f} | {best['mb_per_s']:.1f} |"
            )
        if o:
            ba = max(r["auc"] for r in rows)
            bs = max(r["spearman"] for r in rows)
            lines.append(f"\nstudent - best fastText: AUC {o['auc'] - ba:+.4f}, Spearman {o['spearman'] - bs:+.4f}")
        if s.get("alt_threshold") is not None:
            alts = [r for r in rows if r.get("alt")]
            if alts:
                ba = max(alts, key=lambda r: r["alt"]["auc"] or -1)
                lines.append(
                    f"\nat threshold {s['alt_threshold']}: student AUC {fmt(o['alt']['auc']) if o and o.get('alt') else ''} F1 {fmt(o['alt']['f1'], 3) if o and o.get('alt') else ''}; "
                    f"best fastText AUC {fmt(ba['alt']['auc'])} ({ba['formulation']}, {ba['wordNgrams']}, {ba['epoch']}, {ba['lr']})"
                )
    text = "\n".join(lines) + "\n"
    open(os.path.join(out, "summary.md"), "w").write(text)
    print(text)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--sets", default=None, help="comma-separated label sets (default: all)")
    ap.add_argument("--summary-only", action="store_true")
    a = ap.parse_args()
    if not a.summary_only:
        sets = json.load(open(os.path.join(a.out, "sets.json")))
        if a.sets:
            sets = [s for s in sets if s["name"] in a.sets.split(",")]
        path = os.path.join(a.out, "fasttext_grid.jsonl")
        done = set()
        if os.path.exists(path):
            done = {key(json.loads(l)) for l in open(path)}
        jobs = []
        for s in sets:
            forms = ["binary"] if s["scale_max"] == 1 else ["binary", "classes"]
            for form in forms:
                for n in NGRAMS:
                    for e in EPOCHS:
                        for lr in LRS:
                            if (s["name"], form, n, e, lr) not in done:
                                jobs.append((a.out, s, form, n, e, lr))
        # Longest first, so the pool ends together.
        jobs.sort(key=lambda j: -j[4] * j[3])
        with open(path, "a") as f, Pool(a.jobs) as pool:
            for r in pool.imap_unordered(one, jobs):
                f.write(json.dumps(r) + "\n")
                f.flush()
                print(f"{r['label_set']} {r['formulation']} n{r['wordNgrams']} e{r['epoch']} lr{r['lr']}: "
                      f"auc {fmt(r['auc'])} rho {fmt(r['spearman'])} ({r['train_seconds']:.0f}s)", file=sys.stderr, flush=True)
    summary(a.out)


if __name__ == "__main__":
    main()
