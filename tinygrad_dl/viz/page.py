"""The backprop stepper: one self-contained HTML page that walks the backward pass in the engine's exact order
(course notes 2.3). The page is built from three package files (page.html, page.css, page.js), the graph as an
inline SVG laid out by `dot`, and the steps as JSON; it shows inline in a notebook as a sandboxed frame.

What reaches the page is escaped for where it lands: the SVG is written by an XML serializer, the title with HTML
entities, the JSON with <, > and & as \\u escapes (so no name can end the <script> that holds it), and NaN or
infinite gradients as the strings "NaN", "Infinity" and "-Infinity" (JSON has no such numbers)."""
from __future__ import annotations

import html
import json
import math
import os
import re
import xml.etree.ElementTree as ET
from importlib import resources

import numpy as np

from .course import course_rule
from .dot import Options, dot_text, is_folded
from .draw import TIMEOUT, run_dot
from .summary import clean, summary_line, summary_lines
from .trace import as_roots, trace

SVG_NS, XLINK_NS = "http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"
FRAME_HEIGHT = 560  # px: the inline frame in a notebook


def _asset(name) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


class SavedPage(str):
    """The path a page was written to (a str, equal to the path), shown in a notebook as the page itself."""

    def __new__(cls, path, page):
        self = super().__new__(cls, path)
        self.page = page
        return self

    def _repr_html_(self):
        return self.page._repr_html_()


class BackpropPage:
    """A backprop stepper page. `.html` is the whole document; `.save(path)` writes it; as the last expression of a
    notebook cell it shows inline (a frame holding the page: its ids and arrow keys stay its own)."""

    def __init__(self, html_text, title, n_steps, n_drawn, n_tensors):
        self.html, self.title = html_text, title
        self.n_steps, self.n_drawn, self.n_tensors = n_steps, n_drawn, n_tensors

    def save(self, path) -> str:
        path = os.fspath(path)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write(self.html)
        return SavedPage(path, self)

    def _repr_html_(self) -> str:
        return (f'<iframe srcdoc="{html.escape(self.html, quote=True)}" title="{html.escape(self.title, quote=True)}"'
                f' sandbox="allow-scripts" style="width:100%;height:{FRAME_HEIGHT}px;border:1px solid #e5e7eb;'
                f'border-radius:4px" loading="eager"></iframe>')

    def __repr__(self):
        drawn = "" if self.n_drawn >= self.n_tensors else f", {self.n_drawn} of {self.n_tensors} tensors drawn"
        return f"<BackpropPage {self.title!r}: {self.n_steps} backward steps{drawn}; .save(path) writes it>"


def backprop_page(root, *, grad=None, title=None, max_elements=6, embed_limit=256, rankdir="LR",
                  fold_scalars=True, max_nodes=400, max_fanout=8, timeout=TIMEOUT) -> BackpropPage:
    """The page that walks the backward pass of `root` in the engine's exact order (course notes 2.3): step 0 is
    the forward graph, step k highlights the k-th op differentiated, shows the gradient flowing into each of its
    inputs (on the edge and in the side panel, with the local rule in the course's notation), and the last step
    lists every leaf's gradient. Next/Previous, the arrow keys and a `#step=N` fragment move between steps.
    Machine-readable state: `body[data-step]`, `.flow[data-grad]`, node `data-grad` (JSON lists of the values,
    for arrays of at most `embed_limit` elements). A graph over `max_nodes` is drawn near the output only (every
    step is still listed). Needs Graphviz's `dot` now; viewing the page needs no network."""
    roots = as_roots(root, "backprop_page")
    tr = trace(roots, grad)
    if not tr.steps and not tr.grads:
        raise ValueError("backprop_page: nothing to step through: the root does not require grad"
                         + (f" ({tr.note})" if tr.note else ""))
    title = "Backpropagation, step by step" if title is None else clean(title)
    o = Options(True, True, max_elements, None, False, False, fold_scalars, max_nodes, rankdir, None, (1e-6, 1e6),
                max_fanout, page=True, where="backprop_page")
    text = dot_text(tr, o)
    svg, drawn = _page_svg(run_dot(text, "svg", timeout=timeout, where="backprop_page"), tr)
    n_tensors = sum(1 for t in tr.tensors if not is_folded(t, o))  # what an unlimited drawing would show
    note = "" if drawn >= n_tensors else (
        f'<div class="note">{drawn} of {n_tensors} tensors are drawn: the part nearest the output '
        f"(max_nodes={max_nodes}). Every step is listed.</div>")
    parts = {"TITLE": html.escape(title, quote=True), "CSS": _asset("page.css"), "JS": _asset("page.js"),
             "SVG": svg, "DATA": json_for_script(_page_data(tr, embed_limit)), "NOTE": note}
    page = re.sub(r"\{\{([A-Z]+)\}\}", lambda m: parts[m.group(1)], _asset("page.html"))  # one pass: no re-scan
    return BackpropPage(page, title, len(tr.steps), drawn, n_tensors)


