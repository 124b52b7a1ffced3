"""Property tests of every primitive's derivative against two-sided finite differences (first and second order).

One test body, parametrized over the registry of primitives (tinygrad_dl.tensor.PRIMITIVES). The DOMAINS table
says how to draw inputs for each op (log of positives, away from kinks and ties, broadcastable shapes); the
registry check fails when an op is added without an entry, so every primitive is covered.
"""
import numpy as np
import pytest
from hypothesis import assume, given, strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_dl as dl
from tinygrad_dl import ops
from tinygrad_dl.tensor import PRIMITIVES
from tinygrad_dl.testing import (arrays, assert_grad_close, assert_second_order_close, broadcastable_shapes,
                                 shapes, upstream_gradient)


def away_from(x, points, gap=1e-3):
    return all(np.all(np.abs(x - p) > gap) for p in points)


# Each entry: a function of Hypothesis' `data` returning (f, inputs): f maps input Tensors to the op's output.

def binary(op, low=-3.0, high=3.0, b_low=None, b_high=None):
    def draw(data):
        (sa, sb), _ = data.draw(broadcastable_shapes(2, max_dims=3))
        a = data.draw(arrays(sa, low, high))
        b = data.draw(arrays(sb, low if b_low is None else b_low, high if b_high is None else b_high))
        _guard_rank_trap(sa, sb)
        return (lambda x, y: op()(x, y)), [a, b]
    return draw


def _guard_rank_trap(sa, sb):
    # our ops refuse (n, 1) against (n,): draw only shape pairs the library accepts
    if len(sa) != len(sb) and sa and sb:
        out = np.broadcast_shapes(sa, sb)
        assume(out in (sa, sb))


def unary(op, low=-3.0, high=3.0, avoid=()):
    def draw(data):
        x = data.draw(arrays(shapes(max_dims=3), low, high))
        assume(away_from(x, avoid))
        return (lambda t: op()(t)), [x]
    return draw


def draw_maximum(data):
    f, (a, b) = binary(ops.Maximum)(data)
    assume(np.all(np.abs(np.subtract(a, b)) > 1e-3))  # away from ties
    return f, [a, b]


def draw_where(data):
    (sc, sa, sb), out = data.draw(broadcastable_shapes(3, max_dims=3))
    for s in (sa, sb):
        _guard_rank_trap(sc, s)
    _guard_rank_trap(sa, sb)
    cond = data.draw(hnp.arrays(np.bool_, sc))
    a, b = data.draw(arrays(sa)), data.draw(arrays(sb))
    return (lambda x, y: ops.Where(cond)(x, y)), [a, b]


def draw_pow(data):
    p = data.draw(st.sampled_from([2.0, 3.0, 0.5, -1.0, 1.5, -0.5]))
    x = data.draw(arrays(shapes(max_dims=3), 0.3, 3.0))
    return (lambda t: ops.Pow(p)(t)), [x]


def draw_matmul(data):
    n, k, m = (data.draw(st.integers(1, 4)) for _ in range(3))
    return (lambda a, b: ops.MatMul()(a, b)), [data.draw(arrays((n, k))), data.draw(arrays((k, m)))]


def axis_strategy(ndim):
    if ndim == 0:
        return st.just(None)
    return st.one_of(st.none(), st.integers(-ndim, ndim - 1),
                     st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).map(tuple))


def spaced_arrays(data, shape):
    """Distinct values at least 0.1 apart (no ties within a finite-difference step)."""
    size = int(np.prod(shape))
    perm = data.draw(st.permutations(range(size)))
    return (np.array(perm, dtype=np.float64) * 0.1 - size * 0.05).reshape(shape)


def reduction(op, unique=False):
    def draw(data):
        x = data.draw(arrays(shapes(max_dims=3))) if not unique else spaced_arrays(data, data.draw(shapes(max_dims=3)))
        axis, keepdims = data.draw(axis_strategy(x.ndim)), data.draw(st.booleans())
        return (lambda t: op(axis, keepdims)(t)), [x]
    return draw


def draw_reshape(data):
    x = data.draw(arrays(shapes(min_dims=1, max_dims=3)))
    target = data.draw(st.sampled_from([(-1,), (x.size,), tuple(reversed(x.shape)), (1,) + x.shape]))
    target = (x.size,) if target == (-1,) else target
    return (lambda t: ops.Reshape(target)(t)), [x]


