"""tinygrad_dl.functional: values and gradients against independent oracles.

Oracles: scipy.special (expit, log_expit, softmax, log_softmax, logsumexp) over the full range |z| <= 1e3 and at the
float64 exp limits; the course formulas written out in NumPy; two-sided finite differences (first and second order,
dl.testing); PyTorch where it is installed. Every test here runs with overflow/divide/invalid as errors and warnings
as errors: a stable composition never evaluates exp of a large positive number or log of 0.
"""
import ast
import inspect

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp
from scipy import special

import tinygrad_dl as dl
import tinygrad_dl.functional as F
import tinygrad_dl.nn as nn
from tinygrad_dl.tensor import PRIMITIVES, toposort
from tinygrad_dl.testing import assert_grad_close, assert_second_order_close, upstream_gradient

from conftest import need_module

pytestmark = pytest.mark.filterwarnings("error")


@pytest.fixture(autouse=True)
def _fp_errors():
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # underflow to 0 is fine
        yield


# ---------------------------------------------------------------- strategies

SPECIAL = [0.0, -0.0, 1e-300, -1e-300, 0.5, -0.5, 1.0, -1.0, 18.5, -18.5, 36.8, -36.8, 40.0, -40.0, 708.0, -708.0,
           709.78, -709.78, 710.0, -710.0, 745.2, -745.2, 800.0, -800.0, 1e3, -1e3]
ELEMENT = st.one_of(st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False), st.sampled_from(SPECIAL))
MATRIX = hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=6), elements=ELEMENT)
CLASSES = hnp.arrays(np.float64, st.tuples(st.integers(2, 6), st.integers(1, 6)), elements=ELEMENT)  # n_classes >= 2
TINY = 1e-300  # absolute tolerance for subnormal results (scipy flushes some of them to 0; we keep them)


def close(got, want, rtol=1e-12, atol=TINY):
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


def value_and_grad(f, x, g=None):
    t = dl.Tensor(x, requires_grad=True)
    y = f(t)
    y.backward(np.ones(y.shape) if g is None else g)
    return y.data, t.grad


def labels01(data, shape):
    return data.draw(hnp.arrays(np.float64, shape, elements=st.sampled_from([0.0, 1.0])))


def upstream(data, shape):
    return data.draw(hnp.arrays(np.float64, shape, elements=st.floats(-2, 2).filter(lambda v: abs(v) > 1e-3)))


# ---------------------------------------------------------------- values and gradients vs scipy, full range

@given(MATRIX, st.data())
def test_sigmoid_vs_scipy(z, data):
    g = upstream(data, z.shape)
    y, dz = value_and_grad(F.sigmoid, z, g)
    close(y, special.expit(z))
    close(dz, g * special.expit(z) * special.expit(-z))
    assert np.all(np.isfinite(dz))


@given(MATRIX, st.data())
def test_softplus_vs_scipy(z, data):
    g = upstream(data, z.shape)
    y, dz = value_and_grad(F.softplus, z, g)
    close(y, -special.log_expit(-z))            # log(1 + e^z), exact even where it is ~e^z << 1
    close(dz, g * special.expit(z))


@given(MATRIX, st.data())
def test_tanh_relu_leaky_full_range(z, data):
    g = upstream(data, z.shape)
    y, dz = value_and_grad(F.tanh, z, g)
    close(y, np.tanh(z))
    close(dz, g * (1 - np.tanh(z) ** 2))
    y, dz = value_and_grad(F.relu, z, g)
    np.testing.assert_array_equal(y, np.where(z > 0, z, 0.0))
    np.testing.assert_array_equal(dz, np.where(z > 0, g, 0.0))
    y, dz = value_and_grad(lambda t: F.leaky_relu(t, 0.2), z, g)
    close(y, np.where(z > 0, z, 0.2 * z), rtol=1e-15)
    close(dz, np.where(z > 0, g, 0.2 * g), rtol=1e-15)


