"""See backpropagation: the graph as DOT text with values and gradients, rendered pictures, and a page that steps
through the backward pass in the engine's exact order.

`to_dot` is pure (no Graphviz needed); `draw_graph` returns a `graphviz.Digraph` (the `viz` extra); `render` and
`backprop_html` run Graphviz's `dot` binary. Everything is read through the graph's public face (`t.creator`,
`fn.inputs`, `fn.name`, `fn.rule`, `t.name`) and walked with the engine's own `toposort`. Gradients of intermediate
tensors are captured by the drawing call itself: it runs the engine's backward pass with `retain_graph=True` and
a hook, and touches no `.grad`.

Node ids are stable: the i-th tensor of `toposort(roots, include_constants=True)` is `t{i}`, and the op that made
it is `f{i}`; the k-th input edge of that op is `e{i}_{k}`.
"""
from __future__ import annotations

import html
import json
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET

import numpy as np

from .tensor import Tensor, run_backward, toposort

__all__ = ["to_dot", "draw_graph", "render", "backprop_html", "trace", "GraphvizNotFoundError", "GraphReleasedError"]

_INSTALL = "install Graphviz: `sudo apt-get install graphviz` (Debian/Ubuntu) or `brew install graphviz` (macOS)"


class GraphvizNotFoundError(RuntimeError):
    """Graphviz's `dot` binary is not on PATH."""


class GraphReleasedError(RuntimeError):
    """The graph was freed by a backward() without retain_graph=True."""


# ============================================================ tracing: the graph and every gradient in it

class Trace:
    """The graph of `roots` and, when it can be computed, every gradient in it (course notes 2.3).

    tensors: toposort(roots, include_constants=True) order; ids: {tensor: "t{i}"};
    grads: {tensor: final gradient ndarray}; steps: one dict per op in the engine's backward order with keys
    out, fn, grad_out, in_grads (copies, captured by the run_backward hook).
    """

    def __init__(self, roots, tensors, grads, steps, seed_grads, note):
        self.roots, self.tensors, self.grads, self.steps = roots, tensors, grads, steps
        self.seed_grads, self.note = seed_grads, note
        self.ids = {t: f"t{i}" for i, t in enumerate(tensors)}
        self.consumers = {t: [] for t in tensors}  # tensor -> [(out tensor, input index)]
        for t in tensors:
            if t.creator is not None:
                for k, x in enumerate(t.creator.inputs):
                    self.consumers[x].append((t, k))


def _roots(root, where):
    roots = list(root) if isinstance(root, (list, tuple)) else [root]
    if not roots or not all(isinstance(r, Tensor) for r in roots):
        raise TypeError(f"{where}: expected a Tensor (or a list of Tensors) as the root, got {type(root).__name__}")
    return roots


def trace(root, grad=None, *, gradients=True) -> Trace:
    """Walk the graph of `root` with `toposort` and run the backward pass once with `retain_graph=True`,
    capturing the gradient of every tensor and every op's step (course notes 2.3: dZ, dW, db layer by layer).
    A non-scalar root needs `grad` (its upstream gradient) for gradients to be computed; without it none are."""
    roots = _roots(root, "trace")
    try:
        tensors = toposort(roots, include_constants=True)
    except RuntimeError:
        raise GraphReleasedError(
            "viz: this graph was already released by backward() (ops no longer hold their inputs); draw it "
            "before calling backward(), or call backward(retain_graph=True)") from None
    grads, steps, seeds, note = {}, [], {}, ""
    live = [r for r in roots if r.requires_grad]
    if gradients and live:
        if grad is None and any(r.size != 1 for r in live):
            note = "gradients not shown: the root is not a scalar (pass grad= of its shape)"
        else:
            given = None if grad is None else (list(grad) if isinstance(grad, (list, tuple)) else [grad])
            if given is not None and len(given) != len(live):
                raise ValueError(f"trace: got {len(given)} grad arrays for {len(live)} roots that require grad")
            for i, r in enumerate(live):
                g = np.ones_like(r.data) if given is None else np.asarray(
                    given[i].data if isinstance(given[i], Tensor) else given[i], dtype=r.dtype)
                if g.shape != r.shape:
                    raise ValueError(f"trace: grad has shape {g.shape} but the root has shape {r.shape}")
                seeds[r] = g
                grads[r] = g.copy()

            def hook(out, fn, grad_out, input_grads):
                in_copy = [None if gx is None else np.array(gx, copy=True) for gx in input_grads]
                steps.append({"out": out, "fn": fn, "grad_out": np.array(grad_out, copy=True), "in_grads": in_copy})
                for x, gx in zip(fn.inputs, in_copy):  # accumulate in arrival order, as the engine does
                    if gx is not None and x.requires_grad:
                        grads[x] = gx.copy() if x not in grads else grads[x] + gx

            run_backward(live, [seeds[r] for r in live], retain_graph=True, hook=hook)
    return Trace(roots, tensors, grads, steps, seeds, note)


# ============================================================ number formatting

def _fmt(v) -> str:
    v = float(v)
    if v != v:
        return "nan"
    if v in (float("inf"), float("-inf")):
        return "inf" if v > 0 else "-inf"
    s = f"{v:.4g}"
    return "0" if s == "-0" else s


def _norm(a) -> float:
    a = np.asarray(a, dtype=np.float64)
    return float(np.sqrt(np.sum(a * a))) if a.size else 0.0


