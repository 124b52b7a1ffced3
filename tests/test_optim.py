"""dl.optim: the exponentially weighted average against its closed form (seed §3.3.2), the optimizers against
the course formulas written out in NumPy and against torch.optim, step for step."""
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_dl as dl
from tinygrad_dl import optim
from tinygrad_dl.optim import ExponentialAverage
from conftest import need_module

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_subnormal=False)  # subnormals carry no relative precision
betas = st.floats(0.0, 0.999)


# ============================================================ ExponentialAverage

def closed_form(xs, beta, t, bias_correction):
    """v_t = (1 - beta) * sum_{i=1..t} beta**(t-i) x_i, over (1 - beta**t) when corrected."""
    xs = np.asarray(xs[:t], dtype=np.float64)
    w = (1 - beta) * beta ** np.arange(t - 1, -1, -1, dtype=np.float64)
    v = np.tensordot(w, xs, axes=1)
    return v / (1 - beta ** t) if bias_correction else v


@given(xs=st.lists(finite, min_size=1, max_size=40), beta=betas, bc=st.booleans())
@settings(max_examples=80, deadline=None)
def test_ewa_closed_form_on_floats(xs, beta, bc):
    avg = ExponentialAverage(beta, bias_correction=bc)
    for t, x in enumerate(xs, start=1):
        got = avg.update(x)
        assert isinstance(got, float)
        assert got == pytest.approx(closed_form(xs, beta, t, bc), rel=1e-9, abs=1e-9 * max(map(abs, xs)))
    assert avg.t == len(xs)


@given(xs=hnp.arrays(np.float64, st.tuples(st.integers(1, 25), st.integers(1, 4), st.integers(1, 3)),
                     elements=finite), beta=betas, bc=st.booleans())
@settings(max_examples=60, deadline=None)
def test_ewa_closed_form_on_arrays(xs, beta, bc):
    avg = ExponentialAverage(beta, bias_correction=bc)
    scale = 1e-9 * (np.abs(xs).max() + 1)
    for t in range(1, len(xs) + 1):
        got = avg.update(xs[t - 1])
        assert got.shape == xs.shape[1:] and got.dtype == np.float64
        np.testing.assert_allclose(got, closed_form(xs, beta, t, bc), rtol=1e-9, atol=scale)


@given(c=finite, beta=st.floats(0.0, 0.99), n=st.integers(1, 30))
@settings(max_examples=50, deadline=None)
def test_bias_correction_makes_a_constant_exact_from_the_first_step(c, beta, n):
    avg, arr = ExponentialAverage(beta), ExponentialAverage(beta)
    for _ in range(n):
        assert avg.update(c) == pytest.approx(c, rel=1e-12, abs=1e-300)
        np.testing.assert_allclose(arr.update(np.full(3, c)), c, rtol=1e-12)
    # without correction the first value is pulled towards zero: (1 - beta) * c
    assert ExponentialAverage(beta, bias_correction=False).update(c) == pytest.approx((1 - beta) * c)


@given(xs=hnp.arrays(np.float64, st.tuples(st.integers(1, 10), st.integers(1, 5)), elements=finite),
       bc=st.booleans())
@settings(max_examples=30, deadline=None)
def test_beta_zero_is_the_identity(xs, bc):
    avg = ExponentialAverage(0.0, bias_correction=bc)
    for x in xs:
        assert np.array_equal(avg.update(x), x)
    assert ExponentialAverage(0.0, bc).update(2.5) == 2.5