@pytest.mark.parametrize("axis", [0, 1, -1])
@given(z=MATRIX, data=st.data())
def test_softmax_family_vs_scipy(axis, z, data):
    g = upstream(data, z.shape)
    sm = special.softmax(z, axis=axis)
    y, dz = value_and_grad(lambda t: F.softmax(t, axis), z, g)
    close(y, sm)
    # vector-Jacobian product s * (g - sum(g s)); the subtraction cancels, so the error scales with |g| s
    want = sm * (g - np.sum(g * sm, axis=axis, keepdims=True))
    assert np.all(np.abs(dz - want) <= 1e-12 * np.abs(want) + 1e-14 * sm * np.abs(g).sum(axis, keepdims=True)
                  + TINY)

    y, dz = value_and_grad(lambda t: F.log_softmax(t, axis), z, g)
    close(y, special.log_softmax(z, axis=axis), atol=1e-13)
    want = g - sm * np.sum(g, axis=axis, keepdims=True)
    assert np.all(np.abs(dz - want) <= 1e-12 * np.abs(want) + 1e-14 * np.abs(g).sum(axis, keepdims=True))

    gk = upstream(data, special.logsumexp(z, axis=axis, keepdims=True).shape)
    y, dz = value_and_grad(lambda t: F.logsumexp(t, axis, keepdims=True), z, gk)
    close(y, special.logsumexp(z, axis=axis, keepdims=True))
    close(dz, gk * sm, atol=1e-300)
    assert F.logsumexp(dl.Tensor(z), axis).shape == special.logsumexp(z, axis=axis).shape


@given(MATRIX, st.data())
def test_bce_with_logits_vs_scipy(Z, data):
    Y = labels01(data, Z.shape)
    m = Z.shape[1]
    J, dZ = value_and_grad(lambda t: F.binary_cross_entropy_with_logits(t, Y), Z)
    close(J, -np.sum(Y * special.log_expit(Z) + (1 - Y) * special.log_expit(-Z)) / m)
    # sigmoid(Z) - Y without cancellation: -sigmoid(-Z) where Y = 1, sigmoid(Z) where Y = 0
    close(dZ, np.where(Y == 1, -special.expit(-Z), special.expit(Z)) / m)


@given(MATRIX, st.data())
def test_bce_with_soft_labels(Z, data):
    Y = data.draw(hnp.arrays(np.float64, Z.shape, elements=st.floats(0, 1)))
    J, dZ = value_and_grad(lambda t: F.binary_cross_entropy_with_logits(t, Y), Z)
    # every term is >= 0, so the sum is accurate in both
    close(J, -np.sum(Y * special.log_expit(Z) + (1 - Y) * special.log_expit(-Z)) / Z.shape[1])
    close(dZ, (special.expit(Z) - Y) / Z.shape[1], atol=1e-15)


@given(CLASSES, st.data())
def test_cross_entropy_vs_scipy(Z, data):
    n, m = Z.shape
    labels = data.draw(hnp.arrays(np.int64, (m,), elements=st.integers(0, n - 1)))
    Y = np.zeros((n, m))
    Y[labels, np.arange(m)] = 1
    J, dZ = value_and_grad(lambda t: F.cross_entropy(t, Y), Z)
    close(J, -np.sum(Y * special.log_softmax(Z, axis=0)) / m, atol=1e-13)
    close(dZ, (special.softmax(Z, axis=0) - Y) / m, atol=1e-15)
    J2, dZ2 = value_and_grad(lambda t: F.cross_entropy(t, labels), Z)
    np.testing.assert_array_equal(J2, J)
    np.testing.assert_array_equal(dZ2, dZ)


def test_no_overflow_at_the_exp_limit():
    z = np.array([[-1e3, -745.2, -709.79, -709.78, 0.0, 709.78, 709.79, 745.2, 1e3]])
    for f in (F.sigmoid, F.softplus, F.tanh, lambda t: F.softmax(t, 1), lambda t: F.log_softmax(t, 1),
              lambda t: F.binary_cross_entropy_with_logits(t, np.ones_like(z)),
              lambda t: F.binary_cross_entropy_with_logits(t, np.zeros_like(z)),
              lambda t: F.cross_entropy(t.T, np.array([8])), lambda t: F.cross_entropy(t.T, np.array([0]))):
        y, dz = value_and_grad(f, z)
        assert np.all(np.isfinite(y)) and np.all(np.isfinite(dz))


