"""The Tensor methods and habits people bring from NumPy and PyTorch, checked against torch (values and gradients)
and against finite differences."""
import numpy as np
import pytest

import tinygrad_dl as dl
from tinygrad_dl import Tensor
from tinygrad_dl.testing import assert_grad_close

from conftest import need_module

X = np.array([[0.3, -1.2, 2.0], [-0.7, 0.0, 1.1]])
G = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])  # upstream gradient, distinct values


def _run(fn, x, lib):
    t = lib(x)
    out = fn(t)
    shape = tuple(out.shape)
    seed = G[tuple(slice(0, n) for n in shape)] if len(shape) == 2 else np.full(shape, 0.5)
    return t, out, seed


CASES = [  # (name, ours, torch's)
    ("log1p", lambda t: t.abs().log1p(), lambda t: t.abs().log1p()),
    ("sin", lambda t: t.sin(), lambda t: t.sin()),
    ("cos", lambda t: t.cos(), lambda t: t.cos()),
    ("min", lambda t: t.min(), lambda t: t.min()),
    ("min-dim-keepdim", lambda t: t.min(dim=1, keepdim=True), lambda t: t.min(dim=1, keepdim=True).values),
    ("max-axis", lambda t: t.max(axis=0), lambda t: t.max(dim=0).values),
    ("sum-dim-keepdim", lambda t: t.sum(dim=0, keepdim=True), lambda t: t.sum(dim=0, keepdim=True)),
    ("mean-dim", lambda t: t.mean(dim=1), lambda t: t.mean(dim=1)),
    ("var", lambda t: t.var(), lambda t: t.var(correction=0)),
    ("var-axis", lambda t: t.var(axis=1, keepdims=True), lambda t: t.var(dim=1, keepdim=True, correction=0)),
    ("var-correction", lambda t: t.var(dim=0, correction=1), lambda t: t.var(dim=0, correction=1)),
    ("std", lambda t: t.std(axis=0), lambda t: t.std(dim=0, correction=0)),
    ("clip", lambda t: t.clip(-0.5, 1.1), lambda t: t.clamp(-0.5, 1.1)),  # boundaries included, as torch
    ("clip-min", lambda t: t.clip(min=0.0), lambda t: t.clamp(min=0.0)),
    ("flatten", lambda t: t.flatten(), lambda t: t.flatten()),
    ("clone", lambda t: t.clone(), lambda t: t.clone()),
    ("sigmoid", lambda t: t.sigmoid(), lambda t: t.sigmoid()),
    ("relu", lambda t: t.relu(), lambda t: t.relu()),
]


@pytest.mark.parametrize("name,ours,theirs", CASES, ids=[c[0] for c in CASES])
def test_methods_match_torch(name, ours, theirs):
    torch = need_module("torch")
    t, out, seed = _run(ours, X, lambda x: Tensor(x, requires_grad=True))
    out.backward(seed)
    tt, tout, tseed = _run(theirs, X, lambda x: torch.tensor(x, requires_grad=True))
    tout.backward(torch.tensor(tseed))
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(t.grad, tt.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("method", ["log1p", "sin", "cos", "var", "std", "squeeze", "flatten", "clone"])
def test_methods_against_finite_differences(method):
    x = np.array([[0.4, 1.3, 2.2]])
    assert_grad_close(lambda t: getattr(t, method)(), [x])


def test_numpy_functions_and_builtins_call_the_methods():
    t = Tensor(X, requires_grad=True)
    assert np.mean(t).item() == pytest.approx(X.mean(), rel=1e-15)
    np.sum(t).backward()
    np.testing.assert_array_equal(t.grad, np.ones_like(X))
    assert np.max(t).item() == X.max()
    assert isinstance(np.mean(t, axis=0), Tensor) and np.mean(t, axis=0).shape == (3,)
    np.testing.assert_array_equal(abs(Tensor(X)).data, np.abs(X))
    np.testing.assert_array_equal(np.asarray(Tensor(X)), X)
    assert Tensor(X).tolist() == X.tolist()
    with pytest.raises(TypeError, match="out= is not supported"):
        np.mean(t, out=np.empty(()))
    with pytest.raises(TypeError, match="axis=0 and dim=1"):
        t.sum(axis=0, dim=1)


def test_astype_is_differentiable_and_gives_gradients_in_the_input_dtype():
    x = Tensor(X.astype(np.float32), requires_grad=True)
    y = x.astype(np.float64)
    assert y.dtype == np.float64 and np.array_equal(y.data, X.astype(np.float32).astype(np.float64))
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad, 2 * X.astype(np.float32), rtol=1e-7)
    with pytest.raises(TypeError, match="astype: a Tensor holds floats"):
        x.astype(np.int32)