def test_ewa_state_and_errors():
    avg = ExponentialAverage(0.5)
    assert avg.value is None and avg.t == 0
    out = avg.update(np.array([2.0, 4.0]))
    out[:] = 100.0                                   # the returned array is the caller's, not the state
    np.testing.assert_allclose(avg.update(np.array([2.0, 4.0])), [2.0, 4.0])
    np.testing.assert_allclose(avg.value, [2.0, 4.0])
    assert avg.correction == pytest.approx(0.75)
    with pytest.raises(ValueError, match=r"shape \(3,\).*shape \(2,\)"):
        avg.update(np.zeros(3))
    avg.reset()
    assert avg.value is None and avg.update(7.0) == 7.0
    for bad in (1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=r"ExponentialAverage: beta must be in \[0, 1\)"):
            ExponentialAverage(bad)
    with pytest.raises(TypeError):
        ExponentialAverage("0.9")
    # float32 arrays are averaged in float32; Tensors are accepted
    f32 = ExponentialAverage(0.9)
    assert f32.update(np.ones(2, np.float32)).dtype == np.float32
    np.testing.assert_allclose(ExponentialAverage(0.9).update(dl.Tensor([1.0, 2.0])), [1.0, 2.0])


# ============================================================ optimizers vs the course formulas

def course_reference(kind, W0, grads, lr, **h):
    """The update rules written out in NumPy, straight from the course (one array, one grad per step)."""
    W, v, s, traj = W0.copy(), np.zeros_like(W0), np.zeros_like(W0), []
    for t, dW in enumerate(grads, start=1):
        if kind == "gd":
            W = W - lr * dW
        elif kind == "momentum":
            v = h["beta"] * v + (1 - h["beta"]) * dW
            W = W - lr * (v / (1 - h["beta"] ** t) if h.get("bias_correction") else v)
        elif kind == "rmsprop":
            s = h["beta"] * s + (1 - h["beta"]) * dW ** 2
            W = W - lr * dW / (np.sqrt(s) + h["eps"])
        elif kind == "adam":
            v = h["beta1"] * v + (1 - h["beta1"]) * dW
            s = h["beta2"] * s + (1 - h["beta2"]) * dW ** 2
            v_hat, s_hat = v / (1 - h["beta1"] ** t), s / (1 - h["beta2"] ** t)
            W = W - lr * v_hat / (np.sqrt(s_hat) + h["eps"])
        traj.append(W)
    return traj


CASES = [
    ("gd", optim.GradientDescent, dict()),
    ("momentum", optim.Momentum, dict(beta=0.9)),
    ("momentum", optim.Momentum, dict(beta=0.8, bias_correction=True)),
    ("rmsprop", optim.RMSprop, dict(beta=0.999, eps=1e-8)),
    ("rmsprop", optim.RMSprop, dict(beta=0.9, eps=1e-3)),
    ("adam", optim.Adam, dict(beta1=0.9, beta2=0.999, eps=1e-8)),
    ("adam", optim.Adam, dict(beta1=0.5, beta2=0.9, eps=1e-4)),
]