# ---------------------------------------------------------------- exact at the kinks (STYLE rule 7)

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sigmoid_slope_at_zero_is_exactly_a_quarter(dtype):
    z = np.array([[0.0, -0.0]], dtype=dtype)
    y, dz = value_and_grad(F.sigmoid, z)
    assert y.dtype == dz.dtype == dtype
    np.testing.assert_array_equal(y, [[0.5, 0.5]])
    np.testing.assert_array_equal(dz, [[0.25, 0.25]])
    np.testing.assert_array_equal(value_and_grad(F.softplus, z)[1], [[0.5, 0.5]])


@pytest.mark.parametrize("m", [1, 3, 7, 209, 1000])
def test_bce_with_logits_gradient_at_zero_is_exact(m):
    Y = (np.arange(m) % 3 == 0).astype(np.float64).reshape(1, m)
    J, dZ = value_and_grad(lambda t: F.binary_cross_entropy_with_logits(t, Y), np.zeros((1, m)))
    assert J == pytest.approx(np.log(2.0), rel=1e-15, abs=0)
    np.testing.assert_array_equal(dZ, (0.5 - Y) / m)


def test_logistic_regression_first_step_from_zero():
    """w = 0, b = 0: Z = 0 exactly, so the course's dZ = A - Y = 1/2 - Y must come out exactly (§1.2.1)."""
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((4, 10)), (rng.random((1, 10)) < 0.5).astype(float)
    w, b = dl.Tensor(np.zeros((4, 1)), requires_grad=True), dl.Tensor(np.zeros((1, 1)), requires_grad=True)
    Z = (w.T @ X + b).retain_grad()
    F.binary_cross_entropy_with_logits(Z, Y).backward()
    dZ = (0.5 - Y) / 10
    np.testing.assert_array_equal(Z.grad, dZ)
    np.testing.assert_allclose(w.grad, X @ dZ.T, rtol=1e-14, atol=1e-15)
    np.testing.assert_array_equal(b.grad, dZ.sum(keepdims=True))
    A = dl.Tensor(np.full((1, 10), 0.5))
    assert F.binary_cross_entropy(A, Y).item() == pytest.approx(np.log(2), rel=1e-15)


def test_relu_and_leaky_relu_slopes_at_zero():
    z = np.array([[0.0, -0.0, 1.0, -1.0]])
    np.testing.assert_array_equal(value_and_grad(F.relu, z)[1], [[0.0, 0.0, 1.0, 0.0]])
    np.testing.assert_array_equal(value_and_grad(lambda t: F.leaky_relu(t, 0.1), z)[1], [[0.1, 0.1, 1.0, 0.1]])


# ---------------------------------------------------------------- the course formulas in NumPy