def backprop_html(root, path=None, **options):
    """Write the backprop stepper (`backprop_page(root, **options)`) to `path` and return the path (a str that also
    shows the page inline when a notebook cell ends with it); with `path=None`, return the `BackpropPage`."""
    page = backprop_page(root, **options)
    return page if path is None else page.save(path)


def json_for_script(data) -> str:
    """JSON safe inside <script>: no NaN/Infinity tokens (refused), and <, >, & written as \\u escapes so that
    neither </script> nor <!-- can appear."""
    text = json.dumps(data, ensure_ascii=False, sort_keys=True, allow_nan=False)
    text = re.sub("[\ud800-\udfff]", "\ufffd", text)  # a lone surrogate in a name cannot be written as UTF-8
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def json_number(v):
    v = float(v)
    if math.isfinite(v):
        return v
    return "NaN" if v != v else ("Infinity" if v > 0 else "-Infinity")


def _flat(a, limit):
    a = np.asarray(a)
    return [json_number(v) for v in a.reshape(-1)] if a.size <= limit else None


def _page_svg(svg_bytes, tr):
    """The SVG re-serialized as XML (so every text and attribute is escaped), each tensor's gradient line (the
    last text of its label) tagged so the page can rewrite it; and how many tensors are drawn."""
    ET.register_namespace("", SVG_NS)
    ET.register_namespace("xlink", XLINK_NS)
    tree = ET.fromstring(svg_bytes)
    ids = {tr.ids[t]: t for t in tr.tensors}
    drawn = 0
    for g in tree.iter(f"{{{SVG_NS}}}g"):
        t = ids.get(g.get("id"))
        if t is None:
            continue
        drawn += 1
        if not t.requires_grad:
            continue
        texts = list(g.iter(f"{{{SVG_NS}}}text"))
        if texts:
            texts[-1].set("class", "grad-text")
            texts[-1].set("id", "g" + g.get("id"))
    return ET.tostring(tree, encoding="unicode"), drawn


def _page_data(tr, limit) -> dict:
    def info(g, prefix=""):
        return {"summary": prefix + summary_line(g), "grad": _flat(g, limit), "shape": list(g.shape)}

    steps, accum = [], {r: g.copy() for r, g in tr.seed_grads.items()}
    start = {tr.ids[r]: info(g, "∇ ") for r, g in tr.seed_grads.items()}
    for s in tr.steps:
        fn, out = s["fn"], s["out"]
        flows, changed = [], {}
        for k, (x, gx) in enumerate(zip(fn.inputs, s["in_grads"])):
            if gx is None or not x.requires_grad:
                continue
            accum[x] = gx.copy() if x not in accum else accum[x] + gx
            flows.append(dict(info(gx), tensor=tr.ids[x], index=k, name=tr.name(x), lines=summary_lines(gx, 6),
                              edge=f"e{tr.ids[out][1:]}_{k}"))
            changed[tr.ids[x]] = info(accum[x], "∇ ")
        steps.append({"op": "f" + tr.ids[out][1:], "out": tr.ids[out], "name": clean(fn.name), "rule": clean(fn.rule),
                      "out_name": tr.name(out), "course": course_rule(s, tr),
                      "grad_out": dict(info(s["grad_out"]), lines=summary_lines(s["grad_out"], 6)),
                      "flows": flows, "changed": changed})
    leaves = [dict(info(tr.grads[t]), tensor=tr.ids[t], name=tr.name(t), lines=summary_lines(tr.grads[t], 6))
              for t in tr.tensors if t.creator is None and t.requires_grad and t in tr.grads]
    return {"start": start, "steps": steps, "leaves": leaves,
            "roots": [tr.ids[r] for r in tr.roots], "tensors": [tr.ids[t] for t in tr.tensors if t.requires_grad]}
