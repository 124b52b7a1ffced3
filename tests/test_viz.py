"""tinygrad_dl.viz: DOT text (no binary needed), labels checked against course formulas written out in NumPy,
rendering with Graphviz, the missing-`dot` error, module clusters and the summary of huge graphs."""
import html
import json
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import tinygrad_dl as dl
from tinygrad_dl import viz
from tinygrad_dl.tensor import toposort
from conftest import need_binary, need_module


def logistic_regression(m=3, n_x=2, seed=0, w=None):
    """Course notes 1.2: Z = w^T X + b, A = sigmoid(Z), J = -(1/m) sum(Y log A + (1 - Y) log(1 - A))."""
    rng = np.random.default_rng(seed)
    X = dl.Tensor(rng.standard_normal((n_x, m)), name="X")
    Y = dl.Tensor((rng.random((1, m)) > 0.5).astype(float), name="Y")
    w = dl.Tensor(np.zeros((n_x, 1)) if w is None else w, requires_grad=True, name="w")
    b = dl.Tensor(np.zeros((1, 1)), requires_grad=True, name="b")
    Z = w.T @ X + b
    Z.name = "Z"
    A = 1 / (1 + (-Z).exp())
    A.name = "A"
    J = -(Y * A.log() + (1 - Y) * (1 - A).log()).mean()
    J.name = "J"
    return J, dict(X=X, Y=Y, w=w, b=b, Z=Z, A=A)


def node_labels(dot):
    """{node id: visible label text} parsed from DOT text (every label is HTML-like: tags stripped, entities and
    doubled backslashes undone)."""
    out = {}
    for m in re.finditer(r'^\s*(\w+) \[id="(\w+)"(.*)\]$', dot, flags=re.M):
        rest = m.group(3)
        lab = re.search(r'label=<(.*)>(?= \w+=|$)', rest)
        text = lab.group(1) if lab else ""
        text = re.sub(r"<BR/>|</TR>", "\n", text)
        text = re.sub(r"<[^>]+>", "", text).replace("\\\\", "\\")
        out[m.group(2)] = html.unescape(text)
    return out


def edges(dot):
    return set(re.findall(r"^\s*(\w+) -> (\w+)", dot, flags=re.M))


def fmt(v):
    s = f"{float(v):.4g}"
    return "0" if s == "-0" else s


def numbers(text):
    """The numbers written in a label, in order."""
    return [float(x) for x in re.findall(r"-?(?:\d+\.?\d*(?:e[-+]?\d+)?|nan|inf)", text)]


def assert_shown(text, want):
    """Labels print 4 significant digits: compare what is shown with the oracle to that precision (never the
    strings, whose last digit can flip with the BLAS kernel)."""
    np.testing.assert_allclose(numbers(text), np.ravel(want), rtol=1e-3, atol=1e-12)


# ---------------------------------------------------------------- DOT text

def test_to_dot_is_pure_and_has_every_node_and_edge(monkeypatch, tmp_path):
    J, t = logistic_regression()
    monkeypatch.setitem(sys.modules, "graphviz", None)  # importing graphviz would fail
    monkeypatch.setenv("PATH", str(tmp_path))  # and no `dot` binary
    dot = viz.to_dot(J, fold_scalars=False)
    order = toposort([J], include_constants=True)
    labels, es = node_labels(dot), edges(dot)
    expected_edges = set()
    for i, x in enumerate(order):
        assert f"t{i}" in labels
        if x.creator is not None:
            assert labels[f"f{i}"].split("\n")[0] == x.creator.name
            expected_edges.add((f"f{i}", f"t{i}"))
            for inp in x.creator.inputs:
                expected_edges.add((f"t{order.index(inp)}", f"f{i}"))
        else:
            assert f"f{i}" not in labels
    assert es == expected_edges
    for name in ("X", "Y", "w", "b", "Z", "A", "J"):
        i = order.index(t[name] if name != "J" else J)
        assert labels[f"t{i}"].split("\n")[0] == name
        assert f"{tuple(order[i].shape)} float64" in labels[f"t{i}"]