def test_formulas_equal_the_course_in_numpy():
    rng = np.random.default_rng(1)
    Z = rng.uniform(-6, 6, (3, 8))
    m = Z.shape[1]
    close(F.sigmoid(dl.Tensor(Z)).data, 1 / (1 + np.exp(-Z)), rtol=1e-14)
    close(F.tanh(dl.Tensor(Z)).data, (np.exp(Z) - np.exp(-Z)) / (np.exp(Z) + np.exp(-Z)), rtol=1e-14)
    np.testing.assert_array_equal(F.relu(dl.Tensor(Z)).data, np.maximum(0, Z))
    close(F.leaky_relu(dl.Tensor(Z)).data, np.maximum(0.01 * Z, Z), rtol=0)
    close(F.softplus(dl.Tensor(Z)).data, np.log(1 + np.exp(Z)), rtol=1e-13)  # log(1 + x) rounds; log1p does not
    close(F.softmax(dl.Tensor(Z)).data, np.exp(Z) / np.exp(Z).sum(axis=0, keepdims=True), rtol=1e-14)
    close(F.log_softmax(dl.Tensor(Z)).data, np.log(np.exp(Z) / np.exp(Z).sum(axis=0, keepdims=True)), rtol=1e-14,
          atol=1e-15)

    A, Y = rng.uniform(0.01, 0.99, (1, m)), (rng.random((1, m)) < 0.5).astype(float)
    close(F.binary_cross_entropy(dl.Tensor(A), Y).data, -np.sum(Y * np.log(A) + (1 - Y) * np.log(1 - A)) / m,
          rtol=1e-14)
    Zl = Z[:1]
    Al = 1 / (1 + np.exp(-Zl))
    close(F.binary_cross_entropy_with_logits(dl.Tensor(Zl), Y).data,
          -np.sum(Y * np.log(Al) + (1 - Y) * np.log(1 - Al)) / m, rtol=1e-13)
    Yc = np.eye(3)[rng.integers(0, 3, m)].T
    close(F.cross_entropy(dl.Tensor(Z), Yc).data,
          -np.sum(Yc * np.log(np.exp(Z) / np.exp(Z).sum(axis=0, keepdims=True))) / m, rtol=1e-13)
    Ar, Yr = rng.standard_normal((2, m)), rng.standard_normal((2, m))
    close(F.mse(dl.Tensor(Ar), Yr).data, np.sum((Ar - Yr) ** 2) / m, rtol=1e-14)
    Ws = [rng.standard_normal((4, 3)), rng.standard_normal((1, 4))]
    close(F.l2_penalty([dl.Tensor(W) for W in Ws], 0.7, m).data,
          0.7 / (2 * m) * sum(np.sum(np.square(W)) for W in Ws), rtol=1e-14)
    # inverted dropout, the course's four lines (§3.1), with the same random stream
    a3 = rng.standard_normal((5, m))
    keep_prob = 0.8
    d3 = np.random.default_rng(42).random((a3.shape[0], a3.shape[1])) < keep_prob
    course = np.multiply(a3, d3)
    course /= keep_prob
    close(F.dropout(dl.Tensor(a3), keep_prob, rng=np.random.default_rng(42)).data, course, rtol=1e-15)


# ---------------------------------------------------------------- finite differences, first and second order

def _soft_labels(shape):
    return np.random.default_rng(7).uniform(0, 1, shape)


COMPOSITIONS = {
    # name: (f, inputs) with inputs away from kinks; f maps input Tensors to the output
    "sigmoid": (F.sigmoid, lambda r: [r.uniform(-8, 8, (3, 4))]),
    "tanh": (F.tanh, lambda r: [r.uniform(-3, 3, (3, 4))]),
    "relu": (F.relu, lambda r: [r.choice([-1, 1], (3, 4)) * r.uniform(0.1, 3, (3, 4))]),
    "leaky_relu": (lambda z: F.leaky_relu(z, 0.05), lambda r: [r.choice([-1, 1], (3, 4)) * r.uniform(0.1, 3, (3, 4))]),
    "softplus": (F.softplus, lambda r: [r.uniform(-8, 8, (3, 4))]),
    "softmax": (lambda z: F.softmax(z, 0), lambda r: [r.uniform(-4, 4, (3, 4))]),
    "log_softmax": (lambda z: F.log_softmax(z, 1), lambda r: [r.uniform(-4, 4, (3, 4))]),
    "logsumexp": (lambda z: F.logsumexp(z, 0), lambda r: [r.uniform(-4, 4, (3, 4))]),
    "binary_cross_entropy": (lambda a, y: F.binary_cross_entropy(a, y),
                             lambda r: [r.uniform(0.05, 0.95, (2, 5)), r.uniform(0, 1, (2, 5))]),
    "binary_cross_entropy_with_logits": (lambda z: F.binary_cross_entropy_with_logits(z, _soft_labels((2, 5))),
                                         lambda r: [r.uniform(-6, 6, (2, 5))]),
    "cross_entropy": (lambda z: F.cross_entropy(z, np.array([0, 2, 1, 2, 0])), lambda r: [r.uniform(-4, 4, (3, 5))]),
    "mse": (lambda a, y: F.mse(a, y), lambda r: [r.standard_normal((2, 5)), r.standard_normal((2, 5))]),
    "l2_penalty": (lambda w1, w2: F.l2_penalty([w1, w2], 0.3, 5),
                   lambda r: [r.standard_normal((3, 2)), r.standard_normal((1, 3))]),
    "dropout": (lambda a: F.dropout(a, 0.7, mask=np.arange(12).reshape(3, 4) % 3 != 0),
                lambda r: [r.standard_normal((3, 4))]),
}
SMOOTH = ["sigmoid", "tanh", "softplus", "softmax", "log_softmax", "logsumexp", "binary_cross_entropy",
          "binary_cross_entropy_with_logits", "cross_entropy", "mse", "l2_penalty"]


