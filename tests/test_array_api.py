"""The same Tensor on other array libraries: array_api_strict (the Array API standard and nothing more, so any
NumPy-only call fails here), Dask (lazy, chunked along the example columns) and CuPy (a GPU, where there is one).

Every primitive, on array_api_strict: value, gradient and grad-of-grad equal NumPy's to 1e-12 (NumPy's are checked
against finite differences in test_ops.py). On Dask arrays chunked by columns: value and gradient equal NumPy's to
1e-12, nothing is computed while the graph is built, and the optimizer computes every gradient in one pass.
CuPy: these tests run where CuPy and a GPU exist and skip elsewhere (the only skip in this file).
"""
import threading

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_dl as dl
from tinygrad_dl import ops
from tinygrad_dl.tensor import PRIMITIVES
from tinygrad_dl.testing import arrays, upstream_gradient

from conftest import need_module
from test_ops import DOMAINS, _guard_rank_trap, broadcastable_shapes

try:
    import array_api_strict as xps
except ImportError:  # the fixtures below skip, or fail in CI
    xps = None
try:
    import dask
    import dask.array as da
except ImportError:
    dask = da = None

TOL = dict(rtol=1e-12, atol=1e-12)


@pytest.fixture(autouse=True)
def libraries():
    need_module("array_api_strict")
    need_module("array_api_compat")
    need_module("dask")


def strict(x):
    return xps.asarray(np.asarray(x))


def is_strict(x):
    return type(x).__module__.startswith("array_api_strict")