def _bad(a) -> str:
    """'' if every value is finite, else e.g. '2 NaN, 1 inf'."""
    a = np.asarray(a)
    if a.size == 0 or np.all(np.isfinite(a)):
        return ""
    n_nan, n_inf = int(np.isnan(a).sum()), int(np.isinf(a).sum())
    return ", ".join(p for p in (f"{n_nan} NaN" if n_nan else "", f"{n_inf} inf" if n_inf else "") if p)


def summary_lines(a, max_elements=6) -> list:
    """The values themselves when a has at most `max_elements` (a matrix row per line), else
    min / mean / max and the Frobenius norm ||a||_F, with NaN/inf counted."""
    a = np.asarray(a)
    if a.size == 0:
        return ["[]"]
    if a.size <= max_elements:
        if a.ndim == 0 or a.size == 1:
            return [_fmt(a.reshape(-1)[0])]
        if a.ndim == 2 and a.shape[0] > 1:
            return ["[" + " ".join(_fmt(v) for v in row) + "]" for row in a]
        return ["[" + " ".join(_fmt(v) for v in a.reshape(-1)) + "]"]
    finite = a[np.isfinite(a)]
    lines = ([f"min {_fmt(finite.min())}  mean {_fmt(finite.mean())}  max {_fmt(finite.max())}",
              f"‖·‖ {_fmt(_norm(finite))}"] if finite.size else [])
    bad = _bad(a)
    return lines + [bad] if bad else lines


def summary_line(a, max_elements=4) -> str:
    """A one-line summary: the values when there are at most `max_elements`, else the norm and mean."""
    a = np.asarray(a)
    if a.size <= max_elements:
        lines = summary_lines(a, max_elements)
        return lines[0] if len(lines) == 1 else "[" + " ".join(lines) + "]"
    finite = a[np.isfinite(a)]
    text = f"‖·‖ {_fmt(_norm(finite))}  mean {_fmt(finite.mean())}" if finite.size else ""
    bad = _bad(a)
    return f"{text}  {bad}".strip() if bad else text


# ============================================================ the picture: nodes, labels, groups

def _is_folded(t, fold_scalars) -> bool:
    return fold_scalars and t.creator is None and not t.requires_grad and t.name is None and t.size == 1


def _kind(t, tr) -> str:
    if t in tr.roots:
        return "root"
    if t.creator is not None:
        return "intermediate"
    return "parameter" if t.requires_grad else "input"


_FILL = {"root": "#fde68a", "parameter": "#dbeafe", "input": "#f3f4f6", "intermediate": "#ffffff"}
_KIND_WORD = {"root": "output", "parameter": "parameter", "input": "input", "intermediate": ""}


def _norm_colour(norm, lo=1e-6, hi=1e6) -> str:
    """Gradient norm -> colour on a log scale: blue (vanishing) .. white (about 1) .. red (exploding)."""
    if norm is None:
        return "#ffffff"
    if not np.isfinite(norm):
        return "#b91c1c"
    if norm == 0:
        return "#1e3a8a"
    x = (np.log10(norm) - np.log10(lo)) / (np.log10(hi) - np.log10(lo)) * 2 - 1  # -1 .. 1
    x = float(np.clip(x, -1, 1))
    blue, white, red = np.array([37, 99, 235]), np.array([255, 255, 255]), np.array([220, 38, 38])
    c = white + (blue - white) * (-x) if x < 0 else white + (red - white) * x
    return "#%02x%02x%02x" % tuple(int(round(v)) for v in c)


def _groups(tr) -> dict:
    """Module of each tensor (and of the op that made it): the prefix of a dotted name ("layers.0.W" ->
    "layers.0"); an unnamed intermediate joins the module all its consumers are in (when one of its own inputs
    is there too), or the module its inputs come from when it lies on the way to another module (the activation
    between two Dense layers); the cost after the last layer stays outside."""
    group = {}
    for t in tr.tensors:
        if t.name and "." in t.name:
            group[t] = t.name.rsplit(".", 1)[0]
    for t in reversed(tr.tensors):
        if t in group or t.creator is None or t.name:
            continue
        outs = {group.get(o) for o, _ in tr.consumers[t]}
        ins = {group.get(x) for x in t.creator.inputs}
        if len(outs) == 1 and None not in outs and outs & ins:
            group[t] = outs.pop()
    tentative = {}
    for t in tr.tensors:
        if t in group or t.creator is None or t.name:
            continue
        ins = {group.get(x, tentative.get(x)) for x in t.creator.inputs if x.requires_grad or x.creator is not None}
        if len(ins) == 1 and None not in ins:
            tentative[t] = ins.pop()
    confirmed = set()
    for t in reversed(tr.tensors):
        if t in tentative and any((group.get(o) not in (None, tentative[t])) or o in confirmed
                                  for o, _ in tr.consumers[t]):
            confirmed.add(t)
    group.update((t, tentative[t]) for t in confirmed)
    return group


def _q(s) -> str:
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _h(s) -> str:
    return html.escape(str(s), quote=True)


def _display_name(t, tr) -> str:
    return t.name or tr.ids[t]


class _Options:
    def __init__(self, show_values=True, show_grads=True, max_elements=6, color_by=None, group_modules=False,
                 collapse_modules=False, fold_scalars=True, max_nodes=400, rankdir="LR", title=None,
                 norm_range=(1e-6, 1e6), page=False):
        if color_by not in (None, "grad_norm", "value_norm"):
            raise ValueError(f"to_dot: color_by must be None, 'grad_norm' or 'value_norm', got {color_by!r}")
        if rankdir not in ("LR", "TB", "RL", "BT"):
            raise ValueError(f"to_dot: rankdir must be 'LR', 'TB', 'RL' or 'BT', got {rankdir!r}")
        if int(max_elements) < 0 or int(max_nodes) < 2:
            raise ValueError(f"to_dot: max_elements must be >= 0 and max_nodes >= 2, got {max_elements}, {max_nodes}")
        self.__dict__.update(locals())
        del self.__dict__["self"]