def test_every_public_function_is_covered():
    assert set(F.__all__) == set(COMPOSITIONS)


@pytest.mark.parametrize("name", sorted(COMPOSITIONS))
@given(seed=st.integers(0, 2**32 - 1), data=st.data())
def test_gradient_vs_finite_differences(name, seed, data):
    f, make = COMPOSITIONS[name]
    inputs = make(np.random.default_rng(seed))
    out_shape = f(*[dl.Tensor(x) for x in inputs]).shape
    g = data.draw(upstream_gradient(out_shape)) if out_shape else None
    assert_grad_close(f, inputs, grad_output=g, eps=1e-6, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", SMOOTH)
def test_second_order_vs_finite_differences(name):
    f, make = COMPOSITIONS[name]
    assert_second_order_close(f, make(np.random.default_rng(3)))


# ---------------------------------------------------------------- the rule: compositions of primitives only

@pytest.mark.parametrize("module", [F, nn], ids=["functional", "nn"])
def test_no_derivative_is_defined_here(module):
    tree = ast.parse(inspect.getsource(module))
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            assert node.name != "backward", f"{module.__name__} defines backward (line {node.lineno})"
        if isinstance(node, ast.ClassDef):
            bases = {ast.unparse(b) for b in node.bases}
            assert not bases & {"Function", "dl.Function", "tensor.Function"}, f"{node.name} subclasses Function"
    for obj in vars(module).values():
        if inspect.isclass(obj) and obj.__module__ == module.__name__:
            assert not issubclass(obj, dl.Function)
            assert all("backward" not in vars(k) for k in obj.__mro__ if k is not object), obj
    assert all(cls.__module__ == "tinygrad_dl.ops" for cls in PRIMITIVES.values())


@pytest.mark.parametrize("name", sorted(COMPOSITIONS))
def test_graph_holds_only_registered_primitives(name):
    f, make = COMPOSITIONS[name]
    out = f(*[dl.Tensor(x, requires_grad=True) for x in make(np.random.default_rng(0))])
    for t in toposort([out], include_constants=True):
        if t.creator is not None:
            assert PRIMITIVES.get(type(t.creator).__name__) is type(t.creator), t.creator


OP_BUDGET = {"sigmoid": 5, "tanh": 1, "relu": 1, "leaky_relu": 1, "softmax": 4, "log_softmax": 5,
             "binary_cross_entropy": 10,  # 9 with a constant Y; here Y requires grad too (1 - Y is an op)
             "binary_cross_entropy_with_logits": 9, "cross_entropy": 8, "mse": 4, "dropout": 1}


@pytest.mark.parametrize("name", sorted(OP_BUDGET))
def test_op_count(name):
    """These run in every training step: a regression guard on the number of ops each one records."""
    f, make = COMPOSITIONS[name]
    out = f(*[dl.Tensor(x, requires_grad=True) for x in make(np.random.default_rng(0))])
    ops = [t for t in toposort([out]) if t.creator is not None]
    assert len(ops) <= OP_BUDGET[name], [t.creator.name for t in ops]


@pytest.mark.parametrize("name", sorted(COMPOSITIONS))
def test_float32_stays_float32(name):
    f, make = COMPOSITIONS[name]
    ts = [dl.Tensor(np.asarray(x, np.float32), requires_grad=True) for x in make(np.random.default_rng(0))]
    out = f(*ts)
    assert all(t.dtype == np.float32 for t in toposort([out], include_constants=True))
    out.backward(np.ones(out.shape, np.float32))
    assert all(t.grad.dtype == np.float32 for t in ts)


# ---------------------------------------------------------------- binary cross-entropy at saturation

def test_bce_is_finite_at_zero_and_one():
    a = np.array([[0.0, 1.0, 0.0, 1.0, 1e-50, 1 - 1e-16, 0.3]])
    A = dl.Tensor(a, requires_grad=True)
    Y = np.array([[0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0]])
    J = F.binary_cross_entropy(A, Y)
    J.backward()
    assert np.isfinite(J.item()) and np.all(np.isfinite(A.grad))
    # log clamped at -100 (PyTorch's convention): the wrong saturated predictions and log(1e-50) cost 100 each
    want = (100 + 100 + 100 - np.log(1 - a[0, 5]) - np.log(0.3)) / 7
    assert J.item() == pytest.approx(want, rel=1e-14)
    assert A.grad[0, 2] == 0.0 and A.grad[0, 3] == 0.0          # the clamped side is flat
    assert A.grad[0, 6] == pytest.approx(-1 / (0.3 * 7), rel=1e-14)


def test_bce_matches_torch_including_the_clamp():
    torch = need_module("torch")
    A = np.array([[0.0, 1.0, 0.0, 1.0, 1e-50, 0.2, 0.9, 1e-45]])
    Y = np.array([[0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.5]])
    want = torch.nn.functional.binary_cross_entropy(torch.tensor(A), torch.tensor(Y)).item()
    assert F.binary_cross_entropy(dl.Tensor(A), Y).item() == pytest.approx(want, rel=1e-12)


@given(CLASSES, st.data())
def test_logit_losses_match_torch(Z, data):
    torch = need_module("torch")
    n, m = Z.shape
    Y = data.draw(hnp.arrays(np.float64, Z.shape, elements=st.floats(0, 1)))
    Zt = torch.tensor(Z, requires_grad=True)
    torch.nn.functional.binary_cross_entropy_with_logits(Zt, torch.tensor(Y), reduction="sum").div(m).backward()
    J, dZ = value_and_grad(lambda t: F.binary_cross_entropy_with_logits(t, Y), Z)
    close(dZ, Zt.grad.numpy(), rtol=1e-12, atol=1e-15)
    labels = data.draw(hnp.arrays(np.int64, (m,), elements=st.integers(0, n - 1)))
    Zt = torch.tensor(Z, requires_grad=True)
    want = torch.nn.functional.cross_entropy(Zt.T, torch.tensor(labels))
    want.backward()
    J, dZ = value_and_grad(lambda t: F.cross_entropy(t, labels), Z)
    close(J, want.item(), rtol=1e-12, atol=1e-13)
    close(dZ, Zt.grad.numpy(), rtol=1e-12, atol=1e-15)


PROB = st.one_of(st.floats(0, 1), st.sampled_from([0.0, 1.0, 1e-50, 1e-300, 1 - 1e-16, 0.5]))


@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 3), st.integers(1, 6)), elements=PROB), st.data())
def test_bce_over_the_closed_interval_matches_torch(A, data):
    torch = need_module("torch")
    Y = labels01(data, A.shape)
    At = torch.tensor(A, requires_grad=True)
    want = torch.nn.functional.binary_cross_entropy(At, torch.tensor(Y), reduction="sum") / A.shape[1]
    want.backward()
    J, dA = value_and_grad(lambda t: F.binary_cross_entropy(t, Y), A)
    close(J, want.item(), rtol=1e-13)
    assert np.all(np.isfinite(dA))
    inside = A * (1 - A) > 1e-12            # where PyTorch's eps does not touch its gradient formula
    close(dA[inside], At.grad.numpy()[inside], rtol=1e-9)


