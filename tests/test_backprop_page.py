"""The backprop page in real headless Chromium (Playwright, Debian's /usr/bin/chromium; never `playwright install`):
every step reachable with Next / Previous / arrow keys / #step=N, each step's highlighted op and gradients equal to
the engine's own hook, the last step equal to every leaf's .grad from an ordinary backward() and to the course's
formulas written out in NumPy, and no network request."""
import json
import os
import re
import tempfile

import numpy as np
import pytest

import tinygrad_dl as dl
from tinygrad_dl import viz
from tinygrad_dl.tensor import run_backward, toposort
from conftest import need_binary, need_module, need_tool

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run"]


def two_layer(seed=1, m=4):
    """Course notes 2.3: Z1 = W1 X + b1, A1 = tanh(Z1), Z2 = W2 A1 + b2, A2 = sigmoid(Z2), J = BCE(A2, Y),
    plus (lambd/2m)||W1||^2 so W1 collects gradient from two places."""
    rng = np.random.default_rng(seed)
    X = dl.Tensor(rng.standard_normal((3, m)), name="X")
    Y = dl.Tensor((rng.random((1, m)) > 0.5).astype(float), name="Y")
    W1 = dl.Tensor(rng.standard_normal((4, 3)) * 0.5, requires_grad=True, name="layers.0.W")
    b1 = dl.Tensor(rng.standard_normal((4, 1)) * 0.1, requires_grad=True, name="layers.0.b")
    W2 = dl.Tensor(rng.standard_normal((1, 4)) * 0.5, requires_grad=True, name="layers.1.W")
    b2 = dl.Tensor(np.zeros((1, 1)), requires_grad=True, name="layers.1.b")
    Z1 = W1 @ X + b1
    Z1.name = "layers.0.Z"
    A1 = Z1.tanh()
    Z2 = W2 @ A1 + b2
    Z2.name = "layers.1.Z"
    A2 = 1 / (1 + (-Z2).exp())
    J = -(Y * A2.log() + (1 - Y) * (1 - A2).log()).mean() + (W1 * W1).sum() * (0.1 / (2 * m))
    J.name = "J"
    return J, dict(X=X, Y=Y, W1=W1, b1=b1, W2=W2, b2=b2)


def course_gradients(p, m=4, lambd=0.1):
    """The course's formulas 2.9-2.12 in NumPy (independent of the engine)."""
    X, Y, W1, b1, W2, b2 = (p[k].data for k in ("X", "Y", "W1", "b1", "W2", "b2"))
    A1 = np.tanh(W1 @ X + b1)
    A2 = 1 / (1 + np.exp(-(W2 @ A1 + b2)))
    dZ2 = A2 - Y
    dW2, db2 = dZ2 @ A1.T / m, dZ2.sum(axis=1, keepdims=True) / m
    dZ1 = (W2.T @ dZ2) * (1 - A1 ** 2)
    dW1, db1 = dZ1 @ X.T / m + lambd / m * W1, dZ1.sum(axis=1, keepdims=True) / m
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def expected_steps(J):
    """The engine's own order and gradients, captured here with run_backward's hook (not through viz)."""
    order = toposort([J], include_constants=True)
    ids = {t: f"t{i}" for i, t in enumerate(order)}
    steps, accum = [], {J: np.ones_like(J.data)}
    states = [{ids[J]: accum[J].copy()}]

    def hook(out, fn, g, in_grads):
        flows = []
        for k, (x, gx) in enumerate(zip(fn.inputs, in_grads)):
            if gx is not None and x.requires_grad:
                gx = np.array(gx, copy=True)
                flows.append((ids[x], k, gx))
                accum[x] = gx if x not in accum else accum[x] + gx
        steps.append({"op": "f" + ids[out][1:], "out": ids[out], "grad_out": np.array(g, copy=True), "flows": flows})
        states.append({ids[t]: v.copy() for t, v in accum.items()})

    run_backward([J], retain_graph=True, hook=hook)
    return order, ids, steps, states


@pytest.fixture(scope="module")
def browser():
    need_binary("dot")
    need_module("playwright")
    need_tool(os.path.exists(CHROMIUM), CHROMIUM)
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
        ctx = pw.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, headless=True, args=ARGS,
                                                    viewport={"width": 1400, "height": 900}, offline=True)
        yield ctx
        ctx.close()