def columns(x):
    """x as a Dask array chunked along its last axis (the example columns): two chunks when there are two columns."""
    x = np.asarray(x)
    if x.ndim == 0:
        return da.from_array(x)
    n = x.shape[-1]
    last = (n,) if n < 2 else (n // 2, n - n // 2)
    return da.from_array(x, chunks=tuple((s,) for s in x.shape[:-1]) + (last,))


def close(got, want, what):
    got = dl.Tensor(got).numpy() if not isinstance(got, np.ndarray) else got
    np.testing.assert_allclose(got, want, err_msg=what, **TOL)


# --- drawing one primitive's inputs: test_ops' domains, with constant arrays moved to the library --------------

def draw_where(data):
    (sc, sa, sb), _ = data.draw(broadcastable_shapes(3, max_dims=3))
    for s in (sa, sb):
        _guard_rank_trap(sc, s)
    _guard_rank_trap(sa, sb)
    cond = data.draw(hnp.arrays(np.bool_, sc))
    a, b = data.draw(arrays(sa)), data.draw(arrays(sb))
    return (lambda lib: lambda x, y: ops.Where(lib(cond))(x, y)), [a, b]


def draw(name, data):
    """(make, inputs): make(lib) is the primitive's function with its constant arrays (Where's condition) in the
    library `lib` converts to; the inputs are NumPy arrays from test_ops' domain of the primitive."""
    if name == "Where":
        return draw_where(data)
    f, inputs = DOMAINS[name](data)
    return (lambda lib: f), inputs


def hvp(out, ts, g, vs):
    """First-order gradients of <g, out> (recorded) and the gradient of sum_i <v_i, grad_i> (grad-of-grad)."""
    firsts = dl.grad(out, ts, grad_outputs=[g], create_graph=True, allow_unused=True)
    total = None
    for d, v in zip(firsts, vs):
        if d is not None:
            term = (d * v).sum()
            total = term if total is None else total + term
    if total is None or not total.requires_grad:
        return firsts, [None] * len(ts)
    return firsts, dl.grad(total, ts, allow_unused=True)


def both_orders(make, inputs, g, vs, lib):
    ts = [dl.Tensor(lib(x), requires_grad=True) for x in inputs]
    out = make(lib)(*ts)
    firsts, seconds = hvp(out, ts, dl.Tensor(lib(g)), [lib(v) for v in vs])
    return out, firsts, seconds


# --- every primitive on array_api_strict, first and second order -----------------------------------------------

def test_the_tests_cover_every_primitive():
    assert set(PRIMITIVES) == set(DOMAINS)


@pytest.mark.parametrize("name", sorted(DOMAINS))
@given(data=st.data())
def test_primitive_on_array_api_strict_equals_numpy(name, data):
    make, inputs = draw(name, data)
    out_shape = make(np.asarray)(*[dl.Tensor(x) for x in inputs]).shape
    g = data.draw(upstream_gradient(out_shape))
    rng = np.random.default_rng(0)
    vs = [rng.standard_normal(np.shape(x)) for x in inputs]

    want, want1, want2 = both_orders(make, inputs, g, vs, np.asarray)
    got, got1, got2 = both_orders(make, inputs, g, vs, strict)
    assert is_strict(got.data), f"{name}: the forward left array_api_strict ({type(got.data)})"
    close(got.data, want.data, f"{name}: value")
    for order, gots, wants in (("gradient", got1, want1), ("grad-of-grad", got2, want2)):
        for i, (a, b) in enumerate(zip(gots, wants)):
            if a is None or b is None:  # no path (or a zero second derivative) on one side: zero on the other
                other = a if a is not None else b
                assert other is None or not np.any(other.numpy()), f"{name}: {order} of input {i}"
                continue
            assert is_strict(a.data), f"{name}: the {order} of input {i} left array_api_strict"
            close(a.data, b.data, f"{name}: {order} of input {i}")


# --- every primitive on Dask arrays chunked by columns (first order; NumPy beside Dask as parameters are) --------

def is_dask(x):
    return type(x).__module__.startswith("dask")


@pytest.mark.parametrize("name", sorted(DOMAINS))
@settings(max_examples=10)
@given(data=st.data())
def test_primitive_on_dask_columns_equals_numpy(name, data):
    make, inputs = draw(name, data)
    f = make(np.asarray)  # Where's condition stays NumPy: it joins Dask's graph
    out_shape = f(*[dl.Tensor(x) for x in inputs]).shape
    g = data.draw(upstream_gradient(out_shape))
    numpy_first = len(inputs) > 1 and data.draw(st.booleans())  # e.g. W (NumPy, on the driver) @ X (Dask)

    ts = [dl.Tensor(x, requires_grad=True) for x in inputs]
    want = f(*ts)
    want.backward(g)
    lazy = [dl.Tensor(x if (numpy_first and i == 0) else columns(x), requires_grad=True)
            for i, x in enumerate(inputs)]
    got = f(*lazy)
    assert is_dask(got.data), f"{name}: the output of a Dask input is not lazy ({type(got.data)})"
    got.backward(columns(g))
    grads = [t.grad for t in lazy]
    assert all(gr is None or is_dask(gr) for gr in grads), f"{name}: a gradient was computed during backward"
    value, *grads = dask.compute(got.data, *grads)
    close(value, want.data, f"{name}: value")
    for i, (a, t) in enumerate(zip(grads, ts)):
        assert (a is None) == (t.grad is None)
        if a is not None:
            close(a, t.grad, f"{name}: gradient of input {i}")


# --- the engine on other libraries ----------------------------------------------------------------------------

def test_a_tensor_keeps_its_library_and_dtype():
    assert is_strict(dl.Tensor(xps.asarray([1.0, 2.0])).data)
    t = dl.Tensor(xps.asarray([1, 2]))                       # integers become float64, as from NumPy
    assert is_strict(t.data) and t.dtype == xps.float64
    t = dl.Tensor(xps.asarray([1.0], dtype=xps.float32), requires_grad=True)
    (t * 2.0).sum().backward()
    assert t.grad.dtype == xps.float32 and is_strict(t.grad)
    assert dl.Tensor(xps.asarray([1.0]), dtype=np.float32).dtype == xps.float32
    with pytest.raises(TypeError, match="floating point"):
        dl.Tensor(xps.asarray([1.0]), dtype=np.int64)
    assert is_dask(dl.Tensor(da.ones((2, 4), chunks=(2, 2))).data)


def test_a_parameter_is_copied_in_its_library():
    x = xps.asarray([1.0, 2.0])
    W = dl.Tensor(x, requires_grad=True)
    with dl.no_grad():
        W -= 1.0
    assert float(x[0]) == 1.0 and W.numpy().tolist() == [0.0, 1.0]


@pytest.mark.parametrize("op", [lambda a, b: a + b, lambda a, b: a @ b.T, lambda a, b: dl.maximum(a, b),
                                lambda a, b: dl.concatenate([a, b]), lambda a, b: dl.where(a.data > 0, a, b)])
def test_numpy_with_array_api_strict_in_one_op_is_an_error_naming_both(op):
    a = dl.Tensor(np.ones((2, 2)), requires_grad=True)
    b = dl.Tensor(strict(np.ones((2, 2))), requires_grad=True)
    for x, y in ((a, b), (b, a)):
        with pytest.raises(TypeError, match=r"NumPy.*array_api_strict|array_api_strict.*NumPy"):
            op(x, y)


def test_numpy_beside_dask_joins_the_lazy_graph():
    W = dl.Tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)   # a parameter on the driver
    X = dl.Tensor(columns(np.ones((2, 6))))
    Z = W @ X + np.ones((3, 1))
    assert is_dask(Z.data) and is_dask((X * np.float64(2.0)).data) and is_dask((1.0 - X).data)
    np.testing.assert_array_equal(Z.numpy(), W.numpy() @ np.ones((2, 6)) + 1)