def test_bce_refuses_values_outside_zero_one():
    with pytest.raises(ValueError, match="binary_cross_entropy: A must hold probabilities"):
        F.binary_cross_entropy(dl.Tensor([[0.5, 1.5]]), [[0.0, 1.0]])


# ---------------------------------------------------------------- shapes: Y must match, no silent broadcasting

@pytest.mark.parametrize("fn", [F.binary_cross_entropy, F.binary_cross_entropy_with_logits, F.mse])
@pytest.mark.parametrize("y_shape", [(4,), (4, 1), (1, 5), (2, 4)])
def test_target_shape_must_match(fn, y_shape):
    A = dl.Tensor(np.full((1, 4), 0.5))
    with pytest.raises(ValueError) as e:
        fn(A, np.zeros(y_shape))
    msg = str(e.value)
    assert msg.startswith(fn.__name__ + ":") and str(y_shape) in msg and "(1, 4)" in msg


def test_cross_entropy_target_errors():
    Z = dl.Tensor(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"cross_entropy: Y has shape \(2, 4\) but Z has shape \(3, 4\)"):
        F.cross_entropy(Z, np.zeros((2, 4)))
    with pytest.raises(ValueError, match="labels must lie in"):
        F.cross_entropy(Z, np.array([0, 1, 3, 2]))
    with pytest.raises(ValueError, match="whole numbers"):
        F.cross_entropy(Z, np.array([0.0, 1.5, 2.0, 2.0]))
    labels = np.array([0, 1, 2, 2])      # whole-valued floats (e.g. a Tensor of labels) are labels too
    assert F.cross_entropy(Z, dl.Tensor(labels)).item() == F.cross_entropy(Z, labels).item() == pytest.approx(np.log(3))
    with pytest.raises(ValueError, match=r"reshape\(-1\)"):
        F.cross_entropy(Z, np.array([[0, 1, 2, 2]]))
    with pytest.raises(ValueError, match=r"\(n_classes, m\)"):
        F.cross_entropy(dl.Tensor(np.zeros(3)), np.array([1]))


