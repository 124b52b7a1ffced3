"""Helpers for testing derivatives: yours and ours (course notes §3.2.3, two-sided differences).

    from tinygrad_dl.testing import assert_grad_close, arrays
    from hypothesis import given

    @given(arrays((3, 4), low=-5, high=5))
    def test_my_softsign(x):
        assert_grad_close(lambda t: t / (1 + t.abs()), [x])

`numerical_grad` and `assert_grad_close` need only NumPy; the strategies import Hypothesis when called.
"""
from __future__ import annotations

import numpy as np

from .tensor import Tensor, grad as _grad

__all__ = ["numerical_grad", "assert_grad_close", "assert_second_order_close", "arrays", "shapes",
           "broadcastable_shapes", "upstream_gradient"]


def _as_arrays(inputs):
    return [np.array(x.data if isinstance(x, Tensor) else x, dtype=np.float64) for x in inputs]


def _value_of(f, arrays, grad_output):
    out = f(*[Tensor(a) for a in arrays])
    out = out.data if isinstance(out, Tensor) else np.asarray(out)
    g = np.ones_like(out) if grad_output is None else np.asarray(grad_output, dtype=np.float64)
    return float(np.sum(g * out))


def numerical_grad(f, inputs, eps=1e-6, grad_output=None):
    """Two-sided differences of <grad_output, f(*inputs)> with respect to every element of every input.

    f takes Tensors and returns a Tensor; inputs are arrays (or Tensors), evaluated in float64.
    Returns one ndarray per input: (J(x + eps) - J(x - eps)) / (2 eps), element by element.
    """
    arrays = _as_arrays(inputs)
    result = []
    for a in arrays:
        g = np.zeros_like(a)
        flat, gflat = a.reshape(-1), g.reshape(-1)
        for i in range(flat.size):
            keep = flat[i]
            flat[i] = keep + eps
            up = _value_of(f, arrays, grad_output)
            flat[i] = keep - eps
            down = _value_of(f, arrays, grad_output)
            flat[i] = keep
            gflat[i] = (up - down) / (2 * eps)
        result.append(g)
    return result


def analytic_grad(f, inputs, grad_output=None, dtype=np.float64):
    """Backprop gradients of <grad_output, f(*inputs)>, one ndarray per input (via `out.backward(grad)`)."""
    ts = [Tensor(np.asarray(x.data if isinstance(x, Tensor) else x, dtype=dtype), requires_grad=True)
          for x in inputs]
    out = f(*ts)
    g = np.ones(out.shape) if grad_output is None else np.asarray(grad_output)
    out.backward(g.astype(out.dtype))
    return [np.zeros(t.shape) if t.grad is None else t.grad for t in ts]


def _compare(name, got, want, rtol, atol):
    got, want = np.broadcast_to(got, want.shape), np.asarray(want)
    err = np.abs(got - want)
    bad = err > atol + rtol * np.abs(want)
    if bad.any():
        worst = np.unravel_index(np.argmax(np.where(bad, err, -1)), want.shape)
        raise AssertionError(f"{name}: {int(bad.sum())} of {want.size} elements differ; worst at index "
                             f"{tuple(int(i) for i in worst)}: backprop {float(got[worst]):.10g} vs numerical "
                             f"{float(want[worst]):.10g} (|diff| {err[worst]:.3g} > atol {atol:g} + rtol {rtol:g} * |numerical|)")


def assert_grad_close(f, inputs, grad_output=None, eps=1e-6, rtol=1e-5, atol=1e-7):
    """Assert that backprop through f matches two-sided differences for every input and element.

    On failure the message names the input (by position) and the element that differs most.
    Use a `grad_output` with distinct values (see `upstream_gradient`) so a transposed gradient cannot pass.
    """
    got = analytic_grad(f, inputs, grad_output)
    want = numerical_grad(f, inputs, eps, grad_output)
    for i, (a, n) in enumerate(zip(got, want)):
        if a.shape != n.shape:
            raise AssertionError(f"input {i}: gradient has shape {a.shape}, the input has shape {n.shape}")
        _compare(f"input {i}", a, n, rtol, atol)


def assert_second_order_close(f, inputs, grad_output=None, direction=None, eps=1e-5, rtol=1e-4, atol=1e-6):
    """Assert grad-of-grad: the gradient of h(x) = <v, d<g, f(x)>/dx> (built with create_graph=True)
    matches two-sided differences of h, i.e. a Hessian-vector product checked numerically."""
    arrays = _as_arrays(inputs)
    rng = np.random.default_rng(0)
    vs = direction or [rng.standard_normal(a.shape) for a in arrays]

    def h(*ts):
        ts = [t if t.requires_grad else Tensor(t.data, requires_grad=True) for t in ts]
        out = f(*ts)
        g = np.ones(out.shape) if grad_output is None else np.asarray(grad_output, dtype=np.float64)
        firsts = _grad(out, list(ts), grad_outputs=[Tensor(g)], create_graph=True, allow_unused=True)
        total = None
        for d, v in zip(firsts, vs):
            if d is not None:
                term = (d * v).sum()
                total = term if total is None else total + term
        return total if total is not None else Tensor(0.0)

    ts = [Tensor(a, requires_grad=True) for a in arrays]
    out = h(*ts)
    got = [np.zeros(a.shape) for a in arrays]
    if out.requires_grad:
        found = _grad(out, ts, allow_unused=True)
        got = [np.zeros(a.shape) if d is None else d.data for a, d in zip(arrays, found)]
    want = numerical_grad(h, arrays, eps)
    for i, (a, n) in enumerate(zip(got, want)):
        _compare(f"input {i} (second order)", a, n, rtol, atol)


# --- Hypothesis strategies ---------------------------------------------------------------------------------

def shapes(min_dims=0, max_dims=3, min_side=1, max_side=4):
    """Array shapes (a Hypothesis strategy)."""
    from hypothesis.extra import numpy as hnp
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=1, max_side=4):
    """Tuples of `num_shapes` shapes that broadcast together, with the result shape (a Hypothesis strategy)."""
    from hypothesis.extra import numpy as hnp
    return hnp.mutually_broadcastable_shapes(num_shapes=num_shapes, min_dims=min_dims, max_dims=max_dims,
                                             min_side=min_side, max_side=max_side)


def arrays(shape, low=-3.0, high=3.0, dtype=np.float64, unique=False):
    """Float arrays of `shape` (a shape or a strategy of shapes) with values in [low, high]."""
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp
    elements = st.floats(low, high, allow_nan=False, allow_infinity=False, width=64 if dtype == np.float64 else 32)
    return hnp.arrays(dtype, shape, elements=elements, unique=unique)


def upstream_gradient(shape):
    """An upstream gradient with distinct values in (-1, 1] (so a transposed or permuted gradient fails)."""
    from hypothesis import strategies as st
    size = int(np.prod(shape))
    return st.permutations(range(size)).map(
        lambda p: ((np.array(p, dtype=np.float64) + 1) / size * 2 - 1).reshape(shape) + 0.01)