def test_squeeze_names_a_wrong_axis():
    t = Tensor(np.ones((3, 1, 2)))
    assert t.squeeze().shape == (3, 2) and t.squeeze(1).shape == (3, 2) and t.squeeze(dim=-2).shape == (3, 2)
    with pytest.raises(dl.ShapeError, match=r"squeeze: axis 0 of shape \(3, 1, 2\) has size 3"):
        t.squeeze(0)


def test_clip_keeps_nan_with_gradient_zero_as_torch():
    t = Tensor(np.array([np.nan, -3.0, 0.5]), requires_grad=True)
    out = t.clip(-1.0, 1.0)
    assert np.isnan(out.data[0]) and out.data[1] == -1.0
    out.backward(np.ones(3))
    np.testing.assert_array_equal(t.grad, [0.0, 0.0, 1.0])


# --- the course's update written the PyTorch way ------------------------------------------------------------

def test_in_place_update_under_no_grad_keeps_the_same_leaf():
    layer = dl.nn.Dense(3, 2, rng=np.random.default_rng(0))
    W = layer.W
    before = W.data.copy()
    J = (layer(Tensor(np.ones((3, 4)))) ** 2).mean()
    J.backward()
    grad = W.grad.copy()
    with dl.no_grad():
        W -= 0.1 * W.grad
    assert layer.W is W and W.requires_grad and W.creator is None
    assert any(p is W for _, p in layer.named_parameters())
    np.testing.assert_array_equal(W.grad, grad)
    np.testing.assert_allclose(W.data, before - 0.1 * grad, rtol=0, atol=0)
    J2 = (layer(Tensor(np.ones((3, 4)))) ** 2).mean()  # the next step works as usual
    W.grad = None
    J2.backward()
    assert W.grad.shape == W.shape


def test_in_place_update_of_a_parameter_outside_no_grad_says_what_to_do():
    W = Tensor(np.ones((2, 2)), requires_grad=True, name="W")
    W.grad = np.ones((2, 2))
    with pytest.raises(RuntimeError, match=r"in-place -= on a leaf tensor 'W' that requires grad.*no_grad\(\).*\.data"):
        W -= 0.5 * W.grad
    assert W.creator is None and np.all(W.data == 1.0)


def test_in_place_ops_check_shape_and_leave_recorded_tensors_to_the_plain_operator():
    x = Tensor(np.ones((2, 1)))
    with pytest.raises(dl.ShapeError, match=r"in-place \+=.*\(2, 3\)"):
        x += np.ones((2, 3))
    w = Tensor(np.ones(2), requires_grad=True)
    y = w * 2.0
    y_before = y
    y += 1.0  # a recorded tensor: a new node, like y = y + 1
    assert y is not y_before and y.creator.name == "Add"
    y.sum().backward()
    np.testing.assert_array_equal(w.grad, [2.0, 2.0])


def test_axis_errors_name_the_op():
    t = Tensor(np.ones((2, 3)))
    for name, call in [("sum", lambda: t.sum(axis=5)), ("max", lambda: t.max(axis=-3)), ("mean", lambda: t.mean(2)),
                       ("var", lambda: t.var(axis=4)), ("squeeze", lambda: t.squeeze(7))]:
        with pytest.raises(dl.ShapeError, match=rf"^{name}: axis -?\d is out of range for a tensor with 2 dimensions"):
            call()
    with pytest.raises(TypeError, match="sum: an axis must be an integer, got True"):
        t.sum(axis=True)
    with pytest.raises(dl.ShapeError, match="stack: axis True"):
        dl.stack([t, t], axis=True)