# ---------------------------------------------------------------- dropout

@pytest.mark.parametrize("keep_prob", [0, 0.0, -0.5, 1.5, float("nan"), True, "0.5", None])
def test_dropout_refuses_bad_keep_prob(keep_prob):
    with pytest.raises(ValueError, match=r"dropout: keep_prob must be a number in \(0, 1\]"):
        F.dropout(dl.Tensor(np.ones((2, 2))), keep_prob)


def test_dropout_identity_cases_and_reproducibility():
    A = dl.Tensor(np.random.default_rng(0).standard_normal((50, 40)), requires_grad=True)
    assert F.dropout(A, 1.0) is A
    assert F.dropout(A, 0.5, training=False) is A
    rng = np.random.default_rng(5)
    first, second = F.dropout(A, 0.8, rng=rng).data, F.dropout(A, 0.8, rng=rng).data
    assert not np.array_equal(first, second)                 # a Generator's stream continues
    again = np.random.default_rng(5)                          # the same seed reproduces the sequence
    np.testing.assert_array_equal(F.dropout(A, 0.8, rng=again).data, first)
    np.testing.assert_array_equal(F.dropout(A, 0.8, rng=again).data, second)


def test_dropout_statistics_and_gradient():
    A = dl.Tensor(np.ones((400, 500)), requires_grad=True)
    out = F.dropout(A, 0.8, rng=np.random.default_rng(0))
    kept = out.data != 0
    n = kept.size
    assert abs(kept.mean() - 0.8) < 5 * np.sqrt(0.8 * 0.2 / n)
    np.testing.assert_array_equal(out.data[kept], 1 / 0.8)   # kept units scaled: the expected value is unchanged
    out.backward(np.ones(out.shape))
    np.testing.assert_array_equal(A.grad, np.where(kept, 1 / 0.8, 0.0))
    with pytest.raises(ValueError, match=r"dropout: mask has shape \(2, 2\) but A has shape \(400, 500\)"):
        F.dropout(A, 0.5, mask=np.ones((2, 2), bool))