def open_page(ctx, url):
    page = ctx.new_page()
    requests, errors = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    return page, requests, errors


def grad_attr(handle):
    raw = handle.get_attribute("data-grad")
    return None if raw is None else np.array(json.loads(raw))


@pytest.mark.browser
def test_every_step_matches_the_engine(browser, tmp_path):
    J, p = two_layer()
    path = viz.backprop_html(J, tmp_path / "page.html", title="2-layer network")
    html = (tmp_path / "page.html").read_text(encoding="utf-8")
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html  # no network, no CDN
    order, ids, steps, states = expected_steps(J)
    page, requests, errors = open_page(browser, "file://" + os.path.abspath(path))
    n = len(steps) + 1
    assert int(page.get_attribute("body", "data-nsteps")) == n
    grad_nodes = [ids[t] for t in order if t.requires_grad]
    snapshot = """() => ({
      step: document.body.dataset.step, hash: location.hash,
      nodes: Object.fromEntries(%s.map(id => [id, [document.getElementById(id).getAttribute("data-grad"),
                                                  document.getElementById("g" + id).textContent,
                                                  document.getElementById(id).getAttribute("class")]])),
      active: [...document.querySelectorAll(".node.active")].map(e => e.id),
      gout: document.querySelector(".gout") && document.querySelector(".gout").getAttribute("data-grad"),
      flows: [...document.querySelectorAll(".flow")].map(f => [f.dataset.tensor, f.dataset.inputIndex, f.dataset.grad]),
      flowing: [...document.querySelectorAll(".edge.flowing")].map(e => e.id),
      labels: [...document.querySelectorAll(".flow-label")].map(e => e.dataset.edge),
      rule: document.querySelector("#panel .rule") && document.querySelector("#panel .rule").textContent,
    })""" % json.dumps(grad_nodes)
    for k in range(n + 1):
        snap = page.evaluate(snapshot)
        assert snap["step"] == str(k) and snap["hash"] == f"#step={k}"
        # every node's displayed gradient is the engine's accumulated gradient after k steps
        for tid in grad_nodes:
            raw, text, _ = snap["nodes"][tid]
            want = states[min(k, len(steps))].get(tid)
            if want is None:
                assert raw is None and text == "∇ ?", (k, tid)
            else:
                got = np.array(json.loads(raw)).reshape(want.shape)
                np.testing.assert_array_equal(got, want, err_msg=f"step {k} node {tid}")
        if 1 <= k <= len(steps):
            s = steps[k - 1]
            assert snap["active"] == [s["op"]]
            assert "active-out" in snap["nodes"][s["out"]][2].split()
            np.testing.assert_array_equal(np.array(json.loads(snap["gout"])).reshape(s["grad_out"].shape),
                                          s["grad_out"])
            assert len(snap["flows"]) == len(s["flows"])
            edges_now = set()
            for (tid_got, idx_got, raw), (tid, idx, gx) in zip(snap["flows"], s["flows"]):
                assert (tid_got, idx_got) == (tid, str(idx))
                np.testing.assert_array_equal(np.array(json.loads(raw)).reshape(gx.shape), gx)
                assert "receiving" in snap["nodes"][tid][2].split()
                edges_now.add(f"e{s['out'][1:]}_{idx}")
            assert set(snap["flowing"]) == edges_now and set(snap["labels"]) == edges_now
            assert snap["rule"].startswith("local rule:")
        else:
            assert snap["active"] == [] and snap["flows"] == []
        if k < n:
            page.click("#next")
    assert page.is_disabled("#next")
    # the last step lists every leaf's gradient: equal to an ordinary backward()'s .grad and to the course formulas
    leaves = {e.get_attribute("data-name"): grad_attr(e) for e in page.query_selector_all(".leaf-grad")}
    page.screenshot(path=str(tmp_path / "final.png"))
    J.backward()
    oracle = course_gradients(p)
    assert set(leaves) == {"layers.0.W", "layers.0.b", "layers.1.W", "layers.1.b"}
    for key, name in (("W1", "layers.0.W"), ("b1", "layers.0.b"), ("W2", "layers.1.W"), ("b2", "layers.1.b")):
        got = leaves[name].reshape(p[key].shape)
        np.testing.assert_array_equal(got, p[key].grad)
        np.testing.assert_allclose(got, oracle[key], rtol=1e-10, atol=1e-14)
    assert all(u.startswith("file://") for u in requests) and not errors
    page.close()


