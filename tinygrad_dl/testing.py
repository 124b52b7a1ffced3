"""Helpers for testing derivatives: yours and ours (course notes §3.2.3, two-sided differences).

    from tinygrad_dl.testing import assert_grad_close, arrays
    from hypothesis import given

    @given(arrays((3, 4), low=-5, high=5))
    def test_my_softsign(x):
        assert_grad_close(lambda t: t / (1 + t.abs()), [x])

`finite_differences`, `numerical_grad` and the assertions need only NumPy; the strategies need Hypothesis
(`pip install "tinygrad_dl[test]"`), imported when a strategy is called. Every assertion fails on NaN or inf,
whether backprop or the finite differences produced it: a check that cannot fail proves nothing.
"""
from __future__ import annotations

import numpy as np

from .tensor import Tensor, grad as _grad

__all__ = ["finite_differences", "numerical_grad", "assert_grad_close", "assert_second_order_close", "arrays",
           "shapes", "broadcastable_shapes", "upstream_gradient"]


# --- the one finite-difference routine -----------------------------------------------------------------------

def _scalar(value, where):
    v = value.data if isinstance(value, Tensor) else np.asarray(value)
    if v.size != 1:
        raise ValueError(f"{where}: the function must return a single number, got shape {v.shape}")
    return float(v.reshape(-1)[0])


def finite_differences(J, x, eps=1e-6):
    """dJ/dx by two-sided differences (course notes §3.2.3), for every element of the float array `x`:

        dJ/dx_i ≈ (J(x_i + ε) - J(x_i - ε)) / ((x_i + ε) - (x_i - ε))

    J is a function of no arguments that reads `x` (it returns a number, or a one-element Tensor or array).
    Each element is moved in place and put back bit for bit, even if J raises. The denominator is the step
    actually taken, computed in floating point: 2ε up to rounding, but exactly what moved x_i (for x_i = 1e8
    and ε = 1e-6 that is 1.49e-6, not 2e-6). Returns a float64 array shaped like `x`. This is the library's one
    finite-difference routine: `numerical_grad`, `assert_grad_close` and `dl.gradcheck` all use it.
    """
    if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
        raise TypeError(f"finite_differences: x must be a float ndarray that J reads, got "
                        f"{type(x).__name__ if not isinstance(x, np.ndarray) else x.dtype}")
    if not x.flags.writeable:
        raise ValueError("finite_differences: x is read-only; pass a writable copy that J reads")
    eps = float(eps)
    if not (np.isfinite(eps) and eps > 0):
        raise ValueError(f"finite_differences: eps must be a finite number > 0, got {eps}")
    out = np.empty(x.shape, dtype=np.float64)
    flat = x.flat                                   # writes through, whatever x's memory layout
    for i in range(x.size):
        keep = flat[i]
        try:
            flat[i] = keep + eps
            up, plus = flat[i], _scalar(J(), "finite_differences")
            flat[i] = keep - eps
            down, minus = flat[i], _scalar(J(), "finite_differences")
        finally:
            flat[i] = keep
        step = float(up) - float(down)
        if step == 0:
            raise ValueError(f"finite_differences: eps = {eps:g} is too small to move element "
                             f"{_index(i, x.shape)} (value {float(keep)!r}) in {x.dtype}; use a larger eps")
        out.flat[i] = (plus - minus) / step
    return out


def _index(flat_index, shape):
    return tuple(int(k) for k in np.unravel_index(flat_index, shape)) if shape else ()


def _as_arrays(inputs):
    return [np.array(x.data if isinstance(x, Tensor) else x, dtype=np.float64) for x in inputs]


def _value_of(f, arrays, grad_output):
    out = f(*[Tensor(a) for a in arrays])
    out = out.data if isinstance(out, Tensor) else np.asarray(out)
    g = np.ones_like(out) if grad_output is None else np.asarray(grad_output, dtype=np.float64)
    return float(np.sum(g * out))


def numerical_grad(f, inputs, eps=1e-6, grad_output=None):
    """Two-sided differences of <grad_output, f(*inputs)> with respect to every element of every input.

    f takes Tensors and returns a Tensor; inputs are arrays (or Tensors), evaluated in float64 copies.
    Returns one float64 ndarray per input, from `finite_differences` (the step actually taken).
    """
    arrays = _as_arrays(inputs)
    return [finite_differences(lambda: _value_of(f, arrays, grad_output), a, eps) for a in arrays]


# --- assertions ----------------------------------------------------------------------------------------------

