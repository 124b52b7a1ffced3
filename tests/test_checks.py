"""The internal argument checks: one place for "a number, not a bool", ranges, parameter lists and the rng rule."""
import pathlib
import re

import numpy as np
import pytest

import tinygrad_dl as dl
from tinygrad_dl import _checks

PACKAGE = pathlib.Path(dl.__file__).parent


@pytest.mark.parametrize("bad", [True, False, np.bool_(True), "1", None, [1], 1 + 0j])
def test_a_value_of_the_wrong_kind_is_both_a_type_and_a_value_error(bad):
    for check in (lambda x: _checks.number(x, "f", "x"), lambda x: _checks.integer(x, "f", "n"),
                  lambda x: _checks.probability(x, "f"), lambda x: _checks.beta(x, "f")):
        with pytest.raises(_checks.BadArgument) as e:
            check(bad)
        assert isinstance(e.value, TypeError) and isinstance(e.value, ValueError)
        assert str(e.value).startswith("f: ") and repr(bad) in str(e.value)


def test_ranges():
    assert _checks.number(np.float32(2.5), "f", "x") == 2.5 and type(_checks.number(3, "f", "x")) is float
    assert _checks.integer(np.int64(4), "f", "n") == 4 and _checks.positive_int(1, "f", "n") == 1
    for bad in (float("nan"), float("inf"), -1e-300):
        with pytest.raises(ValueError, match=r"f: lr must be a finite number >= 0"):
            _checks.nonneg(bad, "f", "lr")
    for bad in (0.0, 1.0 + 1e-12, float("nan")):
        with pytest.raises(ValueError, match=r"keep_prob must be a number in \(0, 1\]"):
            _checks.probability(bad, "f")
    assert _checks.probability(1.0, "f") == 1.0
    with pytest.raises(ValueError, match=r"f: n must be an int >= 1, got 0"):
        _checks.positive_int(0, "f", "n")
    with pytest.raises(ValueError, match=r"beta must be in \[0, 1\)"):
        _checks.beta(1.0, "f")
    assert _checks.number(float("inf"), "f", "x", finite=False) == float("inf")
    with pytest.raises(ValueError, match=r"x must be a number in \[0, 1\)"):
        _checks.number(1.0, "f", "x", low=0, high=1, high_open=True)


def test_rng_rule():
    g = np.random.default_rng(0)
    assert _checks.as_rng(g, "f") is g and _checks.as_rng(g, "f", per_call=True) is g
    a, b = _checks.as_rng(5, "f"), _checks.as_rng(5, "f")
    assert a is not b and a.random() == b.random()                   # an int: a new Generator from that seed
    with pytest.raises(TypeError, match=r"f: rng=5 would draw the same mask at every call"):
        _checks.as_rng(5, "f", per_call=True, what="mask")
    with pytest.raises(ValueError, match="non-negative"):
        _checks.as_rng(-1, "f")
    for bad in (True, 1.0, "0", np.random.RandomState(0)):
        with pytest.raises(TypeError, match="np.random.default_rng"):
            _checks.as_rng(bad, "f")


def test_the_toolkit_modules_write_no_number_check_of_their_own():
    """The "number but not bool" test lives in _checks only; data no longer reaches into optim's privates."""
    pattern = re.compile(r"isinstance\([^)]*\bbool\b")
    for name in ("data.py", "nn.py", "optim.py", "init.py"):
        text = (PACKAGE / name).read_text()
        assert not pattern.search(text), name
    assert "_param_list" not in (PACKAGE / "data.py").read_text()