def _tensor_label(t, tr, o) -> str:
    kind = _kind(t, tr)
    rows = [f'<TR><TD><B>{_h(_display_name(t, tr))}</B></TD></TR>']
    meta = f"{tuple(t.shape)} {t.dtype}" + (f" · {_KIND_WORD[kind]}" if _KIND_WORD[kind] else "")
    rows.append(f'<TR><TD><FONT POINT-SIZE="9" COLOR="#4b5563">{_h(meta)}</FONT></TD></TR>')
    if o.show_values:
        lines = [summary_line(t.data)] if o.page else summary_lines(t.data, o.max_elements)
        colour = ' COLOR="#b91c1c"' if _bad(t.data) else ""
        rows.append(f'<TR><TD><FONT POINT-SIZE="10"{colour}>{"<BR/>".join(_h(s) for s in lines)}</FONT></TD></TR>')
    if o.show_grads and t.requires_grad and (tr.grads or o.page):
        g = tr.grads.get(t)
        if g is None:
            lines, colour = ["∇ —"], "#6b7280"
        else:
            lines = [summary_line(g)] if o.page else summary_lines(g, o.max_elements)
            lines = [("∇ " if i == 0 else "   ") + s for i, s in enumerate(lines)]
            colour = "#b91c1c" if _bad(g) else "#b45309"
        rows.append(f'<TR><TD><FONT POINT-SIZE="10" COLOR="{colour}">{"<BR/>".join(_h(s) for s in lines)}'
                    f'</FONT></TD></TR>')
    return '<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">' + "".join(rows) + "</TABLE>>"


def _tensor_attrs(t, tr, o) -> dict:
    kind = _kind(t, tr)
    fill = _FILL[kind]
    if o.color_by == "grad_norm" and t.requires_grad and tr.grads:
        fill = _norm_colour(None if t not in tr.grads else _norm(tr.grads[t]), *o.norm_range)
    elif o.color_by == "value_norm":
        fill = _norm_colour(_norm(t.data), *o.norm_range)
    bad = _bad(t.data) or (t in tr.grads and _bad(tr.grads[t]))
    style = "rounded,filled" + (",dashed" if kind == "input" else "") + (",bold" if kind == "root" else "")
    attrs = {"id": tr.ids[t], "shape": "box", "style": style, "fillcolor": fill, "label": _tensor_label(t, tr, o),
             "tooltip": f"{_display_name(t, tr)} {tuple(t.shape)} {t.dtype}"}
    if kind == "root":
        attrs["peripheries"] = "2"
    if bad:
        attrs["color"], attrs["penwidth"] = "#dc2626", "2.5"
    return attrs


_SYMBOL = {"Add": "+", "Sub": "−", "Mul": "×", "Div": "÷", "Maximum": "max", "Where": "where"}


def _op_label(fn, o) -> str:
    """The op's name; a folded scalar constant is written where it stands, e.g. "Sub\n1 − ·"."""
    consts = [(k, x) for k, x in enumerate(fn.inputs) if _is_folded(x, o.fold_scalars)]
    if not consts:
        return fn.name
    parts = ["·" if not _is_folded(x, o.fold_scalars) else _fmt(x.data.reshape(-1)[0]) for x in fn.inputs]
    sym = _SYMBOL.get(fn.name)
    if sym in ("max", "where") or sym is None or len(parts) != 2:
        expr = f"{sym or fn.name.lower()}({', '.join(parts)})"
    else:
        expr = f"{parts[0]} {sym} {parts[1]}"
    return fn.name + "\n" + expr


def _attr_text(attrs) -> str:
    parts = []
    for k, v in attrs.items():
        parts.append(f"{k}={v}" if k == "label" and str(v).startswith("<") else f"{k}={_q(v)}")
    return "[" + " ".join(parts) + "]"


def _keep_set(tr, o):
    """The nodes to draw: all, or (for a graph bigger than max_nodes) the ones nearest the root, breadth first."""
    nodes = [t for t in tr.tensors if not _is_folded(t, o.fold_scalars)]
    total = len(nodes) + sum(1 for t in nodes if t.creator is not None)
    if total <= o.max_nodes:
        return set(nodes), 0, {}
    keep, count, frontier, i = set(), 0, list(tr.roots), 0
    while i < len(frontier) and count < o.max_nodes:
        t = frontier[i]
        i += 1
        if t in keep or _is_folded(t, o.fold_scalars):
            continue
        keep.add(t)
        count += 1 + (t.creator is not None)
        if t.creator is not None:
            frontier.extend(x for x in t.creator.inputs if x not in keep)
    elided = [t for t in nodes if t not in keep]
    ops = {}
    for t in elided:
        if t.creator is not None:
            ops[t.creator.name] = ops.get(t.creator.name, 0) + 1
    return keep, len(elided), ops


