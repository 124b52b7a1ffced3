"""dl.gradcheck (seed §3.2.3): a correct network passes, a planted wrong derivative is caught and located,
parameters and users' .grad come back bit for bit."""
import numpy as np
import pytest

import tinygrad_dl as dl
from tinygrad_dl.gradcheck import gradcheck, verdict

M = 7


def network(seed=0, dtype=np.float64):
    """A 2-layer tanh/sigmoid network with its data, cost written with Tensor operations only."""
    rng = np.random.default_rng(seed)
    X, Y = rng.normal(size=(4, M)), (rng.random((1, M)) < 0.5).astype(float)
    shapes = {"W1": (5, 4), "b1": (5, 1), "W2": (1, 5), "b2": (1, 1)}
    P = {k: dl.Tensor(rng.normal(size=s) * 0.8, requires_grad=True, dtype=dtype, name=k) for k, s in shapes.items()}

    def cost(keep_prob=1.0, rng=None):
        A1 = (P["W1"] @ X.astype(dtype) + P["b1"]).tanh()
        if keep_prob < 1:
            A1 = A1 * ((rng.random(A1.shape) < keep_prob) / keep_prob).astype(dtype)
        A2 = 1 / (1 + (-(P["W2"] @ A1 + P["b2"])).exp())
        return -(Y * A2.log() + (1 - Y) * (1 - A2).log()).sum() / M

    return P, X, Y, cost


def course_backprop(P, X, Y):
    """The course's hand-written backprop for the same network (§2.3): dZ2 = A2 - Y, dW = dZ A_prev^T / m, ..."""
    W1, b1, W2, b2 = (P[k].data for k in ("W1", "b1", "W2", "b2"))
    A1 = np.tanh(W1 @ X + b1)
    A2 = 1 / (1 + np.exp(-(W2 @ A1 + b2)))
    dZ2 = A2 - Y
    dZ1 = W2.T @ dZ2 * (1 - A1 ** 2)
    return {"W1": dZ1 @ X.T / M, "b1": dZ1.sum(1, keepdims=True) / M, "W2": dZ2 @ A1.T / M,
            "b2": dZ2.sum(1, keepdims=True) / M}


def test_a_correct_network_passes():
    P, X, Y, cost = network()
    res = gradcheck(cost, list(P.values()))
    assert res.ok and res.difference < 1e-7 and res.verdict.startswith("great")
    assert [c.name for c in res.breakdown] == ["W1", "b1", "W2", "b2"]
    expected = course_backprop(P, X, Y)
    for c in res.breakdown:
        assert c.shape == P[c.name].shape and c.difference < 1e-7
        np.testing.assert_allclose(c.backprop, expected[c.name], rtol=1e-12, atol=1e-15)   # dθ: the course's
        np.testing.assert_allclose(c.numeric, expected[c.name], rtol=1e-5, atol=1e-8)      # dθ≈: close to it
    theta = np.concatenate([expected[k].ravel() for k in ("W1", "b1", "W2", "b2")])
    np.testing.assert_allclose(res.backprop, theta, rtol=1e-12, atol=1e-15)
    diff = np.linalg.norm(res.numeric - theta) / (np.linalg.norm(res.numeric) + np.linalg.norm(theta))
    assert res.difference == pytest.approx(diff, rel=1e-6)
    assert bool(res) and "great" in str(res) and "W1 (5, 4)" in str(res)


class BadSquare(dl.Function):
    """y = x**2;  dy/dx = 2x  -- but the backward below says 3x: a planted bug."""

    def forward(self, x):
        return x * x

    def backward(self, grad, out, x):
        return (grad * x * 3,)


