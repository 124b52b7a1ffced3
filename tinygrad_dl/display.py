"""Rich displays for Jupyter and other front ends that render HTML: a Tensor and a Module as small HTML tables.

`Tensor._repr_html_` and `Module._repr_html_` call `tensor_html` and `module_html`; the plain `repr` is unchanged.
Every string that comes from the user (names, op names, module types) is escaped, so a name like `</script>` or
`<b>` shows as text. The output is bounded: a preview shows at most a corner of the array, whatever its size.
The HTML has no script and no style sheet (inline styles only), so it survives front ends that sanitize outputs.
Nothing here imports the engine, the layers or the visualizer: it reads a Tensor's public attributes and a
Module's own registry of children and parameters.
"""
from __future__ import annotations

import html

import numpy as np

__all__ = ["tensor_html", "module_html", "format_value"]

_BOX = "font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px;line-height:1.4"
_TABLE = "border-collapse:collapse;margin:4px 0"
_CELL = "padding:1px 6px;text-align:right;border:none"
_HEAD = _CELL + ";opacity:.55;font-weight:normal"
_LEFT = "padding:1px 6px;text-align:left;border:none"
_BAD = "color:#c62828;font-weight:bold"          # NaN and inf stand out
_MUTED = "opacity:.65"


def _e(s) -> str:
    """Escape any text for HTML content and attribute values (quotes too)."""
    return html.escape(str(s), quote=True)


def format_value(v) -> str:
    """One number as the preview shows it: 4 significant digits; NaN, inf and -inf spelled out."""
    v = float(v)
    if v != v:
        return "NaN"
    if v == np.inf:
        return "inf"
    if v == -np.inf:
        return "-inf"
    return f"{v:.4g}"


def _shape(shape) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def _count(n: int) -> str:
    return f"{n:,}"


def _cut(n: int, keep: int) -> list:
    """Indices to show along an axis of length n: all of them, or the first and last keep//2 with None between."""
    if n <= keep:
        return list(range(n))
    half = keep // 2
    return list(range(half)) + [None] + list(range(n - half, n))


def _num_cell(v) -> str:
    text = format_value(v)
    bad = not np.isfinite(v)
    return f'<td style="{_CELL}{";" + _BAD if bad else ""}">{text}</td>'


def _preview(a: np.ndarray, rows: int, cols: int) -> str:
    """A corner-and-edges view of a 0-, 1- or 2-D array as an HTML table (a larger array: its first 2-D slice)."""
    caption = ""
    if a.ndim > 2:
        lead = (0,) * (a.ndim - 2)
        caption = (f'<div style="{_MUTED}">showing the slice [{", ".join(map(str, lead))}, :, :] '
                   f'of {a.ndim} dimensions</div>')
        a = a[lead]
    if a.ndim == 0:
        return f'<table style="{_TABLE}"><tr>{_num_cell(a.item())}</tr></table>'
    if a.ndim == 1:
        a = a.reshape(1, -1)
        row_ids = [None]
    else:
        row_ids = _cut(a.shape[0], rows)
    col_ids = _cut(a.shape[1], cols)
    head = "".join(f'<th style="{_HEAD}">{"…" if j is None else j}</th>' for j in col_ids)
    lines = [f'<tr><th style="{_HEAD}"></th>{head}</tr>']
    for r, i in enumerate(row_ids):
        if i is None and r > 0:  # the gap between the first and the last rows
            cells = "".join(f'<td style="{_CELL};{_MUTED}">⋮</td>' for _ in col_ids)
            lines.append(f'<tr><th style="{_HEAD}">⋮</th>{cells}</tr>')
            continue
        row = a[0 if i is None else i]
        cells = "".join(f'<td style="{_CELL};{_MUTED}">…</td>' if j is None else _num_cell(row[j]) for j in col_ids)
        lines.append(f'<tr><th style="{_HEAD}">{"" if i is None else i}</th>{cells}</tr>')
    return caption + f'<table style="{_TABLE}">' + "".join(lines) + "</table>"


def _stats(a: np.ndarray) -> str:
    """min / mean / max of the finite values, and how many NaN and inf there are (without copying the array)."""
    if a.size == 0:
        return "empty"
    finite = np.isfinite(a)
    n_finite = int(np.count_nonzero(finite))
    parts = []
    if n_finite:
        lo = np.min(a, where=finite, initial=np.inf)
        hi = np.max(a, where=finite, initial=-np.inf)
        with np.errstate(over="ignore", invalid="ignore"):
            mean = np.mean(a, where=finite, dtype=np.float64)
        if not np.isfinite(mean):  # the sum overflowed (values near the float range): divide first
            mean = np.sum(a / np.float64(n_finite), where=finite, dtype=np.float64)
        parts.append(f"min {format_value(lo)}  mean {format_value(mean)}  max {format_value(hi)}")
    if n_finite < a.size:
        n_nan = int(np.count_nonzero(np.isnan(a)))
        n_pos = int(np.count_nonzero(a == np.inf))
        n_neg = a.size - n_finite - n_nan - n_pos
        bad = [f"{n} {what}" for n, what in ((n_nan, "NaN"), (n_pos, "inf"), (n_neg, "-inf")) if n]
        parts.append(f'<span style="{_BAD}">{", ".join(bad)}</span>')
    return "  ·  ".join(parts)