def _dot_lines(tr, o) -> list:
    """The statements of the DOT graph (shared by to_dot and draw_graph)."""
    lines = [f"rankdir={o.rankdir} ranksep=0.3 nodesep=0.25", 'node [fontname="Helvetica,Arial,sans-serif" fontsize=11]',
             'edge [fontname="Helvetica,Arial,sans-serif" fontsize=9 color="#6b7280" arrowsize=0.7]']
    label = o.title or ""
    if tr.note and o.show_grads:
        label = f"{label}\n{tr.note}" if label else tr.note
    if label:
        lines.append(f"label={_q(label)} labelloc=t fontname=\"Helvetica,Arial,sans-serif\" fontsize=14")
    keep, n_elided, elided_ops = _keep_set(tr, o)
    group = _groups(tr) if (o.group_modules or o.collapse_modules) else {}
    module_node = {}
    if o.collapse_modules:
        for t in tr.tensors:
            if t in group and t in keep:
                module_node.setdefault(group[t], []).append(t)

    def node_of(t):  # the DOT node a tensor is drawn as
        return f"m_{_safe(group[t])}" if o.collapse_modules and t in group else tr.ids[t]

    def op_of(t):
        return f"m_{_safe(group[t])}" if o.collapse_modules and t in group else "f" + tr.ids[t][1:]

    clusters = {}  # group -> statements
    for t in tr.tensors:
        if t not in keep or (o.collapse_modules and t in group):
            continue
        stmts = [f"{tr.ids[t]} {_attr_text(_tensor_attrs(t, tr, o))}"]
        if t.creator is not None:
            fid = "f" + tr.ids[t][1:]
            attrs = {"id": fid, "shape": "ellipse", "style": "filled", "fillcolor": "#e5e7eb",
                     "label": _op_label(t.creator, o), "tooltip": t.creator.rule or t.creator.name}
            stmts.append(f"{fid} {_attr_text(attrs)}")
        target = clusters.setdefault(group[t], []) if (o.group_modules and t in group) else lines
        target.extend(stmts)
    for name, members in module_node.items():
        lines.append(f"m_{_safe(name)} {_attr_text(_module_attrs(name, members, tr, o))}")
    for name, stmts in clusters.items():
        lines.append(f"subgraph {_q('cluster_' + name)} {{")
        lines.append(f'label={_q(name)} style="rounded,dashed" color="#9ca3af" fontname="Helvetica" fontsize=11')
        lines.extend("  " + s for s in stmts)
        lines.append("}")
    edges = set()
    for t in tr.tensors:
        if t not in keep or t.creator is None:
            continue
        fid, head = "f" + tr.ids[t][1:], op_of(t)
        if not (o.collapse_modules and t in group):
            lines.append(f"{fid} -> {tr.ids[t]} [id={_q('o' + tr.ids[t][1:])}]")
        for k, x in enumerate(t.creator.inputs):
            if _is_folded(x, o.fold_scalars) or x not in keep:
                continue
            tail = node_of(x)
            if tail == head:
                continue  # inside one collapsed module
            attrs = {"id": f"e{tr.ids[t][1:]}_{k}"}
            if o.color_by == "grad_norm" and x in tr.grads:
                attrs["color"] = _edge_colour(_norm(tr.grads[x]), o)
                attrs["penwidth"] = "2"
            if o.collapse_modules:
                if (tail, head) in edges:
                    continue
                edges.add((tail, head))
            lines.append(f"{tail} -> {head} {_attr_text(attrs)}")
    if n_elided:
        summary = ", ".join(f"{name}×{n}" for name, n in sorted(elided_ops.items(), key=lambda kv: (-kv[1], kv[0])))
        text = f"… {n_elided} more tensors not drawn\n(ops: {summary})" if summary else f"… {n_elided} more tensors"
        lines.append(f"elided [id=\"elided\" shape=note style=filled fillcolor=\"#f9fafb\" label={_q(text)}]")
        for t in tr.tensors:
            if t in keep and t.creator is not None and any(x not in keep and not _is_folded(x, o.fold_scalars)
                                                           for x in t.creator.inputs):
                lines.append(f"elided -> {op_of(t)} [style=dashed]")
    if o.color_by == "grad_norm" and tr.grads:
        lo, hi = o.norm_range
        legend = (f"colour = ‖∇‖: blue ≤ {_fmt(lo)} (vanishing), white ≈ 1, red ≥ {_fmt(hi)} (exploding); "
                  f"dark blue = exactly 0")
        lines.append(f"legend [shape=plaintext fontsize=10 label={_q(legend)}]")
    return lines


def _edge_colour(norm, o):
    c = _norm_colour(norm, *o.norm_range)
    return "#9ca3af" if c == "#ffffff" else c


def _safe(name) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name)


def _module_attrs(name, members, tr, o) -> dict:
    params = [t for t in members if t.creator is None and t.requires_grad]
    rows = [f'<TR><TD><B>{_h(name)}</B></TD></TR>',
            f'<TR><TD><FONT POINT-SIZE="9" COLOR="#4b5563">{len(members)} tensors</FONT></TD></TR>']
    norms = []
    for p in params:
        text = f"{_display_name(p, tr).rsplit('.', 1)[-1]} {tuple(p.shape)}"
        if o.show_grads and p in tr.grads:
            norms.append(_norm(tr.grads[p]))
            text += f"  ‖∇‖ {_fmt(norms[-1])}"
        rows.append(f'<TR><TD><FONT POINT-SIZE="10">{_h(text)}</FONT></TD></TR>')
    fill = "#ede9fe"
    if o.color_by == "grad_norm" and norms:
        fill = _norm_colour(max(norms), *o.norm_range)
    label = '<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">' + "".join(rows) + "</TABLE>>"
    return {"id": f"m_{_safe(name)}", "shape": "box3d", "style": "filled", "fillcolor": fill, "label": label}