@pytest.mark.browser
def test_previous_arrow_keys_and_fragment(browser, tmp_path):
    J, _ = two_layer(seed=2)
    path = os.path.abspath(viz.backprop_html(J, tmp_path / "page.html"))
    _, _, steps, _ = expected_steps(J)
    page, requests, errors = open_page(browser, f"file://{path}#step=3")
    assert page.get_attribute("body", "data-step") == "3"
    assert page.get_attribute(".node.active", "id") == steps[2]["op"]
    page.keyboard.press("ArrowRight")
    assert page.get_attribute("body", "data-step") == "4"
    assert page.get_attribute(".node.active", "id") == steps[3]["op"]
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    assert page.get_attribute("body", "data-step") == "2"
    page.click("#prev")
    page.click("#prev")
    page.keyboard.press("ArrowLeft")  # stops at 0
    assert page.get_attribute("body", "data-step") == "0" and page.is_disabled("#prev")
    assert page.query_selector(".node.active") is None
    page.evaluate("location.hash = '#step=%d'" % (len(steps) + 1))
    page.wait_for_function("document.body.dataset.step === '%d'" % (len(steps) + 1))
    assert len(page.query_selector_all(".leaf-grad")) == 4
    assert all(u.startswith("file://") for u in requests) and not errors
    page.close()


def test_page_is_self_contained_and_refuses_a_released_graph(tmp_path):
    need_binary("dot")
    J, _ = two_layer()
    text = open(viz.backprop_html(J, tmp_path / "p.html"), encoding="utf-8").read()
    assert "<svg" in text and "<script src" not in text and "<link" not in text
    assert text.count("<html") == 1
    data = json.loads(text.split('<script id="steps-data" type="application/json">')[1].split("</script>")[0])
    assert len(data["steps"]) == len(expected_steps(J)[2])
    assert "dW = dZ · A_prevᵀ" in text and "db = sum(dZ, axis=1)" in text  # the course's notation in the panel
    J.backward()
    with pytest.raises(viz.GraphReleasedError, match="retain_graph=True"):
        viz.backprop_html(J, tmp_path / "q.html")


# ---------------------------------------------------------------- safe to share, and inline in a notebook

def console_errors(page):
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return errors


def as_floats(raw):
    """A data-grad attribute: JSON whose non-finite values are the strings "NaN", "Infinity", "-Infinity"."""
    return np.array([float(v) for v in json.loads(raw)])


@pytest.mark.browser
def test_hostile_names_and_nan_gradients_cannot_break_the_page(browser, tmp_path):
    from test_viz import hostile_graph
    J, named = hostile_graph()
    title = "<!--TITLE--></title><script>window.pwned=6</script> {{SVG}}"
    with np.errstate(divide="ignore", invalid="ignore"):
        page_obj = viz.backprop_page(J, title=title)
        _, ids, steps, _ = expected_steps(J)
    text = page_obj.html
    data = text.split('<script id="steps-data" type="application/json">')[1].split("</script>")[0]
    assert "<" not in data and "NaN" in data and "Infinity" in data
    path = page_obj.save(tmp_path / "hostile.html")
    page = browser.new_page()
    errors, requests = console_errors(page), []
    page.on("request", lambda r: requests.append(r.url))
    page.goto("file://" + os.path.abspath(path))
    assert page.evaluate("window.pwned") is None and page.title() == title
    assert page.evaluate("document.querySelectorAll('script').length") == 2  # the data and the page's own code
    n = len(steps) + 1
    assert int(page.get_attribute("body", "data-nsteps")) == n
    order = toposort([J], include_constants=True)
    for k in range(1, n + 1):  # every step is reachable and shows its op's and output's names as text
        page.keyboard.press("ArrowRight")
        assert page.get_attribute("body", "data-step") == str(k)
        if k <= len(steps):
            out = order[int(steps[k - 1]["out"][1:])]
            assert page.text_content("#panel h2") == f"Step {k}: {out.creator.name} → {out.name or ids[out]}"
    leaves = {e.get_attribute("data-name"): as_floats(e.get_attribute("data-grad"))
              for e in page.query_selector_all(".leaf-grad")}
    assert set(leaves) == {t.name for t in named if t.creator is None}
    nan, zero = named[-2], named[-1]
    np.testing.assert_array_equal(leaves["has NaN"], [np.nan, 2.0])       # d(x²)/dx = 2x, NaN stays NaN
    np.testing.assert_array_equal(leaves["log(0)"], [np.inf, 1.0])        # d log(x)/dx = 1/x
    panel = page.text_content("#panel")
    for t in named:
        if t.creator is None:
            assert "d" + t.name in panel  # shown literally, markup and all
    node_text = page.evaluate("(id) => document.getElementById(id).textContent", ids[nan])
    assert "has NaN" in node_text and "nan" in node_text
    evil_op = next(s["op"] for s in steps if s["op"] == "f" + ids[named[len(named) - 3]][1:])
    assert "<<TABLE><TR><TD HREF=" in page.evaluate("(id) => document.getElementById(id).textContent", evil_op)
    assert page.evaluate("document.querySelectorAll('svg a[href], svg a[*|href]').length") == 0
    assert page.evaluate("window.pwned") is None and not errors, errors
    assert all(u.startswith("file://") for u in requests)
    page.close()