def test_materialising_is_explicit():
    t = dl.Tensor(strict([[1.5, -2.0]]))
    assert type(t.numpy()) is np.ndarray and t.numpy().tolist() == [[1.5, -2.0]]
    assert t.tolist() == [[1.5, -2.0]] and np.asarray(t).tolist() == [[1.5, -2.0]]
    assert t.sum().item() == -0.5 and float(t.sum()) == -0.5 and len(t) == 1
    assert "array_api_strict" in repr(t) and "1.5" in repr(t)
    lazy = dl.Tensor(columns(np.ones((2, 4))))
    assert "dask.array" in repr(lazy) and lazy.sum().item() == 8.0


class Blocks:
    """A Dask array whose chunks count how often they are computed (laziness made visible)."""

    def __init__(self, X, chunk):
        self.count, self.lock = 0, threading.Lock()
        self.array = da.from_array(X, chunks=(X.shape[0], chunk)).map_blocks(self._seen, dtype=X.dtype)
        self.chunks = self.array.numblocks[1]

    def _seen(self, block):
        if block.size:  # (Dask calls it once on an empty array to learn the result's type)
            with self.lock:
                self.count += 1
        return block


def planar(rng, m):
    X = rng.standard_normal((2, m))
    Y = (X[0:1] * X[1:2] > 0).astype(np.float64)
    return X, Y


def shallow_model(seed):
    rng = np.random.default_rng(seed)
    return dl.nn.Sequential(dl.nn.Dense(2, 4, init="xavier", rng=rng), dl.nn.Tanh(),
                            dl.nn.Dense(4, 1, init="xavier", rng=rng))


def lazy_cost(model, X, Y):
    """The planar cost written with primitives only (the functional layer has tests of its own below)."""
    Z = model(X)
    A = Z.tanh() * 0.5 + 0.5
    return -(Y * A.log() + (1.0 - Y) * (1.0 - A).log()).sum() * (1.0 / Z.shape[1])


def test_forward_and_backward_compute_nothing_and_the_step_computes_once():
    X, Y = planar(np.random.default_rng(0), 120)
    blocks = Blocks(X, 30)
    model, twin = shallow_model(1), shallow_model(1)
    opt = dl.optim.GradientDescent(model.parameters(), lr=0.5)
    twin_opt = dl.optim.GradientDescent(twin.parameters(), lr=0.5)
    for step in range(3):
        J = lazy_cost(model, dl.Tensor(blocks.array), columns(Y))
        opt.zero_grad()
        J.backward()
        repr(J), str(J)
        assert blocks.count == step * blocks.chunks, "building the graph (or printing it) computed the data"
        assert all(is_dask(p.grad) for p in model.parameters())
        value = opt.step(J)
        assert blocks.count == (step + 1) * blocks.chunks, "the step should read each chunk exactly once"
        assert all(type(p.grad) is np.ndarray for p in model.parameters())

        J_np = lazy_cost(twin, X, Y)
        twin_opt.zero_grad()
        J_np.backward()
        assert twin_opt.step(J_np) == J_np.item()
        assert abs(value - J_np.item()) <= 1e-12
        for p, q in zip(model.parameters(), twin.parameters()):
            np.testing.assert_allclose(p.numpy(), q.numpy(), **TOL)
    assert type(model.parameters()[0].data) is np.ndarray  # parameters stay NumPy arrays on the driver