# ============================================================ public: DOT text, Digraph, render

def to_dot(root, show_values=True, show_grads=True, max_elements=6, *, grad=None, color_by=None,
           group_modules=False, collapse_modules=False, fold_scalars=True, max_nodes=400, rankdir="LR",
           title=None, norm_range=(1e-6, 1e6)) -> str:
    """The graph of `root` as DOT text (pure: no Graphviz needed). Each tensor node shows its name, shape, dtype,
    a summary of its value and of its gradient dJ/dt (computed by this call: one backward pass with
    retain_graph=True, course notes 2.3); each op node shows the op's name.

    max_elements: show the values themselves up to this size, else min/mean/max and ||.||_F.
    color_by="grad_norm": colour nodes and edges by ||dJ/dt|| on a log scale (course notes 3.2.2).
    group_modules: a dashed cluster per module prefix ("layers.0.W" -> "layers.0"); collapse_modules: one node each.
    fold_scalars: unnamed scalar constants are written inside their op ("Mul with 0.5") instead of as nodes.
    max_nodes: a bigger graph is summarized: the nodes nearest the root are drawn, the rest counted in one note.
    """
    o = _Options(show_values, show_grads, max_elements, color_by, group_modules, collapse_modules, fold_scalars,
                 max_nodes, rankdir, title, norm_range)
    tr = trace(root, grad, gradients=show_grads or color_by == "grad_norm")
    return "digraph tinygrad_dl {\n" + "\n".join("  " + s for s in _dot_lines(tr, o)) + "\n}\n"


def draw_graph(root, show_values=True, show_grads=True, max_elements=6, **options):
    """The graph as a `graphviz.Digraph` (displays inline in Jupyter); same options as `to_dot`.
    Needs the `viz` extra: pip install tinygrad_dl[viz]."""
    try:
        import graphviz
    except ImportError:
        raise ImportError("draw_graph: needs the graphviz Python package: pip install 'tinygrad_dl[viz]' "
                          "(or pip install graphviz); to_dot() works without it") from None
    text = to_dot(root, show_values, show_grads, max_elements, **options)
    body = text.split("\n", 1)[1].rsplit("}", 1)[0]
    return graphviz.Digraph(name="tinygrad_dl", body=[line + "\n" for line in body.strip("\n").split("\n")])


def _dot_binary(dot_path=None):
    exe = shutil.which("dot")
    if exe is None:
        where = f" The DOT text was written to {dot_path}." if dot_path else ""
        raise GraphvizNotFoundError(f"Graphviz's `dot` program was not found on PATH; {_INSTALL}.{where}")
    return exe


def _run_dot(dot_text, fmt, dot_path=None) -> bytes:
    exe = _dot_binary(dot_path)
    proc = subprocess.run([exe, f"-T{fmt}"], input=dot_text.encode("utf-8"), capture_output=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"dot failed (exit {proc.returncode}): {proc.stderr.decode(errors='replace')[:2000]}")
    return proc.stdout