def draw_transpose(data):
    x = data.draw(arrays(shapes(max_dims=3)))
    axes = data.draw(st.permutations(range(x.ndim))) if x.ndim else None
    return (lambda t: ops.Transpose(axes)(t)), [x]


def draw_broadcast_to(data):
    target = data.draw(shapes(min_dims=1, max_dims=3))
    keep = data.draw(st.lists(st.booleans(), min_size=len(target), max_size=len(target)))
    src = tuple(n if k else 1 for n, k in zip(target, keep))
    src = src[data.draw(st.integers(0, len(src))):]  # drop some leading axes too
    x = data.draw(arrays(src))
    return (lambda t: ops.BroadcastTo(target)(t)), [x]


def index_strategy(shape):
    n = shape[0]
    basic = st.sampled_from([slice(1, None), slice(None, None, -1), 0, (slice(None), 0) if len(shape) > 1 else 0,
                             (Ellipsis, slice(0, 1))])
    repeated = st.lists(st.integers(0, n - 1), min_size=1, max_size=6).map(np.array)  # repeats accumulate
    return st.one_of(basic, repeated)


def draw_getitem(data):
    x = data.draw(arrays(shapes(min_dims=1, max_dims=3, min_side=2)))
    index = data.draw(index_strategy(x.shape))
    return (lambda t: ops.GetItem(index)(t)), [x]


def draw_scatter(data):
    shape = data.draw(shapes(min_dims=1, max_dims=3, min_side=2))
    index = data.draw(index_strategy(shape))
    x = data.draw(arrays(np.zeros(shape)[index].shape))
    return (lambda t: ops.Scatter(index, shape)(t)), [x]


def draw_concatenate(data):
    base = data.draw(shapes(min_dims=1, max_dims=3))
    axis = data.draw(st.integers(-len(base), len(base) - 1))
    count = data.draw(st.integers(1, 3))
    xs = []
    for _ in range(count):
        s = list(base)
        s[axis] = data.draw(st.integers(1, 3))
        xs.append(data.draw(arrays(tuple(s))))
    return (lambda *ts: ops.Concatenate(axis)(*ts)), xs


DOMAINS = {
    "Add": binary(ops.Add),
    "Sub": binary(ops.Sub),
    "Mul": binary(ops.Mul),
    "Div": binary(ops.Div, b_low=0.5, b_high=3.0),
    "Neg": unary(ops.Neg),
    "Pow": draw_pow,
    "Exp": unary(ops.Exp),
    "Log": unary(ops.Log, 0.1, 5.0),
    "Tanh": unary(ops.Tanh),
    "Log1p": unary(ops.Log1p, -0.9, 5.0),
    "Sin": unary(ops.Sin),
    "Cos": unary(ops.Cos),
    "Cast": unary(lambda: ops.Cast(np.float64)),  # float32 inputs come out float64; gradients go back to float32
    "Abs": unary(ops.Abs, avoid=(0.0,)),
    "Maximum": draw_maximum,
    "Where": draw_where,
    "MatMul": draw_matmul,
    "Sum": reduction(ops.Sum),
    "Max": reduction(ops.Max, unique=True),  # away from ties
    "Reshape": draw_reshape,
    "Transpose": draw_transpose,
    "BroadcastTo": draw_broadcast_to,
    "GetItem": draw_getitem,
    "Scatter": draw_scatter,
    "Concatenate": draw_concatenate,
}


def test_every_primitive_has_a_domain():
    assert set(PRIMITIVES) == set(DOMAINS), "add a DOMAINS entry for each new primitive (and drop removed ones)"


def _upstream(data, f, inputs):
    out_shape = f(*[dl.Tensor(x) for x in inputs]).shape
    return data.draw(upstream_gradient(out_shape))