def test_a_planted_wrong_derivative_is_caught_and_located():
    P, X, Y, cost = network()
    c = dl.Tensor(np.array([[0.5, -1.0, 2.0]]), requires_grad=True, name="c")
    res = gradcheck(lambda: cost() + BadSquare.apply(c).sum() / 10, list(P.values()) + [c])
    assert not res.ok and res.difference > 1e-3 and res.verdict.startswith("likely a bug")
    worst = res.worst
    assert worst.name == "c" and worst.position == 4 and worst.difference == pytest.approx(0.2, rel=1e-5)
    for check in res.breakdown[:4]:
        assert check.difference < 1e-7, check.name                  # the innocent parameters are cleared
    (idx, num, bp), *_ = worst.worst
    assert idx == (0, 2) and num == pytest.approx(2 * 2.0 / 10, rel=1e-6) and bp == pytest.approx(3 * 2.0 / 10)
    report = str(res)
    assert "c (1, 3): difference 2.000e-01  <-- largest" in report and "[0, 2]" in report


def test_parameters_and_user_grads_come_back_bit_for_bit():
    P, X, Y, cost = network()
    P["W1"].data[0, :3] = [-0.0, 1 / 3, 5e-324]                      # signed zero, a repeating binary, a subnormal
    before = {k: p.data.tobytes() for k, p in P.items()}
    data_ids = {k: id(p.data) for k, p in P.items()}
    user_grad = np.full((5, 4), 42.0)
    P["W1"].grad = user_grad
    gradcheck(cost, list(P.values()))
    assert all(P[k].data.tobytes() == before[k] and id(P[k].data) == data_ids[k] for k in P)
    assert P["W1"].grad is user_grad and np.all(user_grad == 42.0)   # not accumulated into
    assert P["b1"].grad is None and P["W2"].grad is None


def test_restored_even_when_f_raises_midway():
    P, X, Y, cost = network()
    before = {k: p.data.tobytes() for k, p in P.items()}
    calls = []

    def f():
        calls.append(1)
        if len(calls) == 9:
            raise RuntimeError("boom")
        return cost()

    with pytest.raises(RuntimeError, match="boom"):
        gradcheck(f, list(P.values()))
    assert all(P[k].data.tobytes() == before[k] for k in P) and all(p.grad is None for p in P.values())


def test_float32_warns():
    P, X, Y, cost = network(dtype=np.float32)
    with pytest.warns(RuntimeWarning, match="float64"):
        res = gradcheck(cost, list(P.values()), eps=1e-3)
    assert res.difference < 1e-2    # float32 with a larger eps: rough but sane


def test_dropout_needs_a_fixed_mask():
    P, X, Y, cost = network()
    shared = np.random.default_rng(0)
    with pytest.warns(RuntimeWarning, match="not deterministic"):
        bad = gradcheck(lambda: cost(keep_prob=0.7, rng=shared), list(P.values()))
    assert not bad.ok
    # the documented fix: re-create the generator inside f, so every call draws the same mask
    good = gradcheck(lambda: cost(keep_prob=0.7, rng=np.random.default_rng(0)), list(P.values()))
    assert good.ok


def test_unused_parameter_module_names_and_errors():
    P, X, Y, cost = network()
    unused = dl.Tensor(np.ones((2, 2)), requires_grad=True)

    class Net:
        def named_parameters(self):
            return [("layer1.W", P["W1"]), ("spare", unused)]

    res = gradcheck(cost, Net())
    assert [c.name for c in res.breakdown] == ["layer1.W", "spare"]
    assert res.breakdown[1].difference == 0.0 and not res.breakdown[1].backprop.any()
    assert gradcheck(cost, [P["b2"], dl.Tensor(np.zeros(1), requires_grad=True)]).breakdown[1].name == "params[1]"
    with pytest.raises(ValueError, match="scalar cost"):
        gradcheck(lambda: P["W1"] * 2, [P["W1"]])
    with pytest.raises(TypeError, match="must return a Tensor"):
        gradcheck(lambda: 1.0, [P["W1"]])
    with pytest.raises(ValueError, match=r"params\[0\] \(shape \(2,\)\) does not require grad"):
        gradcheck(cost, [dl.Tensor(np.ones(2))])
    with pytest.raises(ValueError, match="eps"):
        gradcheck(cost, [P["W1"]], eps=0)


def test_verdict_thresholds():
    assert verdict(3e-8).startswith("great")
    assert verdict(2e-6).startswith("fine")
    assert verdict(2e-4).startswith("suspicious")
    assert verdict(2e-2).startswith("likely a bug")
    assert verdict(float("nan")).startswith("broken")