@pytest.mark.parametrize("Opt", [dl.optim.GradientDescent, dl.optim.Momentum, dl.optim.RMSprop, dl.optim.Adam])
def test_optimizers_update_parameters_in_another_library_as_numpy_does(Opt):
    rng = np.random.default_rng(2)
    W0, G = rng.standard_normal((3, 2)), [rng.standard_normal((3, 2)) for _ in range(3)]
    W_np, W_xp = dl.Tensor(W0, requires_grad=True), dl.Tensor(strict(W0), requires_grad=True)
    opt_np, opt_xp = Opt([W_np], lr=0.1), Opt([W_xp], lr=0.1)
    for g in G:
        W_np.grad, W_xp.grad = g, strict(g)
        opt_np.step()
        opt_xp.step()
        assert is_strict(W_xp.data)
        np.testing.assert_allclose(W_xp.numpy(), W_np.numpy(), rtol=0, atol=0)  # the same operations in order


def test_grad_of_grad_and_in_place_updates_on_array_api_strict():
    x = dl.Tensor(strict([0.5, -1.0]), requires_grad=True)
    y = (x * x * x).sum()
    dx, = dl.grad(y, x, create_graph=True)
    d2, = dl.grad(dx.sum(), x)
    assert is_strict(dx.data) and d2.numpy().tolist() == [3.0, -6.0]     # d/dx sum(3x^2) = 6x
    with pytest.raises(RuntimeError, match="leaf"):
        x += 1.0
    with dl.no_grad():
        x *= 2.0
    assert x.numpy().tolist() == [1.0, -2.0] and is_strict(x.data)


def test_anomaly_detection_on_array_api_strict():
    x = dl.Tensor(strict([0.0, 1.0]), requires_grad=True)
    with dl.detect_anomaly(), np.errstate(divide="ignore"), pytest.raises(FloatingPointError, match="Log produced inf"):
        x.log()


def test_a_custom_function_on_array_api_strict():
    class Square(dl.Function):
        """y = x**2; dy/dx = 2x"""

        def forward(self, x):
            return x * x

        def backward(self, grad, out, x):
            return (grad * x * 2.0,)

    x = dl.Tensor(strict([3.0]), requires_grad=True)
    Square()(x).sum().backward()
    assert is_strict(x.grad) and dl.Tensor(x.grad).numpy().tolist() == [6.0]


# --- CuPy: the one skip here, where there is no GPU ------------------------------------------------------------

def cupy_with_a_device():
    try:
        import cupy
        if cupy.cuda.runtime.getDeviceCount() < 1:
            raise RuntimeError("no device")
    except Exception as e:  # not installed, no driver, or no GPU: these tests need a real device
        pytest.skip(f"CuPy with a GPU is not available here ({type(e).__name__}: {e})")
    return cupy


def test_cupy_network_gradients_equal_numpy():
    cp = cupy_with_a_device()
    X, Y = planar(np.random.default_rng(3), 50)
    model, twin = shallow_model(4), shallow_model(4)
    for p in model.parameters():
        p.data = cp.asarray(p.data)                       # the parameters move to the GPU, explicitly
    lazy_cost(model, cp.asarray(X), cp.asarray(Y)).backward()
    lazy_cost(twin, X, Y).backward()
    for p, q in zip(model.parameters(), twin.parameters()):
        assert type(p.grad).__module__.startswith("cupy")
        np.testing.assert_allclose(cp.asnumpy(p.grad), q.grad, **TOL)


