"""The learner's first notebook (examples/first_steps.ipynb), run headless the way Jupyter runs it: executed by
nbclient in a `python3` kernel, its outputs checked cell by cell for the MIME types a front end needs (the graph as
SVG, the cost curve as PNG, the stepper, the gradient check, a Tensor and the model as HTML), then exported to HTML
by nbconvert and opened in headless Chromium, where both inline backprop steppers step with their buttons and the
arrow keys without touching each other, and nothing logs an error."""
import base64
import html
import json
import os
import re
import tempfile

import numpy as np
import pytest

from conftest import need_binary, need_module, need_tool

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")
NOTEBOOK = os.path.join(EXAMPLES, "first_steps.ipynb")
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]

# cell id -> the MIME types its outputs must carry (cells not listed may print text, nothing else)
EXPECTED = {
    "data": {"text/html"},
    "model": {"text/html"},
    "cost-curve": {"image/png"},
    "graph": {"image/svg+xml"},
    "stepper": {"text/html"},
    "gradcheck": {"text/html"},
    "stepper-2": {"text/html"},
    "weights": {"text/html"},
}


def notebook_tools():
    for name in ("nbformat", "nbclient", "ipykernel", "sklearn", "matplotlib", "graphviz"):
        need_module(name)
    need_binary("dot")


@pytest.fixture(scope="module")
def executed():
    """The notebook after running every cell, as Jupyter would: the kernel's working folder is examples/ and it
    imports this checkout's tinygrad_dl. A cell that raises fails here, with the cell and the traceback."""
    notebook_tools()
    import nbformat
    from nbclient import NotebookClient
    nb = nbformat.read(NOTEBOOK, as_version=4)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)
    client = NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": EXAMPLES}})
    client.execute(env=env)
    return nb


def cells_by_id(nb):
    return {c.id: c for c in nb.cells}


def test_committed_without_outputs():
    """Committed cleared, so a diff shows only what a person wrote."""
    need_module("nbformat")
    import nbformat
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code)
    assert set(EXPECTED) <= set(cells_by_id(nb))
    assert os.path.getsize(NOTEBOOK) < 20_000


def test_every_cell_shows_what_it_should(executed):
    cells = cells_by_id(executed)
    for cell in executed.cells:
        if cell.cell_type != "code":
            continue
        kinds = [o.output_type for o in cell.outputs]
        assert "error" not in kinds, (cell.id, cell.outputs)
        stderr = [o.text for o in cell.outputs if o.output_type == "stream" and o.name == "stderr"]
        assert not stderr, (cell.id, stderr)                       # no warnings either
        mimes = set().union(*[o.get("data", {}).keys() for o in cell.outputs])
        want = EXPECTED.get(cell.id, set())
        assert want <= mimes, f"cell {cell.id!r}: outputs carry {sorted(mimes)}, expected {sorted(want)}"
        if cell.id not in EXPECTED:
            assert mimes <= {"text/plain"}, (cell.id, mimes)
    # the content, not only the type
    data_html = html.unescape(cells["data"].outputs[-1].data["text/html"])
    assert "shape (30, 455)" in data_html and "'X'" in data_html   # 80% of 569 tumours, examples as columns
    # the model's total against an independent count of its layers' sizes: 30 -> 8 -> 1
    model_html = cells["model"].outputs[-1].data["text/html"]
    want_total = 8 * 30 + 8 + 1 * 8 + 1
    assert f'data-total="{want_total}"' in model_html
    png = base64.b64decode(cells["cost-curve"].outputs[-1].data["image/png"])
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5_000
    svg = cells["graph"].outputs[-1].data["image/svg+xml"]
    assert "<svg" in svg and "layers.0.W" in svg
    width = float(re.search(r'<svg\b[^>]*?\swidth="([\d.]+)pt"', svg).group(1))
    assert width <= 720                                             # fits a notebook cell (960 px)
    assert "great" in cells["gradcheck"].outputs[-1].data["text/plain"]
    assert "requires_grad" in cells["weights"].outputs[-1].data["text/html"]
    assert "‖grad‖" in cells["weights"].outputs[-1].data["text/html"]
    printed = "".join(o.text for o in cells["train"].outputs if o.output_type == "stream")
    test_acc = float(re.search(r"test accuracy (\S+)", printed).group(1))
    assert test_acc > 0.9, printed


# ---------------------------------------------------------------- the exported notebook in headless Chromium

# the logistic-regression stepper's inputs, as written in the notebook's "stepper-2" cell (checked below)
W_2, B_2 = np.array([[0.5], [-1.0]]), np.array([[0.1]])
X_2, Y_2 = np.array([[1.0, 2.0, -1.0], [0.5, -0.5, 1.5]]), np.array([[1.0, 0.0, 1.0]])

