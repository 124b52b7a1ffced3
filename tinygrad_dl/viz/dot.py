"""The graph as DOT text, pure: no Graphviz needed to write it (course notes 2.3: values forward, gradients back).

Ids: the i-th tensor of `toposort(roots, include_constants=True)` is `t{i}`, the op that made it `f{i}`, the k-th
input edge of that op `e{i}_{k}` and its output edge `o{i}`. Every string that comes from the user (tensor names, op
names, rules, titles) is escaped here for DOT: labels are HTML-like labels whose text is entity-escaped (so a name
can never open a tag, a link or a port), and backslashes are doubled because Graphviz reads \\N, \\G, \\l ... in
labels and tooltips.

What is drawn stays tractable for `dot`: a graph over `max_nodes` shows the part nearest the root and counts the
rest in one note, and a tensor that feeds more than `max_fanout` ops (an RNN's shared input, a weight used at every
step) is drawn once with a small copy beside each further use, instead of edges that cross the whole picture.
"""
from __future__ import annotations

import re

import numpy as np

from .summary import bad, clean, fmt, norm, summary_line, summary_lines
from .trace import trace

FONT = "Helvetica,Arial,sans-serif"

# ============================================================ escaping for DOT


def html_text(text) -> str:
    """Text for inside an HTML-like label: entities for & < > " ', a doubled backslash (Graphviz turns \\\\ into one
    backslash and would read \\N as the node's name), <BR/> for a newline."""
    s = clean(text).replace("\\", "\\\\").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return s.replace('"', "&quot;").replace("'", "&#39;").replace("\n", "<BR/>")