def test_folded_scalars_are_written_inside_their_op():
    J, t = logistic_regression()
    dot = viz.to_dot(J)
    order = toposort([J], include_constants=True)
    labels = node_labels(dot)
    scalars = [i for i, x in enumerate(order) if x.creator is None and x.size == 1 and not x.requires_grad]
    assert scalars and all(f"t{i}" not in labels for i in scalars)
    assert any(lab == "Sub\n1 − ·" for lab in labels.values())  # 1 - A
    assert any(lab == "Div\n1 ÷ ·" for lab in labels.values())  # 1 / (1 + exp(-Z))
    assert any(lab.startswith("Mul\n") and "0.3333" in lab for lab in labels.values())  # the mean's 1/m


def test_values_and_gradients_match_the_course_formulas():
    w0 = np.array([[0.3], [-0.7]])
    J, t = logistic_regression(m=3, w=w0)
    X, Y = t["X"].data, t["Y"].data
    Z = w0.T @ X  # b = 0
    A = 1 / (1 + np.exp(-Z))
    dZ = (A - Y) / 3  # course alg. 1.3, with the cost's 1/m
    dw, db = X @ dZ.T, dZ.sum()
    labels = node_labels(viz.to_dot(J))
    order = toposort([J], include_constants=True)
    lab = {name: labels[f"t{order.index(t[name])}"] for name in ("w", "b", "Z", "A")}
    for name, value, grad in (("w", w0, dw), ("b", 0.0, db), ("Z", Z, dZ), ("A", A, None)):
        head, shape_line, rest = lab[name].split("\n", 2)
        assert head == name and shape_line.startswith(str(t[name].shape))
        shown_value, _, shown_grad = rest.partition("∇")
        assert_shown(shown_value, value)
        if grad is not None:
            assert_shown(shown_grad, grad)
    Jv = -np.mean(Y * np.log(A) + (1 - Y) * np.log(1 - A))
    assert_shown(labels[f"t{order.index(J)}"].split("\n", 2)[2].partition("∇")[0], Jv)
    # drawing touched no .grad and kept the graph: an ordinary backward afterwards still works
    assert t["w"].grad is None and t["b"].grad is None
    J.backward()
    np.testing.assert_allclose(t["w"].grad, dw, rtol=1e-12)


def test_big_tensors_are_summarized_with_min_mean_max_norm():
    rng = np.random.default_rng(3)
    W = dl.Tensor(rng.standard_normal((5, 4)), requires_grad=True, name="W")
    J = (W * W).sum()
    labels = node_labels(viz.to_dot(J, max_elements=6))
    i = toposort([J], include_constants=True).index(W)
    text = labels[f"t{i}"]
    d = W.data
    value, grad = text.split("\n", 2)[2].split("∇")
    assert re.fullmatch(r"min \S+  mean \S+  max \S+\n‖·‖ \S+\n", value)
    assert_shown(value, [d.min(), d.mean(), d.max(), np.sqrt((d ** 2).sum())])
    g = 2 * d
    assert re.fullmatch(r" min \S+  mean \S+  max \S+\n   ‖·‖ \S+\n?", grad)
    assert_shown(grad, [g.min(), g.mean(), g.max(), np.sqrt((g ** 2).sum())])
    small = node_labels(viz.to_dot(J, max_elements=20))[f"t{i}"]
    assert_shown(small.split("\n", 2)[2].split("∇")[0], d)


def test_nan_and_inf_are_flagged_in_red():
    x = dl.Tensor(np.array([[1.0, np.nan, np.inf, 2.0]]), requires_grad=True, name="x")
    J = (x * 2).sum()
    dot = viz.to_dot(J, max_elements=2)
    i = toposort([J], include_constants=True).index(x)
    line = next(ln for ln in dot.splitlines() if ln.strip().startswith(f"t{i} "))
    assert 'color="#dc2626"' in line and "1 NaN, 1 inf" in line and "#b91c1c" in line


def test_released_graph_gives_a_clear_error():
    J, _ = logistic_regression()
    J.backward()
    with pytest.raises(viz.GraphReleasedError, match=r"before calling backward\(\).*retain_graph=True"):
        viz.to_dot(J)
    J2, _ = logistic_regression()
    J2.backward(retain_graph=True)
    assert "digraph" in viz.to_dot(J2)


def test_non_scalar_root_needs_grad_for_gradients():
    x = dl.Tensor(np.array([[1.0, 2.0]]), requires_grad=True, name="x")
    y = x * x
    assert "∇" not in viz.to_dot(y) and "not a scalar" in viz.to_dot(y)
    labels = node_labels(viz.to_dot(y, grad=np.array([[1.0, 10.0]])))
    # dy/dx = 2x times the upstream gradient
    assert "∇ [2 40]" in labels[f"t{toposort([y], include_constants=True).index(x)}"]
    with pytest.raises(ValueError, match="shape"):
        viz.to_dot(y, grad=np.ones((2, 1)))