STATE = """() => ({
  step: document.body.getAttribute("data-step"),
  steps: document.body.getAttribute("data-nsteps"),
  active: [...document.querySelectorAll(".node.active")].map(e => e.id),
  op: document.getElementById("panel").getAttribute("data-op"),
  gout: document.querySelector(".gout") && document.querySelector(".gout").getAttribute("data-grad"),
  flows: [...document.querySelectorAll(".flow")].map(f => f.getAttribute("data-grad")),
  leaves: Object.fromEntries([...document.querySelectorAll(".leaf-grad")].map(
    e => [e.getAttribute("data-name"), e.getAttribute("data-grad")])),
})"""


@pytest.fixture(scope="module")
def browser():
    need_module("playwright")
    need_tool(os.path.exists(CHROMIUM), CHROMIUM)
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
        ctx = pw.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, headless=True, args=ARGS,
                                                    viewport={"width": 1280, "height": 900})
        yield ctx
        ctx.close()


def test_exported_notebook_steps_in_chromium(executed, browser, tmp_path):
    from nbconvert import HTMLExporter
    exporter = HTMLExporter()
    body, _ = exporter.from_notebook_node(executed)
    path = tmp_path / "first_steps.html"
    path.write_text(body, encoding="utf-8")

    page = browser.new_page()
    errors, requests = [], []
    page.on("console", lambda m: m.type == "error" and errors.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    page.on("request", lambda r: requests.append(r.url))
    # nbconvert's template links require.js and MathJax from a CDN; answer them with empty scripts (no network)
    page.route(re.compile(r"^https?://"), lambda route: route.fulfill(status=200, body="",
                                                                      content_type="application/javascript"))
    page.goto(path.as_uri())
    page.wait_for_function("document.querySelectorAll('iframe').length === 2")
    frames = [f for f in page.frames if f != page.main_frame]
    assert len(frames) == 2
    for f in frames:
        f.wait_for_function("document.body.getAttribute('data-nsteps') !== null")
    # frames come in document order: the network's stepper, then logistic regression's
    net, logistic = sorted(frames, key=lambda f: f.frame_element().bounding_box()["y"])
    state = lambda f: f.evaluate(STATE)                                                # noqa: E731

    # the collector sees errors from inside the frames (else "no errors" below would prove nothing)
    net.evaluate("console.error('probe')")
    assert errors == ["console: probe"]
    errors.clear()

    s0 = state(net)
    assert s0["step"] == "0" and s0["active"] == [] and s0["gout"] is None
    assert int(s0["steps"]) > 10 and state(logistic)["step"] == "0"

    # Next: a highlighted op and the gradient it receives; each further step moves both
    net.click("#next")
    s1 = state(net)
    assert s1["step"] == "1" and len(s1["active"]) == 1 and s1["op"] == s1["active"][0] and s1["gout"]
    net.click("#next")
    s2 = state(net)
    assert s2["step"] == "2" and s2["active"] != s1["active"] and (s2["gout"], s2["flows"]) != (s1["gout"], s1["flows"])
    # the arrow keys go to the frame that has the focus (the one just clicked)
    page.keyboard.press("ArrowRight")
    s3 = state(net)
    assert s3["step"] == "3" and s3["active"] not in (s1["active"], s2["active"]) and s3["flows"] != s2["flows"]
    page.keyboard.press("ArrowLeft")
    assert state(net) == s2
    assert state(logistic)["step"] == "0"                                  # the other stepper did not move

    # the second stepper, driven by its keys only, to the end; the first one stays where it was
    logistic.click("#panel")
    n = int(state(logistic)["steps"])
    seen_ops = set()
    for k in range(1, n + 1):
        page.keyboard.press("ArrowRight")
        s = state(logistic)
        assert s["step"] == str(k)
        if k < n:
            assert len(s["active"]) == 1 and s["active"][0] not in seen_ops
            seen_ops.add(s["active"][0])
    page.keyboard.press("ArrowRight")                                     # stops at the last step
    assert state(logistic)["step"] == str(n) and state(net) == s2
    # its last step lists dJ/dw and dJ/db: the course's formulas for logistic regression (notes 1.2), in NumPy
    A = 1 / (1 + np.exp(-(W_2.T @ X_2 + B_2)))
    m = X_2.shape[1]
    leaves = {name: np.array(json.loads(raw)) for name, raw in state(logistic)["leaves"].items()}
    assert set(leaves) == {"w", "b"}
    np.testing.assert_allclose(leaves["w"].reshape(2, 1), X_2 @ (A - Y_2).T / m, rtol=1e-12)
    np.testing.assert_allclose(leaves["b"].reshape(1, 1), (A - Y_2).sum(keepdims=True) / m, rtol=1e-12)
    source = cells_by_id(executed)["stepper-2"].source
    assert "[[0.5], [-1.0]]" in source and "[[0.1]]" in source and "[[1.0, 2.0, -1.0], [0.5, -0.5, 1.5]]" in source
    assert "[[1.0, 0.0, 1.0]]" in source

    assert errors == [], errors
    template_urls = (exporter.require_js_url, exporter.mathjax_url)
    assert all(u.startswith(("file://", "data:", "about:")) or u in template_urls for u in requests), requests
    page.close()