def analytic_grad(f, inputs, grad_output=None, dtype=np.float64):
    """Backprop gradients of <grad_output, f(*inputs)>, one ndarray per input (via `out.backward(grad)`)."""
    ts = [Tensor(np.asarray(x.data if isinstance(x, Tensor) else x, dtype=dtype), requires_grad=True)
          for x in inputs]
    out = f(*ts)
    if not isinstance(out, Tensor):
        raise TypeError(f"assert_grad_close: f must return a Tensor, got {type(out).__name__}")
    _check_finite_value(out.data)
    g = np.ones(out.shape) if grad_output is None else np.asarray(grad_output)
    if not out.requires_grad:
        return [np.zeros(t.shape) for t in ts]
    out.backward(g.astype(out.dtype))
    return [np.zeros(t.shape) if t.grad is None else t.grad for t in ts]


def _check_finite_value(value, what="f"):
    """A gradient check at a point where the function is NaN or inf compares nothing: say so up front."""
    value = np.asarray(value)
    bad = ~np.isfinite(value)
    if bad.any():
        first = _index(int(np.flatnonzero(bad)[0]), value.shape)
        raise AssertionError(f"{what}'s value is not finite at the inputs: {int(bad.sum())} of {value.size} output "
                             f"elements are NaN or inf, first at index {first} ({value[first]!r}); a gradient "
                             f"check needs a finite value (choose inputs inside the function's domain)")


