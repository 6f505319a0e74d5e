#!/usr/bin/env python3
"""Draws the active-labeling replay (JSON from the `active_replay` example) as an SVG:
held-out AUC against labels bought, random vs active, one panel per teacher.

    python3 crates/curate-label/benches/replay_svg.py replay.json docs/active-replay.svg
"""
import json
import sys

data = json.load(open(sys.argv[1]))
W, H, PAD = 360, 240, 44
out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W * len(data)}" height="{H}" '
       'font-family="sans-serif" font-size="11">']
for k, t in enumerate(data):
    x0 = k * W
    pts = t["random"] + t["active"]
    xs = [p["labels"] for p in pts]
    ys = [p["auc"] for p in pts if p["auc"] == p["auc"]]
    lo, hi = min(ys), max(ys)
    lo, hi = lo - 0.01 * (hi - lo + 1e-9), hi + 0.01 * (hi - lo + 1e-9)
    xmax = max(xs)

    def X(v):
        return x0 + PAD + (W - 1.5 * PAD) * v / xmax

    def Y(v):
        return H - PAD + (-(H - 1.8 * PAD)) * (v - lo) / (hi - lo)

    out.append(f'<text x="{x0 + PAD}" y="16" font-weight="bold">{t["teacher"]} '
               f'(keep ≥ {t["threshold"]:g}; holdout {t["holdout"]})</text>')
    out.append(f'<line x1="{X(0)}" y1="{H - PAD}" x2="{X(xmax)}" y2="{H - PAD}" stroke="#333"/>')
    out.append(f'<line x1="{X(0)}" y1="{H - PAD}" x2="{X(0)}" y2="{PAD * 0.6}" stroke="#333"/>')
    for v in (lo, (lo + hi) / 2, hi):
        out.append(f'<text x="{x0 + 4}" y="{Y(v) + 4:.1f}">{v:.3f}</text>')
    for v in (0, xmax // 2, xmax):
        out.append(f'<text x="{X(v) - 10:.1f}" y="{H - PAD + 14}">{v}</text>')
    out.append(f'<text x="{X(xmax / 2) - 30:.1f}" y="{H - 8}">labels bought</text>')
    for name, colour in (("random", "#888"), ("active", "#c33")):
        p = " ".join(f'{X(q["labels"]):.1f},{Y(q["auc"]):.1f}' for q in t[name])
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{p}"/>')
    final = t["random"][-1]["auc"]
    out.append(f'<line x1="{X(0)}" y1="{Y(final):.1f}" x2="{X(xmax)}" y2="{Y(final):.1f}" '
               'stroke="#888" stroke-dasharray="3,3"/>')
    out.append(f'<text x="{X(xmax) - 110:.1f}" y="{H - PAD - 20}" fill="#c33">active (uncertainty)</text>')
    out.append(f'<text x="{X(xmax) - 110:.1f}" y="{H - PAD - 6}" fill="#888">random; dashed: final</text>')
out.append("</svg>")
open(sys.argv[2], "w").write("\n".join(out) + "\n")