def test_cupy_with_numpy_in_one_op_is_an_error_naming_both():
    cp = cupy_with_a_device()
    with pytest.raises(TypeError, match="NumPy.*CuPy|CuPy.*NumPy"):
        dl.Tensor(np.ones(2)) + dl.Tensor(cp.ones(2))


# --- the compositions: activations, costs, dropout, layers, networks ------------------------------------------

import tinygrad_dl.functional as F  # noqa: E402
from test_functional import COMPOSITIONS, _soft_labels  # noqa: E402

LABELS = np.array([0, 2, 1, 2, 0])


def compositions(lib):
    """name -> (f, inputs(rng)): test_functional's table with its constant arrays made by `lib`, and more cases:
    clamped probabilities, a target with its own gradient, one-hot and soft labels, Tensor methods, layers."""
    table = dict(COMPOSITIONS)
    table.update({
        "binary_cross_entropy_with_logits": (lambda z: F.binary_cross_entropy_with_logits(z, lib(_soft_labels((2, 5)))),
                                             lambda r: [r.uniform(-6, 6, (2, 5))]),
        "cross_entropy": (lambda z: F.cross_entropy(z, lib(LABELS)), lambda r: [r.uniform(-4, 4, (3, 5))]),
        "dropout": (lambda a: F.dropout(a, 0.7, mask=lib(np.arange(12).reshape(3, 4) % 3 != 0)),
                    lambda r: [r.standard_normal((3, 4))]),
        "binary_cross_entropy clamped": (lambda a: F.binary_cross_entropy(a, lib(np.eye(2, 5))),
                                         lambda r: [np.where(np.eye(2, 5) > 0, 0.0, np.where(np.eye(2, 5, 1) > 0, 1.0,
                                                                                             r.uniform(0, 1, (2, 5))))]),
        "binary_cross_entropy tiny": (lambda a: F.binary_cross_entropy(a, lib(np.eye(2, 5))),
                                      lambda r: [r.uniform(1e-9, 1e-5, (2, 5))]),
        "binary_cross_entropy target with gradient": (F.binary_cross_entropy,
                                                      lambda r: [r.uniform(0.05, 0.95, (2, 5)),
                                                                 r.uniform(0, 1, (2, 5))]),
        "cross_entropy one-hot": (lambda z: F.cross_entropy(z, lib(np.eye(3, 5))), lambda r: [r.uniform(-4, 4, (3, 5))]),
        "cross_entropy soft labels": (lambda z: F.cross_entropy(z, lib(_soft_labels((3, 5)) / 3)),
                                      lambda r: [r.uniform(-4, 4, (3, 5))]),
        "cross_entropy float labels": (lambda z: F.cross_entropy(z, lib(LABELS.astype(np.float64))),
                                       lambda r: [r.uniform(-4, 4, (3, 5))]),
        "logsumexp with -inf": (lambda z: F.logsumexp(z + lib(np.where(np.eye(3, 4) > 0, -np.inf, 0.0)), 0),
                                lambda r: [r.uniform(-4, 4, (3, 4))]),
        "methods": (lambda x: (x.mean(axis=1, keepdims=True) + x.var(axis=0) [None] if False else
                               x.mean(axis=1, keepdims=True) * x.std(axis=1, keepdims=True) + x.min(axis=1, keepdims=True)
                               + x.clip(-0.5, 0.5).sigmoid().relu() + x.astype(np.float32).astype(np.float64)),
                    lambda r: [r.uniform(-2, 2, (3, 4))]),
        "network": (lambda x, W1, W2: F.cross_entropy(W2 @ F.relu(W1 @ x), lib(np.array([0, 1, 1, 0]))),
                    lambda r: [r.standard_normal((3, 4)), r.standard_normal((5, 3)), r.standard_normal((2, 5))]),
    })
    return table


GRADIENT_TARGET = {"binary_cross_entropy target with gradient"}


def test_every_composition_is_covered():
    assert set(F.__all__) <= set(compositions(np.asarray))


