"""The learner's first notebook (examples/first_steps.ipynb), run headless the way Jupyter runs it: executed by
nbclient in a `python3` kernel, its outputs checked cell by cell for the MIME types a front end needs (the graph as
SVG, the cost curve as PNG, the stepper, the gradient check, a Tensor and the model as HTML), then exported to HTML
by nbconvert and opened in headless Chromium, where both inline backprop steppers step with their buttons and the
arrow keys without touching each other, and nothing logs an error."""
import base64
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
    data_html = cells["data"].outputs[-1].data["text/html"]
    assert "shape (30, 455)" in data_html and "'X'" in data_html   # 80% of 569 tumours, examples as columns
    # the model's total against an independent count of its layers' sizes: 30 -> 8 -> 1
    model_html = cells["model"].outputs[-1].data["text/html"]
    want_total = 8 * 30 + 8 + 1 * 8 + 1
    assert f'data-total="{want_total}"' in model_html
    png = base64.b64decode(cells["cost-curve"].outputs[-1].data["image/png"])
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5_000
    svg = cells["graph"].outputs[-1].data["image/svg+xml"]
    assert "<svg" in svg and "layers.0.W" in svg
    assert "great" in cells["gradcheck"].outputs[-1].data["text/plain"]
    assert "requires_grad" in cells["weights"].outputs[-1].data["text/html"]
    assert "‖grad‖" in cells["weights"].outputs[-1].data["text/html"]
    printed = "".join(o.text for o in cells["train"].outputs if o.output_type == "stream")
    test_acc = float(re.search(r"test accuracy (\S+)", printed).group(1))
    assert test_acc > 0.9, printed