@pytest.mark.browser
def test_two_inline_pages_in_one_document_step_independently(browser, tmp_path):
    """What a notebook shows: the inline form of two pages side by side in one document. Each is a sandboxed frame
    with its own ids and its own arrow keys; stepping one leaves the other alone."""
    J1, _ = two_layer(seed=1)
    J2, _ = two_layer(seed=2)
    first = viz.backprop_page(J1, title="first")
    second = viz.backprop_html(J2, tmp_path / "second.html", title="second")
    assert second == str(tmp_path / "second.html") and isinstance(second, str)
    assert "first" in repr(first) and len(repr(first)) < 200
    host = tmp_path / "notebook.html"
    host.write_text("<!DOCTYPE html><html><body><div>cell 1</div>" + first._repr_html_() + "<div>cell 2</div>"
                    + second._repr_html_() + "</body></html>", encoding="utf-8")
    page = browser.new_page()
    errors = console_errors(page)
    page.goto("file://" + str(host))
    page.wait_for_function("document.querySelectorAll('iframe').length === 2")
    frames = [f for f in page.frames if f != page.main_frame]
    for f in frames:
        f.wait_for_function("document.body && document.body.dataset.nsteps")
    f1, f2 = sorted(frames, key=lambda f: f.title())  # "first", "second"
    assert (f1.title(), f2.title()) == ("first", "second")
    f1.click("#next")
    f1.click("#next")
    assert f1.get_attribute("body", "data-step") == "2" and f2.get_attribute("body", "data-step") == "0"
    f2.click("#next")  # focus moves into the second frame: the arrow keys now step it only
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    assert f2.get_attribute("body", "data-step") == "3" and f1.get_attribute("body", "data-step") == "2"
    active = f2.get_attribute(".node.active", "id")
    assert active == expected_steps(J2)[2][2]["op"]
    assert page.evaluate("window.scrollY") == 0  # stepping scrolls the frame's graph pane, not the notebook
    assert not errors, errors
    page.close()


@pytest.mark.browser
def test_each_hostile_name_alone(browser, tmp_path):
    """One name per page, so that no other name can undo its effect (a later "-->" would close a "<!--")."""
    page = browser.new_page()
    errors = console_errors(page)
    for i, name in enumerate(["<!--<script>x", "<!--SVG-->", "</script><script>window.pwned=1</script>",
                              "<script>window.pwned=8</script>", "{{DATA}} C:\\Net\\Go\\"]):
        W = dl.Tensor(np.array([[1.0, -2.0]]), requires_grad=True, name=name)
        J = (W * W).sum()
        path = viz.backprop_html(J, tmp_path / f"p{i}.html", title=name)
        page.goto("file://" + os.path.abspath(path))
        assert page.get_attribute("body", "data-nsteps") == "3", name
        assert page.title() == name.replace("\n", " ") and page.evaluate("window.pwned") is None, name
        page.click("#next")
        page.click("#next")
        page.click("#next")
        assert page.get_attribute(".leaf-grad", "data-name") == name, name
        np.testing.assert_array_equal(as_floats(page.get_attribute(".leaf-grad", "data-grad")), [2.0, -4.0])
    assert page.evaluate("window.pwned") is None and not errors, errors
    page.close()


