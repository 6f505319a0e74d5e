#!/usr/bin/env python3
"""fastText peer for the student benchmark (not part of CI).

Reads the splits `examples/student_bench.rs` wrote (OUT_DIR/{reference,fake_teacher,source_rule}/
{train,holdout}.txt, fastText format), trains `fasttext.train_supervised(wordNgrams=2)` on one
thread, and reports AUC, Spearman, F1 and accuracy on the held-out rows, and scoring throughput
(documents/s and MB/s of text, one thread, `model.predict(k=1)` over OUT_DIR/score.txt, the same
sampled corpus documents our student is timed on; newlines already replaced, outside the timing).

    /opt/peers-venv/bin/python crates/curate-quality/benches/fasttext_peer.py OUT_DIR

Decision rules: binary sets, positive when P(label 1) >= 0.5; the 0-5 set, the score is the expected
label under fastText's softmax (AUC, Spearman) and a positive is P(label >= 3) >= 0.5 (F1, accuracy).
"""
import json
import os
import sys
import time

import fasttext
import numpy as np


def ranks(v):
    v = np.asarray(v, dtype=np.float64)
    order = np.argsort(v, kind="mergesort")
    r = np.empty(len(v))
    sv = v[order]
    i = 0
    while i < len(v):
        j = i + 1
        while j < len(v) and sv[j] == sv[i]:
            j += 1
        r[order[i:j]] = (i + j + 1) / 2.0
        i = j
    return r


def auc(scores, pos):
    pos = np.asarray(pos, dtype=bool)
    r = ranks(scores)
    n_p, n_n = pos.sum(), (~pos).sum()
    return float((r[pos].sum() - n_p * (n_p + 1) / 2) / (n_p * n_n))


def spearman(a, b):
    return float(np.corrcoef(ranks(a), ranks(b))[0, 1])


def read(path):
    labels, texts = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            lab, _, text = line.rstrip("\n").partition(" ")
            labels.append(int(lab[len("__label__"):]))
            texts.append(text)
    return labels, texts


def run(out, name, scale_max, threshold, alt=None, epoch=5, lr=0.1):
    d = os.path.join(out, name)
    train_labels, train_texts = read(os.path.join(d, "train.txt"))
    labels, texts = read(os.path.join(d, "holdout.txt"))
    t0 = time.perf_counter()
    model = fasttext.train_supervised(
        input=os.path.join(d, "train.txt"), wordNgrams=2, epoch=epoch, lr=lr, thread=1, seed=1, verbose=0
    )
    train_s = time.perf_counter() - t0
    classes = list(range(int(scale_max) + 1))
    pred_labels, probs = model.predict(texts, k=-1)
    dist = np.zeros((len(texts), len(classes)))
    for i, (ls, ps) in enumerate(zip(pred_labels, probs)):
        for l, p in zip(ls, ps):
            dist[i, int(l[len("__label__"):])] = p
    expected = dist @ np.asarray(classes, dtype=np.float64)

    def at(t):
        p_keep = dist[:, int(np.ceil(t)):].sum(axis=1)
        truth = np.asarray(labels) >= t
        predicted = p_keep >= 0.5
        tp = int((truth & predicted).sum()); fp = int((~truth & predicted).sum()); fn = int((truth & ~predicted).sum())
        f1 = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else None
        acc = float((truth == predicted).mean())
        return auc(p_keep if scale_max == 1 else expected, truth), f1, acc

    auc_v, f1, acc = at(threshold)
    alt_v = None
    if alt is not None:
        a, f, c = at(alt)
        alt_v = {"threshold": alt, "auc": a, "f1": f, "accuracy": c}
    with open(os.path.join(out, "score.txt"), encoding="utf-8") as f:
        all_texts = [l.rstrip("\n") for l in f]
    nbytes = sum(len(t.encode("utf-8")) for t in all_texts)
    best = None
    for _ in range(3):
        t = time.perf_counter()
        model.predict(all_texts, k=1)
        s = time.perf_counter() - t
        best = s if best is None else min(best, s)
    return {
        "label_set": name, "model": f"fastText 0.9.3 wordNgrams=2 epoch={epoch} lr={lr}", "threshold": threshold, "alt": alt_v,
        "n_train": len(train_texts), "n_holdout": len(texts),
        "auc": auc_v, "spearman": spearman(expected, labels), "f1": f1, "accuracy": acc,
        "train_seconds": train_s, "score_docs": len(all_texts), "score_bytes": nbytes, "score_seconds": best,
        "docs_per_s": len(all_texts) / best, "mb_per_s": nbytes / best / 1e6,
    }


def main():
    out = sys.argv[1]
    res = []
    for epoch, lr in [(5, 0.1), (25, 0.5)]:  # fastText's defaults, and its small-data advice
        res += [
            run(out, "reference", 1, 0.5, epoch=epoch, lr=lr),
            run(out, "fake_teacher", 5, 2.0, alt=3.0, epoch=epoch, lr=lr),
            run(out, "source_rule", 1, 0.5, epoch=epoch, lr=lr),
        ]
    with open(os.path.join(out, "fasttext.json"), "w") as f:
        json.dump(res, f, indent=2)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