@pytest.mark.parametrize("name", sorted(compositions(np.asarray)))
def test_composition_on_array_api_strict_equals_numpy(name):
    rng = np.random.default_rng(5)
    f_np, make = compositions(np.asarray)[name]
    f_xp, _ = compositions(strict)[name]
    inputs = make(rng)
    out_shape = f_np(*[dl.Tensor(x) for x in inputs]).shape
    g = rng.uniform(0.5, 1.5, out_shape)
    vs = [rng.standard_normal(np.shape(x)) for x in inputs]
    want, want1, want2 = both_orders(lambda lib: f_np, inputs, g, vs, np.asarray)
    got, got1, got2 = both_orders(lambda lib: f_xp, inputs, g, vs, strict)
    assert is_strict(got.data)
    close(got.data, want.data, f"{name}: value")
    for order, gots, wants in (("gradient", got1, want1), ("grad-of-grad", got2, want2)):
        for i, (a, b) in enumerate(zip(gots, wants)):
            if a is None or b is None:
                other = a if a is not None else b
                assert other is None or not np.any(other.numpy()), f"{name}: {order} of input {i}"
                continue
            assert is_strict(a.data)
            close(a.data, b.data, f"{name}: {order} of input {i}")


@pytest.mark.parametrize("name", sorted(compositions(np.asarray)))
def test_composition_on_dask_columns_equals_numpy_and_stays_lazy(name):
    rng = np.random.default_rng(6)
    f_np, make = compositions(np.asarray)[name]
    f_dask, _ = compositions(columns)[name]
    inputs = make(rng)
    ts = [dl.Tensor(x, requires_grad=True) for x in inputs]
    want = f_np(*ts)
    g = rng.uniform(0.5, 1.5, want.shape)
    want.backward(g)
    lazy = [dl.Tensor(columns(x), requires_grad=True) for x in inputs]
    with dask.config.set(scheduler=_refuse_to_compute):
        got = f_dask(*lazy)
        got.backward(columns(g))
    value, *grads = dask.compute(got.data, *[t.grad for t in lazy])
    close(value, want.data, f"{name}: value")
    for i, (a, t) in enumerate(zip(grads, ts)):
        close(a, t.grad, f"{name}: gradient of input {i}")


def _refuse_to_compute(*args, **kwargs):
    raise AssertionError("something was computed while the graph was built")


def test_value_checks_on_dask_run_with_the_computation():
    bad = dl.Tensor(columns(np.array([[0.2, 1.5, 0.3, 0.1]])), requires_grad=True)
    with dask.config.set(scheduler=_refuse_to_compute):
        J = F.binary_cross_entropy(bad, np.ones((1, 4)))   # no error yet: nothing is computed
        J.backward()
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\].*max 1\.5"):
        J.item()
    opt = dl.optim.GradientDescent([bad], lr=0.1)
    with pytest.raises(ValueError, match="probabilities"):
        opt.step()
    Z = dl.Tensor(columns(np.zeros((3, 4))))
    with pytest.raises(ValueError, match=r"labels must be whole numbers in \[0, 3\).*max 3"):
        F.cross_entropy(Z, columns(np.array([0, 1, 3, 2]))).item()
    with pytest.raises(ValueError, match="whole numbers"):
        F.cross_entropy(Z, columns(np.array([0.0, 1.5, 1.0, 2.0]))).item()
    with pytest.raises(ValueError, match="0/1"):
        F.dropout(Z, 0.5, mask=columns(np.full((3, 4), 2.0))).sum().item()
    # eager libraries check at once, as NumPy does
    with pytest.raises(ValueError, match="probabilities"):
        F.binary_cross_entropy(dl.Tensor(strict([[0.2, -0.5]])), strict([[1.0, 0.0]]))