def test_page_data_is_strict_json_that_cannot_end_its_script():
    """JSON.parse accepts no NaN/Infinity token: non-finite values travel as strings; and no < reaches the <script>."""
    need_binary("dot")
    x = dl.Tensor(np.array([[np.nan, 0.0, -0.0, 1.0]]), requires_grad=True, name="</script><!--<script>")
    with np.errstate(divide="ignore", invalid="ignore"):
        J = x.log().sum()
        text = viz.backprop_page(J).html

    def refuse(token):
        raise AssertionError(f"JSON.parse would reject {token}")

    data = text.split('<script id="steps-data" type="application/json">')[1].split("</script>")[0]
    parsed = json.loads(data, parse_constant=refuse)
    assert "<" not in data and parsed["leaves"][0]["name"] == x.name
    grad = parsed["leaves"][0]["grad"]  # d(log x)/dx = 1/x: NaN at NaN, inf at 0, -inf at -0
    assert grad == ["NaN", "Infinity", "-Infinity", 1.0]
    assert text.count("<script") == 2 and text.count("</script>") == 2


@pytest.mark.browser
def test_a_summarised_page_still_steps_through_every_op(browser, tmp_path):
    """Over max_nodes only the part nearest the output is drawn; every step is still listed and works."""
    x = dl.Tensor(np.array([[1.0, 2.0]]), requires_grad=True, name="x")
    y = x
    for _ in range(60):
        y = (y * 0.5).tanh()
    J = y.sum()
    page_obj = viz.backprop_page(J, max_nodes=20)
    assert "of 122 tensors drawn" in repr(page_obj)
    path = page_obj.save(tmp_path / "big.html")
    _, ids, steps, states = expected_steps(J)
    page = browser.new_page()
    errors = console_errors(page)
    page.goto("file://" + os.path.abspath(path))
    assert "max_nodes=20" in page.text_content(".note")
    for k in (1, 5, 60, len(steps)):
        page.evaluate(f"location.hash = '#step={k}'")
        page.wait_for_function(f"document.body.dataset.step === '{k}'")
        drawn = page.evaluate("(id) => !!document.getElementById(id)", steps[k - 1]["op"])
        assert drawn == (k <= 5)  # the first steps (nearest the output) are drawn
        assert ("not drawn" in page.text_content("#panel")) == (not drawn)
        flow = page.query_selector(".flow")
        np.testing.assert_array_equal(as_floats(flow.get_attribute("data-grad")), steps[k - 1]["flows"][0][2].ravel())
    page.click("#next")
    leaf = page.query_selector(".leaf-grad")
    np.testing.assert_array_equal(as_floats(leaf.get_attribute("data-grad")), states[-1][ids[x]].ravel())
    assert not errors, errors
    page.close()


def test_page_object_saves_and_shows_inline(tmp_path):
    """backprop_page() -> BackpropPage (.html, .save, inline display); backprop_html(root, path) -> the path, a str
    that a notebook also shows as the page; backprop_html(root) -> the BackpropPage."""
    import html as html_lib
    need_binary("dot")
    J, _ = two_layer()
    page = viz.backprop_page(J, title="two layers")
    assert isinstance(page, viz.BackpropPage) and page.html.startswith("<!DOCTYPE html>")
    assert repr(page).startswith("<BackpropPage 'two layers': ") and len(repr(page)) < 120
    frame = page._repr_html_()
    m = re.fullmatch(r'<iframe srcdoc="([^"]*)" title="two layers" sandbox="allow-scripts" style="[^"]*"[^>]*>'
                     r"</iframe>", frame)
    assert m and html_lib.unescape(m.group(1)) == page.html  # the whole page, self-contained, in one attribute
    saved = page.save(tmp_path / "sub" / "p.html")
    assert saved == str(tmp_path / "sub" / "p.html") and open(saved, encoding="utf-8").read() == page.html
    path = viz.backprop_html(J, tmp_path / "q.html", title="two layers")
    assert isinstance(path, str) and path == str(tmp_path / "q.html") and os.path.exists(path)
    assert path._repr_html_() == frame
    assert isinstance(viz.backprop_html(J, title="two layers"), viz.BackpropPage)
    with pytest.raises(ValueError, match="max_nodes"):
        viz.backprop_page(J, max_nodes=1)