def tensor_html(t, rows: int = 8, cols: int = 8) -> str:
    """A Tensor as HTML: name, shape, dtype, the op that made it (creator), requires_grad, whether it has a
    gradient, min/mean/max with NaN and inf counted, and a preview of at most `rows` x `cols` values."""
    a = np.asarray(t.data)
    facts = [f'<b>Tensor</b>{" " + _e(repr(t.name)) if t.name is not None else ""}',
             f'shape {_shape(a.shape)}', _e(a.dtype)]
    if t.creator is not None:
        facts.append(f"made by {_e(t.creator.name)}")
    else:
        facts.append("leaf")
    if t.requires_grad:
        facts.append("requires_grad")
    grad = t.grad
    if grad is not None:
        g = grad if isinstance(grad, np.ndarray) else np.asarray(getattr(grad, "data", grad))  # ndarray or Tensor
        norm = float(np.sqrt(np.sum(np.square(g, dtype=np.float64)))) if g.size else 0.0
        facts.append(f"grad {_shape(g.shape)}, ‖grad‖ {format_value(norm)}")
    elif t.requires_grad:
        facts.append("grad None")
    stats = _stats(a)
    body = "" if a.size == 0 else _preview(a, rows, cols)
    return (f'<div class="tinygrad-dl-tensor" style="{_BOX}">'
            f'<div>{"  ·  ".join(facts)}</div>'
            f'<div style="{_MUTED}">{stats}</div>{body}</div>')


def _tree(module):
    """(path, module, depth) for the module and every module below it, depth first (as `named_modules`)."""
    out, stack = [], [("", module, 0)]
    while stack:
        path, mod, depth = stack.pop()
        out.append((path, mod, depth))
        stack.extend(reversed([((path + "." if path else "") + name, child, depth + 1)
                               for name, child in mod._children()]))
    return out


def module_html(module, max_rows: int = 300) -> str:
    """A Module as HTML: its tree of named modules, each with its type and settings and its parameter count (the
    whole subtree), its parameters with shapes, dtypes and counts, and the total (each tensor counted once).
    At most `max_rows` rows are listed; the total always covers every parameter."""
    rows, seen, total = [], set(), 0
    for path, mod, depth in _tree(module):
        label = f"{_e(path) + ': ' if path else ''}<b>{_e(type(mod).__name__)}</b>"
        extra = mod.extra_repr()
        if extra:
            label += f"({_e(extra)})"
        subtree = sum(p.size for _, p in mod.named_parameters())
        rows.append((depth, label, "", "", _count(subtree), ""))
        for name, p in mod._params.items():
            note = ""
            if id(p) in seen:
                note = f' <span style="{_MUTED}">(shared: counted once)</span>'
            else:
                seen.add(id(p))
                total += p.size
            rows.append((depth + 1, _e(name) + note, _shape(p.shape), _e(p.dtype), _count(p.size), _MUTED))
    n = len(seen)
    head = (f'<div><b>{_e(type(module).__name__)}</b>  ·  {_count(total)} parameters in {n} '
            f'tensor{"" if n == 1 else "s"}</div>')
    lines = [f'<tr><th style="{_HEAD};text-align:left">module / parameter</th><th style="{_HEAD}">shape</th>'
             f'<th style="{_HEAD}">dtype</th><th style="{_HEAD}">parameters</th></tr>']
    for depth, label, shape, dtype, count, style in rows[:max_rows]:
        lines.append(f'<tr><td style="{_LEFT};padding-left:{6 + 16 * depth}px">{label}</td>'
                     f'<td style="{_CELL};{style}">{shape}</td><td style="{_CELL};{style}">{dtype}</td>'
                     f'<td style="{_CELL};{style}">{count}</td></tr>')
    if len(rows) > max_rows:
        more = _count(len(rows) - max_rows)
        lines.append(f'<tr><td style="{_LEFT};{_MUTED}" colspan="4">… {more} more rows</td></tr>')
    lines.append(f'<tr><td style="{_LEFT}"><b>total</b></td><td></td><td></td>'
                 f'<td style="{_CELL}" data-total="{total}"><b>{_count(total)}</b></td></tr>')
    return (f'<div class="tinygrad-dl-module" style="{_BOX}">{head}<table style="{_TABLE}">' + "".join(lines)
            + "</table></div>")