def test_bad_arguments():
    with pytest.raises(TypeError, match="Tensor"):
        viz.to_dot(np.ones(3))
    J, _ = logistic_regression()
    with pytest.raises(ValueError, match="color_by"):
        viz.to_dot(J, color_by="rainbow")


# ---------------------------------------------------------------- colours, modules, huge graphs

def deep_chain(n_layers, scale, seed=0, n=4, m=3):
    """Dense layers named like the nn helper names them: layers.{l}.W / .b / .Z, tanh in between."""
    rng = np.random.default_rng(seed)
    A = dl.Tensor(rng.standard_normal((n, m)), name="X")
    params = []
    for l in range(n_layers):
        W = dl.Tensor(rng.standard_normal((n, n)) * scale, requires_grad=True, name=f"layers.{l}.W")
        b = dl.Tensor(np.zeros((n, 1)), requires_grad=True, name=f"layers.{l}.b")
        Z = W @ A + b
        Z.name = f"layers.{l}.Z"
        A = Z.tanh()
        params += [W, b]
    J = (A * A).mean()
    J.name = "J"
    return J, params


def test_color_by_grad_norm_shows_vanishing_gradients():
    J, params = deep_chain(6, scale=0.3)
    grads = dl.grad(J, params, retain_graph=True)
    norms = [np.sqrt((g.data ** 2).sum()) for g in grads[0::2]]
    small, big = params[0::2][int(np.argmin(norms))], params[0::2][int(np.argmax(norms))]
    assert max(norms) > 2 * min(norms)
    dot = viz.to_dot(J, color_by="grad_norm", norm_range=(1e-6, 1e6))
    assert viz.dot.norm_colour(min(norms)) != viz.dot.norm_colour(max(norms))
    order = toposort([J], include_constants=True)

    def fill(t):
        line = next(ln for ln in dot.splitlines() if ln.strip().startswith(f"t{order.index(t)} "))
        return re.search(r'fillcolor="#(\w+)"', line).group(1)

    first, last = fill(small), fill(big)
    blue = lambda c: int(c[4:6], 16) - int(c[0:2], 16)  # how much bluer than red
    assert blue(first) > blue(last) > 0
    assert fill(J) == "ffffff"  # norm 1 sits in the middle of the scale
    assert "vanishing" in dot and "penwidth" in dot


def test_group_modules_clusters_each_dense_layer():
    J, params = deep_chain(3, scale=0.5)
    dot = viz.to_dot(J, group_modules=True)
    order = toposort([J], include_constants=True)
    for l in range(3):
        m = re.search(r'subgraph cluster_layers_%d \{\n  label=<layers\.%d> (.*?)\n  \}' % (l, l), dot, flags=re.S)
        assert m, f"no cluster for layers.{l}"
        body = m.group(1)
        for suffix in ("W", "b", "Z"):
            t = next(x for x in order if x.name == f"layers.{l}.{suffix}")
            assert f"\n    t{order.index(t)} [" in body
        z = next(x for x in order if x.name == f"layers.{l}.Z")
        matmul_out = z.creator.inputs[0]
        assert z.creator.name == "Add" and matmul_out.creator.name == "MatMul"
        assert f"\n    f{order.index(z)} [" in body and f"\n    f{order.index(matmul_out)} [" in body
        # the unnamed tanh between two layers joins the layer it comes from; after the last layer it stays out
        a = next(o for o in order if o.creator is not None and o.creator.name == "Tanh" and o.creator.inputs[0] is z)
        assert (f"\n    f{order.index(a)} [" in body) == (l < 2)
        assert (f"\n  f{order.index(a)} [" in dot) == (l == 2)
    collapsed = viz.to_dot(J, collapse_modules=True)
    x = next(o for o in order if o.name == "X")
    assert collapsed.count("shape=\"box3d\"") == 3
    es = edges(collapsed)
    assert ("m_layers_0", "m_layers_1") in es and ("m_layers_1", "m_layers_2") in es
    assert ("m_layers_0", "m_layers_2") not in es and (f"t{order.index(x)}", "m_layers_0") in es