@pytest.mark.parametrize("kind,cls,h", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_trajectory_equals_course_formula(kind, cls, h):
    rng = np.random.default_rng(0)
    W0 = rng.normal(size=(4, 3))
    grads = [rng.normal(size=(4, 3)) * rng.uniform(0.01, 10) for _ in range(60)]
    W = dl.Tensor(W0, requires_grad=True)
    opt = cls([W], lr=0.05, **h)
    for dW, expected in zip(grads, course_reference(kind, W0, grads, 0.05, **h)):
        W.grad = dW
        opt.step()
        np.testing.assert_allclose(W.data, expected, rtol=1e-12, atol=1e-12)


def quadratic_grad(W, A, B):
    """Gradient of J(W) = ||A W - B||^2 / 2 + sum(W^4) / 4, written out by hand."""
    return A.T @ (A @ W - B) + W ** 3


def test_adam_is_two_exponential_averages():
    rng = np.random.default_rng(1)
    W = dl.Tensor(rng.normal(size=(3, 2)), requires_grad=True)
    opt = optim.Adam([W], lr=0.01, beta1=0.8, beta2=0.95)
    m, v = ExponentialAverage(0.8), ExponentialAverage(0.95)
    for _ in range(10):
        W.grad = rng.normal(size=(3, 2))
        m_hat, v_hat = m.update(W.grad), v.update(W.grad ** 2)
        expected = W.data - 0.01 * m_hat / (np.sqrt(v_hat) + 1e-8)
        opt.step()
        np.testing.assert_allclose(W.data, expected, rtol=1e-12, atol=1e-14)
    assert isinstance(opt.m[0], ExponentialAverage) and isinstance(opt.v[0], ExponentialAverage)
    assert isinstance(optim.Momentum([W], 0.1).v[0], ExponentialAverage)
    assert isinstance(optim.RMSprop([W], 0.1).s[0], ExponentialAverage)


def test_end_to_end_with_backward():
    """A real training loop: grads from the core's backward, update by the optimizer, against the NumPy loop."""
    rng = np.random.default_rng(2)
    X, Y = rng.normal(size=(3, 20)), rng.normal(size=(2, 20))
    W0, b0 = rng.normal(size=(2, 3)), np.zeros((2, 1))
    W, b = dl.Tensor(W0, requires_grad=True), dl.Tensor(b0, requires_grad=True)
    opt = optim.Momentum([W, b], lr=0.1, beta=0.9)
    Wr, br, vW, vb = W0.copy(), b0.copy(), 0.0, 0.0
    for _ in range(30):
        opt.zero_grad()
        cost = ((W @ X + b - Y) ** 2).sum() / (2 * 20)
        cost.backward()
        opt.step()
        dZ = (Wr @ X + br - Y) / 20                           # course: dW = dZ A_prev^T, db = sum dZ
        vW = 0.9 * vW + 0.1 * (dZ @ X.T)
        vb = 0.9 * vb + 0.1 * dZ.sum(axis=1, keepdims=True)
        Wr, br = Wr - 0.1 * vW, br - 0.1 * vb
        np.testing.assert_allclose(W.data, Wr, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(b.data, br, rtol=1e-12, atol=1e-13)
    assert W.creator is None and W.requires_grad   # updates recorded no graph


# ============================================================ against torch.optim

def run_pair(make_ours, make_torch, steps=80, dtype=np.float64, lr_change=None, skip=()):
    torch = need_module("torch")
    rng = np.random.default_rng(3)
    A, B = rng.normal(size=(6, 4)), rng.normal(size=(6, 3))
    W0, c0 = (rng.normal(size=(4, 3)) * 0.5).astype(dtype), rng.normal(size=(3, 1)).astype(dtype)
    ours = [dl.Tensor(W0, requires_grad=True), dl.Tensor(c0, requires_grad=True)]
    theirs = [torch.tensor(W0.copy(), requires_grad=True), torch.tensor(c0.copy(), requires_grad=True)]
    opt, topt = make_ours(ours), make_torch(theirs, torch)
    for step in range(steps):
        if lr_change and step == lr_change[0]:
            opt.lr = lr_change[1]
            for group in topt.param_groups:
                group["lr"] = lr_change[1]
        gW = quadratic_grad(ours[0].data.astype(np.float64), A, B).astype(dtype)
        gc = (ours[1].data ** 3 - 1).astype(dtype)
        tgW = quadratic_grad(theirs[0].detach().numpy().astype(np.float64), A, B).astype(dtype)
        tgc = (theirs[1].detach().numpy() ** 3 - 1).astype(dtype)
        ours[0].grad, theirs[0].grad = gW, torch.from_numpy(tgW)
        if step in skip:     # the second parameter gets no gradient this step: both skip it
            ours[1].grad, theirs[1].grad = None, None
        else:
            ours[1].grad, theirs[1].grad = gc, torch.from_numpy(tgc)
        opt.step()
        topt.step()
        tol = dict(rtol=1e-11, atol=1e-12) if dtype == np.float64 else dict(rtol=2e-5, atol=2e-6)
        for p, tp in zip(ours, theirs):
            assert p.dtype == dtype
            np.testing.assert_allclose(p.data, tp.detach().numpy(), **tol, err_msg=f"step {step}")
    return ours


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("h", [dict(lr=1e-3), dict(lr=0.05, beta1=0.8, beta2=0.99, eps=1e-6)])
def test_adam_matches_torch_step_for_step(h, dtype):
    th = dict(lr=h["lr"], betas=(h.get("beta1", 0.9), h.get("beta2", 0.999)), eps=h.get("eps", 1e-8))
    run_pair(lambda ps: optim.Adam(ps, **h), lambda ps, torch: torch.optim.Adam(ps, **th), dtype=dtype)


def test_adam_matches_torch_when_a_grad_is_missing_and_lr_changes():
    run_pair(lambda ps: optim.Adam(ps, lr=0.02), lambda ps, torch: torch.optim.Adam(ps, lr=0.02),
             lr_change=(40, 0.005), skip={0, 1, 5, 17, 18, 60})


def test_rmsprop_matches_torch():
    run_pair(lambda ps: optim.RMSprop(ps, lr=0.01, beta=0.9, eps=1e-6),
             lambda ps, torch: torch.optim.RMSprop(ps, lr=0.01, alpha=0.9, eps=1e-6), skip={3, 4})


def test_gradient_descent_matches_torch_sgd():
    run_pair(lambda ps: optim.GradientDescent(ps, lr=0.01), lambda ps, torch: torch.optim.SGD(ps, lr=0.01),
             dtype=np.float32)


# ============================================================ behaviour

def test_step_is_in_place_skips_missing_grads_and_zero_grad_clears():
    W = dl.Tensor(np.ones((2, 2)), requires_grad=True)
    b = dl.Tensor(np.ones((2, 1)), requires_grad=True)
    data, view = W.data, W.data[0]
    opt = optim.GradientDescent([W, b], lr=0.5)
    W.grad = np.full((2, 2), 2.0)
    opt.step()
    assert W.data is data and view.tolist() == [0.0, 0.0]   # updated in place: views see it
    assert b.data.tolist() == [[1.0], [1.0]]               # no grad: untouched
    opt.zero_grad()
    assert W.grad is None and b.grad is None
    opt.step()                                             # nothing to do
    assert W.data.tolist() == [[0.0, 0.0], [0.0, 0.0]]


def test_lr_is_settable_and_checked():
    W = dl.Tensor(np.zeros(3), requires_grad=True)
    opt = optim.Adam([W])
    assert opt.lr == 1e-3
    opt.lr = 0.5
    W.grad = np.ones(3)
    opt.step()
    np.testing.assert_allclose(W.data, -0.5 * 1 / (1 + 1e-8))  # first Adam step moves by lr
    for bad in (-1.0, float("nan"), "0.1", None):
        with pytest.raises(ValueError, match="Adam: lr must be a finite number >= 0"):
            opt.lr = bad


def test_float32_params_stay_float32():
    for cls in (optim.GradientDescent, optim.Momentum, optim.RMSprop, optim.Adam):
        W = dl.Tensor(np.ones((3, 2), np.float32), requires_grad=True)
        opt = cls([W], lr=0.1)
        for _ in range(3):
            W.grad = np.full((3, 2), 0.5, np.float32)
            opt.step()
        assert W.data.dtype == np.float32, cls


def test_accepts_a_module_like_object_and_refuses_bad_params():
    W = dl.Tensor(np.ones(2), requires_grad=True)

    class Net:
        def parameters(self):
            return [W]

    assert optim.Adam(Net()).params == [W]
    assert optim.Adam(iter([W])).params == [W]
    with pytest.raises(ValueError, match="empty"):
        optim.Adam([])
    with pytest.raises(TypeError, match=r"Momentum: params\[1\] is a ndarray, expected a Tensor"):
        optim.Momentum([W, np.ones(2)], lr=0.1)
    with pytest.raises(ValueError, match="appears twice"):
        optim.Adam([W, W])
    with pytest.raises(ValueError, match="leaf"):
        optim.Adam([W * 2])
    with pytest.raises(ValueError, match="beta1"):
        optim.Adam([W], beta1=1.0)
    opt = optim.RMSprop([W], lr=0.1)
    W.grad = np.ones(3)
    with pytest.raises(ValueError, match=r"RMSprop.step: params\[0\] has shape \(2,\) but its grad has shape \(3,\)"):
        opt.step()


@pytest.mark.parametrize("cls", [optim.GradientDescent, optim.Momentum, optim.RMSprop, optim.Adam])
def test_step_allocates_nothing_after_the_first(cls):
    W = dl.Tensor(np.ones((250, 200)), requires_grad=True)   # 400 kB
    W.grad = np.full(W.shape, 0.25)
    opt = cls([W], lr=0.01)
    opt.step()
    tracemalloc.start()
    try:
        for _ in range(3):
            opt.step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50_000, f"{cls.__name__}.step allocated {peak} bytes"


# ============================================================ learning-rate decay

def test_schedules():
    assert optim.inverse_time_decay(0.2, 1.0, 0) == 0.2
    assert optim.inverse_time_decay(0.2, 1.0, 3) == pytest.approx(0.2 / 4)
    assert optim.inverse_time_decay(0.5, 0.25, 2) == pytest.approx(0.5 / 1.5)
    assert optim.exponential_decay(0.2, 0) == 0.2
    assert optim.exponential_decay(0.2, 10) == pytest.approx(0.95 ** 10 * 0.2)
    assert optim.exponential_decay(1.0, 3, base=0.5) == pytest.approx(0.125)
    epochs = np.arange(5)
    np.testing.assert_allclose(optim.exponential_decay(0.1, epochs), 0.1 * 0.95 ** epochs)
    np.testing.assert_allclose(optim.inverse_time_decay(0.1, 0.5, epochs), 0.1 / (1 + 0.5 * epochs))
    assert isinstance(optim.exponential_decay(0.1, 2), float)
    with pytest.raises(ValueError, match="epoch"):
        optim.exponential_decay(0.1, -1)
    with pytest.raises(ValueError, match="decay_rate"):
        optim.inverse_time_decay(0.1, -1.0, 2)
    with pytest.raises(ValueError, match="base"):
        optim.exponential_decay(0.1, 2, base=1.5)


# ============================================================ PyTorch spellings

def _traj(make, steps=25, dtype=np.float64):
    rng = np.random.default_rng(4)
    W = dl.Tensor(rng.normal(size=(4, 3)).astype(dtype), requires_grad=True)
    opt, out = make([W]), []
    for _ in range(steps):
        W.grad = rng.normal(size=(4, 3)).astype(dtype)
        opt.step()
        out.append(W.data.tobytes())
    return out


def test_pytorch_spellings_are_the_same_optimizers():
    assert _traj(lambda ps: optim.SGD(ps, lr=0.1)) == _traj(lambda ps: optim.GradientDescent(ps, lr=0.1))
    assert _traj(lambda ps: optim.Adam(ps, lr=0.01, betas=(0.8, 0.95))) == \
        _traj(lambda ps: optim.Adam(ps, lr=0.01, beta1=0.8, beta2=0.95))
    assert _traj(lambda ps: optim.Momentum(ps, lr=0.1, momentum=0.8)) == \
        _traj(lambda ps: optim.Momentum(ps, lr=0.1, beta=0.8))
    assert optim.Adam([dl.Tensor(np.ones(2), requires_grad=True)], betas=(0.5, 0.6)).betas == (0.5, 0.6)
    W = dl.Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(ValueError, match=r"SGD: momentum=0.9 is not supported.*Momentum\(params, lr, beta=0.9\)"):
        optim.SGD([W], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="not both"):
        optim.Adam([W], beta1=0.8, betas=(0.9, 0.99))
    with pytest.raises(ValueError, match="not both"):
        optim.Momentum([W], 0.1, beta=0.5, momentum=0.8)
    with pytest.raises(ValueError, match="betas must be a pair"):
        optim.Adam([W], betas=0.9)
    with pytest.raises(ValueError, match="beta2"):
        optim.Adam([W], betas=(0.9, 1.0))


def test_momentum_equals_torch_sgd_with_momentum_and_scaled_lr():
    beta, lr = 0.8, 0.05
    run_pair(lambda ps: optim.Momentum(ps, lr=lr, momentum=beta),
             lambda ps, torch: torch.optim.SGD(ps, lr=lr * (1 - beta), momentum=beta), skip={2, 3})


# ============================================================ weight decay = the course's L2 term

def _model(seed=0):
    return dl.nn.Sequential(dl.nn.Dense(3, 5, rng=seed), dl.nn.Tanh(), dl.nn.Dense(5, 2, rng=seed + 1))


OPTIMIZERS = {
    "gd": lambda ps, **kw: optim.GradientDescent(ps, lr=0.3, **kw),
    "momentum": lambda ps, **kw: optim.Momentum(ps, lr=0.3, beta=0.8, **kw),
    "rmsprop": lambda ps, **kw: optim.RMSprop(ps, lr=0.01, beta=0.9, **kw),
    "adam": lambda ps, **kw: optim.Adam(ps, lr=0.01, **kw),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_weight_decay_equals_adding_the_l2_penalty_to_the_cost(name):
    """weight_decay = lambd / m on the W's gives the steps of J + (lambd / (2 m)) sum ||W||^2 without it."""
    rng = np.random.default_rng(0)
    m, lambd = 16, 0.7
    X, Y = rng.normal(size=(3, m)), rng.normal(size=(2, m))
    runs = []
    for decayed in (True, False):
        model = _model()
        opt = OPTIMIZERS[name](model, weight_decay=lambd / m) if decayed else OPTIMIZERS[name](model.parameters())
        for _ in range(30):
            cost = dl.functional.mse(model(X), Y)
            if not decayed:
                cost = cost + dl.functional.l2_penalty(model, lambd, m)
            opt.zero_grad()
            cost.backward()
            opt.step()
        runs.append([p.data for p in model.parameters()])
    for a, b in zip(*runs):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-13)
    untouched = _model()                                             # and the decay did act
    assert not np.allclose(runs[0][0], untouched[0].W.data)


def test_weight_decay_covers_the_weights_only_unless_told():
    model = _model()
    opt = optim.Adam(model, weight_decay=0.1)
    assert opt.decay == model.weights()                              # W's, not b's: the course's L2
    assert optim.Adam(model, weight_decay=0.1, decay="all").decay == model.parameters()
    assert optim.Adam(model.parameters(), weight_decay=0.1, decay=[model[2].W]).decay == [model[2].W]
    with pytest.raises(ValueError, match=r"needs to know which parameters decay.*Adam\(model, \.\.\.\)"):
        optim.Adam(model.parameters(), weight_decay=0.1)
    with pytest.raises(ValueError, match="not among the parameters"):
        optim.Adam([model[0].W], weight_decay=0.1, decay=[model[2].W])
    with pytest.raises(ValueError, match="weight_decay must be a finite number >= 0"):
        optim.SGD(model, lr=0.1, weight_decay=-1.0)
    with pytest.raises(ValueError, match="decay must be 'all'"):
        optim.SGD(model, lr=0.1, weight_decay=0.1, decay="weights")
    # a bias with decay off is updated exactly as without weight decay
    b = model[0].b
    b.data[:] = 1.0
    opt = optim.GradientDescent(model, lr=0.5, weight_decay=0.3)
    for p in model.parameters():
        p.grad = np.zeros(p.shape)
    W0 = model[0].W.data.copy()
    opt.step()
    np.testing.assert_array_equal(b.data, np.ones(b.shape))
    np.testing.assert_array_equal(model[0].W.data, W0 - 0.5 * (0.3 * W0))


@pytest.mark.parametrize("ours, theirs", [
    (lambda ps: optim.SGD(ps, lr=0.01, weight_decay=0.1, decay="all"),
     lambda ps, torch: torch.optim.SGD(ps, lr=0.01, weight_decay=0.1)),
    (lambda ps: optim.RMSprop(ps, lr=0.01, beta=0.9, eps=1e-6, weight_decay=0.2, decay="all"),
     lambda ps, torch: torch.optim.RMSprop(ps, lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.2)),
    (lambda ps: optim.Adam(ps, lr=0.02, weight_decay=0.05, decay="all"),
     lambda ps, torch: torch.optim.Adam(ps, lr=0.02, weight_decay=0.05)),
], ids=["sgd", "rmsprop", "adam"])
def test_weight_decay_matches_torch(ours, theirs):
    run_pair(ours, theirs)


# ============================================================ gradients as Tensors (dl.grad)

def test_step_accepts_a_tensor_gradient():
    X = np.random.default_rng(0).normal(size=(3, 6))
    W = dl.Tensor(np.ones((2, 3)), requires_grad=True)
    W2 = dl.Tensor(np.ones((2, 3)), requires_grad=True)
    for cls in (optim.GradientDescent, optim.Momentum, optim.RMSprop, optim.Adam):
        a, b = cls([W], lr=0.1), cls([W2], lr=0.1)
        for _ in range(3):
            (g,) = dl.grad(((W @ X) ** 2).mean(), [W])
            assert isinstance(g, dl.Tensor)
            W.grad = g                                               # what dl.grad returns
            W2.grad = (2 * (W2.data @ X) @ X.T / 12)                 # the same gradient as an array, by hand
            a.step()
            b.step()
            np.testing.assert_allclose(W.data, W2.data, rtol=1e-13)
    W.grad = [[1.0, 2.0, 3.0]] * 2
    with pytest.raises(TypeError, match=r"Adam.step: params\[0\].grad must be an array of floats.*got list"):
        optim.Adam([W]).step()
    W.grad = np.ones((2, 3), complex)
    with pytest.raises(TypeError, match="complex128"):
        optim.Adam([W]).step()


# ============================================================ save and resume: bit-identical

RESUMABLE = {
    "gd": lambda m, wd: optim.GradientDescent(m, lr=0.2, weight_decay=wd),
    "sgd": lambda m, wd: optim.SGD(m, lr=0.2, weight_decay=wd),
    "momentum": lambda m, wd: optim.Momentum(m, lr=0.2, beta=0.8, weight_decay=wd),
    "momentum-bc": lambda m, wd: optim.Momentum(m, lr=0.2, beta=0.8, bias_correction=True, weight_decay=wd),
    "rmsprop": lambda m, wd: optim.RMSprop(m, lr=0.01, beta=0.9, weight_decay=wd),
    "adam": lambda m, wd: optim.Adam(m, lr=0.01, betas=(0.8, 0.99), weight_decay=wd),
}


def _train(model, opt, X, Y, epochs, start=0, schedule=None):
    for epoch in range(start, start + epochs):
        if schedule is not None:
            opt.lr = schedule(epoch)
        elif epoch == 7:
            opt.lr = opt.lr * 0.5                                    # a change by hand must survive the save too
        cost = dl.functional.mse(model(X), Y)
        opt.zero_grad()
        cost.backward()
        if epoch % 5 == 3:                                           # a step where one parameter has no gradient
            model[2].b.grad = None
        opt.step()


@pytest.mark.parametrize("schedule", [None, "inverse_time"])
@pytest.mark.parametrize("wd", [0.0, 0.05])
@pytest.mark.parametrize("name", sorted(RESUMABLE))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_save_and_resume_is_bit_identical(tmp_path, name, wd, schedule, dtype):
    sched = None if schedule is None else (lambda e: optim.inverse_time_decay(0.2, 0.3, e))
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(3, 10)).astype(dtype), rng.normal(size=(2, 10)).astype(dtype)

    def fresh(seed):
        model = dl.nn.Sequential(dl.nn.Dense(3, 5, rng=seed, dtype=dtype), dl.nn.Tanh(),
                                 dl.nn.Dense(5, 2, rng=seed + 1, dtype=dtype))
        return model, RESUMABLE[name](model, wd)

    model, opt = fresh(0)                                            # never stops: 20 epochs
    _train(model, opt, X, Y, 20, schedule=sched)
    model_a, opt_a = fresh(0)                                        # stops after 9, saved to files
    _train(model_a, opt_a, X, Y, 9, schedule=sched)
    model_a.save(tmp_path / "model.npz")
    np.savez(tmp_path / "opt.npz", **opt_a.state_dict())
    model_b, opt_b = fresh(5)                                        # a new process would start here
    model_b.load(tmp_path / "model.npz")
    with np.load(tmp_path / "opt.npz", allow_pickle=False) as f:
        opt_b.load_state_dict(f)
    _train(model_b, opt_b, X, Y, 11, start=9, schedule=sched)
    for p, q in zip(model.parameters(), model_b.parameters()):
        assert p.dtype == q.dtype == dtype and p.data.tobytes() == q.data.tobytes()
    s1, s2 = opt.state_dict(), opt_b.state_dict()
    assert s1.keys() == s2.keys() and all(s1[k].tobytes() == s2[k].tobytes() for k in s1)


def test_state_dict_is_plain_arrays_and_a_snapshot():
    model = _model()
    opt = optim.Adam(model, lr=0.01, weight_decay=0.1)
    for p in model.parameters():
        p.grad = np.ones(p.shape)
    W0 = model[0].W.data.copy()
    opt.step()
    state = opt.state_dict()
    assert all(isinstance(v, np.ndarray) and v.dtype != object for v in state.values())
    assert str(state["optimizer"]) == "Adam" and state["m.0.t"] == 1 and state["decay"].tolist() == [1, 0, 1, 0]
    np.testing.assert_allclose(state["m.0"], (1 - 0.9) * (1 + 0.1 * W0), rtol=1e-15)   # m = (1 - beta1)(dW + wd W)
    np.testing.assert_allclose(state["v.1"], (1 - 0.999) * np.ones((5, 1)), rtol=1e-15)  # b: no decay
    m0 = state["m.0"].copy()
    opt.step()
    np.testing.assert_array_equal(state["m.0"], m0)                  # later steps do not change the snapshot
    fresh = optim.Adam(_model(), lr=0.5, weight_decay=0.1)
    fresh.load_state_dict(state)
    state["m.0"][...] = 7                                            # nor does the caller's dict change the optimizer
    assert fresh.lr == 0.01 and not np.any(fresh.m[0].raw == 7)


def test_load_state_dict_refuses_a_different_optimizer_and_changes_nothing():
    model = _model()
    opt = optim.Adam(model, lr=0.01)
    for p in model.parameters():
        p.grad = np.ones(p.shape)
    opt.step()
    state = opt.state_dict()
    cases = [
        (optim.RMSprop(_model(), lr=0.01), "the state is for Adam, not RMSprop"),
        (optim.Adam(_model(), lr=0.01, beta1=0.5), "beta1=0.9, this optimizer beta1=0.5"),
        (optim.Adam(_model(), lr=0.01, weight_decay=0.1), "weight_decay=0.0, this optimizer weight_decay=0.1"),
        (optim.Adam(_model().parameters()[:2], lr=0.01), "for 4 parameters, this optimizer has 2"),
        (optim.Adam(dl.nn.Sequential(dl.nn.Dense(3, 4), dl.nn.Tanh(), dl.nn.Dense(4, 2)), lr=0.01),
         r"m.0 has shape \(5, 3\)"),
    ]
    for other, msg in cases:
        before = other.state_dict()
        with pytest.raises(ValueError, match=msg):
            other.load_state_dict(state)
        after = other.state_dict()
        assert before.keys() == after.keys() and all(np.array_equal(before[k], after[k]) for k in before)
    broken = dict(state)
    del broken["v.1"]
    with pytest.raises(ValueError, match="the state has no 'v.1'"):
        optim.Adam(_model(), lr=0.01).load_state_dict(broken)
    with pytest.raises(TypeError, match="expected the dict of state_dict"):
        optim.Adam(_model(), lr=0.01).load_state_dict([1, 2])
    assert optim.SGD(_model(), lr=0.1).load_state_dict(optim.GradientDescent(_model(), lr=0.3).state_dict()).lr == 0.3