@pytest.mark.parametrize("name", sorted(DOMAINS))
@given(data=st.data())
def test_first_order(name, data):
    f, inputs = DOMAINS[name](data)
    assert_grad_close(f, inputs, grad_output=_upstream(data, f, inputs), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", sorted(DOMAINS))
@given(data=st.data())
def test_second_order(name, data):
    f, inputs = DOMAINS[name](data)
    assert_second_order_close(f, inputs, grad_output=_upstream(data, f, inputs))


@pytest.mark.parametrize("name", sorted(DOMAINS))
@given(data=st.data())
def test_float32_in_float32_out(name, data):
    f, inputs = DOMAINS[name](data)
    ts = [dl.Tensor(np.asarray(x, dtype=np.float32), requires_grad=True) for x in inputs]
    out = f(*ts)
    assert out.dtype == (np.float64 if name == "Cast" else np.float32)
    out.backward(np.ones(out.shape, dtype=out.dtype))
    for t in ts:
        assert t.grad is not None and t.grad.dtype == np.float32 and t.grad.shape == t.shape


# --- the suite can fail: planted bugs are caught ------------------------------------------------------------

def test_a_wrong_tanh_rule_is_caught(monkeypatch):
    monkeypatch.setattr(ops.Tanh, "backward", lambda self, grad, out, x: (grad * (1.0 - out),))
    with pytest.raises(AssertionError, match="input 0"):
        assert_grad_close(lambda t: t.tanh(), [np.linspace(-2, 2, 7)])


def test_a_missing_unbroadcast_is_caught(monkeypatch):
    import tinygrad_dl.tensor as engine
    monkeypatch.setattr(engine, "sum_to_shape", lambda g, shape: g[(0,) * (g.ndim - len(shape))]
                        if g.ndim > len(shape) else g)
    with pytest.raises((AssertionError, ValueError)):
        assert_grad_close(lambda a, b: a * b, [np.ones((3, 4)) * 2, np.arange(4.0)])


def test_a_transposed_matmul_rule_is_caught(monkeypatch):
    monkeypatch.setattr(ops.MatMul, "backward", lambda self, grad, out, a, b: (grad @ b.T, (a.T @ grad).T.T * 1.0001))
    with pytest.raises(AssertionError, match="input 1"):
        assert_grad_close(lambda a, b: a @ b, [np.ones((2, 3)), np.arange(12.0).reshape(3, 4)],
                          grad_output=np.arange(8.0).reshape(2, 4))


# ============================================================ where's branch-free path: np.where's bits, always

_SPECIAL = [0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 1.5, -2.25, 1e-310, 3e38]


@given(dtype=st.sampled_from([np.float16, np.float32, np.float64]), n=st.sampled_from([5, 4095, 4096, 9000]),
       zero_side=st.sampled_from(["a", "b", "neither", "negative zero"]), seed=st.integers(0, 2**32 - 1))
def test_select_gives_the_bits_of_np_where(dtype, n, zero_side, seed):
    """ops.select (Where's forward) against np.where, byte for byte: NaN payloads and signs, -0.0, infinities,
    subnormals, on both sides of the size threshold, with the 0-d zero on either side (or a -0.0, which is not
    +0.0 and takes np.where)."""
    r = np.random.default_rng(seed)
    with np.errstate(all="ignore"):
        x = r.choice(np.array(_SPECIAL, dtype=dtype), size=(n,)) * r.choice([1, 1, 3], size=(n,)).astype(dtype)
    bits = x.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[x.itemsize])
    nan = np.isnan(x)
    bits[nan] |= r.integers(0, 4, size=int(nan.sum())).astype(bits.dtype)  # several NaN payloads
    cond = r.random(n) < 0.5
    zero = np.asarray(-0.0 if zero_side == "negative zero" else 0.0, dtype)
    a, b = {"a": (zero, x), "b": (x, zero), "neither": (x, x[::-1].copy()), "negative zero": (zero, x)}[zero_side]
    got, want = ops.select(cond, a, b), np.where(cond, a, b)
    assert got.dtype == want.dtype and got.shape == want.shape and got.tobytes() == want.tobytes()
    assert got.base is None and got.flags.writeable


def test_relu_forward_and_gradient_on_a_large_random_mask():
    """The path relu takes on large arrays, against the course's formula in NumPy: max(0, z), slope [z > 0]."""
    z = np.random.default_rng(3).standard_normal((64, 100))
    z[0, :4] = [0.0, -0.0, np.nan, -np.inf]
    t = dl.Tensor(z, requires_grad=True)
    y = dl.functional.relu(t)
    y.backward(np.ones_like(z))
    with np.errstate(invalid="ignore"):
        want = np.where(np.isnan(z), z, np.maximum(z, 0.0))
    assert np.array_equal(y.data, want, equal_nan=True)
    assert not np.signbit(y.data[0, 1])  # relu(-0.0) = +0.0
    assert np.array_equal(t.grad, (~(z <= 0)).astype(float))