def long_chain(n):
    x = dl.Tensor(np.ones((2, 2)), requires_grad=True, name="x")
    y = x
    for _ in range(n):  # n ops + n tensors (the constant is folded into its op)
        y = y * 1.0001
    J = y.sum()
    J.name = "J"
    return J


def fan_out(n):
    """An unrolled recurrence: the leaf x feeds every one of the n steps."""
    x = dl.Tensor(np.full((2, 2), 0.5), requires_grad=True, name="x")
    y = x
    for _ in range(n):
        y = (y * x).tanh()
    J = y.sum()
    J.name = "J"
    return J, x


def out_degrees(dot):
    deg = {}
    for tail, _ in edges(dot):
        deg[tail] = deg.get(tail, 0) + 1
    return deg


def test_huge_graph_is_summarized_quickly(tmp_path):
    J = long_chain(10_000)
    dot = viz.to_dot(J, max_nodes=300)
    labels = node_labels(dot)
    assert len(labels) <= 300 + 3
    assert "more tensors not drawn" in labels["elided"] and "Mul×" in labels["elided"]
    assert "max_nodes=300" in labels["elided"]  # says how to draw more
    order = toposort([J], include_constants=True)
    assert f"t{order.index(J)}" in labels  # the part nearest the root is drawn
    assert len(node_labels(viz.to_dot(J))) <= 400 + 3  # the default budget
    need_binary("dot")
    path = viz.render(J, str(tmp_path / "huge"), max_nodes=300)
    assert os.path.getsize(path) > 1000


def test_a_tensor_feeding_every_op_is_drawn_once_with_copies(tmp_path):
    """1,000 ops all reading one leaf: its edges would cross the whole picture (dot ran for minutes); it is drawn
    once, beside its first use, and each further use reads from a small copy of it."""
    J, x = fan_out(1000)
    order = toposort([J], include_constants=True)
    xid = f"t{order.index(x)}"
    for max_nodes in (60, 400):
        dot = viz.to_dot(J, max_nodes=max_nodes, max_fanout=8)
        labels, deg = node_labels(dot), out_degrees(dot)
        assert len(labels) <= max_nodes + 5
        assert deg[xid] == 1 and max(d for node, d in deg.items() if node != "elided") <= 8
        copies = [node for node in labels if node.startswith("u")]
        assert copies and all(labels[c] == "x" for c in copies)
        used = {head for tail, head in edges(dot) if tail == xid or tail in copies}
        drawn_muls = {f"f{i}" for i, t in enumerate(order) if f"f{i}" in labels and t.creator.name == "Mul"}
        assert used == drawn_muls  # every drawn use of x is still drawn, once
    small = viz.to_dot(*fan_out(5)[:1])  # a few uses: plain edges, no copies
    assert not [n for n in node_labels(small) if n.startswith("u")]
    need_binary("dot")
    assert os.path.getsize(viz.render(J, tmp_path / "fan.svg")) > 1000
    page = viz.backprop_page(J)
    assert "of 2002 tensors drawn" in repr(page) and "max_nodes=400" in page.html


def fake_dot(tmp_path, body):
    folder = tmp_path / "bin"
    folder.mkdir()
    exe = folder / "dot"
    exe.write_text("#!/bin/sh\n" + body + "\n")
    exe.chmod(0o755)
    return str(folder)


def test_a_dot_that_hangs_is_stopped_with_its_children(tmp_path, monkeypatch):
    """dot runs in its own process group: on timeout the group is killed (a stuck child too) and the error names
    the size and the options, instead of a raw TimeoutExpired."""
    if os.name != "posix":
        pytest.skip("process groups are POSIX")
    pid_file = tmp_path / "child.pid"
    quiet = "</dev/null >/dev/null 2>&1"  # the children hold no pipe of ours: only killing them ends them
    script = f"sleep 300 {quiet} &\necho $! > {pid_file}\nsleep 300 {quiet}"
    monkeypatch.setenv("PATH", fake_dot(tmp_path, script) + os.pathsep + os.environ["PATH"])
    J, _ = logistic_regression()
    with pytest.raises(viz.GraphvizError, match=r"did not finish laying out \d+ nodes and \d+ edges within 0.5 s .*"
                                               r"max_nodes=.*timeout="):
        viz.render(J, tmp_path / "g.svg", timeout=0.5)
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 10  # SIGKILL is delivered asynchronously: give a busy machine a moment
    while True:
        try:
            state = open(f"/proc/{child}/stat").read().split(")")[-1].split()[0]
        except FileNotFoundError:
            state = "gone"
        if state in ("gone", "Z") or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert state in ("gone", "Z"), f"the child dot started is still running ({state})"
    with pytest.raises(viz.GraphvizError, match="backprop_page"):
        viz.backprop_page(J, timeout=0.5)


