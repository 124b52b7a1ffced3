"""The backprop page in real headless Chromium (Playwright, Debian's /usr/bin/chromium; never `playwright install`):
every step reachable with Next / Previous / arrow keys / #step=N, each step's highlighted op and gradients equal to
the engine's own hook, the last step equal to every leaf's .grad from an ordinary backward() and to the course's
formulas written out in NumPy, and no network request."""
import json
import os
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
