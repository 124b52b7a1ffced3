"""Every public name the README documents exists."""
import os
import re

import pytest

import tinygrad_dl as dl
import tinygrad_dl.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCES = [os.path.join(ROOT, "README.md")]


def _names(text):
    found = set(re.findall(r"\b(dl(?:\.[A-Za-z_]\w*)+)", text)) | set(re.findall(r"\b(F\.[A-Za-z_]\w*)", text))
    return sorted(found)


def _resolve(dotted):
    head, *rest = dotted.split(".")
    obj = {"dl": dl, "F": F}[head]
    for part in rest:
        obj = getattr(obj, part)
    return obj


@pytest.mark.parametrize("source", [s for s in SOURCES if os.path.exists(s)], ids=os.path.basename)
def test_every_documented_name_exists(source):
    text = open(source, encoding="utf-8").read()
    names = _names(text)
    assert len(names) > 30
    missing = []
    for name in names:
        try:
            _resolve(name)
        except AttributeError:
            missing.append(name)
    assert not missing, f"documented in {os.path.basename(source)} but missing: {missing}"


def test_tensor_surface():
    t = dl.Tensor([[1.0, 2.0]], requires_grad=True)
    for attr in ("data", "grad", "shape", "ndim", "size", "dtype", "T", "requires_grad", "name", "creator"):
        getattr(t, attr)
    for method in ("numpy", "item", "detach", "retain_grad", "sum", "mean", "max", "exp", "log", "tanh", "sqrt",
                   "abs", "reshape", "transpose", "backward"):
        assert callable(getattr(t, method))


def test_readme_test_command_is_what_ci_runs():
    ci = open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8").read().splitlines()
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    commands = [line for line in ci if "python -m pytest" in line and not line.lstrip().startswith("#")]
    assert len(commands) == 1 and commands[0].strip() in readme