def test_a_dot_that_crashes_is_a_clear_error(tmp_path, monkeypatch):
    if os.name != "posix":
        pytest.skip("signals are POSIX")
    monkeypatch.setenv("PATH", fake_dot(tmp_path, "kill -SEGV $$") + os.pathsep + os.environ["PATH"])
    J, _ = logistic_regression()
    with pytest.raises(viz.GraphvizError, match=r"crashed \(signal 11\) on \d+ nodes and \d+ edges.*max_nodes="):
        viz.render(J, tmp_path / "g")


# ---------------------------------------------------------------- rendering

def test_render_writes_dot_then_svg(tmp_path):
    need_binary("dot")
    J, t = logistic_regression()
    out = viz.render(J, tmp_path / "lr")
    assert out == str(tmp_path / "lr.svg")
    dot_text = (tmp_path / "lr.dot").read_text(encoding="utf-8")
    assert dot_text == viz.to_dot(J)
    svg = ET.parse(out).getroot()
    ids = {g.get("id") for g in svg.iter("{http://www.w3.org/2000/svg}g")}
    order = toposort([J], include_constants=True)
    assert f"t{order.index(t['w'])}" in ids and f"t{order.index(J)}" in ids
    assert viz.render(J, tmp_path / "again.svg") == str(tmp_path / "again.svg")


def test_missing_dot_is_a_clear_error_and_the_dot_file_is_written(tmp_path, monkeypatch):
    J, _ = logistic_regression()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(viz.GraphvizNotFoundError) as err:
        viz.render(J, tmp_path / "g")
    msg = str(err.value)
    assert "apt-get install graphviz" in msg and "brew install graphviz" in msg
    assert str(tmp_path / "g.dot") in msg
    assert (tmp_path / "g.dot").read_text(encoding="utf-8").startswith("digraph")
    with pytest.raises(viz.GraphvizNotFoundError):
        viz.backprop_html(J, tmp_path / "page.html")


def test_draw_graph_returns_a_digraph():
    graphviz = need_module("graphviz")
    J, _ = logistic_regression()
    g = viz.draw_graph(J)
    assert isinstance(g, graphviz.Digraph)
    assert edges(g.source) == edges(viz.to_dot(J))
    assert set(node_labels(g.source)) == set(node_labels(viz.to_dot(J)))



def test_render_reads_the_format_from_the_suffix(tmp_path, monkeypatch):
    need_binary("dot")
    J, _ = logistic_regression()
    png = viz.render(J, tmp_path / "graph.png")
    assert png == str(tmp_path / "graph.png") and open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "graph.dot").read_text(encoding="utf-8") == viz.to_dot(J)  # the DOT text beside it
    assert not list(tmp_path.glob("graph.png.*"))
    assert open(viz.render(J, tmp_path / "g.pdf"), "rb").read(5) == b"%PDF-"
    assert viz.render(J, tmp_path / "photo.jpg", format="jpeg") == str(tmp_path / "photo.jpg")
    assert viz.render(J, tmp_path / "v1.5", format="svg") == str(tmp_path / "v1.5.svg")  # not a format: kept
    with pytest.raises(ValueError, match=r"ends in \.png but format='svg'"):
        viz.render(J, tmp_path / "bad.png", format="svg")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # a .dot path needs no Graphviz
    assert viz.render(J, tmp_path / "only.dot") == str(tmp_path / "only.dot")
    assert (tmp_path / "only.dot").read_text(encoding="utf-8") == viz.to_dot(J)


def svg_size(svg):
    root = ET.fromstring(svg)
    view = [float(v) for v in root.get("viewBox").split()]
    return float(root.get("width").rstrip("pt")), float(root.get("height").rstrip("pt")), view[2], view[3], root