def _compare(name, got, want, rtol, atol, x=None, analytic="backprop",
             unsmooth="the function is NaN or inf, or jumps, within eps of this point"):
    """Every element of `got` (backprop) within atol + rtol |want| of `want` (numerical). NaN or inf in either
    fails: the test is written `not (err <= tol)`, so a NaN never counts as a pass."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        raise AssertionError(f"{name}: the {analytic} gradient has shape {got.shape}, the input has shape "
                             f"{want.shape}")
    broken = ~(np.isfinite(got) & np.isfinite(want))
    if broken.any():
        k = int(np.flatnonzero(broken)[0])
        g, w = float(got.flat[k]), float(want.flat[k])
        why = []
        if not np.isfinite(g):
            why.append(f"{analytic} gives {g}")
        if not np.isfinite(w):
            why.append(f"the numerical gradient is {w} ({unsmooth})")
        at = "" if x is None else f" (input value {float(x.flat[k])!r})"
        raise AssertionError(f"{name}: {int(broken.sum())} of {want.size} elements are NaN or inf; first at index "
                             f"{_index(k, want.shape)}{at}: {' and '.join(why)} ({analytic} {g}, numerical {w})")
    err = np.abs(got - want)
    bad = ~(err <= atol + rtol * np.abs(want))
    if bad.any():
        worst = np.unravel_index(np.argmax(np.where(bad, err, -1)), want.shape)
        raise AssertionError(f"{name}: {int(bad.sum())} of {want.size} elements differ; worst at index "
                             f"{tuple(int(i) for i in worst)}: {analytic} {float(got[worst]):.10g} vs numerical "
                             f"{float(want[worst]):.10g} (|diff| {err[worst]:.3g} > atol {atol:g} + rtol {rtol:g} "
                             f"* |numerical|)")


def _check_tolerances(rtol, atol):
    for label, v in (("rtol", rtol), ("atol", atol)):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise TypeError(f"{label} must be a number, got {v!r}")
        if not (np.isfinite(v) and v >= 0):
            raise ValueError(f"{label} must be a finite number >= 0, got {v}")


def assert_grad_close(f, inputs, grad_output=None, eps=1e-6, rtol=1e-5, atol=1e-7):
    """Assert that backprop through f matches two-sided differences for every input and element.

    On failure the message names the input (by position) and the element that differs most; NaN or inf
    anywhere (f's value, backprop, the differences) fails and says where.
    Use a `grad_output` with distinct values (see `upstream_gradient`) so a transposed gradient cannot pass.
    """
    _check_tolerances(rtol, atol)
    got = analytic_grad(f, inputs, grad_output)
    want = numerical_grad(f, inputs, eps, grad_output)
    for i, (a, n, x) in enumerate(zip(got, want, _as_arrays(inputs))):
        _compare(f"input {i}", a, n, rtol, atol, x)


def assert_second_order_close(f, inputs, grad_output=None, direction=None, eps=1e-5, rtol=1e-4, atol=1e-6):
    """Assert grad-of-grad: the gradient of h(x) = <v, d<g, f(x)>/dx> (built with create_graph=True)
    matches two-sided differences of h, i.e. a Hessian-vector product checked numerically.
    NaN or inf anywhere fails, as in `assert_grad_close`."""
    _check_tolerances(rtol, atol)
    arrays = _as_arrays(inputs)
    rng = np.random.default_rng(0)
    vs = [rng.standard_normal(a.shape) for a in arrays] if direction is None else \
        [np.asarray(v, dtype=np.float64) for v in direction]
    for i, (v, a) in enumerate(zip(vs, arrays)):
        if v.shape != a.shape:
            raise ValueError(f"assert_second_order_close: direction {i} has shape {v.shape}, input {i} has shape "
                             f"{a.shape}; they must match")

    def h(*ts):
        ts = [t if t.requires_grad else Tensor(t.data, requires_grad=True) for t in ts]
        out = f(*ts)
        if not out.requires_grad:
            return Tensor(0.0)
        g = np.ones(out.shape) if grad_output is None else np.asarray(grad_output, dtype=np.float64)
        firsts = _grad(out, list(ts), grad_outputs=[Tensor(g)], create_graph=True, allow_unused=True)
        total = None
        for d, v in zip(firsts, vs):
            if d is not None:
                term = (d * v).sum()
                total = term if total is None else total + term
        return total if total is not None else Tensor(0.0)

    ts = [Tensor(a, requires_grad=True) for a in arrays]
    _check_finite_value(f(*[Tensor(a) for a in arrays]).data)
    out = h(*ts)
    got = [np.zeros(a.shape) for a in arrays]
    if out.requires_grad:
        found = _grad(out, ts, allow_unused=True)
        got = [np.zeros(a.shape) if d is None else d.data for a, d in zip(arrays, found)]
    want = numerical_grad(h, arrays, eps)
    for i, (a, n, x) in enumerate(zip(got, want, arrays)):
        _compare(f"input {i} (second order)", a, n, rtol, atol, x, analytic="grad-of-grad",
                 unsmooth="the first-order gradient is NaN or inf, or jumps, within eps of this point")


# --- Hypothesis strategies ---------------------------------------------------------------------------------

def _hypothesis(what):
    """Import Hypothesis for a strategy, or say how to get it."""
    try:
        from hypothesis import strategies as st
        from hypothesis.extra import numpy as hnp
    except ImportError:
        raise ImportError(f"tinygrad_dl.testing.{what} is a Hypothesis strategy, and Hypothesis is not installed: "
                          f'install the test extra, pip install "tinygrad_dl[test]"', name="hypothesis") from None
    return st, hnp


def shapes(min_dims=0, max_dims=3, min_side=1, max_side=4):
    """Array shapes (a Hypothesis strategy)."""
    _, hnp = _hypothesis("shapes")
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def _accepted(input_shapes):
    """Make shapes the library accepts together: it refuses a lower-rank operand that would stretch a
    higher-rank one (the rank-1 trap: (1, 1) with (2,) or (n, 1) with (n,)), while same-rank broadcasting and
    0-d scalars are fine. Each lower-rank shape keeps a side > 1 only where every higher-rank shape has that
    same side; elsewhere the side becomes 1, so the pair broadcasts to the higher-rank shape itself."""
    shapes_ = [tuple(s) for s in input_shapes]
    for i in sorted(range(len(shapes_)), key=lambda k: -len(shapes_[k])):
        s = shapes_[i]
        if not s:
            continue
        higher = [t for t in shapes_ if len(t) > len(s)]
        shapes_[i] = tuple(side if all(t[len(t) - len(s) + j] == side for t in higher) else 1
                           for j, side in enumerate(s))
    return shapes_


def broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=1, max_side=4):
    """Tuples of `num_shapes` shapes that broadcast together AND that the library accepts (no rank-1 trap: a
    lower-rank shape never stretches a higher-rank one), with the result shape: a Hypothesis strategy drawing
    `(input_shapes, result_shape)`, as `hypothesis.extra.numpy.mutually_broadcastable_shapes` does."""
    _, hnp = _hypothesis("broadcastable_shapes")

    def accept(drawn):
        inputs = _accepted(drawn.input_shapes)
        return hnp.BroadcastableShapes(tuple(inputs), tuple(np.broadcast_shapes(*inputs)))

    return hnp.mutually_broadcastable_shapes(num_shapes=num_shapes, min_dims=min_dims, max_dims=max_dims,
                                             min_side=min_side, max_side=max_side).map(accept)


def arrays(shape, low=-3.0, high=3.0, dtype=np.float64, unique=False):
    """Float arrays of `shape` (a shape or a strategy of shapes) with finite values in [low, high]
    (a Hypothesis strategy)."""
    st, hnp = _hypothesis("arrays")
    elements = st.floats(low, high, allow_nan=False, allow_infinity=False, width=64 if dtype == np.float64 else 32)
    return hnp.arrays(dtype, shape, elements=elements, unique=unique)


def upstream_gradient(shape):
    """An upstream gradient with distinct values in (-1, 1] (so a transposed or permuted gradient fails)
    (a Hypothesis strategy)."""
    st, _ = _hypothesis("upstream_gradient")
    size = int(np.prod(shape))
    return st.permutations(range(size)).map(
        lambda p: ((np.array(p, dtype=np.float64) + 1) / size * 2 - 1).reshape(shape) + 0.01)
