"""Short display text: a value or gradient shown whole when small, else min / mean / max and its norm, with NaN and
inf counted (they are what a learner opens the picture to find); names made safe to carry in XML and UTF-8."""
from __future__ import annotations

import numpy as np


def fmt(v) -> str:
    """4 significant digits; -0 is written 0; NaN and inf as nan, inf, -inf."""
    v = float(v)
    if v != v:
        return "nan"
    if v in (float("inf"), float("-inf")):
        return "inf" if v > 0 else "-inf"
    s = f"{v:.4g}"
    return "0" if s == "-0" else s


def norm(a) -> float:
    """||a||_F in float64 (0 for an empty array)."""
    a = np.asarray(a, dtype=np.float64)
    return float(np.sqrt(np.sum(a * a))) if a.size else 0.0


def bad(a) -> str:
    """'' if every value is finite, else e.g. '2 NaN, 1 inf'."""
    a = np.asarray(a)
    if a.size == 0 or np.all(np.isfinite(a)):
        return ""
    n_nan, n_inf = int(np.isnan(a).sum()), int(np.isinf(a).sum())
    return ", ".join(p for p in (f"{n_nan} NaN" if n_nan else "", f"{n_inf} inf" if n_inf else "") if p)


def summary_lines(a, max_elements=6) -> list:
    """The values themselves when a has at most `max_elements` (a matrix row per line), else
    min / mean / max and the Frobenius norm ||a||_F of the finite values, with NaN/inf counted."""
    a = np.asarray(a)
    if a.size == 0:
        return ["[]"]
    if a.size <= max_elements:
        if a.ndim == 0 or a.size == 1:
            return [fmt(a.reshape(-1)[0])]
        if a.ndim == 2 and a.shape[0] > 1:
            return ["[" + " ".join(map(fmt, row)) + "]" for row in a.tolist()]
        return ["[" + " ".join(map(fmt, a.reshape(-1).tolist())) + "]"]
    finite = a[np.isfinite(a)]
    lines = ([f"min {fmt(finite.min())}  mean {fmt(finite.mean())}  max {fmt(finite.max())}",
              f"‖·‖ {fmt(norm(finite))}"] if finite.size else [])
    counted = bad(a)
    return lines + [counted] if counted else lines


def summary_line(a, max_elements=4) -> str:
    """One line: the values when there are at most `max_elements`, else the norm and mean (and NaN/inf counts)."""
    a = np.asarray(a)
    if a.size <= max_elements:
        lines = summary_lines(a, max_elements)
        return lines[0] if len(lines) == 1 else "[" + " ".join(lines) + "]"
    finite = a[np.isfinite(a)]
    text = f"‖·‖ {fmt(norm(finite))}  mean {fmt(finite.mean())}" if finite.size else ""
    counted = bad(a)
    return f"{text}  {counted}".strip() if counted else text


def clean(text) -> str:
    """The text with what XML cannot carry made visible: control characters as \\xNN, lone surrogates as U+FFFD."""
    text = str(text)
    if text.isprintable():
        return text
    out = []
    for ch in text:
        o = ord(ch)
        if ch == "\n" or ch == " ":
            out.append(ch)
        elif o < 0x20 or 0x7F <= o < 0xA0:
            out.append(f"\\x{o:02x}")
        elif 0xD800 <= o <= 0xDFFF or o in (0xFFFE, 0xFFFF):
            out.append("\ufffd")
        else:
            out.append(ch)
    return "".join(out)