def test_draw_graph_fits_a_notebook_cell():
    """What a notebook shows (the IPython display protocol): an SVG at most 720 pt wide that shrinks with the cell,
    laid out top to bottom; fit=False gives the natural size, left to right."""
    need_module("graphviz")
    need_binary("dot")
    J, _ = deep_chain(6, scale=0.5)
    g = viz.draw_graph(J)
    assert "rankdir=TB" in g.source
    w, h, vw, vh, root = svg_size(g._repr_mimebundle_()["image/svg+xml"])
    assert w <= 720 and "max-width:100%" in root.get("style") and "height:auto" in root.get("style")
    assert abs(w / h - vw / vh) < 0.05 * vw / vh  # scaled, not stretched
    wide = viz.draw_graph(J, rankdir="LR")._repr_mimebundle_()["image/svg+xml"]
    w2, h2, vw2, vh2, _ = svg_size(wide)
    assert vw2 > 720 and w2 <= 720  # a left-to-right chain wider than a cell is scaled down to fit
    full = viz.draw_graph(J, fit=False)
    assert "rankdir=LR" in full.source
    w3, h3, vw3, vh3, root3 = svg_size(full._repr_mimebundle_()["image/svg+xml"])
    assert (w3, h3) == (round(vw3), round(vh3)) and root3.get("style") is None  # natural size (1 pt per unit)
    small = viz.draw_graph(logistic_regression(m=1, n_x=1)[0])._repr_mimebundle_()["image/svg+xml"]
    w4, _, vw4, _, _ = svg_size(small)
    assert w4 == round(vw4)  # a small drawing is not blown up
    png = g._repr_mimebundle_(include=["image/png"])
    assert list(png) == ["image/png"] and png["image/png"][:4] == b"\x89PNG"


def test_group_modules_leaves_no_blank_band():
    """Module boxes sit side by side along the graph's direction: an edge from one module into the next spans one
    free rank, so two boxes never share a rank (which made Graphviz stack them in steps, leaving a blank band)."""
    J, _ = deep_chain(3, scale=0.5)
    dot = viz.to_dot(J, group_modules=True)
    order = toposort([J], include_constants=True)
    crossing = set()  # the tanh after layer l feeding layer l+1's MatMul (the only edges between two modules)
    for t in order:
        if t.creator is not None and t.creator.name == "MatMul" and t.creator.inputs[0].name in ("layers.1.W",
                                                                                                 "layers.2.W"):
            a = t.creator.inputs[1]
            assert a.creator.name == "Tanh"
            crossing.add((f"t{order.index(a)}", f"f{order.index(t)}"))
    spaced = {(m.group(1), m.group(2))
              for m in re.finditer(r"^\s*(\w+) -> (\w+) \[[^\]]*minlen=\"2\"", dot, flags=re.M)}
    assert len(crossing) == 2 and spaced == crossing
    assert "minlen" not in viz.to_dot(J)  # only grouped drawings need it
    need_binary("dot")
    for rankdir in ("LR", "TB"):
        plain = svg_size(subprocess.run(["dot", "-Tsvg"], input=viz.to_dot(J, rankdir=rankdir), text=True,
                                        capture_output=True, check=True).stdout)
        grouped = svg_size(subprocess.run(["dot", "-Tsvg"], input=viz.to_dot(J, rankdir=rankdir, group_modules=True),
                                          text=True, capture_output=True, check=True).stdout)
        across = 1 if rankdir == "LR" else 0  # the size across the graph's direction
        assert grouped[across] < 2 * plain[across], (rankdir, plain[:2], grouped[:2])


def test_viz_reads_the_graph_only_through_its_public_face():
    """No private attribute of the engine's objects, and only public names imported from the engine."""
    import ast
    folder = os.path.dirname(viz.__file__)
    files = sorted(f for f in os.listdir(folder) if f.endswith(".py"))
    assert {"trace.py", "dot.py", "draw.py", "course.py", "page.py"} <= set(files)
    for name in files:
        tree = ast.parse(open(os.path.join(folder, name), encoding="utf-8").read())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.endswith("__"):
                assert node.attr in ("_repr_mimebundle_", "_repr_html_"), f"{name}: .{node.attr}"
            if isinstance(node, ast.ImportFrom) and node.level == 2:  # from ..tensor import ...
                assert all(not a.name.startswith("_") for a in node.names), f"{name}: {ast.dump(node)}"