# ---------------------------------------------------------------- l2 penalty

def test_l2_penalty_gradient_and_errors():
    W = dl.Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    F.l2_penalty([W], 0.5, 10).backward()
    np.testing.assert_allclose(W.grad, 0.5 / 10 * W.data, rtol=1e-15)   # the course's weight decay (lambd/m) W
    model = nn.Sequential(nn.Dense(3, 2, rng=0), nn.ReLU(), nn.Dense(2, 1, rng=1))
    close(F.l2_penalty(model, 2.0, 4).data, F.l2_penalty([model[0].W, model[2].W], 2.0, 4).data, rtol=0)
    for bad in (dict(lambd=-1.0, m=3), dict(lambd=float("nan"), m=3), dict(lambd=1.0, m=0), dict(lambd=1.0, m=2.5)):
        with pytest.raises(ValueError, match="l2_penalty"):
            F.l2_penalty([W], **bad)
    with pytest.raises(ValueError, match="no weights"):
        F.l2_penalty([], 1.0, 3)


# ---------------------------------------------------------------- NaN, inf, empty: the examples (full sweep in test_edge_values.py)

def _ours_and_torch(f, tf, x):
    torch = need_module("torch")
    with np.errstate(all="ignore"):
        y, dx = value_and_grad(f, np.asarray(x, dtype=np.float64))
    xt = torch.tensor(np.asarray(x, dtype=np.float64), requires_grad=True)
    yt = tf(torch, xt)
    yt.backward(torch.ones_like(yt))
    return (y, dx), (yt.detach().numpy(), xt.grad.numpy())


@pytest.mark.parametrize("f, tf, x", [
    (F.relu, lambda torch, z: torch.relu(z), [np.nan, -1.0, 2.0]),                       # NaN stays NaN
    (lambda a: F.binary_cross_entropy(a, np.ones((1, 2))),                            # NaN prediction: NaN cost
     lambda torch, a: -(torch.log(a).sum()) / 2, [[np.nan, 0.5]]),
    (lambda t: t.max(), lambda torch, t: t.max(), [1.0, np.nan, 3.0]),                  # the gradient goes to NaN
    (lambda z: F.logsumexp(z, 0), lambda torch, z: torch.logsumexp(z, 0), [-np.inf, -np.inf]),
    (lambda z: F.logsumexp(z, 0), lambda torch, z: torch.logsumexp(z, 0), [np.inf, 1.0]),
    (lambda z: F.cross_entropy(z, [0, 1]),                                             # a masked class: 0.8133
     lambda torch, z: torch.nn.functional.cross_entropy(z.T, torch.tensor([0, 1])),
     [[0.0, 0.0], [1.0, 1.0], [-np.inf, -np.inf]]),
    (lambda x: x ** 0, lambda torch, x: x ** 0, [0.0, -0.0, 2.0]),                      # d(x**0)/dx = 0 at 0
    (lambda x: x.mean(), lambda torch, x: x.mean(), np.zeros((3, 0))),                  # NaN over nothing
], ids=["relu", "bce", "max", "logsumexp-all-minus-inf", "logsumexp-inf", "cross_entropy-masked", "pow0", "mean"])
def test_nan_inf_and_empty_examples_match_torch(f, tf, x):
    (y, dx), (yt, dxt) = _ours_and_torch(f, tf, x)
    np.testing.assert_allclose(y, yt, rtol=1e-12)       # assert_allclose: NaN and inf must sit where torch's do
    np.testing.assert_allclose(dx, dxt, rtol=1e-12)


def test_cross_entropy_refuses_one_class():
    with pytest.raises(ValueError, match=r"cross_entropy: Z has shape \(1, 3\), one class.*"
                                         r"binary_cross_entropy_with_logits"):
        F.cross_entropy(dl.Tensor(np.zeros((1, 3))), np.zeros(3, dtype=int))
