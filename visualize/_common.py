"""Shared bits of the visualize/ programs: the command line and a tiny, deterministic SVG chart writer."""
from __future__ import annotations

import argparse
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # run from a fresh clone without installing: python visualize/x.py

GALLERY = os.path.join(HERE, "gallery")


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--out", default=GALLERY, help="output folder (default: visualize/gallery)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0); same seed, same pictures")
    return p


def outdir(args) -> str:
    os.makedirs(args.out, exist_ok=True)
    return args.out


def _esc(s) -> str:
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _num(v) -> str:
    return f"{v:.2f}".rstrip("0").rstrip(".")


def log_chart_svg(title, xlabels, series, ylabel, lines=(), width=840, height=420, kind="line", floor=1e-20):
    """An SVG chart with a log10 y axis. series: [(name, colour, [values])]; values <= 0 are drawn at the floor
    and marked "0". lines: [(y value, label, colour)] horizontal reference lines. kind: "line" or "bar"."""
    left, right, top, bottom = 70, 250, 40, 60
    pw, ph = width - left - right, height - top - bottom
    vals = [v for _, _, vs in series for v in vs if v > 0 and math.isfinite(v)] + [y for y, _, _ in lines]
    lo = math.floor(math.log10(max(min(vals), floor))) if vals else -1
    hi = math.ceil(math.log10(max(vals))) if vals else 1
    if hi <= lo:
        hi = lo + 1
    n = len(xlabels)

    def y_of(v):
        lv = lo if v <= 0 or not math.isfinite(v) else min(max(math.log10(v), lo), hi)
        return top + ph * (hi - lv) / (hi - lo)

    def x_of(i):
        return left + pw * (i + 0.5) / n

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="Helvetica,Arial,sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">{_esc(title)}</text>']
    step = max(1, (hi - lo) // 8)
    for e in range(lo, hi + 1, step):
        y = y_of(10.0 ** e)
        out.append(f'<line x1="{left}" y1="{_num(y)}" x2="{left + pw}" y2="{_num(y)}" stroke="#e5e7eb"/>')
        out.append(f'<text x="{left - 6}" y="{_num(y + 4)}" text-anchor="end">1e{e}</text>')
    out.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="#111827"/>')
    out.append(f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="#111827"/>')
    for i, lab in enumerate(xlabels):
        out.append(f'<text x="{_num(x_of(i))}" y="{top + ph + 16}" text-anchor="middle" font-size="11">{_esc(lab)}</text>')
    out.append(f'<text x="16" y="{top + ph / 2}" transform="rotate(-90 16 {top + ph / 2})" '
               f'text-anchor="middle">{_esc(ylabel)}</text>')
    for y, lab, colour in lines:
        yy = y_of(y)
        out.append(f'<line x1="{left}" y1="{_num(yy)}" x2="{left + pw}" y2="{_num(yy)}" stroke="{colour}" '
                   f'stroke-dasharray="6 4"/>')
        out.append(f'<text x="{left + pw + 4}" y="{_num(yy + 4)}" fill="{colour}" font-size="11">{_esc(lab)}</text>')
    nser = len(series)
    for s, (name, colour, vs) in enumerate(series):
        if kind == "bar":
            bw = pw / n * 0.8 / nser
            for i, v in enumerate(vs):
                x0 = x_of(i) - pw / n * 0.4 + s * bw
                y = y_of(v)
                out.append(f'<rect x="{_num(x0)}" y="{_num(y)}" width="{_num(bw - 1)}" height="{_num(top + ph - y)}" '
                           f'fill="{colour}"><title>{_esc(name)} {_esc(xlabels[i])}: {v:.3g}</title></rect>')
                if v <= 0:
                    out.append(f'<text x="{_num(x0 + bw / 2)}" y="{_num(top + ph - 4)}" text-anchor="middle" '
                               f'font-size="10">0</text>')
        else:
            pts = " ".join(f"{_num(x_of(i))},{_num(y_of(v))}" for i, v in enumerate(vs))
            out.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2.5"/>')
            for i, v in enumerate(vs):
                out.append(f'<circle cx="{_num(x_of(i))}" cy="{_num(y_of(v))}" r="4" fill="{colour}">'
                           f'<title>{_esc(name)} {_esc(xlabels[i])}: {v:.3g}</title></circle>')
        ly = top + 10 + 20 * s
        out.append(f'<rect x="{left + pw + 10}" y="{ly - 9}" width="14" height="10" fill="{colour}"/>')
        out.append(f'<text x="{left + pw + 30}" y="{ly}">{_esc(name)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write(path, text):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    print("wrote", os.path.relpath(path))