# ---------------------------------------------------------------- the package as shipped

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGE_FILES = ["tinygrad_dl/viz/page.html", "tinygrad_dl/viz/page.css", "tinygrad_dl/viz/page.js"]
FROM_WHEEL = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
import tinygrad_dl as dl
from tinygrad_dl import viz
x = dl.Tensor(np.array([[1.0, -2.0]]), requires_grad=True, name="x")
J = (x * x).sum()
page = viz.backprop_page(J, title="from the wheel")
print(json.dumps({"file": viz.__file__, "html": page.html}))
"""


def test_the_wheel_ships_the_page_files_and_renders_a_page_from_them(tmp_path):
    """Build the wheel, check the page's .html/.css/.js are inside, and build a page from the unpacked wheel alone
    (a fresh interpreter in isolated mode, the checkout not on its path)."""
    import zipfile
    need_module("hatchling")
    need_binary("dot")
    build = "import sys, hatchling.build as b; print(b.build_wheel(sys.argv[1]))"  # the project's build backend
    made = subprocess.run([sys.executable, "-c", build, str(tmp_path / "dist")], cwd=ROOT, check=True,
                          capture_output=True, text=True, timeout=120)
    wheel = tmp_path / "dist" / made.stdout.split()[-1]
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        assert set(PAGE_FILES) <= names, sorted(n for n in names if "viz" in n)
        z.extractall(tmp_path / "site")
    out = subprocess.run([sys.executable, "-I", "-c", FROM_WHEEL, str(tmp_path / "site")], cwd=tmp_path,
                         check=True, capture_output=True, text=True, timeout=60)
    got = json.loads(out.stdout)
    assert got["file"].startswith(str(tmp_path / "site"))
    page = got["html"]
    for name in PAGE_FILES:  # every file's content made it into the page
        text = open(os.path.join(ROOT, name), encoding="utf-8").read()
        probe = max((line for line in text.splitlines() if "{{" not in line), key=len).strip()
        assert probe in page, (name, probe)
    assert "<svg" in page and "{{" not in page and "from the wheel" in page


# ---------------------------------------------------------------- safe to share: hostile names and values

HOSTILE = ["</script><script>window.pwned=1</script>", "<!--SVG-->", "<!--<script>", "C:\\Net\\Go\\", "{{DATA}}",
           "q\"uote's & <b>bold</b>", "two\nlines \\N \\G \\l", '<img src=x onerror="window.pwned=2">',
           'x"] evil [label="owned', "mod<1>.W"]
EVIL_OP = '<<TABLE><TR><TD HREF="javascript:window.pwned=3">click</TD></TR></TABLE>>'


class Evil(dl.Function):
    """y = 2x </script><script>window.pwned=4</script> C:\\Net;  dy/dx = 2"""
    name = property(lambda self: EVIL_OP)

    def forward(self, x):
        return 2 * x

    def backward(self, grad, out, x):
        return (grad * 2,)


def hostile_graph():
    """Every tensor named with something that means markup, script, a DOT escape or DOT syntax somewhere; an op whose
    name is an HTML-like label with a javascript: link; a NaN gradient and an infinite one."""
    ts = [dl.Tensor(np.array([[float(i + 1)]]), requires_grad=True, name=n) for i, n in enumerate(HOSTILE)]
    z = Evil.apply(ts[0])
    z.name = '</title></svg><script>window.pwned=5</script><img src=x onerror="window.pwned=7">'
    total = z
    for t in ts[1:]:
        total = total + t
    nan = dl.Tensor(np.array([[np.nan, 1.0]]), requires_grad=True, name="has NaN")
    zero = dl.Tensor(np.array([[0.0, 1.0]]), requires_grad=True, name="log(0)")
    with np.errstate(divide="ignore", invalid="ignore"):
        J = total.sum() + (nan * nan).sum() + zero.log().sum()
    J.name = "J </script>"
    return J, ts + [z, nan, zero]


LABEL_TAGS = {"TABLE", "TR", "TD", "B", "I", "FONT", "BR"}
TAG_ATTRS = {"BORDER", "CELLBORDER", "CELLSPACING", "CELLPADDING", "POINT-SIZE", "COLOR"}
KEYS = {"id", "shape", "style", "fillcolor", "color", "penwidth", "peripheries", "label", "tooltip", "fontsize",
        "fontname", "labelloc", "rankdir", "ranksep", "nodesep", "arrowsize", "minlen"}


def dot_attributes(text):
    """Tokenize a DOT attribute list the way Graphviz does (quoted strings with \\" escapes, balanced <...>, bare
    words); fails if anything is left over, i.e. if a name broke out of its value."""
    out, pos = [], 0
    while pos < len(text):
        m = re.compile(r"\s*(\w+)=").match(text, pos)
        assert m, f"not an attribute at: {text[pos:pos + 60]!r}"
        key, pos = m.group(1), m.end()
        if text[pos] == '"':
            end = pos + 1
            while text[end] != '"':
                end += 2 if text[end] == "\\" else 1
            out.append((key, text[pos + 1:end], "quoted"))
            pos = end + 1
        elif text[pos] == "<":
            depth, end = 0, pos
            while True:
                depth += {"<": 1, ">": -1}.get(text[end], 0)
                end += 1
                if depth == 0:
                    break
            out.append((key, text[pos + 1:end - 1], "html"))
            pos = end
        else:
            m = re.compile(r"[\w.#-]+").match(text, pos)
            out.append((key, m.group(0), "bare"))
            pos = m.end()
    return out


def check_dot_structure(dot):
    """Every statement is one of ours, every attribute a known key, every label HTML-like markup with our tags only."""
    lines = dot.strip().splitlines()
    assert lines[0] == "digraph tinygrad_dl {" and lines[-1] == "}"
    for line in (ln.strip() for ln in lines[1:-1]):
        if line == "}" or re.fullmatch(r"subgraph \w+ \{", line):
            continue
        m = re.fullmatch(r"(\w+(?: -> \w+)?|node|edge) \[(.*)\]", line)
        attrs = dot_attributes(m.group(2) if m else line)
        for key, value, kind in attrs:
            assert key in KEYS, (key, line[:80])
            assert (kind == "html") == (key == "label"), (key, kind, line[:80])
            if kind == "html":
                for tag, tag_attrs in re.findall(r"</?([A-Za-z-]+)((?:\s+[A-Z-]+=\"[^\"]*\")*)\s*/?>", value):
                    assert tag in LABEL_TAGS, tag
                    assert set(re.findall(r"([A-Z-]+)=", tag_attrs)) <= TAG_ATTRS, tag_attrs
                assert "<" not in re.sub(r"</?[A-Za-z-]+(?:\s+[A-Z-]+=\"[^\"]*\")*\s*/?>", "", value), value


def test_hostile_names_stay_text_in_the_dot_text_and_the_picture(tmp_path):
    J, ts = hostile_graph()
    title = "<!--TITLE--> C:\\Net </script>"
    with np.errstate(divide="ignore", invalid="ignore"):
        dot = viz.to_dot(J, title=title, group_modules=True)
    check_dot_structure(dot)  # (the names' text, "HREF=" and "<script>" included, sits inside values as text)
    labels = node_labels(dot)
    order = toposort([J], include_constants=True)
    for t in ts:
        assert labels[f"t{order.index(t)}"].split("\n" if "\n" not in t.name else "\n(", 1)[0] == t.name
    evil = next(i for i, t in enumerate(order) if t.creator is not None and isinstance(t.creator, Evil))
    assert labels[f"f{evil}"] == EVIL_OP
    # Graphviz draws each name literally (backslashes included) and the SVG carries it as text
    need_binary("dot")
    with np.errstate(divide="ignore", invalid="ignore"):
        svg_path = viz.render(J, tmp_path / "hostile.svg", title=title, group_modules=True)
    root = ET.parse(svg_path).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    texts = [t.text or "" for t in root.iter(ns + "text")]
    for t in ts:
        for line in t.name.split("\n"):
            assert line in texts or any(line in x for x in texts), line
    assert EVIL_OP in texts and title in texts
    assert "C:\\Net\\Go\\ (1, 1) float64" in [a.get("{http://www.w3.org/1999/xlink}title") for a in root.iter(ns + "a")]
    for el in root.iter():
        assert not any(k.endswith("href") for k in el.attrib), el.attrib  # no link anywhere
    assert not list(root.iter(ns + "script")) and not list(root.iter(ns + "foreignObject"))


def test_control_characters_and_lone_surrogates_are_shown_not_fatal(tmp_path):
    x = dl.Tensor(np.ones((1, 2)), requires_grad=True, name="bell\x07 tab\t nul\x00 \ud800")
    J = (x * x).sum()
    dot = viz.to_dot(J)
    assert "bell\\\\x07 tab\\\\x09 nul\\\\x00 \ufffd" in dot  # shown as \x07 (its backslash doubled for Graphviz)
    dot.encode("utf-8")
    need_binary("dot")
    svg = ET.parse(viz.render(J, tmp_path / "ctl")).getroot()
    texts = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")]
    assert "bell\\x07 tab\\x09 nul\\x00 \ufffd" in texts