def test_dropout_on_dask_draws_chunk_by_chunk_reproducibly():
    A = dl.Tensor(columns(np.ones((3, 8))))
    with dask.config.set(scheduler=_refuse_to_compute):
        D1 = F.dropout(A, 0.5, rng=np.random.default_rng(7))
    D2 = F.dropout(A, 0.5, rng=np.random.default_rng(7))
    a, b = D1.numpy(), D2.numpy()
    np.testing.assert_array_equal(a, b)
    assert set(np.unique(a)) <= {0.0, 2.0} and 0 < (a == 0).sum() < a.size
    strict_drop = F.dropout(dl.Tensor(strict(np.ones((3, 8)))), 0.5, rng=np.random.default_rng(7))
    numpy_drop = F.dropout(dl.Tensor(np.ones((3, 8))), 0.5, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(strict_drop.numpy(), numpy_drop.numpy())  # eager libraries: NumPy's draw


def test_a_numpy_target_with_array_api_strict_logits_is_an_error_naming_both():
    Z = dl.Tensor(strict(np.zeros((3, 5))))
    with pytest.raises(TypeError, match="NumPy.*array_api_strict|array_api_strict.*NumPy"):
        F.mse(Z, np.zeros((3, 5)))
    with pytest.raises(TypeError, match="NumPy.*array_api_strict|array_api_strict.*NumPy"):
        F.cross_entropy(Z, np.eye(3, 5)).item()


# --- data utilities keep the library ---------------------------------------------------------------------------

def test_data_utilities_keep_the_library():
    rng = np.random.default_rng(8)
    X, labels = rng.standard_normal((3, 20)) * 5 + 2, np.arange(20) % 4
    X[1] = 7.0                                                            # a constant feature
    for lib, check in ((strict, is_strict), (columns, is_dask)):
        with dask.config.set(scheduler=_refuse_to_compute):
            pieces = dl.data.split(lib(X), lib(labels), (0.5, 0.25, 0.25), rng=1)
            batches = list(dl.data.minibatches(lib(X), lib(labels), 8, rng=np.random.default_rng(2)))
            Y = dl.data.one_hot(lib(labels), 4)
            rows = dl.data.columns(lib(X.T))
        for (xa, ya), (xn, yn) in zip(pieces, dl.data.split(X, labels, (0.5, 0.25, 0.25), rng=1)):
            assert check(xa) and check(ya)
            np.testing.assert_array_equal(dl.Tensor(xa).numpy(), xn)
            np.testing.assert_array_equal(_ns_numpy(ya), yn)
        for (xb, yb), (xn, yn) in zip(batches, dl.data.minibatches(X, labels, 8, rng=np.random.default_rng(2))):
            np.testing.assert_array_equal(dl.Tensor(xb).numpy(), xn)
        np.testing.assert_array_equal(_ns_numpy(Y), dl.data.one_hot(labels, 4))
        np.testing.assert_array_equal(_ns_numpy(rows), X)
        norm, want = dl.data.Normalizer().fit(lib(X)), dl.data.Normalizer().fit(X)
        np.testing.assert_allclose(_ns_numpy(norm.mu), want.mu, **TOL)
        np.testing.assert_allclose(_ns_numpy(norm.sigma), want.sigma, **TOL)
        with dask.config.set(scheduler=_refuse_to_compute):
            Xn = norm(lib(X))
        assert check(Xn)
        np.testing.assert_allclose(_ns_numpy(Xn), want(X), **TOL)
    with pytest.raises(TypeError, match="NumPy arrays.*Dask"):
        dl.data.augment(columns(np.ones((64, 4))), np.zeros(4))


def _ns_numpy(x):
    from tinygrad_dl._namespace import to_numpy
    return to_numpy(x)


def test_the_visualizer_and_jit_say_they_are_numpy_only():
    for lib in (strict, columns):
        W = dl.Tensor(lib(np.ones((2, 2))), requires_grad=True)
        J = (W * W).sum()
        with pytest.raises(TypeError, match="viz draws graphs of NumPy tensors.*(array_api_strict|dask)"):
            dl.viz.to_dot(J)
        with pytest.raises(TypeError, match="NumPy tensors"):
            dl.viz.backprop_page(J)

        @dl.jit
        def step(X):
            t = dl.Tensor(X)
            return (t * t).sum()

        with pytest.warns(dl.JitWarning, match="replays NumPy only"):
            assert step(lib(np.ones((2, 2)))).item() == 4.0