def render(root, path, format="svg", **options) -> str:
    """Write `path.dot` (the DOT text of `to_dot(root, **options)`), then render it with Graphviz's `dot` to
    `path.<format>` and return that path. A `path` already ending in `.<format>` is used as is.
    Without `dot` on PATH: GraphvizNotFoundError naming the install command and the .dot file written."""
    path = os.fspath(path)
    if not isinstance(format, str) or not format.isalnum():
        raise ValueError(f"render: format must be a Graphviz output format such as 'svg' or 'png', got {format!r}")
    base = path[: -len(format) - 1] if path.endswith("." + format) else path
    text = to_dot(root, **options)
    dot_path, out_path = base + ".dot", base + "." + format
    os.makedirs(os.path.dirname(os.path.abspath(dot_path)), exist_ok=True)
    with open(dot_path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    data = _run_dot(text, format, dot_path)
    with open(out_path, "wb") as f:
        f.write(data)
    return out_path


# ============================================================ the backprop page

def _short(t, tr) -> str:
    name = _display_name(t, tr)
    return name.rsplit(".", 1)[-1] if "." in name else name


def _course_rule(step, tr) -> list:
    """The op's derivative in the course's notation, with this graph's names (course notes 1.2, 2.3)."""
    fn, out = step["fn"], step["out"]
    ins = fn.inputs
    n = [_display_name(x, tr) for x in ins]
    y = _display_name(out, tr)
    name, lines = fn.name, []
    consumer_names = [o.name or "" for o, _ in tr.consumers.get(out, [])]
    dense_z = out.name and out.name.endswith(".Z") or any(c.endswith(".Z") for c in consumer_names)
    if name == "MatMul":
        a, b = n
        if dense_z and (ins[0].name or "").endswith(".W"):
            lines += ["dW = dZ · A_prevᵀ   (course eq. 2.10; the 1/m is already inside dZ, from the cost's mean)",
                      "dA_prev = Wᵀ · dZ   (course eq. 2.12, before the * g'(Z))"]
        elif ins[0].creator is not None and ins[0].creator.name == "Transpose":
            lines += ["Z = wᵀX: d(wᵀ) = dZ · Xᵀ, so dw = X · dZᵀ   (course alg. 1.3; 1/m comes from the mean)"]
        lines += [f"d{a} = d{y} · ({b})ᵀ", f"d{b} = ({a})ᵀ · d{y}"]
    elif name == "Add":
        for x, nx in zip(ins, n):
            if x.shape != out.shape:
                what = "db = sum(dZ, axis=1)   (course eq. 2.11: b was broadcast over the m columns)" \
                    if (x.name or "").endswith(".b") or (x.name or "") == "b" else f"d{nx} = d{y} summed over the broadcast axes"
                lines.append(what)
            else:
                lines.append(f"d{nx} = d{y}")
    elif name == "Sub":
        lines += [f"d{n[0]} = d{y}", f"d{n[1]} = -d{y}"]
    elif name == "Mul":
        lines += [f"d{n[0]} = d{y} * {n[1]}", f"d{n[1]} = d{y} * {n[0]}"]
    elif name == "Div":
        lines += [f"d{n[0]} = d{y} / {n[1]}", f"d{n[1]} = -d{y} * {y} / {n[1]}"]
    elif name == "Tanh":
        lines += [f"dZ = dA * (1 - A²)   (g'(z) = 1 - tanh(z)², course 2.3):  d{n[0]} = d{y} * (1 - {y}²)"]
    elif name == "Exp":
        lines += [f"d{n[0]} = d{y} * {y}"]
    elif name == "Log":
        lines += [f"d{n[0]} = d{y} / {n[0]}"]
    elif name == "Maximum":
        lines += ["ReLU: dZ = dA * g'(Z) with g'(z) = [z > 0]   (course 2.3; a tie z = 0 gets 1/2)"]
    elif name == "Where":
        lines += [f"d{n[0]} = d{y} where the condition holds, d{n[1]} = d{y} elsewhere"]
    elif name == "Sum":
        lines += [f"d{n[0]} = d{y} broadcast back to {tuple(ins[0].shape)}"]
    elif name == "Transpose":
        lines += [f"d{n[0]} = (d{y})ᵀ"]
    elif name == "Neg":
        lines += [f"d{n[0]} = -d{y}"]
    else:
        lines += [f"{'d' + nx} = local rule applied to d{y}" for nx in n]
    constant = [f"d{nx} " for x, nx in zip(ins, n) if not x.requires_grad]
    return [line for line in lines if not any(line.startswith(c) for c in constant)]


def _flat(a, limit):
    a = np.asarray(a)
    return [float(v) for v in a.reshape(-1)] if a.size <= limit else None


def backprop_html(root, path, *, grad=None, title=None, max_elements=6, embed_limit=256, rankdir="LR",
                  fold_scalars=True) -> str:
    """Write ONE self-contained HTML page that walks the backward pass of `root` in the engine's exact order
    (course notes 2.3): step 0 is the forward graph, step k highlights the k-th op differentiated, shows the
    gradient flowing into each of its inputs (on the edge and in the side panel, with the local rule in the
    course's notation), and the last step lists every leaf's gradient. Next/Previous buttons, the arrow keys
    and a `#step=N` URL fragment move between steps. The graph is an inline SVG made by Graphviz's `dot` now;
    no network is used when the page is viewed. Machine-readable state: `body[data-step]`, `.flow[data-grad]`,
    node `data-grad` (JSON lists of the values, for arrays of at most `embed_limit` elements)."""
    path = os.fspath(path)
    roots = _roots(root, "backprop_html")
    tr = trace(roots, grad)
    if not tr.steps and not tr.grads:
        raise ValueError("backprop_html: nothing to step through: the root does not require grad"
                         + (f" ({tr.note})" if tr.note else ""))
    o = _Options(True, True, max_elements, None, False, False, fold_scalars, 10 ** 9, rankdir, title, page=True)
    dot_text = "digraph tinygrad_dl {\n" + "\n".join("  " + s for s in _dot_lines(tr, o)) + "\n}\n"
    svg = _page_svg(_run_dot(dot_text, "svg"), tr)
    data = _page_data(tr, embed_limit)
    page = _PAGE.replace("/*DATA*/", json.dumps(data, ensure_ascii=False, sort_keys=True).replace("</", "<\\/"))
    page = page.replace("<!--SVG-->", svg).replace("<!--TITLE-->", _h(title or "Backpropagation, step by step"))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(page)
    return path


def _page_svg(svg_bytes, tr) -> str:
    """Tag each tensor node's gradient line (the last text of its label) so the page can rewrite it."""
    ns = "http://www.w3.org/2000/svg"
    ET.register_namespace("", ns)
    ET.register_namespace("xlink", "http://www.w3.org/1999/xlink")
    tree = ET.fromstring(svg_bytes)
    ids = {tr.ids[t]: t for t in tr.tensors}
    for g in tree.iter(f"{{{ns}}}g"):
        t = ids.get(g.get("id"))
        if t is None or not t.requires_grad:
            continue
        texts = list(g.iter(f"{{{ns}}}text"))
        if texts:
            texts[-1].set("class", "grad-text")
            texts[-1].set("id", "g" + g.get("id"))
    return ET.tostring(tree, encoding="unicode")


def _page_data(tr, limit) -> dict:
    steps, accum = [], {}
    for r, g in tr.seed_grads.items():
        accum[r] = g.copy()
    start = {tr.ids[r]: {"summary": "∇ " + summary_line(g), "grad": _flat(g, limit), "shape": list(g.shape)}
             for r, g in tr.seed_grads.items()}
    for s in tr.steps:
        fn, out = s["fn"], s["out"]
        flows, changed = [], {}
        for k, (x, gx) in enumerate(zip(fn.inputs, s["in_grads"])):
            if gx is None or not x.requires_grad:
                continue
            accum[x] = gx.copy() if x not in accum else accum[x] + gx
            flows.append({"tensor": tr.ids[x], "index": k, "name": _display_name(x, tr), "shape": list(gx.shape),
                          "summary": summary_line(gx), "lines": summary_lines(gx, 6), "grad": _flat(gx, limit),
                          "edge": f"e{tr.ids[out][1:]}_{k}"})
            changed[tr.ids[x]] = {"summary": "∇ " + summary_line(accum[x]), "grad": _flat(accum[x], limit),
                                  "shape": list(accum[x].shape)}
        steps.append({"op": "f" + tr.ids[out][1:], "out": tr.ids[out], "name": fn.name, "rule": fn.rule,
                      "out_name": _display_name(out, tr), "course": _course_rule(s, tr),
                      "grad_out": {"summary": summary_line(s["grad_out"]), "lines": summary_lines(s["grad_out"], 6),
                                   "grad": _flat(s["grad_out"], limit), "shape": list(s["grad_out"].shape)},
                      "flows": flows, "changed": changed})
    leaves = [{"tensor": tr.ids[t], "name": _display_name(t, tr), "shape": list(t.shape),
               "summary": summary_line(tr.grads[t]), "lines": summary_lines(tr.grads[t], 6),
               "grad": _flat(tr.grads[t], limit)}
              for t in tr.tensors if t.creator is None and t.requires_grad and t in tr.grads]
    return {"start": start, "steps": steps, "leaves": leaves,
            "roots": [tr.ids[r] for r in tr.roots], "tensors": [tr.ids[t] for t in tr.tensors if t.requires_grad]}


_PAGE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title><!--TITLE--></title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#111827;display:flex;height:100vh}
#graph{flex:1 1 auto;overflow:auto;padding:8px;background:#fff}
#side{flex:0 0 380px;border-left:1px solid #e5e7eb;padding:12px 14px;overflow:auto;background:#f9fafb}
h1{font-size:17px;margin:0 0 8px}
#nav{display:flex;gap:8px;align-items:center;margin-bottom:10px}
button{font:inherit;padding:4px 12px;border:1px solid #9ca3af;border-radius:6px;background:#fff;cursor:pointer}
button:disabled{opacity:.4;cursor:default}
.rule{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px;background:#fff;border:1px solid #e5e7eb;border-radius:6px;padding:6px 8px;margin:6px 0;white-space:pre-wrap}
.course{color:#1d4ed8}
.flow,.leaf-grad,.gout{background:#fff;border:1px solid #e5e7eb;border-left:4px solid #f59e0b;border-radius:6px;padding:6px 8px;margin:6px 0}
.flow b,.leaf-grad b{font-family:ui-monospace,Menlo,Consolas,monospace}
pre{margin:2px 0 0;font-size:12px;white-space:pre-wrap}
.hint{color:#6b7280;font-size:12px}
.node.active ellipse,.node.active polygon,.node.active path{stroke:#ea580c;stroke-width:4px;fill:#fed7aa}
.node.active-out polygon,.node.active-out path{stroke:#ea580c;stroke-width:3px}
.node.receiving polygon,.node.receiving path{stroke:#2563eb;stroke-width:3px}
.node.leaf-final polygon,.node.leaf-final path{stroke:#16a34a;stroke-width:3px}
.edge.flowing path{stroke:#ea580c;stroke-width:3px}
.edge.flowing polygon{stroke:#ea580c;fill:#ea580c}
.grad-text.unknown{fill:#9ca3af}
.grad-text.fresh{fill:#dc2626;font-weight:bold}
.flow-label rect{fill:#fff7ed;stroke:#ea580c;stroke-width:1}
.flow-label text{font:bold 11px Helvetica,Arial,sans-serif;fill:#9a3412}
</style></head>
<body data-step="0">
<div id="graph"><!--SVG--></div>
<div id="side">
<h1><!--TITLE--></h1>
<div id="nav"><button id="prev" type="button">&larr; Previous</button><button id="next" type="button">Next &rarr;</button>
<span id="counter"></span></div>
<div class="hint">Arrow keys also step; the address ends in #step=N.</div>
<div id="panel"></div>
</div>
<script id="steps-data" type="application/json">/*DATA*/</script>
<script>
(function(){
"use strict";
var D = JSON.parse(document.getElementById("steps-data").textContent);
var N = D.steps.length + 1;  // 0 = forward graph, 1..len = ops, len+1 = every leaf's gradient
var SVGNS = "http://www.w3.org/2000/svg";
function el(tag, cls, text){var e=document.createElement(tag); if(cls) e.className=cls; if(text!==undefined) e.textContent=text; return e;}
function esc(s){return String(s);}
function setGrad(id, info){
  var node = document.getElementById(id); if(!node) return;
  var t = document.getElementById("g"+id);
  if(info){ if(t){t.textContent = info.summary; t.classList.remove("unknown");}
    node.setAttribute("data-grad", JSON.stringify(info.grad)); node.setAttribute("data-grad-shape", JSON.stringify(info.shape));
    node.setAttribute("data-grad-summary", info.summary);
  } else { if(t){t.textContent = "\u2207 ?"; t.classList.add("unknown");}
    node.removeAttribute("data-grad"); node.removeAttribute("data-grad-shape"); node.removeAttribute("data-grad-summary"); }
}
function clear(){
  document.querySelectorAll(".active,.active-out,.receiving,.flowing,.leaf-final").forEach(function(e){
    e.classList.remove("active","active-out","receiving","flowing","leaf-final");});
  document.querySelectorAll(".grad-text.fresh").forEach(function(e){e.classList.remove("fresh");});
  document.querySelectorAll(".flow-label").forEach(function(e){e.parentNode.removeChild(e);});
}
function edgeLabel(edgeId, text){
  var edge = document.getElementById(edgeId); if(!edge) return;
  edge.classList.add("flowing");
  var path = edge.querySelector("path"); if(!path || !path.getTotalLength) return;
  var p = path.getPointAtLength(path.getTotalLength()/2);
  var g = document.createElementNS(SVGNS,"g"); g.setAttribute("class","flow-label"); g.setAttribute("data-edge", edgeId);
  var r = document.createElementNS(SVGNS,"rect"); var t = document.createElementNS(SVGNS,"text");
  t.setAttribute("x", p.x); t.setAttribute("y", p.y+4); t.setAttribute("text-anchor","middle"); t.textContent = text;
  g.appendChild(r); g.appendChild(t); edge.parentNode.appendChild(g);
  var b = t.getBBox(); r.setAttribute("x", b.x-3); r.setAttribute("y", b.y-2); r.setAttribute("width", b.width+6);
  r.setAttribute("height", b.height+4); r.setAttribute("rx", 3);
}
function block(cls, title, lines, data){
  var d = el("div", cls); var h = el("div"); h.appendChild(el("b", "", title)); d.appendChild(h);
  d.appendChild(el("pre", "", lines.join("\n")));
  for(var k in data){ d.setAttribute(k, data[k]); }
  return d;
}
function show(k){
  k = Math.max(0, Math.min(N, k|0));
  clear();
  D.tensors.forEach(function(id){ setGrad(id, D.start[id] || null); });
  for(var i=0;i<k && i<D.steps.length;i++){ var ch = D.steps[i].changed; for(var id in ch){ setGrad(id, ch[id]); } }
  var panel = document.getElementById("panel"); panel.innerHTML = "";
  document.body.setAttribute("data-step", k);
  document.getElementById("counter").textContent = "step " + k + " / " + N;
  document.getElementById("prev").disabled = k === 0; document.getElementById("next").disabled = k === N;
  if(k === 0){
    panel.appendChild(el("h2","", "Forward pass"));
    panel.appendChild(el("p","", "Each box is a tensor (value, then gradient \u2207 once known); each oval is an op. " +
      "Backpropagation starts at the output with dJ/dJ = 1 and visits the ops in reverse order. Press Next."));
  } else if(k <= D.steps.length){
    var s = D.steps[k-1];
    var opNode = document.getElementById(s.op); opNode.classList.add("active");
    if(opNode.scrollIntoView) opNode.scrollIntoView({block: "center", inline: "center"});
    var out = document.getElementById(s.out); if(out) out.classList.add("active-out");
    panel.appendChild(el("h2","", "Step " + k + ": " + s.name + " \u2192 " + s.out_name));
    panel.setAttribute("data-op", s.op);
    panel.appendChild(el("div","rule", "local rule:  " + s.rule));
    var c = el("div","rule course", s.course.join("\n")); panel.appendChild(c);
    panel.appendChild(block("gout", "incoming d" + s.out_name + "  " + JSON.stringify(s.grad_out.shape), s.grad_out.lines,
      {"data-tensor": s.out, "data-grad": JSON.stringify(s.grad_out.grad), "data-grad-shape": JSON.stringify(s.grad_out.shape)}));
    s.flows.forEach(function(f){
      var n = document.getElementById(f.tensor); if(n) n.classList.add("receiving");
      var t = document.getElementById("g"+f.tensor); if(t) t.classList.add("fresh");
      edgeLabel(f.edge, "d" + f.name.split(".").pop() + " " + f.summary);
      panel.appendChild(block("flow", "d" + f.name + " += (input " + f.index + ")  " + JSON.stringify(f.shape), f.lines,
        {"data-tensor": f.tensor, "data-input-index": f.index, "data-grad": JSON.stringify(f.grad),
         "data-grad-shape": JSON.stringify(f.shape), "data-edge": f.edge}));
    });
  } else {
    panel.appendChild(el("h2","", "Done: every leaf's gradient"));
    panel.appendChild(el("p","", "These are the values an ordinary backward() writes into each parameter's .grad."));
    D.leaves.forEach(function(l){
      var n = document.getElementById(l.tensor); if(n) n.classList.add("leaf-final");
      panel.appendChild(block("leaf-grad", "d" + l.name + "  " + JSON.stringify(l.shape), l.lines,
        {"data-tensor": l.tensor, "data-name": l.name, "data-grad": JSON.stringify(l.grad), "data-grad-shape": JSON.stringify(l.shape)}));
    });
  }
  var want = "#step=" + k;
  if(location.hash !== want){ history.replaceState(null, "", want); }
}
function current(){ return parseInt(document.body.getAttribute("data-step"), 10) || 0; }
function fromHash(){ var m = /step=(\d+)/.exec(location.hash); return m ? parseInt(m[1], 10) : 0; }
document.getElementById("next").addEventListener("click", function(){ show(current()+1); });
document.getElementById("prev").addEventListener("click", function(){ show(current()-1); });
document.addEventListener("keydown", function(e){
  if(e.key === "ArrowRight" || e.key === "ArrowDown"){ show(current()+1); e.preventDefault(); }
  else if(e.key === "ArrowLeft" || e.key === "ArrowUp"){ show(current()-1); e.preventDefault(); }
});
window.addEventListener("hashchange", function(){ if(fromHash() !== current()) show(fromHash()); });
document.body.setAttribute("data-nsteps", N);
show(fromHash());
})();
</script>
</body></html>
"""