def quoted(text) -> str:
    """A DOT double-quoted string for our own ids and attribute values (no escString meaning)."""
    return '"' + clean(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def tooltip(text) -> str:
    """A quoted tooltip: Graphviz unescapes a tooltip once more before reading \\N etc., so a literal backslash
    is written as four."""
    return '"' + clean(text).replace("\\", "\\\\\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def attr_text(attrs) -> str:
    """[k="v" ...]: `label` is always markup built here (never decided by its content), `tooltip` is a tooltip."""
    parts = []
    for k, v in attrs.items():
        if k == "label":
            parts.append(f"label=<{v}>")
        elif k == "tooltip":
            parts.append(f"tooltip={tooltip(v)}")
        else:
            parts.append(f"{k}={quoted(v)}")
    return "[" + " ".join(parts) + "]"


def safe_id(name) -> str:
    return "".join(ch if ch.isascii() and ch.isalnum() else "_" for ch in str(name))


# ============================================================ options


class Options:
    def __init__(self, show_values=True, show_grads=True, max_elements=6, color_by=None, group_modules=False,
                 collapse_modules=False, fold_scalars=True, max_nodes=400, rankdir="LR", title=None,
                 norm_range=(1e-6, 1e6), max_fanout=8, page=False, where="to_dot"):
        if color_by not in (None, "grad_norm", "value_norm"):
            raise ValueError(f"{where}: color_by must be None, 'grad_norm' or 'value_norm', got {color_by!r}")
        if rankdir not in ("LR", "TB", "RL", "BT"):
            raise ValueError(f"{where}: rankdir must be 'LR', 'TB', 'RL' or 'BT', got {rankdir!r}")
        for key, value, low in (("max_elements", max_elements, 0), ("max_nodes", max_nodes, 2),
                                ("max_fanout", max_fanout, 1)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"{where}: {key} must be an integer >= {low}, got {value!r}")
        self.__dict__.update(locals())
        del self.__dict__["self"]


# ============================================================ nodes: kinds, colours, modules


def is_folded(t, o) -> bool:
    return o.fold_scalars and t.creator is None and not t.requires_grad and t.name is None and t.size == 1


def kind(t, tr) -> str:
    if t in tr.roots:
        return "root"
    if t.creator is not None:
        return "intermediate"
    return "parameter" if t.requires_grad else "input"


FILL = {"root": "#fde68a", "parameter": "#dbeafe", "input": "#f3f4f6", "intermediate": "#ffffff"}
KIND_WORD = {"root": "output", "parameter": "parameter", "input": "input", "intermediate": ""}


def norm_colour(value, lo=1e-6, hi=1e6) -> str:
    """Gradient norm -> colour on a log scale: blue (vanishing) .. white (about 1) .. red (exploding)."""
    if value is None:
        return "#ffffff"
    if not np.isfinite(value):
        return "#b91c1c"
    if value == 0:
        return "#1e3a8a"
    x = (np.log10(value) - np.log10(lo)) / (np.log10(hi) - np.log10(lo)) * 2 - 1  # -1 .. 1
    x = float(np.clip(x, -1, 1))
    blue, white, red = np.array([37, 99, 235]), np.array([255, 255, 255]), np.array([220, 38, 38])
    c = white + (blue - white) * (-x) if x < 0 else white + (red - white) * x
    return "#%02x%02x%02x" % tuple(int(round(v)) for v in c)


def edge_colour(value, o) -> str:
    c = norm_colour(value, *o.norm_range)
    return "#9ca3af" if c == "#ffffff" else c


def groups(tr) -> dict:
    """Module of each tensor (and of the op that made it): the prefix of a dotted name ("layers.0.W" ->
    "layers.0"); an unnamed intermediate joins the module all its consumers are in (when one of its own inputs
    is there too), or the module its inputs come from when it lies on the way to another module (the activation
    between two Dense layers); the cost after the last layer stays outside."""
    group = {}
    for t in tr.tensors:
        if t.name and "." in str(t.name):
            group[t] = str(t.name).rsplit(".", 1)[0]
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


def unique_ids(names, prefix) -> dict:
    """{name: DOT id}: prefix + the name's letters and digits, numbered when two names would collide."""
    ids, used = {}, set()
    for name in names:
        base = prefix + safe_id(name)
        ident, n = base, 1
        while ident in used:
            n += 1
            ident = f"{base}_{n}"
        used.add(ident)
        ids[name] = ident
    return ids


# ============================================================ labels (HTML-like markup; text always html_text)

TABLE = '<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">'


def _row(text_markup, size=None, colour=None) -> str:
    attrs = (f' POINT-SIZE="{size}"' if size else "") + (f' COLOR="{colour}"' if colour else "")
    return f"<TR><TD><FONT{attrs}>{text_markup}</FONT></TD></TR>" if attrs else f"<TR><TD>{text_markup}</TD></TR>"


def _lines(lines) -> str:
    return "<BR/>".join(html_text(s) for s in lines)


def tensor_label(t, tr, o) -> str:
    k = kind(t, tr)
    rows = [f"<TR><TD><B>{html_text(tr.name(t))}</B></TD></TR>"]
    meta = f"{tuple(t.shape)} {t.dtype}" + (f" · {KIND_WORD[k]}" if KIND_WORD[k] else "")
    rows.append(_row(html_text(meta), 9, "#4b5563"))
    if o.show_values:
        lines = [summary_line(t.data)] if o.page else summary_lines(t.data, o.max_elements)
        rows.append(_row(_lines(lines), 10, "#b91c1c" if bad(t.data) else None))
    if o.show_grads and t.requires_grad and (tr.grads or o.page):
        g = tr.grads.get(t)
        if g is None:
            lines, colour = ["∇ —"], "#6b7280"
        else:
            lines = [summary_line(g)] if o.page else summary_lines(g, o.max_elements)
            lines = [("∇ " if i == 0 else "   ") + s for i, s in enumerate(lines)]
            colour = "#b91c1c" if bad(g) else "#b45309"
        rows.append(_row(_lines(lines), 10, colour))
    return TABLE + "".join(rows) + "</TABLE>"


def tensor_attrs(t, tr, o) -> dict:
    k = kind(t, tr)
    fill = FILL[k]
    if o.color_by == "grad_norm" and t.requires_grad and tr.grads:
        fill = norm_colour(None if t not in tr.grads else norm(tr.grads[t]), *o.norm_range)
    elif o.color_by == "value_norm":
        fill = norm_colour(norm(t.data), *o.norm_range)
    flagged = bad(t.data) or (t in tr.grads and bad(tr.grads[t]))
    style = "rounded,filled" + (",dashed" if k == "input" else "") + (",bold" if k == "root" else "")
    attrs = {"id": tr.ids[t], "shape": "box", "style": style, "fillcolor": fill, "label": tensor_label(t, tr, o),
             "tooltip": f"{tr.name(t)} {tuple(t.shape)} {t.dtype}"}
    if k == "root":
        attrs["peripheries"] = "2"
    if flagged:
        attrs["color"], attrs["penwidth"] = "#dc2626", "2.5"
    return attrs


SYMBOL = {"Add": "+", "Sub": "−", "Mul": "×", "Div": "÷", "Maximum": "max", "Where": "where"}


def op_label(fn, o) -> str:
    """The op's name; a folded scalar constant is written where it stands, e.g. "Sub" over "1 − ·"."""
    name = str(fn.name)
    consts = [x for x in fn.inputs if is_folded(x, o)]
    if not consts:
        return html_text(name)
    parts = ["·" if not is_folded(x, o) else fmt(x.data.reshape(-1)[0]) for x in fn.inputs]
    sym = SYMBOL.get(name)
    if sym in ("max", "where") or sym is None or len(parts) != 2:
        expr = f"{sym or name.lower()}({', '.join(parts)})"
    else:
        expr = f"{parts[0]} {sym} {parts[1]}"
    return html_text(name + "\n" + expr)


def module_attrs(ident, name, members, tr, o) -> dict:
    params = [t for t in members if t.creator is None and t.requires_grad]
    rows = [f"<TR><TD><B>{html_text(name)}</B></TD></TR>", _row(f"{len(members)} tensors", 9, "#4b5563")]
    norms = []
    for p in params:
        text = f"{tr.name(p).rsplit('.', 1)[-1]} {tuple(p.shape)}"
        if o.show_grads and p in tr.grads:
            norms.append(norm(tr.grads[p]))
            text += f"  ‖∇‖ {fmt(norms[-1])}"
        rows.append(_row(html_text(text), 10))
    fill = norm_colour(max(norms), *o.norm_range) if o.color_by == "grad_norm" and norms else "#ede9fe"
    return {"id": ident, "shape": "box3d", "style": "filled", "fillcolor": fill,
            "label": TABLE + "".join(rows) + "</TABLE>"}


# ============================================================ what is drawn


class Plan:
    """keep: the tensors drawn; hubs: {tensor: its consumer drawn with the real edge} for tensors feeding more than
    max_fanout ops; n_elided, elided_ops: how many tensors are left out, and their ops by name; size: the nodes
    drawn (counting a copy for every use of a hub)."""

    def __init__(self, tr, o):
        nodes = [t for t in tr.tensors if not is_folded(t, o)]
        fanout = {t: len(tr.consumers[t]) for t in nodes}
        is_hub = {t for t in nodes if fanout[t] > o.max_fanout}

        def cost(t):  # the tensor, its op, and a small copy for each input that is a hub
            return 1 + (t.creator is not None) + (sum(1 for x in t.creator.inputs if x in is_hub)
                                                  if t.creator is not None else 0)

        total = sum(cost(t) for t in nodes)
        if total <= o.max_nodes:
            keep, size = set(nodes), total
        else:  # breadth first from the root: the ops backprop visits first are the ones drawn
            keep, size, frontier, i = set(), 0, list(tr.roots), 0
            while i < len(frontier) and size < o.max_nodes:
                t = frontier[i]
                i += 1
                if t in keep or is_folded(t, o):
                    continue
                keep.add(t)
                size += cost(t)
                if t.creator is not None:
                    frontier.extend(x for x in t.creator.inputs if x not in keep)
        self.keep, self.size = keep, size
        # a hub's first drawn use (in toposort order: nearest its inputs) keeps the real edge
        self.hubs = {t: next(((out, k) for out, k in tr.consumers[t] if out in keep), None)
                     for t in tr.tensors if t in is_hub and t in keep}
        elided = [t for t in nodes if t not in keep]
        self.n_elided = len(elided)
        self.elided_ops = {}
        for t in elided:
            if t.creator is not None:
                self.elided_ops[str(t.creator.name)] = self.elided_ops.get(str(t.creator.name), 0) + 1


def dot_lines(tr, o) -> list:
    """The statements of the DOT graph."""
    lines = [f"rankdir={o.rankdir} ranksep=0.3 nodesep=0.25", f'node [fontname="{FONT}" fontsize=11]',
             f'edge [fontname="{FONT}" fontsize=9 color="#6b7280" arrowsize=0.7]']
    label = "" if o.title is None else str(o.title)
    if tr.note and o.show_grads:
        label = f"{label}\n{tr.note}" if label else tr.note
    if label:
        lines.append(f'label=<{html_text(label)}> labelloc=t fontname="{FONT}" fontsize=14')
    plan = Plan(tr, o)
    keep = plan.keep
    group = groups(tr) if (o.group_modules or o.collapse_modules) else {}
    module_ids = unique_ids(sorted(set(group.values())), "m_")
    cluster_ids = unique_ids(sorted(set(group.values())), "cluster_")
    members = {}
    if o.collapse_modules:
        for t in tr.tensors:
            if t in group and t in keep:
                members.setdefault(group[t], []).append(t)
    collapsed = o.collapse_modules

    def node_of(t):  # the DOT node a tensor is drawn as
        return module_ids[group[t]] if collapsed and t in group else tr.ids[t]

    def op_of(t):
        return module_ids[group[t]] if collapsed and t in group else "f" + tr.ids[t][1:]

    clusters = {}  # group -> statements
    for t in tr.tensors:
        if t not in keep or (collapsed and t in group):
            continue
        stmts = [f"{tr.ids[t]} {attr_text(tensor_attrs(t, tr, o))}"]
        if t.creator is not None:
            fid = "f" + tr.ids[t][1:]
            attrs = {"id": fid, "shape": "ellipse", "style": "filled", "fillcolor": "#e5e7eb",
                     "label": op_label(t.creator, o), "tooltip": t.creator.rule or t.creator.name}
            stmts.append(f"{fid} {attr_text(attrs)}")
        target = clusters.setdefault(group[t], []) if (o.group_modules and t in group) else lines
        target.extend(stmts)
    for name, tensors in members.items():
        lines.append(f"{module_ids[name]} {attr_text(module_attrs(module_ids[name], name, tensors, tr, o))}")
    for name, stmts in clusters.items():
        lines.append(f"subgraph {cluster_ids[name]} {{")
        lines.append(f'label=<{html_text(name)}> style="rounded,dashed" color="#9ca3af" fontname="Helvetica" '
                     f"fontsize=11")
        lines.extend("  " + s for s in stmts)
        lines.append("}")
    edges = set()
    for t in tr.tensors:
        if t not in keep or t.creator is None:
            continue
        i = tr.ids[t][1:]
        fid, head = "f" + i, op_of(t)
        if not (collapsed and t in group):
            lines.append(f"{fid} -> {tr.ids[t]} [id={quoted('o' + i)}]")
        for k, x in enumerate(t.creator.inputs):
            if is_folded(x, o) or x not in keep:
                continue
            tail = node_of(x)
            if tail == head:
                continue  # inside one collapsed module
            attrs = {"id": f"e{i}_{k}"}
            if o.group_modules and group.get(x) is not None and group.get(t) not in (None, group[x]):
                attrs["minlen"] = "2"  # one free rank between two modules: their boxes sit side by side, not stepped
            if o.color_by == "grad_norm" and x in tr.grads:
                attrs["color"] = edge_colour(norm(tr.grads[x]), o)
                attrs["penwidth"] = "2"
            if collapsed:
                if (tail, head) in edges:
                    continue
                edges.add((tail, head))
            if x in plan.hubs and plan.hubs[x] != (t, k) and tail == tr.ids[x]:
                tail = f"u{i}_{k}"  # a small copy of the shared tensor beside this use
                lines.append(f"{tail} {attr_text(copy_attrs(tail, x, tr))}")
            lines.append(f"{tail} -> {head} {attr_text(attrs)}")
    if plan.n_elided:
        ops = ", ".join(f"{name}×{n}" for name, n in sorted(plan.elided_ops.items(), key=lambda kv: (-kv[1], kv[0])))
        text = (f"… {plan.n_elided} more tensors not drawn" + (f"\n(ops: {ops})" if ops else "")
                + f"\nthe {plan.size} nodes nearest the output are drawn "
                  f"(max_nodes={o.max_nodes}: raise it to draw more)")
        lines.append(f'elided [id="elided" shape=note style=filled fillcolor="#f9fafb" label=<{html_text(text)}>]')
        for t in tr.tensors:
            if t in keep and t.creator is not None and any(x not in keep and not is_folded(x, o)
                                                           for x in t.creator.inputs):
                lines.append(f"elided -> {op_of(t)} [style=dashed]")
    if o.color_by == "grad_norm" and tr.grads:
        lo, hi = o.norm_range
        legend = (f"colour = ‖∇‖: blue ≤ {fmt(lo)} (vanishing), white ≈ 1, red ≥ {fmt(hi)} (exploding); "
                  f"dark blue = exactly 0")
        lines.append(f"legend [shape=plaintext fontsize=10 label=<{html_text(legend)}>]")
    return lines


def copy_attrs(ident, x, tr) -> dict:
    return {"id": ident, "shape": "box", "style": "rounded,dashed", "fillcolor": "#ffffff", "color": "#9ca3af",
            "fontsize": "9", "label": f"<I>{html_text(tr.name(x))}</I>",
            "tooltip": f"{tr.name(x)} again: it feeds many ops, so each further use gets this copy"}


def dot_text(tr, o) -> str:
    return "digraph tinygrad_dl {\n" + "\n".join("  " + s for s in dot_lines(tr, o)) + "\n}\n"


def count(text) -> tuple:
    """(nodes, edges) in DOT text written by dot_text: one statement per line, starting with its ids."""
    nodes = edges = 0
    for line in text.splitlines():
        m = re.match(r"\s*(\w+) (-> \w+ )?\[", line)
        if m and m.group(1) not in ("node", "edge"):
            edges += m.group(2) is not None
            nodes += m.group(2) is None
    return nodes, edges


# ============================================================ public


def to_dot(root, show_values=True, show_grads=True, max_elements=6, *, grad=None, color_by=None,
           group_modules=False, collapse_modules=False, fold_scalars=True, max_nodes=400, max_fanout=8,
           rankdir="LR", title=None, norm_range=(1e-6, 1e6)) -> str:
    """The graph of `root` as DOT text (pure: no Graphviz needed). Each tensor node shows its name, shape, dtype,
    a summary of its value and of its gradient dJ/dt (computed by this call: one backward pass with
    retain_graph=True, course notes 2.3); each op node shows the op's name.

    max_elements: show the values themselves up to this size, else min/mean/max and ||.||_F.
    color_by="grad_norm": colour nodes and edges by ||dJ/dt|| on a log scale (course notes 3.2.2).
    group_modules: a dashed cluster per module prefix ("layers.0.W" -> "layers.0"); collapse_modules: one node each.
    fold_scalars: unnamed scalar constants are written inside their op ("Mul with 0.5") instead of as nodes.
    max_nodes: a bigger graph is summarized: the nodes nearest the root are drawn, the rest counted in one note.
    max_fanout: a tensor feeding more ops than this gets a small copy beside each further use.
    """
    o = Options(show_values, show_grads, max_elements, color_by, group_modules, collapse_modules, fold_scalars,
                max_nodes, rankdir, title, norm_range, max_fanout)
    tr = trace(root, grad, gradients=show_grads or color_by == "grad_norm")
    return dot_text(tr, o)
